#!/usr/bin/env bash
# harness.sh: the vessel VM harness. Boots the Debian cloud kernel under QEMU TCG as a
# test host (L1) with real KVM (nested SVM) and a pure cgroup v2 hierarchy, runs a
# payload script in it and reports the payload's result. No root and no /dev/kvm needed.
#
# Usage:
#   harness.sh run --vessel PATH --payload SCRIPT|DIR [options]
#     --vessel PATH      vessel binary; installed with its shared libraries and loader
#                        as /usr/local/bin/vessel
#     --payload SCRIPT   shell script run as /payload.sh by the L1 /init (busybox sh); or
#     --payload DIR      a directory of check scripts (*.sh), copied to /checks and run
#                        by `vessel-run-checks /checks` (one VESSEL-CHECK marker each)
#     --timeout SEC      whole run, boot included (default 300); QEMU is killed after it
#     --memory MB        L1 memory (default 2048)
#     --cpus N           L1 vCPUs (default 2)
#     --extra DIR        copy DIR to /extra/<basename of DIR> (repeatable)
#     --bin FILE         copy FILE (and its shared libraries) to /usr/local/bin (repeatable)
#     --file SRC:DEST    copy file SRC to absolute path DEST (repeatable)
#     --env KEY=VALUE    export KEY=VALUE to the payload (repeatable)
#     --log FILE         write the console to FILE instead of stdout; on failure print
#                        its tail
#     --keep             keep the work dir (initramfs, console log) and print its path
#     --kernel PATH      L1 and L2 kernel (default $VESSEL_HARNESS_KERNEL or
#                        the newest /boot/vmlinuz-*-cloud-amd64: kernel.sh)
#     --modules DIR      its modules (default /lib/modules/<version from the file name>)
#     --machine M        QEMU machine: microvm (default) or q35
#     --append ARGS      extra kernel command line arguments
#     --disk FILE        attach FILE (raw) to L1 as a virtio-blk disk, /dev/vda, /dev/vdb...
#                        in option order (repeatable); snapshot=on: L1's writes go to a
#                        temporary overlay, FILE is never changed. For disk images too
#                        big for the initramfs (e.g. an L2 root file system)
#   harness.sh help
#
# Inside L1 (see l1-init.sh): /proc, /sys, devtmpfs, tmpfs /tmp and /run, cgroup2 at
# /sys/fs/cgroup with every controller enabled in the root's cgroup.subtree_control,
# loopback up, irqbypass/kvm/kvm-amd loaded, /dev/kvm mode 666, busybox applets on
# PATH, vessel on PATH, /guest/vmlinuz (the kernel) and /guest/initrd.cpio (from
# guest-initramfs.sh) for L2 boots, /usr/local/bin/vessel-run-checks (run-checks.sh).
# The environment has VESSEL_HARNESS=1 and every --env.
#
# Exit codes:
#   <n>  the payload's exit code, from the console marker VESSEL-HARNESS-RC=<n>;
#        1 also when the payload exited 0 but a VESSEL-CHECK marker says FAIL
#   2    usage error
#   77   a prerequisite (qemu, kernel, modules, busybox, cpio) is missing: skipped;
#        with VESSEL_HARNESS_REQUIRE=1 this is an error (exit 1) instead
#   124  timed out (QEMU killed, or the payload killed by the in-guest timeout)
#   125  the VESSEL-HARNESS-RC marker never appeared (QEMU error, kernel panic, init
#        crash); the console tail is printed
#   126  the harness itself failed (building the initramfs)
#
# Caching: the part of the initramfs that does not depend on vessel or the payload
# (busybox, modules, kernel, guest initramfs, /init) is kept as one cpio under
# ${VESSEL_HARNESS_CACHE:-/var/tmp/vessel-harness}, named by the sha256 of its inputs;
# the 3 most recently used entries are kept (~21 MB each). Each run adds a small second
# cpio (vessel, libraries, payload, extras); the kernel unpacks both.
#
# Environment: VESSEL_HARNESS_CACHE, VESSEL_HARNESS_KERNEL, VESSEL_HARNESS_QEMU (default
# qemu-system-x86_64), VESSEL_HARNESS_BUSYBOX (default /bin/busybox),
# VESSEL_HARNESS_REQUIRE (1: missing prerequisites fail instead of skipping),
# VESSEL_HARNESS_BOOT_DEADLINE (default 60; see "Boot watchdog" in README.md),
# VESSEL_HARNESS_WEDGE_SECONDS (90), VESSEL_HARNESS_LOCKUP_SECONDS (60),
# VESSEL_HARNESS_ATTEMPTS (3) (see "Heartbeat" in README.md).
#
# Boot watchdog: if L1 has not reached /init (no VESSEL-HARNESS-KVM marker) within
# min(60, max(20, timeout/3)) s, QEMU is killed and L1 booted again (at most
# VESSEL_HARNESS_ATTEMPTS boots, 3); the payload had not started, so this is safe. A hang of
# the last boot ends in 124.
#
# Packages (Debian): qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio
# (see deps.sh). Nothing is installed by this script.
set -Eeuo pipefail
shopt -s nullglob inherit_errexit

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly EXIT_USAGE=2 EXIT_SKIP=77 EXIT_TIMEOUT=124 EXIT_NO_MARKER=125 EXIT_SETUP=126
readonly QEMU=${VESSEL_HARNESS_QEMU:-qemu-system-x86_64}
readonly BUSYBOX=${VESSEL_HARNESS_BUSYBOX:-/bin/busybox}
readonly CACHE_DIR=${VESSEL_HARNESS_CACHE:-/var/tmp/vessel-harness}
readonly KVM_MODULES=(irqbypass kvm kvm-amd)
# Seconds within which L1 must reach /init before harness.sh boots it again (once).
# A boot takes ~3 s, up to ~11 s on a busy 2-core host.
readonly BOOT_DEADLINE=${VESSEL_HARNESS_BOOT_DEADLINE:-60}
# Seconds without a heartbeat from a started L1 after which it counts as wedged (it beats
# every 5 s): QEMU is killed and the payload runs again in a new L1.
readonly WEDGE_SECONDS=${VESSEL_HARNESS_WEDGE_SECONDS:-90}
# A soft lockup that L1's kernel reports as lasting this many seconds (its watchdog
# reports at ~22 s and every ~28 s after) counts as a wedged L1 too: one CPU of L1 has
# been stuck in its kernel (seen: in KVM_RUN of a nested guest's VMM, QEMU's or vessel's)
# while the other still beats.
readonly LOCKUP_SECONDS=${VESSEL_HARNESS_LOCKUP_SECONDS:-60}
# Boots of L1 for one payload when L1 hangs in its boot, wedges or resets itself (each
# within what is left of the timeout).
readonly MAX_ATTEMPTS=${VESSEL_HARNESS_ATTEMPTS:-3}

