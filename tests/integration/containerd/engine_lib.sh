#!/bin/bash
# Shared by the docker and containerd suites (sourced, not run): a busybox
# image built from busybox-static, a containerd of the test's own, the cleanup
# of everything a suite started, and the PASS/FAIL bookkeeping.
#
# A suite sets `tmp` (its temp dir, removed on exit) before calling these.
# Nothing here touches a daemon, container, cgroup or mount the suite did not
# make: processes are found by the suite's own socket path in their argv.

passed=0 failed=0 skipped=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip_check() { echo "SKIP $1: $2"; skipped=$((skipped + 1)); }

# Runs "$@" keeping stdout in $out, stderr (one line, cut) in $err and the status in $rc.
out='' err='' rc=0
capture() {
  rc=0
  out=$("$@" 2>"$tmp/stderr") || rc=$?
  err=$(tr '\n' ' ' <"$tmp/stderr" | cut -c1-800)
}

# build_rootfs DIR: busybox and its applets, /etc/passwd with root and nobody.
build_rootfs() {
  local dir=$1 applet
  mkdir -p "$dir"/{bin,dev,proc,sys,etc,tmp,root}
  cp "$busybox" "$dir/bin/busybox"
  for applet in $("$busybox" --list); do
    [[ -e $dir/bin/$applet ]] || ln -s busybox "$dir/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  # A file that is not executable, for the exit-126 checks.
  printf '#!/bin/sh\necho never\n' >"$dir/bin/not-executable"
  chmod 0644 "$dir/bin/not-executable"
  chmod 1777 "$dir/tmp"
}

# oci_archive ROOTFS OUT NAME: an OCI image layout tar of one layer, for `ctr image import`.
oci_archive() {
  local rootfs=$1 out=$2 name=$3 d
  d=$(mktemp -d "$tmp/oci.XXXXXX")
  mkdir -p "$d/blobs/sha256"
  tar --numeric-owner -C "$rootfs" -cf "$d/layer.tar" .
  local layer_sum layer_size config config_sum manifest manifest_sum
  layer_sum=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$d/layer.tar")
  mv "$d/layer.tar" "$d/blobs/sha256/$layer_sum"
  config='{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:'$layer_sum'"]}}'
  printf '%s' "$config" >"$d/config"
  config_sum=$(sha256sum "$d/config" | cut -d' ' -f1)
  mv "$d/config" "$d/blobs/sha256/$config_sum"
  manifest='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$config_sum'","size":'${#config}'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'$layer_sum'","size":'$layer_size'}]}'
  printf '%s' "$manifest" >"$d/manifest"
  manifest_sum=$(sha256sum "$d/manifest" | cut -d' ' -f1)
  mv "$d/manifest" "$d/blobs/sha256/$manifest_sum"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest_sum" "${#manifest}" "$name" >"$d/index.json"
  tar -C "$d" -cf "$out" oci-layout index.json blobs
  rm -rf "$d"
}

# start_containerd DIR: a containerd with its root, state and socket under DIR;
# sets ctrd_sock. Returns non-zero (with the log printed) when it does not come up.
start_containerd() {
  local dir=$1 i
  mkdir -p "$dir/root" "$dir/state"
  ctrd_sock=$dir/containerd.sock
  # The CRI plugin is of no use here and needs CNI: leave it out.
  cat >"$dir/config.toml" <<CONF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctrd_sock"
[ttrpc]
  address = "$ctrd_sock.ttrpc"
[debug]
  address = "$dir/debug.sock"
CONF
  containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
  ctrd_pid=$!
  for i in $(seq 1 100); do
    [[ -S $ctrd_sock ]] && ctr --address "$ctrd_sock" version >/dev/null 2>&1 && return 0
    kill -0 "$ctrd_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "containerd did not start; its log:"
  tail -20 "$dir/containerd.log"
  return 1
}

# pids_with_arg STRING: the processes whose argv contains STRING (our socket path).
pids_with_arg() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' '\n' 2>/dev/null <"$p/cmdline" | grep -qxF -- "$1" && echo "${p#/proc/}"
  done
  return 0
}

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10).
stop_pid() {
  local pid=$1 limit=$(( ${2:-10} * 10 )) i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < limit; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  return 0
}

# The shims of a containerd (found by its socket in their argv) and their
# containers' processes (the shims' children) are killed by pid.
kill_shims() {
  local sock=$1 shim child
  for shim in $(pids_with_arg "$sock"); do
    [[ $shim == "${ctrd_pid:-}" ]] && continue
    for child in $(cat /proc/"$shim"/task/*/children 2>/dev/null); do kill -KILL "$child" 2>/dev/null; done
    kill -KILL "$shim" 2>/dev/null
  done
  return 0
}

# unmount_under DIR: every mount below DIR, deepest first.
unmount_under() {
  awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  return 0
}

# remove_cgroups NAME: the cgroup NAME (a path below each hierarchy's root) and
# everything below it, in every hierarchy, when empty.
remove_cgroups() {
  local name=$1 h
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [[ -d $h$name ]] || continue
    find "$h$name" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

# The cgroup file of process PID in the hierarchy of CONTROLLER (v1), else the
# v2 cgroup's V2FILE (default FILE); prints nothing when neither exists.
cgroup_file_of() {
  local pid=$1 controller=$2 file=$3 v2file=${4:-$3} ctrls path v2=
  while IFS=: read -r _ ctrls path; do
    if [[ -z $ctrls ]]; then v2=$path
    elif [[ ,$ctrls, == *",$controller,"* && -d /sys/fs/cgroup/$controller ]]; then
      cat "/sys/fs/cgroup/$controller$path/$file" 2>/dev/null
      return 0
    fi
  done <"/proc/$pid/cgroup"
  [[ -n $v2 ]] && cat "/sys/fs/cgroup$v2/$v2file" 2>/dev/null
  return 0
}

# summary: prints the totals; the suite's status.
summary() {
  echo "$passed passed, $failed failed, $skipped skipped"
  [[ $failed == 0 ]]
}
