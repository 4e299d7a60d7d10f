#!/usr/bin/env bash
# LoRA overhead: prompt processing (pp) and generation (tg) tokens/s of the ~0.25B benchmark model
# (bench_make_model, Q4_K_M) with and without a rank-16 adapter on all seven projections of every
# layer (bench_make_lora), runs alternating without / with (A B A B ...) so that a change of
# machine load hits both sides alike. Prints every run, the medians and the slowdowns
# (targets: tg <= 5 %, pp <= 10 %): the ratio of the medians, and the median of the slowdowns of
# each with-adapter run against the run just before it. Then, because wall-clock rates swing
# several-fold on a loaded machine, the CPU time (user + sys) per token of processes that do only
# pp or only tg, less that of a process that does one token (CPU=0 skips it), alternating the
# same way. With more than one thread the CPU time includes the pool's spinning.
# usage: bench/lora_overhead.sh [path/to/shimmy] [work dir]
# env: REPS (runs per side, default 3), PP (prompt tokens, 256), TG (generated tokens, 64),
#      RANK (16), LORA_TYPE (f32|f16, f32), MODEL_TYPE (the base's type, Q4_K_M; any TYPE of
#      bench_make_model), THREADS (default: shimmy's), CPU_THREADS (threads of the CPU-time
#      part, 1), CPU_TG (its generated tokens, 256), LLAMA_CLI (path to llama.cpp's llama-cli:
#      also measure its slowdown with the same adapter, as a yardstick)
# Uses `shimmy bench -r 1 --json` (one warm-up pass, then pp from an empty cache and tg of forced
# tokens).
set -eu
BIN=${1:-build/shimmy}
DIR=${2:-/tmp/shimmy-lora-bench}
REPS=${REPS:-3}
PP=${PP:-256}
TG=${TG:-64}
RANK=${RANK:-16}
LORA_TYPE=${LORA_TYPE:-f32}
BDIR=$(dirname "$BIN")
command -v jq >/dev/null || { echo "lora_overhead: jq is needed" >&2; exit 1; }
mkdir -p "$DIR"
MODEL_TYPE=${MODEL_TYPE:-Q4_K_M}
MODEL=$DIR/bench-$MODEL_TYPE.gguf
LORA=$DIR/bench-lora-r$RANK-$LORA_TYPE.gguf
[ -f "$MODEL" ] || "$BDIR/bench_make_model" "$MODEL" "$MODEL_TYPE"
[ -f "$LORA" ] || "$BDIR/bench_make_lora" "$MODEL" "$LORA" --rank "$RANK" --type "$LORA_TYPE"
THR=()
[ -n "${THREADS:-}" ] && THR=(--threads "$THREADS")

"$BIN" bench --help >/dev/null 2>&1 || { echo "lora_overhead: $BIN has no bench" >&2; exit 1; }

# measure [lora args...] -> "pp_tps tg_tps"
measure() {
    local out
    out=$("$BIN" bench "$MODEL" -p "$PP" -n "$TG" -r 1 "${THR[@]}" "$@" --json)
    jq -r '"\(.pp.tokens_per_s) \(.tg.tokens_per_s)"' <<<"$out"
}

echo "model: $MODEL"
echo "adapter: $LORA (rank $RANK, $LORA_TYPE, attn_q/k/v/output + ffn_gate/up/down, all layers)"
echo "shimmy bench: pp $PP tokens, tg $TG tokens, $REPS runs per side, alternating"
echo "load before: $(uptime | sed 's/.*load average/load average/')"
base_pp=() base_tg=() lora_pp=() lora_tg=()
printf '%-4s %-6s %10s %10s\n' run side pp_t/s tg_t/s
for ((r = 1; r <= REPS; r++)); do
    read -r pp tg < <(measure)
    base_pp+=("$pp") base_tg+=("$tg")
    printf '%-4s %-6s %10.2f %10.2f\n' "$r" base "$pp" "$tg"
    read -r pp tg < <(measure --lora "$LORA")
    lora_pp+=("$pp") lora_tg+=("$tg")
    printf '%-4s %-6s %10.2f %10.2f\n' "$r" lora "$pp" "$tg"
done
echo "load after: $(uptime | sed 's/.*load average/load average/')"

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {
    print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
bp=$(median "${base_pp[@]}") bt=$(median "${base_tg[@]}")
lp=$(median "${lora_pp[@]}") lt=$(median "${lora_tg[@]}")
# slowdown of each lora run against the base run just before it: under a drifting load this is
# steadier than the ratio of the medians
pair_pp=() pair_tg=()
for ((i = 0; i < REPS; i++)); do
    pair_pp+=("$(awk -v b="${base_pp[i]}" -v l="${lora_pp[i]}" 'BEGIN { print (b - l) / b * 100 }')")
    pair_tg+=("$(awk -v b="${base_tg[i]}" -v l="${lora_tg[i]}" 'BEGIN { print (b - l) / b * 100 }')")
done
echo
printf '%-5s %12s %12s %10s %14s %8s\n' test 'base t/s' 'lora t/s' slowdown 'paired median' target
awk -v b="$bp" -v l="$lp" -v n="$PP" -v m="$(median "${pair_pp[@]}")" 'BEGIN {
    printf "%-5s %12.2f %12.2f %9.1f%% %13.1f%% %8s\n", "pp" n, b, l, (b - l) / b * 100, m, "<= 10%" }'
