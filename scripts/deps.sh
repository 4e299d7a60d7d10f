#!/usr/bin/env bash
# Installs the Debian packages shimmy builds and tests with, when they are missing.
# As root it runs apt-get; otherwise it prints the command to run.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang clang-format libmicrohttpd-dev libjansson-dev libpcre2-dev
  libedit-dev libcurl4-openssl-dev libssl-dev libvulkan-dev glslc)
cross=()
if [[ "${1:-}" == "--test" ]]; then
  # mesa-vulkan-drivers: lavapipe, the software Vulkan device the GPU backend's tests run on
  pkgs+=(nodejs npm curl python3 jq tmux systemd mesa-vulkan-drivers)
  # The ARM64 test (tests/e2e/test_arm64_qemu.sh): Debian's cross compiler, qemu-user and the
  # arm64 builds of the two libraries the library links (the arm64 architecture is added for
  # them). The test skips where these cannot be installed, so they never fail the others.
  cross=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libjansson-dev:arm64
    libpcre2-dev:arm64)
fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
missing_cross=()
for p in "${cross[@]}"; do installed "$p" || missing_cross+=("$p"); done
# nodejs/npm may come from outside Debian's archive (e.g. a preinstalled node); accept a working one.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]}")
fi
((${#missing[@]} + ${#missing_cross[@]} == 0)) && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  added=0
  if ((${#missing_cross[@]})) && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64 && added=1
  fi
  if ! apt-get update -qq; then
    ((added)) || exit 1
    # a mirror without arm64 lists: take the architecture back, the ARM64 test skips
    echo "deps: no arm64 package lists here; test_arm64_qemu will skip" >&2
    dpkg --remove-architecture arm64
    missing_cross=()
    apt-get update -qq
  fi
  if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  if ((${#missing_cross[@]})); then
    echo "deps: installing ${missing_cross[*]} (the ARM64 test)"
    apt-get install -y -qq --no-install-recommends "${missing_cross[@]}" ||
      echo "deps: the ARM64 cross packages did not install; test_arm64_qemu will skip" >&2
  fi
else
  if ((${#missing_cross[@]})); then
    echo "deps: for the ARM64 test (it skips without them): sudo dpkg --add-architecture arm64 &&" \
      "sudo apt-get update && sudo apt-get install ${missing_cross[*]}" >&2
  fi
  ((${#missing[@]} == 0)) && exit 0
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
