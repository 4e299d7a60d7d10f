#!/usr/bin/env bash
# Installs the Debian packages shimmy builds and tests with, when they are missing.
# As root it runs apt-get; otherwise it prints the command to run.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang clang-format libmicrohttpd-dev libjansson-dev libpcre2-dev
  libedit-dev libcurl4-openssl-dev libssl-dev)
if [[ "${1:-}" == "--test" ]]; then pkgs+=(nodejs npm curl python3 jq tmux systemd); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from outside Debian's archive (e.g. a preinstalled node); accept a working one.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]}")
fi
((${#missing[@]} == 0)) && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
