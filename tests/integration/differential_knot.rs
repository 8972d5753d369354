//! Issue "Must show 2": the same static zone served by Meridian and by a real
//! Knot DNS gives the same rcode, header flags, EDNS and sections, query by
//! query. The zone Knot serves is rendered from what Meridian loaded
//! (`Zone::to_master_file`), so both serve exactly the same data.

use crate::common::*;
use crate::knot::KnotServer;
use hickory_proto::rr::RecordType;

const Z: &str = "gslb.example.test";

/// What must agree for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// rcode, flags, EDNS (presence, version, DO, udp), question and every
    /// section as a set of records (TTLs included).
    Full,
    /// Full, except the CD bit in the response. RFC 4035 §3.1.6: a
    /// security-aware name server MUST copy CD from the query; Meridian (which
    /// honours DO) copies it, as BIND and NSD do, while Knot clears it when
    /// the zone is unsigned. Both are in use and harmless for an authority.
    CdEitherWay,
    /// Full for rcode, flags, EDNS, question (spelled as asked) and the
    /// answer's owner names (both keep the query's spelling there), but every
    /// other name compared without case: Knot's name compression points into
    /// the question, so names in RDATA, authority and additional take the
    /// query's spelling (`MX 10 mail.GSLB.EXAMPLE.TEST.`, `ns1.SUB...`), while
    /// Meridian writes the zone's. Names compare case-insensitively (RFC 4343
    /// §3); neither spelling is required.
    CaseOutsideAnswer,
    /// RFC 8482 §4.1: an ANY query may be answered with one RRset (or a
    /// subset) of the responder's choosing; Meridian and Knot both answer one
    /// RRset but pick different ones (at the apex Meridian gives the SOA,
    /// Knot the NS). So: rcode, flags, EDNS, question and authority as for
    /// Full; both answers non-empty, one RRset (one owner, one type) owned by
    /// the query name, and exactly what that server answers to a query for
    /// that type. The additional section follows from the RRset chosen (NS
    /// glue for Knot's choice) and is not compared.
    Any,
}

struct Case {
    what: &'static str,
    args: String,
    rule: Rule,
}

fn case(what: &'static str, args: impl Into<String>) -> Case {
    Case { what, args: args.into(), rule: Rule::Full }
}

fn case_by(rule: Rule, what: &'static str, args: impl Into<String>) -> Case {
    Case { what, args: args.into(), rule }
}

