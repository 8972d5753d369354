//! RFC 1035 escapes in `$INCLUDE`d master files: Meridian serves what Knot
//! serves. hickory's parser, which used to read `$INCLUDE`d files itself,
//! read `\065` as octal (`5`) and `"\065"` as another byte; now Meridian
//! expands `$INCLUDE` itself (`zone::master_lines`), with the same rewrite as
//! for the file the TOML includes.

use crate::common::*;
use crate::knot::KnotServer;

/// Included by both servers from the zone's own file; includes `sub/inc.zone`
/// with an origin argument (absolute: Knot refuses a relative one).
const TOP: &str = "prev A 192.0.2.9
$INCLUDE sub/inc.zone o.e.test. ; the rest of the line is a comment
  TXT \"after\"
after A 192.0.2.2
";

/// Escapes in names, TXT strings (quoted and not) and RDATA names; its own
/// `$TTL`, which ends with it; a nested `$INCLUDE` relative to its directory.
const INC: &str = "$TTL 200
\\065x A 192.0.2.5
y TXT \"\\065\\066\" b\\067 \"\\195\\169\" \"q\\\"\\\\\"
a\\.b A 192.0.2.7
m MX 10 m\\097il
mail A 192.0.2.8
$INCLUDE inner.zone
";

const INNER: &str = "in A 192.0.2.6\n  TXT ( \"a b\" ; a comment\n  \"c)\\059\" )\n";

const QUERIES: &[(&str, &str)] = &[
    ("ax.o.e.test", "A"),
    ("y.o.e.test", "TXT"),
    ("a\\.b.o.e.test", "A"),
    ("m.o.e.test", "MX"),
    ("in.o.e.test", "A"),
    ("in.o.e.test", "TXT"),
    ("prev.e.test", "TXT"),
    ("after.e.test", "A"),
];

#[test]
fn meridian_and_knot_read_escapes_in_dollar_included_files_alike() {
    let knot_zone = "$ORIGIN e.test.\n$TTL 100\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n\
                     ns1 A 192.0.2.53\n$INCLUDE top.zone\n";
    let files = [("top.zone", TOP), ("sub/inc.zone", INC), ("sub/inner.zone", INNER)];
    let Some(knot) = KnotServer::start_with_files("e.test.", knot_zone, &files) else {
        skip_or_fail("knotd is not installed (Debian package knot)");
        return;
    };
    let dir = TempDir::new("incescapes");
    let zones = dir.path().join("zones");
    for (path, text) in files {
        let p = zones.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::write(zones.join("e.toml"), format!("ttl = 100\ninclude = \"top.zone\"\n{}", zone_head("e.test.")))
        .unwrap();
    std::fs::write(dir.path().join("meridian.toml"), "zones = \"zones\"\n").unwrap();
    let s = Server::start_with(&[], Some(dir.path()));

    let mut wrong = Vec::new();
    for (name, rtype) in QUERIES {
        let args = format!("{name} {rtype}");
        let (m, k) = (s.dig(&args), knot.dig(&args));
        // Knot answers every one of them: a wrong name would be NXDOMAIN at Meridian.
        assert!(k.status == "NOERROR" && !k.answer.is_empty(), "{args}: Knot gave:\n{}", k.raw);
        let sorted = |d: &Dig| {
            let mut v = d.answer.clone();
            v.sort();
            v
        };
        if (m.status.as_str(), sorted(&m), m.has_flag("aa")) != (k.status.as_str(), sorted(&k), k.has_flag("aa")) {
            wrong.push(format!(
                "{args}:\n  meridian {} {:?}\n  knot     {} {:?}",
                m.status, m.answer, k.status, k.answer
            ));
        }
    }
    assert!(wrong.is_empty(), "answers differ:\n{}", wrong.join("\n"));
    // What both agree on is what the files say (not a shared misreading).
    let y = s.dig("y.o.e.test TXT");
    assert!(y.answer.iter().any(|l| l.contains("\"AB\" \"bC\"")), "{:?}", y.answer);
    assert_eq!(s.dig("after.e.test A").answer.first().map(|l| l.split_whitespace().nth(1)), Some(Some("100")));
}
