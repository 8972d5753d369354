#!/usr/bin/env bash
# User-space CPU per answer, Meridian vs gdnsd, measured by sampling rather
# than from /proc clock ticks (see docs/performance.md, "Sampled user CPU").
#
#   KEEP_TMP=1 bench/run.sh ...        # once, to get a work directory
#   bench/sampled.sh /tmp/meridian-bench.XXXXXX
#
# For each query set (static, www-ecs-var by default) and round, each server
# is started pinned to CPU $SERVER_CPU with one worker, warmed up for 2 s,
# then driven by dnsperf (CPU $CLIENT_CPU, -Q $RATE, -l $DURATION) while
# `perf record -e cpu-clock:u -F $FREQ` samples it: samples × (1/FREQ) ÷
# answers is the user CPU per answer. The servers alternate (A B A B ...).
# Loopback only; every run is bounded by -l and timeout.
#
# Environment: RATE [80000] DURATION [10] ROUNDS [3] FREQ [5000]
#   SETS ["static www-ecs-var"] SERVER_CPU [0] CLIENT_CPU [1]
#   MERIDIAN_BIN [the work directory's bin/meridian]
set -euo pipefail

W=${1:?usage: bench/sampled.sh WORKDIR (a KEEP_TMP=1 bench/run.sh directory)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${RATE:-80000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
FREQ=${FREQ:-5000}
SETS=${SETS:-static www-ecs-var}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BIN=$(realpath "${MERIDIAN_BIN:-$W/bin/meridian}") # the server runs from its own directory

die() { echo "sampled.sh: $*" >&2; exit 1; }
for c in perf dnsperf taskset dig python3; do command -v $c >/dev/null || die "$c is not installed"; done
[[ -x $BIN ]] || die "$BIN is not executable"
[[ -f $W/gdnsd/config ]] || die "$W/gdnsd/config not found (run bench/run.sh with KEEP_TMP=1)"
GDNSD=$(command -v gdnsd || echo /usr/sbin/gdnsd)
[[ -x $GDNSD ]] || die "gdnsd is not installed"

[[ -f $W/q/sets.tsv ]] || die "$W/q/sets.tsv not found (a work directory of an older bench/run.sh)"
declare -A ARGS=()
while IFS=$'\t' read -r set args; do ARGS[$set]=$args; done <"$W/q/sets.tsv"
GPORT=$(sed -n 's/.*listen => \[ 127\.0\.0\.1:\([0-9]*\) \].*/\1/p' "$W/gdnsd/config")
[[ -n $GPORT ]] || die "no 127.0.0.1 listen port in $W/gdnsd/config"
MPORT=$((GPORT + 1))
OUT=$(mktemp -d "${TMPDIR:-/tmp}/meridian-sampled.XXXXXX")
PID=

stop() {
    if [[ -n $PID ]]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true # gdnsd exits non-zero on SIGTERM
    fi
    PID=
    return 0
}
trap stop EXIT

start() { # server
    case $1 in
        gdnsd)
            (exec taskset -c "$SERVER_CPU" "$GDNSD" -c "$W/gdnsd" start >"$OUT/gdnsd.log" 2>&1) &
            PID=$! PORT=$GPORT ;;
        meridian)
            mkdir -p "$OUT/state"
            (cd "$OUT" && MERIDIAN_THREADS=1 TOKIO_WORKER_THREADS=1 exec taskset -c "$SERVER_CPU" "$BIN" serve \
                --zones "$ROOT/zones" --geoip "$ROOT/geoip/demo.mmdb" --listen "127.0.0.1:$MPORT" \
                --state-dir "$OUT/state" --admin off >"$OUT/meridian.log" 2>&1) &
            PID=$! PORT=$MPORT ;;
    esac
    for _ in $(seq 50); do
        dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" static.gslb.example.test A >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$1 did not answer on 127.0.0.1:$PORT"
}

measure() { # server set round -> one line: server set round answers samples µs
    start "$1"
    # shellcheck disable=SC2086
    timeout 20 taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" ${ARGS[$2]} -Q "$RATE" -l 2 >/dev/null 2>&1 || true
    local data=$OUT/$1.$2.$3.data
    timeout $((DURATION + 20)) perf record -q -e cpu-clock:u -F "$FREQ" -p "$PID" -o "$data" -- sleep "$DURATION" >/dev/null 2>&1 &
    local rec=$!
    local answers
    # shellcheck disable=SC2086
    answers=$(timeout $((DURATION + 20)) taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" ${ARGS[$2]} \
        -Q "$RATE" -l "$DURATION" 2>&1 | awk '/Queries completed/ {print $3}')
    wait "$rec" || true
    stop
    local samples
    samples=$(perf script -i "$data" 2>/dev/null | wc -l)
    echo "$1 $2 $3 ${answers:-0} $samples"
}

{
    for set in $SETS; do
        [[ -n ${ARGS[$set]:-} ]] || die "unknown set $set"
        for r in $(seq "$ROUNDS"); do
            measure meridian "$set" "$r"
            measure gdnsd "$set" "$r"
        done
    done
} | tee "$OUT/raw.txt" >&2

python3 - "$OUT/raw.txt" "$FREQ" <<'EOF'
import statistics, sys
freq = float(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    server, s, _, answers, samples = line.split()
    if int(answers) > 0:
        rows.setdefault((s, server), []).append(int(samples) / freq * 1e6 / int(answers))
print("| query set | Meridian user µs/ans | gdnsd user µs/ans | M/gdnsd | rounds (M; gdnsd) |")
print("|---|---:|---:|---:|---|")
for s in dict.fromkeys(k[0] for k in rows):
    m, g = rows.get((s, "meridian"), []), rows.get((s, "gdnsd"), [])
    if not m or not g:
        continue
    mm, gm = statistics.median(m), statistics.median(g)
    fmt = lambda v: " ".join(f"{x:.3f}" for x in v)
    print(f"| {s} | {mm:.3f} | {gm:.3f} | {mm / gm:.2f}× | {fmt(m)}; {fmt(g)} |")
EOF
