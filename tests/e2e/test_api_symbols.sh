#!/usr/bin/env bash
# libshimmy.so exports exactly the public API: every defined dynamic symbol is a shimmy_ name,
# and every function declared in include/shimmy.h is among them.
set -u
SRC=${SHIMMY_SRC:?SHIMMY_SRC not set}
BUILD=$(dirname "${SHIMMY_BIN:?SHIMMY_BIN not set}")
LIB=$BUILD/libshimmy.so
[ -f "$LIB" ] || { echo "FAIL: $LIB not built"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0

nm -D --defined-only "$LIB" | awk '{print $3}' | sed 's/@.*//' | sort -u > "$TMP/exported"
grep -v '^shimmy_' "$TMP/exported" > "$TMP/foreign"
if [ -s "$TMP/foreign" ]; then
    echo "FAIL: non-API symbols exported:"; head -20 "$TMP/foreign"; fail=1
fi

# Declarations as the compiler sees them (macros expanded, comments gone); "name (*" is a
# function-pointer typedef's return type, not a function.
gcc -std=c11 -E -P -I"$SRC/include" "$SRC/include/shimmy.h" |
    grep -oE '\bshimmy_[a-z0-9_]+[[:space:]]*\([^*]' | sed -E 's/[[:space:]]*\(.$//' | sort -u \
    > "$TMP/declared"
n=$(wc -l < "$TMP/declared")
if [ "$n" -lt 40 ]; then echo "FAIL: only $n declarations found in shimmy.h"; fail=1; fi
missing=$(comm -23 "$TMP/declared" "$TMP/exported")
if [ -n "$missing" ]; then echo "FAIL: declared but not exported:"; echo "$missing"; fail=1; fi

echo "api symbols: $n declared, $(wc -l < "$TMP/exported") exported"
[ "$fail" -eq 0 ]
