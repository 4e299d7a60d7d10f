#!/usr/bin/env bash
# shimmy template end to end: the 3 tiny models' own templates against llama-server's --jinja
# renderings (reference/chat-templates.json), --jinja files against expected.json, template
# errors (exit 1, message on stderr) and usage errors (exit 2).
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN not set}
DATA=${SHIMMY_TESTDATA:-}
REF=$DATA/reference/chat-templates.json
EXP=$DATA/templates/expected.json
[ -f "$REF" ] && [ -f "$EXP" ] || { echo "SKIP: test data absent"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, command status
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

# llama-server adds BOS as a token, so its prompts lack a leading BOS text: --trim-bos-eos.
for model in tiny-llama-spm-F32 tiny-llama-bpe-Q4_0 tiny-qwen2-Q4_0; do
    for conv in single_user system_multiturn; do
        jq -c ".conversations.$conv" "$REF" > "$TMP/msgs.json"
        jq -j --arg m "$model.gguf" --arg c "$conv" \
            '.results[] | select(.model_file == $m and .jinja == true) | .cases[$c].prompt' \
            "$REF" > "$TMP/want"
        "$BIN" template "$DATA/models/$model.gguf" --messages "@$TMP/msgs.json" --trim-bos-eos \
            > "$TMP/got" 2> "$TMP/err"
        rc=$?
        cmp -s "$TMP/want" "$TMP/got"
        same=$?
        check "$model $conv (rc=$rc, $(head -c 200 "$TMP/err"))" $(( rc != 0 || same != 0 ))
    done
done

# --jinja with explicit BOS/EOS reproduces the reference Jinja2 renderer, byte for byte.
for file in google-gemma-2-2b-it.jinja meta-llama-Llama-3.2-3B-Instruct.jinja \
            mistralai-Mistral-Nemo-Instruct-2407.jinja; do
    for conv in multiturn unicode_whitespace; do
        bos=$(jq -j --arg f "$file" '.templates[] | select(.file == $f) | .bos_token' "$EXP")
        eos=$(jq -j --arg f "$file" '.templates[] | select(.file == $f) | .eos_token' "$EXP")
        jq -c ".conversations.$conv" "$EXP" > "$TMP/msgs.json"
        jq -j --arg f "$file" --arg c "$conv" '.templates[] | select(.file == $f) | .cases[]
            | select(.conversation == $c and .add_generation_prompt == false) | .output' \
            "$EXP" > "$TMP/want"
        "$BIN" template --jinja "$DATA/templates/$file" --bos "$bos" --eos "$eos" --date 2024-07-26 \
            --messages "@$TMP/msgs.json" --no-generation-prompt > "$TMP/got"
        rc=$?
        cmp -s "$TMP/want" "$TMP/got"
        same=$?
        check "--jinja $file $conv" $(( rc != 0 || same != 0 ))
    done
done

# The template's own refusal: exit 1, its message on stderr, nothing on stdout.
"$BIN" template --jinja "$DATA/templates/google-gemma-2-2b-it.jinja" \
    --messages '[{"role":"system","content":"s"},{"role":"user","content":"u"}]' \
    > "$TMP/out" 2> "$TMP/err"
rc=$?
check "raise_exception exit status ($rc)" $(( rc != 1 ))
grep -q "System role not supported" "$TMP/err"; check "raise_exception message on stderr" $?
[ ! -s "$TMP/out" ]; check "nothing on stdout after an error" $?

# A syntax error names the line and column.
printf 'line one\n{%% if x %%}\n{{ x + }}\n' > "$TMP/bad.jinja"
"$BIN" template --jinja "$TMP/bad.jinja" --messages '[]' > /dev/null 2> "$TMP/err"
rc=$?
check "syntax error exit status ($rc)" $(( rc != 1 ))
grep -q "line 3, column" "$TMP/err"
found=$?
check "syntax error location ($(cat "$TMP/err"))" $found

# A built-in family without a model; no trailing newline is added.
"$BIN" template --template chatml --messages '[{"role":"user","content":"Hi"}]' > "$TMP/got"
printf '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' > "$TMP/want"
cmp -s "$TMP/want" "$TMP/got"; check "--template chatml" $?

# --json reports the content spans: the user's text, exactly.
"$BIN" template --template chatml --messages '[{"role":"user","content":"<|im_end|>x"}]' --json \
    > "$TMP/j"
span=$(jq -r '.prompt[.content_spans[0][0]:.content_spans[0][1]]' "$TMP/j")
[ "$span" = "<|im_end|>x" ]; check "--json content span ($span)" $?

# --vars reaches the template as variables; --tools defines `tools`.
printf '{%%- if enable_thinking is defined and not enable_thinking %%}/no_think {%%+ endif %%}{{ tools|length }}' \
    > "$TMP/vars.jinja"
out=$("$BIN" template --jinja "$TMP/vars.jinja" --messages '[]' --vars '{"enable_thinking": false}' \
    --tools '[{"type":"function"},{"type":"function"}]')
[ "$out" = "/no_think 2" ]; check "--vars and --tools ($out)" $?
"$BIN" template --jinja "$TMP/vars.jinja" --messages '[]' --vars '[1]' > /dev/null 2>&1
check "--vars must be an object" $(( $? != 1 ))

# GGUFs without a template (llama.cpp's vocab-only files) get a built-in family chosen from the
# vocabulary's marker tokens, then the architecture.
for pair in qwen2:chatml llama-bpe:llama3 phi-3:phi3 llama-spm:llama2; do
    vocab=${pair%%:*}
    want=${pair#*:}
    f="$DATA/vocab/ggml-vocab-$vocab.gguf"
    [ -f "$f" ] || continue
    fam=$("$BIN" template "$f" --messages '[{"role":"user","content":"Hi"}]' --json | jq -r .family)
    [ "$fam" = "$want" ]; check "built-in for $vocab: $fam (want $want)" $?
done

# Usage errors exit 2.
"$BIN" template --messages '[]' > /dev/null 2>&1; check "no MODEL/--jinja is a usage error" $(( $? != 2 ))
"$BIN" template --template nosuch --messages '[]' > /dev/null 2>&1
check "unknown built-in is a usage error" $(( $? != 2 ))
"$BIN" template --template chatml --messages '[{' > /dev/null 2> "$TMP/err"
check "malformed --messages exits 1" $(( $? != 1 ))

echo "template e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
