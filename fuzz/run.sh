#!/usr/bin/env bash
# Short fuzz run: every target for $SECONDS_PER_TARGET seconds (default 60).
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain.
# Long runs: `cargo +nightly fuzz run query -- -max_total_time=3600 -jobs=2`.
set -euo pipefail
cd "$(dirname "$0")"
secs="${SECONDS_PER_TARGET:-60}"
mkdir -p corpus/query corpus/ecs corpus/zone_toml
# Seed the query corpus with real queries so the fuzzer starts on valid DNS.
python3 - <<'PY'
import os, struct
def q(name, qtype, edns=False, ecs=None):
    h = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 1 if edns else 0)
    n = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"
    body = n + struct.pack(">HH", qtype, 1)
    if edns:
        opt = b""
        if ecs:
            fam, src, addr = ecs
            data = struct.pack(">HBB", fam, src, 0) + addr
            opt = struct.pack(">HH", 8, len(data)) + data
        body += b"\0" + struct.pack(">HHIH", 41, 1232, 0, len(opt)) + opt
    return h + body
seeds = [
    q("static.gslb.example.test", 1), q("www.gslb.example.test", 1, True, (1, 24, bytes([10, 3, 0]))),
    q("www.gslb.example.test", 28, True, (2, 48, bytes.fromhex("20010db80005"))),
    q("chain.gslb.example.test", 28, True), q("x.wild.gslb.example.test", 16),
    q("www.sub.gslb.example.test", 1), q("gslb.example.test", 255, True), q("big.gslb.example.test", 16),
]
for i, s in enumerate(seeds):
    open(f"corpus/query/seed{i}", "wb").write(s)
PY
mkdir -p corpus/zone_toml && cp ../zones/*.toml corpus/zone_toml/
for t in query ecs zone_toml; do
  echo "== fuzz $t for ${secs}s"
  cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | tail -n 4
done
echo "fuzz: all targets ran ${secs}s without a finding"
