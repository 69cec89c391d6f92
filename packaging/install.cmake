# `cmake --install` and `cpack -G DEB`: the binary, man pages and shell completions
# generated from the command line definitions (so they never drift from --help),
# and the runtime configuration examples for podman, containerd and Docker.
include(GNUInstallDirs)

# Right after linking vessel: man pages and completions into build/doc.
set(VESSEL_DOC_DIR ${CMAKE_BINARY_DIR}/doc)
add_custom_command(TARGET vessel POST_BUILD
  COMMAND ${CMAKE_SOURCE_DIR}/packaging/gen-docs.sh $<TARGET_FILE:vessel> ${VESSEL_DOC_DIR}
  COMMENT "man pages and completions from vessel's command line"
  VERBATIM)

install(TARGETS vessel RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${VESSEL_DOC_DIR}/man8/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
# bash-completion finds it on first use of `vessel <TAB>`, for /usr and /usr/local.
install(FILES ${VESSEL_DOC_DIR}/vessel.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME vessel)
# zsh: Debian's $fpath has /usr/share/zsh/vendor-completions for packages and
# /usr/local/share/zsh/site-functions for the rest; the prefix is known at install time only (cpack installs to /usr).
install(CODE [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(_vessel_zsh_dir "${CMAKE_INSTALL_PREFIX}/share/zsh/vendor-completions")
  else()
    set(_vessel_zsh_dir "${CMAKE_INSTALL_PREFIX}/share/zsh/site-functions")
  endif()
]])
install(CODE "file(INSTALL DESTINATION \"\${_vessel_zsh_dir}\" TYPE FILE FILES \"${VESSEL_DOC_DIR}/_vessel\")")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/packaging/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# cpack -G DEB (from a build directory): build/vessel_<version>_amd64.deb.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vessel)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "vessel developers <vessel@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OCI container runtime (runc's command line) and KVM virtual machine monitor")
set(CPACK_PACKAGE_DESCRIPTION "vessel runs OCI containers with runc's command line, so podman, containerd and \
Docker can use it as their runtime; keeps an image store and builds images from Dockerfiles; and boots \
Linux kernels in KVM virtual machines with virtio devices (vessel vm run).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Depends from the ELF's NEEDED entries (dpkg-shlibdeps): libc6, libstdc++6, libgcc-s1, libseccomp2.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The image verbs dlopen libarchive and libcrypto (src/image/libs.h): not needed for containers and VMs.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libarchive13, libssl3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "podman, containerd, busybox-static")
include(CPack)
