#!/usr/bin/env bash
# Instructions per answer under callgrind, at a fixed query rate, repeated.
#
# For each run and each query set: a fresh server (Meridian, or the peer named
# by PEER) starts pinned to CPU $SERVER_CPU with one worker thread under
# `valgrind --tool=callgrind`; its answers are checked with dig (abort on any
# wrong one); a warm-up pass fills its caches; `callgrind_control --dump`
# zeroes the counters; dnsperf (pinned to CPU $CLIENT_CPU) sends $COUNT
# queries at -Q $RATE; a second dump holds exactly that window. Its total
# instructions (every thread) ÷ answers is the figure. Each run of each set has
# its own server process, so no run inherits another's caches or allocator
# state.
#
# Prints every run's figure and, per set, the median of the runs. Why several
# runs: the work per answer depends on how many queries each receive batch
# holds, which depends on timing, so single runs spread by more than the
# differences one usually wants to see.
#
# Query sets (bench/lib.sh builds the files, the same as bench/run.sh's):
#   static     static.gslb.example.test A, EDNS0            (run.sh: static)
#   ecs-mix    www A, 10,000 queries each with its own ECS subnet drawn from
#              geoip/demo.csv, 5,890 distinct         (run.sh: www-ecs-var)
#   resolver   issue 19's resolver-shaped mix, 10,000 queries: every name in
#              random case (0x20), DO=1, a client cookie, RD=0, ECS /24 or /56
#              on 85 %; 60 % www A, 15 % www AAAA, 15 % static A, 10 %
#              NXDOMAIN (bench/gen_resolver_queries.py, seed 1)
#   resolver-kept  the same from 100 resolvers, each keeping its client
#              cookie as real resolvers do (--resolvers 100)
#   run.sh's other set names (www-ecs1, weighted, nxdomain) work too.
#
# Loopback only. Every dnsperf run is bounded by a query count (-n) and a
# time limit (-l) and wrapped in `timeout`; server start-up waits are bounded;
# the servers are stopped by PID on exit, Ctrl-C included.
#
# Environment (defaults in brackets):
#   RATE [8000]            -Q of the measured pass, queries/s
#   COUNT [40000]          queries in the measured pass (rounded up to whole
#                          passes over the set's file: ecs-mix has 10,000)
#   RUNS [5]               runs per set, each on a fresh server
#   SETS ["static ecs-mix"]
#   WARM_RATE [2000]       -Q of the warm-up pass (one pass over ecs-mix's
#                          file; 2,000 queries of a one-line set)
#   PEER [meridian]        gdnsd: measure gdnsd on the same files instead;
#                          knot, pdns (SIGNED=1 only): Knot DNS with
#                          mod-onlinesign, PowerDNS with live signing
#                          (bench/signed_peers.sh), sets static and nxdomain
#   SERVER_CPU [0] CLIENT_CPU [1]
#   MERIDIAN_BIN           measure this binary instead of building one with
#                          `cargo build --release`
#   GDNSD_BIN              gdnsd binary [/usr/sbin, then $PATH]
#   KEEP_TMP=1             keep the work directory (logs, dnsperf output, dumps)
#   SIGNED=1               the zone signed online (a fresh ECDSA P-256 key:
#                          Meridian docs/dnssec.md, Knot mod-onlinesign, PowerDNS
#                          pdnsutil secure-zone) and every query with DO=1, so each
#                          answer carries its RRSIG (issue 21 must-show 3); checked
#                          signed (and NXDOMAIN denied with a signed NSEC) before
#                          measuring. Sets static, nxdomain, and ecs-mix (Meridian)
#   PDNS_CACHE [1]         PEER=pdns: 0 turns its packet and query caches off
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

RATE=${RATE:-8000}
COUNT=${COUNT:-40000}
RUNS=${RUNS:-5}
SETS_WANTED=${SETS:-static ecs-mix}
[[ -n ${SETS:-} || ! ${PEER:-} =~ ^(knot|pdns)$ ]] || SETS_WANTED="static nxdomain"
WARM_RATE=${WARM_RATE:-2000}
PEER=${PEER:-meridian}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
int_in "$RATE" 1 200000 || die "RATE must be 1..200000"
int_in "$COUNT" 1 1000000 || die "COUNT must be 1..1000000"
int_in "$RUNS" 1 20 || die "RUNS must be 1..20"
int_in "$WARM_RATE" 1 200000 || die "WARM_RATE must be 1..200000"
NCPU=$(nproc)
int_in "$SERVER_CPU" 0 $((NCPU - 1)) || die "SERVER_CPU must be a CPU of this machine (0..$((NCPU - 1)))"
int_in "$CLIENT_CPU" 0 $((NCPU - 1)) || die "CLIENT_CPU must be a CPU of this machine (0..$((NCPU - 1)))"
case $PEER in
    meridian | gdnsd) ;;
    knot | pdns) [[ ${SIGNED:-0} == 1 ]] || die "PEER=$PEER is measured signed only (SIGNED=1); bench/run.sh measures it unsigned" ;;
    *) die "PEER must be meridian, gdnsd, knot or pdns (got '$PEER')" ;;
