#!/usr/bin/env bash
# bench/batching.sh MODEL [-s LLAMA_SERVER] [-c "1 2 4 8 16"] [-n 128] [-t 2] [--late 2000]
#                        [--pairs N]
#
# Throughput under concurrency, side by side: `shimmy serve --parallel P` (continuous batching)
# and, when -s gives one, llama.cpp's llama-server (`-np P -cb`, built from source outside this
# repository) on the same file and thread count, one after the other. For each client count the
# streaming clients (bench_server_load: distinct prompts, greedy, end-of-sequence banned so every
# answer runs -n tokens) report the aggregate generation tokens/s; the ratio is shimmy / llama.
# Then, with 8 streams running, one more client sends a prompt of --late words: its time to first
# token and the longest gap the running streams saw (the stall a long prompt causes).
# --pairs N adds shimmy's own 8-client / 1-client ratio as the median of N alternating pairs on
# the same server: on a host whose speed moves by 10-20% within minutes, one 1-client round and
# one 8-client round a minute apart measure the host as much as the batching.
#
# Environment: SHIMMY_BIN (default build/shimmy), LOAD_BIN (default build/bench_server_load),
# BAN (the end-of-sequence id to ban, default 2: SentencePiece llama vocabularies).
set -euo pipefail
usage() { echo "usage: bench/batching.sh MODEL [-s LLAMA_SERVER] [-c LIST] [-n N] [-t N] [--late WORDS] [--pairs N]" >&2; exit 2; }
[ $# -ge 1 ] || usage
MODEL=$1; shift
LS=""; CLIENTS="1 2 4 8 16"; N=128; T=2; LATE=2000; PAIRS=0
while [ $# -gt 0 ]; do
    case $1 in
    -s) LS=$2; shift 2 ;;
    -c) CLIENTS=$2; shift 2 ;;
    -n) N=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    --late) LATE=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    *) usage ;;
    esac
done
BIN=${SHIMMY_BIN:-build/shimmy}
LOAD=${LOAD_BIN:-build/bench_server_load}
BAN=${BAN:-2}
[ -x "$BIN" ] && [ -x "$LOAD" ] || { echo "batching.sh: build shimmy and bench_server_load first" >&2; exit 1; }
P=16
for c in $CLIENTS; do [ "$c" -gt "$P" ] && P=$c; done
PORT=$((20000 + RANDOM % 20000))
NAME=$(basename "$MODEL" .gguf)
PID=

stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=; }
trap stop EXIT

wait_up() { # url
    for _ in $(seq 1 300); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "batching.sh: server did not start" >&2; return 1
}

# aggregate tokens/s of one run of c clients (the best of 2 rounds)
run_load() { # url model clients
    "$LOAD" "$1" "$2" -c "$3" -n "$N" -r 2 --ban "$BAN" |
        sed -n 's/.*aggregate \([0-9.]*\) tok.*/\1/p' | sort -g | tail -1
}

measure() { # label -> fills RES[c] and LATE_LINE
    local url=http://127.0.0.1:$PORT model=$1
    wait_up "$url"
    for c in $CLIENTS; do RES[$c]=$(run_load "$url" "$model" "$c"); done
    LATE_LINE=$("$LOAD" "$url" "$model" -c 8 -n "$N" -r 1 --ban "$BAN" --late "$LATE" |
        grep 'late prompt' | sed 's/round 1: //')
}

declare -A RES SH LL
echo "model $NAME, $T threads, $N tokens per client, --parallel $P; CPU: $(lscpu | sed -n 's/^Model name: *//p')"
# 4096 positions per slot: room for the late prompt
"$BIN" serve --bind "127.0.0.1:$PORT" --model "$MODEL" --parallel "$P" --threads "$T" \
    --ctx-size 4096 >/dev/null 2>&1 & PID=$!
measure "$NAME"
for c in $CLIENTS; do SH[$c]=${RES[$c]}; done
SH_LATE=$LATE_LINE
PAIR_LINES=()
for i in $(seq 1 "$PAIRS"); do
    a=$(run_load "http://127.0.0.1:$PORT" "$NAME" 1)
    b=$(run_load "http://127.0.0.1:$PORT" "$NAME" 8)
    PAIR_LINES+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%s %s %.2f", a, b, (a > 0 ? b / a : 0) }')")
done
stop
if [ -n "$LS" ]; then
    "$LS" -m "$MODEL" --port "$PORT" -t "$T" -np "$P" -cb -c $((P * 4096)) >/dev/null 2>&1 & PID=$!
    measure "$NAME"
    for c in $CLIENTS; do LL[$c]=${RES[$c]}; done
    LL_LATE=$LATE_LINE
    stop
fi
printf '%8s | %12s | %12s | %6s\n' clients "shimmy tok/s" "llama tok/s" ratio
for c in $CLIENTS; do
    l=${LL[$c]:-}
    r=-
    [ -n "$l" ] && r=$(awk -v a="${SH[$c]}" -v b="$l" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    printf '%8s | %12s | %12s | %6s\n' "$c" "${SH[$c]}" "${l:--}" "$r"
done
echo "shimmy, 8 streams + $SH_LATE"
[ -n "$LS" ] && echo "llama-server, 8 streams + $LL_LATE"
echo "shimmy at 8 clients / its 1-client rate: $(awk -v a="${SH[8]:-0}" -v b="${SH[1]:-0}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
if [ "$PAIRS" -gt 0 ]; then
    echo "alternating pairs (1-client tok/s, 8-client tok/s, ratio):"
    printf '  %s\n' "${PAIR_LINES[@]}"
    printf '%s\n' "${PAIR_LINES[@]}" | awk '{ print $3 }' | sort -g |
        awk '{ r[NR] = $1 } END { printf "shimmy 8 / 1 clients, median of %d pairs: %.2f\n", NR, (r[int((NR + 1) / 2)] + r[int(NR / 2) + 1]) / 2 }'
fi
