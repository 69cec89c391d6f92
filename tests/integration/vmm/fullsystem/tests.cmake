# vmharness.vmm_fullsystem: a Debian 12 system (mmdebstrap, cached) boots to
# multi-user.target under vessel (1 vCPU raw + poweroff, 2 vCPUs qcow2 + NIC + reboot)
# and under QEMU/KVM (the reference) in the VM harness; see payload.sh and README.md.
# Opt-in for now: its three nested systemd boots took 10-20 min on the shared 2-core
# host (plus ~5 min for the first image build), far over a CI suite's 3-5 min budget.
include(${CMAKE_SOURCE_DIR}/tests/vmharness/vmharness.cmake)  # VESSEL_VMHARNESS_REQUIRED
option(VESSEL_FULLSYSTEM_TEST "register ctest vmharness.vmm_fullsystem (10-20 min)" OFF)
if(VESSEL_FULLSYSTEM_TEST)
  add_test(NAME vmharness.vmm_fullsystem
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:vessel>)
  set_tests_properties(vmharness.vmm_fullsystem PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 1300 PROCESSORS 2 LABELS vmharness)
  if(VESSEL_VMHARNESS_REQUIRED)
    set_tests_properties(vmharness.vmm_fullsystem PROPERTIES ENVIRONMENT VESSEL_HARNESS_REQUIRE=1)
  endif()
endif()
