#!/usr/bin/env bash
# Meridian query-path benchmark against gdnsd, Knot DNS and PowerDNS.
#
# Builds `cargo build --release`, starts Meridian and the peers on loopback
# ports with equivalent content (the shipped zones/ and geoip/demo.mmdb), digs
# every server for the benchmark names and a sample of ECS subnets (aborts if
# any answer is wrong), then drives each with dnsperf:
#
#   phase 1, fixed rate: every server pinned to CPU $SERVER_CPU with one worker
#     thread, dnsperf pinned to CPU $CLIENT_CPU at -Q $RATE for -l $DURATION s,
#     query sets interleaved across servers (A B C A B C ...) for $ROUNDS rounds;
#     the server's user+system CPU (/proc/PID/stat) per answer is the figure
#     to compare.
#   phase 2, peak: servers restarted unpinned with one worker per core,
#     dnsperf unpinned with 2 threads and no practical rate limit, short runs.
#
# Prints a Markdown report and writes it to bench/results/<UTC timestamp>.md.
# Loopback only; every load run is bounded by -l and by `timeout`.
#
# Needs: cargo, python3 (>= 3.11), dig, taskset, dnsperf. Missing any of these
# exits 1 naming them. Peers: gdnsd, knotd, pdns_server with the bind and
# geoip backends; a missing peer is SKIPPED with a loud note (REQUIRE_PEERS=1
# makes that fatal too). See docs/performance.md.
#
# Environment (defaults in brackets):
#   RATE [80000]        offered queries/s in phase 1
#   DURATION [10]       seconds per phase-1 run
#   ROUNDS [3]          phase-1 rounds
#   QUICK=1             smoke test: ROUNDS=1 DURATION=5 PEAK_DURATION=3
#   PEAK_RATE [500000]  -Q in phase 2;  PEAK_DURATION [5] seconds per run
#   PEAK=0              skip phase 2
#   PEERS ["gdnsd knot pdns"]  which peers to run
#   REQUIRE_PEERS=1     a missing peer is an error, not a skip
#   PDNS_CACHE [1]      0 disables PowerDNS's packet and query caches
#   SERVER_CPU [0] CLIENT_CPU [1]
#   MERIDIAN_BIN        measure this binary instead of building target/release/meridian
#   KEEP_TMP=1          keep the work directory (configs, logs, dnsperf output)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench

# Which settings came from the environment (for the "exact command" line).
declare -A ENV_SET=()
for v in QUICK RATE DURATION ROUNDS PEAK PEAK_RATE PEAK_DURATION INSTR PEERS REQUIRE_PEERS PDNS_CACHE SERVER_CPU CLIENT_CPU MERIDIAN_BIN; do
    [[ -n ${!v:-} ]] && ENV_SET[$v]=1
done
if [[ ${QUICK:-0} == 1 ]]; then
    ROUNDS=${ROUNDS:-1}
    DURATION=${DURATION:-5}
    PEAK_DURATION=${PEAK_DURATION:-3}