esac

missing=()
for c in valgrind callgrind_control dnsperf dig taskset python3; do
    command -v "$c" >/dev/null || missing+=("$c")
done
[[ $PEER != meridian || -n ${MERIDIAN_BIN:-} ]] || command -v cargo >/dev/null || missing+=(cargo)
((${#missing[@]} == 0)) || die "missing required tools: ${missing[*]} (apt-get install valgrind dnsperf bind9-dnsutils util-linux python3)"
GDNSD=
if [[ $PEER == gdnsd ]]; then
    GDNSD=${GDNSD_BIN-$(find_bin gdnsd || true)}
    [[ -n $GDNSD ]] || die "PEER=gdnsd but gdnsd is not installed (apt-get install gdnsd)"
fi
KNOTD= PDNS= PDNSUTIL=
if [[ $PEER == knot ]]; then
    KNOTD=${KNOTD_BIN-$(find_bin knotd || true)}
    [[ -n $KNOTD ]] || die "PEER=knot but knotd is not installed (apt-get install knot)"
fi
if [[ $PEER == pdns ]]; then
    PDNS=${PDNS_BIN-$(find_bin pdns_server || true)}
    PDNSUTIL=$(find_bin pdnsutil || true)
    [[ -n $PDNS && -n $PDNSUTIL ]] || die "PEER=pdns but pdns_server/pdnsutil are not installed (apt-get install pdns-server pdns-backend-bind pdns-backend-sqlite3)"
    PDNS_SIGNED=1
fi
# shellcheck source=bench/signed_peers.sh
source "$BENCH/signed_peers.sh"
others=$(ps -eo pid=,comm= | awk '$2 ~ /^(gdnsd|knotd|pdns_server|meridian|named|nsd|unbound|valgrind.*|memcheck.*|callgrind.*)$/ {print $2 "(" $1 ")"}' | tr '\n' ' ')
[[ -z $others ]] || note "note: other servers are running and share the CPUs: $others (instruction counts barely care; batch sizes do)"

# The binary under test: a private copy, so a concurrent build cannot swap it.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meridian-instr.XXXXXX")
declare -A PID=() PORT=()
cleanup() {
    local s
    for s in "${!PID[@]}"; do stop_server "$s"; done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then note "work directory kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [[ $PEER == meridian ]]; then
    if [[ -n ${MERIDIAN_BIN:-} ]]; then
        BIN=$(realpath "$MERIDIAN_BIN")
        [[ -x $BIN ]] || die "MERIDIAN_BIN=$MERIDIAN_BIN is not executable"
    else
        note "cargo build --release ..."
        (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
        BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/meridian
        [[ $BIN == /* ]] || BIN=$ROOT/$BIN
        [[ -x $BIN ]] || die "no binary at $BIN after the build"
    fi
    note "measuring $BIN ($(sha256sum "$BIN" | cut -c1-16))"
    mkdir -p "$TMP/bin" && cp "$BIN" "$TMP/bin/meridian"
    BIN=$TMP/bin/meridian
    SERVE_HELP=$("$BIN" serve --help 2>&1) || die "$BIN serve --help failed"
else
    BIN= SERVE_HELP=
    note "measuring ${GDNSD:-${KNOTD:-$PDNS}}"
fi

bench_content
SIGNED=${SIGNED:-0}
if [[ $SIGNED == 1 ]]; then
    [[ $PEER != gdnsd ]] || die "SIGNED=1: gdnsd has no DNSSEC (measure it unsigned)"
    mkdir -p "$TMP/zones"
    cp "$ROOT/zones/"* "$TMP/zones/"
    [[ $PEER != meridian ]] || "$BIN" dnssec keygen "$ORIGIN." --out "$TMP/zones/bench.key" >/dev/null || die "meridian dnssec keygen failed"
    printf '\n[dnssec]\nkeys = ["bench.key"]\n' >>"$TMP/zones/$ORIGIN.toml"
    export MERIDIAN_ZONES=$TMP/zones
    python3 "$BENCH/gen_ecs_queries.py" --csv "$ROOT/geoip/demo.csv" --out "$TMP/q/ecs-var-do.bin" \
        --count 10000 --name "www.$ORIGIN" --do 2>/dev/null || die "gen_ecs_queries.py --do failed"
    SET_ARGS[static]+=" -D"
    SET_ARGS[nxdomain]+=" -D"
    SET_ARGS[www-ecs-var]="-d $TMP/q/ecs-var-do.bin -B"
    for s in $SETS_WANTED; do
        [[ $s == static || $s == nxdomain || $s == ecs-mix ]] || die "SIGNED=1 measures the sets static, nxdomain and ecs-mix only (not '$s')"
    done
fi
check_signed() { # the answers carry RRSIGs, or the figure is of unsigned answers
    local q qs=("static.$ORIGIN A") out st
    supports "$PEER" www-ecs-var && qs+=("www.$ORIGIN A +subnet=10.3.0.0/24")
    for q in "${qs[@]}"; do
        # shellcheck disable=SC2086
        dig @127.0.0.1 -p "${PORT[$PEER]}" $q +dnssec +norec +time=5 +tries=2 | grep -q "RRSIG" \
            || die "no RRSIG in the answer to $q with DO=1: not signed"
    done
    # A nonexistent name: denied with a signed NSEC. Its rcode is the server's
    # choice: NOERROR for compact denial (Meridian, RFC 9824, without CO) and
    # Knot's online signer, NXDOMAIN for PowerDNS; the run then expects it on
    # every answer of the set.
    out=$(dig @127.0.0.1 -p "${PORT[$PEER]}" "nx-1.$ORIGIN" A +dnssec +norec +time=5 +tries=2)
    grep -q $'\tNSEC\t' <<<"$out" && grep -q $'\tRRSIG\tNSEC ' <<<"$out" \
        || die "no signed NSEC in the answer to nx-1.$ORIGIN A with DO=1: not signed"
    st=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -1)
    [[ $st == NOERROR || $st == NXDOMAIN ]] || die "nx-1.$ORIGIN A with DO=1 answered $st"
    SET_RCODE[nxdomain]=$st
}
mkdir -p "$TMP/cg"
# Queries in one pass over each set's file (dnsperf -n counts passes).
declare -A PASS_N=([static]=1 [www-ecs1]=1 [weighted]=1 [nxdomain]=1000 [www-ecs-var]=10000 [resolver]=10000 [resolver-kept]=10000)
declare -A WARM_PASSES=([static]=2000 [www-ecs1]=2000 [weighted]=2000 [nxdomain]=2 [www-ecs-var]=1 [resolver]=1 [resolver-kept]=1)
set_of() { # this script's set name -> bench/run.sh's
    case $1 in
        ecs-mix) echo www-ecs-var ;;
        *) echo "$1" ;;
    esac
}
SETS_RUN=()
for s in $SETS_WANTED; do
    r=$(set_of "$s")
    [[ -n ${SET_ARGS[$r]:-} ]] || die "unknown set '$s' (static ecs-mix resolver www-ecs1 weighted nxdomain)"
    supports "$PEER" "$r" || die "$PEER does not serve set '$s'"
    SETS_RUN+=("$s")
done
((${#SETS_RUN[@]})) || die "SETS is empty"

dumps() { # pid: its dump files so far, oldest first (cg.PID.1, cg.PID.2, ...)
    find "$TMP/cg" -name "cg.$1.*" -printf '%f\n' | sort -t. -k3,3n
}
dump_total() { # pid: dump and zero the counters; prints the dump's total instructions
    local pid=$1 before after f i ir=
    before=$(dumps "$pid" | wc -l)
    timeout 60 callgrind_control --dump "$pid" >/dev/null 2>&1 || die "callgrind_control --dump $pid failed"
    # The dump is written by the server itself: wait (bounded) for the new file's totals line.
    for i in $(seq 100); do
        after=$(dumps "$pid" | wc -l)
        if ((after > before)); then
            f=$TMP/cg/$(dumps "$pid" | tail -1)
            ir=$(sed -n 's/^totals: *//p;s/^summary: *//p' "$f" | head -1 | cut -d' ' -f1)
            [[ -n $ir ]] && break
        fi
        sleep 0.1
    done
    [[ -n $ir ]] || die "no callgrind dump from pid $pid in $TMP/cg"
    echo "$ir"
}

RESULTS=$TMP/results.tsv
: >"$RESULTS"
run_one() { # run set
    local run=$1 set=$2 r out pid ir passes lim comp lost rc
    r=$(set_of "$set")
    out=$TMP/logs/$PEER-$set-$run
    PORT[$PEER]=$(free_port)
    [[ -n ${PORT[$PEER]} ]] || die "no free loopback port"
    WRAP=(valgrind --tool=callgrind --callgrind-out-file="$TMP/cg/cg.%p")
    "start_$PEER" pinned
    WRAP=()
    wait_ready "$PEER" 1200
    verify "$PEER" # exits, naming every wrong answer, before anything is measured
    [[ $SIGNED != 1 ]] || check_signed
    pid=${PID[$PEER]}
    # shellcheck disable=SC2086
    timeout 300 taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$PEER]}" ${SET_ARGS[$r]} \
        -n "${WARM_PASSES[$r]}" -l 120 -Q "$WARM_RATE" -t 5 >"$out.warm" 2>&1 \
        || { cat "$out.warm" >&2; die "dnsperf (warm-up) failed against $PEER ($set)"; }
    dump_total "$pid" >/dev/null
    passes=$(((COUNT + PASS_N[$r] - 1) / PASS_N[$r]))
    lim=$((2 * passes * PASS_N[$r] / RATE + 10)) # twice the planned time, then stop regardless
    # shellcheck disable=SC2086
    timeout $((lim + 30)) taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$PEER]}" ${SET_ARGS[$r]} \
        -n "$passes" -l "$lim" -Q "$RATE" -c 1 -q 100 -t 2 >"$out" 2>&1 \
        || { cat "$out" >&2; die "dnsperf failed against $PEER ($set)"; }
    ir=$(dump_total "$pid")
    kill -0 "$pid" 2>/dev/null || { tail -20 "${LOG[$PEER]}" >&2; die "$PEER died during $set"; }
    stop_server "$PEER"
    comp=$(awk '/Queries completed:/ {print $3}' "$out")
    lost=$(awk '/Queries lost:/ {print $3}' "$out")
    rc=$(sed -n 's/^ *Response codes: *//p' "$out")
    [[ -n $comp && -n $lost ]] || { cat "$out" >&2; die "cannot parse dnsperf output ($PEER, $set)"; }
    ((comp > 0)) || die "$PEER answered none of $set"
    # Every answer carries the set's rcode, or the figure is of something else.
    rcodes_ok "$r" "$rc" || die "$PEER $set: unexpected response codes: $rc"
    local per
    per=$(awk -v i="$ir" -v c="$comp" 'BEGIN { printf "%.0f", i / c }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$PEER" "$set" "$run" "$comp" "$lost" "$ir" "$per" >>"$RESULTS"
    note "$(printf '%-8s %-8s run %d: %6d answers, %4d lost, %12d instructions, %6d per answer' \
        "$PEER" "$set" "$run" "$comp" "$lost" "$ir" "$per")"
    # Lost queries were (mostly) answered too late: their work is counted, their answers not.
    ((lost * 100 <= comp)) || note "WARNING: $PEER $set run $run lost $lost queries (over 1%): overloaded at $RATE q/s under callgrind"
}

note "$PEER under callgrind, CPU $SERVER_CPU, 1 worker; dnsperf on CPU $CLIENT_CPU: $COUNT queries at $RATE q/s; $RUNS run(s) of: ${SETS_RUN[*]}"
for run in $(seq "$RUNS"); do
    for set in "${SETS_RUN[@]}"; do run_one "$run" "$set"; done
done

SIGNED_NOTE=
[[ $SIGNED != 1 ]] || SIGNED_NOTE=", signed zone, DO=1 (SIGNED=1)$([[ $PEER != pdns ]] || echo ", PDNS_CACHE=${PDNS_CACHE:-1}")"
echo "# instructions per answer (callgrind, counters zeroed after warm-up): $PEER, $COUNT queries at $RATE q/s$SIGNED_NOTE"
printf '%-8s %-8s %-48s %s\n' server set "runs (instructions per answer)" median
for set in "${SETS_RUN[@]}"; do
    runs=$(awk -F'\t' -v s="$set" '$2 == s {print $7}' "$RESULTS")
    median=$(sort -n <<<"$runs" | awk '{ v[NR] = $1 } END { printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    printf '%-8s %-8s %-48s %s\n' "$PEER" "$set" "$(tr '\n' ' ' <<<"$runs")" "$median"
done
echo "# in run order: server set run answers lost instructions per_answer"
cat "$RESULTS"
