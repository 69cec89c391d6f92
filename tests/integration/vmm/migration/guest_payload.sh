#!/bin/sh
# /guest-payload.sh of the migration test's L2 guest: fills 16 MiB of tmpfs,
# then for ever rewrites 256 KiB of it (a moving window) and prints
# "TICK <n>": the L1 checks that the ticks go on, without a gap or a repeat,
# on every VMM the guest is migrated to. With a disk, below.
# With a disk (/dev/vda, the --copy-disks check): tick n also writes "BLOCK n"
# into 4 KiB block n of the disk (synced), and every 10 ticks the guest drops
# its page cache and reads blocks 1..n back from the disk: "DISK-OK n" when
# each holds its own line, else "DISK-BAD k" for the first that does not.
for m in virtio_ring virtio virtio_mmio virtio_blk; do [ -f /mod/$m.ko ] && insmod /mod/$m.ko 2>/dev/null; done
i=0; while [ ! -b /dev/vda ] && [ -d /sys/bus/virtio/drivers/virtio_blk ] && ls /sys/bus/virtio/devices | grep -q .; do
  [ $i -ge 20 ] && break; sleep 0.1; i=$((i + 1))
done
if [ -b /dev/vda ]; then
  echo GUEST-READY
  i=0
  while true; do
    i=$((i + 1))
    printf 'BLOCK %08d\n' $i | dd of=/dev/vda bs=4096 seek=$i conv=notrunc,fsync 2>/dev/null
    echo "TICK $i"
    if [ $((i % 10)) = 0 ]; then
      sync; echo 3 > /proc/sys/vm/drop_caches
      dd if=/dev/vda bs=4096 skip=1 count=$i 2>/dev/null | tr -d '\000' |
        awk -v n=$i '$0 != sprintf("BLOCK %08d", NR) { print "DISK-BAD " NR; bad = 1; exit }
                     END { if (!bad) print (NR == n ? "DISK-OK " n : "DISK-BAD " NR + 1) }'
    fi
    usleep 100000
  done
fi
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
