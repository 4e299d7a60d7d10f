#!/usr/bin/env bash
# shimmy tokenize / detokenize end to end, against the engine's recorded prompt tokens
# (reference/<model>.json: llama_tokenize with add_special and parse_special) and the chat
# renderings of reference/chat-templates.json; detokenize must give the prompt text back;
# bad input exits 1 with a message, usage errors exit 2.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN not set}
DATA=${SHIMMY_TESTDATA:-}
REF=$DATA/reference
[ -f "$REF/chat-templates.json" ] && [ -f "$DATA/models/tiny-llama-spm-F32.gguf" ] ||
    { echo "SKIP: test data absent"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, status (0 = pass)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

declare -A BOS # model -> the id an empty text gives (its BOS), -1 if none

# tokens of prompt file $2 for model $1 must be "$3"; then detokenizing them (minus a leading
# BOS, whose piece would take the leading-space rule) must give the prompt back.
roundtrip() {
    local model=$1 prompt=$2 want=$3 what=$4
    local got
    got=$("$BIN" tokenize "$model" --file "$prompt" 2> "$TMP/err")
    check "$what: tokenize rc=$? '$(head -c 200 "$TMP/err")' got [$got] want [$want]" \
        $([ "$got" = "$want" ]; echo $?)
    local ids=$want bos=${BOS[$model]:-}
    if [ -z "$bos" ]; then
        bos=$(jq -r '.tokens[0] // -1' <<< "$("$BIN" tokenize "$model" --text "" --json)")
        BOS[$model]=$bos
    fi
    [ "${want%% *}" = "$bos" ] && ids=${want#* }
    [ "$ids" = "$bos" ] && ids=""
    "$BIN" detokenize "$model" --tokens "${ids// /,}" --json > "$TMP/dj" 2> "$TMP/err"
    check "$what: detokenize rc=$? $(head -c 200 "$TMP/err")" $?
    jq -j .text "$TMP/dj" > "$TMP/back"
    cmp -s "$TMP/back" "$prompt"
    check "$what: detokenize gives the prompt back: $(head -c 120 "$TMP/back")" $?
}

for json in "$REF"/tiny-llama-spm-F32.json "$REF"/tiny-llama-bpe-Q4_0.json \
            "$REF"/tiny-qwen2-Q4_0.json "$REF"/tiny-qwen3-F32.json "$REF"/docs-llama-30m-Q8_0.json; do
    [ -f "$json" ] || continue
    model=$DATA/models/$(jq -r .model_file "$json")
    [ -f "$model" ] || continue
    n=$(jq '.cases | length' "$json")
    for ((i = 0; i < n; i++)); do
        jq -j ".cases[$i].prompt" "$json" > "$TMP/prompt"
        want=$(jq -r ".cases[$i].prompt_tokens | map(tostring) | join(\" \")" "$json")
        roundtrip "$model" "$TMP/prompt" "$want" "$(basename "$json") case $i"
    done
done

# chat prompts: special-token text is parsed (the template's own tokens)
n=$(jq '.results | length' "$REF/chat-templates.json")
for ((r = 0; r < n; r++)); do
    model=$DATA/models/$(jq -r ".results[$r].model_file" "$REF/chat-templates.json")
    for conv in single_user system_multiturn; do
        jq -j ".results[$r].cases.$conv.prompt" "$REF/chat-templates.json" > "$TMP/prompt"
        want=$(jq -r ".results[$r].cases.$conv.prompt_tokens | map(tostring) | join(\" \")" \
            "$REF/chat-templates.json")
        roundtrip "$model" "$TMP/prompt" "$want" "chat $r $conv"
    done
done

# --json: ids and pieces as recorded
SPM=$DATA/models/tiny-llama-spm-F32.gguf
BPE=$DATA/models/tiny-llama-bpe-Q4_0.gguf
jq -c '{tokens: .cases[1].prompt_tokens, pieces: .cases[1].prompt_pieces}' \
    "$REF/tiny-llama-bpe-Q4_0.json" > "$TMP/want.json"
"$BIN" tokenize "$BPE" --text "$(jq -j '.cases[1].prompt' "$REF/tiny-llama-bpe-Q4_0.json")" \
    --json | jq -c . > "$TMP/got.json"
cmp -s "$TMP/want.json" "$TMP/got.json"
check "tokenize --json: $(cat "$TMP/got.json")" $?

# --no-bos drops BOS; --no-special keeps special text as text
want=$(jq -r '.cases[0].prompt_tokens[1:] | map(tostring) | join(" ")' "$REF/tiny-llama-spm-F32.json")
got=$("$BIN" tokenize "$SPM" --text "$(jq -j '.cases[0].prompt' "$REF/tiny-llama-spm-F32.json")" --no-bos)
check "--no-bos: [$got] vs [$want]" $([ "$got" = "$want" ]; echo $?)
got=$("$BIN" tokenize "$BPE" --text "<|eot_id|>" --no-bos)
check "special text parsed: [$got]" $([ "$got" = "128009" ]; echo $?)
got=$("$BIN" tokenize "$BPE" --text "<|eot_id|>" --no-bos --no-special)
check "--no-special: [$got]" $([ "$got" != "128009" ] && [ -n "$got" ]; echo $?)
got=$("$BIN" detokenize "$BPE" --tokens 128000,9906,128009 --no-special)
check "detokenize --no-special hides control tokens: [$got]" $([ "$got" = "Hello" ]; echo $?)
got=$("$BIN" detokenize "$BPE" --tokens "128000 9906 128009")
check "detokenize shows control tokens: [$got]" \
    $([ "$got" = "<|begin_of_text|>Hello<|eot_id|>" ]; echo $?)

# errors: bad input exits 1 with a message naming the problem; usage errors exit 2
expect() { # name, expected rc, stderr pattern, command...
    local name=$1 want=$2 pat=$3
    shift 3
    "$@" > /dev/null 2> "$TMP/err"
    local rc=$?
    check "$name: rc=$rc want $want, stderr: $(head -c 200 "$TMP/err")" \
        $([ $rc -eq "$want" ] && grep -q -- "$pat" "$TMP/err"; echo $?)
}
expect "missing model" 1 "no-such.gguf" "$BIN" tokenize "$TMP/no-such.gguf" --text hi
expect "not a gguf" 1 "shimmy: error" "$BIN" tokenize "$TMP/prompt" --text hi
if [ -f "$DATA/vocab/ggml-vocab-bert-bge.gguf" ]; then # WordPiece: [CLS] hello , world [SEP]
    got=$("$BIN" tokenize "$DATA/vocab/ggml-vocab-bert-bge.gguf" --text "Hello, World" --json |
        jq -c .tokens)
    check "bert tokenize: got $got" $([ "$got" = "[101,7592,1010,2088,102]" ]; echo $?)
fi
expect "id out of range" 1 "not in the vocabulary" "$BIN" detokenize "$SPM" --tokens 1,32000
expect "missing text file" 1 "no-such.txt" "$BIN" tokenize "$SPM" --file "$TMP/no-such.txt"
expect "no text" 2 "usage" "$BIN" tokenize "$SPM"
expect "text and file" 2 "usage" "$BIN" tokenize "$SPM" --text a --file b
expect "unknown option" 2 "unknown option" "$BIN" tokenize "$SPM" --text a --frobnicate
expect "no model" 2 "usage" "$BIN" detokenize --tokens 1
expect "bad id list" 2 "not a token id" "$BIN" detokenize "$SPM" --tokens 1,2x
expect "no ids" 2 "usage" "$BIN" detokenize "$SPM"

echo "tokenize e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
