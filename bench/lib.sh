# Shared parts of the benchmark scripts (bench/run.sh, bench/instr.sh): the
# content (zone file for the peers, query files, query sets), the Meridian and
# gdnsd start functions, and the answer checks run before anything is
# measured. Sourced, not run. The caller sets ROOT, BENCH, TMP, BIN,
# SERVE_HELP, SERVER_CPU, NCPU and GDNSD and declares the PID, PORT and LOG
# arrays before calling into it.

die() { echo "${0##*/}: $*" >&2; exit 1; }
note() { echo "[bench] $*" >&2; }
banner() {
    echo "" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    for l in "$@"; do echo "!!! $l" >&2; done
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "" >&2
}
int_in() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2 && $1 <= $3)); }

find_bin() { # the first of the usual sbin dirs, then PATH
    local n=$1 d
    for d in /usr/sbin /usr/local/sbin /sbin; do [[ -x $d/$n ]] && { echo "$d/$n"; return 0; }; done
    command -v "$n" 2>/dev/null || return 1
}

stop_server() {
    local s=$1 p=${PID[$1]:-} i
    [[ -n $p ]] || return 0
    kill "$p" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    PID[$s]=
}

# ---------------------------------------------------------------------------
# Content: the peers' zone file from zones/, the GeoIP database copy, queries.
ORIGIN=gslb.example.test
bench_content() { # into $TMP; defines SETS, SET_ARGS, SET_RCODE, ECS_ONE
    ZONE_TOML=$ROOT/zones/gslb.example.test.toml
    [[ -f $ZONE_TOML ]] || die "$ZONE_TOML not found"
    python3 "$BENCH/gen_zone.py" "$ZONE_TOML" >"$TMP/static.zone" || die "gen_zone.py failed"
    cp "$ROOT/geoip/demo.mmdb" "$TMP/demo.mmdb"
    # PowerDNS only: the same CSV built with location.accuracy_radius, without
    # which PowerDNS 4.7 ignores a location (see bench/gen_mmdb.py).
    python3 "$BENCH/gen_mmdb.py" "$ROOT/geoip/demo.csv" "$TMP/demo-pdns.mmdb" 2>/dev/null || die "gen_mmdb.py failed"
    mkdir -p "$TMP/q" "$TMP/logs"
    echo "static.$ORIGIN A" >"$TMP/q/static.txt"
    echo "www.$ORIGIN A" >"$TMP/q/www.txt"
    echo "weighted.$ORIGIN A" >"$TMP/q/weighted.txt"
    for i in $(seq 1000); do echo "nx-$i.$ORIGIN A"; done >"$TMP/q/nxdomain.txt"
    python3 "$BENCH/gen_ecs_queries.py" --csv "$ROOT/geoip/demo.csv" --out "$TMP/q/ecs-var.bin" \
        --count 10000 --name "www.$ORIGIN" --samples 24 >"$TMP/q/ecs-samples.txt" || die "gen_ecs_queries.py failed"
    python3 "$BENCH/gen_resolver_queries.py" --csv "$ROOT/geoip/demo.csv" --out "$TMP/q/resolver.bin" \
        --count 10000 --origin "$ORIGIN" 2>/dev/null || die "gen_resolver_queries.py failed"
    python3 "$BENCH/gen_resolver_queries.py" --csv "$ROOT/geoip/demo.csv" --out "$TMP/q/resolver-kept.bin" \
        --count 10000 --origin "$ORIGIN" --resolvers 100 2>/dev/null || die "gen_resolver_queries.py failed"

    # Query sets: name | dnsperf arguments | rcode every answer must have.
    # RFC 7871 §6: FAMILY 0001 (IPv4), SOURCE PREFIX 18 (/24), SCOPE PREFIX 00,
    # ADDRESS 0a0300 (10.3.0, only the prefix's 3 bytes). verify() digs the same
    # bytes with +ednsopt, so a malformed option fails before anything is measured.
    ECS_ONE=000118000a0300
    # resolver: issue 19's resolver-shaped mix (bench/gen_resolver_queries.py):
    # 0x20 case, DO, a cookie, ECS on 85 %; www A/AAAA, static A, 10 % NXDOMAIN.
    # resolver-kept: the same queries from 100 resolvers each keeping its
    # client cookie (as real ones do), so server cookies repeat.
    SETS=(static www-ecs1 www-ecs-var weighted nxdomain resolver resolver-kept)
    declare -gA SET_ARGS=(
        [static]="-d $TMP/q/static.txt -e"
        [www-ecs1]="-d $TMP/q/www.txt -E 8:$ECS_ONE"
        [www-ecs-var]="-d $TMP/q/ecs-var.bin -B"
        [weighted]="-d $TMP/q/weighted.txt -e"
        [nxdomain]="-d $TMP/q/nxdomain.txt -e"
        [resolver]="-d $TMP/q/resolver.bin -B"
        [resolver-kept]="-d $TMP/q/resolver-kept.bin -B"
    )
    # The same, for bench/sampled.sh on a kept work directory: "set<TAB>args" per line.
    for s in "${SETS[@]}"; do printf '%s\t%s\n' "$s" "${SET_ARGS[$s]}"; done >"$TMP/q/sets.tsv"
    declare -gA SET_RCODE=([static]=NOERROR [www-ecs1]=NOERROR [www-ecs-var]=NOERROR [weighted]=NOERROR [nxdomain]=NXDOMAIN [resolver]=NOERROR+NXDOMAIN [resolver-kept]=NOERROR+NXDOMAIN)
}
rcodes_ok() { # set "dnsperf's Response codes line": every answer has the set's rcode(s)
    local want=${SET_RCODE[$1]} n='[0-9]+ \([0-9.]+%\)'
    case $want in
        *+*) [[ $2 =~ ^${want%+*}\ $n,\ ${want#*+}\ $n$ ]] ;;
        *) [[ $2 =~ ^$want\ [0-9]+\ \(100\.00%\)$ ]] ;;
    esac
}
supports() { # server set: does this server serve the set's names equivalently?
    case $1:$2 in
        knot:www-* | knot:weighted | knot:resolver*) return 1 ;; # Knot: static answers only
        # PowerDNS signed (bench/signed_peers.sh): the static zone, no LUA records
        pdns:www-* | pdns:weighted | pdns:resolver*) [[ ${PDNS_SIGNED:-0} != 1 ]] ;;
        *) return 0 ;;
    esac
}

