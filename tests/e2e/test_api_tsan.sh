#!/usr/bin/env bash
# ThreadSanitizer run of the library's threaded tests (pull streams with their generator
# threads and cancellation, concurrent generations on one model, the manager's cache and weak
# references, sessions on a shared thread pool with cancellation from another thread, the
# catalog's on-demand loads), and of lora's products on a thread pool (a thread adds the terms
# only to the output rows it computed itself). The modules that own threads, locks or
# cross-thread hand-overs (api, core, engine, manager, registry, lora) are instrumented; the rest
# comes from the build's libshimmy.a (so the quant kernels' own reads and writes are not seen).
# Skips (77) without TSan.
set -u
SRC=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
LIB=$(dirname "${SHIMMY_BIN:?SHIMMY_BIN not set}")/libshimmy.a
[ -f "$LIB" ] || { echo "FAIL: $LIB not built"; exit 1; }
CC=${CC:-cc}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/shimmy-api-tsan.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

echo 'int main(void){return 0;}' > "$OUT/probe.c"
if ! "$CC" -fsanitize=thread "$OUT/probe.c" -o "$OUT/probe" 2>/dev/null || ! "$OUT/probe"; then
    echo "tsan: $CC cannot build ThreadSanitizer programs here; skipping"
    exit 77
fi

instrumented=("$SRC"/src/api/*.c "$SRC"/src/core/*.c "$SRC"/src/engine/*.c
              "$SRC"/src/manager/*.c "$SRC"/src/registry/*.c "$SRC"/src/lora/*.c
              "$SRC"/src/grammar/*.c "$SRC"/src/sampling/*.c
              "$SRC"/tests/support/*.c)
fail=0
for path in api/generate api/manager api/session api/catalog lora/apply; do
    t=${path#*/}
    if ! "$CC" -std=c11 -D_GNU_SOURCE -DSHIMMY_TEST_TSAN=1 -O1 -g -fsanitize=thread \
            -I"$SRC/include" -I"$SRC/src" -I"$SRC/tests/support" \
            $(pkg-config --cflags jansson libpcre2-8) "$SRC/tests/${path%/*}/test_$t.c" \
            "${instrumented[@]}" "$LIB" -o "$OUT/test_$t" \
            $(pkg-config --libs jansson libpcre2-8) -lpthread -lm; then
        echo "tsan: build of test_$t failed" >&2
        exit 1
    fi
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" "$OUT/test_$t"
    rc=$?
    if [ "$rc" -eq 77 ]; then
        echo "tsan: test_$t skipped (its test data is absent)"
    elif [ "$rc" -ne 0 ]; then
        fail=1
    fi
done
[ "$fail" -eq 0 ]
