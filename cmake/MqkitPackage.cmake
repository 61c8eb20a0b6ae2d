# `cpack -G DEB` in the build directory: mqkit_VERSION_ARCH.deb with the CLI,
# the static libraries, headers, the CMake package, mqkit.pc, the systemd
# unit mqkit@.service, its user (created by postinst) and
# /etc/mqkit/example.yaml. tests/package/deb_test.sh installs it into a
# clean Debian 12 and checks all of that.
set(CPACK_PACKAGE_NAME mqkit)
set(CPACK_PACKAGE_VENDOR "mqkit")
set(CPACK_PACKAGE_CONTACT "mqkit maintainers <mqkit@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "brokerless messaging on ZeroMQ: reliable proxy, streams, CLI")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
  "mqkit is a C++20 toolkit for brokerless messaging on ZeroMQ: work queues, fan-out, "
  "an at-least-once proxy with spool files and dead letters, durable streams, bridges, "
  "YAML topologies and the mqkit command line tool.\n"
  "This package has the CLI, a systemd unit (mqkit@NAME runs /etc/mqkit/NAME.yaml), "
  "the static libraries, headers, the CMake package and mqkit.pc.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # mqkit_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/mqkit/mqkit")
# What the binary needs at run time (libzmq5, libyaml-cpp0.7, libisal2, ...),
# found by dpkg-shlibdeps; passwd for useradd in postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
# What building against it needs (find_package(mqkit) / pkg-config mqkit).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS
    "libzmq3-dev, cppzmq-dev, libyaml-cpp-dev, libisal-dev, pkg-config")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/postinst ${PROJECT_SOURCE_DIR}/packaging/prerm
    ${PROJECT_SOURCE_DIR}/packaging/postrm ${PROJECT_SOURCE_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# One package of every component: the default one and `config` (/etc/mqkit).
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_COMPONENTS_ALL Unspecified config)
set(CPACK_GENERATOR DEB)
include(CPack)
