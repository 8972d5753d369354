#!/usr/bin/env python3
"""Resolver-shaped queries (issue 19): what validating, 0x20-randomising
resolvers send an authoritative GSLB server, as a dnsperf -B raw file (each
record a 2-byte big-endian length, then a wire-format query; dnsperf rewrites
the ID).

Every query: the name in random case (DNS 0x20), RD=0, EDNS0 with UDP size
1232 and DO=1, a client cookie (RFC 7873, 8 random bytes), and an ECS option
(RFC 7871) for a /24 (IPv4) or /56 (IPv6) drawn from the networks of the demo
GeoIP database source (geoip/demo.csv, every country it holds), except for 15 %
of queries, which carry no ECS. The mix: 60 % www A, 15 % www AAAA, 15 %
static A, 10 % names that do not exist (NXDOMAIN). Deterministic for a given
--seed.

Usage:
  bench/gen_resolver_queries.py --csv geoip/demo.csv --out resolver.bin
      [--count 10000] [--origin gslb.example.test] [--seed 1]
"""
import argparse
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_ecs_queries import encode_name, random_subnet, read_networks  # noqa: E402

A, AAAA = 1, 28
NO_ECS = 0.15


def random_case(rng, name):
    return "".join(c.upper() if c.isalpha() and rng.random() < 0.5 else c for c in name)


def query(rng, name, qtype, subnet, kept=None):
    header = struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 1)  # id (rewritten), no flags (RD=0), QD=1, AR=1
    question = encode_name(random_case(rng, name)) + struct.pack("!HH", qtype, 1)
    cookie = bytes(rng.randrange(256) for _ in range(8))
    if kept is not None:  # --resolvers: this resolver's own client cookie
        cookie = kept
    options = struct.pack("!HH", 10, 8) + cookie
    if subnet is not None:
        plen = subnet.prefixlen
        ecs = struct.pack("!HBB", 1 if subnet.version == 4 else 2, plen, 0)
        ecs += subnet.network_address.packed[: (plen + 7) // 8]
        options += struct.pack("!HH", 8, len(ecs)) + ecs
    # OPT: root owner, type 41, class = UDP size, TTL = ext-rcode 0, version 0, flags DO.
    opt = b"\x00" + struct.pack("!HHBBHH", 41, 1232, 0, 0, 0x8000, len(options)) + options
    return header + question + opt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--origin", default="gslb.example.test")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--resolvers",
        type=int,
        default=0,
        help="each query from one of N resolvers that keep their client cookie, as real ones do "
        "(RFC 9018 section 3); 0: a random client cookie per query. Names, case and ECS are the same.",
    )
    a = ap.parse_args()
    if a.count < 1:
        sys.exit("--count must be at least 1")

    rng = random.Random(a.seed)
    pick = random.Random(a.seed + 1_000_003)  # the resolvers' cookies, apart from the rest
    resolvers = [bytes(pick.randrange(256) for _ in range(8)) for _ in range(a.resolvers)]
    nets = read_networks(a.csv)
    kinds = {"www A": 0, "www AAAA": 0, "static A": 0, "nxdomain": 0}
    no_ecs = 0
    with open(a.out, "wb") as f:
        for i in range(a.count):
            r = rng.random()
            if r < 0.60:
                kind, name, qtype = "www A", f"www.{a.origin}", A
            elif r < 0.75:
                kind, name, qtype = "www AAAA", f"www.{a.origin}", AAAA
            elif r < 0.90:
                kind, name, qtype = "static A", f"static.{a.origin}", A
            else:
                kind, name, qtype = "nxdomain", f"nx-{rng.randrange(1, 1_000_000)}.{a.origin}", A
            kinds[kind] += 1
            subnet = None
            if rng.random() >= NO_ECS:
                subnet = random_subnet(rng, rng.choice(nets)[0])
            else:
                no_ecs += 1
            q = query(rng, name, qtype, subnet, pick.choice(resolvers) if resolvers else None)
            f.write(struct.pack("!H", len(q)) + q)
    mix = ", ".join(f"{k} {v}" for k, v in kinds.items())
    print(f"{a.out}: {a.count} queries ({mix}; {no_ecs} without ECS)", file=sys.stderr)


if __name__ == "__main__":
    main()
