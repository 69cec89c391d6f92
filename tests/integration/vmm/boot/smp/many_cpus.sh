#!/bin/sh
# Optional, slow (not in ctest): Debian's kernel with CPUS vCPUs (default 64; Machine::kMaxCpus
# is 254) sees every one of them online. Under the harness's TCG L1 a 64-vCPU boot takes
# well over 5 minutes, so run it by hand with a long timeout:
#   tests/vmharness/harness.sh run --vessel build/vessel --payload tests/integration/vmm/boot/smp/many_cpus.sh \
#     --extra tests/integration/vmm/boot --env CPUS=64 --env BOOT_TIMEOUT=3000 --timeout 3600
export BOOT_TIMEOUT=${BOOT_TIMEOUT:-3000}
exec sh /extra/boot/boot_check.sh /guest/vmlinuz "${CPUS:-64}"
