# Knot DNS and PowerDNS serving the benchmark zone signed online, for
# bench/instr.sh SIGNED=1 (issue 21 must-show 3: the table beside Knot's
# mod-onlinesign and PowerDNS's live signing). Sourced after bench/lib.sh;
# the same start_X MODE contract as there. Both sign with ECDSA P-256
# (algorithm 13), one CSK, as Meridian's `dnssec keygen` does.
#
# Unsigned Knot and PowerDNS (with PowerDNS's LUA GSLB records) are in
# bench/run.sh; these differ in the zone (static names only here) and in
# what signs it.

# Knot: the static zone file, unsigned on disk, answered through
# mod-onlinesign, which signs every answer as it is made (no signature cache)
# and denies with synthesized minimal NSEC ("NXDOMAIN as NOERROR"). The key is
# generated at start-up by an automatic policy into a PEM keystore.
start_knot() {
    local mode=$1 d=$TMP/knot pin=() workers=""
    if [[ $mode == pinned ]]; then
        pin=(taskset -c "$SERVER_CPU")
        workers=$'    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1'
    fi
    rm -rf "$d" && mkdir -p "$d/zones" "$d/db" "$d/keys"
    cp "$TMP/static.zone" "$d/zones/$ORIGIN.zone"
    cat >"$d/knot.conf" <<CONF
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

keystore:
  - id: pem
    backend: pem
    config: "$d/keys"

policy:
  - id: p256
    algorithm: ecdsap256sha256
    single-type-signing: on
    keystore: pem

mod-onlinesign:
  - id: online
    policy: p256

template:
  - id: default
    storage: "$d/zones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none

zone:
  - domain: "$ORIGIN"
    file: "$ORIGIN.zone"
    module: mod-onlinesign/online
CONF
    (exec "${pin[@]}" "${WRAP[@]}" "$KNOTD" -c "$d/knot.conf" >"$d/log.$mode" 2>&1) &
    PID[knot]=$!
    LOG[knot]=$d/log.$mode
}

# PowerDNS: the bind backend on the same zone file, its keys in a
# bind-dnssec-db (SQLite), `pdnsutil secure-zone` with one ECDSA P-256 CSK.
# PowerDNS signs at query time and keeps the signatures in its signature
# cache; its packet cache (on by default) replays whole answers.
# PDNS_CACHE=0 turns the packet and query caches off (the signature cache
# stays), so every answer is built and its signatures looked up.
start_pdns() {
    local mode=$1 d=$TMP/pdns pin=() cache="" threads
    if [[ $mode == pinned ]]; then
        pin=(taskset -c "$SERVER_CPU")
        threads=$'receiver-threads=1\ndistributor-threads=1'
    else
        threads="receiver-threads=$NCPU"
    fi
    [[ ${PDNS_CACHE:-1} == 1 ]] || cache=$'cache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0'
    rm -rf "$d" && mkdir -p "$d"
    cp "$TMP/static.zone" "$d/$ORIGIN.zone"
    echo "zone \"$ORIGIN\" { type master; file \"$d/$ORIGIN.zone\"; };" >"$d/named.conf"
    cat >"$d/pdns.conf" <<CONF
launch=bind
bind-config=$d/named.conf
bind-dnssec-db=$d/dnssec.db
default-ksk-algorithm=ecdsa256
default-zsk-algorithm=
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
CONF
    "$PDNSUTIL" --config-dir="$d" create-bind-db "$d/dnssec.db" >"$d/pdnsutil.log" 2>&1 \
        && "$PDNSUTIL" --config-dir="$d" secure-zone "$ORIGIN" >>"$d/pdnsutil.log" 2>&1 \
        || { cat "$d/pdnsutil.log" >&2; die "pdnsutil create-bind-db / secure-zone failed"; }
    (exec "${pin[@]}" "${WRAP[@]}" "$PDNS" --config-dir="$d" >"$d/log.$mode" 2>&1) &
    PID[pdns]=$!
    LOG[pdns]=$d/log.$mode
}
