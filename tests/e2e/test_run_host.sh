#!/usr/bin/env bash
# `shimmy run --host`, `shimmy ps` and `shimmy stop` against a running `shimmy serve`: a greedy
# answer through the server's /v1/chat/completions stream is the one `run` gives with the model
# loaded in-process; ps lists the model the answer loaded (size, expiry), stop unloads it, ps
# is empty again; unknown models and a server that is gone are explained.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN must point to the shimmy binary}
SRC=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
MODEL=$SRC/models/docs-llama-30m-Q4_K_M.gguf
[ -f "$MODEL" ] || { echo "skip: $MODEL is absent"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/shimmy-host.XXXXXX")
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail=0
check() { if ! "$@"; then echo "FAILED: $*"; fail=1; fi; }
for root in ENV MODEL_PATHS LOCAL HOME BASE_DIR OLLAMA HF LMSTUDIO DOWNLOADS; do
    export "SHIMMY_NO_$root=1"
done
mkdir -p "$T/models" && cp "$MODEL" "$T/models/"
"$BIN" serve --bind auto --model-dirs "$T/models" --threads 2 > "$T/serve.out" 2> "$T/serve.err" &
SRV=$!
URL=
for _ in $(seq 100); do
    URL=$(sed -nE 's/.*listening on (http:\/\/[0-9.]+:[0-9]+).*/\1/p' "$T/serve.out" | head -n1)
    [ -n "$URL" ] && break
    sleep 0.1
done
[ -n "$URL" ] || { echo "FAILED: the server did not start"; cat "$T/serve.err"; exit 1; }
NAME=docs-llama-30m-q4_k_m
Q="What does git switch do?"

# nothing loaded yet
check "$BIN" ps --host "$URL" --json > "$T/ps0"
check grep -qx '{"models":\[\]}' "$T/ps0"

# the same greedy answer through the server as in-process
echo "$Q" | "$BIN" run "$NAME" --host "$URL" --temp 0 -n 20 > "$T/remote" 2> "$T/remote.err"
check test $? -eq 0
echo "$Q" | "$BIN" run "$MODEL" --temp 0 -n 20 > "$T/local" 2> /dev/null
check test -s "$T/remote"
check cmp "$T/remote" "$T/local"

# ps: the model is loaded, with its size and when it expires
SHIMMY_HOST=$URL "$BIN" ps --json > "$T/ps1"
check python3 -c "
import json,sys; m=json.load(open('$T/ps1'))['models']
sys.exit(0 if len(m)==1 and m[0]['name']=='$NAME' and m[0]['size']>1000000 else 1)"
"$BIN" ps --host "$URL" > "$T/ps1.txt"
check grep -qE "^$NAME +[0-9]+ MB" "$T/ps1.txt"

# stop unloads it; ps is empty again; unknown names are explained
check "$BIN" stop "$NAME" --host "$URL"
"$BIN" ps --host "$URL" --json > "$T/ps2"
check grep -qx '{"models":\[\]}' "$T/ps2"
"$BIN" stop no-such-model --host "$URL" 2> "$T/err"
check test $? -eq 1
check grep -q "cannot stop no-such-model" "$T/err"
echo "hi" | "$BIN" run no-such-model --host "$URL" > /dev/null 2> "$T/err"
check test $? -eq 1
check grep -q "no-such-model" "$T/err"

# the server gone: a clear error, not a hang
kill "$SRV"; wait "$SRV" 2>/dev/null; SRV=
"$BIN" ps --host "$URL" 2> "$T/err"
check test $? -eq 1
check grep -q "cannot reach" "$T/err"
echo "hi" | "$BIN" run "$NAME" --host "$URL" > /dev/null 2> "$T/err"
check test $? -eq 1
check grep -q "cannot reach" "$T/err"

exit $fail
