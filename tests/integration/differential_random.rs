//! A seeded, randomized differential test: a generated master file full of
//! tricky but valid syntax and zone shapes, served by Knot (as its zone file)
//! and by Meridian (through `include`), then 1,500 random queries sent to
//! both as raw UDP messages and compared answer by answer.
//!
//! The seed is printed; `MERIDIAN_DIFF_SEED=N` replays one run,
//! `MERIDIAN_DIFF_DUMP=FILE` writes the generated zone there, and
//! `MERIDIAN_DIFF_ALL=1` shows every difference, not the first 15. The comparison
//! rules and the differences both servers may rightly show are in
//! `differences` below, each with its RFC reason.

use crate::common::*;
use crate::knot::KnotServer;
use hickory_proto::op::Message;
use hickory_proto::rr::Record;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const QUERIES: usize = 1500;

/// splitmix64: small, seedable, good enough to pick test cases.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True `pct` times in 100.
    fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn word(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len).map(|_| *self.pick(alphabet)).collect()
    }
    /// `min` to `min + spread - 1` letters and digits.
    fn word_of(&mut self, min: usize, spread: usize) -> Vec<u8> {
        let len = min + self.below(spread);
        self.word(len, LDH)
    }
}

const LDH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A domain name as labels, most specific first, root left out.
type Name = Vec<Vec<u8>>;

fn name(text: &str) -> Name {
    text.trim_end_matches('.').split('.').filter(|l| !l.is_empty()).map(|l| l.as_bytes().to_vec()).collect()
}

fn under(rel: &str, origin: &Name) -> Name {
    let mut n = name(rel);
    n.extend(origin.iter().cloned());
    n
}

fn wire_len(n: &Name) -> usize {
    n.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

fn ends_with(n: &Name, suffix: &Name) -> bool {
    n.len() >= suffix.len() && n[n.len() - suffix.len()..].iter().zip(suffix).all(|(a, b)| a.eq_ignore_ascii_case(b))
}

#[derive(Clone)]
enum Rdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// NS, CNAME, PTR.
    Target(Name),
    Mx(u16, Name),
    Srv(u16, u16, u16, Name),
    Txt(Vec<Vec<u8>>),
    Caa(u8, &'static str, &'static str),
    Ds(u16, u8, u8, String),
}

#[derive(Clone)]
struct Rec {
    owner: Name,
    ttl: u32,
    rtype: &'static str,
    data: Rdata,
}

/// Renders records as master-file text, in a plain style (what Meridian's
/// fast reader takes) or a tricky one (escapes, parentheses, `$ORIGIN`
/// changes: hickory's parser).
struct Writer<'r> {
    rng: &'r mut Rng,
    tricky: bool,
    origin: Name,
    ttl: u32,
    last_owner: Option<Name>,
    out: String,
}

impl Writer<'_> {
    fn label(&mut self, l: &[u8]) -> String {
        let mut s = String::new();
        for &b in l {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    s.push('\\');
                    s.push(b as char);
                }
                b'!'..=b'~' if !(self.tricky && self.rng.chance(8)) => s.push(b as char),
                _ => s.push_str(&format!("\\{b:03}")),
            }
        }
        s
    }

    /// `@`, relative to the `$ORIGIN` in force, or absolute.
    fn name(&mut self, n: &Name, owner: bool) -> String {
        let rel = ends_with(n, &self.origin) && self.rng.chance(70);
        // The fast reader takes `@` as an owner only.
        if rel && n.len() == self.origin.len() && (owner || self.tricky) {
            return "@".into();
        }
        let upto = if rel && n.len() > self.origin.len() { n.len() - self.origin.len() } else { n.len() };
        let mut labels = Vec::new();
        for l in &n[..upto] {
            labels.push(self.label(l));
        }
        let mut s = labels.join(".");
        if upto == n.len() {
            s.push('.');
        }
        // Names in RDATA in another case (RFC 4343: the same name).
        if !owner && self.rng.chance(10) {
            s = s.to_ascii_uppercase();
        }
        s
    }

    fn character_string(&mut self, bytes: &[u8]) -> String {
        let bare = !bytes.is_empty() && bytes.iter().all(|b| b.is_ascii_alphanumeric());
        if bare && self.rng.chance(30) {
            return self.label(bytes);
        }
        let mut s = String::from("\"");
        for &b in bytes {
            match b {
                b'"' | b'\\' => {
                    s.push('\\');
                    s.push(b as char);
                }
                b' '..=b'~' if !(self.tricky && self.rng.chance(5)) => s.push(b as char),
                _ => s.push_str(&format!("\\{b:03}")),
            }
        }
        s.push('"');
        s
    }

    fn directive(&mut self, text: String) {
        self.out.push_str(&text);
        self.out.push('\n');
        self.last_owner = None;
    }

    fn record(&mut self, r: &Rec) {
        let mut line = String::new();
        if self.last_owner.as_ref() == Some(&r.owner) && self.rng.chance(50) {
            line.push_str(if self.rng.chance(50) { "\t" } else { "   " });
        } else {
            // The same name in another case is the same name.
            let mut owner = r.owner.clone();
            if self.rng.chance(10) {
                owner[0] = owner[0].to_ascii_uppercase();
            }
            line += &self.name(&owner, true);
            line.push(' ');
        }
        self.last_owner = Some(r.owner.clone());
        let ttl = if r.ttl != self.ttl || self.rng.chance(40) {
            Some(match r.ttl {
                t if t % 3600 == 0 && self.rng.chance(50) => format!("{}h", t / 3600),
                t if t % 60 == 0 && self.rng.chance(30) => format!("{}m", t / 60),
                t => t.to_string(),
            })
        } else {
            None
        };
        let class = self.rng.chance(60).then_some(if self.rng.chance(20) { "in" } else { "IN" });
        let mut head = vec![];
        head.extend(ttl);
        head.extend(class.map(String::from));
        if head.len() == 2 && self.rng.chance(30) {
            head.swap(0, 1);
        }
        head.push(if self.rng.chance(10) { r.rtype.to_ascii_lowercase() } else { r.rtype.to_string() });
        line += &head.join(" ");
        let parts: Vec<String> = match &r.data {
            Rdata::A(a) => vec![a.to_string()],
            Rdata::Aaaa(a) => vec![a.to_string()],
            Rdata::Target(t) => vec![self.name(t, false)],
            Rdata::Mx(p, t) => vec![p.to_string(), self.name(t, false)],
            Rdata::Srv(p, w, port, t) => vec![p.to_string(), w.to_string(), port.to_string(), self.name(t, false)],
            Rdata::Txt(strings) => strings.iter().map(|s| self.character_string(s)).collect(),
            Rdata::Caa(flags, tag, value) => vec![flags.to_string(), tag.to_string(), format!("\"{value}\"")],
            Rdata::Ds(tag, alg, dt, hex) => vec![tag.to_string(), alg.to_string(), dt.to_string(), hex.clone()],
        };
        if self.tricky && parts.len() > 1 && self.rng.chance(40) {
            // Parentheses across lines, with comments inside.
            line += " (";
            for (i, p) in parts.iter().enumerate() {
                line += if i % 2 == 0 { "\n\t\t" } else { " " };
                line += p;
                if self.rng.chance(30) {
                    line += " ; part ( \" ;";
                    line += "\n\t\t";
                }
            }
            line += " )";
        } else {
            for p in &parts {
                line.push(' ');
                line += p;
            }
        }
        if self.rng.chance(10) {
            line += " ; a comment \"with quotes\" ( and a parenthesis";
        }
        self.out.push_str(&line);
        self.out.push('\n');
    }
}

