#!/bin/sh
# The ELF vmlinux extracted from the same bzImage boots through the PVH entry.
exec sh /extra/boot/boot_check.sh /guest/vmlinux 2
