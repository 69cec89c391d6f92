#!/usr/bin/env bash
# guest-initramfs.sh: builds a minimal initramfs for an L2 guest booted by `vessel vm run`.
#
# Usage: guest-initramfs.sh [--busybox PATH] [--add SRC[:DEST]]... OUT.cpio
#   OUT.cpio          output file, an uncompressed cpio (newc) archive; written atomically
#   --busybox PATH    static busybox to use (default /bin/busybox, from busybox-static)
#   --add SRC[:DEST]  copy file SRC into the image at DEST (default /<basename of SRC>);
#                     a /guest-payload.sh is run by /init with sh (see below)
#
# The guest's /init (busybox sh) mounts proc, sysfs and devtmpfs, then prints one line
#   VESSEL-GUEST-UP cpus=<n> mem_kb=<MemTotal> kernel=<uname -r>
# on the console, and with vessel.cpuinfo on the kernel command line two more,
#   VESSEL-GUEST-CPU model=<model name>   and   VESSEL-GUEST-CPU flags=<flags>
# from /proc/cpuinfo. If /guest-payload.sh exists it runs it and prints
#   VESSEL-GUEST-RC=<exit code>
# Finally it runs `poweroff -f`, or `reboot -f` when the kernel command line has
# vessel.exit=reboot (for VMMs that implement only the i8042/CF9 reset, like Firecracker).
# The kernel command line should name the console, e.g. "console=ttyS0 quiet panic=-1".
#
# Exit codes: 0 done, 1 failure, 2 usage error. Needs: cpio, a static busybox. No root.
set -euo pipefail

usage() { sed -n '2,/^set -/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

busybox=/bin/busybox
adds=()
out=
while [[ $# -gt 0 ]]; do
  case $1 in
    --busybox) [[ $# -ge 2 ]] || usage; busybox=$2; shift 2 ;;
    --add) [[ $# -ge 2 ]] || usage; adds+=("$2"); shift 2 ;;
    -h|--help) usage ;;
    -*) echo "guest-initramfs.sh: unknown option $1" >&2; usage ;;
    *) [[ -z $out ]] || usage; out=$1; shift ;;
  esac
done
[[ -n $out ]] || usage
[[ -x $busybox ]] || { echo "guest-initramfs.sh: no busybox at $busybox (apt-get install busybox-static)" >&2; exit 1; }
command -v cpio >/dev/null || { echo "guest-initramfs.sh: cpio not found (apt-get install cpio)" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/vessel-guest-initramfs.XXXXXX")
tmp_out="$out.tmp.$$"
trap 'rm -rf "$stage" "$tmp_out"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc}
cp "$busybox" "$stage/bin/busybox"
while read -r applet; do
  [[ $applet == bin/busybox ]] && continue
  ln -sf /bin/busybox "$stage/$applet"
done < <("$busybox" --list-full)

cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
# /init of the vessel L2 test guest (written by tests/vmharness/guest-initramfs.sh).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
echo "VESSEL-GUEST-UP cpus=$(grep -c ^processor /proc/cpuinfo) mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo) kernel=$(uname -r)"
case " $(cat /proc/cmdline) " in
  *" vessel.cpuinfo "*)  # the CPU as the guest sees it (payloads/cpu_fidelity.sh)
    echo "VESSEL-GUEST-CPU model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "VESSEL-GUEST-CPU flags=$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" ;;
esac
if [ -f /guest-payload.sh ]; then
  sh /guest-payload.sh
  echo "VESSEL-GUEST-RC=$?"
fi
sync
case " $(cat /proc/cmdline) " in
  *" vessel.exit=reboot "*) reboot -f ;;
  *) poweroff -f ;;
esac
sleep 5
reboot -f
EOF
chmod 755 "$stage/init"

for spec in "${adds[@]}"; do
  src=${spec%%:*}
  dest=/$(basename "$src")
  [[ $spec == *:* ]] && dest=${spec#*:}
  [[ -f $src ]] || { echo "guest-initramfs.sh: --add: no such file: $src" >&2; exit 1; }
  mkdir -p "$stage/$(dirname "$dest")"
  cp -L "$src" "$stage/$dest"
done

(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
  cpio --null --create --format=newc --owner=0:0 --quiet) >"$tmp_out"
mv -f "$tmp_out" "$out"
