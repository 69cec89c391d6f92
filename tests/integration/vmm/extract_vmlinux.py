#!/usr/bin/env python3
"""Extracts the ELF vmlinux from a bzImage, to try the PVH boot path with a
distribution kernel. Like the kernel's scripts/extract-vmlinux, but it reads
the payload's place from the setup header (payload_offset/payload_length at
0x248/0x24c) and decompresses it with the matching tool (lz4, zstd, xz, gzip).
usage: extract_vmlinux.py BZIMAGE OUT
"""
import struct
import subprocess
import sys

TOOLS = [(b"\x02\x21\x4c\x18", ["lz4", "-dc"]), (b"\x28\xb5\x2f\xfd", ["zstd", "-dc"]),
         (b"\xfd7zXZ\x00", ["xz", "-dc"]), (b"\x1f\x8b", ["gzip", "-dc"])]


def main():
    image = open(sys.argv[1], "rb").read()
    if image[0x202:0x206] != b"HdrS":
        print("not a bzImage", file=sys.stderr)
        return 1
    setup_sects = image[0x1f1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = image[start:start + length]
    for magic, tool in TOOLS:
        if payload.startswith(magic):
            out = subprocess.run(tool, input=payload, capture_output=True).stdout
            if out[:4] != b"\x7fELF":
                print(f"{tool[0]} output is not an ELF file", file=sys.stderr)
                return 1
            open(sys.argv[2], "wb").write(out)
            print(f"{tool[0]} payload: {len(out)} bytes of ELF")
            return 0
    print(f"unknown payload compression {payload[:4].hex()}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
