#!/usr/bin/env bash
# LoRA end to end against llama.cpp's recorded runs (lora/reference.json): for every entry and
# every case, `shimmy logits --lora-scaled ...` teacher-forced over the reference greedy tokens,
# once with the GGUF adapters and once with their PEFT twins (lora-X.gguf <-> peft-X/). Checks:
#  - the prompt tokens equal the reference's;
#  - each of the reference's top-5 logits at every step, matched by id in our top-20, within
#    0.01 on the F32 base and 0.1 on the Q4_0 base (an id missing from our top-20 fails);
#  - the argmax equals the reference's at every step whose reference top1-top2 margin exceeds
#    twice the tolerance;
#  - the PEFT run prints exactly the logits of the GGUF run (same matrices).
# A control run (the first adapter entry at half its scale) must be caught by the same
# comparison, so the check is shown to be able to fail.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN not set}
DATA=${SHIMMY_TESTDATA:-}
L=$DATA/lora
REF=$L/reference.json
[ -f "$REF" ] || { echo "SKIP: $REF absent"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
TOP=20

# compare OUR_JSON CASE_JSON TOL -> one JSON line: prompt_ok, max_d, missing, argmax_ok, n,
# argmax_bad (steps whose margin > 2 tol and whose argmax differs)
compare() {
    jq -c -n --slurpfile a "$1" --slurpfile r "$2" --argjson tol "$3" '
        $a[0] as $a | $r[0] as $r
        | [range(0; $r.top5_per_step | length) as $s
           | ($a.steps[$s] // []) as $got
           | ($got | map({key: (.[0] | tostring), value: .[1]}) | from_entries) as $m
           | $r.top5_per_step[$s] as $want
           | {d: [$want[] | ($m[.[0] | tostring]) as $g
                  | if $g == null then null else ($g - .[1] | fabs) end],
              top_ok: (($got[0][0] // -1) == $want[0][0]),
              strict: (($want[0][1] - $want[1][1]) > 2 * $tol)}] as $st
        | {prompt_ok: ($a.prompt_tokens == $r.prompt_tokens),
           n_steps: ($a.steps | length), want_steps: ($st | length),
           max_d: ([$st[].d[] | select(. != null)] | max // 0),
           missing: ([$st[].d[] | select(. == null)] | length),
           argmax_ok: ([$st[] | select(.top_ok)] | length), n: ($st | length),
           argmax_bad: ([$st | to_entries[] | select(.value.strict and (.value.top_ok | not))
                         | .key])}'
}

# run ENTRY_INDEX FORMAT(gguf|peft|-) SCALE_FACTOR CASE -> $TMP/out ($? = shimmy's status)
run() {
    local e=$1 fmt=$2 factor=$3 c=$4
    local base prompt cont
    base=$DATA/models/$(jq -r ".entries[$e].base_model" "$REF")
    prompt=$(jq -r ".entries[$e].cases[$c].prompt" "$REF")
    cont=$(jq -r ".entries[$e].cases[$c].greedy_tokens[:-1] | map(tostring) | join(\",\")" "$REF")
    local args=()
    while IFS=$'\t' read -r file scale; do
        [ -n "$file" ] || continue
        if [ "$fmt" = peft ]; then
            file=peft-${file#lora-}
            file=${file%.gguf}
        fi
        args+=(--lora-scaled "$L/$file" "$(jq -n "$scale * $factor")")
    done < <(jq -r ".entries[$e].adapters[] | [.file, .scale] | @tsv" "$REF")
    "$BIN" logits "$base" --prompt "$prompt" --continue "$cont" --top "$TOP" --kv f32 \
        --threads 1 "${args[@]}" --json > "$TMP/out" 2> "$TMP/err"
}

n_entries=$(jq '.entries | length' "$REF")
printf '%-5s %-22s %-42s %-6s %10s %8s\n' entry base adapters format 'max|d|' argmax
for ((e = 0; e < n_entries; e++)); do
    base_name=$(jq -r ".entries[$e].base_model" "$REF")
    adapters=$(jq -r ".entries[$e].adapters | if length == 0 then \"(none)\" else
        map(\"\(.file | sub(\"^lora-tiny-\"; \"\") | sub(\"[.]gguf$\"; \"\"))@\(.scale)\")
        | join(\"+\") end" "$REF")
    tol=0.1
    case $base_name in *F32*) tol=0.01 ;; esac
    n_cases=$(jq ".entries[$e].cases | length" "$REF")
    fmts=(gguf peft)
    [ "$(jq ".entries[$e].adapters | length" "$REF")" -eq 0 ] && fmts=(-)
    for fmt in "${fmts[@]}"; do
        row_max=0 row_ok=0 row_n=0 row_bad=0
        for ((c = 0; c < n_cases; c++)); do
            jq ".entries[$e].cases[$c]" "$REF" > "$TMP/case"
            run "$e" "$fmt" 1 "$c"
            rc=$?
            name="entry $e ($adapters, $fmt) case $c"
            if [ $rc -ne 0 ]; then
                fail=$((fail + 1)) row_bad=$((row_bad + 1))
                echo "FAIL: $name: shimmy logits rc=$rc: $(head -c 300 "$TMP/err")"
                continue
            fi
            res=$(compare "$TMP/out" "$TMP/case" "$tol")
            problems=$(jq -r --argjson tol "$tol" '[
                (select(.prompt_ok | not) | "prompt tokens differ"),
                (select(.n_steps != .want_steps) | "\(.n_steps) steps, want \(.want_steps)"),
                (select(.missing > 0) | "\(.missing) reference ids not in our top-20"),
                (select(.max_d > $tol) | "max |d| \(.max_d) > \($tol)"),
                (select(.argmax_bad | length > 0) | "argmax differs at steps \(.argmax_bad)")
                ] | join("; ")' <<<"$res")
            if [ "$fmt" = peft ]; then
                # the PEFT twin holds the same matrices: identical logits expected
                if ! cmp -s "$TMP/out" "$TMP/gguf.$c"; then
                    problems="${problems:+$problems; }logits differ from the GGUF adapter's"
                fi
            elif [ "$fmt" = gguf ]; then
                cp "$TMP/out" "$TMP/gguf.$c"
            fi
            if [ -z "$problems" ]; then
                pass=$((pass + 1))
            else
                fail=$((fail + 1)) row_bad=$((row_bad + 1))
                echo "FAIL: $name: $problems"
            fi
            row_max=$(jq -n "[$row_max, $(jq .max_d <<<"$res")] | max")
            row_ok=$((row_ok + $(jq .argmax_ok <<<"$res")))
            row_n=$((row_n + $(jq .n <<<"$res")))
        done
        printf '%-5s %-22s %-42s %-6s %10.2e %8s%s\n' "$e" "$base_name" "$adapters" "$fmt" \
            "$row_max" "$row_ok/$row_n" "$([ $row_bad -gt 0 ] && echo "  <- $row_bad FAILED")"
    done
done

# control: the first adapter entry at half its scale must be caught by the comparison
ctl=$(jq '[.entries | to_entries[] | select(.value.adapters | length > 0) | .key][0] // -1' "$REF")
if [ "$ctl" -ge 0 ]; then
    jq ".entries[$ctl].cases[0]" "$REF" > "$TMP/case"
    base_name=$(jq -r ".entries[$ctl].base_model" "$REF")
    tol=0.1
    case $base_name in *F32*) tol=0.01 ;; esac
    if run "$ctl" gguf 0.5 0; then
        d=$(compare "$TMP/out" "$TMP/case" "$tol" | jq .max_d)
        if jq -e --argjson tol "$tol" "$d > \$tol" <<<null >/dev/null; then
            pass=$((pass + 1))
            echo "control: entry $ctl at half scale is caught (max |d| $d > $tol)"
        else
            fail=$((fail + 1))
            echo "FAIL: control: entry $ctl at half scale passes the comparison (max |d| $d)"
        fi
    else
        fail=$((fail + 1))
        echo "FAIL: control run rc=$?: $(head -c 300 "$TMP/err")"
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
