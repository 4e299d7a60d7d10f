#!/usr/bin/env bash
# Builds the manager test and the sources it needs with ThreadSanitizer and runs it.
# Exit 77 (skip) when the compiler cannot build or run TSan programs.
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

# The manager needs only core, gguf, chat (template families) and registry below it (the engine loader is left out: the
# test plugs in its own loader).
sources=("$SRC"/tests/manager/test_manager.c "$SRC"/tests/support/test.c
         "$SRC"/src/manager/manager.c "$SRC"/src/registry/*.c "$SRC"/src/chat/*.c "$SRC"/src/gguf/*.c "$SRC"/src/core/*.c)
if ! "$CC" -std=c11 -D_GNU_SOURCE -DSHIMMY_TEST_TSAN=1 -O1 -g -fsanitize=thread \
        -I"$SRC/include" -I"$SRC/src" -I"$SRC/tests/support" $(pkg-config --cflags jansson) \
        "${sources[@]}" -o "$OUT/test_manager_tsan" $(pkg-config --libs jansson) -lpthread -lm; then
    echo "tsan: build failed" >&2
    exit 1
fi
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" "$OUT/test_manager_tsan"
