#!/usr/bin/env bash
# Repro: a zone reload lost to a concurrent health publish.
#
# Monitor::publish() loads the current state, builds the health view, then
# stores State { zones: <the zones it loaded>, .. }. A reload that stores new
# zones between that load and that store is overwritten with the old zones,
# and the monitor.sync() that follows the reload publishes the old zones
# again: the new configuration is silently lost until the next reload.
#
# To make publishes frequent, every endpoint flaps (the backend answers 500 to
# every other request; rise = fall = 1): each probe is a transition, each
# transition a publish. Then ROUNDS times: append a static record "reloadN" to
# the zone, SIGHUP, wait for "reloaded configuration", wait 1.5 s, and ask for
# reloadN. A missing record is a lost reload.
#
# Usage: bench/reload_race.sh [ROUNDS] [REGIONS] [PER]   (default 20 100 5)
set -euo pipefail
ROUNDS=${1:-20}
REGIONS=${2:-100}
PER=${3:-5}
(( ROUNDS >= 1 && ROUNDS <= 200 && REGIONS >= 1 && REGIONS <= 256 && PER >= 1 && PER <= 50 )) || exit 2

cd "$(dirname "$0")/.."
cargo build --release --quiet --bin meridian --example probe_backends
BIN=$PWD/target/release/meridian
BACKEND=$PWD/target/release/examples/probe_backends
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meridian-reload-race.XXXXXX")
BPID= MPID=
cleanup() {
    [[ -n $MPID ]] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null || true
    [[ -n $BPID ]] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

"$BACKEND" 127.0.0.1:0 8 flap >"$TMP/backend.out" 2>&1 &
BPID=$!
for _ in $(seq 100); do grep -q '^listening' "$TMP/backend.out" 2>/dev/null && break; sleep 0.05; done
BADDR=$(awk '/^listening/ {print $2}' "$TMP/backend.out")

mkdir -p "$TMP/zones" "$TMP/state"
ZONE=$TMP/zones/race.test.toml
{
    printf 'origin = "race.test."\nns = ["ns1"]\n\n[soa]\nmname = "ns1"\nrname = "hostmaster"\nserial = 1\n\n'
    printf '[[records]]\nname = "ns1"\ntype = "A"\ndata = "192.0.2.53"\n\n[[services]]\nname = "www"\nchain = ["weighted"]\n'
    for ((i = 0; i < REGIONS; i++)); do
        addrs=$(for ((j = 1; j <= PER; j++)); do printf '"198.18.%d.%d",' "$i" "$j"; done)
        printf '\n[[regions]]\nname = "r%d"\naddresses = [%s]\n\n[regions.probe]\ntype = "http"\n' "$i" "${addrs%,}"
        printf 'url = "http://%s/r%d/{addr}"\ninterval = "100ms"\ntimeout = "500ms"\nfall = 1\nrise = 1\n' "$BADDR" "$i"
    done
} >"$ZONE"
# Reload on SIGHUP only (no file polling), so each round is exactly one reload.
printf 'watch_interval_ms = 0\n' >"$TMP/meridian.toml"

DNSPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$TMP" && MERIDIAN_LOG=info exec "$BIN" serve --config "$TMP/meridian.toml" --listen "127.0.0.1:$DNSPORT" \
    --zones "$TMP/zones" --state-dir "$TMP/state" >"$TMP/meridian.log" 2>&1) &
MPID=$!
for _ in $(seq 200); do grep -q 'ready' "$TMP/meridian.log" 2>/dev/null && break; sleep 0.05; done
sleep 2

lost=0
for ((n = 1; n <= ROUNDS; n++)); do
    printf '\n[[records]]\nname = "reload%d"\ntype = "A"\ndata = "192.0.2.%d"\n' "$n" "$n" >>"$ZONE"
    before=$(grep -c 'reloaded configuration' "$TMP/meridian.log" || true)
    kill -HUP "$MPID"
    for _ in $(seq 100); do
        (( $(grep -c 'reloaded configuration' "$TMP/meridian.log" || true) > before )) && break
        sleep 0.05
    done
    sleep 1.5
    ask() { dig @127.0.0.1 -p "$DNSPORT" +norec +time=2 +tries=2 "reload$n.race.test" A | awk '/status:/ {s=$6} /^reload/ && $4 == "A" {a=$5} END {sub(",", "", s); print s, a}'; }
    got=$(ask)
    if [[ $got == "NOERROR 192.0.2.$n" ]]; then
        echo "round $n: reload$n served"
    else
        sleep 5
        echo "round $n: reload$n NOT served 1.5 s after the reload ($got), nor 5 s later ($(ask)) -- reload lost"
        lost=$((lost + 1))
    fi
done
publishes=$(grep -c 'endpoint state changed' "$TMP/meridian.log" || true)
echo "lost reloads: $lost of $ROUNDS ($publishes transitions logged)"
