#!/usr/bin/env bash
# Two Meridian builds compared in the same time window: both run at once,
# pinned together to CPU $SERVER_CPU with one worker each, each driven by its
# own dnsperf at -Q $RATE from CPU $CLIENT_CPU, both sampled over the same
# $DURATION seconds (`perf record -e cpu-clock:u`). Host noise (another
# tenant, frequency changes) then hits both alike, which back-to-back runs
# cannot promise: on the development VM, sequential runs of one binary
# spread 0.64-1.58x, simultaneous ones 1.03-1.06x.
#
#   bench/ab_same_window.sh OLD_BINARY NEW_BINARY [SET]
#
# SET: ecs-var (default: `www` with 10,000 ECS subnets, bench/gen_ecs_queries.py)
# or static (`static` A with EDNS0). Prints user µs/answer by sampling for
# each build and NEW/OLD, once in each order (the second server started
# reads a few per cent higher), and the mean of the two ratios.
# Loopback only; every run is bounded by dnsperf's -l.
#
# Environment: RATE [40000] DURATION [8] FREQ [5000] SERVER_CPU [0] CLIENT_CPU [1]
set -euo pipefail

A=$(realpath "${1:?usage: bench/ab_same_window.sh OLD_BINARY NEW_BINARY [ecs-var|static]}")
B=$(realpath "${2:?usage: bench/ab_same_window.sh OLD_BINARY NEW_BINARY [ecs-var|static]}")
SET=${3:-ecs-var}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${RATE:-40000}
DURATION=${DURATION:-8}
FREQ=${FREQ:-5000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

die() { echo "ab_same_window.sh: $*" >&2; exit 1; }
for c in perf dnsperf taskset dig python3; do command -v $c >/dev/null || die "$c is not installed"; done
[[ -x $A && -x $B ]] || die "both binaries must be executable"
OUT=$(mktemp -d "${TMPDIR:-/tmp}/meridian-ab.XXXXXX")
PIDS=()
stop() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap 'stop; rm -rf "$OUT"' EXIT

case $SET in
    ecs-var)
        python3 "$ROOT/bench/gen_ecs_queries.py" --csv "$ROOT/geoip/demo.csv" --out "$OUT/q.bin" \
            --count 10000 --name www.gslb.example.test >/dev/null || die "gen_ecs_queries.py failed"
        QUERY=(-d "$OUT/q.bin" -B)
        ;;
    static)
        echo "static.gslb.example.test A" >"$OUT/q.txt"
        QUERY=(-d "$OUT/q.txt" -e)
        ;;
    *) die "SET must be ecs-var or static" ;;
esac

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# One round: FIRST and SECOND run at once; writes "first_us second_us" to $OUT/round.
round() {
    local first=$1 second=$2 i ports=() bin port jobs=() line=""
    for bin in "$first" "$second"; do
        port=$(free_port)
        ports+=("$port")
        mkdir -p "$OUT/state$port"
        (MERIDIAN_THREADS=1 TOKIO_WORKER_THREADS=1 exec taskset -c "$SERVER_CPU" "$bin" serve \
            --zones "$ROOT/zones" --geoip "$ROOT/geoip/demo.mmdb" --listen "127.0.0.1:$port" \
            --state-dir "$OUT/state$port" --admin off >"$OUT/log$port" 2>&1) &
        PIDS+=($!)
    done
    for port in "${ports[@]}"; do
        for i in $(seq 100); do
            dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 www.gslb.example.test >/dev/null 2>&1 && break
            [[ $i == 100 ]] && die "no answer on port $port (see $OUT/log$port)"
            sleep 0.1
        done
    done
    for port in "${ports[@]}"; do # warm-up
        taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" "${QUERY[@]}" -Q "$RATE" -l 1 >/dev/null 2>&1 &
        jobs+=($!)
    done
    wait "${jobs[@]}" || true
    jobs=()
    for k in 0 1; do
        perf record -q -e cpu-clock:u -F "$FREQ" -p "${PIDS[$k]}" -o "$OUT/perf$k.data" -- sleep "$DURATION" \
            >/dev/null 2>&1 &
        jobs+=($!)
        taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${ports[$k]}" "${QUERY[@]}" -Q "$RATE" -l "$DURATION" \
            >"$OUT/dnsperf$k" 2>&1 &
        jobs+=($!)
    done
    wait "${jobs[@]}" || true
    stop
    for k in 0 1; do
        local n q
        n=$(perf script -i "$OUT/perf$k.data" 2>/dev/null | wc -l)
        q=$(awk '/Queries completed/ {print $3}' "$OUT/dnsperf$k")
        [[ -n $q && $q -gt 0 ]] || die "no answers counted (see $OUT/dnsperf$k)"
        line+=$(python3 -c "print(f'{$n * 1e6 / $FREQ / $q:.3f}')")" "
    done
    echo "$line" >"$OUT/round"
}

round "$A" "$B"
read -r a1 b1 <"$OUT/round"
round "$B" "$A"
read -r b2 a2 <"$OUT/round"
python3 - "$a1" "$b1" "$a2" "$b2" <<'EOF'
import sys
a1, b1, a2, b2 = map(float, sys.argv[1:])
print(f"old first:  old {a1:.3f}  new {b1:.3f} µs/ans user (sampled)  new/old {b1 / a1:.3f}")
print(f"new first:  old {a2:.3f}  new {b2:.3f} µs/ans user (sampled)  new/old {b2 / a2:.3f}")
print(f"mean new/old {(b1 / a1 + b2 / a2) / 2:.3f}")
EOF
