#!/bin/sh
# With 2 vCPUs the guest sees 2 CPUs in /proc/cpuinfo (SMP through the ACPI MADT).
exec sh /extra/boot/boot_check.sh /guest/vmlinuz 2
