#!/usr/bin/env bash
# bench/bandwidth.sh MODEL [THREADS]
#
# How close token generation comes to the memory-bandwidth limit. Generating one token reads
# every weight matrix once, so tg tokens/s x weight bytes per token is the bandwidth the forward
# pass draws; the STREAM triad (bench_stream) measures what the memory system delivers. Their
# ratio is the fraction of the physical limit reached (1.0 = bandwidth-bound, nothing left to win
# on this machine without reading fewer bytes).
#
# Weight bytes per token: the sum of the tensor sizes `shimmy inspect --json` lists, without
# token_embd.weight when the model has its own output.weight (then the embedding is only a row
# lookup); with a tied output the embedding is the output matrix and is read in full. The KV
# cache reads of a 64-token run are negligible next to the weights and are not counted.
#
# Environment: SHIMMY_BIN (default build/shimmy), BENCH_STREAM (default bench_stream beside
# SHIMMY_BIN). Needs jq.
set -euo pipefail

usage() { echo "usage: bench/bandwidth.sh MODEL [THREADS]" >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
MODEL=$1
THREADS=${2:-}
if [ -n "$THREADS" ] && ! [[ $THREADS =~ ^[1-9][0-9]*$ ]]; then usage; fi
BIN=${SHIMMY_BIN:-build/shimmy}
STREAM=${BENCH_STREAM:-$(dirname "$BIN")/bench_stream}
command -v jq >/dev/null || { echo "bandwidth.sh: jq is required" >&2; exit 1; }
[ -x "$BIN" ] || { echo "bandwidth.sh: $BIN is not executable (set SHIMMY_BIN)" >&2; exit 1; }
[ -x "$STREAM" ] || { echo "bandwidth.sh: $STREAM is not executable (set BENCH_STREAM)" >&2; exit 1; }

TFLAG=()
[ -n "$THREADS" ] && TFLAG=(-t "$THREADS")

weights=$("$BIN" inspect --json "$MODEL" | jq '
    [.tensors[] | {name, bytes}] as $t
    | ([$t[] | select(.name == "output.weight")] | length) as $untied
    | [$t[] | select(.name != "token_embd.weight" or $untied == 0) | .bytes] | add')
bench=$("$BIN" bench "$MODEL" -p 0 -n 64 "${TFLAG[@]}" --json)
stream=$("$STREAM" "${TFLAG[@]}" --json)

tg=$(jq '.tg.tokens_per_s' <<< "$bench")
tg_sd=$(jq '.tg.stddev' <<< "$bench")
threads=$(jq '.threads' <<< "$bench")
peak=$(jq '.best_gb_per_s' <<< "$stream")
used=$(jq -n --argjson w "$weights" --argjson tg "$tg" '$w * $tg / 1e9')
frac=$(jq -n --argjson u "$used" --argjson p "$peak" '$u / $p')

printf 'model              %s\n' "$(basename "$MODEL")"
printf 'weights per token  %.1f MiB\n' "$(jq -n --argjson w "$weights" '$w / 1048576')"
printf 'tg64               %.2f ± %.2f tokens/s (%d threads)\n' "$tg" "$tg_sd" "$threads"
printf 'weights read       %.2f GB/s\n' "$used"
printf 'STREAM triad       %.2f GB/s (best pass, %d threads)\n' "$peak" "$(jq .threads <<< "$stream")"
printf 'fraction of limit  %.2f\n' "$frac"

# Weights that fit in the last-level cache are not streamed from DRAM on every token, so the
# triad figure is no ceiling for them and the fraction may exceed 1.
llc=$(cat /sys/devices/system/cpu/cpu0/cache/index3/size 2> /dev/null || true)
if [[ $llc =~ ^([0-9]+)K$ ]] && [ "$weights" -le $((BASH_REMATCH[1] * 1024)) ]; then
    echo "note: the weights fit in the $llc last-level cache; DRAM bandwidth is not the limit here"
fi
