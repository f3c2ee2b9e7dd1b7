# Install-time part of `cmake --install`: what depends on the prefix chosen then
# (`--prefix P`, CMAKE_INSTALL_PREFIX here) rather than at configure time.
#   - The configuration folder: /etc/compd when P is /usr (the FHS place for a system
#     package), else P/etc/compd, so a test install into a temporary prefix stays inside it.
#   - compd.conf is installed only if there is none yet: an operator's edits survive a
#     reinstall. The example is always in DOCDIR/compd.conf.example.
#   - compd-milter.service names the installed binary and config by absolute path.
# Inputs (set by CMakeLists.txt): COMPD_DIST_DIR, COMPD_PACKAGING_DIR, COMPD_SBINDIR,
# COMPD_DOCDIR.
# file(INSTALL) prepends DESTDIR itself; explicit existence checks must add it.

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_compd_sysconfdir "/etc")
else()
  set(_compd_sysconfdir "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(_compd_confdir "${_compd_sysconfdir}/compd")

if(EXISTS "$ENV{DESTDIR}${_compd_confdir}/compd.conf")
  message(STATUS "Keeping: $ENV{DESTDIR}${_compd_confdir}/compd.conf (the example is in "
                 "${COMPD_DOCDIR}/compd.conf.example)")
else()
  file(INSTALL DESTINATION "${_compd_confdir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE
       GROUP_READ WORLD_READ FILES "${COMPD_DIST_DIR}/compd.conf")
endif()

set(SBINDIR "${CMAKE_INSTALL_PREFIX}/${COMPD_SBINDIR}")
set(SYSCONFDIR "${_compd_sysconfdir}")
configure_file("${COMPD_PACKAGING_DIR}/compd-milter.service.in"
               "${COMPD_DIST_DIR}/compd-milter.service" @ONLY)
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     FILES "${COMPD_DIST_DIR}/compd-milter.service")
