#!/bin/busybox sh
# /init of the inner guest (booted by `vessel vm run` inside L1). Loads the
# virtio modules, exercises the disks, rng and network, and prints
# "GUEST-CHECK <name> PASS|FAIL" lines on the console; payload.sh turns them
# into VESSEL-CHECK markers. Kernel command line parameters it reads:
#   vt_md5=<md5 of http://10.0.2.1:8080/blob>  vt_bench=1 (run bench/virtio_guest_bench.sh)
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
check() { if [ "$2" = 0 ]; then echo "GUEST-CHECK $1 PASS"; else echo "GUEST-CHECK $1 FAIL"; fi; }
for m in virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net virtio-rng; do
  insmod /mod/$m.ko 2>/dev/null || echo "insmod $m failed"
done
sleep 1
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p"; }
# A virtio-blk disk by its serial (GET_ID).
disk() { for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = "$1" ] && echo /dev/${d##*/}; done; }
echo "guest: disks $(ls /sys/block | tr '\n' ' ')"
# Found through the DSDT (platform devices named after the _HID), not the command line.
check acpi-lnro0005 "$(ls -d /sys/bus/platform/devices/LNRO0005:* >/dev/null 2>&1 && ! grep -q virtio_mmio.device /proc/cmdline; echo $?)"
# Negotiated features, one character per bit: INDIRECT_DESC (28), EVENT_IDX (29), VERSION_1 (32).
f=$(cat /sys/block/vda/device/features 2>/dev/null)
echo "guest: vda features $f"
check features-indirect-eventidx-v1 "$([ "$(echo "$f" | cut -c29,30,33)" = 111 ]; echo $?)"

mkdir -p /mnt/raw /mnt/q /mnt/ro
R=$(disk rawdisk); Q=$(disk qcowdisk); O=$(disk rodisk)
check blk-serial "$([ -n "$R" ] && [ -n "$Q" ] && [ -n "$O" ]; echo $?)"
mount -t ext4 "$R" /mnt/raw && echo written-by-guest-raw > /mnt/raw/guest.txt && sync && umount /mnt/raw
check blk-raw-write $?
mount -t ext4 "$Q" /mnt/q
check blk-qcow2-backing-read "$(grep -q from-base-image /mnt/q/base.txt; echo $?)"
dd if=/dev/urandom of=/mnt/q/big.bin bs=64k count=40 2>/dev/null
echo written-by-guest-qcow2 > /mnt/q/guest.txt && md5sum /mnt/q/big.bin | cut -d' ' -f1 > /mnt/q/big.md5 && sync
umount /mnt/q; echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 "$Q" /mnt/q && [ "$(md5sum < /mnt/q/big.bin | cut -d' ' -f1)" = "$(cat /mnt/q/big.md5)" ]
check blk-qcow2-reread $?
umount /mnt/q
check blk-ro-flag "$([ "$(cat /sys/block/${O#/dev/}/ro)" = 1 ]; echo $?)"
if mount -t ext4 -o rw "$O" /mnt/ro 2>/dev/null && touch /mnt/ro/x 2>/dev/null; then check blk-ro-refuses-write 1
else check blk-ro-refuses-write 0; fi
dd if=/dev/zero of="$O" bs=4k count=1 seek=10 conv=fsync 2>/dev/null; check blk-ro-refuses-raw-write "$([ $? != 0 ]; echo $?)"

# Rate limits of limitdisk: 2 MiB/s and 100 IOPS, each with a 1 s burst; a request is
# admitted while tokens remain and may overdraw, so 6 MiB take ~1.5-2 s (unlimited: <0.1 s).
now() { read -r u _ < /proc/uptime; echo $(( ${u%.*} * 1000 + (1${u#*.} - 100) * 10 )); }
L=$(disk limitdisk)
if [ -n "$L" ]; then
  t=$(now); dd if="$L" of=/dev/null bs=1M count=6 iflag=direct 2>/dev/null; ms=$(( $(now) - t ))
  echo "guest: 6 MiB from the 2 MiB/s disk in $ms ms"
  check blk-rate-limit-bandwidth "$([ $ms -ge 1000 ] && [ $ms -le 6000 ]; echo $?)"
  t=$(now); dd if="$L" of=/dev/null bs=4k count=300 iflag=direct 2>/dev/null; ms=$(( $(now) - t ))
  echo "guest: 300 4k reads from the 100 IOPS disk in $ms ms"
  check blk-rate-limit-iops "$([ $ms -ge 1000 ] && [ $ms -le 6000 ]; echo $?)"
fi

# virtio-rng
cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
echo "guest: rng_current=$cur"
check rng-present "$(echo "$cur" | grep -q virtio; echo $?)"
check rng-read "$([ "$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c)" = 32 ]; echo $?)"

# virtio-net
ip link set lo up; ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0
check net-link $?
nf=$(cat /sys/class/net/eth0/device/features 2>/dev/null); echo "guest: eth0 features $nf"
# CSUM (0), GUEST_CSUM (1), GUEST_TSO4 (7), HOST_TSO4 (11): offloads the L1 tap supports.
check net-offload-negotiated "$([ "$(echo "$nf" | cut -c1,2,8,12)" = 1111 ]; echo $?)"
ok=1; for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 2 10.0.2.1 >/dev/null 2>&1 && { ok=0; break; }; sleep 1; done
check net-ping $ok
want=$(arg vt_md5)
wget -q -O /tmp/blob http://10.0.2.1:8080/blob; got=$(md5sum < /tmp/blob | cut -d' ' -f1)
echo "guest: blob md5 $got (want $want)"
check net-tcp-transfer "$([ -n "$want" ] && [ "$got" = "$want" ]; echo $?)"

[ "$(arg vt_bench)" = 1 ] && [ -x /bench.sh ] && /bench.sh
echo GUEST-DONE
poweroff -f
