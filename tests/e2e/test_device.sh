#!/usr/bin/env bash
# --device / --gpu-layers / SHIMMY_DEVICE end to end, on the demo model: "cpu" changes nothing,
# a device that is not there (vulkan:63) fails naming it (whether or not this build has the
# Vulkan backend), an unknown string lists the accepted forms, "auto" runs on the CPU where the
# only Vulkan devices are software ones (lavapipe) or none, and probe --devices lists devices.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN not set}
SRC=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
MODEL=$SRC/models/docs-llama-30m-Q4_K_M.gguf
[ -f "$MODEL" ] || { echo "SKIP: demo model absent"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
TMP=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2> /dev/null; rm -rf "$TMP"' EXIT
fail=0
pass=0
check() { # name, status (0 = pass)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
unset SHIMMY_DEVICE
gen() { "$BIN" generate "$MODEL" --prompt "To create a branch" -n 8 --temp 0 -t 1 "$@"; }

# --device cpu (and -ngl 0) give the default run's text
gen --device cpu > "$TMP/cpu" 2> "$TMP/err"
check "generate --device cpu rc=$? $(head -c 300 "$TMP/err")" $?
SHIMMY_DEVICE=cpu gen > "$TMP/env" 2> /dev/null
check "SHIMMY_DEVICE=cpu" $?
gen -ngl 0 > "$TMP/ngl0" 2> /dev/null
check "-ngl 0" $?
[ -s "$TMP/cpu" ] && cmp -s "$TMP/cpu" "$TMP/env" && cmp -s "$TMP/cpu" "$TMP/ngl0"
check "the same text with --device cpu, SHIMMY_DEVICE=cpu and -ngl 0" $?

# a device that is not there: "built without Vulkan" or "no device 63", naming it either way
gen --device vulkan:63 > "$TMP/out" 2> "$TMP/err"
rc=$?
check "--device vulkan:63 fails with 1 (rc=$rc)" "$([ "$rc" -eq 1 ]; echo $?)"
grep -q "vulkan:63" "$TMP/err"
check "the error names the device: $(head -c 300 "$TMP/err")" $?
[ ! -s "$TMP/out" ]
check "nothing generated on vulkan:63" $?
SHIMMY_DEVICE=vulkan:63 gen > /dev/null 2> "$TMP/err"
rc=$?
check "SHIMMY_DEVICE=vulkan:63 fails (rc=$rc)" "$([ "$rc" -eq 1 ]; echo $?)"
grep -q "vulkan:63" "$TMP/err"
check "SHIMMY_DEVICE's error names the device: $(head -c 300 "$TMP/err")" $?
SHIMMY_DEVICE=vulkan:63 gen --device cpu > "$TMP/over" 2> /dev/null
check "--device cpu wins over SHIMMY_DEVICE" $?
cmp -s "$TMP/cpu" "$TMP/over"
check "and gives the CPU's text" $?

# strings that are no device
for d in tpu vulkan:x; do
    gen --device "$d" > /dev/null 2> "$TMP/err"
    rc=$?
    check "--device $d fails (rc=$rc)" "$([ "$rc" -ne 0 ]; echo $?)"
    grep -q "'$d'" "$TMP/err" && grep -q "vulkan:N" "$TMP/err" && grep -q "cuda" "$TMP/err"
    check "--device $d: the accepted forms are listed: $(head -c 300 "$TMP/err")" $?
done
SHIMMY_DEVICE=tpu gen > /dev/null 2> "$TMP/err"
rc=$?
check "SHIMMY_DEVICE=tpu fails (rc=$rc)" "$([ "$rc" -eq 1 ]; echo $?)"
grep -q "SHIMMY_DEVICE" "$TMP/err"
check "the error names SHIMMY_DEVICE: $(head -c 300 "$TMP/err")" $?
gen --gpu-layers many > /dev/null 2> "$TMP/err"
rc=$?
check "--gpu-layers many is a usage error (rc=$rc)" "$([ "$rc" -eq 2 ]; echo $?)"
"$BIN" generate --help | grep -q -- "--device"
check "generate --help lists --device" $?

# probe --devices: a listing (maybe empty) that says why when there is none
"$BIN" probe --devices > "$TMP/out" 2> "$TMP/err"
check "probe --devices rc=$? $(head -c 300 "$TMP/err")" $?
[ -s "$TMP/out" ]
check "probe --devices prints something" $?
"$BIN" probe --devices --json > "$TMP/devs" 2> "$TMP/err"
check "probe --devices --json rc=$?" $?
jq -e '.devices | type == "array"' "$TMP/devs" > /dev/null
check "probe --devices --json: a devices array: $(head -c 300 "$TMP/devs")" $?
jq -e '(.devices | length) > 0 or (.error | type == "string")' "$TMP/devs" > /dev/null
check "no devices: the reason is given" $?
jq -e 'all(.devices[]; (keys | sort) == ["driver", "index", "name", "software", "type",
    "usable", "vendor_id", "vram_bytes", "why"])' "$TMP/devs" > /dev/null
