#!/bin/busybox sh
# /init of the Linux guest of ctest vmharness.vmm_snapshot_cli (Debian's
# generic kernel: it has the vmgenid driver). Mounts its virtio-blk disk and
# runs a loop that counts, appends the count to the disk (synced), pings the
# L1 bridge and prints one line per round (and echoes TCP port 7000):
#   TICK <n> ping=ok|fail ip=<ip> mac=<mac> gen=<VM generation ID>
# When the generation ID changes (a restore or a clone), it waits for the
# kernel's "crng reseeded due to virtual machine fork", re-probes virtio-net
# (the clone's MAC), takes an IP from its MAC and prints
#   NEWGEN gen=<id> mac=<mac> rnd=<16 bytes of /dev/urandom> reseeded=yes|no
# It stops (umount, poweroff) once http://10.3.0.1:8080/stop exists.
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mod/order); do insmod /mod/$m.ko 2>/dev/null || echo "insmod $m failed"; done
genid() { echo "$(devmem 0xff000 64)$(devmem 0xff008 64)" | tr -d '\n'; }
netup() {
  mac=$(cat /sys/class/net/eth0/address)
  ip link set eth0 up
  ip addr flush dev eth0
  ip addr add "10.3.$((0x$(echo $mac | cut -d: -f5))).$((0x$(echo $mac | cut -d: -f6)))/16" dev eth0
}
ip link set lo up
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && [ -b /dev/vda ] && break; sleep 0.5; done
netup
mkdir -p /mnt && mount -t ext4 /dev/vda /mnt || echo "GUEST-ERROR mount"
gen=$(genid)
forks=$(dmesg | grep -c "virtual machine fork")
# An echo server: the live-migration check keeps one TCP connection to it open.
nc -ll -p 7000 -e cat &
# And one on vsock port 5000, when the VM has a vsock (L1 connects through the VMM's socket).
[ -e /dev/vsock ] && vsock_echo listen 5000 &
echo "GUEST-READY gen=$gen mac=$mac"
n=$(cat /mnt/count 2>/dev/null || echo 0)
while :; do
  n=$((n + 1))
  echo $n >> /mnt/log && echo $n > /mnt/count && sync
  g=$(genid)
  if [ "$g" != "$gen" ]; then
    gen=$g
    r=no
    for i in $(seq 40); do
      f=$(dmesg | grep -c "virtual machine fork"); [ "$f" -gt "$forks" ] && { r=yes; forks=$f; break; }; sleep 0.25
    done
    # A fresh probe of virtio-net reads the clone's MAC from the device.
    dev=$(basename "$(readlink /sys/class/net/eth0/device)")
    echo "$dev" > /sys/bus/virtio/drivers/virtio_net/unbind
    echo "$dev" > /sys/bus/virtio/drivers/virtio_net/bind
    for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done
    netup
    echo "NEWGEN gen=$gen mac=$mac rnd=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n') reseeded=$r"
  fi
  if ping -c 1 -W 1 10.3.0.1 >/dev/null 2>&1; then p=ok; else p=fail; fi
  echo "TICK $n ping=$p mac=$mac gen=$gen"
  if wget -q -O /dev/null http://10.3.0.1:8080/stop 2>/dev/null; then
    umount /mnt && echo "GUEST-STOPPED clean" || echo "GUEST-STOPPED umount-failed"
    poweroff -f
  fi
  sleep 1
done
