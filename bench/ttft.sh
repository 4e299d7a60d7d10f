#!/usr/bin/env bash
# Time to first token from a cold process: `shimmy generate MODEL --prompt X -n 1` against
# llama.cpp's `llama-cli -m MODEL -p X -n 1 -no-cnv`, whole processes (start-up, mapping,
# tokenizer, prompt evaluation and the first sample included), with the same thread count and
# context size. The commands run in turn (A B C A B C ...) so that a drift of the shared machine's
# speed hits all of them alike; the figure to quote is the median of the per-round ratios.
#
# llama-cli runs a warm-up pass by default; the third column is llama-cli --no-warmup, the
# fairest yardstick for a lazy start.
#
# usage: bench/ttft.sh [-r ROUNDS] [-t THREADS] [-p PROMPT] [MODEL ...]
#   SHIMMY  shimmy binary (default build/shimmy)
#   LLAMA   llama-cli binary (default /work/llamacpp/src/build/bin/llama-cli)
# Models default to the 0.25B bench files in /tmp/bm (made by bench_make_model OUT TYPE) and
# the trained docs-llama-30m files of the test data.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
SHIMMY=${SHIMMY:-$here/build/shimmy}
LLAMA=${LLAMA:-/work/llamacpp/src/build/bin/llama-cli}
TESTDATA=${SHIMMY_TESTDATA:-$here/../shared/testdata}
rounds=7
threads=2
prompt=Hello
while getopts "r:t:p:" opt; do
    case $opt in
    r) rounds=$OPTARG ;;
    t) threads=$OPTARG ;;
    p) prompt=$OPTARG ;;
    *) sed -n 's/^# usage: //p' "$0" >&2 && exit 2 ;;
    esac
done
shift $((OPTIND - 1))
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
    for f in /tmp/bm/q4_0.gguf /tmp/bm/q8_0.gguf /tmp/bm/q4km.gguf /tmp/bm/f16.gguf \
        "$TESTDATA"/models/docs-llama-30m-Q8_0.gguf "$TESTDATA"/models/docs-llama-30m-Q4_K_M.gguf; do
        [ -f "$f" ] && models+=("$f")
    done
fi
for b in "$SHIMMY" "$LLAMA"; do
    [ -x "$b" ] || { echo "ttft.sh: $b is not executable (set SHIMMY / LLAMA)" >&2; exit 2; }
done
[ ${#models[@]} -gt 0 ] || { echo "ttft.sh: no model files" >&2; exit 2; }

# wall seconds of one run (output discarded); a failing command aborts the benchmark
run_s() {
    local t0=$EPOCHREALTIME
    if ! "$@" </dev/null >/dev/null 2>&1; then
        echo "ttft.sh: failed: $*" >&2
        exit 1
    fi
    local t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf "%-28s %10s %10s %10s %9s %9s\n" model shimmy_s llama_s nowarm_s "A/llama" "A/nowarm"
for m in "${models[@]}"; do
    a=() b=() c=() rb=() rc=()
    # one unmeasured round: the file is in the page cache for every command alike
    run_s "$SHIMMY" generate "$m" --prompt "$prompt" -n 1 --threads "$threads" >/dev/null
    run_s "$LLAMA" -m "$m" -p "$prompt" -n 1 -no-cnv -t "$threads" >/dev/null
    for ((i = 0; i < rounds; i++)); do
        ta=$(run_s "$SHIMMY" generate "$m" --prompt "$prompt" -n 1 --threads "$threads")
        tb=$(run_s "$LLAMA" -m "$m" -p "$prompt" -n 1 -no-cnv -t "$threads")
        tc=$(run_s "$LLAMA" -m "$m" -p "$prompt" -n 1 -no-cnv -t "$threads" --no-warmup)
        a+=("$ta") b+=("$tb") c+=("$tc")
        rb+=("$(awk -v x="$ta" -v y="$tb" 'BEGIN { print x / y }')")
        rc+=("$(awk -v x="$ta" -v y="$tc" 'BEGIN { print x / y }')")
    done
    printf "%-28s %10.3f %10.3f %10.3f %9.3f %9.3f\n" "$(basename "$m")" \
        "$(printf '%s\n' "${a[@]}" | median)" "$(printf '%s\n' "${b[@]}" | median)" \
        "$(printf '%s\n' "${c[@]}" | median)" "$(printf '%s\n' "${rb[@]}" | median)" \
        "$(printf '%s\n' "${rc[@]}" | median)"
done
