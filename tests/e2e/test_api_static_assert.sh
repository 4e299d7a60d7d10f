#!/usr/bin/env bash
# SHIMMY_GEN_OPTIONS_MAX checks its constant max_tokens at compile time: a valid N compiles
# (the control), N above SHIMMY_MAX_TOKENS_LIMIT or below 1 must not, and for that reason.
set -u
SRC=${SHIMMY_SRC:?SHIMMY_SRC not set}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, status
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
compile() { # N
    printf '#include <shimmy.h>\nint main(void) {\n    shimmy_gen_options o = SHIMMY_GEN_OPTIONS_MAX(%s, .temperature = 0.5f);\n    return o.max_tokens > 0 ? 0 : 1;\n}\n' "$1" > "$TMP/t.c"
    gcc -std=c11 -pedantic -Wall -Wextra -Werror -I"$SRC/include" -c "$TMP/t.c" -o "$TMP/t.o" \
        2> "$TMP/err"
}

compile 2048
check "a constant within the limit compiles" $?
compile SHIMMY_MAX_TOKENS_LIMIT
check "the limit itself compiles" $?
for n in "SHIMMY_MAX_TOKENS_LIMIT + 1" 4000000 0 -5; do
    compile "$n"
    [ $? -ne 0 ]
    check "max_tokens $n must not compile" $?
    grep -q "max_tokens must be in" "$TMP/err"
    check "max_tokens $n fails on the static assertion" $?
done

echo "api static assert: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