/// Whether the plain style can write `r` (no escapes needed).
fn plain(r: &Rec) -> bool {
    let ok_name =
        |n: &Name| n.iter().all(|l| l.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'*')));
    let ok_data = match &r.data {
        Rdata::Target(t) | Rdata::Mx(_, t) | Rdata::Srv(_, _, _, t) => ok_name(t),
        Rdata::Txt(s) => {
            s.iter().all(|s| !s.is_empty() && s.iter().all(|b| (b' '..=b'~').contains(b) && !matches!(b, b'"' | b'\\')))
        }
        _ => true,
    };
    ok_name(&r.owner) && ok_data
}

/// The generated zone: its master files and the names worth asking about.
pub(crate) struct Zone {
    origin: Name,
    ttl: u32,
    soa: String,
    /// First read by the fast reader, second by hickory's parser.
    pub(crate) files: [String; 2],
    names: Vec<Name>,
}

pub(crate) fn generate(rng: &mut Rng) -> Zone {
    let o = name("dt.example");
    let ttl = *rng.pick(&[300u32, 3600, 7200]);
    let minimum = *rng.pick(&[60u32, 300, 900]);
    let soa = format!("ns1.dt.example. hostmaster.dt.example. 2026120301 7200 3600 1209600 {minimum}");
    let mut recs: Vec<Rec> = Vec::new();
    let ttl_of = |rng: &mut Rng| if rng.chance(50) { ttl } else { *rng.pick(&[60u32, 300, 3600, 86400]) };
    let set = |recs: &mut Vec<Rec>, owner: &Name, rtype: &'static str, data: Vec<Rdata>, rng: &mut Rng| {
        let t = ttl_of(rng);
        for d in data {
            recs.push(Rec { owner: owner.clone(), ttl: t, rtype, data: d });
        }
    };
    let n = |rel: &str| under(rel, &o);
    let out = |s: &str| name(s);
    let v4 = |rng: &mut Rng| Rdata::A(Ipv4Addr::new(192, 0, 2, rng.below(254) as u8 + 1));
    let v6 = |rng: &mut Rng| {
        Rdata::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, rng.below(9) as u16, rng.below(65535) as u16))
    };
    let txt_pool: [&[u8]; 11] = [
        b"hello world",
        b"semi;colon",
        b"v=spf1 -all",
        b"q\"uote",
        b"back\\slash",
        b"(paren)",
        b"tab\\t here",
        b"{\"json\": 1}",
        b"",
        b"$ORIGIN @ not a directive",
        "caf\u{e9} \u{65e5}\u{672c}".as_bytes(),
    ];
    let txt = |rng: &mut Rng| -> Rdata {
        let k = 1 + rng.below(3);
        Rdata::Txt(
            (0..k).map(|_| if rng.chance(20) { rng.word_of(1, 40) } else { rng.pick(&txt_pool).to_vec() }).collect(),
        )
    };

    // Apex.
    set(&mut recs, &o, "NS", vec![Rdata::Target(n("ns1")), Rdata::Target(out("ns2.out-of-zone.net"))], rng);
    set(&mut recs, &n("ns1"), "A", vec![Rdata::A(Ipv4Addr::new(192, 0, 2, 53))], rng);
    set(&mut recs, &n("ns1"), "AAAA", vec![Rdata::Aaaa("2001:db8::53".parse().unwrap())], rng);
    set(&mut recs, &o, "MX", vec![Rdata::Mx(10, n("mail")), Rdata::Mx(20, out("mx.other.net"))], rng);
    set(&mut recs, &n("mail"), "A", vec![v4(rng), v4(rng)], rng);
    let apex_txt = vec![txt(rng), txt(rng)];
    set(&mut recs, &o, "TXT", apex_txt, rng);
    set(
        &mut recs,
        &o,
        "CAA",
        vec![
            Rdata::Caa(0, "issue", "ca.example.net"),
            Rdata::Caa(0, "issuewild", ";"),
            Rdata::Caa(128, "iodef", "mailto:security@example.net"),
        ],
        rng,
    );
    if rng.chance(50) {
        set(&mut recs, &o, "A", vec![v4(rng)], rng);
    }
    // A wildcard at the apex swallows every NXDOMAIN: only sometimes.
    if rng.chance(20) {
        set(&mut recs, &n("*"), "TXT", vec![txt(rng)], rng);
    }

    // Random hosts.
    let mut hosts: Vec<Name> = Vec::new();
    for i in 0..(15 + rng.below(20)) {
        let mut label = b"h".to_vec();
        label.extend(rng.word_of(0, 8));
        label.extend(format!("-{i}").bytes());
        let mut h = vec![label];
        if rng.chance(20) {
            h.push(rng.word_of(1, 6));
        }
        h.extend(o.iter().cloned());
        hosts.push(h);
    }
    for h in hosts.clone() {
        if rng.chance(70) {
            let k = 1 + rng.below(3);
            set(&mut recs, &h, "A", (0..k).map(|_| v4(rng)).collect(), rng);
        }
        if rng.chance(40) {
            set(&mut recs, &h, "AAAA", vec![v6(rng)], rng);
        }
        if rng.chance(40) {
            set(&mut recs, &h, "TXT", vec![txt(rng)], rng);
        }
        if rng.chance(20) {
            let t = rng.pick(&hosts).clone();
            set(&mut recs, &h, "MX", vec![Rdata::Mx(rng.below(50) as u16, t)], rng);
        }
        if rng.chance(10) {
            set(&mut recs, &h, "PTR", vec![Rdata::Target(out("host.example.net"))], rng);
        }
    }
    // Duplicates of some records (the same RR again is the same RR).
    for _ in 0..5 {
        let r = rng.pick(&recs).clone();
        recs.push(r);
    }

    // Escapes in names. hickory's parser refuses other bytes in labels
    // (space, `\\`, `(`, non-ASCII), even escaped, which RFC 1035 allows.
    for (rel, label) in [("dot", &b"a.b"[..]), ("esc", b"Abc"), ("dots", b"x..y.")] {
        let mut nm = vec![label.to_vec()];
        nm.extend(n(rel));
        set(&mut recs, &nm, "A", vec![v4(rng)], rng);
    }
    // `a.b.dot` as two labels is another name than `a\.b.dot`.
    set(&mut recs, &n("b.dot"), "TXT", vec![txt(rng)], rng);

    // SRV and additional processing.
    let srv_target = rng.pick(&hosts).clone();
    set(
        &mut recs,
        &n("_sip._tcp"),
        "SRV",
        vec![
            Rdata::Srv(0, 5, 5060, srv_target),
            Rdata::Srv(1, 0, 5060, n("mail")),
            Rdata::Srv(2, 0, 5060, out("sip.other.net")),
            Rdata::Srv(3, 0, 5060, n("ns.sub1")),
        ],
        rng,
    );

    // Empty non-terminals.
    set(&mut recs, &n("x.y.ent"), "A", vec![v4(rng)], rng);
    set(&mut recs, &n("deep.a.b.c.ent2"), "TXT", vec![txt(rng)], rng);

    // Wildcards at several depths.
    set(&mut recs, &n("*.w1"), "A", vec![v4(rng), v4(rng)], rng);
    set(&mut recs, &n("*.w1"), "TXT", vec![txt(rng)], rng);
    set(&mut recs, &n("exists.w1"), "AAAA", vec![v6(rng)], rng);
    set(&mut recs, &n("*.a.w2"), "MX", vec![Rdata::Mx(5, n("mail"))], rng);
    set(&mut recs, &n("*.w2"), "A", vec![v4(rng)], rng);
    set(&mut recs, &n("*.*.w3"), "A", vec![v4(rng)], rng);
    set(&mut recs, &n("*.wc"), "CNAME", vec![Rdata::Target(n("mail"))], rng);
    set(&mut recs, &n("*.wd"), "CNAME", vec![Rdata::Target(n("c1"))], rng);
    set(&mut recs, &n("*.x.y.ent"), "TXT", vec![txt(rng)], rng);

    // CNAME chains in and out of the zone.
    let last = rng.pick(&hosts).clone();
    set(&mut recs, &n("c1"), "CNAME", vec![Rdata::Target(n("c2"))], rng);
    set(&mut recs, &n("c2"), "CNAME", vec![Rdata::Target(n("c3"))], rng);
    set(&mut recs, &n("c3"), "CNAME", vec![Rdata::Target(last)], rng);
    set(&mut recs, &n("cout"), "CNAME", vec![Rdata::Target(out("www.example.net"))], rng);
    set(&mut recs, &n("cdang"), "CNAME", vec![Rdata::Target(n("nothing-here"))], rng);
    set(&mut recs, &n("cwild"), "CNAME", vec![Rdata::Target(n("foo.w1"))], rng);
    set(&mut recs, &n("cwc"), "CNAME", vec![Rdata::Target(n("bar.wc"))], rng);
    set(&mut recs, &n("cloop1"), "CNAME", vec![Rdata::Target(n("cloop2"))], rng);
    set(&mut recs, &n("cloop2"), "CNAME", vec![Rdata::Target(n("cloop1"))], rng);
    set(&mut recs, &n("cself"), "CNAME", vec![Rdata::Target(n("cself"))], rng);
    set(&mut recs, &n("cdeleg"), "CNAME", vec![Rdata::Target(n("www.sub1"))], rng);
    set(&mut recs, &n("cent"), "CNAME", vec![Rdata::Target(n("y.ent"))], rng);
    set(&mut recs, &n("capex"), "CNAME", vec![Rdata::Target(o.clone())], rng);

    // Delegations: in-bailiwick glue, out-of-bailiwick NS, an in-zone
    // sibling as NS, sibling glue, a cut below an empty non-terminal, DS.
    set(&mut recs, &n("sub1"), "NS", vec![Rdata::Target(n("ns.sub1")), Rdata::Target(out("ns2.out-of-zone.net"))], rng);
    set(&mut recs, &n("ns.sub1"), "A", vec![v4(rng)], rng);
    set(&mut recs, &n("ns.sub1"), "AAAA", vec![v6(rng)], rng);
    set(
        &mut recs,
        &n("sub1"),
        "DS",
        vec![
            Rdata::Ds(60485, 5, 1, "2BB183AF5F22588179A53B0A98631FAD1A292118".into()),
            Rdata::Ds(12345, 13, 2, "3e6f4ad3b2c8f1a0e5d2c7b9a4f1e0d3c6b9a2f5e8d1c4b7a0f3e6d9c2b5a8f1".into()),
        ],
        rng,
    );
    set(&mut recs, &n("sub2"), "NS", vec![Rdata::Target(n("ns1"))], rng);
    set(&mut recs, &n("sub3"), "NS", vec![Rdata::Target(n("ns.sub1")), Rdata::Target(n("ns.sub3"))], rng);
    set(&mut recs, &n("ns.sub3"), "A", vec![v4(rng)], rng);
    set(&mut recs, &n("deeper.ns.sub3"), "A", vec![v4(rng)], rng);
    set(&mut recs, &n("cut.ent3"), "NS", vec![Rdata::Target(out("ns.elsewhere.org"))], rng);
    set(&mut recs, &n("d.w1"), "NS", vec![Rdata::Target(out("ns.elsewhere.org"))], rng);

    // Big sets, for truncation.
    set(&mut recs, &n("big"), "TXT", (0..6).map(|i| Rdata::Txt(vec![vec![b'a' + i; 200]])).collect(), rng);
    set(&mut recs, &n("many"), "A", (1..=40).map(|i| Rdata::A(Ipv4Addr::new(198, 51, 100, i))).collect(), rng);

    // A referral whose glue does not fit small sizes, MX whose addresses do not.
    let glue: Vec<Name> = (0..10).map(|i| n(&format!("name-server-{i}.sub4"))).collect();
    set(&mut recs, &n("sub4"), "NS", glue.iter().map(|g| Rdata::Target(g.clone())).collect(), rng);
    for g in &glue {
        set(&mut recs, g, "A", vec![v4(rng)], rng);
        set(&mut recs, g, "AAAA", vec![v6(rng)], rng);
    }
    let targets: Vec<Rdata> = (0..10).map(|i| Rdata::Mx(i, n(&format!("mail-exchanger-{i}")))).collect();
    set(&mut recs, &n("mxmany"), "MX", targets, rng);
    for i in 0..10 {
        set(&mut recs, &n(&format!("mail-exchanger-{i}")), "A", vec![v4(rng), v4(rng)], rng);
        set(&mut recs, &n(&format!("mail-exchanger-{i}")), "AAAA", vec![v6(rng)], rng);
    }

    // Names near the 255-byte limit (12 bytes are the origin's).
    let mut long: Name = (0..3).map(|_| rng.word(63, LDH)).collect();
    long.push(rng.word_of(48, 3));
    long.extend(o.iter().cloned());
    set(&mut recs, &long, "A", vec![v4(rng)], rng);

    // Split the records between the files and shuffle each.
    let mut files = [Vec::new(), Vec::new()];
    for r in recs.iter() {
        let i = if plain(r) && rng.chance(60) { 0 } else { 1 };
        files[i].push(r.clone());
    }
    let mut texts = [String::new(), String::new()];
    for (i, list) in files.iter_mut().enumerate() {
        // A few runs of one name stay together, for blank owners.
        for k in (1..list.len()).rev() {
            if rng.chance(70) {
                let j = rng.below(k + 1);
                list.swap(k, j);
            }
        }
        let tricky = i == 1;
        let mut w = Writer { rng, tricky, origin: o.clone(), ttl, last_owner: None, out: String::new() };
        w.directive(format!("; generated zone, file {i}"));
        w.directive("$ORIGIN dt.example.".into());
        w.directive(format!("$TTL {ttl}"));
        if i == 0 {
            w.directive(format!("@ {ttl} IN SOA {soa}"));
        }
        for r in list.iter() {
            // Always absolute: Knot refuses a relative `$ORIGIN` (BIND and
            // Meridian take it relative to the origin in force).
            if tricky && w.rng.chance(5) {
                let choices =
                    ["dt.example.", "w1.dt.example.", "sub1.dt.example.", "ent.dt.example.", "A.W2.dt.example."];
                let to = w.rng.pick(&choices).to_string();
                w.origin = name(&to);
                w.directive(format!("$ORIGIN {to}"));
            }
            if tricky && w.rng.chance(4) {
                let t = *w.rng.pick(&[60u32, 300, 3600, 86400, ttl]);
                w.ttl = t;
                w.directive(format!("$TTL {t}"));
            }
            w.record(r);
        }
        texts[i] = w.out;
    }

    let mut names: Vec<Name> = recs.iter().map(|r| r.owner.clone()).collect();
    names.extend([n("y.ent"), n("ent"), n("a.b.c.ent2"), n("foo.w1"), n("ent3"), n("w3"), n("nothing-here")]);
    names.sort();
    names.dedup();
    // The big answers, more often.
    for _ in 0..3 {
        names.extend([n("big"), n("many"), n("www.sub4"), n("mxmany"), n("sub4")]);
    }
    Zone { origin: o, ttl, soa, files: texts, names }
}

