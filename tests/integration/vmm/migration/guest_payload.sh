#!/bin/sh
# /guest-payload.sh of the migration test's L2 guest: fills 16 MiB of tmpfs,
# then for ever rewrites 256 KiB of it (a moving window) and prints
# "TICK <n>": the L1 checks that the ticks go on, without a gap or a repeat,
# on every VMM the guest is migrated to.
mkdir -p /tmp/d
dd if=/dev/urandom of=/tmp/d/blob bs=1M count=16 2>/dev/null
echo GUEST-READY
i=0
while true; do
  i=$((i + 1))
  dd if=/dev/urandom of=/tmp/d/blob bs=4k count=64 seek=$(( (i * 64) % 4096 )) conv=notrunc 2>/dev/null
  echo "TICK $i"
  usleep 100000
done
