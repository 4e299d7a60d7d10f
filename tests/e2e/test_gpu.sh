#!/usr/bin/env bash
# The Vulkan backend end to end, on whatever device "vulkan" picks (lavapipe in CI): probe lists
# it and puts a model on it; generate gives the CPU's greedy text on an F32 model (the device's
# logits are within 1e-4 of the CPU's there); a server on the device answers an OpenAI chat
# request with the demo model and /api/ps reports the memory it holds; bench measures it; a
# device that fails mid-request (SHIMMY_GPU_FAIL_AFTER: the driver reports the device lost)
# fails that request with a clear error, and the server goes on, on the CPU, with the CPU's text.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN not set}
SRC=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
DATA=${SHIMMY_TESTDATA:-$SRC/../shared/testdata}
DEMO=$SRC/models/docs-llama-30m-Q4_K_M.gguf
F32=$DATA/models/tiny-llama-spm-F32.gguf
[ -f "$DEMO" ] || { echo "SKIP: demo model absent"; exit 77; }
[ -f "$F32" ] || { echo "SKIP: $F32 absent"; exit 77; }
command -v jq > /dev/null || { echo "SKIP: jq not installed"; exit 77; }
command -v curl > /dev/null || { echo "SKIP: curl not installed"; exit 77; }
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2> /dev/null; rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, status (0 = pass)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
unset SHIMMY_DEVICE SHIMMY_GPU_FAIL_AFTER

"$BIN" probe --devices --json > "$TMP/devs" 2> /dev/null
if ! jq -e '[.devices[]? | select(.usable)] | length > 0' "$TMP/devs" > /dev/null 2>&1; then
    echo "SKIP: no usable Vulkan device ($(head -c 200 "$TMP/devs"))"
    exit 77
fi

# probe: the model on the device, every layer
"$BIN" probe "$DEMO" --device vulkan --json > "$TMP/probe" 2> "$TMP/err"
check "probe --device vulkan rc=$? $(head -c 300 "$TMP/err")" $?
jq -e '(.device | test("cpu") | not) and .gpu_layers > 0' "$TMP/probe" > /dev/null
check "probe reports the device and its layers: $(head -c 400 "$TMP/probe")" $?

# a device too small for the model: as many layers as fit, the rest and the output on the CPU
SHIMMY_GPU_MEMORY=4M "$BIN" probe "$DEMO" --device vulkan --json > "$TMP/fit" 2> "$TMP/err"
check "probe with 4 MiB for weights rc=$? $(head -c 300 "$TMP/err")" $?
jq -e '.gpu_layers > 0 and .gpu_layers < 6 and (.text | length > 0)' "$TMP/fit" > /dev/null
check "some of the 6 layers fit, and it generates: $(head -c 300 "$TMP/fit")" $?
grep -q "layers, not the output" "$TMP/err"
check "the log says how many fit: $(head -c 300 "$TMP/err")" $?

# generate: the CPU's greedy text on the F32 model, whole and split
gen() { "$BIN" generate "$F32" --prompt "Once upon a time" -n 24 --temp 0 -t 1 "$@"; }
gen --device cpu > "$TMP/cpu" 2> /dev/null
check "generate on the CPU" $?
gen --device vulkan > "$TMP/gpu" 2> "$TMP/err"
check "generate --device vulkan rc=$? $(head -c 300 "$TMP/err")" $?
[ -s "$TMP/cpu" ] && cmp -s "$TMP/cpu" "$TMP/gpu"
check "the device's greedy text is the CPU's: '$(head -c 200 "$TMP/gpu")'" $?
gen --device vulkan --gpu-layers 1 > "$TMP/split" 2> /dev/null
cmp -s "$TMP/cpu" "$TMP/split"
check "and split (--gpu-layers 1): '$(head -c 200 "$TMP/split")'" $?