/// One query, as sent.
#[derive(Clone, Debug)]
pub(crate) struct Q {
    pub(crate) name: Name,
    pub(crate) qtype: u16,
    rd: bool,
    cd: bool,
    ad: bool,
    edns: Option<Edns>,
    tcp: bool,
}

#[derive(Clone, Debug)]
struct Edns {
    version: u8,
    payload: u16,
    dnssec_ok: bool,
    cookie: Option<[u8; 8]>,
    ecs: Option<[u8; 3]>,
}

const TYPES: &[(u16, &str)] = &[
    (1, "A"),
    (28, "AAAA"),
    (16, "TXT"),
    (15, "MX"),
    (33, "SRV"),
    (2, "NS"),
    (6, "SOA"),
    (5, "CNAME"),
    (43, "DS"),
    (257, "CAA"),
    (12, "PTR"),
    (255, "ANY"),
    (65000, "TYPE65000"),
    (35, "NAPTR"),
    (52, "TLSA"),
    (48, "DNSKEY"),
];

pub(crate) fn type_name(t: u16) -> String {
    TYPES.iter().find(|(v, _)| *v == t).map_or(format!("TYPE{t}"), |(_, n)| n.to_string())
}

impl Q {
    fn wire(&self, id: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.push(u8::from(self.rd));
        m.push((u8::from(self.ad) << 5) | (u8::from(self.cd) << 4));
        m.extend([0, 1, 0, 0, 0, 0, 0, u8::from(self.edns.is_some())]);
        for l in &self.name {
            m.push(l.len() as u8);
            m.extend(l);
        }
        m.push(0);
        m.extend(self.qtype.to_be_bytes());
        m.extend([0, 1]);
        if let Some(e) = &self.edns {
            let mut opts = Vec::new();
            if let Some(c) = e.cookie {
                opts.extend([0, 10, 0, 8]);
                opts.extend(c);
            }
            if let Some(a) = e.ecs {
                opts.extend([0, 8, 0, 7, 0, 1, 24, 0]);
                opts.extend(a);
            }
            m.push(0);
            m.extend(41u16.to_be_bytes());
            m.extend(e.payload.to_be_bytes());
            m.extend([0, e.version, if e.dnssec_ok { 0x80 } else { 0 }, 0]);
            m.extend((opts.len() as u16).to_be_bytes());
            m.extend(opts);
        }
        m
    }

