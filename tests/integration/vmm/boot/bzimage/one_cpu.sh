#!/bin/sh
# Debian's bzImage boots to its initramfs with 1 vCPU; poweroff ends vessel with 0.
exec sh /extra/boot/boot_check.sh /guest/vmlinuz 1
