#!/bin/sh
# deps.sh: installs what the VM harness needs on a Debian 12 host (harness.sh itself
# installs nothing). Run as root. Ubuntu: linux-image-virtual instead of the cloud kernel,
# and pass --kernel/--modules to harness.sh.
set -eu
apt-get install -y --no-install-recommends qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio
