#!/usr/bin/env bash
# bench/embed_vs_llamacpp.sh LLAMA_SERVER [MODEL.gguf] [-n 32] [-l 64] [-t 2] [-r 5] [--pooling P]
#
# Embeddings per second over HTTP, side by side: `shimmy serve` and llama.cpp's llama-server
# --embeddings (built from source outside this repository) on the same file and thread count,
# one after the other. Each request is one POST /v1/embeddings of -n inputs of -l token ids
# (the same random ids for both; ids avoid the special tokens); the median wall time of -r
# requests after one warm-up gives embeddings/s, and the ratio is shimmy / llama-server.
# Without MODEL, bench_embed writes its BERT-base-shaped model (F16) and that is used. --pooling
# gives llama-server a pooling (e.g. mean for a decoder without a pooling type, which is what
# shimmy does for such a model).
#
# Environment: SHIMMY_BIN (default build/shimmy), EMBED_BIN (default build/bench_embed),
# SHIMMY_TESTDATA (default ../shared/testdata).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/embed_vs_llamacpp.sh LLAMA_SERVER [MODEL] [-n N] [-l N] [-t N] [-r N]" >&2; exit 2; }
LS=$1; shift
MODEL=""
[ $# -gt 0 ] && [ "${1#-}" = "$1" ] && { MODEL=$1; shift; }
N=32; LEN=64; T=2; R=5; POOL=()
while [ $# -gt 0 ]; do
    case $1 in
    -n) N=$2; shift 2 ;;
    -l) LEN=$2; shift 2 ;;
    -t) T=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    --pooling) POOL=(--pooling "$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
BIN=${SHIMMY_BIN:-build/shimmy}
# bench_embed takes the WordPiece vocabulary from the shared test data
export SHIMMY_TESTDATA=${SHIMMY_TESTDATA:-$(cd "$(dirname "$0")/.." && pwd)/../shared/testdata}
if [ -z "$MODEL" ]; then
    MODEL=/tmp/shimmy-bench-bert.gguf
    "${EMBED_BIN:-build/bench_embed}" "$MODEL" -n 1 -l 8 -r 1 --keep >/dev/null
fi
PORT=$((20000 + RANDOM % 20000))
BODY=$(mktemp)
PID=
stop() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=; rm -f "$BODY.tmp"; }
trap 'stop; rm -f "$BODY"' EXIT
python3 - "$N" "$LEN" "$(basename "$MODEL" .gguf)" > "$BODY" <<'EOF'
import json, random, sys
n, l, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
random.seed(7)
inputs = [[random.randint(1000, 29000) for _ in range(l)] for _ in range(n)]
print(json.dumps({"model": name, "input": inputs}))
EOF

wait_up() {
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "embed_vs_llamacpp.sh: server did not start" >&2; return 1
}

# median embeddings/s of R requests after a warm-up
measure() {
    wait_up
    curl -sf "http://127.0.0.1:$PORT/v1/embeddings" -H 'Content-Type: application/json' -d @"$BODY" >/dev/null
    for _ in $(seq 1 "$R"); do
        s=$(date +%s.%N)
        curl -sf "http://127.0.0.1:$PORT/v1/embeddings" -H 'Content-Type: application/json' -d @"$BODY" >/dev/null
        e=$(date +%s.%N)
        awk -v s="$s" -v e="$e" -v n="$N" 'BEGIN { printf "%.2f\n", n / (e - s) }'
    done | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "model $(basename "$MODEL"), $N inputs of $LEN tokens per request, $T threads; CPU: $(lscpu | sed -n 's/^Model name: *//p')"
"$BIN" serve --bind "127.0.0.1:$PORT" --model "$MODEL" --threads "$T" >/dev/null 2>&1 & PID=$!
SH=$(measure)
stop
"$LS" -m "$MODEL" --port "$PORT" -t "$T" --embeddings "${POOL[@]}" -c $((N * LEN * 2)) -b $((N * LEN)) \
    -ub $((N * LEN)) -np "$N" >/dev/null 2>&1 & PID=$!
LL=$(measure)
stop
printf 'shimmy %s embeddings/s, llama-server %s embeddings/s, ratio %s\n' "$SH" "$LL" \
    "$(awk -v a="$SH" -v b="$LL" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
