#!/usr/bin/env bash
# shimmy perplexity end to end: the trained docs-llama-30m-Q4_K_M on the held-out text must be
# within 0.3% of llama-perplexity's figure (reference/perplexity.json, same method, F16 cache);
# --kl-base against Q8_0 reports sane distribution distances on a few chunks; bad input is a
# clear error. (Every model x cache pair over the full file is bench/perplexity.sh.)
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN not set}
DATA=${SHIMMY_TESTDATA:-}
REF=$DATA/reference/perplexity.json
TEXT=$DATA/text/ppl-eval.txt
Q4=$DATA/models/docs-llama-30m-Q4_K_M.gguf
Q8=$DATA/models/docs-llama-30m-Q8_0.gguf
[ -f "$REF" ] && [ -f "$TEXT" ] && [ -f "$Q4" ] && [ -f "$Q8" ] ||
    { echo "SKIP: test data absent"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
check() { if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi; }

# 1. The full file, as the reference ran it.
want=$(jq '.entries[] | select(.model_file == "docs-llama-30m-Q4_K_M.gguf") | .ppl_kv_f16' "$REF")
want_chunks=$(jq '.entries[] | select(.model_file == "docs-llama-30m-Q4_K_M.gguf") | .chunks' "$REF")
want_scored=$(jq '.entries[] | select(.model_file == "docs-llama-30m-Q4_K_M.gguf") | .tokens_scored' "$REF")
"$BIN" perplexity "$Q4" --file "$TEXT" --json > "$TMP/q4.json" 2> "$TMP/q4.err"
check "perplexity exits 0" $?
got=$(jq .ppl "$TMP/q4.json")
echo "docs-llama-30m-Q4_K_M kv f16: shimmy $got, llama.cpp $want"
jq -e --argjson w "$want" '((.ppl - $w) | fabs) / $w <= 0.003' "$TMP/q4.json" > /dev/null
check "ppl within 0.3% of llama.cpp ($got vs $want)" $?
jq -e --argjson c "$want_chunks" --argjson s "$want_scored" \
    '.chunks == $c and .tokens_scored == $s and .ctx == 512 and .ppl_stderr > 0' "$TMP/q4.json" > /dev/null
check "chunks, ctx and scored tokens as llama-perplexity" $?
grep -q "chunk $want_chunks/$want_chunks" "$TMP/q4.err"
check "progress on stderr" $?

# 2. KL divergence of Q4_K_M from Q8_0 over two chunks: small but non-zero, mostly the same top token.
"$BIN" perplexity "$Q4" --file "$TEXT" --chunks 2 --kl-base "$Q8" --json > "$TMP/kl.json" 2>/dev/null
check "kl-base exits 0" $?
jq -e '.kl_divergence.mean > 0 and .kl_divergence.mean < 0.5 and
       .kl_divergence.p99 >= .kl_divergence.mean and .kl_divergence.top1_agreement > 0.7 and
       .chunks == 2 and .tokens_scored == 510' "$TMP/kl.json" > /dev/null
check "kl-base figures ($(jq -c .kl_divergence "$TMP/kl.json"))" $?
# The same model as its own base: zero divergence, full agreement.
"$BIN" perplexity "$Q8" --file "$TEXT" --chunks 1 --kl-base "$Q8" --json > "$TMP/self.json" 2>/dev/null
jq -e '(.kl_divergence.mean | fabs) < 1e-9 and .kl_divergence.top1_agreement == 1' "$TMP/self.json" > /dev/null
check "a model against itself has zero divergence" $?

# 3. --lora applies to MODEL: the tiny model with an adapter scores the text differently.
TINY=$DATA/models/tiny-llama-spm-F32.gguf
LORA=$DATA/lora/lora-tiny-llama-spm-r4.gguf
if [ -f "$TINY" ] && [ -f "$LORA" ]; then
    a=$("$BIN" perplexity "$TINY" --file "$TEXT" -c 64 --chunks 2 --kv f32 --json 2>/dev/null | jq .ppl)
    b=$("$BIN" perplexity "$TINY" --file "$TEXT" -c 64 --chunks 2 --kv f32 --lora "$LORA" --json 2>/dev/null | jq .ppl)
    [ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]
    check "--lora changes the figure ($a without, $b with)" $?
fi

# 4. Clear errors.
head -c 300 "$TEXT" > "$TMP/short.txt"
"$BIN" perplexity "$Q4" --file "$TMP/short.txt" > /dev/null 2> "$TMP/err"
rc=$?
[ $rc -eq 1 ] && grep -q "at least 2 chunks" "$TMP/err"
check "too short a text is a clear error (rc $rc: $(cat "$TMP/err"))" $?
"$BIN" perplexity "$Q4" --file "$TMP/nope.txt" > /dev/null 2> "$TMP/err"
rc=$?
[ $rc -eq 1 ] && grep -q "nope.txt" "$TMP/err"
check "an unreadable file is a clear error (rc $rc)" $?
other=$DATA/models/tiny-llama-bpe-Q4_0.gguf
if [ -f "$other" ]; then
    "$BIN" perplexity "$Q4" --file "$TEXT" --kl-base "$other" > /dev/null 2> "$TMP/err"
    rc=$?
    [ $rc -eq 1 ] && grep -q "vocabularies differ" "$TMP/err"
    check "a vocabulary mismatch is a clear error (rc $rc)" $?
fi
"$BIN" perplexity "$Q4" > /dev/null 2>&1
check "missing --file is a usage error" $(( $? == 2 ? 0 : 1 ))

echo "perplexity: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
