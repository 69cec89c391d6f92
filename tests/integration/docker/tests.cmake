# Docker drives vessel: a dockerd and containerd of the test's own run a busybox image
# with vessel as a runtime (run, exec, tty, logs, update, pause, stats, top, exit codes,
# capabilities, users, networks, restart policy, 20 parallel runs). The same script runs
# with runc (docker.runc) so that the checks test behaviour, not vessel's quirks.
# Needs root, docker.io, containerd and busybox-static; exits 77 (skipped) without them.
add_test(NAME docker.vessel
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/docker/docker_test.sh $<TARGET_FILE:vessel>)
set_tests_properties(docker.vessel PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900 RUN_SERIAL TRUE)
find_program(VESSEL_RUNC runc PATHS /usr/sbin /usr/bin)
if(VESSEL_RUNC)
  add_test(NAME docker.runc
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/docker/docker_test.sh ${VESSEL_RUNC})
  set_tests_properties(docker.runc PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900 RUN_SERIAL TRUE)
endif()