    /// The same query as dig arguments, to replay it by hand.
    fn dig_args(&self) -> String {
        let mut s = presentation(&self.name);
        s += &format!(" {}", type_name(self.qtype));
        s += if self.rd { " +rec" } else { " +norec" };
        if self.tcp {
            s += " +tcp";
        }
        if self.cd {
            s += " +cdflag";
        }
        if self.ad {
            s += " +adflag";
        }
        match &self.edns {
            None => s += " +noedns",
            Some(e) => {
                s += &format!(" +edns={} +noednsnegotiation +bufsize={}", e.version, e.payload);
                if e.dnssec_ok {
                    s += " +dnssec";
                }
                if let Some(c) = e.cookie {
                    s += &format!(" +cookie={}", c.iter().map(|b| format!("{b:02x}")).collect::<String>());
                }
                if let Some(a) = e.ecs {
                    s += &format!(" +subnet={}.{}.{}.0/24", a[0], a[1], a[2]);
                }
            }
        }
        s
    }

    fn has_upper(&self) -> bool {
        self.name.iter().flatten().any(|b| b.is_ascii_uppercase())
    }
}

pub(crate) fn presentation(n: &Name) -> String {
    if n.is_empty() {
        return ".".into();
    }
    let mut s = String::new();
    for l in n {
        for &b in l {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    s.push('\\');
                    s.push(b as char);
                }
                b'!'..=b'~' => s.push(b as char),
                _ => s.push_str(&format!("\\{b:03}")),
            }
        }
        s.push('.');
    }
    s
}

