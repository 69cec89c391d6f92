# podman drives vessel: run/exec/stop/rm of a busybox image with `podman --runtime vessel`.
# Needs root, podman and busybox-static; the script exits 77 (skipped) without them.
add_test(NAME podman.lifecycle
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/podman/podman_test.sh $<TARGET_FILE:vessel>)
set_tests_properties(podman.lifecycle PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 RUN_SERIAL TRUE)
