# Cross build for ARM64 Linux with Debian's cross compiler (gcc-aarch64-linux-gnu) and the arm64
# multiarch -dev packages (libjansson-dev:arm64, libpcre2-dev:arm64), as scripts/deps.sh --test
# installs them. Used with -DSHIMMY_LIB_ONLY=ON (the server's and the CLI's libraries have no arm64
# packages here) by tests/e2e/test_arm64_qemu.sh, which runs the result under qemu-aarch64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
# The loader and libc of the cross sysroot together: with -L alone its loader would take the
# arm64 libc of the multiarch packages (another glibc build, which the -dev packages pull in) from
# /lib/aarch64-linux-gnu, and the first pthread_create then never returns.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu -E
  LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib)

# Only the arm64 .pc files: the host's would hand the x86-64 libraries to the linker.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
