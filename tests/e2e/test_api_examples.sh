#!/usr/bin/env bash
# The examples run on a tiny model, report errors a user can act on, and the installed library
# (cmake --install: lib, header, shimmy.pc) builds and runs a program through pkg-config.
set -u
SRC=${SHIMMY_SRC:?SHIMMY_SRC not set}
BUILD=$(dirname "${SHIMMY_BIN:?SHIMMY_BIN not set}")
DATA=${SHIMMY_TESTDATA:-$SRC/../shared/testdata}
A=$DATA/models/tiny-llama-spm-F32.gguf
B=$DATA/models/tiny-qwen2-Q4_0.gguf
[ -f "$A" ] && [ -f "$B" ] || { echo "SKIP: tiny models absent"; exit 77; }
[ -x "$BUILD/example_stream" ] && [ -x "$BUILD/example_two_models" ] ||
    { echo "FAIL: examples not built in $BUILD"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, status
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

"$BUILD/example_stream" "$A" "Hello" > "$TMP/out" 2> "$TMP/err"
check "example_stream exits 0" $?
grep -qE '^\[length, [0-9]+ prompt \+ 32 generated tokens\]$' "$TMP/out"
check "example_stream reports 32 generated tokens" $?

"$BUILD/example_stream" "$TMP/missing.gguf" > "$TMP/out" 2> "$TMP/err"
[ $? -eq 1 ]
check "example_stream fails on a missing model" $?
grep -q "missing.gguf" "$TMP/err" && grep -q "(base_path)" "$TMP/err"
check "the error names the file and the field" $?

"$BUILD/example_two_models" "$A" "$B" > "$TMP/out" 2> "$TMP/err"
check "example_two_models exits 0" $?
[ "$(grep -cE '^(a|b): .+' "$TMP/out")" -eq 2 ]
check "example_two_models prints both models' text" $?

if command -v pkg-config > /dev/null; then
    cmake --install "$BUILD" --prefix "$TMP/prefix" > "$TMP/install.log" 2>&1
    check "cmake --install" $?
    PC=$(find "$TMP/prefix" -name shimmy.pc | head -1)
    [ -n "$PC" ] && [ -f "$TMP/prefix/include/shimmy.h" ]
    check "installed shimmy.pc and shimmy.h" $?
    export PKG_CONFIG_PATH=$(dirname "$PC")
    gcc -std=c11 -Wall -Werror "$SRC/examples/stream.c" $(pkg-config --cflags --libs shimmy) \
        -Wl,-rpath,"$(pkg-config --variable=libdir shimmy)" -o "$TMP/stream"
    check "stream.c builds with pkg-config against the installed library" $?
    "$TMP/stream" "$A" > "$TMP/out" 2>&1
    check "the installed build runs" $?
else
    echo "note: pkg-config absent, install check skipped"
fi

echo "api examples: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
