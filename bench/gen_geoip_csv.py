#!/usr/bin/env python3
"""Write a demo-format GeoIP CSV (see geoip/demo.csv) with N disjoint networks.

Usage: bench/gen_geoip_csv.py N > out.csv

For timing `meridian geoip build` at sizes like MaxMind's City database
(~300k networks and up): 85% IPv4 networks of /22 to /28 (a few /16) walking up the IPv4
space with small gaps, 15% IPv6 /32 to /64 from 2400::. Records come from a pool of
4,000 places so, as in real data, many networks share a record and some
neighbours merge. Deterministic for a given N.
"""
import random
import sys

COUNTRIES = [
    ("NA", "US", "United States"), ("NA", "CA", "Canada"), ("SA", "BR", "Brazil"), ("EU", "DE", "Germany"),
    ("EU", "FR", "France"), ("EU", "GB", "United Kingdom"), ("AS", "JP", "Japan"), ("AS", "IN", "India"),
    ("OC", "AU", "Australia"), ("AF", "ZA", "South Africa"), ("AF", "NG", "Nigeria"), ("AN", "AQ", "Antarctica"),
]


def main():
    n = int(sys.argv[1])
    rng = random.Random(n)
    places = []
    for i in range(4000):
        cont, cc, name = rng.choice(COUNTRIES)
        sub = f"{cc}-{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}" if i % 3 else ""
        lat, lon = round(rng.uniform(-89, 89), 4), round(rng.uniform(-179, 179), 4)
        places.append(f"{cont},{cc},{sub},{lat},{lon},{name}")
    out = sys.stdout
    out.write("network,continent,country,subdivision,latitude,longitude,name\n")
    n6 = n * 15 // 100
    cursor = 1 << 24  # 1.0.0.0
    for _ in range(n - n6):
        plen = 16 if rng.random() < 0.002 else rng.choice((22, 23, 24, 24, 24, 24, 25, 26, 27, 28))
        size = 1 << (32 - plen)
        cursor = (cursor + size - 1) // size * size
        if cursor + size > 0xE0000000:  # stay below multicast (room for ~2M rows)
            sys.exit("too many IPv4 networks for this generator")
        a = cursor
        out.write(f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}/{plen},{rng.choice(places)}\n")
        cursor += size + (size if rng.random() < 0.1 else 0)
    cursor6 = 0x2400 << 112  # 2001::/32 and 2002::/16 are aliases of IPv4 space
    for _ in range(n6):
        plen = rng.choice((32, 40, 44, 48, 48, 48, 56, 64))
        size = 1 << (128 - plen)
        cursor6 = (cursor6 + size - 1) // size * size
        groups = [(cursor6 >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
        out.write(f"{':'.join(f'{g:x}' for g in groups)}/{plen},{rng.choice(places)}\n")
        cursor6 += size


if __name__ == "__main__":
    main()