msg() { echo "vmharness: $*" >&2; }
die() { msg "error: $*"; exit "$EXIT_SETUP"; }
usage_error() { msg "$*"; msg "usage: harness.sh run --vessel PATH --payload SCRIPT|DIR [options]; see harness.sh help"; exit "$EXIT_USAGE"; }
skip() {
  if [[ ${VESSEL_HARNESS_REQUIRE:-0} == 1 ]]; then
    msg "error: $* (VESSEL_HARNESS_REQUIRE=1, so this is a failure)"
    exit 1
  fi
  msg "SKIP: $*"
  exit "$EXIT_SKIP"
}
# Any unexpected failure: say what failed and exit 126, never with a code that could be
# taken for the payload's. Exits of usage_error, skip and die pass through (a command
# substitution that called them fails with their code in the caller).
# shellcheck disable=SC2317 # invoked by the ERR trap
on_error() {
  local rc=$?
  case $rc in
    "$EXIT_USAGE"|"$EXIT_SKIP"|"$EXIT_SETUP") exit "$rc" ;;
  esac
  msg "error: '$BASH_COMMAND' failed with exit code $rc (harness.sh line ${BASH_LINENO[0]})"
  exit "$EXIT_SETUP"
}
trap on_error ERR

# Milliseconds since the epoch, and a duration in ms as seconds with one decimal.
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
secs() { printf '%d.%ds' $(($1 / 1000)) $(($1 % 1000 / 100)); }
help() { sed -n '2,/^set -/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

# ---- options ----------------------------------------------------------------------
vessel='' payload='' timeout_sec=300 memory_mb=2048 cpus=2 log_file='' keep=0
. "$(dirname "${BASH_SOURCE[0]}")/kernel.sh"
kernel=$VESSEL_HARNESS_KERNEL modules_dir=''
machine=microvm append=''
extras=() bins=() envs=() files=() disks=()
# Modules L1 loads (in this order) when it has --disk disks.
readonly DISK_MODULES_MICROVM=(virtio_ring virtio virtio_mmio virtio_blk)
readonly DISK_MODULES_Q35=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk)

