#!/usr/bin/env python3
"""Writes a tiny PVH ELF "kernel" for VMM tests and benchmarks.

The guest is entered in 32-bit protected mode (PVH), prints a line on COM1
(port 0x3f8), then does one of:
  poweroff  write SLP_EN|SLP_TYP=5 (0x34) to the ACPI sleep control port 0x600
            (under QEMU, map -device isa-debug-exit,iobase=0x600 to end it)
  reset     write 0xFE to the i8042 command port 0x64
  spin      loop forever (for signal tests)
  fault     ud2 with no IDT: triple fault
  count     then print the digits 0-9 over and over, one every few ms (pause tests)
  ctrlaltdel  then poll the i8042 until a Del make code (set 1: 0x53) arrives,
            and power off (SendCtrlAltDel tests)
  touchN    (N: the guest's RAM in MiB) write a dword into each 4 KiB page of
            the 64 MiB above 2 MiB, then for ever: print 'T', read a dword
            of every page from 2 MiB to N MiB, print 'D', a short delay
            (first-touch benchmarks: the time from a 'T' to its 'D')
usage: make_tiny_pvh.py OUT [poweroff|reset|spin|fault] [MESSAGE]
"""
import struct
import sys

LOAD = 0x100000
CODE_OFF = 0x100


def code(mode, message):
    c = bytearray(b"\x66\xba\xf8\x03")  # mov dx, 0x3f8
    for ch in message.encode():
        c += bytes([0xB0, ch, 0xEE])  # mov al, ch; out dx, al
    if mode == "poweroff":
        c += b"\x66\xba\x00\x06\xb0\x34\xee"  # mov dx, 0x600; mov al, 0x34; out dx, al
    elif mode == "reset":
        c += b"\x66\xba\x64\x00\xb0\xfe\xee"  # mov dx, 0x64; mov al, 0xfe; out dx, al
    elif mode == "spin":
        c += b"\xeb\xfe"  # jmp $
    elif mode == "fault":
        c += b"\x0f\x0b"  # ud2
    elif mode == "count":
        c += b"\x31\xdb"  # xor ebx, ebx
        loop = bytearray()
        loop += b"\x88\xd8\x04\x30\xee"  # mov al, bl; add al, '0'; out dx, al
        loop += b"\xfe\xc3\x80\xfb\x0a\x72\x02\x31\xdb"  # inc bl; cmp bl, 10; jb +2; xor ebx, ebx
        loop += b"\xb9" + struct.pack("<I", 20_000_000) + b"\xe2\xfe"  # mov ecx, N; loop $
        loop += bytes([0xEB, (256 - (len(loop) + 2)) & 0xFF])  # jmp back to the top
        c += loop
    elif mode == "ctrlaltdel":
        # wait: in al, 0x64; test al, 1; jz wait; in al, 0x60; cmp al, 0x53; jne wait
        c += b"\xe4\x64\xa8\x01\x74\xfa\xe4\x60\x3c\x53\x75\xf4"
        c += b"\x66\xba\x00\x06\xb0\x34\xee"  # power off
    elif mode.startswith("touch"):
        limit = int(mode[5:]) << 20
        fill_end = min(limit, 0x200000 + (64 << 20))
        c += b"\xbf" + struct.pack("<I", 0x200000)  # mov edi, 2 MiB
        # fill: mov [edi], edi; add edi, 4096; cmp edi, fill_end; jb fill
        c += b"\x89\x3f\x81\xc7\x00\x10\x00\x00\x81\xff" + struct.pack("<I", fill_end) + b"\x72\xf0"
        loop = bytearray(b"\xb0\x54\xee")  # mov al, 'T'; out dx, al
        loop += b"\xbf" + struct.pack("<I", 0x200000)  # mov edi, 2 MiB
        # touch: add esi, [edi]; add edi, 4096; cmp edi, limit; jb touch
        loop += b"\x03\x37\x81\xc7\x00\x10\x00\x00\x81\xff" + struct.pack("<I", limit) + b"\x72\xf0"
        loop += b"\xb0\x44\xee"  # mov al, 'D'; out dx, al
        loop += b"\xb9" + struct.pack("<I", 20_000_000) + b"\xe2\xfe"  # mov ecx, N; loop $
        loop += bytes([0xEB, (256 - (len(loop) + 2)) & 0xFF])  # jmp back to the top
        c += loop
    c += b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp hlt
    return bytes(c)


def elf(mode, message):
    body = code(mode, message)
    note = struct.pack("<III", 4, 8, 18) + b"Xen\0" + struct.pack("<Q", LOAD + CODE_OFF)
    ehdr_size, phdr_size = 64, 56
    note_off = ehdr_size + 2 * phdr_size
    size = CODE_OFF + len(body)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, LOAD + CODE_OFF, ehdr_size, 0, 0,
                        ehdr_size, phdr_size, 2, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 7, 0, LOAD, LOAD, size, size, 0x1000)
    notep = struct.pack("<IIQQQQQQ", 4, 4, note_off, LOAD + note_off, LOAD + note_off,
                        len(note), len(note), 4)
    out = bytearray(ehdr + load + notep + note)
    out += bytes(CODE_OFF - len(out))
    out += body
    return bytes(out)


def main():
    out = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "poweroff"
    message = sys.argv[3] if len(sys.argv) > 3 else "Hello from a tiny PVH guest\n"
    with open(out, "wb") as f:
        f.write(elf(mode, message))


if __name__ == "__main__":
    main()