/// Names outside the zone (the root, its parent, a sibling, others).
const OUTSIDE: [&str; 6] = ["example", "", "com", "dt.example2", "other.example", "example.net"];

pub(crate) fn random_query(rng: &mut Rng, zone: &Zone) -> Q {
    let mut n: Name = loop {
        let base = rng.pick(&zone.names).clone();
        let n = match rng.below(100) {
            0..=54 => base,
            55..=69 => {
                let mut c = vec![rng.word_of(1, 8)];
                c.extend(base);
                c
            }
            70..=77 => base[1..].to_vec(),
            78..=84 => {
                let mut c = base;
                let l = &mut c[0];
                let i = rng.below(l.len().max(1)).min(l.len().saturating_sub(1));
                if l.is_empty() {
                    l.push(b'q');
                } else {
                    l[i] = if l[i] == b'z' { b'y' } else { b'z' };
                }
                c
            }
            85..=88 => {
                let mut c = base;
                c[0] = b"*".to_vec();
                c
            }
            89..=92 => {
                let mut c = vec![b"*".to_vec(), b"x".to_vec()];
                c.extend(base);
                c
            }
            93..=96 => name(rng.pick::<&str>(&OUTSIDE)),
            _ => zone.origin.clone(),
        };
        if wire_len(&n) <= 255 {
            break n;
        }
    };
    // 0x20: random case on some queries.
    match rng.below(10) {
        0..=2 => n.iter_mut().flatten().for_each(|b| {
            if rng.chance(50) {
                *b = b.to_ascii_uppercase();
            }
        }),
        3 => n.iter_mut().flatten().for_each(|b| *b = b.to_ascii_uppercase()),
        _ => {}
    }
    let qtype = if rng.chance(30) { *rng.pick(&[1u16, 28, 16]) } else { rng.pick(TYPES).0 };
    let edns = rng.chance(80).then(|| {
        let options = rng.chance(25);
        Edns {
            version: if rng.chance(3) { 1 } else { 0 },
            // Options make the answer longer on one side only: with them,
            // sizes where that decides truncation are left out.
            payload: if options {
                *rng.pick(&[1232u16, 4096])
            } else {
                *rng.pick(&[0u16, 1, 511, 512, 513, 600, 800, 1000, 1232, 1400, 4096, 65535])
            },
            dnssec_ok: rng.chance(40),
            cookie: (options && rng.chance(60)).then(|| rng.next().to_be_bytes()),
            ecs: (options && rng.chance(60)).then(|| [198, 51, rng.below(256) as u8]),
        }
    });
    Q { name: n, qtype, rd: rng.chance(30), cd: rng.chance(10), ad: rng.chance(10), edns, tcp: rng.chance(5) }
}