fn cases() -> Vec<Case> {
    vec![
        // Flags: AA on, RA never, RD copied.
        case("A, aa, rd clear", format!("static.{Z} A")),
        case("AAAA with +rec: rd copied, no ra", format!("+rec static.{Z} AAAA")),
        case("NXDOMAIN with +rec", format!("+rec no-such-name.{Z} A")),
        case("AD in query is not echoed", format!("+adflag static.{Z} A")),
        case_by(Rule::CdEitherWay, "CD in query", format!("+cdflag static.{Z} A")),
        // Apex data and additional processing.
        case("apex SOA", format!("{Z} SOA")),
        case("apex NS + glue", format!("{Z} NS")),
        case("apex MX + addresses", format!("{Z} MX")),
        case("apex TXT", format!("{Z} TXT")),
        case("apex CAA", format!("{Z} CAA")),
        case("SRV + target address", format!("_sip._udp.{Z} SRV")),
        case("PTR", format!("ptr.{Z} PTR")),
        case("A of MX target", format!("mail2.{Z} A")),
        case("NS host AAAA", format!("ns1.{Z} AAAA")),
        // Negative answers.
        case("NXDOMAIN + SOA", format!("no-such-name.{Z} A")),
        case("NXDOMAIN two labels deep", format!("a.b.no-such-name.{Z} TXT")),
        case("NODATA + SOA", format!("static.{Z} MX")),
        case("NODATA apex AAAA", format!("{Z} AAAA")),
        // Outside every zone.
        case("REFUSED other domain", "example.com A"),
        case("REFUSED parent of zone", "example.test A"),
        case("REFUSED root NS", ". NS"),
        case("REFUSED class CH", format!("static.{Z} CH A")),
        // CNAME.
        case("CNAME chain in zone A", format!("chain.{Z} A")),
        case("CNAME chain in zone AAAA", format!("chain.{Z} AAAA")),
        case("CNAME asked for itself", format!("alias.{Z} CNAME")),
        case("CNAME to NODATA target", format!("alias.{Z} MX")),
        case("CNAME out of zone", format!("external.{Z} A")),
        case("CNAME dangling", format!("dangling.{Z} A")),
        // Wildcards (RFC 4592).
        case("wildcard synthesis", format!("foo.wild.{Z} A")),
        case("wildcard several labels deep", format!("a.b.c.wild.{Z} A")),
        case("wildcard TXT", format!("foo.wild.{Z} TXT")),
        case("NODATA at wildcard", format!("foo.wild.{Z} MX")),
        case("existing name not synthesized", format!("exists.wild.{Z} A")),
        case("existing name NODATA, no synthesis", format!("exists.wild.{Z} TXT")),
        case("name below an existing name", format!("below.exists.wild.{Z} A")),
        case("wildcard's empty parent", format!("wild.{Z} A")),
        case("the wildcard owner itself", format!("*.wild.{Z} A")),
        // Empty non-terminals.
        case("ENT one level", format!("deep.ent.{Z} A")),
        case("ENT two levels", format!("ent.{Z} TXT")),
        case("host below ENT", format!("host.deep.ent.{Z} A")),
        case("NXDOMAIN below ENT", format!("nope.deep.ent.{Z} A")),
        // Delegation to the child `sub`.
        case("referral: NS at the cut", format!("sub.{Z} NS")),
        case("referral: A at the cut", format!("sub.{Z} A")),
        case("referral: name below the cut", format!("www.sub.{Z} A")),
        case("referral: two labels below", format!("a.b.sub.{Z} AAAA")),
        case("referral: glue name itself", format!("ns1.sub.{Z} A")),
        case("DS at the cut (parent side)", format!("sub.{Z} DS")),
        // EDNS.
        case("EDNS echo", format!("+edns=0 static.{Z} A")),
        case("no EDNS", format!("+noedns static.{Z} A")),
        case("DO bit echoed", format!("+dnssec static.{Z} A")),
        case("DO on NXDOMAIN", format!("+dnssec no-such-name.{Z} A")),
        case("BADVERS", format!("+edns=1 +noednsnegotiation static.{Z} A")),
        // Size and transports.
        case("big TXT fits EDNS 1232", format!("big.{Z} TXT")),
        case("big TXT, no EDNS: TC", format!("+noedns +ignore big.{Z} TXT")),
        case("big TXT, bufsize 512: TC", format!("+bufsize=512 +ignore big.{Z} TXT")),
        case("big TXT over TCP", format!("+tcp +noedns big.{Z} TXT")),
        case("TCP A", format!("+tcp static.{Z} A")),
        case("TCP NXDOMAIN", format!("+tcp no-such-name.{Z} A")),
        case("TCP referral", format!("+tcp www.sub.{Z} A")),
        // Case is preserved, matching is not case-sensitive.
        case("mixed case", "StAtIc.GsLb.ExAmPlE.TeSt A"),
        case("mixed case wildcard", "FoO.WiLd.GSLB.example.TEST A"),
        case_by(Rule::CaseOutsideAnswer, "mixed case NXDOMAIN", "NoNe.GsLb.ExAmPlE.TeSt A"),
        case_by(Rule::CaseOutsideAnswer, "mixed case referral", "WWW.SUB.gslb.example.test A"),
        case_by(Rule::CaseOutsideAnswer, "mixed case MX + additional", "GSLB.EXAMPLE.TEST MX"),
        // From the included master file.
        case("included A", format!("legacy.{Z} A")),
        case("included AAAA", format!("legacy.{Z} AAAA")),
        case("included TXT", format!("info.{Z} TXT")),
        // ANY.
        case_by(Rule::Any, "ANY at a name with A+AAAA", format!("static.{Z} ANY")),
        case_by(Rule::Any, "ANY at the apex", format!("{Z} ANY")),
        case_by(Rule::Any, "ANY at the apex over TCP", format!("+tcp {Z} ANY")),
        case_by(Rule::Any, "ANY synthesized from wildcard", format!("foo.wild.{Z} ANY")),
        case("ANY at an empty non-terminal", format!("deep.ent.{Z} ANY")),
        case("ANY at a missing name", format!("nothing.{Z} ANY")),
        case("ANY below the cut: referral", format!("www.sub.{Z} ANY")),
        // Opcodes.
        case("opcode STATUS", format!("+opcode=status static.{Z} A")),
        case("opcode 15", format!("+opcode=15 static.{Z} A")),
    ]
}