fi
RATE=${RATE:-80000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
PEAK=${PEAK:-1}
INSTR=${INSTR:-1}
PEAK_RATE=${PEAK_RATE:-500000}
PEAK_DURATION=${PEAK_DURATION:-5}
PEERS=${PEERS:-gdnsd knot pdns}
REQUIRE_PEERS=${REQUIRE_PEERS:-0}
PDNS_CACHE=${PDNS_CACHE:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

# die, note, banner, the content and the Meridian and gdnsd start functions.
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
int_in "$RATE" 1 2000000 || die "RATE must be 1..2000000"
int_in "$DURATION" 1 120 || die "DURATION must be 1..120 seconds"
int_in "$ROUNDS" 1 10 || die "ROUNDS must be 1..10"
int_in "$PEAK_RATE" 1 5000000 || die "PEAK_RATE must be 1..5000000"
int_in "$PEAK_DURATION" 1 60 || die "PEAK_DURATION must be 1..60 seconds"
NCPU=$(nproc)
int_in "$SERVER_CPU" 0 $((NCPU - 1)) || die "SERVER_CPU must be a CPU of this machine (0..$((NCPU - 1)))"
int_in "$CLIENT_CPU" 0 $((NCPU - 1)) || die "CLIENT_CPU must be a CPU of this machine (0..$((NCPU - 1)))"
((NCPU >= 2)) || note "only $NCPU CPU: server and dnsperf share it; numbers mean little"

# ---------------------------------------------------------------------------
# Requirements.
missing=()
command -v cargo >/dev/null || [[ -n ${MERIDIAN_BIN:-} ]] || missing+=("cargo (rustup)")
command -v dnsperf >/dev/null || missing+=("dnsperf (apt-get install dnsperf)")
command -v dig >/dev/null || missing+=("dig (apt-get install bind9-dnsutils)")
command -v taskset >/dev/null || missing+=("taskset (apt-get install util-linux)")
if ! command -v python3 >/dev/null; then
    missing+=("python3 >= 3.11 (apt-get install python3)")
elif ! python3 -c 'import tomllib' 2>/dev/null; then
    missing+=("python3 >= 3.11 (has tomllib; found $(python3 --version 2>&1))")
fi
if ((${#missing[@]})); then
    echo "run.sh: missing required tools:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
fi

declare -A SKIP=()   # peer -> why it is not measured
# GDNSD_BIN, KNOTD_BIN, PDNS_BIN override where the peers are; set to "" they
# count as not installed (how the skip path is tested).
GDNSD=${GDNSD_BIN-$(find_bin gdnsd || true)}
KNOTD=${KNOTD_BIN-$(find_bin knotd || true)}
PDNS=${PDNS_BIN-$(find_bin pdns_server || true)}
pdns_module() { # the backend .so, wherever the distribution put it
    local f
    for f in /usr/lib/*/pdns/lib"$1"backend.so /usr/lib/pdns/lib"$1"backend.so /usr/lib64/pdns/lib"$1"backend.so; do
        [[ -f $f ]] && { echo "$f"; return 0; }
    done
    return 1
}
for p in $PEERS; do
    case $p in
        gdnsd) [[ -n $GDNSD ]] || SKIP[gdnsd]="gdnsd not installed (apt-get install gdnsd)" ;;
        knot) [[ -n $KNOTD ]] || SKIP[knot]="knotd not installed (apt-get install knot)" ;;
        pdns)
            if [[ -z $PDNS ]]; then
                SKIP[pdns]="pdns_server not installed (apt-get install pdns-server pdns-backend-bind pdns-backend-geoip)"
            else
                m=()
                pdns_module bind >/dev/null || m+=(pdns-backend-bind)
                pdns_module geoip >/dev/null || m+=(pdns-backend-geoip)
                ((${#m[@]} == 0)) || SKIP[pdns]="PowerDNS backend(s) missing (apt-get install ${m[*]})"
            fi
            ;;
        *) die "unknown peer '$p' in PEERS (gdnsd knot pdns)" ;;
    esac
done
if ((${#SKIP[@]})); then
    lines=("PEERS SKIPPED -- the tables will NOT include them:")
    for p in "${!SKIP[@]}"; do lines+=("  $p: ${SKIP[$p]}"); done
    banner "${lines[@]}"
    [[ $REQUIRE_PEERS == 1 ]] && die "REQUIRE_PEERS=1 and a peer is missing"
fi
ACTIVE_PEERS=()
for p in $PEERS; do [[ -z ${SKIP[$p]:-} ]] && ACTIVE_PEERS+=("$p"); done
SERVERS=(meridian "${ACTIVE_PEERS[@]}")

# Daemons that we did not start compete for the CPUs (a distribution's
# auto-started service, other people's test servers): say so.
others=$(ps -eo pid=,comm= | awk '$2 ~ /^(gdnsd|knotd|pdns_server|meridian|named|nsd|unbound)$/ {print $2 "(" $1 ")"}' | tr '\n' ' ')
[[ -z $others ]] || note "WARNING: other DNS servers are running and share the CPUs: $others"

# ---------------------------------------------------------------------------
# Build (or take) the binary under test.
if [[ -n ${MERIDIAN_BIN:-} ]]; then
    BIN=$(realpath "$MERIDIAN_BIN")
    [[ -x $BIN ]] || die "MERIDIAN_BIN=$MERIDIAN_BIN is not executable"
    note "measuring MERIDIAN_BIN=$BIN (no build)"
else
    note "cargo build --release ..."
    (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/meridian
    [[ $BIN == /* ]] || BIN=$ROOT/$BIN
    [[ -x $BIN ]] || die "no binary at $BIN after the build"
fi
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/meridian-bench.XXXXXX")
# Run a private copy: a concurrent `cargo build` must not swap the binary
# between phase 1 and phase 2.
BIN_SRC=$BIN
BIN_MTIME=$(date -u -r "$BIN_SRC" +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$TMP/bin" && cp "$BIN_SRC" "$TMP/bin/meridian"
BIN=$TMP/bin/meridian
SERVE_HELP=$("$BIN" serve --help 2>&1) || die "$BIN serve --help failed"
declare -A PID=() PORT=()
cleanup() {
    local s
    for s in "${!PID[@]}"; do stop_server "$s"; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then note "work directory kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# Content (bench/lib.sh): zone file, query files, SETS and their arguments.
bench_content
# RUN_SETS: only these sets in the fixed-rate phase (e.g. "resolver" for a
# long interleaved CPU run of one set); default: every set.
if [[ -n ${RUN_SETS:-} ]]; then
    wanted=()
    for s in $RUN_SETS; do
        [[ -n ${SET_ARGS[$s]:-} ]] || die "RUN_SETS: unknown set '$s' (${SETS[*]})"
        wanted+=("$s")
    done
    SETS=("${wanted[@]}")
fi
PEAK_SETS=(static www-ecs-var)

# ---------------------------------------------------------------------------
# Servers: start_meridian and start_gdnsd are in bench/lib.sh.
start_knot() {
    local mode=$1 d=$TMP/knot pin=() workers=""
    if [[ $mode == pinned ]]; then
        pin=(taskset -c "$SERVER_CPU")
        workers=$'    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1'
    fi
    rm -rf "$d" && mkdir -p "$d/zones" "$d/db"
    cp "$TMP/static.zone" "$d/zones/$ORIGIN.zone"
    cat >"$d/knot.conf" <<EOF
server:
    rundir: "$d"
    pidfile: "$d/knot.pid"
    listen: 127.0.0.1@${PORT[knot]}
    udp-max-payload: 1232
$workers

database:
    storage: "$d/db"

log:
  - target: stderr
    any: notice

control:
    listen: "$d/knot.sock"

template:
  - id: default
    storage: "$d/zones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none

zone:
  - domain: "$ORIGIN"
    file: "$ORIGIN.zone"
EOF
    (exec "${pin[@]}" "${WRAP[@]}" "$KNOTD" -c "$d/knot.conf" >"$d/log.$mode" 2>&1) &
    PID[knot]=$!
    LOG[knot]=$d/log.$mode
}

start_pdns() {
    local mode=$1 d=$TMP/pdns pin=() cache="" threads
    # pinned: one receiver and one distributor thread; free: a receiver per
    # core (SO_REUSEPORT), distributors at their default (3 per receiver).
    if [[ $mode == pinned ]]; then
        pin=(taskset -c "$SERVER_CPU")
        threads=$'receiver-threads=1\ndistributor-threads=1'
    else
        threads="receiver-threads=$NCPU"
    fi
    [[ $PDNS_CACHE == 1 ]] || cache=$'cache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0'
    mkdir -p "$d"
    {
        cat "$TMP/static.zone"
        echo "; GSLB names (bench/run.sh)"
        echo "www 30 IN LUA A \";if continent('NA') or continent('SA') then return '192.0.2.10' elseif continent('EU') or continent('AF') then return '198.51.100.10' elseif continent('AS') or continent('OC') then return '203.0.113.10' else return pickclosest({'192.0.2.10','198.51.100.10','203.0.113.10'}) end\""
        echo "www 30 IN LUA AAAA \";if continent('NA') or continent('SA') then return '2001:db8:10::10' elseif continent('EU') or continent('AF') then return '2001:db8:20::10' elseif continent('AS') or continent('OC') then return '2001:db8:30::10' else return pickclosest({'2001:db8:10::10','2001:db8:20::10','2001:db8:30::10'}) end\""
        echo "weighted 30 IN LUA A \"pickwrandom({{50,'192.0.2.10'},{30,'198.51.100.10'},{20,'203.0.113.10'}})\""
    } >"$d/$ORIGIN.zone"
    echo "zone \"$ORIGIN\" { type master; file \"$d/$ORIGIN.zone\"; };" >"$d/named.conf"
    echo "domains: []" >"$d/geo-zones.yaml"
    cat >"$d/pdns.conf" <<EOF
launch=bind,geoip
bind-config=$d/named.conf
geoip-database-files=mmdb:$TMP/demo-pdns.mmdb
geoip-zones-file=$d/geo-zones.yaml
enable-lua-records=yes
edns-subnet-processing=yes
local-address=127.0.0.1
local-port=${PORT[pdns]}
$threads
socket-dir=$d
daemon=no
guardian=no
disable-syslog=yes
write-pid=no
security-poll-suffix=
loglevel=4
$cache
EOF
    (exec "${pin[@]}" "${WRAP[@]}" "$PDNS" --config-dir="$d" >"$d/log.$mode" 2>&1) &
    PID[pdns]=$!
    LOG[pdns]=$d/log.$mode
}

start_all() { # mode
    local s
    for s in "${SERVERS[@]}"; do
        PORT[$s]=$(free_port)
        [[ -n ${PORT[$s]} ]] || die "no free loopback port"
        "start_$s" "$1"
    done
    for s in "${SERVERS[@]}"; do wait_ready "$s"; verify "$s"; done
}
stop_all() { local s; for s in "${SERVERS[@]}"; do stop_server "$s"; done; }

# ---------------------------------------------------------------------------
# Measurement.
TCK=$(getconf CLK_TCK)
tree_pids() { # a pid and all its descendants
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { kids[$2] = kids[$2] " " $1 }
        END {
            n = 1; q[1] = root; out = root
            for (i = 1; i <= n; i++) {
                m = split(kids[q[i]], c, " ")
                for (j = 1; j <= m; j++) { q[++n] = c[j]; out = out " " c[j] }
            }
            print out
        }'
}
cpu_ticks() { # "utime stime" summed over the server's process tree
    local u=0 s=0 p f
    for p in $(tree_pids "$1"); do
        f=$(cat /proc/"$p"/stat 2>/dev/null) || continue
        f=${f##*) }                       # fields after "(comm) "
        read -r -a a <<<"$f"              # a[0] is field 3 (state): utime = a[11], stime = a[12]
        u=$((u + a[11])); s=$((s + a[12]))
    done
    echo "$u $s"
}
rss_kb() {
    local t=0 p v
    for p in $(tree_pids "$1"); do
        v=$(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status 2>/dev/null || true)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
threads_of() { awk '/^Threads:/ {print $2}' /proc/"$1"/status 2>/dev/null || echo "?"; }

RAW=$TMP/raw.tsv
printf 'phase\tround\tserver\tset\toffered\tqps\tsent\tcompleted\tlost\tlatency_s\truntime_s\tutime\tstime\ttck\trss_kb\trcodes\trcode_ok\tload1\tresp_bytes\n' >"$RAW"
run_one() { # phase round server set
    local phase=$1 round=$2 s=$3 set=$4 out pin=() opts
    out=$TMP/logs/$phase-$round-$s-$set.txt
    if [[ $phase == fixed ]]; then
        pin=(taskset -c "$CLIENT_CPU")
        opts=(-Q "$RATE" -l "$DURATION" -c 1 -q 100 -t 2)
    else
        opts=(-Q "$PEAK_RATE" -l "$PEAK_DURATION" -c 4 -T 2 -q 500 -t 2)
    fi
    local lim=$((${opts[3]} + 20))
    kill -0 "${PID[$s]}" 2>/dev/null || die "$s died before $set (log: ${LOG[$s]})"
    local c0 c1
    c0=$(cpu_ticks "${PID[$s]}")
    # shellcheck disable=SC2086
    timeout "$lim" "${pin[@]}" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" ${SET_ARGS[$set]} "${opts[@]}" >"$out" 2>&1 \
        || { cat "$out" >&2; die "dnsperf failed against $s ($set)"; }
    c1=$(cpu_ticks "${PID[$s]}")
    kill -0 "${PID[$s]}" 2>/dev/null || { tail -20 "${LOG[$s]}" >&2; die "$s died during $set"; }
    local rss load sent comp lost qps lat rt rb rc ok
    rss=$(rss_kb "${PID[$s]}")
    load=$(cut -d' ' -f1 /proc/loadavg)
    sent=$(awk '/Queries sent:/ {print $3}' "$out")
    comp=$(awk '/Queries completed:/ {print $3}' "$out")
    lost=$(awk '/Queries lost:/ {print $3}' "$out")
    qps=$(awk '/Queries per second:/ {print $4}' "$out")
    lat=$(awk '/Average Latency \(s\):/ {print $4}' "$out")
    rt=$(awk '/Run time \(s\):/ {print $4}' "$out")
    # Mean response size: a server that truncates (TC=1, e.g. rate limiting
    # with slip) still answers NOERROR, but its responses shrink.
    rb=$(sed -n 's/.*Average packet size:.*response \([0-9]*\).*/\1/p' "$out")
    rc=$(sed -n 's/^ *Response codes: *//p' "$out")
    [[ -n $comp && -n $qps ]] || { cat "$out" >&2; die "cannot parse dnsperf output ($s, $set)"; }
    # Every answer must carry the set's rcode (e.g. "NOERROR 200000 (100.00%)").
    ok=1
    rcodes_ok "$set" "$rc" || ok=0
    ((comp > 0)) || ok=0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$phase" "$round" "$s" "$set" "${opts[1]}" "$qps" "$sent" "$comp" "$lost" "$lat" "$rt" \
        $(($(cut -d' ' -f1 <<<"$c1") - $(cut -d' ' -f1 <<<"$c0"))) \
        $(($(cut -d' ' -f2 <<<"$c1") - $(cut -d' ' -f2 <<<"$c0"))) \
        "$TCK" "$rss" "$rc" "$ok" "$load" "${rb:-?}" >>"$RAW"
    ((ok)) || note "WARNING: $s $set: unexpected response codes: $rc"
    note "$(printf '%-6s r%s %-9s %-12s %9.0f qps  lost %-6s lat %s s' "$phase" "$round" "$s" "$set" "$qps" "$lost" "$lat")"
}

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMAND=
for v in QUICK RATE DURATION ROUNDS PEAK PEAK_RATE PEAK_DURATION INSTR PEERS REQUIRE_PEERS PDNS_CACHE SERVER_CPU CLIENT_CPU MERIDIAN_BIN; do
    [[ -n ${ENV_SET[$v]:-} ]] && COMMAND+="$v=$(printf '%q' "${!v}") "
done
COMMAND+="bench/run.sh"
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

note "phase 1: pinned servers (CPU $SERVER_CPU, 1 worker), dnsperf on CPU $CLIENT_CPU, -Q $RATE -l $DURATION, $ROUNDS round(s)"
start_all pinned
declare -A THREADS_PINNED=()
for s in "${SERVERS[@]}"; do THREADS_PINNED[$s]=$(threads_of "${PID[$s]}"); done
for round in $(seq "$ROUNDS"); do
    for set in "${SETS[@]}"; do
        for s in "${SERVERS[@]}"; do
            supports "$s" "$set" && run_one fixed "$round" "$s" "$set"
        done
    done
done
stop_all

declare -A THREADS_FREE=()
if [[ $PEAK == 1 ]]; then
    note "phase 2: peak, unpinned, one worker per core ($NCPU), dnsperf -T 2 -c 4 -Q $PEAK_RATE -l $PEAK_DURATION"
    start_all free
    for s in "${SERVERS[@]}"; do THREADS_FREE[$s]=$(threads_of "${PID[$s]}"); done
    for set in "${PEAK_SETS[@]}"; do
        for s in "${SERVERS[@]}"; do
            supports "$s" "$set" && run_one peak 1 "$s" "$set"
        done
    done
    stop_all
fi
# Phase 3: user-space instructions per answer, exact and repeatable, under
# callgrind (the CPU columns above are sampled at clock ticks and noisy).
# Each server runs pinned under valgrind; a warm-up pass fills caches, then
# the counters are zeroed (callgrind_control --dump) and the measured passes
# run at a low rate; instructions of that window ÷ answers. PowerDNS is left
# out: its Lua records are ~400 µs per answer, nothing to resolve here.
INSTR_RAW=$TMP/instr.tsv
printf 'server\tset\tqueries\tinstructions\n' >"$INSTR_RAW"
declare -A WARM_N=([static]=2000 [www-ecs1]=2000 [www-ecs-var]=1 [weighted]=2000 [nxdomain]=2 [resolver]=1 [resolver-kept]=1)
declare -A MEASURE_N=([static]=5000 [www-ecs1]=5000 [www-ecs-var]=2 [weighted]=5000 [nxdomain]=5 [resolver]=2 [resolver-kept]=2)
instr_one() { # server set
    local s=$1 set=$2 out=$TMP/logs/instr-$1-$2 dump
    # shellcheck disable=SC2086
    timeout 300 dnsperf -s 127.0.0.1 -p "${PORT[$s]}" ${SET_ARGS[$set]} -n "${WARM_N[$set]}" -Q 2000 -t 5 >"$out.warm" 2>&1 \
        || { cat "$out.warm" >&2; die "dnsperf (warm-up) failed against $s ($set) under callgrind"; }
    callgrind_control --dump "${PID[$s]}" >/dev/null 2>&1 || die "callgrind_control cannot reach $s (pid ${PID[$s]})"
    # shellcheck disable=SC2086
    timeout 300 dnsperf -s 127.0.0.1 -p "${PORT[$s]}" ${SET_ARGS[$set]} -n "${MEASURE_N[$set]}" -Q 2000 -t 5 >"$out" 2>&1 \
        || { cat "$out" >&2; die "dnsperf failed against $s ($set) under callgrind"; }
    callgrind_control --dump "${PID[$s]}" >/dev/null 2>&1
    sleep 0.5
    dump=$(ls -t "$TMP/cg/$s".* 2>/dev/null | head -1)
    local ir comp
    ir=$(sed -n 's/^summary: *//p;s/^totals: *//p' "$dump" | head -1)
    comp=$(awk '/Queries completed:/ {print $3}' "$out")
    [[ -n $ir && -n $comp ]] || die "no callgrind figures for $s ($set) in $dump"
    printf '%s\t%s\t%s\t%s\n' "$s" "$set" "$comp" "$ir" >>"$INSTR_RAW"
    note "$(printf 'instr  %-9s %-12s %6d answers  %8.0f instructions/answer' "$s" "$set" "$comp" "$((ir / comp))")"
}
if [[ $INSTR == 1 ]] && ! command -v valgrind >/dev/null; then
    banner "valgrind is not installed: no instruction table (apt-get install valgrind)"
    INSTR=0
fi
if [[ $INSTR == 1 ]]; then
    note "phase 3: instructions per answer under callgrind (pinned, 1 worker; Meridian and the peers but PowerDNS)"
    mkdir -p "$TMP/cg"
    for s in "${SERVERS[@]}"; do
        [[ $s == pdns ]] && continue
        WRAP=(valgrind --tool=callgrind --callgrind-out-file="$TMP/cg/$s.%p")
        "start_$s" pinned
        WRAP=()
        wait_ready "$s" 1200
        for set in "${SETS[@]}"; do
            supports "$s" "$set" && instr_one "$s" "$set"
        done
        stop_server "$s"
    done
fi
T_END=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# Report.
ver() { "$@" 2>&1 | head -1 || true; }
{
    echo "run_started=$STARTED"
    echo "runtime_s=$((T_END - T_START))"
    echo "commit=$COMMIT"
    echo "dirty_files=$DIRTY"
    echo "binary=$BIN_SRC"
    echo "binary_version=$(ver "$BIN" --version)"
    echo "binary_sha256=$(sha256sum "$BIN" | cut -c1-16)"
    echo "binary_mtime=$BIN_MTIME"
    echo "meridian_threads_how=$MERIDIAN_THREADS_HOW"
    echo "cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "ncpu=$NCPU"
    echo "kernel=$(uname -sr)"
    echo "load_start=$LOAD_START"
    echo "load_end=$LOAD_END"
    echo "rate=$RATE"
    echo "duration=$DURATION"
    echo "rounds=$ROUNDS"
    echo "peak=$PEAK"
    echo "peak_rate=$PEAK_RATE"
    echo "peak_duration=$PEAK_DURATION"
    echo "server_cpu=$SERVER_CPU"
    echo "client_cpu=$CLIENT_CPU"
    echo "pdns_cache=$PDNS_CACHE"
    echo "quick=${QUICK:-0}"
    echo "command=$COMMAND"
    echo "dnsperf=$(dnsperf -h 2>&1 | awk '/^Version/ {print $2}')"
    for s in "${SERVERS[@]}"; do
        case $s in
            meridian) v=$(ver "$BIN" --version) ;;
            gdnsd) v=$("$GDNSD" -c /nonexistent checkconf 2>&1 | sed -n 's/.*gdnsd version \([^ ]*\).*/gdnsd \1/p' | head -1) ;;
            knot) v=$(ver "$KNOTD" -V) ;;
            pdns) v="PowerDNS $(dpkg-query -W -f '${Version}' pdns-server 2>/dev/null || echo '?')" ;;
        esac
        echo "version_$s=$v"
        echo "threads_pinned_$s=${THREADS_PINNED[$s]:-}"
        echo "threads_free_$s=${THREADS_FREE[$s]:-}"
    done
    for p in "${!SKIP[@]}"; do echo "skipped_$p=${SKIP[$p]}"; done
} >"$TMP/meta.env"

mkdir -p "$BENCH/results"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
SUFFIX=
[[ ${QUICK:-0} == 1 ]] && SUFFIX=-quick
REPORT=$BENCH/results/$STAMP$SUFFIX.md
python3 "$BENCH/report.py" "$TMP/meta.env" "$RAW" "$INSTR_RAW" >"$REPORT" || die "report.py failed (raw data: KEEP_TMP=1 to keep $RAW)"
cat "$REPORT"
note "written: ${REPORT#"$ROOT"/}"
if ((${#SKIP[@]})); then
    lines=("PEERS SKIPPED -- not in the tables above:")
    for p in "${!SKIP[@]}"; do lines+=("  $p: ${SKIP[$p]}"); done
    banner "${lines[@]}"
fi
