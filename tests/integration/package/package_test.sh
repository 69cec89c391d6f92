#!/bin/bash
# Builds the Debian package of a build tree with cpack and checks it on a fresh
# Debian root: installs (apt resolves Depends), vessel --version, vessel spec,
# man vessel / vessel-run, bash completion of `vessel <TAB>`, a busybox
# container; then dpkg -r and dpkg --purge leave the root as it was.
#   package_test.sh BUILD_DIR
# The fresh root is made with mmdebstrap from this host's apt sources
# (/etc/apt/sources.list.d/*.sources or sources.list) once (minutes: ~100 packages
# from the mirror) and cached as $VESSEL_PKGTEST_CACHE/root-<hash of sources and
# packages>.tar (default /var/tmp/vessel-pkgtest-cache); each run unpacks a new copy.
# Runs in a private mount namespace: its mounts vanish with it.
set -euo pipefail
build=$(readlink -f "$1")
skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root"
command -v cpack >/dev/null || skip "needs cpack (cmake)"
command -v mmdebstrap >/dev/null || skip "needs mmdebstrap (apt install mmdebstrap)"
[[ -x /bin/busybox ]] || skip "needs busybox-static"
[[ -x $build/vessel ]] || { echo "FAIL: $build/vessel not built"; exit 1; }

if [[ -z ${VESSEL_PKGTEST_IN_NS:-} ]]; then
  exec env VESSEL_PKGTEST_IN_NS=1 unshare --mount --propagation private "$0" "$@"
fi

cache=${VESSEL_PKGTEST_CACHE:-/var/tmp/vessel-pkgtest-cache}
mkdir -p "$cache"
work=$(mktemp -d /var/tmp/vessel-pkgtest.XXXXXX)
# The root lives in a tmpfs of this mount namespace: quick to unpack, gone with the namespace.
mount -t tmpfs -o size=2g vessel-pkgtest "$work"
root=$work/root
cleanup() {
  # Unmount what we mounted (the namespace would drop them anyway), then remove the copy.
  for m in "$root/dev" "$root/sys" "$root/proc" "$root" "$work"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m"
  done
  rmdir "$work"
}
trap cleanup EXIT
t0=$SECONDS
step() { echo "== [$((SECONDS - t0))s] $*"; }

step "cpack -G DEB"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; echo "FAIL: cpack"; exit 1; }
deb=$(ls "$work"/deb/vessel_*.deb)
dpkg-deb --field "$deb"
depends=$(dpkg-deb --field "$deb" Depends)
[[ $depends == *libseccomp2* ]] || { echo "FAIL: Depends lacks libseccomp2: $depends"; exit 1; }
[[ $depends != *libarchive* && $depends != *libssl* ]] || { echo "FAIL: Depends has dlopen'ed libraries: $depends"; exit 1; }
[[ $(dpkg-deb --field "$deb" Recommends) == *libarchive13* ]] || { echo "FAIL: Recommends lacks libarchive13"; exit 1; }
dpkg-deb --contents "$deb" | awk '{print $6}' | sort >"$work/contents"
for f in ./usr/bin/vessel ./usr/share/man/man8/vessel.8.gz ./usr/share/man/man8/vessel-run.8.gz \
         ./usr/share/bash-completion/completions/vessel ./usr/share/zsh/vendor-completions/_vessel \
         ./usr/share/doc/vessel/examples/containers.conf; do
  grep -qx "$f" "$work/contents" || { echo "FAIL: the package lacks $f"; cat "$work/contents"; exit 1; }
done

# The fresh root: this host's apt sources, so it works wherever apt-get does here.
sources=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[[ -n $sources ]] || sources=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null || true)
[[ -n $sources ]] || skip "no apt sources on this host"
packages=man-db,bash-completion
key=$(printf '%s\n%s\n' "$sources" "$packages" | sha256sum | cut -c1-12)
tarball=$cache/root-$key.tar
if [[ ! -s $tarball ]]; then
  step "mmdebstrap bookworm (first run; cached as $tarball)"
  if ! printf '%s\n' "$sources" | mmdebstrap --variant=apt --include="$packages" \
      --aptopt='Acquire::Check-Valid-Until "false"' bookworm "$tarball.tmp.tar" - >"$work/mmdebstrap.log" 2>&1; then
    tail -n 20 "$work/mmdebstrap.log"
    rm -rf "$tarball.tmp.tar"
    skip "mmdebstrap could not reach the Debian mirror of this host's apt sources"
  fi
  # (mmdebstrap picks the format by the name's extension: "root-X.tar.tmp" made a directory)
  mv "$tarball.tmp.tar" "$tarball"
  find "$cache" -name 'root-*.tar' ! -name "root-$key.tar" -delete   # one root per cache
