#!/bin/sh
# Runs inside the VM harness's L1: boots Debian's kernel + busybox initramfs with the
# whole kernel log on COM1 (ignore_loglevel) to power-off, alternately with the
# baseline vessel (/usr/local/bin/vessel-base) and this vessel, RUNS times each, with
# the VMM's CPU time (user includes the guest's time in KVM_RUN; sys is the VMM's syscalls).
runs=${RUNS:-3}
now() { cut -d' ' -f1 /proc/uptime; }
i=0
while [ "$i" -lt "$runs" ]; do
  for v in base new; do
    bin=vessel; [ $v = base ] && bin=vessel-base
    log=/tmp/serial-$v.log
    t0=$(now)
    /usr/bin/time -f "user=%U sys=%S" -o /tmp/serial-time $bin vm run --kernel /guest/vmlinuz --initrd /guest/initrd.cpio --cpus 1 --memory 256M \
      --cmdline "console=ttyS0 ignore_loglevel panic=-1 reboot=k rdinit=/init" --serial "file:$log" </dev/null
    t1=$(now)
    up=no; grep -q VESSEL-GUEST-UP "$log" && up=yes
    echo "SERIAL vmm=$v run=$i seconds=$(awk "BEGIN {print $t1 - $t0}") bytes=$(wc -c < "$log") lines=$(wc -l < "$log") marker=$up $(cat /tmp/serial-time)"
  done
  i=$((i + 1))
done
