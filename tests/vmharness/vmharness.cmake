# vessel_vmharness_test(): registers a ctest that runs one payload in the VM harness
# (tests/vmharness/README.md). Any folder's tests.cmake may use it after
#   include(${CMAKE_SOURCE_DIR}/tests/vmharness/vmharness.cmake)
# (tests.cmake files are included in path order, so don't rely on this folder's).
include_guard(GLOBAL)

option(VESSEL_VMHARNESS_REQUIRED
  "vmharness tests fail instead of skipping when QEMU or the kernel is missing (CI)" OFF)

set(VESSEL_VMHARNESS ${CMAKE_CURRENT_LIST_DIR}/harness.sh)

# vessel_vmharness_test(<name> <payload script or check dir> [harness.sh options...])
# registers ctest vmharness.<name> (label vmharness). harness.sh exits 77, which ctest
# reports as skipped, only when a prerequisite (qemu, the kernel, busybox-static, cpio)
# is missing; with -DVESSEL_VMHARNESS_REQUIRED=ON (or VESSEL_HARNESS_REQUIRE=1 in the
# environment) that fails too. The harness kills QEMU after 240 s, before ctest's own
# timeout, so a hung boot still reports its console.
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
