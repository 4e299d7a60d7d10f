#!/usr/bin/env bash
# shimmy embed end to end: --json vectors against llama.cpp's references
# (reference/<model>.embed.json, f32_attn: within 2e-3 per component for the Q8_0 files), the
# plain output (one line of numbers per input, the same values), --dimensions, --file --lines,
# rerank scores with --query, and the errors: an input over the context exits 1 naming it (and
# passes with --truncate), a model that is no reranker exits 1, usage errors exit 2.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN not set}
DATA=${SHIMMY_TESTDATA:-}
M=$DATA/models
REF=$DATA/reference
[ -f "$REF/tiny-bert-cls-Q8_0.embed.json" ] && [ -f "$M/tiny-bert-cls-Q8_0.gguf" ] &&
    [ -f "$M/tiny-bert-rerank-Q8_0.gguf" ] || { echo "SKIP: test data absent"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, status (0 = pass)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
# the largest |a[i] - b[i]| of two JSON arrays of numbers, compared with a bound
within() { # a b bound
    jq -n --argjson a "$1" --argjson b "$2" --argjson t "$3" \
        '[$a, $b] | transpose | map(.[0] - .[1] | fabs) | max <= $t' | grep -q true
}

CLS=$M/tiny-bert-cls-Q8_0.gguf
J=$REF/tiny-bert-cls-Q8_0.embed.json
for i in 0 1 4; do
    text=$(jq -r ".cases[$i].text" "$J")
    want=$(jq -c ".cases[$i].f32_attn.embedding" "$J")
    "$BIN" embed "$CLS" --text "$text" --json > "$TMP/out" 2> "$TMP/err"
    check "case $i: rc=$? $(head -c 200 "$TMP/err")" $?
    got=$(jq -c '.embeddings[0]' "$TMP/out")
    within "$got" "$want" 2e-3
    check "case $i: vector within 2e-3 of llama.cpp's" $?
    check "case $i: tokens" $([ "$(jq '.tokens[0]' "$TMP/out")" = "$(jq ".cases[$i].n_tokens" "$J")" ]; echo $?)
    check "case $i: pooling cls, dim 64" \
        $([ "$(jq -r '"\(.pooling) \(.dim)"' "$TMP/out")" = "cls 64" ]; echo $?)
done

# plain output: the same numbers, one line per input
t0=$(jq -r '.cases[0].text' "$J")
t1=$(jq -r '.cases[4].text' "$J")
"$BIN" embed "$CLS" --text "$t0" --text "$t1" > "$TMP/plain"
check "plain: two lines" $([ "$(wc -l < "$TMP/plain")" -eq 2 ]; echo $?)
line1=$(sed -n 2p "$TMP/plain" | tr ' ' ',')
within "[$line1]" "$(jq -c '.cases[4].f32_attn.embedding' "$J")" 2e-3
check "plain: second line is input 1's vector" $?

# --dimensions: 8 numbers of norm 1; --file --lines: one input per non-empty line
"$BIN" embed "$CLS" --text "$t0" --dimensions 8 --json > "$TMP/d8"
check "dimensions 8" $([ "$(jq '.embeddings[0] | length' "$TMP/d8")" = 8 ]; echo $?)
jq -e '.embeddings[0] | map(. * .) | add | (. - 1 | fabs) < 1e-5' "$TMP/d8" > /dev/null
check "dimensions: renormalised" $?
printf '%s\n\n%s\n' "$t0" "$t1" > "$TMP/lines"
"$BIN" embed "$CLS" --file "$TMP/lines" --lines --json > "$TMP/fl"
check "--lines: two inputs" $([ "$(jq '.embeddings | length' "$TMP/fl")" = 2 ]; echo $?)

# rerank
R=$REF/tiny-bert-rerank-Q8_0.embed.json
q=$(jq -r '.rerank.query' "$R")
d0=$(jq -r '.rerank.pairs[0].document' "$R")
d1=$(jq -r '.rerank.pairs[1].document' "$R")
"$BIN" embed "$M/tiny-bert-rerank-Q8_0.gguf" --query "$q" --text "$d0" --text "$d1" --json \
    > "$TMP/rr" 2> "$TMP/err"
check "rerank: rc=$? $(head -c 200 "$TMP/err")" $?
within "$(jq -c .scores "$TMP/rr")" "$(jq -c '[.rerank.pairs[0,1].f32_attn.score[0]]' "$R")" 0.03
check "rerank: scores within 0.03 of llama.cpp's" $?

# errors
long=$(printf 'word %.0s' $(seq 1 700))
"$BIN" embed "$CLS" --text short --text "$long" > /dev/null 2> "$TMP/err"
rc=$?
check "over the context: exit 1 naming input 1 (rc=$rc: $(cat "$TMP/err"))" \
    $([ $rc -eq 1 ] && grep -q "input 1" "$TMP/err"; echo $?)
"$BIN" embed "$CLS" --text short --text "$long" --truncate --json > "$TMP/tr"
check "--truncate: 512 tokens" $([ "$(jq '.tokens[1]' "$TMP/tr")" = 512 ]; echo $?)
"$BIN" embed "$CLS" --query q --text d > /dev/null 2> "$TMP/err"
check "not a reranker: exit 1" $([ $? -eq 1 ] && grep -q "reranker" "$TMP/err"; echo $?)
"$BIN" embed "$CLS" > /dev/null 2>&1
check "no input: usage error 2" $([ $? -eq 2 ]; echo $?)
"$BIN" embed "$CLS" --text a --dimensions 0 > /dev/null 2>&1
check "--dimensions 0: usage error 2" $([ $? -eq 2 ]; echo $?)

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
