#!/usr/bin/env bash
# shimmy bench end to end: the --json object has the documented fields, the token counts asked
# for and sane rates (timings themselves are not asserted: the machine may be busy); -p 0 / -n 0
# skip a part; the human table names both tests; usage errors exit 2 and a missing model 1.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN not set}
DATA=${SHIMMY_TESTDATA:-/work/shared/testdata}
MODEL=$DATA/models/tiny-llama-spm-F32.gguf
[ -f "$MODEL" ] || { echo "SKIP: $MODEL absent"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, command...: passes when the command succeeds
    local name=$1
    shift
    if "$@" > /dev/null 2>&1; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $name"
    fi
}

"$BIN" bench "$MODEL" -p 16 -n 8 -r 2 -t 1 --json > "$TMP/out" 2> "$TMP/err"
rc=$?
check "bench --json rc=$rc $(head -c 300 "$TMP/err")" test "$rc" -eq 0
check "one JSON object on stdout: $(head -c 300 "$TMP/out")" \
    jq -e 'type == "object"' "$TMP/out"
check "exactly the documented keys" jq -e '(keys | sort) ==
    ["cpu_kernels", "device", "gpu_layers", "load_ms", "model", "pp", "rss_bytes", "tg", "threads"]' "$TMP/out"
check "cpu_kernels names the kernel set first" jq -e '.cpu_kernels | test("^(scalar|avx2|avx2-vnni|avx512-vnni|neon-dotprod)")' "$TMP/out"
check "pp: n 16, positive rate, stddev >= 0" jq -e '.pp | (keys | sort) ==
    ["n", "stddev", "tokens_per_s"] and .n == 16 and .tokens_per_s > 0 and .stddev >= 0' \
    "$TMP/out"
check "tg: n 8, positive rate, stddev >= 0" jq -e '.tg | .n == 8 and .tokens_per_s > 0
    and .stddev >= 0' "$TMP/out"
# shellcheck disable=SC2016 # $m is jq's variable
check "model, threads, load_ms, rss_bytes" jq -e --arg m "$MODEL" '.model == $m and
    .threads == 1 and .load_ms > 0 and .rss_bytes > 0' "$TMP/out"

# -p 0 skips prompt processing; --kv f32 and the default thread count are accepted
"$BIN" bench "$MODEL" -p 0 -n 4 -r 1 --kv f32 --json > "$TMP/out" 2> "$TMP/err"
rc=$?
check "bench -p 0 rc=$rc $(head -c 300 "$TMP/err")" test "$rc" -eq 0
check "-p 0: pp n 0 rate 0, tg measured" jq -e '.pp.n == 0 and .pp.tokens_per_s == 0 and
    .tg.n == 4 and .tg.tokens_per_s > 0 and .threads >= 1' "$TMP/out"

# adapters are attached before measuring; a mismatched adapter is a failure, not a usage error
LORA=$DATA/lora/lora-tiny-llama-spm-r4.gguf
if [ -f "$LORA" ]; then
    "$BIN" bench "$MODEL" -p 8 -n 4 -r 1 -t 1 --lora-scaled "$LORA" 0.5 --json > "$TMP/out" \
        2> "$TMP/err"
    rc=$?
    check "bench --lora-scaled rc=$rc $(head -c 300 "$TMP/err")" test "$rc" -eq 0
    check "bench --lora-scaled measures" jq -e '.tg.n == 4 and .tg.tokens_per_s > 0' "$TMP/out"
fi
QLORA=$DATA/lora/lora-tiny-qwen2-r4.gguf
if [ -f "$QLORA" ]; then
    "$BIN" bench "$MODEL" -p 8 -n 4 -r 1 --lora "$QLORA" > /dev/null 2> "$TMP/err"
    rc=$?
    check "adapter of another architecture exits 1 (got $rc)" test "$rc" -eq 1
fi

# human output: a table row per test
"$BIN" bench "$MODEL" -p 8 -n 4 -r 1 -t 1 > "$TMP/out" 2> "$TMP/err"
rc=$?
check "bench table rc=$rc $(head -c 300 "$TMP/err")" test "$rc" -eq 0
check "table names pp8" grep -q '| pp8 ' "$TMP/out"
check "table names tg4" grep -q '| tg4 ' "$TMP/out"

# usage errors exit 2
for args in "" "$MODEL -p -1" "$MODEL -n x" "$MODEL -r 0" "$MODEL -t 0" "$MODEL --kv q8" \
    "$MODEL --bogus" "$MODEL -p" "$MODEL extra" "$MODEL --lora-scaled a.gguf"; do
    # shellcheck disable=SC2086
    "$BIN" bench $args > /dev/null 2> "$TMP/err"
    rc=$?
    check "usage error '$args' exits 2 (got $rc)" test "$rc" -eq 2
done

# a missing model is a failure with a message
"$BIN" bench "$TMP/missing.gguf" -p 4 -n 2 > /dev/null 2> "$TMP/err"
rc=$?
check "missing model exits 1 (got $rc)" test "$rc" -eq 1
check "missing model message: $(cat "$TMP/err")" grep -q 'shimmy: error' "$TMP/err"

echo "bench e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