parse_run_args() {
  while [[ $# -gt 0 ]]; do
    local opt=$1
    case $opt in
      --keep) keep=1; shift; continue ;;
      -h|--help) help; exit 0 ;;
      --*) [[ $# -ge 2 ]] || usage_error "$opt needs a value" ;;
      *) usage_error "unexpected argument: $opt" ;;
    esac
    local val=$2
    shift 2
    case $opt in
      --vessel) vessel=$val ;;
      --payload) payload=$val ;;
      --timeout) timeout_sec=$val ;;
      --memory) memory_mb=$val ;;
      --cpus) cpus=$val ;;
      --extra) extras+=("$val") ;;
      --bin) bins+=("$val") ;;
      --file) files+=("$val") ;;
      --env) envs+=("$val") ;;
      --log) log_file=$val ;;
      --kernel) kernel=$val ;;
      --modules) modules_dir=$val ;;
      --machine) machine=$val ;;
      --append) append=$val ;;
      --disk) disks+=("$val") ;;
      *) usage_error "unknown option: $opt" ;;
    esac
  done
  [[ -n $vessel ]] || usage_error "--vessel is required"
  [[ -n $payload ]] || usage_error "--payload is required"
  local n
  for n in "$timeout_sec" "$memory_mb" "$cpus"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout, --memory and --cpus take a positive integer, not '$n'"
  done
  [[ $machine == microvm || $machine == q35 ]] || usage_error "--machine: microvm or q35, not '$machine'"
  local b
  for b in "${envs[@]}"; do
    [[ $b =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || usage_error "--env: expected KEY=VALUE, not '$b'"
  done
  for b in "${files[@]}"; do
    [[ $b =~ ^[^:]+:/.+ ]] || usage_error "--file: expected SRC:/ABSOLUTE/DEST, not '$b'"
  done
  return 0
}

# Checks that the files named by the options exist (after check_prereqs: a missing
# prerequisite skips even when an input, e.g. --bin /usr/bin/qemu-system-x86_64, is gone).
check_inputs() {
  [[ -f $vessel && -x $vessel ]] || usage_error "--vessel: not an executable file: $vessel"
  [[ -f $payload || -d $payload ]] || usage_error "--payload: no such file or directory: $payload"
  local d b seen=" "
  for d in "${extras[@]}"; do
    [[ -d $d ]] || usage_error "--extra: not a directory: $d"
    b=$(basename "$(cd "$d" && pwd)")
    [[ $seen != *" $b "* ]] || usage_error "--extra: two directories named $b"
    seen+="$b "
  done
  for b in "${bins[@]}"; do [[ -f $b ]] || usage_error "--bin: no such file: $b"; done
  for b in "${files[@]}"; do [[ -f ${b%%:*} ]] || usage_error "--file: no such file: ${b%%:*}"; done
  for b in "${disks[@]}"; do
    [[ -f $b && -r $b && $b != *,* ]] || usage_error "--disk: not a readable file (or a comma in its name): $b"
  done
  if [[ -n $log_file ]]; then
    : >"$log_file" 2>/dev/null || usage_error "--log: cannot write $log_file"
  fi
  return 0
}

# Missing tools or kernel mean "this host cannot run the harness": skip, don't fail.
check_prereqs() {
  command -v "$QEMU" >/dev/null || skip "$QEMU not found (apt-get install qemu-system-x86)"
  [[ -f $kernel ]] || skip "kernel $kernel not found (apt-get install linux-image-cloud-amd64)"
  [[ -r $kernel ]] || skip "kernel $kernel is not readable by $(id -un)"
  if [[ -z $modules_dir ]]; then
    local base
    base=$(basename "$kernel")
    [[ $base == vmlinuz-* ]] || usage_error "cannot tell the kernel version of $kernel; pass --modules"
    modules_dir=/lib/modules/${base#vmlinuz-}
  fi
  [[ -d $modules_dir ]] || skip "modules directory $modules_dir not found"
  [[ -x $BUSYBOX ]] || skip "$BUSYBOX not found (apt-get install busybox-static)"
  ldd "$BUSYBOX" >/dev/null 2>&1 && skip "$BUSYBOX is dynamically linked; the static one is in busybox-static"
  local tool
  for tool in cpio ldd sha256sum timeout tail; do
    command -v "$tool" >/dev/null || skip "$tool not found"
  done
}

# ---- work dir and cleanup ---------------------------------------------------------
work='' qemu_pid='' tail_pid=''

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
    msg "stopping QEMU (pid $qemu_pid)"
    kill -TERM "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  if [[ -n $tail_pid ]]; then
    kill "$tail_pid" 2>/dev/null || true
    wait "$tail_pid" 2>/dev/null || true
  fi
  rm -f "$CACHE_DIR"/base-*.cpio.tmp."$$" 2>/dev/null || true  # an interrupted cache fill
  if [[ -n $work && -d $work ]]; then
    if [[ $keep == 1 ]]; then msg "kept work dir $work"; else rm -rf "$work"; fi
  fi
  exit "$rc"
}

# ---- initramfs --------------------------------------------------------------------
# Writes a cpio (newc, uncompressed: the kernel unpacks it faster than it can inflate
# it under TCG) of directory $1 to file $2.
make_cpio() {
  (cd "$1" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --owner=0:0 --quiet) >"$2"
}

# Prints the path of module $1 under $modules_dir (.ko, or compressed .ko.xz/.zst/.gz).
find_module() {
  local f
  f=$(find "$modules_dir" \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" \) -print -quit)
  [[ -n $f ]] || skip "kernel module $1 not found under $modules_dir"
  echo "$f"
}

# Copies module $1 to $2, decompressed (busybox insmod takes plain .ko files).
install_module() {
  case $1 in
    *.ko) cp "$1" "$2" ;;
    *.ko.xz) xz -dc "$1" >"$2" ;;
    *.ko.zst) zstd -qdc "$1" >"$2" ;;
    *.ko.gz) gzip -dc "$1" >"$2" ;;
  esac
}

