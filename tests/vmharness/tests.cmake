# VM harness suites (tests/vmharness/README.md): each test boots the Debian cloud kernel
# under QEMU TCG as a test host (L1) with nested-SVM KVM and a pure cgroup v2 hierarchy
# and runs one payload there. harness.sh exits 77 (skipped) only when a prerequisite
# (qemu, the kernel, busybox-static, cpio) is missing; with VESSEL_HARNESS_REQUIRE=1 in
# the environment, or -DVESSEL_VMHARNESS_REQUIRED=ON (CI), that is a failure too.
option(VESSEL_VMHARNESS_REQUIRED "vmharness tests fail instead of skipping when QEMU or the kernel is missing" OFF)

# Static KVM smoke test, run inside L1 (the initramfs has no C library of its own).
add_executable(vessel_kvmcheck ${CMAKE_CURRENT_LIST_DIR}/kvmcheck.cc)
target_link_options(vessel_kvmcheck PRIVATE -static)
set_target_properties(vessel_kvmcheck PROPERTIES OUTPUT_NAME vessel-kvmcheck)

set(VESSEL_VMHARNESS ${CMAKE_CURRENT_LIST_DIR}/harness.sh)

# vessel_vmharness_test(<name> <payload script or check dir> [harness options...])
# registers ctest vmharness.<name>. The harness kills QEMU after 240 s, before ctest's
# own timeout, so a hung boot still reports its console.
function(vessel_vmharness_test name payload)
  add_test(NAME vmharness.${name}
    COMMAND ${VESSEL_VMHARNESS} run --vessel $<TARGET_FILE:vessel> --payload ${payload}
            --timeout 240 ${ARGN})
  set_tests_properties(vmharness.${name} PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 300 PROCESSORS 2 LABELS vmharness)
  if(VESSEL_VMHARNESS_REQUIRED)
    set_tests_properties(vmharness.${name} PROPERTIES ENVIRONMENT VESSEL_HARNESS_REQUIRE=1)
  endif()
endfunction()

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