check "each device has the documented keys" $?

# probe MODEL: the device it got (--json too); auto picks no software device
"$BIN" probe "$MODEL" --device cpu --json > "$TMP/probe" 2> "$TMP/err"
check "probe --device cpu rc=$? $(head -c 300 "$TMP/err")" $?
jq -e '.device == "cpu" and .gpu_layers == 0 and .device_bytes == 0' "$TMP/probe" > /dev/null
check "probe --json: device cpu, no layers or bytes on a GPU" $?
"$BIN" probe "$MODEL" --device cpu | grep -q "^device  *cpu$"
check "probe prints the device" $?
if jq -e 'any(.devices[]; .usable and (.software | not))' "$TMP/devs" > /dev/null; then
    echo "note: a hardware GPU is here: auto may use it, its CPU check is skipped"
else
    "$BIN" probe "$MODEL" --device auto --json > "$TMP/probe" 2> "$TMP/err"
    check "probe --device auto rc=$? $(head -c 300 "$TMP/err")" $?
    jq -e '.device == "cpu" and .gpu_layers == 0' "$TMP/probe" > /dev/null
    check "auto without a hardware GPU runs on the CPU: $(jq -c .device "$TMP/probe")" $?
    gen --device auto > "$TMP/auto" 2> /dev/null
    cmp -s "$TMP/cpu" "$TMP/auto"
    check "auto gives the CPU's text" $?
fi

# bench reports the device
"$BIN" bench "$MODEL" -p 8 -n 4 -r 1 -t 1 --device cpu --json > "$TMP/bench" 2> "$TMP/err"
check "bench --device cpu rc=$? $(head -c 300 "$TMP/err")" $?
jq -e '.device == "cpu" and .gpu_layers == 0' "$TMP/bench" > /dev/null
check "bench --json reports the device" $?
"$BIN" bench "$MODEL" -p 8 -n 4 -r 1 -t 1 --device cpu | grep -q "^device cpu"
check "bench's table reports the device" $?

# serve: a bad --device fails at start; /api/ps says size_vram (0 on the CPU); a device that
# is not there fails the request that loads the model, naming it
"$BIN" serve --bind auto --model "$MODEL" --device tpu > /dev/null 2> "$TMP/err"
rc=$?
check "serve --device tpu fails at start (rc=$rc)" "$([ "$rc" -eq 1 ]; echo $?)"
grep -q "'tpu'" "$TMP/err"
check "serve's error names the device: $(head -c 300 "$TMP/err")" $?
serve() { # out, args...: starts a server; its URL in $URL, its pid in $SERVER
    local out=$1
    shift
    "$BIN" serve --bind auto --model "$MODEL" --threads 1 "$@" > "$out" 2> "$out.err" &
    SERVER=$!
    URL=
    for _ in $(seq 100); do
        URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$out" | head -1)
        [ -n "$URL" ] && break
        sleep 0.1
    done
    [ -n "$URL" ]
}
stop() { kill "$SERVER" 2> /dev/null && wait "$SERVER" 2> /dev/null; }
name=docs-llama-30m-q4_k_m
if command -v curl > /dev/null; then
    if serve "$TMP/s1" --device cpu; then
        curl -sf "$URL/api/generate" -d "{\"model\":\"$name\",\"prompt\":\"Hi\",\"stream\":false,
            \"options\":{\"num_predict\":2}}" > /dev/null
        check "a generation on a --device cpu server" $?
        curl -sf "$URL/api/ps" > "$TMP/ps"
        jq -e '.models | length == 1 and .[0].size_vram == 0 and .[0].size > 0' "$TMP/ps" \
            > /dev/null
        check "/api/ps: size_vram 0 on the CPU: $(head -c 300 "$TMP/ps")" $?
    else
        check "serve --device cpu starts: $(head -c 300 "$TMP/s1.err")" 1
    fi
    stop
    if serve "$TMP/s2" --device vulkan:63; then
        curl -s "$URL/v1/completions" -d "{\"model\":\"$name\",\"prompt\":\"Hi\",
            \"max_tokens\":2}" > "$TMP/resp"
        jq -e '.error.message | test("vulkan:63")' "$TMP/resp" > /dev/null
        check "a request on a vulkan:63 server fails naming it: $(head -c 300 "$TMP/resp")" $?
    else
        check "serve --device vulkan:63 starts (models load on use): $(head -c 300 \
            "$TMP/s2.err")" 1
    fi
    stop
fi

echo "device: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
