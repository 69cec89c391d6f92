#!/bin/bash
# Finds Debian's cloud kernel to boot as a guest, without installing it as the host's.
#
# Usage: scripts/guest-kernel.sh
# Prints two lines: the kernel image (bzImage) and its modules directory, e.g.
#   /var/cache/vessel/guest-kernel/6.1.0-56-cloud-amd64/boot/vmlinuz-6.1.0-56-cloud-amd64
#   /var/cache/vessel/guest-kernel/6.1.0-56-cloud-amd64/lib/modules/6.1.0-56-cloud-amd64
# (the VM harness takes them as --kernel and --modules). Progress goes to stderr.
#
# An installed cloud kernel (/boot/vmlinuz-*-cloud-amd64 with its /lib/modules) is used
# as it is. Otherwise the package that linux-image-cloud-amd64 depends on (its candidate
# version) is fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
# $VESSEL_GUEST_KERNEL_CACHE/<version>/ (default /var/cache/vessel/guest-kernel; older
# versions there are deleted): nothing is installed, so the host's boot loader, initramfs
# and package database are left alone (installing linux-image-cloud-amd64 would make it the
# host's next default boot kernel, and building its initramfs takes minutes). Needs apt
# package lists (runs `apt-get update` once if the package is unknown) and root for the
# default cache directory. Exit codes: 0 found, 1 failure.
set -euo pipefail
cache=${VESSEL_GUEST_KERNEL_CACHE:-/var/cache/vessel/guest-kernel}
log() { echo "guest-kernel: $*" >&2; }
fail() { log "$*"; exit 1; }

# Prints "KERNEL\nMODULES" for a tree holding boot/vmlinuz-VER and lib/modules/VER
# (or usr/lib/modules/VER) with the kvm modules the harness loads; fails otherwise.
print_if_complete() {  # print_if_complete ROOT VER
  local root=$1 ver=$2 m
  [[ -f $root/boot/vmlinuz-$ver ]] || return 1
  for m in "$root/lib/modules/$ver" "$root/usr/lib/modules/$ver"; do
    if [[ -n $(find "$m/kernel/arch/x86/kvm" -name 'kvm.ko*' -print -quit 2>/dev/null) ]]; then
      printf '%s\n%s\n' "$root/boot/vmlinuz-$ver" "$m"
      return 0
    fi
  done
  return 1
}

# 1. An installed cloud kernel, the newest.
shopt -s nullglob
installed=(/boot/vmlinuz-*-cloud-amd64)
for k in $( ((${#installed[@]})) && printf '%s\n' "${installed[@]}" | sort -rV); do
  print_if_complete / "${k#/boot/vmlinuz-}" | sed 's|^//|/|' && exit 0
done

# 2. The cache, or the package fetched into it.
candidate_dep() {  # the versioned image package of linux-image-cloud-amd64's candidate
  apt-cache show --no-all-versions linux-image-cloud-amd64 2>/dev/null |
    sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*-cloud-amd64\).*/\1/p' | head -n 1
}
pkg=$(candidate_dep)
if [[ -z $pkg ]]; then
  log "apt knows no linux-image-cloud-amd64: apt-get update"
  apt-get update -qq >&2 || fail "apt-get update failed"
  pkg=$(candidate_dep)
  [[ -n $pkg ]] || fail "no package linux-image-cloud-amd64 in this host's apt sources (Debian 12 has it)"
fi
ver=${pkg#linux-image-}
print_if_complete "$cache/$ver" "$ver" && exit 0

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt-get download fetches as user _apt when it can write the directory (no warning).
id _apt >/dev/null 2>&1 && chown _apt "$tmp"
log "fetching $pkg (not installed: unpacked into $cache/$ver)"
(cd "$tmp" && apt-get download -qq "$pkg" >&2) || fail "apt-get download $pkg failed"
deb=$(ls "$tmp"/*.deb)
mkdir "$tmp/root"
dpkg-deb -x "$deb" "$tmp/root" || fail "dpkg-deb -x $deb failed"
# Keep the kernel and its modules, not the package's docs and firmware links.
mkdir "$tmp/keep"
mv "$tmp/root/boot" "$tmp/keep/"
[[ -d $tmp/root/lib/modules ]] && mkdir -p "$tmp/keep/lib" && mv "$tmp/root/lib/modules" "$tmp/keep/lib/"
[[ -d $tmp/root/usr/lib/modules ]] && mkdir -p "$tmp/keep/usr/lib" && mv "$tmp/root/usr/lib/modules" "$tmp/keep/usr/lib/"
print_if_complete "$tmp/keep" "$ver" >/dev/null || fail "$deb holds no boot/vmlinuz-$ver with kvm modules"
for old in "$cache"/*; do
  [[ -d $old && $old != "$cache/$ver" ]] && rm -rf "$old"
done
rm -rf "${cache:?}/$ver"
mv "$tmp/keep" "$cache/$ver"
print_if_complete "$cache/$ver" "$ver"
