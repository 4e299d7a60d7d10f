#!/usr/bin/env bash
# bench/busy_cpu.sh MODEL [LLAMA_BENCH] [-n 128] [-r 3] [-k 1]
#
# Generation speed when another program keeps K cores busy (default 1, of the machine's 2): a
# server rarely has the machine to itself. For shimmy (and llama.cpp's llama-bench when given,
# built from source outside this repository), measured back to back on the same file:
#   quiet -t N         tg tokens/s with nothing else running, N = all cores
#   busy  -t 1, -t N   the same while K busy loops run (plain processes, not pinned)
# and the ratios busy/quiet at -t N and busy -t N / busy -t 1. The targets of issue #26: at
# least 0.45 for the first (half the CPU, about half the speed) and at least 1.0 for the second
# (more threads are never worse than one). The last column is the load average, to spot a
# noisy pair. Environment: SHIMMY_BIN (default build/shimmy). Needs jq.
set -euo pipefail
usage() { echo "usage: bench/busy_cpu.sh MODEL [LLAMA_BENCH] [-n N] [-r N] [-k K]" >&2; exit 2; }
[ $# -ge 1 ] || usage
MODEL=$1; shift
LB=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then LB=$1; shift; fi
N=128; R=3; K=1
while [ $# -gt 0 ]; do
    case $1 in
    -n) N=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    -k) K=$2; shift 2 ;;
    *) usage ;;
    esac
done
BIN=${SHIMMY_BIN:-build/shimmy}
T=$(nproc)
command -v jq >/dev/null || { echo "busy_cpu.sh: jq is required" >&2; exit 1; }
[ -x "$BIN" ] || { echo "busy_cpu.sh: $BIN is not executable (set SHIMMY_BIN)" >&2; exit 1; }

HOGS=()
stop_hogs() {
    for p in "${HOGS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${HOGS[@]}"; do wait "$p" 2>/dev/null || true; done
    HOGS=()
}
trap stop_hogs EXIT
start_hogs() {
    for _ in $(seq "$K"); do
        bash -c 'while :; do :; done' &
        HOGS+=($!)
    done
    sleep 0.5
}

tg_shimmy() { "$BIN" bench "$MODEL" -p 0 -n "$N" -r "$R" -t "$1" --json 2>/dev/null | jq .tg.tokens_per_s; }
tg_llama() {
    "$LB" -m "$MODEL" -p 0 -n "$N" -r "$R" -t "$1" -o json 2>/dev/null |
        jq '.[] | select(.n_gen>0) | .avg_ts'
}

row() { # name fn
    local q b1 bt
    q=$($2 "$T")
    start_hogs
    b1=$($2 1)
    bt=$($2 "$T")
    stop_hogs
    printf '%-10s | %9.1f | %9.1f %9.1f | %6.2f %6.2f | %s\n' "$1" "$q" "$b1" "$bt" \
        "$(jq -n "$bt / $q")" "$(jq -n "$bt / $b1")" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

echo "$(basename "$MODEL"), tg$N, $K busy of $T cores; CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
printf '%-10s | %9s | %9s %9s | %6s %6s | %s\n' engine "quiet -t$T" "busy -t1" "busy -t$T" \
    "b/q" "bT/b1" load
row shimmy tg_shimmy
if [ -n "$LB" ]; then row llama.cpp tg_llama; fi