fn norm(lines: &[String]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    v.sort();
    v
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn lower(v: Vec<String>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().map(|l| l.to_ascii_lowercase()).collect();
    v.sort();
    v
}

/// Owner name kept as spelled, the rest of the line lowercased.
fn owner_as_is(v: Vec<String>) -> Vec<String> {
    let mut v: Vec<String> = v
        .into_iter()
        .map(|l| match l.split_once(' ') {
            Some((owner, rest)) => format!("{owner} {}", rest.to_ascii_lowercase()),
            None => l,
        })
        .collect();
    v.sort();
    v
}

/// One RRset's (owner, type) if every line of `lines` has the same.
fn single_rrset(lines: &[String]) -> Option<(String, String)> {
    let keys: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_ascii_lowercase(), f.get(3).unwrap_or(&"").to_string())
        })
        .collect();
    let first = keys.first()?.clone();
    keys.iter().all(|k| *k == first).then_some(first)
}

/// The differences between two answers under `rule`, empty when they agree.
/// `ask_m` / `ask_k` ask the same server again (for the ANY rule).
fn differences(
    rule: Rule,
    args: &str,
    m: &Dig,
    k: &Dig,
    ask_m: &dyn Fn(&str) -> Dig,
    ask_k: &dyn Fn(&str) -> Dig,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug, same: bool| {
        if !same {
            diffs.push(format!("{what}: meridian {a:?} / knot {b:?}"));
        }
    };
    check("rcode", &m.status, &k.status, m.status == k.status);
    let drop_cd = |f: &[String]| -> Vec<String> {
        sorted(f).into_iter().filter(|x| !(rule == Rule::CdEitherWay && x == "cd")).collect()
    };
    let (mf, kf) = (drop_cd(&m.flags), drop_cd(&k.flags));
    check("flags", &mf, &kf, mf == kf);
    check("edns", &m.edns, &k.edns, m.edns == k.edns);
    let (mq, kq) = (norm(&m.question), norm(&k.question));
    check("question", &mq, &kq, mq == kq);
    match rule {
        Rule::Full | Rule::CdEitherWay => {
            let (ma, ka) = (norm(&m.answer), norm(&k.answer));
            check("answer", &ma, &ka, ma == ka);
            let (ma, ka) = (norm(&m.authority), norm(&k.authority));
            check("authority", &ma, &ka, ma == ka);
            let (ma, ka) = (norm(&m.additional), norm(&k.additional));
            check("additional", &ma, &ka, ma == ka);
        }
        Rule::CaseOutsideAnswer => {
            let (ma, ka) = (owner_as_is(norm(&m.answer)), owner_as_is(norm(&k.answer)));
            check("answer (owner as asked, RDATA any case)", &ma, &ka, ma == ka);
            let (ma, ka) = (lower(norm(&m.authority)), lower(norm(&k.authority)));
            check("authority (any case)", &ma, &ka, ma == ka);
            let (ma, ka) = (lower(norm(&m.additional)), lower(norm(&k.additional)));
            check("additional (any case)", &ma, &ka, ma == ka);
        }
        Rule::Any => {
            let (ma, ka) = (norm(&m.authority), norm(&k.authority));
            check("authority", &ma, &ka, ma == ka);
            let qname = m.question.first().and_then(|q| q.split_whitespace().next()).unwrap_or("").to_ascii_lowercase();
            for (who, d, ask) in [("meridian", m, ask_m), ("knot", k, ask_k)] {
                match single_rrset(&d.answer) {
                    None => diffs.push(format!("{who}: ANY answer is not one non-empty RRset: {:?}", d.answer)),
                    Some((owner, rtype)) => {
                        if owner != qname {
                            diffs.push(format!("{who}: ANY answer owned by {owner}, asked {qname}"));
                        }
                        let direct = ask(&args.replace("ANY", &rtype));
                        if norm(&direct.answer) != norm(&d.answer) {
                            diffs.push(format!(
                                "{who}: ANY answer {:?} is not the {rtype} RRset {:?}",
                                norm(&d.answer),
                                norm(&direct.answer)
                            ));
                        }
                    }
                }
            }
        }
    }
    diffs
}

