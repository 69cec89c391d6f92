#!/bin/bash
# quickstart_fresh.sh: times scripts/quickstart.sh as a new user meets it, on a fresh
# Debian 12 root, and says where the time goes.
#
# Usage (root, from the repository): bench/quickstart_fresh.sh [OUT_DIR]
#
# The root is made by mmdebstrap with its default variant (debootstrap: Priority
# required + important, what a minimal Debian install has; no compiler, no kernel),
# once, cached as $VESSEL_QSFRESH_CACHE/root-<hash>.tar (default /var/tmp/vessel-qsfresh);
# each run unpacks a new copy on disk (not tmpfs: dpkg's fsyncs cost what they cost on
# a machine), gets this host's apt sources (and the apt options they need here, e.g.
# Check-Valid-Until for a snapshot mirror), name resolution, a `git clone` of this
# repository's HEAD (commit first), and runs ./scripts/quickstart.sh in it with chroot,
# in a private mount namespace (/dev, /proc, /sys, /run inside; all gone with it).
# No ccache, no apt cache: what a fresh machine has. The copy is deleted afterwards.
#
# Writes into OUT_DIR (default /var/tmp/vessel-qsfresh/run-<time>):
#   quickstart.log   its output, each line with the seconds since the start
#   dpkg.log         the root's /var/log/dpkg.log (one line per package step)
#   timeline.txt     every second: which of the root's programs ran (sampled from /proc)
#   summary.txt      the phases, dpkg's time by package and step, the host's load
# VESSEL_QSFRESH_CMD runs another command in the root's clone instead of quickstart.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "quickstart_fresh: run as root" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "quickstart_fresh: needs mmdebstrap" >&2; exit 1; }
cache=${VESSEL_QSFRESH_CACHE:-/var/tmp/vessel-qsfresh}
out=${1:-$cache/run-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$cache" "$out"
out=$(cd "$out" && pwd)

# The host's apt sources and the apt.conf.d options that make them usable here
# (Check-Valid-Until/Check-Date for a snapshot mirror, a proxy): nothing else.
sources=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)
aptconf=$(grep -hE '^\s*Acquire::(Check-Valid-Until|Check-Date|https?::Proxy)' /etc/apt/apt.conf.d/* 2>/dev/null || true)
key=$(printf '%s\n%s\n' "$sources" "$aptconf" | sha256sum | cut -c1-12)
tarball=$cache/root-$key.tar
if [[ ! -s $tarball ]]; then
  echo "== mmdebstrap bookworm, default variant (once; cached as $tarball)"
  aptopts=()
  while IFS= read -r l; do [[ -n $l ]] && aptopts+=(--aptopt="$l"); done <<<"$aptconf"
  # mmdebstrap picks the format by the name's extension: the temporary name must end in .tar
  # (".tar.tmp" would make it a directory).
  nice mmdebstrap "${aptopts[@]}" bookworm "$tarball.tmp.tar" http://deb.debian.org/debian >"$out/mmdebstrap.log" 2>&1 ||
    { tail -n 20 "$out/mmdebstrap.log"; rm -rf "$tarball.tmp.tar"; exit 1; }
  mv "$tarball.tmp.tar" "$tarball"
fi

work=$(mktemp -d /var/tmp/vessel-qsfresh.XXXXXX)
root=$work/root
# The run's CPU time by phase: its processes in a cpuacct cgroup of their own (v1 or v2).
cg=''
if [[ -d /sys/fs/cgroup/cpuacct ]]; then
  cg=/sys/fs/cgroup/cpuacct/vessel-qsfresh-$$
elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  cg=/sys/fs/cgroup/vessel-qsfresh-$$
fi
[[ -n $cg ]] && { mkdir "$cg" 2>/dev/null || cg=''; }
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  [[ -n $cg ]] && { rmdir "$cg" 2>/dev/null || echo "quickstart_fresh: cannot remove cgroup $cg" >&2; }
  [[ -n ${sampler:-} ]] && { kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; }
  # The mounts lived in the inner namespace only; refuse to delete through one anyway.
  if findmnt -rn -o TARGET | grep -q "^$root"; then
    echo "quickstart_fresh: mounts left under $root; not deleting it" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
echo "== unpack a fresh root into $root"
mkdir -p "$root"
tar -C "$root" -xf "$tarball"
rm -f "$root"/etc/apt/sources.list "$root"/etc/apt/sources.list.d/*
cp -a /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
[[ -f /etc/apt/sources.list ]] && cp /etc/apt/sources.list "$root/etc/apt/"
[[ -n $aptconf ]] && printf '%s\n' "$aptconf" >"$root/etc/apt/apt.conf.d/90host-mirror"
cp /etc/hosts /etc/resolv.conf "$root/etc/"
git clone -q "$repo" "$root/root/vessel"
echo "== clone of $(git -C "$repo" rev-parse --short HEAD) into /root/vessel"

# Inner part: a private mount namespace, the root's mounts, chroot, the quick start.
inner=$(cat <<'EOF'
set -euo pipefail
root=$1
[[ -n $3 ]] && echo $$ >"$3/cgroup.procs"
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=755 run "$root/run"
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -c "cd /root/vessel && $2" 2>&1
EOF
)
# VESSEL_QSFRESH_CMD: another command to time instead (e.g. one phase by hand).
cmd=${VESSEL_QSFRESH_CMD:-./scripts/quickstart.sh}

dpkg_lines=0  # mmdebstrap's own lines, if it kept them
[[ -f $root/var/log/dpkg.log ]] && dpkg_lines=$(wc -l <"$root/var/log/dpkg.log")
# Every second: the host's load and CPU counters, and the root's programs.
echo "start $EPOCHREALTIME" >"$out/timeline.txt"
python3 "$repo/bench/quickstart_fresh.py" sample "$root" "$cg" >>"$out/timeline.txt" &
sampler=$!
until [[ $(wc -l <"$out/timeline.txt") -ge 2 ]]; do sleep 0.2; done  # its first sample
echo "== quickstart.sh in the fresh root (log: $out/quickstart.log)"
t0=$EPOCHREALTIME
set +e
/usr/bin/time -f '%e %U %S' -o "$out/time.txt" unshare --mount --propagation private bash -c "$inner" inner "$root" "$cmd" "$cg" |
  python3 -u -c 'import sys, time
t0 = float(sys.argv[1])
for line in iter(sys.stdin.readline, ""):
    print("%7.1f %s" % (time.time() - t0, line), end="", flush=True)' "$t0" | tee "$out/quickstart.log"
rc=${PIPESTATUS[0]}
set -e
kill "$sampler"; wait "$sampler" 2>/dev/null || true; sampler=''
tail -n +$((dpkg_lines + 1)) "$root/var/log/dpkg.log" >"$out/dpkg.log" 2>/dev/null || true
python3 "$repo/bench/quickstart_fresh.py" summary "$out" "$rc" | tee "$out/summary.txt"
exit "$rc"
