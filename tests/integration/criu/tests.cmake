# Checkpoint/restore through CRIU.
# criu.host: on this host's own kernel. Where CRIU cannot run (CRIU 3.17 on a 6.18 kernel:
#   "vdso: Unexpected rt vDSO area bounds"), it checks that both verbs say so with one
#   error and leave nothing, then skips (77) naming the cause. Needs root and busybox-static.
add_test(NAME criu.host COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/host_test.sh $<TARGET_FILE:vessel>)
set_tests_properties(criu.host PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)

# vmharness.criu: the real thing in the VM harness's L1 (Debian's 6.1 kernel, cgroup v2):
#   a counter container checkpointed, killed and restored (same ID, new ID), --leave-running,
#   --pre-dump/--parent-path, bad input, containerd's shim and podman
#   (`podman container checkpoint/restore`). One boot; see run_harness.sh.
include(${CMAKE_SOURCE_DIR}/tests/vmharness/vmharness.cmake)
add_test(NAME vmharness.criu
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/run_harness.sh $<TARGET_FILE:vessel> --timeout 600)
set_tests_properties(vmharness.criu PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 700 PROCESSORS 2 LABELS vmharness)
if(VESSEL_VMHARNESS_REQUIRED)
  set_tests_properties(vmharness.criu PROPERTIES ENVIRONMENT VESSEL_HARNESS_REQUIRE=1)
endif()