# bench on the device
"$BIN" bench "$DEMO" --device vulkan -p 16 -n 4 --json > "$TMP/bench" 2> /dev/null
jq -e '(.device | test("cpu") | not) and .gpu_layers > 0' "$TMP/bench" > /dev/null
check "bench --device vulkan reports the device: $(head -c 300 "$TMP/bench")" $?

serve() { # out, model, args...: a server; its URL in $URL, its pid in $SERVER
    local out=$1 model=$2
    shift 2
    "$BIN" serve --bind auto --model "$model" --threads 1 "$@" > "$out" 2> "$out.err" &
    SERVER=$!
    URL=
    for _ in $(seq 300); do
        URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$out" | head -1)
        [ -n "$URL" ] && break
        sleep 0.1
    done
    [ -n "$URL" ]
}
stop() { kill "$SERVER" 2> /dev/null && wait "$SERVER" 2> /dev/null; SERVER=; }

# a server on the device: an OpenAI chat completion, /api/ps's size_vram
if serve "$TMP/s1" "$DEMO" --device vulkan; then
    curl -sf "$URL/v1/chat/completions" -d '{"model":"docs-llama-30m-q4_k_m","max_tokens":8,
        "messages":[{"role":"user","content":"How do I create a branch?"}]}' > "$TMP/chat"
    check "chat completion on the device" $?
    jq -e '.choices[0].message.content | length > 0' "$TMP/chat" > /dev/null
    check "it has text: $(head -c 300 "$TMP/chat")" $?
    curl -sf "$URL/api/ps" > "$TMP/ps"
    jq -e '.models[0].size_vram > 0' "$TMP/ps" > /dev/null
    check "/api/ps: size_vram > 0 on the device: $(head -c 300 "$TMP/ps")" $?
else
    check "serve --device vulkan starts: $(head -c 300 "$TMP/s1.err")" 1
fi
stop

# the device lost after a few submissions: that request fails naming the device, the next
# ones run on the CPU with its text
req='{"model":"tiny-llama-spm-f32","prompt":"Once upon a time","max_tokens":24,"temperature":0}'
if serve "$TMP/s2" "$F32" --device vulkan; then
    curl -sf "$URL/v1/completions" -d "$req" | jq -r '.choices[0].text' > "$TMP/ok_gpu"
    check "a completion on the device" $?
else
    check "serve --device vulkan starts (F32): $(head -c 300 "$TMP/s2.err")" 1
fi
stop
if serve "$TMP/s3" "$F32" --device cpu; then
    curl -sf "$URL/v1/completions" -d "$req" | jq -r '.choices[0].text' > "$TMP/ok_cpu"
    check "a completion on the CPU" $?
fi
stop
cmp -s "$TMP/ok_cpu" "$TMP/ok_gpu" && [ -s "$TMP/ok_cpu" ]
check "the server's text on the device is the CPU's" $?
if SHIMMY_GPU_FAIL_AFTER=6 serve "$TMP/s4" "$F32" --device vulkan; then
    code=$(curl -s -o "$TMP/lost" -w '%{http_code}' "$URL/v1/completions" -d "$req")
    [ "$code" -ge 500 ] && jq -e '.error.message | test("lost|device")' "$TMP/lost" > /dev/null
    check "the request the device failed gets a 5xx naming it ($code): $(head -c 300 "$TMP/lost")" $?
    curl -sf "$URL/v1/completions" -d "$req" | jq -r '.choices[0].text' > "$TMP/after"
    check "the next request succeeds" $?
    cmp -s "$TMP/ok_cpu" "$TMP/after"
    check "on the CPU, with its text: '$(head -c 200 "$TMP/after")'" $?
    kill -0 "$SERVER" 2> /dev/null
    check "the server is still running" $?
    grep -q "continues on the CPU" "$TMP/s4.err"
    check "its log says the model continues on the CPU" $?
else
    check "serve with an injected device failure starts: $(head -c 300 "$TMP/s4.err")" 1
fi
stop

echo "gpu e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
