#!/usr/bin/env bash
# `cmake --install` into a fresh prefix: the binary, libshimmy (shared and static), shimmy.h,
# shimmy.pc (a program builds against it), shimmy(1) listing every command --help lists, bash
# and zsh completions that complete commands, options and files, and the hardened systemd unit,
# which `systemd-analyze verify` accepts (and refuses once broken). Also: `make serve` builds the
# shimmy target only.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN must point to the shimmy binary}
SRC=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=$(cd "$(dirname "$BIN")" && pwd)
[ -f "$BUILD/cmake_install.cmake" ] || { echo "skip: $BUILD is not a CMake build folder"; exit 77; }
for f in shimmy.1 shimmy.bash _shimmy; do
    [ -f "$BUILD/$f" ] || { echo "skip: $BUILD/$f is not built (build all targets)"; exit 77; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/shimmy-install.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! "$@"; then echo "FAILED: $*"; fail=1; fi; }
P=$T/prefix

cmake --install "$BUILD" --prefix "$P" > "$T/install.log" 2>&1 || {
    echo "FAILED: cmake --install"; cat "$T/install.log"; exit 1; }
check test -x "$P/bin/shimmy"
check "$P/bin/shimmy" --version
check test -f "$P/include/shimmy.h"
LIB=$(dirname "$(find "$P" -name 'libshimmy.so.0' | head -n1)")
check test -f "$LIB/libshimmy.a"
check test -f "$LIB/pkgconfig/shimmy.pc"

# a program built from the installed header, library and pkg-config file alone
if command -v cc >/dev/null && command -v pkg-config >/dev/null; then
    cat > "$T/hello.c" <<'EOF'
#include <shimmy.h>
#include <stdio.h>
int main(void) { printf("%s\n", SHIMMY_VERSION); return 0; }
EOF
    # shellcheck disable=SC2046
    check cc -o "$T/hello" "$T/hello.c" $(PKG_CONFIG_PATH="$LIB/pkgconfig" pkg-config --cflags --libs shimmy)
    check test "$(LD_LIBRARY_PATH="$LIB" "$T/hello")" = "$("$P/bin/shimmy" --version | cut -d' ' -f2)"
fi

# shimmy(1): every command of `shimmy --help`, each with its usage (its options)
MAN=$P/share/man/man1/shimmy.1
check test -f "$MAN"
for c in $("$BIN" --help | awk '/^  [a-z]/{print $1}'); do
    check grep -q "^\.SS $c\$" "$MAN"
done
check grep -q '\\-\\-hide\\-thinking' "$MAN"   # from `shimmy run --help`
check grep -q 'HF_TOKEN' "$MAN"
if command -v groff >/dev/null; then
    groff -man -Tutf8 -ww "$MAN" > "$T/man.txt" 2> "$T/man.err"
    check test ! -s "$T/man.err"
    check grep -q 'shimmy pull ORG/REPO' "$T/man.txt"
fi

# bash completion: commands, then the options of the command, then files
BC=$P/share/bash-completion/completions/shimmy
check test -f "$BC"
complete_words() { # words... -> COMPREPLY, one per line
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _shimmy;
             printf "%s\n" "${COMPREPLY[@]}"' _ "$BC" "$@"
}
check test "$(complete_words shimmy pu)" = "pull"
check grep -qx -- '--temp' <(complete_words shimmy run --te)
check grep -qx -- '--revision' <(complete_words shimmy pull --re)
mkdir -p "$T/cwd" && touch "$T/cwd/notes-file.gguf"
check grep -q 'notes-file.gguf' <(cd "$T/cwd" && complete_words shimmy inspect notes)
# a MODEL argument completes to the names `shimmy list` gives (./models has the demo model)
if [ -f "$SRC/models/docs-llama-30m-Q4_K_M.gguf" ]; then
    check grep -qx 'docs-llama-30m-q4_k_m' \
        <(cd "$SRC" && PATH="$P/bin:$PATH" complete_words shimmy run docs)
fi
check test -f "$P/share/zsh/site-functions/_shimmy"
check grep -qF "'template:render a chat with a model'\\''s template'" \
    "$P/share/zsh/site-functions/_shimmy"
if command -v zsh >/dev/null; then check zsh -n "$P/share/zsh/site-functions/_shimmy"; fi

# the systemd unit: hardened, pointing at the installed binary, accepted by systemd-analyze
U=$P/lib/systemd/system/shimmy.service
check test -f "$U"
for key in DynamicUser=yes ProtectSystem=strict ProtectHome=read-only ReadOnlyPaths= \
           Restart=on-failure NoNewPrivileges=yes "ExecStart=$P/bin/shimmy serve"; do
    check grep -q "^$key" "$U"
done
if command -v systemd-analyze >/dev/null && systemd-analyze --version >/dev/null 2>&1; then
    check systemd-analyze verify --man=no "$U"
    sed "s|^ExecStart=$P/bin/shimmy|ExecStart=$T/missing/shimmy|" "$U" > "$T/broken.service"
    systemd-analyze verify --man=no "$T/broken.service" > /dev/null 2>&1
    check test $? -ne 0
else
    echo "note: systemd-analyze is not available; the unit was checked by its keys only"
fi

# `make serve` builds the binary's target only (not the tests or sanitizer copies)
check grep -q -- '--target shimmy' <(make -n -C "$SRC" serve BUILD="$T/b" 2>/dev/null)

exit $fail
