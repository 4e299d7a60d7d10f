#!/usr/bin/env bash
# The ARM64 build, run under qemu-user: the library cross-compiled with Debian's aarch64 compiler
# (cmake/aarch64-linux-gnu.cmake, -DSHIMMY_LIB_ONLY=ON) and the unit tests that hold its kernels
# to their references: every tests/quant test (the NEON kernels against the scalar references and
# the x86 engine's float order), every tests/tokenizer test, the element-wise ops (and RoPE's
# scalar paths), and the forward pass against llama.cpp's logits for the models whose weight
# types the NEON kernels reproduce the reference order of (F32, Q8_0, Q4_0). The cross tree lives
# in arm64/ beside the shimmy binary (the CTest build directory). Skips only when the cross
# packages are absent (scripts/deps.sh --test installs them).
set -euo pipefail

skip() {
    echo "SKIP: $*"
    exit 77
}

src=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v aarch64-linux-gnu-gcc >/dev/null || skip "no aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu)"
command -v qemu-aarch64 >/dev/null || skip "no qemu-aarch64 (qemu-user)"
[[ -f /usr/aarch64-linux-gnu/lib/libc.so.6 ]] || skip "no arm64 libc (libc6-dev-arm64-cross)"
for pc in jansson libpcre2-8; do
    [[ -f /usr/lib/aarch64-linux-gnu/pkgconfig/$pc.pc ]] ||
        skip "no arm64 $pc (libjansson-dev:arm64, libpcre2-dev:arm64)"
done

build=${SHIMMY_BIN:+$(dirname "$SHIMMY_BIN")}
build=${build:-$PWD}/arm64
jobs=${SHIMMY_ARM64_JOBS:-2}
start=$SECONDS

# the targets: tests/quant/test_x.c is quant_test_x, and so on
targets=(model_test_reference model_test_ops model_test_ops_simd)
for f in "$src"/tests/quant/test_*.c "$src"/tests/tokenizer/test_*.c; do
    t=${f#"$src"/tests/}
    targets+=("${t%%/*}_$(basename "$f" .c)")
done

cmake -S "$src" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/aarch64-linux-gnu.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DSHIMMY_LIB_ONLY=ON \
    -DSHIMMY_TESTDATA="${SHIMMY_TESTDATA:-$src/../shared/testdata}" >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$build.build.log" 2>&1 ||
    { tail -n 60 "$build.build.log"; exit 1; }
file "$build/quant_test_dot" | grep -q 'ARM aarch64' || { echo "not an ARM64 build"; exit 1; }
built=$SECONDS

# CTest runs each test through the toolchain's emulator (qemu-aarch64 with the cross sysroot).
export SHIMMY_REF_MODELS=tiny-llama-spm-F32,tiny-llama-spm-Q8_0,tiny-llama-spm-Q4_0
tests='^unit/(quant|tokenizer)/|^unit/model/test_(reference|ops|ops_simd)$'
ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout 300 -R "$tests"
n=$(ctest --test-dir "$build" -N -R "$tests" | grep -c 'Test *#')
((n == ${#targets[@]})) || { echo "ran $n tests, built ${#targets[@]}"; exit 1; }
echo "arm64: $n test programs under qemu-aarch64; build $((built - start)) s, run $((SECONDS - built)) s"
