#!/usr/bin/env bash
# Real-text fidelity benchmark: shimmy perplexity over the whole held-out text for every entry
# of reference/perplexity.json (both quantizations, F16 and F32 KV cache), next to
# llama-perplexity's figure, plus the KL divergence of Q4_K_M from Q8_0.
# usage: bench/perplexity.sh [path/to/shimmy] [testdata dir]
set -eu
BIN=${1:-build/shimmy}
DATA=${2:-../shared/testdata}
REF=$DATA/reference/perplexity.json
TEXT=$DATA/text/ppl-eval.txt
printf '%-28s %-4s %10s %10s %8s %8s\n' model kv shimmy llama.cpp diff% tok/s
for m in $(jq -r '.entries[].model_file' "$REF"); do
    for kv in f16 f32; do
        want=$(jq --arg m "$m" ".entries[] | select(.model_file == \$m) | .ppl_kv_$kv" "$REF")
        out=$("$BIN" perplexity "$DATA/models/$m" --file "$TEXT" --kv "$kv" --json 2>/dev/null)
        got=$(jq .ppl <<<"$out")
        tps=$(jq .tokens_per_s <<<"$out")
        printf '%-28s %-4s %10.4f %10.4f %8.3f %8.0f\n' "$m" "$kv" "$got" "$want" \
            "$(jq -n "($got - $want) / $want * 100")" "$tps"
    done
done
echo
"$BIN" perplexity "$DATA/models/docs-llama-30m-Q4_K_M.gguf" --file "$TEXT" \
    --kl-base "$DATA/models/docs-llama-30m-Q8_0.gguf" 2>/dev/null
