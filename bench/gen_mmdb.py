#!/usr/bin/env python3
"""Build a GeoIP2-City-layout .mmdb from geoip/demo.csv, WITH location.accuracy_radius.

Usage: bench/gen_mmdb.py geoip/demo.csv out.mmdb [--radius KM]

Why: PowerDNS 4.7 reads a location from an MMDB database only when
`location.accuracy_radius` is present beside latitude and longitude
(modules/geoipbackend/geoipinterface-mmdb.cc, queryLocation). The shipped
geoip/demo.mmdb (built by `meridian geoip build`) has no accuracy radius, so
with it PowerDNS's `pickclosest()` sees no coordinates at all and picks at
random. bench/run.sh therefore gives PowerDNS this database instead: the same
networks, continent, country, subdivision and coordinates as demo.mmdb (the
same source file), plus an accuracy radius. Meridian and gdnsd keep using
demo.mmdb itself.

The writer is the minimum of the MaxMind DB format 2.0 this needs: an IPv6
search tree with 32-bit records, IPv4 networks at ::/96 (where libmaxminddb
looks IPv4 addresses up), a data section of maps, strings, doubles and
unsigned integers, and the metadata map.
"""
import ipaddress
import struct
import sys
import time


class U16(int):
    pass


class U32(int):
    pass


class U64(int):
    pass


def ctrl(t, size):
    first, ext = (t << 5, b"") if t <= 7 else (0, bytes([t - 7]))
    if size < 29:
        first |= size
        sb = b""
    elif size < 285:
        first |= 29
        sb = bytes([size - 29])
    elif size < 65821:
        first |= 30
        sb = (size - 285).to_bytes(2, "big")
    else:
        first |= 31
        sb = (size - 65821).to_bytes(3, "big")
    return bytes([first]) + ext + sb


def enc(v):
    if isinstance(v, str):
        b = v.encode("utf-8")
        return ctrl(2, len(b)) + b
    if isinstance(v, float):
        return ctrl(3, 8) + struct.pack(">d", v)
    if isinstance(v, (U16, U32, U64, int)) and not isinstance(v, bool):
        t = 5 if isinstance(v, U16) else 9 if isinstance(v, U64) else 6
        b = int(v).to_bytes((int(v).bit_length() + 7) // 8, "big") if v else b""
        return ctrl(t, len(b)) + b
    if isinstance(v, dict):
        return ctrl(7, len(v)) + b"".join(enc(k) + enc(x) for k, x in v.items())
    if isinstance(v, list):
        return ctrl(11, len(v)) + b"".join(enc(x) for x in v)
    raise TypeError(f"cannot encode {v!r}")


def read_csv(path, radius):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("network,"):
                continue
            cols = line.split(",", 6)
            if len(cols) < 7:
                sys.exit(f"{path}:{n}: expected 7 columns")
            net = ipaddress.ip_network(cols[0])
            cont, country, subdiv, lat, lon, name = cols[1:]
            rec = {
                "continent": {"code": cont},
                "country": {"iso_code": country, "names": {"en": name}},
            }
            if subdiv:
                rec["subdivisions"] = [{"iso_code": subdiv.split("-", 1)[1]}]
            if lat and lon:
                rec["location"] = {"latitude": float(lat), "longitude": float(lon), "accuracy_radius": U16(radius)}
            # IPv4 at ::/96 of the IPv6 tree.
            if net.version == 4:
                bits, plen = int(net.network_address), 96 + net.prefixlen
            else:
                bits, plen = int(net.network_address), net.prefixlen
            out.append((bits, plen, rec))
    return out


def build(entries):
    data = bytearray()
    offsets = {}
    root = [None, None]
    for bits, plen, rec in entries:
        blob = enc(rec)
        if blob not in offsets:
            offsets[blob] = len(data)
            data += blob
        leaf = ("data", offsets[blob])
        node = root
        for depth in range(plen):
            bit = (bits >> (127 - depth)) & 1
            if depth == plen - 1:
                if node[bit] is not None:
                    sys.exit("overlapping networks in the CSV")
                node[bit] = leaf
            else:
                if node[bit] is None:
                    node[bit] = [None, None]
                elif isinstance(node[bit], tuple):
                    sys.exit("overlapping networks in the CSV")
                node = node[bit]
    # Number the nodes breadth-first; root is 0.
    order, ids = [root], {id(root): 0}
    i = 0
    while i < len(order):
        for child in order[i]:
            if isinstance(child, list):
                ids[id(child)] = len(order)
                order.append(child)
        i += 1
    count = len(order)

    def rec_value(child):
        if child is None:
            return count
        if isinstance(child, tuple):
            return count + 16 + child[1]
        return ids[id(child)]

    tree = bytearray()
    for node in order:
        tree += struct.pack(">II", rec_value(node[0]), rec_value(node[1]))
    meta = {
        "binary_format_major_version": U16(2),
        "binary_format_minor_version": U16(0),
        "build_epoch": U64(int(time.time())),
        "database_type": "Meridian-Demo-City",
        "description": {"en": "Meridian demo GeoIP data with accuracy_radius (bench/gen_mmdb.py)"},
        "ip_version": U16(6),
        "languages": ["en"],
        "node_count": U32(count),
        "record_size": U16(32),
    }
    return bytes(tree) + b"\x00" * 16 + bytes(data) + b"\xab\xcd\xefMaxMind.com" + enc(meta), count, len(offsets)


def main():
    args = sys.argv[1:]
    radius = 100
    if "--radius" in args:
        i = args.index("--radius")
        radius = int(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    entries = read_csv(args[0], radius)
    blob, nodes, records = build(entries)
    with open(args[1], "wb") as f:
        f.write(blob)
    print(f"{args[1]}: {len(entries)} networks, {records} distinct records, {nodes} nodes", file=sys.stderr)


if __name__ == "__main__":
    main()
