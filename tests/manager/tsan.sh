#!/usr/bin/env bash
# Builds the manager test with ThreadSanitizer and runs it.
# Exit 77 (skip) when the compiler cannot build or run TSan programs.
#
# The code that has threads or hands data between them (core's pool and locks, the registry's
# parallel scan, the manager) is compiled with -fsanitize=thread. The pure per-call modules below
# (gguf, chat's template classifier) come from the build's libshimmy.a when CTest gives us the
# build (SHIMMY_BIN's folder), which keeps this run short; otherwise they are compiled too.
set -u
SRC=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
CC=${CC:-cc}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/shimmy-tsan.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

probe="$OUT/probe.c"
echo 'int main(void){return 0;}' > "$probe"
if ! "$CC" -fsanitize=thread "$probe" -o "$OUT/probe" 2>/dev/null || ! "$OUT/probe"; then
    echo "tsan: $CC cannot build ThreadSanitizer programs here; skipping"
    exit 77
fi

sources=("$SRC"/tests/manager/test_manager.c "$SRC"/tests/support/test.c
         "$SRC"/src/manager/manager.c "$SRC"/src/registry/*.c "$SRC"/src/core/*.c)
lib=""
if [ -n "${SHIMMY_BIN:-}" ] && [ -f "$(dirname "$SHIMMY_BIN")/libshimmy.a" ]; then
    lib="$(dirname "$SHIMMY_BIN")/libshimmy.a"
else
    sources+=("$SRC"/src/gguf/*.c "$SRC"/src/chat/*.c)
fi
if ! "$CC" -std=c11 -D_GNU_SOURCE -DSHIMMY_TEST_TSAN=1 -O1 -g -fsanitize=thread \
        -I"$SRC/include" -I"$SRC/src" -I"$SRC/tests/support" \
        $(pkg-config --cflags jansson libpcre2-8) "${sources[@]}" $lib \
        -o "$OUT/test_manager_tsan" $(pkg-config --libs jansson libpcre2-8) -lpthread -lm; then
    echo "tsan: build failed" >&2
    exit 1
fi
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" "$OUT/test_manager_tsan"