/// What is compared of one response.
#[derive(Debug, PartialEq)]
struct Shown {
    rcode: String,
    flags: Vec<&'static str>,
    /// version, DO, UDP payload; options are not compared (see `differences`).
    edns: Option<(u8, bool, u16)>,
    question: Vec<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

fn lines(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}

fn shown(m: &Message) -> Shown {
    let md = &m.metadata;
    let flags = [
        (md.authoritative, "aa"),
        (md.truncation, "tc"),
        (md.recursion_desired, "rd"),
        (md.recursion_available, "ra"),
        (md.authentic_data, "ad"),
        (md.checking_disabled, "cd"),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
    .collect();
    Shown {
        rcode: format!("{:?}", md.response_code),
        flags,
        edns: m.edns.as_ref().map(|e| (e.version(), e.flags().dnssec_ok, e.max_payload())),
        question: m.queries.iter().map(|q| q.to_string()).collect(),
        answer: lines(&m.answers),
        authority: lines(&m.authorities),
        additional: lines(&m.additionals),
    }
}

/// Ask `to` and wait up to 2 s (once more after a timeout).
fn ask(sock: &UdpSocket, to: SocketAddr, q: &Q, id: u16) -> Result<Message, String> {
    let query = q.wire(id);
    if q.tcp {
        return ask_tcp(to, &query);
    }
    let mut buf = vec![0u8; 65535];
    for _ in 0..2 {
        sock.send_to(&query, to).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match sock.recv_from(&mut buf) {
                Ok((len, from)) if from == to && len >= 2 && buf[..2] == id.to_be_bytes() => {
                    return Message::from_vec(&buf[..len]).map_err(|e| format!("unparseable answer: {e}"));
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    Err("no answer".into())
}

/// One query over a new TCP connection (RFC 7766 framing), 2 s at most.
fn ask_tcp(to: SocketAddr, query: &[u8]) -> Result<Message, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend(query);
    s.write_all(&framed).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(|e| format!("TCP length: {e}"))?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).map_err(|e| format!("TCP answer: {e}"))?;
    Message::from_vec(&buf).map_err(|e| format!("unparseable answer: {e}"))
}

fn lower(v: &[String]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|l| l.to_ascii_lowercase()).collect();
    v.sort();
    v
}

/// Owner as spelled, the rest lowercased.
fn owner_as_is(v: &[String]) -> Vec<String> {
    let mut v: Vec<String> = v
        .iter()
        .map(|l| match l.split_once(' ') {
            Some((owner, rest)) => format!("{owner} {}", rest.to_ascii_lowercase()),
            None => l.clone(),
        })
        .collect();
    v.sort();
    v
}

/// One RRset's (owner, type) if every line has the same.
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

/// How two answers to `q` differ, by the rules of differential_knot.rs:
/// - CD: copied by Meridian, cleared by Knot for an unsigned zone (RFC 4035
///   §3.1.6 allows both for an authority).
/// - Case: with a mixed-case query, Knot's compression points names in RDATA,
///   authority and additional at the question's spelling; names compare
///   without case (RFC 4343 §3). The question and the answer's owners keep
///   the query's spelling on both.
/// - ANY: one RRset of the server's choosing (RFC 8482 §4.1): each answer is
///   one RRset at the query name, the same as asked by type.
/// - Truncated (TC) on both: only the header, EDNS and question (see below).
/// - Additional cut short by size: see the caller (RFC 2181 §9).
/// - EDNS options: Meridian answers cookies (RFC 7873) and echoes ECS
///   (RFC 7871 §7.2.1); Knot, without those modules, ignores both, as a
///   server that does not implement them must. Their presence is not
///   compared; queries with options use sizes where they cannot decide TC.
fn differences(q: &Q, m: &Shown, k: &Shown, again: &mut dyn FnMut(&Q) -> (Shown, Shown)) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug, same: bool| {
        if !same {
            diffs.push(format!("{what}: meridian {a:?} / knot {b:?}"));
        }
    };
    check("rcode", &m.rcode, &k.rcode, m.rcode == k.rcode);
    let drop_cd = |f: &[&'static str]| f.iter().copied().filter(|x| !(q.cd && *x == "cd")).collect::<Vec<_>>();
    let (mf, kf) = (drop_cd(&m.flags), drop_cd(&k.flags));
    check("flags", &mf, &kf, mf == kf);
    check("edns", &m.edns, &k.edns, m.edns == k.edns);
    check("question", &m.question, &k.question, m.question == k.question);
    let case = q.has_upper();
    let any = q.qtype == 255 && !m.answer.is_empty() && !k.answer.is_empty();
    if m.flags.contains(&"tc") && k.flags.contains(&"tc") {
        // Both truncated: RFC 2181 §9 lets the RRsets that fit stay (Knot
        // keeps a referral's NS and the glue that fits) or go (Meridian sends
        // none); the client must not use them and retries over TCP, where the
        // caller compares again.
    } else if any {
        check("authority", &m.authority, &k.authority, lower(&m.authority) == lower(&k.authority));
        let (mut direct_m, mut direct_k) = (None, None);
        for (who, s) in [("meridian", m), ("knot", k)] {
            match single_rrset(&s.answer) {
                None => diffs.push(format!("{who}: ANY answer is not one RRset: {:?}", s.answer)),
                Some((_, rtype)) => {
                    let code = TYPES.iter().find(|(_, n)| *n == rtype).map_or(0, |(c, _)| *c);
                    let mut by_type = q.clone();
                    by_type.qtype = code;
                    let (am, ak) = again(&by_type);
                    let direct = if who == "meridian" { &mut direct_m } else { &mut direct_k };
                    *direct = Some(if who == "meridian" { am.answer } else { ak.answer });
                    let want = direct.as_ref().unwrap();
                    if owner_as_is(want) != owner_as_is(&s.answer) {
                        diffs.push(format!("{who}: ANY answer {:?} is not the {rtype} RRset {want:?}", s.answer));
                    }
                }
            }
        }
    } else if case {
        check("answer (owner as asked)", &m.answer, &k.answer, owner_as_is(&m.answer) == owner_as_is(&k.answer));
        check("authority (any case)", &m.authority, &k.authority, lower(&m.authority) == lower(&k.authority));
        check("additional (any case)", &m.additional, &k.additional, lower(&m.additional) == lower(&k.additional));
    } else {
        check("answer", &m.answer, &k.answer, m.answer == k.answer);
        check("authority", &m.authority, &k.authority, m.authority == k.authority);
        check("additional", &m.additional, &k.additional, m.additional == k.additional);
    }
    diffs
}

pub(crate) fn seed() -> u64 {
    match std::env::var("MERIDIAN_DIFF_SEED") {
        Ok(s) => s.trim().parse().expect("MERIDIAN_DIFF_SEED must be a number"),
        Err(_) => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
                % 1_000_000_007
        }
    }
}

/// Meridian's zones directory: a TOML zone that includes both files.
pub(crate) fn write_meridian_zone(dir: &std::path::Path, zone: &Zone, files: &[String; 2]) -> std::path::PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("plain.zone"), &files[0]).unwrap();
    std::fs::write(zones.join("tricky.zone"), &files[1]).unwrap();
    let f: Vec<&str> = zone.soa.split_whitespace().collect();
    std::fs::write(
        zones.join("dt.example.toml"),
        format!(
            "origin = \"dt.example.\"\nttl = {}\ninclude = [\"plain.zone\", \"tricky.zone\"]\n\n[soa]\n\
             mname = \"{}\"\nrname = \"{}\"\nserial = {}\nrefresh = {}\nretry = {}\nexpire = {}\nminimum = {}\n",
            zone.ttl, f[0], f[1], f[2], f[3], f[4], f[5], f[6]
        ),
    )
    .unwrap();
    zones
}