# Deletes cache entries beyond the 3 most recently used ones, unless used in the last
# 10 minutes (a parallel run may have just picked one).
prune_cache() {
  local f n=0
  while read -r f; do
    n=$((n + 1))
    [[ $n -le 3 ]] || find "$1/$f" -maxdepth 0 -mmin +10 -delete 2>/dev/null || true
  done < <(cd "$1" && ls -t -- base-*.cpio 2>/dev/null)  # names are base-<hex>.cpio
}

# Prints the cache file for the static part of the initramfs, building it if needed.
base_cpio() {
  local inputs=("$kernel" "$BUSYBOX" "$HERE/harness.sh" "$HERE/l1-init.sh"
                "$HERE/run-checks.sh" "$HERE/guest-initramfs.sh")
  local m mod_files=()
  for m in "${KVM_MODULES[@]}"; do mod_files+=("$(find_module "$m")"); done
  local key
  key=$(sha256sum "${inputs[@]}" "${mod_files[@]}" | awk '{print $1}' | sha256sum | cut -c1-24)

  local dir=$CACHE_DIR
  if ! mkdir -p "$dir" 2>/dev/null || [[ ! -w $dir ]]; then
    msg "warning: cache dir $dir is not writable; building without a cache"
    dir=$work
  fi
  local file=$dir/base-$key.cpio
  if [[ -f $file ]]; then
    touch "$file" 2>/dev/null || true
    echo "$file"
    return
  fi

  msg "building the L1 base initramfs (cache miss: $file)"
  local stage=$work/base
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,dev,proc,sys,tmp,run,root,etc,harness/modules,guest,extra,checks}
  cp "$BUSYBOX" "$stage/bin/busybox"
  local applet
  while read -r applet; do
    [[ $applet == bin/busybox ]] || ln -sf /bin/busybox "$stage/$applet"
  done < <("$BUSYBOX" --list-full)
  for m in "${!KVM_MODULES[@]}"; do
    install_module "${mod_files[$m]}" "$stage/harness/modules/${KVM_MODULES[$m]}.ko"
  done
  cp "$kernel" "$stage/guest/vmlinuz"
  "$HERE/guest-initramfs.sh" --busybox "$BUSYBOX" "$stage/guest/initrd.cpio"
  install -m 755 "$HERE/l1-init.sh" "$stage/init"
  install -m 755 "$HERE/run-checks.sh" "$stage/usr/local/bin/vessel-run-checks"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$stage/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$stage/etc/group"
  echo 127.0.0.1 localhost >"$stage/etc/hosts"

  local tmp_file=$file.tmp.$$
  make_cpio "$stage" "$tmp_file" || { rm -f "$tmp_file"; die "cannot write $tmp_file"; }
  mv -f "$tmp_file" "$file"   # atomic: concurrent runs see a whole file or none
  rm -rf "$stage"
  prune_cache "$dir"
  echo "$file"
}

# Copies executable $1 to $2 inside stage dir $3, with the shared libraries and the
# dynamic loader it needs at the paths ldd reports.
install_binary() {
  local src=$1 dest=$2 stage=$3
  mkdir -p "$stage/$(dirname "$dest")"
  cp -L "$src" "$stage/$dest"
  local out
  if ! out=$(ldd "$src" 2>&1); then
    [[ $out == *"not a dynamic executable"* || $out == *"statically linked"* ]] && return 0
    die "ldd $src: $out"
  fi
  [[ $out != *"not found"* ]] || die "ldd $src: missing libraries: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
  local lib
  while read -r lib; do
    [[ -e $stage$lib ]] && continue
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out")
}

