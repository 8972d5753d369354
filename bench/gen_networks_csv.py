#!/usr/bin/env python3
"""Write a demo-format GeoIP CSV (geoip/README.md) of N networks, for timing
`meridian map` on a database the size of a real City one.

Usage: bench/gen_networks_csv.py N out.csv
       bench/gen_mmdb.py out.csv out.mmdb

Three quarters IPv4 /24s (consecutive from 1.0.0.0), a quarter IPv6 /48s
(from 2400::), each given one of a few dozen countries in turn so every
continent and every demo region gets clients.
"""
import ipaddress
import sys

PLACES = [
    ("NA", "US", 39.0, -77.5), ("NA", "CA", 45.4, -75.7), ("NA", "MX", 19.4, -99.1),
    ("SA", "BR", -23.5, -46.6), ("SA", "AR", -34.6, -58.4), ("SA", "CL", -33.4, -70.6),
    ("EU", "DE", 50.1, 8.7), ("EU", "FR", 48.9, 2.4), ("EU", "GB", 51.5, -0.1), ("EU", "SE", 59.3, 18.1),
    ("EU", "PL", 52.2, 21.0), ("EU", "ES", 40.4, -3.7), ("AF", "ZA", -26.2, 28.0), ("AF", "NG", 6.5, 3.4),
    ("AF", "EG", 30.0, 31.2), ("AS", "JP", 35.7, 139.7), ("AS", "IN", 19.1, 72.9), ("AS", "SG", 1.35, 103.8),
    ("AS", "KR", 37.6, 127.0), ("AS", "CN", 31.2, 121.5), ("OC", "AU", -33.9, 151.2), ("OC", "NZ", -36.8, 174.8),
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n = int(sys.argv[1])
    v4 = n * 3 // 4
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write("network,continent,country,subdivision,latitude,longitude,name\n")
        base4 = int(ipaddress.IPv4Address("1.0.0.0"))
        base6 = int(ipaddress.IPv6Address("2400::"))
        for i in range(n):
            if i < v4:
                net = f"{ipaddress.IPv4Address(base4 + (i << 8))}/24"
            else:
                net = f"{ipaddress.IPv6Address(base6 + ((i - v4) << 80))}/48"
            cont, cc, lat, lon = PLACES[(i * 7 + i // 1000) % len(PLACES)]
            f.write(f"{net},{cont},{cc},,{lat},{lon},{cc}\n")


if __name__ == "__main__":
    main()
