# containerd drives vessel: `ctr run --runc-binary vessel` through containerd's runc shim
# (run, tty, exit status, loopback up, host network, cgroup limits, task exec, ps, pause,
# resume, metrics, kill, kill after exit). The same script runs with runc (containerd.runc)
# so that the checks test behaviour, not vessel's quirks.
# Needs root, containerd and busybox-static; exits 77 (skipped) without them.
add_test(NAME containerd.vessel
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/containerd/containerd_test.sh $<TARGET_FILE:vessel>)
set_tests_properties(containerd.vessel PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 RUN_SERIAL TRUE)
find_program(VESSEL_RUNC runc PATHS /usr/sbin /usr/bin)
if(VESSEL_RUNC)
  add_test(NAME containerd.runc
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/containerd/containerd_test.sh ${VESSEL_RUNC})
  set_tests_properties(containerd.runc PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 RUN_SERIAL TRUE)
endif()
