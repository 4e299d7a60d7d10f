#!/usr/bin/env bash
# shimmy inspect on a fixture model (text and --json), on the shared test models when present,
# and on corrupt / missing files, which must fail with exit 1 and an error naming the file.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN is not set}
MAKE_MODEL="$(dirname "$BIN")/bench_make_model"
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 77; }
[ -x "$MAKE_MODEL" ] || { echo "SKIP: $MAKE_MODEL not built"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

M="$TMP/fixture-q8.gguf"
"$MAKE_MODEL" "$M" Q8_0 --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128 \
    --n-vocab 512 --n-ctx 256 >/dev/null || { echo "FAIL: bench_make_model"; exit 1; }

# --json: one object with header, full scalars, array summaries and the tensor table
"$BIN" inspect "$M" --json >"$TMP/out.json" 2>"$TMP/err.txt"
check "inspect --json exits 0" [ $? -eq 0 ]
check "json parses" jq -e . "$TMP/out.json" >/dev/null
q() { jq -r "$1" "$TMP/out.json"; }
check "version 3" [ "$(q .version)" = 3 ]
check "alignment 32" [ "$(q .alignment)" = 32 ]
check "file_size matches" [ "$(q .file_size)" = "$(stat -c %s "$M")" ]
# 2 layers x 9 + token_embd + output_norm + output
check "21 tensors" [ "$(q .n_tensors)" = 21 ] 
check "tensor list length" [ "$(q '.tensors | length')" = 21 ]
check "architecture" [ "$(q '.metadata["general.architecture"]')" = llama ]
check "block_count" [ "$(q '.metadata["llama.block_count"]')" = 2 ]
check "rms eps is a number" [ "$(q '.metadata["llama.attention.layer_norm_rms_epsilon"] | type')" = number ]
check "add_bos is a bool" [ "$(q '.metadata["tokenizer.ggml.add_bos_token"]')" = true ]
check "token array summarised" [ "$(q '.metadata["tokenizer.ggml.tokens"].count')" = 512 ]
check "token array element type" [ "$(q '.metadata["tokenizer.ggml.tokens"].elem_type')" = string ]
check "first tokens" [ "$(q '.metadata["tokenizer.ggml.tokens"].first[0:3] | join(",")')" = "<unk>,<s>,</s>" ]
check "only a few items" [ "$(q '.metadata["tokenizer.ggml.tokens"].first | length')" -le 16 ]
check "chat template in full" [ "$(q '.metadata["tokenizer.chat_template"] | length')" -gt 500 ]
check "q8_0 matrix" [ "$(q '.tensors[] | select(.name == "blk.1.attn_k.weight") | "\(.type) \(.shape | join("x")) \(.bytes)"')" = "Q8_0 64x32 2176" ]
check "norms stay f32" [ "$(q '.tensors[] | select(.name == "output_norm.weight") | .type')" = F32 ]
check "offsets aligned" [ "$(q '[.tensors[].offset % 32] | add')" = 0 ]

# text output
"$BIN" inspect "$M" >"$TMP/out.txt" 2>&1
check "inspect exits 0" [ $? -eq 0 ]
check "text shows version" grep -q "GGUF v3, alignment 32" "$TMP/out.txt"
check "text summarises arrays" grep -Eq 'tokenizer.ggml.tokens +array +\[string x 512\] "<unk>"' "$TMP/out.txt"
check "text tensor row" grep -Eq 'blk.1.ffn_down.weight +Q8_0 +\[128, 64\]' "$TMP/out.txt"

# errors: missing, truncated, not GGUF, usage
"$BIN" inspect "$TMP/missing.gguf" >/dev/null 2>"$TMP/err.txt"
check "missing file exits 1" [ $? -eq 1 ]
check "missing file named" grep -q "missing.gguf" "$TMP/err.txt"
head -c 200 "$M" >"$TMP/trunc.gguf"
"$BIN" inspect "$TMP/trunc.gguf" >"$TMP/out.txt" 2>"$TMP/err.txt"
check "truncated exits 1" [ $? -eq 1 ]
check "truncated error names file" grep -q "trunc.gguf" "$TMP/err.txt"
check "nothing on stdout on error" [ ! -s "$TMP/out.txt" ]
printf 'GGML\0\0\0\0xxxxxxxxxxxxxxxxxxxxxxxxxxxx' >"$TMP/bad.gguf"
"$BIN" inspect "$TMP/bad.gguf" >/dev/null 2>"$TMP/err.txt"
check "bad magic exits 1" [ $? -eq 1 ]
check "bad magic explained" grep -q "not a GGUF file" "$TMP/err.txt"
# a tensor offset pointing past the end: cut the data section short by one byte
size=$(stat -c %s "$M")
head -c $((size - 1)) "$M" >"$TMP/short.gguf"
"$BIN" inspect "$TMP/short.gguf" >/dev/null 2>"$TMP/err.txt"
check "short data exits 1" [ $? -eq 1 ]
check "short data names the tensor" grep -q "extends past end of file" "$TMP/err.txt"
"$BIN" inspect >/dev/null 2>&1
check "no FILE is a usage error" [ $? -eq 2 ]
"$BIN" inspect "$M" --bogus >/dev/null 2>&1
check "unknown option is a usage error" [ $? -eq 2 ]

# the shared models, when present: what their README states
T=${SHIMMY_TESTDATA:-}/models/tiny-llama-spm-e256-Q4_K_M.gguf
if [ -f "$T" ]; then
    "$BIN" inspect "$T" --json >"$TMP/out.json"
    check "testdata: 20 tensors" [ "$(q .n_tensors)" = 20 ]
    check "testdata: Q4_K x 12" [ "$(q '[.tensors[] | select(.type == "Q4_K")] | length')" = 12 ]
    check "testdata: Q6_K x 2" [ "$(q '[.tensors[] | select(.type == "Q6_K")] | length')" = 2 ]
    check "testdata: vocab" [ "$(q '.metadata["tokenizer.ggml.tokens"].count')" = 32000 ]
fi

echo "test_inspect: $fails failed"
[ $fails -eq 0 ]