free_port() { # a loopback port free for both UDP and TCP right now
    python3 - <<'EOF'
import socket
for _ in range(100):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        t.close()
    u.close()
    print(port)
    break
EOF
}

# ---------------------------------------------------------------------------
# Servers. start_X MODE: MODE "pinned" = CPU $SERVER_CPU, one worker thread;
# "free" = no pinning, one worker per core. Each runs in the foreground as our
# child, listening on 127.0.0.1 only.
MERIDIAN_THREADS_HOW=
WRAP=() # a command the start functions put in front of the server (phase 3: valgrind)
start_meridian() {
    local mode=$1 d=$TMP/meridian threads pin=()
    mkdir -p "$d/state"
    if [[ $mode == pinned ]]; then threads=1; pin=(taskset -c "$SERVER_CPU"); else threads=$NCPU; fi
    local args=(serve --zones "${MERIDIAN_ZONES:-$ROOT/zones}" --geoip "$ROOT/geoip/demo.mmdb"
        --listen "127.0.0.1:${PORT[meridian]}" --state-dir "$d/state")
    # Options that exist only in some versions of the binary: asked at run time.
    grep -q -- '--admin' <<<"$SERVE_HELP" && args+=(--admin off)
    grep -q -- '--metrics' <<<"$SERVE_HELP" && args+=(--metrics off)
    if grep -q -- '--threads' <<<"$SERVE_HELP"; then
        args+=(--threads "$threads")
        MERIDIAN_THREADS_HOW="\`--threads\` (plus env MERIDIAN_THREADS, TOKIO_WORKER_THREADS)"
    else
        MERIDIAN_THREADS_HOW="no \`--threads\` option in this binary: env MERIDIAN_THREADS and TOKIO_WORKER_THREADS (honoured by tokio's multi-thread runtime unless the code fixes the count)"
    fi
    # cwd = work dir, so no ./meridian.toml of the checkout is picked up.
    (cd "$d" && MERIDIAN_THREADS=$threads TOKIO_WORKER_THREADS=$threads \
        exec "${pin[@]}" "${WRAP[@]}" "$BIN" "${args[@]}" >"$d/log.$mode" 2>&1) &
    PID[meridian]=$!
    LOG[meridian]=$d/log.$mode
}

