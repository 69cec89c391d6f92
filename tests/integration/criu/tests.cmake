# vmharness.criu: `vessel checkpoint` / `vessel restore` through CRIU, directly and through
# containerd's runc shim, in the VM harness's L1 (CRIU 3.17 cannot run on the development
# host's kernel; see run_harness.sh). Skipped (77) only without criu, QEMU or the kernel.
include(${CMAKE_SOURCE_DIR}/tests/vmharness/vmharness.cmake)
add_test(NAME vmharness.criu
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_harness.sh $<TARGET_FILE:vessel>)
set_tests_properties(vmharness.criu PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 300 PROCESSORS 2 LABELS vmharness)
if(VESSEL_VMHARNESS_REQUIRED)
  set_tests_properties(vmharness.criu PROPERTIES ENVIRONMENT VESSEL_HARNESS_REQUIRE=1)
endif()
