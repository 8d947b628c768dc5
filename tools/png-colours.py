#!/usr/bin/env python3
"""Counts the pixels of given colours in a PNG (8-bit RGB or RGBA, not interlaced: what Chromium's --screenshot
writes), so a check can tell a rendered timeline from a blank or broken page without image libraries.

    png-colours.py IMAGE '#4e79a7' '#ff00ff' ...   prints "WIDTHxHEIGHT", then "#colour COUNT" per colour, then
                                                  "other-nonwhite COUNT"
"""
import struct
import sys
import zlib


def pixels(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        sys.exit(f"{path}: only 8-bit RGB/RGBA, non-interlaced PNGs (this is depth {depth}, colour type {colour})")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def main(argv):
    width, height, bpp, rows = pixels(argv[0])
    wanted = {bytes.fromhex(c.lstrip("#")): c for c in argv[1:]}
    counts = {c: 0 for c in argv[1:]}
    other = 0
    for row in rows:
        for x in range(0, len(row), bpp):
            rgb = row[x:x + 3]
            if rgb in wanted:
                counts[wanted[rgb]] += 1
            elif rgb != b"\xff\xff\xff":
                other += 1
    print(f"{width}x{height}")
    for c in argv[1:]:
        print(f"{c} {counts[c]}")
    print(f"other-nonwhite {other}")


if __name__ == "__main__":
    main(sys.argv[1:])