fi
step "unpack a fresh root"
mkdir -p "$root"
tar -C "$root" -xf "$tarball"
# The root is a mount point, as / is on a machine (a container's rootfs propagation is set on it).
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb "$@"; }
# What the root holds before: every path outside the package managers' own records and caches.
snapshot() {
  in_root find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /run -o -path /var/lib/dpkg \
    -o -path /var/lib/apt -o -path /var/cache -o -path /var/log -o -path /root \) -prune -o -print | sort
}
snapshot >"$work/before"

step "install: apt-get install ./vessel.deb (Depends from the mirror when missing)"
cp "$deb" "$root/tmp/vessel.deb"
apt_install() { in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /tmp/vessel.deb; }
# mmdebstrap leaves no package lists: fetch them only when a dependency is missing from the root.
if ! apt_install >"$work/install.log" 2>&1; then
  in_root apt-get update -q >>"$work/install.log" 2>&1
  apt_install >>"$work/install.log" 2>&1 || { cat "$work/install.log"; echo "FAIL: apt-get install"; exit 1; }
fi
grep -E "^(Setting up|Unpacking)" "$work/install.log" || true
in_root dpkg -L vessel | sort >"$work/files"

step "vessel --version; vessel spec"
in_root vessel --version
in_root sh -c 'mkdir -p /tmp/b/rootfs && cd /tmp/b && vessel spec && grep -q "\"ociVersion\"" config.json' ||
  { echo "FAIL: vessel spec"; exit 1; }

step "man vessel, man vessel-run"
man_out=$(in_root env MANPAGER=cat MANWIDTH=100 man vessel 2>&1) || { echo "$man_out"; echo "FAIL: man vessel"; exit 1; }
grep -q "an OCI container runtime" <<<"$man_out" || { echo "$man_out" | head; echo "FAIL: man vessel text"; exit 1; }
in_root env MANPAGER=cat MANWIDTH=100 man vessel-run | grep -q -- "--bundle" || { echo "FAIL: man vessel-run"; exit 1; }
echo "$man_out" | head -n 12

step "bash completion: vessel <TAB>, vessel image b<TAB>, vessel run --b<TAB>"
complete_words() {  # the words bash offers for the command line "$*<TAB>"
  in_root bash -i -c '
    . /usr/share/bash-completion/bash_completion
    complete -p vessel >/dev/null 2>&1 || _completion_loader vessel   # what the first <TAB> does
    complete -p vessel >&2
    read -ra COMP_WORDS <<<"$1"; [[ $1 == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE=$1; COMP_POINT=${#1}
    _vessel vessel "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' bash "$*" 2>"$work/complete.err" </dev/null
}
verbs=$(complete_words "vessel ")
grep -q "complete -F _vessel vessel" "$work/complete.err" || { cat "$work/complete.err"; echo "FAIL: complete -p vessel"; exit 1; }
for v in run spec create delete image vm; do
  grep -qx "$v" <<<"$verbs" || { echo "offered: $verbs"; echo "FAIL: vessel <TAB> lacks $v"; exit 1; }
done
[[ $(complete_words "vessel image b") == build ]] || { echo "FAIL: vessel image b<TAB>"; exit 1; }
[[ $(complete_words "vessel run --b") == --bundle ]] || { echo "FAIL: vessel run --b<TAB>"; exit 1; }
echo "vessel <TAB>: $(echo $verbs)"

step "a container: busybox, vessel run"
mkdir -p "$root/tmp/c/rootfs/bin"
cp /bin/busybox "$root/tmp/c/rootfs/bin/"
ln -s busybox "$root/tmp/c/rootfs/bin/sh"
in_root sh -c 'cd /tmp/c && vessel spec && sed -i "s/\"terminal\": true/\"terminal\": false/; s/\"sh\"$/\"sh\", \"-c\", \"echo hello from \$(busybox hostname)\"/" config.json'
out=$(in_root vessel --root /tmp/vessel-state run --bundle /tmp/c "newcomer-pkgtest-$$" 2>&1) ||
  { echo "$out"; echo "FAIL: vessel run"; exit 1; }
echo "$out"
grep -q "hello from" <<<"$out" || { echo "FAIL: the container printed no greeting"; exit 1; }
rm -rf "$root/tmp/c" "$root/tmp/b" "$root/tmp/vessel-state" "$root/tmp/vessel.deb"

step "dpkg -r vessel; dpkg --purge vessel"
in_root dpkg -r vessel >/dev/null
left=$(while read -r f; do [[ -d $root$f ]] || [[ ! -e $root$f ]] || echo "$f"; done <"$work/files")
[[ -z $left ]] || { echo "$left"; echo "FAIL: dpkg -r left files"; exit 1; }
in_root dpkg --purge vessel >/dev/null 2>&1
if in_root dpkg-query -W vessel >/dev/null 2>&1; then echo "FAIL: dpkg still knows vessel"; exit 1; fi
snapshot >"$work/after"
if ! diff -u "$work/before" "$work/after"; then echo "FAIL: the root differs after purge"; exit 1; fi
step "PASS"
