#!/usr/bin/env bash
# bench/vs_llamacpp.sh LLAMA_BENCH MODEL... [-t "1 2"] [-p 512] [-n 128] [-r 3] [--gpu DEVICE]
#
# Side-by-side speed against llama.cpp's llama-bench (built from source outside this repository):
# for every model and thread count, `shimmy bench` and llama-bench run back to back on the same
# file, and the line printed gives both and their ratio (shimmy / llama.cpp). Absolute figures on
# shared machines drift; the ratio measured in one run is the figure to report. The last column is
# the load average when the pair finished, to spot a noisy pair.
#
# --gpu DEVICE (vulkan, vulkan:N, cuda): both on the GPU, every layer: shimmy with --device DEVICE,
# llama-bench with -ngl 99 (give it a llama.cpp built with -DGGML_VULKAN=ON, or -DGGML_CUDA=ON
# for its CUDA figures); the GPU's name is printed first.
#
# Environment: SHIMMY_BIN (default build/shimmy). Needs jq.
set -euo pipefail
usage() { echo "usage: bench/vs_llamacpp.sh LLAMA_BENCH MODEL... [-t \"1 2\"] [-p N] [-n N] [-r N] [--gpu DEVICE]" >&2; exit 2; }
[ $# -ge 2 ] || usage
LB=$1; shift
THREADS="1 2"; P=512; N=128; R=3; MODELS=(); GPU=
while [ $# -gt 0 ]; do
    case $1 in
    -t) THREADS=$2; shift 2 ;;
    -p) P=$2; shift 2 ;;
    -n) N=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    --gpu) GPU=$2; shift 2 ;;
    -*) usage ;;
    *) MODELS+=("$1"); shift ;;
    esac
done
[ ${#MODELS[@]} -gt 0 ] || usage
BIN=${SHIMMY_BIN:-build/shimmy}
command -v jq >/dev/null || { echo "vs_llamacpp.sh: jq is required" >&2; exit 1; }
[ -x "$BIN" ] || { echo "vs_llamacpp.sh: $BIN is not executable (set SHIMMY_BIN)" >&2; exit 1; }
[ -x "$LB" ] || { echo "vs_llamacpp.sh: $LB is not executable" >&2; exit 1; }

S_DEV=(--device cpu); L_DEV=(-ngl 0)
if [ -n "$GPU" ]; then
    S_DEV=(--device "$GPU"); L_DEV=(-ngl 99)
    "$BIN" probe --devices --json 2>/dev/null | jq -r '.devices[]? | "device vulkan:\(.index): \(.name) (\(.driver))"'
fi
printf '%-28s %2s | %9s %9s %5s | %9s %9s %5s | %s\n' model t "pp$P" "llama" ratio "tg$N" llama ratio load
for m in "${MODELS[@]}"; do
    for t in $THREADS; do
        s=$("$BIN" bench "$m" -p "$P" -n "$N" -r "$R" -t "$t" "${S_DEV[@]}" --json 2>/dev/null)
        l=$("$LB" -m "$m" -p "$P" -n "$N" -r "$R" -t "$t" "${L_DEV[@]}" -o json 2>/dev/null)
        sp=$(jq .pp.tokens_per_s <<<"$s"); sg=$(jq .tg.tokens_per_s <<<"$s")
        lp=$(jq '.[] | select(.n_prompt>0) | .avg_ts' <<<"$l")
        lg=$(jq '.[] | select(.n_gen>0) | .avg_ts' <<<"$l")
        printf '%-28s %2d | %9.1f %9.1f %5.2f | %9.1f %9.1f %5.2f | %s\n' "$(basename "$m")" "$t" \
            "$sp" "$lp" "$(jq -n "$sp/$lp")" "$sg" "$lg" "$(jq -n "$sg/$lg")" \
            "$(cut -d' ' -f1 /proc/loadavg)"
    done
done