# Builds the per-run cpio: vessel, --bin and --file files, payload, extras, environment.
build_run_cpio() {
  local stage=$work/run
  mkdir -p "$stage"/{usr/local/bin,harness,extra,checks}
  install_binary "$vessel" /usr/local/bin/vessel "$stage"
  local b
  for b in "${bins[@]}"; do install_binary "$b" "/usr/local/bin/$(basename "$b")" "$stage"; done
  for b in "${files[@]}"; do
    mkdir -p "$stage/$(dirname "${b#*:}")"
    cp -L "${b%%:*}" "$stage/${b#*:}"
  done
  if [[ -d $payload ]]; then
    cp -a "$payload"/. "$stage/checks/"
    printf '#!/bin/sh\nexec vessel-run-checks /checks\n' >"$stage/payload.sh"
  else
    cp -L "$payload" "$stage/payload.sh"
  fi
  chmod 755 "$stage/payload.sh"
  local d
  for d in "${extras[@]}"; do cp -a "$(cd "$d" && pwd)" "$stage/extra/"; done
  if [[ ${#disks[@]} -gt 0 ]]; then  # l1-init.sh loads /harness/disk-modules/* in order
    local m mods=("${DISK_MODULES_MICROVM[@]}") n=0
    [[ $machine == q35 ]] && mods=("${DISK_MODULES_Q35[@]}")
    mkdir -p "$stage/harness/disk-modules"
    for m in "${mods[@]}"; do
      n=$((n + 1))
      install_module "$(find_module "$m")" "$stage/harness/disk-modules/$(printf %02d "$n")-$m.ko"
    done
  fi
  local kv
  for kv in "${envs[@]}"; do
    local v=${kv#*=}
    printf "export %s='%s'\n" "${kv%%=*}" "${v//\'/\'\\\'\'}"
  done >"$stage/harness/env"
  make_cpio "$stage" "$1" || die "cannot write $1"
  rm -rf "$stage"
}

# ---- boot -------------------------------------------------------------------------
# Under TCG the guest's TSC is the host's. microvm has neither HPET nor an ACPI PM
# timer, so the kernel can calibrate the TSC only against the PIT, which fails now and
# then when the vCPU thread is descheduled; the kernel then hangs in early boot. Passing
# the host's TSC frequency (tsc_early_khz) skips the calibration. x86 Linux derives
# BogoMIPS from the TSC: bogomips = tsc_khz / 500.
# With a constant, nonstop host TSC, tsc=reliable also lets L1 use the TSC as its
# clocksource (otherwise it finds the vCPUs' TSCs "unsynchronized" and falls back to
# jiffies: 4 ms resolution, drifting when the vCPU threads are starved).
host_tsc_khz() {
  local bogo
  bogo=$(awk -F: '/^bogomips/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)
  [[ -n $bogo ]] || return 0
  awk -v b="$bogo" 'BEGIN { k = int(b * 500 + 0.5); if (k > 500000 && k < 10000000) print k }'
}

kernel_cmdline() {
  local inner=$1
  # panic=-1 + reboot=t (triple fault) + QEMU -no-reboot: a panic ends the run at once.
  # Without reboot=t the reboot after a panic hung now and then (1 of 3 runs).
  local cmd="console=ttyS0 quiet panic=-1 oops=panic reboot=t mitigations=off nokaslr"
  cmd+=" cgroup_no_v1=all random.trust_cpu=on i8042.noaux i8042.nokbd cryptomgr.notests"
  cmd+=" rdinit=/init vessel.timeout=$inner"
  if [[ $machine == microvm ]]; then
    local khz
    khz=$(host_tsc_khz)
    if [[ -n $khz ]]; then
      cmd+=" tsc_early_khz=$khz"
      grep -m1 '^flags' /proc/cpuinfo | grep -qw constant_tsc &&
        grep -m1 '^flags' /proc/cpuinfo | grep -qw nonstop_tsc && cmd+=" tsc=reliable"
    fi
    cmd+=" pci=off"  # microvm has no PCI bus; skip probing it
  fi
  [[ -n $append ]] && cmd+=" $append"
  echo "$cmd"
}

# Prints the console log $1 without carriage returns, the last boot's part only (after
# a wedged or reset L1 the payload ran again; its first run's lines do not count).
console_text() { tr -d '\r' <"$1" | awk '/^vmharness: ---- attempt [0-9]+ ----$/ { n = 0; delete l; next } { l[++n] = $0 } END { for (i = 1; i <= n; i++) print l[i] }'; }

# How the last boot in console log $1 ended when it started its payload and stopped
# before the payload's exit marker: "panic" (its kernel panicked) or "reset" (no panic
# or oops: L1 reset itself). Prints nothing otherwise.
l1_ended_mid_payload() {
  local text
  text=$(console_text "$1")
  grep -aq 'VESSEL-HARNESS-KVM=' <<<"$text" && ! grep -aq 'VESSEL-HARNESS-RC=' <<<"$text" || return 0
  if grep -aq 'Kernel panic' <<<"$text"; then echo panic
  elif ! grep -aqE 'Oops|BUG:|general protection' <<<"$text"; then echo reset
  fi
}

# Summarises VESSEL-CHECK markers of console log $1; sets checks_failed.
checks_failed=0
report_checks() {
  local text=$1
  # Payload scripts print VESSEL-CHECK lines without BEGIN markers: they count too.
  grep -q '^VESSEL-CHECK ' <<<"$text" || return 0
  local passed failed skipped
  passed=$(grep -c '^VESSEL-CHECK [^ ]* PASS' <<<"$text" || true)
  failed=$(grep -c '^VESSEL-CHECK [^ ]* FAIL' <<<"$text" || true)
  skipped=$(grep -c '^VESSEL-CHECK [^ ]* SKIP' <<<"$text" || true)
  local name
  while read -r name; do
    grep -qF "VESSEL-CHECK $name " <<<"$text" || { msg "check $name did not finish"; failed=$((failed + 1)); }
  done < <(sed -n 's/^VESSEL-CHECK-BEGIN //p' <<<"$text")
  grep '^VESSEL-CHECK [^ ]* \(FAIL\|SKIP\)' <<<"$text" | sed 's/^VESSEL-CHECK /vmharness:   /' >&2 || true
  msg "$passed passed, $failed failed, $skipped skipped"
  checks_failed=$failed
}

print_tail() {
  [[ -n $log_file ]] || return 0
  msg "last 60 lines of the console ($log_file):"
  tail -n 60 "$1" | tr -d '\r' | sed 's/^/  /' >&2
}

# Boots L1 once: QEMU killed after $1 s, payload timeout $2 s, and killed if /init has
# not started (no VESSEL-HARNESS-KVM marker) after $3 s. Appends the console to file $4.
# Sets boot_rc: QEMU's exit code (124/137: killed at $1 s), or "stalled".
boot_rc=
process_alive() {  # true if process $1 exists and is not a zombie
  local state
  read -r _ _ state _ 2>/dev/null <"/proc/$1/stat" || return 1
  [[ $state != Z ]]
}
boot_qemu() {
  local qemu_timeout=$1 inner=$2 deadline=$3 console=$4
  local machine_opt=$machine
  [[ $machine == microvm ]] && machine_opt="microvm,rtc=on"
  # COM2 is L1's heartbeat (l1-init.sh writes its uptime there every few seconds): the
  # file stops growing when L1 itself stops responding.
  : >"$work/heartbeat"
  local qemu_args=(-accel tcg -cpu max -M "$machine_opt" -m "$memory_mb" -smp "$cpus"
                   -nographic -monitor none -serial stdio -no-reboot -no-user-config
                   -chardev "file,id=heartbeat,path=$work/heartbeat"
                   -device "isa-serial,chardev=heartbeat,iobase=0x2f8,irq=3"
                   -kernel "$kernel" -initrd "$work/initrd.cpio"
                   -append "$(kernel_cmdline "$inner")")
  # q35: no NIC (its iPXE option ROM costs boot time), no VGA.
  [[ $machine == q35 ]] && qemu_args+=(-nic none -vga none)
  local i blk=virtio-blk-device
  [[ $machine == q35 ]] && blk=virtio-blk-pci
  for i in "${!disks[@]}"; do
    qemu_args+=(-drive "file=${disks[$i]},if=none,id=disk$i,format=raw,snapshot=on"
                -device "$blk,drive=disk$i")
  done
  [[ $keep == 1 ]] && printf '%q ' "$QEMU" "${qemu_args[@]}" >"$work/qemu-command"

  local offset t0
  offset=$(stat -c %s "$console")
  t0=$(now_ms)
  # timeout runs QEMU in its own process group: a Ctrl-C reaches only this script,
  # whose traps stop QEMU. -k: SIGKILL if QEMU ignores SIGTERM.
  timeout -k 10 "$qemu_timeout" "$QEMU" "${qemu_args[@]}" </dev/null >>"$console" 2>&1 &
  qemu_pid=$!
  if [[ -z $log_file ]]; then
    tail -c +$((offset + 1)) -f -s 0.2 --pid="$qemu_pid" "$console" &
    tail_pid=$!
  fi
  # Only this boot's part of the console counts (an earlier attempt's may hold markers).
  boot_rc=running
  local started=0 beat_size=0 beat_ms size lockup_ms=0
  while [[ $boot_rc == running ]]; do
    if ! process_alive "$qemu_pid"; then
      boot_rc=0
      wait "$qemu_pid" || boot_rc=$?
    elif [[ $started == 0 ]] && tail -c +$((offset + 1)) "$console" | grep -aq 'VESSEL-HARNESS-KVM='; then
      started=1 beat_ms=$(now_ms)
    elif [[ $started == 0 ]] && (( $(now_ms) - t0 > deadline * 1000 )); then
      kill -TERM "$qemu_pid" 2>/dev/null || true
      wait "$qemu_pid" 2>/dev/null || true
      boot_rc=stalled
    elif [[ $started == 1 ]]; then
      size=$(stat -c %s "$work/heartbeat" 2>/dev/null || echo 0)
      if [[ $size != "$beat_size" ]]; then
        beat_size=$size beat_ms=$(now_ms)
      elif [[ $beat_size -gt 0 ]] && (( $(now_ms) - beat_ms > WEDGE_SECONDS * 1000 )); then
        # Beats came and stopped: L1 (QEMU's TCG and the nested KVM in it) has stopped
        # running its own userspace; nothing of the payload can report any more.
        kill -TERM "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
        boot_rc=wedged
      elif (( $(now_ms) - lockup_ms > 5000 )); then
        lockup_ms=$(now_ms)
        if (( $(longest_lockup "$console" "$offset") >= LOCKUP_SECONDS )); then
          kill -TERM "$qemu_pid" 2>/dev/null || true
          wait "$qemu_pid" 2>/dev/null || true
          boot_rc=lockup
        fi
      fi
      sleep 0.5
    else
      sleep 0.2
    fi
  done
  qemu_pid=
  if [[ -n $tail_pid ]]; then wait "$tail_pid" 2>/dev/null || true; tail_pid=; fi
}

# The longest soft lockup (seconds) that L1's kernel reported in CONSOLE after byte OFFSET.
longest_lockup() {
  tail -c +$(($2 + 1)) "$1" | grep -aoE 'soft lockup - CPU#[0-9]+ stuck for [0-9]+s' |
    sed -E 's/.* ([0-9]+)s$/\1/' | sort -n | tail -n 1 | grep . || echo 0
}

cmd_run() {
  parse_run_args "$@"
  check_prereqs
  check_inputs

  trap cleanup EXIT  # runs on every exit below: the payload's code passes through
  trap 'msg "interrupted"; exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  work=$(mktemp -d "${TMPDIR:-/tmp}/vessel-harness.XXXXXX")

  local t0 base
  t0=$(now_ms)
  base=$(base_cpio)
  build_run_cpio "$work/run.cpio"
  cat "$base" "$work/run.cpio" >"$work/initrd.cpio"
  rm -f "$work/run.cpio"

  local console=${log_file:-$work/console.log}
  : >"$console"
  msg "booting L1 ($machine, ${cpus} vCPUs, ${memory_mb} MiB, timeout ${timeout_sec}s; initramfs ready in $(secs $(($(now_ms) - t0))))"
  local start inner qemu_rc=124 attempt boots=0
  start=$(now_ms)
  # Under TCG an early boot very rarely hangs (seen: a soft lockup in stop_machine, 1 in
  # ~150 boots). If /init has not started within the boot deadline, nothing of the
  # payload has run yet: kill QEMU and boot again within the remaining time.
  for ((attempt = 1; attempt <= MAX_ATTEMPTS; attempt++)); do
    local remaining=$(( timeout_sec - ($(now_ms) - start) / 1000 ))
    [[ $remaining -ge 5 ]] || break
    # The payload gets a slightly shorter timeout than QEMU so that it can still report.
    inner=$(( remaining - (remaining >= 60 ? 20 : remaining / 3) ))
    # Boots before the last: deadline timeout/3, at least 20 s, at most BOOT_DEADLINE.
    # The last boot: none but the timeout (124 if it hangs too).
    local deadline=$remaining
    if (( attempt < MAX_ATTEMPTS )); then
      deadline=$(( timeout_sec / 3 > 20 ? timeout_sec / 3 : 20 ))
      [[ $deadline -le $BOOT_DEADLINE ]] || deadline=$BOOT_DEADLINE
    fi
    boot_qemu "$remaining" "$inner" "$deadline" "$console"
    boots=$attempt
    qemu_rc=$boot_rc
    (( attempt < MAX_ATTEMPTS )) || break
    local next="running the payload again in a new L1 (attempt $((attempt + 1)) of $MAX_ATTEMPTS)"
    if [[ $qemu_rc == stalled ]]; then
      msg "L1 did not reach /init within ${deadline}s (kernel hang); booting again (attempt $((attempt + 1)) of $MAX_ATTEMPTS)"
    elif [[ $qemu_rc == 0 ]] && [[ $(l1_ended_mid_payload "$console") == reset ]]; then
      # Seen under load: L1 gone in the middle of a payload, no panic, no oops, QEMU
      # (-no-reboot) exiting 0, i.e. L1 reset itself (a triple fault in the emulated CPU).
      # As with a wedge, the payload runs again from the start in a new L1.
      msg "L1 reset itself in the middle of the payload (no panic on its console, QEMU exited 0); $next"
    elif [[ $qemu_rc == 0 ]] && [[ $(l1_ended_mid_payload "$console") == panic ]]; then
      # Seen once in a density run: "corrupted stack end detected inside scheduler" in
      # L1's kernel (a vessel thread was current; no vessel code runs in the kernel). L1's
      # kernel is the test bed, not the code under test: the panic stays on the console
      # above and the payload runs again in a new L1 (the selftest's deliberate panic too).
      msg "L1's kernel panicked in the middle of the payload (see the console above); $next"
    elif [[ $qemu_rc == wedged ]]; then
      # Seen under load: L1's vCPUs spin in QEMU's interrupt delivery and L1 runs none of
      # its processes again (no soft-lockup report, no payload timeout report), or only
      # some of them (a guest kept running while the payload's shell and the heartbeat
      # did not, seen in CI; the next L1 wedged as well, hence a third attempt). L1 is
      # disposable: the payload runs again from the start in a fresh L1.
      msg "L1 stopped responding (no heartbeat for ${WEDGE_SECONDS}s, QEMU killed); $next"
    elif [[ $qemu_rc == lockup ]]; then
      # Seen in CI: CPU#0 of L1 stuck in the kernel, in KVM_RUN of the L2 reference QEMU
      # of vmm_fullsystem, for 880 s until the payload's timeout (soft lockup and RCU stall
      # reports every 28 s, the other CPU still beating); and in vmm_reboot's restart loop,
      # in vessel's. A kernel stuck for a minute does not come back in time; L1's nested
      # SVM under TCG is the test bed, so as with a wedge the payload runs again.
      msg "L1's kernel reported a soft lockup of ${LOCKUP_SECONDS}s or more (QEMU killed; see the console above); $next"
    else
      break
    fi
    echo "vmharness: ---- attempt $((attempt + 1)) ----" >>"$console"
  done
  [[ $qemu_rc != stalled ]] || qemu_rc=124
  if [[ $qemu_rc == wedged || $qemu_rc == lockup ]]; then
    if [[ $qemu_rc == wedged ]]; then msg "L1 stopped responding again (no heartbeat for ${WEDGE_SECONDS}s)"
    else msg "L1's kernel reported a soft lockup of ${LOCKUP_SECONDS}s or more again"; fi
    print_tail "$console"
    exit "$EXIT_TIMEOUT"
  fi
  local elapsed
  elapsed=$(secs $(($(now_ms) - start)))
  [[ $boots -le 1 ]] || elapsed+=" ($boots boots)"

  local text rc_line
  text=$(console_text "$console")
  rc_line=$(grep -ao 'VESSEL-HARNESS-RC=[0-9]*' <<<"$text" | tail -n 1 || true)
  report_checks "$text"
  if [[ -n $rc_line ]]; then
    local rc=${rc_line#VESSEL-HARNESS-RC=}
    if [[ $rc == 124 ]]; then
      msg "payload timed out after ${inner}s (in-guest timeout); run took ${elapsed}"
      print_tail "$console"
      exit "$EXIT_TIMEOUT"
    fi
    if [[ $rc == 0 && $checks_failed -gt 0 ]]; then rc=1; fi
    msg "payload exit code $rc; run took ${elapsed}"
    [[ $rc == 0 ]] || print_tail "$console"
    exit "$rc"
  fi
  if [[ $qemu_rc == 124 || $qemu_rc == 137 ]]; then
    msg "timed out after ${timeout_sec}s: QEMU killed"
    print_tail "$console"
    exit "$EXIT_TIMEOUT"
  fi
  msg "error: the payload never reported (no VESSEL-HARNESS-RC marker); QEMU exited with $qemu_rc after ${elapsed}. Kernel panic, /init crash or QEMU error: see the console"
  print_tail "$console"
  exit "$EXIT_NO_MARKER"
}

main() {
  [[ $# -gt 0 ]] || usage_error "no command"
  local cmd=$1
  shift
  case $cmd in
    run) cmd_run "$@" ;;
    help|-h|--help) help ;;
    *) usage_error "unknown command: $cmd" ;;
  esac
}

main "$@"; exit  # one line: bash must not read on if the file changes during a run
