#!/usr/bin/env python3
"""Prints {"width", "height", "colors", "non_white"} of an 8-bit RGB/RGBA PNG as JSON.

Python's zlib does the decompression; this file only undoes PNG's row filters (the PNG
specification, section 9), so the screenshot is judged by pixels, not by trusting the writer.
"""
import json
import struct
import sys
import zlib


def main(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colors, non_white, i = set(), 0, 0
    for _ in range(height):
        f = raw[i]
        row = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = row[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                row[x] = (row[x] + a) & 255
            elif f == 2:
                row[x] = (row[x] + b) & 255
            elif f == 3:
                row[x] = (row[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[x] = (row[x] + pred) & 255
        for x in range(0, stride, bpp):
            px = bytes(row[x : x + 3])
            colors.add(px)
            if px != b"\xff\xff\xff":
                non_white += 1
        prev = row
    print(json.dumps({"width": width, "height": height, "colors": len(colors), "non_white": non_white}))


if __name__ == "__main__":
    main(sys.argv[1])
