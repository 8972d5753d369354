#!/usr/bin/env bash
# Probe load note: the cost of probing 2,000 distinct HTTP targets.
#
# Builds release, starts one loopback HTTP backend (examples/probe_backends.rs)
# that counts requests and distinct paths, writes a zone of REGIONS regions x
# PER addresses (default 200 x 10 = 2,000 endpoints), each endpoint with its
# own probe URL http://127.0.0.1:PORT/rI/{addr} (interval 1s, timeout 500ms),
# runs `meridian serve` on loopback for DURATION seconds (default 30) and
# reports meridian's CPU (user+sys from /proc/PID/stat: % of one core and µs
# per probe), its memory (VmRSS, VmHWM from /proc/PID/status) and the
# probes/s the backend saw. Bounded: fixed count, fixed time, loopback only.
#
# Usage: bench/probe_load.sh [DURATION] [REGIONS] [PER]
set -euo pipefail

DURATION=${1:-30}
REGIONS=${2:-200}
PER=${3:-10}
WARMUP=5
(( REGIONS >= 1 && REGIONS <= 256 && PER >= 1 && PER <= 250 )) || { echo "REGIONS 1..256, PER 1..250" >&2; exit 2; }
(( DURATION > WARMUP && DURATION <= 600 )) || { echo "DURATION $((WARMUP + 1))..600" >&2; exit 2; }

cd "$(dirname "$0")/.."
echo "building release (meridian, examples/probe_backends)..." >&2
cargo build --release --quiet --bin meridian --example probe_backends
BIN=$PWD/target/release/meridian
BACKEND=$PWD/target/release/examples/probe_backends

TMP=$(mktemp -d "${TMPDIR:-/tmp}/meridian-probe-load.XXXXXX")
BPID= MPID=
cleanup() {
    [[ -n $MPID ]] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null || true
    [[ -n $BPID ]] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# The backend, on a free loopback port it picks itself.
"$BACKEND" 127.0.0.1:0 16 >"$TMP/backend.out" 2>&1 &
BPID=$!
for _ in $(seq 100); do grep -q '^listening' "$TMP/backend.out" 2>/dev/null && break; sleep 0.05; done
BADDR=$(awk '/^listening/ {print $2}' "$TMP/backend.out")
[[ -n $BADDR ]] || { echo "backend did not start" >&2; cat "$TMP/backend.out" >&2; exit 1; }
stats() { curl -s --max-time 2 "http://$BADDR/__stats"; }
requests() { stats | sed -n 's/^requests=\([0-9]*\).*/\1/p'; }

# The zone: REGIONS regions of PER addresses 198.18.I.J (benchmark range, never
# contacted: every probe goes to the backend, the address is only in the path).
mkdir -p "$TMP/zones" "$TMP/state"
{
    cat <<EOF
origin = "load.test."
ns = ["ns1"]

[soa]
mname = "ns1"
rname = "hostmaster"
serial = 1

[[records]]
name = "ns1"
type = "A"
data = "192.0.2.53"

[[services]]
name = "www"
chain = ["weighted"]
EOF
    for ((i = 0; i < REGIONS; i++)); do
        addrs=$(for ((j = 1; j <= PER; j++)); do printf '"198.18.%d.%d",' "$i" "$j"; done)
        cat <<EOF

[[regions]]
name = "r$i"
addresses = [${addrs%,}]

[regions.probe]
type = "http"
url = "http://$BADDR/r$i/{addr}"
interval = "1s"
timeout = "500ms"
EOF
    done
} >"$TMP/zones/load.test.toml"
ENDPOINTS=$((REGIONS * PER))

# Meridian on a free loopback port (no GeoIP database: run in the temp dir).
DNSPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$TMP" && MERIDIAN_LOG=info exec "$BIN" serve --listen "127.0.0.1:$DNSPORT" \
    --zones "$TMP/zones" --state-dir "$TMP/state" >"$TMP/meridian.log" 2>&1) &
MPID=$!
for _ in $(seq 200); do grep -q 'ready' "$TMP/meridian.log" 2>/dev/null && break; sleep 0.05; done
grep -q 'ready' "$TMP/meridian.log" || { echo "meridian not ready" >&2; tail -20 "$TMP/meridian.log" >&2; exit 1; }

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$MPID/stat"; }   # utime + stime (after the ")" of comm, no spaces in "meridian")
now() { date +%s.%N; }

T0=$(now); C0=$(cpu_ticks); R0=$(requests)
sleep "$WARMUP"
T1=$(now); C1=$(cpu_ticks); R1=$(requests)
sleep $((DURATION - WARMUP))
T2=$(now); C2=$(cpu_ticks); R2=$(requests)
RSS=$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$MPID/status")
HWM=$(awk '/^VmHWM/ {print $2 " " $3}' "/proc/$MPID/status")
THREADS=$(awk '/^Threads/ {print $2}' "/proc/$MPID/status")
STATS=$(stats)
DOWN=$(grep -c 'to=Down' "$TMP/meridian.log" || true)
UP=$(grep -c 'to=Up' "$TMP/meridian.log" || true)

report() { # label t_a t_b c_a c_b r_a r_b
    awk -v label="$1" -v ta="$2" -v tb="$3" -v ca="$4" -v cb="$5" -v ra="$6" -v rb="$7" -v tck="$TCK" 'BEGIN {
        wall = tb - ta; cpu = (cb - ca) / tck; probes = rb - ra;
        printf "%-28s wall %6.2f s  cpu %6.3f s = %5.1f%% of one core  probes %7d = %7.1f/s  %6.1f µs cpu/probe\n",
            label, wall, cpu, 100 * cpu / wall, probes, probes / wall, (probes > 0 ? 1e6 * cpu / probes : 0) }'
}

echo "meridian probe load: $ENDPOINTS endpoints ($REGIONS regions x $PER), distinct URLs, interval 1s, timeout 500ms, $DURATION s"
echo "host: $(nproc) CPUs, $(uname -sr); clock ticks ${TCK}/s"
report "whole run (0-${DURATION}s)" "$T0" "$T2" "$C0" "$C2" "$R0" "$R2"
report "steady (${WARMUP}-${DURATION}s)" "$T1" "$T2" "$C1" "$C2" "$R1" "$R2"
echo "memory: VmRSS $RSS, VmHWM $HWM; threads $THREADS"
echo "backend: $STATS (expected distinct=$ENDPOINTS)"
echo "transitions logged: $UP to Up, $DOWN to Down"