#[test]
fn meridian_and_knot_answer_a_generated_zone_alike() {
    let seed = seed();
    eprintln!("differential_random: seed {seed} (replay with MERIDIAN_DIFF_SEED={seed})");
    let mut rng = Rng(seed);
    let zone = generate(&mut rng);
    let knot_file = format!("{}{}", zone.files[0], zone.files[1]);
    if let Ok(path) = std::env::var("MERIDIAN_DIFF_DUMP") {
        std::fs::write(path, &knot_file).unwrap();
    }
    let dir = TempDir::new("diff-random");
    let zones = write_meridian_zone(dir.path(), &zone, &zone.files);

    // The fast reader gives what hickory's parser gives: the same files with
    // the plain one forced onto hickory's parser (by one more record, in
    // parentheses) load to the same zone.
    let fast = meridian::zone::load_zones(&zones).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{knot_file}"));
    let forced_dir = TempDir::new("diff-random-hickory");
    let forced = [format!("{}forced-hickory IN TXT ( x )\n", zone.files[0]), zone.files[1].clone()];
    let forced = meridian::zone::load_zones(&write_meridian_zone(forced_dir.path(), &zone, &forced)).unwrap();
    assert_eq!(
        fast.zones[0].to_master_file(),
        forced.zones[0]
            .to_master_file()
            .replace(&format!("forced-hickory.dt.example. {} IN TXT \"x\"\n", zone.ttl), ""),
        "seed {seed}: the fast reader and hickory's parser read the plain file differently:\n{}",
        zone.files[0]
    );

    let Some(knot) = KnotServer::start("dt.example.", &knot_file) else {
        skip_or_fail("knotd not installed (Debian package `knot`)");
        return;
    };
    let meridian = Server::start_with(&["--zones", zones.to_str().unwrap()], None);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();

    let started = Instant::now();
    let mut id = rng.next() as u16;
    let mut exchange = |q: &Q| -> Result<(Shown, Shown), String> {
        id = id.wrapping_add(1);
        let m = ask(&sock, meridian.addr, q, id).map_err(|e| format!("meridian: {e}"))?;
        let k = ask(&sock, knot.addr, q, id).map_err(|e| format!("knot: {e}"))?;
        Ok((shown(&m), shown(&k)))
    };
    let mut failures = Vec::new();
    let mut rcodes = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..QUERIES {
        let q = random_query(&mut rng, &zone);
        let (m, k) = match exchange(&q) {
            Ok(pair) => pair,
            Err(e) => {
                failures.push(format!("== query {i}: dig {}\n  {e}", q.dig_args()));
                continue;
            }
        };
        // RFC 6891 §6.2.5: a UDP size below 512 is taken as 512. Knot
        // answers FORMERR instead; Meridian is compared with Knot's answer
        // to the same query at 512.
        let small = q.edns.as_ref().is_some_and(|e| e.payload < 512);
        let (q, k) = if small && k.rcode == "FormErr" {
            let mut at_512 = q.clone();
            at_512.edns.as_mut().unwrap().payload = 512;
            match exchange(&at_512) {
                Ok((_, k)) => (at_512, k),
                Err(e) => {
                    failures.push(format!("== query {i}: dig {}\n  {e}", at_512.dig_args()));
                    continue;
                }
            }
        } else {
            (q, k)
        };
        *rcodes.entry(format!("{}{}", k.rcode, if k.flags.contains(&"tc") { "+TC" } else { "" })).or_default() += 1;
        let mut again = |q: &Q| exchange(q).unwrap_or_else(|e| panic!("{e}"));
        let mut diffs = differences(&q, &m, &k, &mut again);
        // RFC 2181 §9: addresses in the additional section are extra, and
        // each server keeps those that fit (its own order, so not the same
        // ones). Each kept set is part of what that server answers over TCP,
        // and those agree.
        if !diffs.is_empty() && diffs.iter().all(|d| d.starts_with("additional")) && !q.tcp {
            let over_tcp = Q { tcp: true, ..q.clone() };
            if let Ok((mt, kt)) = exchange(&over_tcp) {
                let within = |part: &[String], whole: &[String]| lower(part).iter().all(|r| lower(whole).contains(r));
                if within(&m.additional, &mt.additional)
                    && within(&k.additional, &kt.additional)
                    && lower(&mt.additional) == lower(&kt.additional)
                {
                    diffs.clear();
                }
            }
        }
        // Both truncated: the retry over TCP (RFC 7766) must agree too.
        if diffs.is_empty() && m.flags.contains(&"tc") && k.flags.contains(&"tc") {
            let q = Q { tcp: true, ..q.clone() };
            match exchange(&q) {
                Ok((m, k)) => {
                    diffs = differences(&q, &m, &k, &mut |q: &Q| exchange(q).unwrap_or_else(|e| panic!("{e}")));
                    diffs.iter_mut().for_each(|d| *d = format!("retried over TCP: {d}"));
                }
                Err(e) => diffs.push(format!("retried over TCP: {e}")),
            }
        }
        if !diffs.is_empty() {
            failures.push(format!(
                "== query {i}: dig {}\n  {}\n-- meridian: {m:#?}\n-- knot: {k:#?}",
                q.dig_args(),
                diffs.join("\n  ")
            ));
        }
    }
    eprintln!(
        "differential_random: seed {seed}: {QUERIES} queries in {:.1} s, {} differ; Knot's rcodes {rcodes:?}",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    if !failures.is_empty() {
        let shown: Vec<&String> = failures
            .iter()
            .take(if std::env::var_os("MERIDIAN_DIFF_ALL").is_some() { usize::MAX } else { 15 })
            .collect();
        panic!(
            "seed {seed}: Meridian and Knot differ on {} of {QUERIES} queries (first 15; replay with \
             MERIDIAN_DIFF_SEED={seed}, zone with MERIDIAN_DIFF_DUMP=FILE):\n{}",
            failures.len(),
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
    // What decides a case must have been asked: every kind of answer came up.
    for want in ["NoError", "NXDomain", "Refused"] {
        assert!(rcodes.keys().any(|k| k.starts_with(want)), "seed {seed}: no {want} among {rcodes:?}");
    }
}
