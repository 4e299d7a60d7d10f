#!/usr/bin/env bash
# Regenerates src/quant/ref/iq_grids.c: builds ggml (CPU, ggml-base only) from a llama.cpp
# checkout OUTSIDE this repository, links derive.c (our code; it calls ggml's public to_float)
# against it and writes the codebooks it learns. Usage:
#   tools/iq_grids/run.sh /path/to/llama.cpp-git-dir [work-dir]
# e.g. with the mirror of github ggerganov/llama.cpp at commit c392e50.
set -euo pipefail
repo=${1:?usage: run.sh LLAMA_CPP_GIT_DIR [WORK_DIR]}
work=${2:-/tmp/shimmy-iq-grids}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$work"
git -C "$repo" archive c392e50 ggml | tar -x -C "$work"
touch "$work/ggml/ggml.pc.in" # the archive of ggml/ alone lacks this template
cmake -S "$work/ggml" -B "$work/build" -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF \
    -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" -j2 --target ggml-base >/dev/null
cc -O1 -Wall -Wextra -I "$work/ggml/include" "$here/derive.c" "$work/build/src/libggml-base.a" \
    -lm -lpthread -lstdc++ -o "$work/derive"
"$work/derive" >"$work/iq_grids.c"
clang-format --assume-filename="$root/src/quant/ref/iq_grids.c" <"$work/iq_grids.c" \
    >"$root/src/quant/ref/iq_grids.c"
echo "wrote src/quant/ref/iq_grids.c"
