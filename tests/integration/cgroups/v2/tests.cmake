# Cgroup behaviour of containers (OOM, pids, CPU quota, freezer, update, stats, devices)
# as a busybox-sh script, meant for the VM harness's pure cgroup v2 guest; on
# the build host it checks whatever layout the host has. Needs root and busybox
# (exit 77: skipped).
add_test(NAME cgroups.checks
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/cgroup_checks.sh $<TARGET_FILE:vessel>)
set_tests_properties(cgroups.checks PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 RUN_SERIAL TRUE)
