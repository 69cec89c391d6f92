# The Debian package: `cpack -G DEB` of this build, installed into a fresh Debian
# root made by mmdebstrap (cached as a tarball in /var/tmp/vessel-pkgtest-cache after the first
# run), where vessel --version, vessel spec, man vessel, bash completion and a
# container must work, and dpkg -r / --purge must leave nothing behind.
# Needs root, mmdebstrap, the Debian mirror of /etc/apt/sources.list.d (or the
# cached tarball) and busybox-static; the script exits 77 (skipped) without them.
add_test(NAME package.deb
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/package/package_test.sh ${CMAKE_BINARY_DIR})
set_tests_properties(package.deb PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900 RUN_SERIAL TRUE)

# The man pages, completions and --help examples generated from the command line
# agree with --help; misspelt verbs get "did you mean". A second or so.
add_test(NAME cli.doc
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/package/cli_doc_test.sh $<TARGET_FILE:vessel>
                 ${CMAKE_BINARY_DIR}/doc)
