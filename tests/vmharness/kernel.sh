# Sourced (sh or bash) by the harness and the tests' prepare scripts: which of Debian's
# cloud kernels they boot and whose modules they copy. Debian's mirror moves on
# (6.1.0-56 became 6.1.0-57), so no version is written down anywhere: it is
#   $VESSEL_HARNESS_KERNEL when set, else the newest /boot/vmlinuz-*-cloud-amd64
#   that has its /lib/modules/<version> (scripts/deps.sh installs linux-image-cloud-amd64).
# Sets VESSEL_HARNESS_KERNEL (a path that may not exist: the caller says so), HARNESS_KVER
# (e.g. 6.1.0-57-cloud-amd64) and HARNESS_GENERIC_KVER (the generic kernel of the same
# release, e.g. 6.1.0-57-amd64).
if [ -z "${VESSEL_HARNESS_KERNEL:-}" ]; then
  for _k in $(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V); do
    [ -d "/lib/modules/${_k##*/vmlinuz-}" ] && VESSEL_HARNESS_KERNEL=$_k
  done
  : "${VESSEL_HARNESS_KERNEL:=/boot/vmlinuz-NONE-cloud-amd64}"  # none installed: callers skip, naming it
  unset _k
fi
HARNESS_KVER=${VESSEL_HARNESS_KERNEL##*/vmlinuz-}
HARNESS_GENERIC_KVER=${HARNESS_KVER%-cloud-amd64}-amd64