start_gdnsd() {
    local mode=$1 d=$TMP/gdnsd threads pin=()
    if [[ $mode == pinned ]]; then threads=1; pin=(taskset -c "$SERVER_CPU"); else threads=$NCPU; fi
    mkdir -p "$d/zones"
    {
        cat "$TMP/static.zone"
        echo "; GSLB names (bench/run.sh)"
        echo "www 30 DYNA geoip!www"
        echo "weighted 30 DYNA weighted!weighted"
    } >"$d/zones/$ORIGIN"
    cat >"$d/config" <<EOF
options => {
  listen => [ 127.0.0.1:${PORT[gdnsd]} ]
  udp_threads => $threads
  tcp_threads => 1
  run_dir => $d/run
  state_dir => $d/state
}
plugins => {
  geoip => {
    maps => {
      continents => {
        geoip2_db => $TMP/demo.mmdb
        datacenters => [us-east, eu-west, ap-northeast]
        map => {
          NA => [us-east], SA => [us-east],
          EU => [eu-west], AF => [eu-west],
          AS => [ap-northeast], OC => [ap-northeast],
        }
        # everything else (AN, no location): nearest datacenter
        auto_dc_coords => {
          us-east => [39.0, -77.5], eu-west => [53.3, -6.3], ap-northeast => [35.7, 139.7]
        }
      }
    }
    resources => {
      www => {
        map => continents
        dcmap => {
          us-east => { addrs_v4 => { a => 192.0.2.10 }, addrs_v6 => { a => 2001:db8:10::10 } }
          eu-west => { addrs_v4 => { a => 198.51.100.10 }, addrs_v6 => { a => 2001:db8:20::10 } }
          ap-northeast => { addrs_v4 => { a => 203.0.113.10 }, addrs_v6 => { a => 2001:db8:30::10 } }
        }
      }
    }
  }
  weighted => {
    weighted => {
      us-east = [ 192.0.2.10, 50 ]
      eu-west = [ 198.51.100.10, 30 ]
      ap-northeast = [ 203.0.113.10, 20 ]
    }
  }
}
EOF
    "$GDNSD" -c "$d" checkconf >"$d/checkconf.log" 2>&1 || { cat "$d/checkconf.log" >&2; die "gdnsd checkconf failed"; }
    (exec "${pin[@]}" "${WRAP[@]}" "$GDNSD" -c "$d" start >"$d/log.$mode" 2>&1) &
    PID[gdnsd]=$!
    LOG[gdnsd]=$d/log.$mode
}

declare -A LOG=()
# dig one question; prints "STATUS ADDR ADDR ..." (A records of the answer).
ask() { # port name [subnet | ednsopt=CODE:HEX]
    local out sub=()
    case ${3:-} in
        "") ;;
        ednsopt=*) sub=(+ednsopt="${3#ednsopt=}") ;;
        *) sub=(+subnet="$3") ;;
    esac
    out=$(dig @127.0.0.1 -p "$1" "$2" A +norec +time=2 +tries=1 "${sub[@]}" 2>&1) || { echo "NOANSWER"; return 0; }
    local status addrs
    status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -1)
    addrs=$(awk '/^;; ANSWER SECTION:/ {a=1; next} /^$/ {a=0} a && $4 == "A" {print $5}' <<<"$out" | sort | tr '\n' ' ')
    echo "${status:-NOANSWER} ${addrs% }"
}

wait_ready() { # server [tries of 0.1 s]: until static answers, or fail loudly
    local s=$1 tries=${2:-200} i r
    for i in $(seq "$tries"); do
        kill -0 "${PID[$s]}" 2>/dev/null || { tail -30 "${LOG[$s]}" >&2; die "$s exited during startup (log above)"; }
        r=$(ask "${PORT[$s]}" "static.$ORIGIN")
        [[ $r == "NOERROR 192.0.2.1" ]] && return 0
        sleep 0.1
    done
    tail -30 "${LOG[$s]}" >&2
    die "$s did not answer static.$ORIGIN within $((tries / 10)) s (last: $r)"
}

FAILS=()
expect() { # server name subnet expected   (expected: "NOERROR addr" | "NXDOMAIN" | "ONEOF a b c")
    local s=$1 name=$2 sub=$3 want=$4 got
    got=$(ask "${PORT[$s]}" "$name" "$sub")
    got=${got% }
    if [[ $want == ONEOF* ]]; then
        local st=${got%% *} addr=${got#* }
        if [[ $st == NOERROR && $addr != *" "* && " ${want#ONEOF } " == *" $addr "* ]]; then return 0; fi
    elif [[ $got == "$want" ]]; then
        return 0
    fi
    FAILS+=("$s: $name ${sub:+ECS $sub }answered '$got', expected '$want'")
}

verify() { # server: every benchmark name, several ECS subnets; abort on any mismatch
    local s=$1 sub exp
    FAILS=()
    expect "$s" "static.$ORIGIN" "" "NOERROR 192.0.2.1"
    expect "$s" "nx-1.$ORIGIN" "" "NXDOMAIN"
    expect "$s" "nx-1000.$ORIGIN" "" "NXDOMAIN"
    if supports "$s" www-ecs1; then
        expect "$s" "www.$ORIGIN" "ednsopt=8:$ECS_ONE" "NOERROR 198.51.100.10" # the www-ecs1 option, byte for byte
        expect "$s" "www.$ORIGIN" 10.3.0.0/24 "NOERROR 198.51.100.10"     # GB, EU
        expect "$s" "www.$ORIGIN" 10.1.0.0/24 "NOERROR 192.0.2.10"        # US, NA
        expect "$s" "www.$ORIGIN" 10.5.0.0/24 "NOERROR 203.0.113.10"      # JP, AS
        expect "$s" "www.$ORIGIN" 10.4.0.0/24 "NOERROR 198.51.100.10"     # ZA, AF
        expect "$s" "www.$ORIGIN" 10.6.0.0/24 "NOERROR 203.0.113.10"      # AU, OC
        expect "$s" "www.$ORIGIN" 10.2.0.0/24 "NOERROR 192.0.2.10"        # BR, SA
        expect "$s" "www.$ORIGIN" 10.7.0.0/24 "NOERROR 203.0.113.10"      # AQ, AN: nearest
        expect "$s" "www.$ORIGIN" 2001:db8:3::/56 "NOERROR 198.51.100.10" # GB over IPv6
        expect "$s" "www.$ORIGIN" 2001:db8:7::/56 "NOERROR 203.0.113.10"  # AQ over IPv6: nearest
        while read -r sub exp; do
            expect "$s" "www.$ORIGIN" "$sub" "NOERROR $exp"
        done <"$TMP/q/ecs-samples.txt"
    fi
    if supports "$s" weighted; then
        for _ in 1 2 3 4 5 6; do
            expect "$s" "weighted.$ORIGIN" "" "ONEOF 192.0.2.10 198.51.100.10 203.0.113.10"
        done
    fi
    if ((${#FAILS[@]})); then
        banner "$s DOES NOT ANSWER THE BENCHMARK NAMES CORRECTLY -- not measuring:" "${FAILS[@]}"
        exit 1
    fi
    note "$s on 127.0.0.1:${PORT[$s]}: answers verified"
}

