#!/usr/bin/env bash
# shimmy generate --grammar / --json-schema end to end: on the trained demo model and a random
# tiny model, several seeds, the text must match the grammar (checked with grep -E, a matcher
# that shares nothing with shimmy's) or validate against the schema's shape (jq); a bad grammar
# fails before generating with its line:column; the two options exclude each other.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN not set}
SRC=${SHIMMY_SRC:?SHIMMY_SRC not set}
DATA=${SHIMMY_TESTDATA:-}
DOCS=$SRC/models/docs-llama-30m-Q4_K_M.gguf
TINY=$DATA/models/tiny-qwen2-Q4_0.gguf
[ -f "$DOCS" ] || { echo "SKIP: demo model absent"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, status (0 = pass)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

cat > "$TMP/city.gbnf" <<'EOF'
# a city record
root ::= "{\"city\": \"" [A-Z] [a-z]{1,15} "\", \"population\": " [1-9] [0-9]{0,7} "}"
EOF
REGEX='^\{"city": "[A-Z][a-z]{1,15}", "population": [1-9][0-9]{0,7}\}$'
models=("$DOCS")
[ -f "$TINY" ] && models+=("$TINY")
for model in "${models[@]}"; do
    for seed in 1 2 3; do
        out=$("$BIN" generate "$model" --prompt "The largest city" --grammar "$TMP/city.gbnf" \
            -n 80 --seed "$seed" --temp 1.0 --json 2>"$TMP/err")
        check "grammar run $(basename "$model") seed $seed: $(cat "$TMP/err")" $?
        text=$(jq -r .text <<<"$out")
        finish=$(jq -r .finish_reason <<<"$out")
        [ "$finish" = stop ] && printf '%s' "$text" | grep -Eq "$REGEX"
        check "$(basename "$model") seed $seed: '$text' ($finish) does not match" $?
    done
done

cat > "$TMP/schema.json" <<'EOF'
{"type": "object", "additionalProperties": false, "required": ["answer", "confidence"],
 "properties": {"answer": {"type": "string", "maxLength": 30},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}}}
EOF
finished=0
for seed in 1 2 3; do
    out=$("$BIN" generate "$DOCS" --prompt "Question: what is a database? Answer:" \
        --json-schema "$TMP/schema.json" -n 100 --seed "$seed" --json 2>"$TMP/err")
    check "schema run seed $seed: $(cat "$TMP/err")" $?
    text=$(jq -r .text <<<"$out")
    # an output cut by -n is incomplete by design (finish "length"): only finished ones count
    [ "$(jq -r .finish_reason <<<"$out")" = stop ] || continue
    finished=$((finished + 1))
    jq -e 'type == "object" and (keys == ["answer", "confidence"]) and
           (.answer | type == "string" and length <= 30) and
           (.confidence | type == "number" and . >= 0 and . <= 1)' <<<"$text" >/dev/null
    check "schema seed $seed: '$text' is not valid" $?
done
[ "$finished" -ge 1 ]
check "no schema run finished" $?

# errors before any text, with the position
printf 'root ::= "a" [b-a]\n' > "$TMP/bad.gbnf"
"$BIN" generate "$DOCS" --prompt x --grammar "$TMP/bad.gbnf" >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "line 1, column 17" "$TMP/err" && [ ! -s "$TMP/out" ]
check "bad grammar: $(cat "$TMP/err")" $?
"$BIN" generate "$DOCS" --prompt x --grammar "$TMP/missing.gbnf" >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "missing.gbnf" "$TMP/err"
check "missing grammar file: $(cat "$TMP/err")" $?
"$BIN" generate "$DOCS" --prompt x --grammar a --json-schema b >/dev/null 2>&1
[ $? -eq 2 ]
check "--grammar with --json-schema is a usage error" $?

echo "generate grammar: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
