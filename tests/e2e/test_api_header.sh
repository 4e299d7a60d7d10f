#!/usr/bin/env bash
# include/shimmy.h as an outside program sees it: strict C11 (gcc and clang, -pedantic), C++17
# (g++ and clang++ when installed), and a C++ program linked against libshimmy.so that runs.
set -u
SRC=${SHIMMY_SRC:?SHIMMY_SRC not set}
BUILD=$(dirname "${SHIMMY_BIN:?SHIMMY_BIN not set}")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, status
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

cat > "$TMP/use.c" <<'C'
#include <shimmy.h>
#include <stdio.h>
int main(void) {
    shimmy_model_config cfg = SHIMMY_MODEL_CONFIG(
        .name = "prod", .base_path = "./models/prod.gguf", .lora_path = "./adapters/prod-lora.gguf",
        .template = "chatml", .ctx_len = 16384,
        .generation = {.max_tokens = 2048, .temperature = 0.7f, .top_p = 0.9f, .top_k = 40});
    shimmy_gen_options a = SHIMMY_GEN_OPTIONS(.temperature = 0.2f);
    shimmy_gen_options b = SHIMMY_GEN_OPTIONS_MAX(64);
    shimmy_gen_options c = SHIMMY_GEN_OPTIONS_MAX(64, .top_k = 4, .seed = SHIMMY_SEED_RANDOM);
    shimmy_error err;
    shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "x", "%d", 1);
    printf("%s %d %d %d %s\n", cfg.name, (int)a.max_tokens, (int)b.max_tokens, (int)c.top_k,
           err.message);
    return 0;
}
C
for cc in gcc clang; do
    command -v $cc > /dev/null || continue
    $cc -std=c11 -pedantic -Wall -Wextra -Wshadow -Werror -I"$SRC/include" -c "$TMP/use.c" \
        -o "$TMP/use-$cc.o"
    check "$cc -std=c11 -pedantic" $?
done

cat > "$TMP/use.cpp" <<'CPP'
#include <shimmy.h>
#include <cstdio>
#include <cstring>
int main() {
    shimmy_model_config cfg{};
    cfg.name = "prod";
    cfg.template_ = "chatml"; // `template` is a keyword in C++
    shimmy_gen_options o{};
    o.max_tokens = 16;
    shimmy_error err;
    if (shimmy_gen_options_check(&o, &err) != SHIMMY_OK) return 1;
    o.top_p = 2.0f;
    if (shimmy_gen_options_check(&o, &err) != SHIMMY_ERR_INVALID_ARG) return 2;
    if (std::strcmp(err.where, "top_p") != 0) return 3;
    if (std::strcmp(shimmy_status_name(SHIMMY_ERR_CONTEXT_EXCEEDED), "SHIMMY_ERR_CONTEXT_EXCEEDED"))
        return 4;
    shimmy_spec *spec = nullptr;
    if (shimmy_spec_from_config(&cfg, &spec, &err) == SHIMMY_OK || spec) return 5;
    std::printf("%s\n", err.where);
    return 0;
}
CPP
for cxx in g++ clang++; do
    command -v $cxx > /dev/null || continue
    $cxx -std=c++17 -Wall -Wextra -Werror -I"$SRC/include" "$TMP/use.cpp" -L"$BUILD" -lshimmy \
        -Wl,-rpath,"$BUILD" -o "$TMP/use-$cxx"
    check "$cxx -std=c++17" $?
    out=$("$TMP/use-$cxx")
    check "$cxx program runs against libshimmy.so (exit $?)" $?
    [ "$out" = "base_path" ]
    check "$cxx program: the config error names base_path (got '$out')" $?
done

echo "api header: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
