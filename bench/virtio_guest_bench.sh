#!/bin/sh
# Runs inside a guest (vessel's or QEMU's) with the virtio disks and network
# of tests/integration/vmm/virtio: prints "BENCH <name> <value> <unit>" lines.
# Disk: the scratch disk with serial benchdisk (its contents are destroyed), O_DIRECT dd;
# network: wget of http://10.0.2.1:8080/big from the L1 host.
# /proc/uptime in ms (10 ms resolution; busybox date has no %N).
now() { read -r u _ < /proc/uptime; echo $(( ${u%.*} * 1000 + (1${u#*.} - 100) * 10 )); }
ms_since() { echo $(( $(now) - $1 )); }
disk() { for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "$1" ] && echo /dev/${d##*/}; done; }
D=$(disk benchdisk); [ -n "$D" ] || { echo "BENCH no-benchdisk 0 -"; exit 0; }
MB=40
t=$(now); dd if=/dev/zero of=$D bs=1M count=$MB oflag=direct 2>/dev/null; ms=$(ms_since $t)
echo "BENCH seq-write $(( MB * 1000 / (ms + 1) )) MB/s"
t=$(now); dd if=$D of=/dev/null bs=1M count=$MB iflag=direct 2>/dev/null; ms=$(ms_since $t)
echo "BENCH seq-read $(( MB * 1000 / (ms + 1) )) MB/s"
N=4000
t=$(now); dd if=$D of=/dev/null bs=4k count=$N iflag=direct 2>/dev/null; ms=$(ms_since $t)
echo "BENCH 4k-read-qd1 $(( N * 1000 / (ms + 1) )) IOPS"
t=$(now); dd if=/dev/zero of=$D bs=4k count=$N oflag=direct 2>/dev/null; ms=$(ms_since $t)
echo "BENCH 4k-write-qd1 $(( N * 1000 / (ms + 1) )) IOPS"
# Random offsets: one dd per request, so process start-up is included (same for every VMM).
R=200; t=$(now); i=0
while [ $i -lt $R ]; do dd if=$D of=/dev/null bs=4k count=1 skip=$(( (i * 7919) % 6000 )) iflag=direct 2>/dev/null; i=$((i + 1)); done
ms=$(ms_since $t); echo "BENCH 4k-randread-dd-per-io $(( R * 1000 / (ms + 1) )) IOPS"
t=$(now); wget -q -O /dev/null http://10.0.2.1:8080/big; ms=$(ms_since $t)
sz=$(wget -q -O - http://10.0.2.1:8080/big.size 2>/dev/null); [ -n "$sz" ] || sz=16
echo "BENCH net-rx $(( sz * 1000 / (ms + 1) )) MB/s"
