#!/usr/bin/env bash
# A model file truncated or replaced on disk while the server has it mapped: the generation in
# flight ends with a clean error (no SIGBUS: src/core/mapguard.c), the server stays up, the
# next request reloads the file (a clean error while the file is short), and a restored or
# replaced file serves again. See docs/reliability.md.
set -euo pipefail
bin="${SHIMMY_BIN:?SHIMMY_BIN is not set}"
src="${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
demo="$src/models/docs-llama-30m-Q4_K_M.gguf"
[[ -x "$bin" && -f "$demo" ]] || { echo "SKIP: binary or demo model missing"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }

tmp="$(mktemp -d)"
pid=""
cleanup() {
    [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    echo "--- server log:"; tail -20 "$tmp/err" || true
    exit 1
}
mkdir "$tmp/m"
cp "$demo" "$tmp/m/m.gguf"
export SHIMMY_NO_ENV=1 SHIMMY_NO_MODEL_PATHS=1 SHIMMY_NO_LOCAL=1 SHIMMY_NO_HOME=1 \
    SHIMMY_NO_BASE_DIR=1 SHIMMY_NO_OLLAMA=1 SHIMMY_NO_HF=1 SHIMMY_NO_LMSTUDIO=1 SHIMMY_NO_DOWNLOADS=1
"$bin" serve --bind auto --model-dirs "$tmp/m" --threads 1 >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/out" 2>/dev/null && break; sleep 0.1; done
url="$(grep -o 'http://[0-9.:]*' "$tmp/out" | head -1)"
[[ -n "$url" ]] || fail "server did not start"

gen() { # max_tokens, stream -> body on stdout, status in $tmp/status
    curl -sS -o - -w '%{http_code}' "$url/v1/completions" -H 'Content-Type: application/json' \
        -d "{\"model\":\"m\",\"prompt\":\"Tell me about git\",\"max_tokens\":$1,\"temperature\":0,\"stream\":$2,\"logit_bias\":{\"2\":-100}}"
}
out="$(gen 4 false)"
[[ "${out: -3}" == 200 ]] || fail "first request: $out"

# 1. Truncated in place during a long stream (end-of-sequence banned: it runs to max_tokens).
gen 1000 true >"$tmp/stream" &
cpid=$!
for _ in $(seq 200); do grep -q '"text"' "$tmp/stream" 2>/dev/null && break; sleep 0.05; done
grep -q '"text"' "$tmp/stream" || fail "the stream produced no token"
truncate -s 2000000 "$tmp/m/m.gguf"
wait "$cpid" || true
kill -0 "$pid" 2>/dev/null || fail "the server died (signal?) after the truncation"
grep -q 'truncated on disk' "$tmp/stream" || fail "the stream did not end with the truncation error: $(tail -c 300 "$tmp/stream")"
grep -q 'data: \[DONE\]' "$tmp/stream" && fail "the stream claims success after the truncation"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health")" == 200 ]] || fail "/health after truncation"

# 2. The next request reloads the short file: a clean error naming it, the server still up.
out="$(gen 4 false)"
code="${out: -3}"
[[ "$code" =~ ^[45] ]] || fail "request on the truncated file: $out"
grep -q '"error"' <<<"$out" && grep -q 'm.gguf' <<<"$out" || fail "error does not name the file: $out"
kill -0 "$pid" 2>/dev/null || fail "server died on reload"

# 3. Replaced by rename (a new download): served again.
cp "$demo" "$tmp/new.gguf" && mv "$tmp/new.gguf" "$tmp/m/m.gguf"
out="$(gen 4 false)"
[[ "${out: -3}" == 200 ]] || fail "after replacing the file: $out"

# 4. Rewritten in place: reloaded and served.
cp "$demo" "$tmp/m/m.gguf"
out="$(gen 4 false)"
[[ "${out: -3}" == 200 ]] || fail "after rewriting the file: $out"
grep -q 'reloading it' "$tmp/err" || fail "the manager did not log the reload"

kill -TERM "$pid"
wait "$pid" && rc=0 || rc=$?
pid=""
[[ $rc == 0 ]] || fail "server exit status $rc"
echo "PASS"