#[test]
fn meridian_and_knot_answer_the_static_zone_alike() {
    let zones = meridian::zone::load_zones(&repo().join("zones")).expect("load shipped zones");
    let zone = zones
        .zones
        .iter()
        .find(|z| z.origin.to_ascii().trim_end_matches('.').eq_ignore_ascii_case(Z))
        .expect("zone gslb.example.test in zones/");
    let master = zone.to_master_file();
    // Every record Meridian loaded is in Knot's file, once (SOA first).
    let loaded = zone
        .nodes
        .values()
        .flat_map(|n| &n.rrsets)
        .filter(|s| s.rtype != RecordType::SOA)
        .map(|s| s.rdata.len())
        .sum::<usize>()
        + 1;
    let lines: Vec<&str> = master.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('$')).collect();
    assert_eq!(lines.len(), loaded, "master file for Knot:\n{master}");
    assert_eq!(lines[0].split_whitespace().nth(3), Some("SOA"), "SOA first:\n{master}");
    let Some(knot) = KnotServer::start(Z, &master) else {
        skip_or_fail("knotd not installed (Debian package `knot`)");
        return;
    };
    let meridian = Server::start();

    let cases = cases();
    assert!(cases.len() >= 40, "at least 40 queries");
    let mut failures = Vec::new();
    eprintln!("{:<36} {:<54} {:>19}  match", "case", "query", "meridian/knot");
    for c in &cases {
        let m = meridian.dig(&c.args);
        let k = knot.dig(&c.args);
        assert!(!k.status.is_empty(), "knot gave no answer to `{}`:\n{}", c.args, k.raw);
        let diffs = differences(c.rule, &c.args, &m, &k, &|a| meridian.dig(a), &|a| knot.dig(a));
        eprintln!(
            "{:<36} {:<54} {:>19}  {}",
            c.what,
            c.args,
            format!("{}/{}", if m.status.is_empty() { "-" } else { &m.status }, k.status),
            if diffs.is_empty() { "ok" } else { "DIFF" }
        );
        if !diffs.is_empty() {
            failures.push(format!(
                "== {} (dig {})\n  {}\n-- meridian:\n{}\n-- knot:\n{}",
                c.what,
                c.args,
                diffs.join("\n  "),
                m.raw,
                k.raw
            ));
        }
    }
    eprintln!("{} queries compared, {} differ", cases.len(), failures.len());
    assert!(failures.is_empty(), "Meridian and Knot differ:\n{}", failures.join("\n"));
}
