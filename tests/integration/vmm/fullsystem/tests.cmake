# vmharness.vmm_fullsystem: a Debian 12 system (mmdebstrap, cached) boots to
# multi-user.target under vessel (1 vCPU raw + poweroff, 2 vCPUs qcow2 + NIC + reboot)
# and under QEMU/KVM (the reference) in the VM harness, the three side by side; see
# payload.sh and README.md. Exit 77 (skipped) when Debian's mirror cannot be reached for
# the image; with VESSEL_VMHARNESS_REQUIRED any other missing prerequisite fails.
# TIMEOUT: the image build (about 2 min on an idle host, 6 on a loaded one; cached after)
# plus the harness's own limit (run.sh: --timeout 900), plus room for its report.
include(${CMAKE_SOURCE_DIR}/tests/vmharness/vmharness.cmake)  # VESSEL_VMHARNESS_REQUIRED
add_test(NAME vmharness.vmm_fullsystem
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:vessel>)
set_tests_properties(vmharness.vmm_fullsystem PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 1300 PROCESSORS 2 LABELS vmharness)
if(VESSEL_VMHARNESS_REQUIRED)
  set_tests_properties(vmharness.vmm_fullsystem PROPERTIES ENVIRONMENT VESSEL_HARNESS_REQUIRE=1)
endif()
