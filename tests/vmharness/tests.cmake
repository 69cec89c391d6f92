# VM harness suites (tests/vmharness/README.md): each test boots the Debian cloud kernel
# under QEMU TCG as a test host (L1) with nested-SVM KVM and a pure cgroup v2 hierarchy
# and runs one payload there.
include(${CMAKE_CURRENT_LIST_DIR}/vmharness.cmake)

# Static KVM smoke test, run inside L1 (the initramfs has no C library of its own).
add_executable(vessel_kvmcheck ${CMAKE_CURRENT_LIST_DIR}/kvmcheck.cc)
target_link_options(vessel_kvmcheck PRIVATE -static)
set_target_properties(vessel_kvmcheck PROPERTIES OUTPUT_NAME vessel-kvmcheck)

vessel_vmharness_test(kvm_nested ${CMAKE_CURRENT_LIST_DIR}/payloads/kvm_nested.sh
  --bin $<TARGET_FILE:vessel_kvmcheck>)
vessel_vmharness_test(cgroup2_host ${CMAKE_CURRENT_LIST_DIR}/checks/cgroup2_host)

# A reference L2 boot with the host's QEMU run inside L1 under KVM (no vessel code
# involved): proves that nested SVM boots Linux and gives `vessel vm run` a baseline.
find_program(VESSEL_QEMU_SYSTEM qemu-system-x86_64)
if(NOT VESSEL_QEMU_SYSTEM)
  set(VESSEL_QEMU_SYSTEM /usr/bin/qemu-system-x86_64)  # absent: harness.sh skips the test
endif()
vessel_vmharness_test(l2_qemu_reference ${CMAKE_CURRENT_LIST_DIR}/payloads/l2_qemu_reference.sh
  --bin ${VESSEL_QEMU_SYSTEM}
  --file /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/bios-microvm.bin)

# The guest sees the same CPU (flags, model name) under vessel as under that QEMU.
vessel_vmharness_test(cpu_fidelity ${CMAKE_CURRENT_LIST_DIR}/payloads/cpu_fidelity.sh
  --bin ${VESSEL_QEMU_SYSTEM}
  --file /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/bios-microvm.bin)

# The harness's own contract: exit codes, summaries, timeouts, panics, skips, cleanup.
add_test(NAME vmharness.selftest COMMAND ${CMAKE_CURRENT_LIST_DIR}/selftest.sh $<TARGET_FILE:vessel>)
set_tests_properties(vmharness.selftest PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 600 PROCESSORS 2 LABELS vmharness)
if(VESSEL_VMHARNESS_REQUIRED)
  set_tests_properties(vmharness.selftest PROPERTIES ENVIRONMENT VESSEL_HARNESS_REQUIRE=1)
endif()

# The cgroup checks of the container runtime (OOM, pids, CPU quota, pause, update, events)
# on this pure cgroup v2 host.
vessel_vmharness_test(cgroup_checks ${CMAKE_SOURCE_DIR}/tests/integration/cgroups/v2)
