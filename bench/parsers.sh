#!/usr/bin/env bash
# Zone-file parsers on the big zone's master file (the one bench/big_zone.sh
# writes: 300,000 A + 100,000 TXT under big.test., 13 MB): hickory-proto's
# parser, NLnet Labs' `domain` (its records kept, and turned into the hickory
# records the zone is built from), and Meridian's own plain reader. Each
# reads the file, already in memory, into owned records; /usr/bin/time gives
# CPU and peak memory. No network. Usage: bench/parsers.sh [RUNS] (default 3).
set -euo pipefail
RUNS=${1:-3}
(( RUNS >= 1 && RUNS <= 20 )) || { echo "RUNS 1..20" >&2; exit 2; }
cd "$(dirname "$0")/.."
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meridian-parsers.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
python3 - >"$TMP/big.zone" <<'PY'
import sys
w = sys.stdout.write
w("$ORIGIN big.test.\n$TTL 3600\n")
w("@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 127.0.0.53\n")
for i in range(300000):
    w(f"a{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
for i in range(100000):
    w(f't{i} IN TXT "v=bench1 record {i} of a big generated zone"\n')
PY
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/parsers}
(cd bench/parsers && cargo build --release --quiet)
BIN=$CARGO_TARGET_DIR/release/meridian-parsers-bench
for _ in $(seq "$RUNS"); do
    for p in hickory domain domain-hickory meridian; do
        /usr/bin/time -f '    cpu %U + %S s   peak %M KiB' "$BIN" "$p" "$TMP/big.zone" big.test. 2>&1 | paste -sd ' '
    done
done
