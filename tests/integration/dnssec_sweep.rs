//! Every answer of a generated signed zone validates. The differential
//! test's random zone (wildcards at several depths, CNAME chains and loops,
//! empty non-terminals, escaped names, delegations with DS, big RRsets),
//! signed online by Meridian, is asked random names and types with random
//! letter case by BIND's `delv`, which holds the zone's DS as its only trust
//! anchor and checks each answer: positive, NODATA, compact denial of a
//! name (RFC 9824), wildcard expansions and CNAME chains. A bogus answer is
//! a wrong answer: the resolvers behind it would SERVFAIL the name.
//!
//! Seeded like `differential_random`: the seed is printed and
//! `MERIDIAN_DIFF_SEED=N` replays a run.

use crate::common::*;
use crate::differential_random::{generate, presentation, random_query, seed, type_name, write_meridian_zone, Rng};
use std::process::Command;

const QUERIES: usize = 300;

/// What `delv` said of one question.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// "fully validated": a signed positive or negative answer that checks.
    Validated,
    /// Under a delegation: Meridian refers, and `delv` (which expects a
    /// resolver) calls a referral "non-improving"; nothing to validate.
    Referral,
    /// Outside the zone, or a CNAME leaving it: REFUSED, nothing signed.
    Refused,
    Other(String),
}

fn classify(out: &str) -> Outcome {
    if out.contains("; fully validated") || out.contains("; negative response, fully validated") {
        Outcome::Validated
    } else if out.contains("non-improving referral") {
        Outcome::Referral
    } else if out.contains("REFUSED unexpected RCODE") {
        Outcome::Refused
    } else {
        Outcome::Other(out.to_string())
    }
}

#[test]
fn delv_validates_every_answer_of_a_generated_signed_zone() {
    if Command::new("delv").arg("-v").output().is_err() {
        return skip_or_fail("delv not installed (bind9-dnsutils)");
    }
    let seed = seed();
    eprintln!("dnssec_sweep: seed {seed} (replay with MERIDIAN_DIFF_SEED={seed})");
    let mut rng = Rng(seed);
    let zone = generate(&mut rng);
    let dir = TempDir::new("dnssec-sweep");
    let zones = write_meridian_zone(dir.path(), &zone, &zone.files);
    let out = meridian(&["dnssec", "keygen", "dt.example.", "--out", "zones/zone.key"], dir.path());
    assert!(out.status.success(), "keygen: {}", String::from_utf8_lossy(&out.stderr));
    crate::dnssec::append(&zones.join("dt.example.toml"), "\n[dnssec]\nkeys = [\"zone.key\"]\n");
    let out = meridian(&["dnssec", "ds", "dt.example.", "--zones", zones.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "ds: {}", String::from_utf8_lossy(&out.stderr));
    let ds = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = ds.split_whitespace().collect();
    let anchor = dir.path().join("anchor.conf");
    let text = format!("trust-anchors {{\n  dt.example. static-ds {} {} {} \"{}\";\n}};\n", f[3], f[4], f[5], f[6]);
    std::fs::write(&anchor, text).unwrap();
    let server = Server::start_with(&["--zones", zones.to_str().unwrap()], None);

    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    let mut bogus = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..QUERIES {
        let q = random_query(&mut rng, &zone);
        // Meta types are not data `delv` can validate.
        if matches!(q.qtype, 255 | 65000) {
            continue;
        }
        let (name, qtype) = (presentation(&q.name), type_name(q.qtype));
        // Bounded by coreutils' `timeout`: delv has no timeout option.
        let out = Command::new("timeout")
            .args(["20", "delv", &format!("@{}", server.addr.ip())])
            .args(["-p", &server.port().to_string(), "-a", anchor.to_str().unwrap(), "+root=dt.example"])
            .args(["-q", &name, "-t", &qtype])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let outcome = classify(&text);
        *seen
            .entry(match &outcome {
                Outcome::Validated => "validated",
                Outcome::Referral => "referral",
                Outcome::Refused => "refused",
                Outcome::Other(_) => "other",
            })
            .or_default() += 1;
        if let Outcome::Other(text) = outcome {
            bogus.push(format!("== query {i}: delv {name} {qtype}\n{text}"));
        }
    }
    eprintln!("dnssec_sweep: seed {seed}: {seen:?} in {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        bogus.is_empty(),
        "seed {seed}: {} answers did not validate (replay with MERIDIAN_DIFF_SEED={seed}):\n{}\n--- meridian log tail:\n{}",
        bogus.len(),
        bogus.iter().take(40).cloned().collect::<Vec<_>>().join("\n"),
        server.log_text().lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    // Most questions are about the zone's own data: they were checked.
    assert!(seen.get("validated").copied().unwrap_or(0) >= QUERIES / 2, "seed {seed}: {seen:?}");
}
