#!/usr/bin/env bash
# Big zone: Meridian's and Knot's ready time and memory on a 400,000-record zone.
#
# Generates one RFC 1035 master file (SOA, apex NS, 300,000 A and 100,000 TXT
# records under big.test.), gives it to Knot as its zone file and to
# Meridian through `include` of that same file, starts each alone on a
# loopback port and reports:
#   ready  seconds from exec until `dig` gets the last A record's answer
#   cpu    CPU seconds (user + system) the server used until then
#   RSS    VmRSS from /proc/PID/status once ready (and VmHWM, the peak)
# then, for Meridian, RSS after 1 and after 10 SIGHUP reloads (each waited for
# in the log until the old configuration is freed). Bounded: each wait gives
# up after 120 s; loopback only.
#
# Usage: bench/big_zone.sh [A_COUNT] [TXT_COUNT]   (defaults 300000 100000)
# Uses the release binary (built first); MERIDIAN_BIN and KNOTD_BIN override.
set -euo pipefail

A_COUNT=${1:-300000}
TXT_COUNT=${2:-100000}
(( A_COUNT >= 1 && A_COUNT <= 2000000 && TXT_COUNT >= 0 && TXT_COUNT <= 2000000 )) || {
    echo "A_COUNT 1..2000000, TXT_COUNT 0..2000000" >&2
    exit 2
}
ORIGIN=big.test.
LIMIT=120

cd "$(dirname "$0")/.."
REPO=$PWD
if [[ -z ${MERIDIAN_BIN:-} ]]; then
    echo "building release meridian..." >&2
    cargo build --release --quiet --bin meridian
    MERIDIAN_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/meridian
fi
KNOTD=${KNOTD_BIN:-$(command -v knotd || ls /usr/sbin/knotd 2>/dev/null || true)}
[[ -x $MERIDIAN_BIN ]] || { echo "no meridian binary at $MERIDIAN_BIN" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/meridian-big-zone.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
rss() { awk -v k="$2:" '$1 == k {printf "%.0f", $2 / 1024}' "/proc/$1/status"; } # MiB
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
within_limit() { awk -v a="$1" -v b="$(now)" -v l=$LIMIT 'BEGIN {exit !(b - a < l)}'; }

# The zone, in one master file.
python3 - "$A_COUNT" "$TXT_COUNT" "$ORIGIN" >"$TMP/big.zone" <<'EOF'
import sys
a, t, origin = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
w = sys.stdout.write
w(f"$ORIGIN {origin}\n$TTL 3600\n")
w("@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 127.0.0.53\n")
for i in range(a):
    w(f"a{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
for i in range(t):
    w(f't{i} IN TXT "v=bench1 record {i} of a big generated zone"\n')
EOF
LAST=a$((A_COUNT - 1)).$ORIGIN
echo "zone: $A_COUNT A + $TXT_COUNT TXT, $(du -m "$TMP/big.zone" | cut -f1) MB" >&2

# Polls until `dig` answers LAST with NOERROR and an answer, or LIMIT passes.
wait_answer() {
    local port=$1 pid=$2 start=$3
    while :; do
        if dig +tries=1 +time=1 -p "$port" @127.0.0.1 "$LAST" A 2>/dev/null | grep -q 'ANSWER: 1,'; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "server $pid exited" >&2; return 1; }
        within_limit "$start" || { echo "no answer in $LIMIT s" >&2; return 1; }
        sleep 0.02
    done
}

# CPU seconds (user + system) the process has used: on a busy machine the
# wall-clock ready time includes waiting for a core, this does not.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

report() { # name pid ready
    printf '%-10s ready %6s s   cpu %6s s   RSS %5s MiB   peak %5s MiB\n' "$1" "$3" "$(cpu "$2")" \
        "$(rss "$2" VmRSS)" "$(rss "$2" VmHWM)"
}

# --- Knot -------------------------------------------------------------------
if [[ -n $KNOTD ]]; then
    KP=$(free_port)
    mkdir -p "$TMP/knot/zones" "$TMP/knot/db"
    cp "$TMP/big.zone" "$TMP/knot/zones/big.zone"
    cat >"$TMP/knot/knot.conf" <<EOF
server:
    rundir: "$TMP/knot"
    listen: 127.0.0.1@$KP
database:
    storage: "$TMP/knot/db"
log:
  - target: stderr
    any: notice
template:
  - id: default
    storage: "$TMP/knot/zones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: "$ORIGIN"
    file: "big.zone"
EOF
    start=$(now)
    "$KNOTD" -c "$TMP/knot/knot.conf" >"$TMP/knot/log" 2>&1 &
    KPID=$!
    PIDS+=("$KPID")
    wait_answer "$KP" "$KPID" "$start" || { cat "$TMP/knot/log" >&2; exit 1; }
    report knot "$KPID" "$(elapsed "$start" "$(now)")"
    kill "$KPID" && wait "$KPID" 2>/dev/null || true
else
    echo "knot       SKIPPED: knotd not installed" >&2
fi

# --- Meridian ---------------------------------------------------------------
mkdir -p "$TMP/meridian/zones"
cat >"$TMP/meridian/zones/big.test.toml" <<EOF
origin = "$ORIGIN"
include = "../../big.zone"

[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1
EOF
MP=$(free_port)
start=$(now)
MERIDIAN_LOG=info "$MERIDIAN_BIN" serve --listen "127.0.0.1:$MP" --zones "$TMP/meridian/zones" \
    --state-dir "$TMP/meridian/state" --admin off --geoip "$REPO/geoip/demo.mmdb" \
    >"$TMP/meridian/log" 2>&1 &
MPID=$!
PIDS+=("$MPID")
wait_answer "$MP" "$MPID" "$start" || { cat "$TMP/meridian/log" >&2; exit 1; }
report meridian "$MPID" "$(elapsed "$start" "$(now)")"

reloads=0
for target in 1 10; do
    while (( reloads < target )); do
        # A reload is done once the old configuration is freed and its
        # memory handed back (logged after "reloaded configuration").
        before=$(grep -c 'previous configuration freed' "$TMP/meridian/log" || true)
        t0=$(now)
        kill -HUP "$MPID"
        until (( $(grep -c 'previous configuration freed' "$TMP/meridian/log" || true) > before )); do
            kill -0 "$MPID" 2>/dev/null || { echo "meridian exited" >&2; cat "$TMP/meridian/log" >&2; exit 1; }
            within_limit "$t0" || {
                echo "reload $((reloads + 1)) not done in $LIMIT s" >&2
                exit 1
            }
            sleep 0.05
        done
        reloads=$((reloads + 1))
        took=$(elapsed "$t0" "$(now)")
    done
    printf 'meridian   after %2d reload(s): RSS %5s MiB   peak %5s MiB   (last reload %s s)\n' \
        "$reloads" "$(rss "$MPID" VmRSS)" "$(rss "$MPID" VmHWM)" "$took"
done