awk -v b="$bt" -v l="$lt" -v n="$TG" -v m="$(median "${pair_tg[@]}")" 'BEGIN {
    printf "%-5s %12.2f %12.2f %9.1f%% %13.1f%% %8s\n", "tg" n, b, l, (b - l) / b * 100, m, "<= 5%" }'

if [ -n "${LLAMA_CLI:-}" ]; then
    # llama.cpp's own cost for the same adapter: llama-cli's prompt and eval timings (a prompt
    # of about PP tokens, TG forced tokens), alternating the same way. "n/a": it failed.
    prompt=$(printf 'hello %.0s' $(seq "$PP"))
    llama() {
        local out
        out=$("$LLAMA_CLI" -m "$MODEL" "$@" -p "$prompt" -n "$TG" -no-cnv --temp 0 --ignore-eos \
            ${THREADS:+-t "$THREADS"} 2>&1 </dev/null) || { echo "n/a n/a"; return; }
        awk '/prompt eval time/ { for (i = 1; i < NF; i++) if ($i == "tokens" && $(i+1) == "per") pp = $(i-1) }
             /[^t] eval time/ && !/prompt/ { for (i = 1; i < NF; i++) if ($i == "tokens" && $(i+1) == "per") tg = $(i-1) }
             END { print (pp ? pp : "n/a"), (tg ? tg : "n/a") }' <<<"$out"
    }
    echo
    echo "llama.cpp ($LLAMA_CLI), same files and threads, $REPS runs per side, alternating"
    lb_pp=() lb_tg=() ll_pp=() ll_tg=()
    for ((r = 1; r <= REPS; r++)); do
        read -r pp tg < <(llama)
        lb_pp+=("$pp") lb_tg+=("$tg")
        read -r pp2 tg2 < <(llama --lora "$LORA")
        ll_pp+=("$pp2") ll_tg+=("$tg2")
        printf '%-4s base %10s %10s   lora %10s %10s\n' "$r" "$pp" "$tg" "$pp2" "$tg2"
    done
    if [[ " ${lb_tg[*]} ${ll_tg[*]} " != *n/a* ]]; then
        printf '%-5s %12s %12s %10s\n' test 'base t/s' 'lora t/s' slowdown
        awk -v b="$(median "${lb_pp[@]}")" -v l="$(median "${ll_pp[@]}")" -v n="$PP" 'BEGIN {
            printf "%-5s %12.2f %12.2f %9.1f%%\n", "pp" n, b, l, (b - l) / b * 100 }'
        awk -v b="$(median "${lb_tg[@]}")" -v l="$(median "${ll_tg[@]}")" -v n="$TG" 'BEGIN {
            printf "%-5s %12.2f %12.2f %9.1f%%\n", "tg" n, b, l, (b - l) / b * 100 }'
    fi
fi

[ "${CPU:-1}" != 0 ] || exit 0
# cpu ARGS... -> user+sys seconds of the whole process
CT=${CPU_THREADS:-1}
CTG=${CPU_TG:-256}
cpu() {
    local TIMEFORMAT='%U %S'
    { time "$BIN" bench "$MODEL" -t "$CT" -r 1 "$@" --json >/dev/null 2>&1; } 2>&1 |
        awk '{ print $1 + $2 }'
}
# Per token, without what every process pays once (loading, the first touch of the weights, the
# warm-up): a process that evaluates one token is subtracted. A pp process runs the prompt twice
# (warm-up and measured pass), a tg process one warm-up token before the measured ones.
# per_tok SIDE_ARGS... -> "pp_ms tg_ms"
per_tok() {
    local one pp tg
    one=$(cpu -p 0 -n 1 "$@")
    pp=$(cpu -p "$PP" -n 0 "$@")
    tg=$(cpu -p 0 -n $((CTG + 1)) "$@")
    awk -v o="$one" -v p="$pp" -v t="$tg" -v np="$PP" -v nt="$CTG" \
        'BEGIN { printf "%.4f %.4f\n", (p - o) / (2 * np) * 1000, (t - o) / nt * 1000 }'
}
echo
echo "CPU time per token (user + sys, ms), $CT thread(s), pp $PP, tg $CTG, $REPS runs per side," \
    "alternating"
printf '%-4s %10s %10s %10s %10s\n' run pp_base pp_lora tg_base tg_lora
cpb=() cpl=() ctb=() ctl=()
for ((r = 1; r <= REPS; r++)); do
    read -r a b < <(per_tok)
    read -r c d < <(per_tok --lora "$LORA")
    cpb+=("$a") ctb+=("$b") cpl+=("$c") ctl+=("$d")
    printf '%-4s %10.3f %10.3f %10.3f %10.3f\n' "$r" "$a" "$c" "$b" "$d"
done
echo "load after: $(uptime | sed 's/.*load average/load average/')"
printf '%-5s %12s %12s %14s %8s\n' test 'base ms/tok' 'lora ms/tok' 'rate slowdown' target
awk -v b="$(median "${cpb[@]}")" -v l="$(median "${cpl[@]}")" -v n="$PP" 'BEGIN {
    printf "%-5s %12.3f %12.3f %13.1f%% %8s\n", "pp" n, b, l, (1 - b / l) * 100, "<= 10%" }'
awk -v b="$(median "${ctb[@]}")" -v l="$(median "${ctl[@]}")" -v n="$CTG" 'BEGIN {
    printf "%-5s %12.3f %12.3f %13.1f%% %8s\n", "tg" n, b, l, (1 - b / l) * 100, "<= 5%" }'
