#!/usr/bin/env python3
"""Queries for `www` whose EDNS Client Subnet varies over many client subnets.

dnsperf can put one fixed EDNS option on every query (-E), not a different
one per query, so the "ECS varied" query set is a pre-generated raw file read
with `dnsperf -B`: each record is a 2-byte big-endian length followed by a
wire-format DNS query (RFC 1035 §4.2.2 TCP framing; dnsperf rewrites the ID).

Each query carries EDNS0 (UDP size 1232) and one ECS option (RFC 7871) for a
subnet drawn from the networks of the demo GeoIP database source
(geoip/demo.csv): IPv4 clients as /24, IPv6 clients as /56, both families, the
host bits zeroed as RFC 7871 §6 requires. Deterministic for a given --seed.

Usage:
  bench/gen_ecs_queries.py --csv geoip/demo.csv --out ecs.bin [--count 10000]
      [--name www.gslb.example.test] [--seed 1] [--samples 20]

With --samples N it also prints N of the generated subnets to stdout, one per
line as "SUBNET EXPECTED_A", the A record the benchmark configuration must
answer (NA,SA -> 192.0.2.10; EU,AF -> 198.51.100.10; AS,OC -> 203.0.113.10;
otherwise the region nearest the location, by great-circle distance from the
regions of zones/gslb.example.test.toml). bench/run.sh digs each peer with
them before measuring.
"""
import argparse
import ipaddress
import math
import random
import struct
import sys

CONTINENT_A = {
    "NA": "192.0.2.10",
    "SA": "192.0.2.10",
    "EU": "198.51.100.10",
    "AF": "198.51.100.10",
    "AS": "203.0.113.10",
    "OC": "203.0.113.10",
}
# Region locations as in zones/gslb.example.test.toml (us-east, eu-west, ap-northeast).
REGIONS = [
    ("192.0.2.10", 39.0, -77.5),
    ("198.51.100.10", 53.3, -6.3),
    ("203.0.113.10", 35.7, 139.7),
]


def haversine(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def expected_a(continent, lat, lon):
    if continent in CONTINENT_A:
        return CONTINENT_A[continent]
    if lat is None:
        return None
    return min(REGIONS, key=lambda r: haversine(lat, lon, r[1], r[2]))[0]


def read_networks(path):
    nets = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("network,"):
                continue
            cols = line.split(",")
            net = ipaddress.ip_network(cols[0])
            lat = float(cols[4]) if cols[4] else None
            lon = float(cols[5]) if cols[5] else None
            nets.append((net, cols[1], lat, lon))
    if not nets:
        sys.exit(f"{path}: no networks")
    return nets


def random_subnet(rng, net):
    """A random client subnet inside `net`: /24 for IPv4, /56 for IPv6."""
    plen = 24 if net.version == 4 else 56
    if net.prefixlen >= plen:
        return ipaddress.ip_network((net.network_address, net.prefixlen))
    slots = 1 << (plen - net.prefixlen)
    k = rng.randrange(slots)
    bits = net.max_prefixlen
    addr = int(net.network_address) + (k << (bits - plen))
    return ipaddress.ip_network((addr, plen))


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\x00"


def query(name, qtype, subnet, do=False):
    header = struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 1)  # id (rewritten), flags, QD=1, AR=1
    question = encode_name(name) + struct.pack("!HH", qtype, 1)
    family = 1 if subnet.version == 4 else 2
    plen = subnet.prefixlen
    addr = subnet.network_address.packed[: (plen + 7) // 8]
    ecs = struct.pack("!HBB", family, plen, 0) + addr
    option = struct.pack("!HH", 8, len(ecs)) + ecs
    # OPT TTL: extended rcode 0, version 0, flags (DO is the top bit: signed answers).
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0x8000 if do else 0, len(option)) + option
    return header + question + opt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--name", default="www.gslb.example.test")
    ap.add_argument("--qtype", type=int, default=1, help="numeric query type (default 1 = A)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", type=int, default=0)
    ap.add_argument("--do", action="store_true", help="set the DO bit (ask for DNSSEC signatures)")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    nets = read_networks(a.csv)
    chosen = []
    with open(a.out, "wb") as f:
        for _ in range(a.count):
            net, cont, lat, lon = rng.choice(nets)
            sub = random_subnet(rng, net)
            q = query(a.name, a.qtype, sub, a.do)
            f.write(struct.pack("!H", len(q)) + q)
            chosen.append((sub, expected_a(cont, lat, lon)))
    if a.samples:
        # Spread over the file; keep only ones with a defined answer.
        step = max(1, len(chosen) // a.samples)
        for sub, exp in chosen[::step][: a.samples]:
            if exp:
                print(f"{sub} {exp}")
    v4 = sum(1 for s, _ in chosen if s.version == 4)
    print(
        f"{a.out}: {a.count} queries, {len({s for s, _ in chosen})} distinct subnets "
        f"({v4} IPv4 /24, {a.count - v4} IPv6 /56) from {len(nets)} networks",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
