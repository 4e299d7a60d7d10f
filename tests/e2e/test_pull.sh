#!/usr/bin/env bash
# `shimmy pull` against a Hub-shaped server on 127.0.0.1 (tests/e2e/hub_server.py, which pages
# its listings and redirects downloads to a CDN path as the Hub does): quant
# selection (default, exact, lower case, unknown -> the quants listed), a split model (every
# part), an explicit file, an interrupted transfer resumed with a Range request, a wrong SHA-256
# refused with nothing left visible, a 404 and a gated 401 explained, HF_TOKEN, the network
# down, a write failure (file size limit) leaving nothing visible; then `shimmy list` finds the
# pulled models in the Hugging Face cache layout (HF_HOME).
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN must point to the shimmy binary}
M=${SHIMMY_TESTDATA:-}/models
HERE=$(cd "$(dirname "$0")" && pwd)
for f in tiny-llama-spm-Q4_0.gguf tiny-llama-spm-Q4_1.gguf tiny-llama-spm-Q5_0.gguf \
         tiny-llama-spm-Q8_0.gguf tiny-llama-spm-F16.gguf; do
    [ -f "$M/$f" ] || { echo "skip: $M/$f is absent"; exit 77; }
done
command -v python3 >/dev/null || { echo "skip: python3 is needed"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/shimmy-pull.XXXXXX")
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail=0
check() { if ! "$@"; then echo "FAILED: $*"; fail=1; fi; }
has() { grep -q -- "$2" "$1" || { echo "--- $1:"; cat "$1"; return 1; }; }

cat > "$T/spec.json" <<EOF
{"token": "hf_secret",
 "cut": {"Tiny-Llama-Q8_0.gguf": 700000},
 "repos": {
  "test/Tiny-Llama-GGUF": {"files": {
     "Tiny-Llama-Q4_0.gguf": "$M/tiny-llama-spm-Q4_0.gguf",
     "Tiny-Llama-Q8_0.gguf": "$M/tiny-llama-spm-Q8_0.gguf",
     "F16/Tiny-Llama-F16-00001-of-00002.gguf": "$M/tiny-llama-spm-F16.gguf",
     "F16/Tiny-Llama-F16-00002-of-00002.gguf": "$M/tiny-llama-spm-Q4_1.gguf",
     "README.md": "$M/README.md"}},
  "test/Bad-GGUF": {"files": {"Bad-Q4_0.gguf": "$M/tiny-llama-spm-Q4_0.gguf",
                              "NOTES.md": "$M/README.md"},
                    "bad_sha": ["Bad-Q4_0.gguf", "NOTES.md"]},
  "test/Gated-GGUF": {"gated": true,
                      "files": {"Gated-Q4_0.gguf": "$M/tiny-llama-spm-Q5_0.gguf"}}}}
EOF
python3 "$HERE/hub_server.py" "$T/spec.json" "$T/requests.log" > "$T/port" 2> "$T/server.err" &
SRV=$!
for _ in $(seq 300); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || { echo "FAILED: the hub server did not start"; cat "$T/server.err"; exit 1; }
export HF_ENDPOINT="http://127.0.0.1:$(cat "$T/port")" HF_HOME="$T/hf" HOME="$T/home"
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_HUB_CACHE
mkdir -p "$HOME"
R="$HF_HOME/hub/models--test--Tiny-Llama-GGUF"
SNAP="$R/snapshots/0123456789abcdef0123456789abcdef01234567"
pull() { "$BIN" pull "$@" > "$T/out" 2> "$T/err"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# 1. no tag: Q4_K_M is absent, so Q4_0 (llama.cpp's order); lands in the HF cache layout
check pull test/Tiny-Llama-GGUF
check test -L "$SNAP/Tiny-Llama-Q4_0.gguf"
check test "$(readlink "$SNAP/Tiny-Llama-Q4_0.gguf")" = \
    "../../blobs/$(sha "$M/tiny-llama-spm-Q4_0.gguf")"
check cmp "$SNAP/Tiny-Llama-Q4_0.gguf" "$M/tiny-llama-spm-Q4_0.gguf"
check test "$(cat "$R/refs/main")" = 0123456789abcdef0123456789abcdef01234567
check has "$T/err" "pull: Tiny-Llama-Q4_0.gguf: done" # plain progress lines off a terminal
check grep -q "tree/main?recursive=true&cursor=3 " "$T/requests.log" # the listing's 2nd page
check test ! -e "$SNAP/Tiny-Llama-Q8_0.gguf"

# 2. an interrupted transfer (the server cuts the first download of Q8_0 at 700000 bytes):
# nothing visible, the partial blob kept; the second pull resumes with a Range request
Q8=$(sha "$M/tiny-llama-spm-Q8_0.gguf")
pull test/Tiny-Llama-GGUF:q8_0 # lower case matches too
check test $? -eq 1
check has "$T/err" "pull again to resume"
check test ! -e "$SNAP/Tiny-Llama-Q8_0.gguf"
check test ! -e "$R/blobs/$Q8"
check test "$(stat -c %s "$R/blobs/$Q8.incomplete")" = 700000
check pull test/Tiny-Llama-GGUF:Q8_0
# the last line is the name discovery gives it, which `shimmy run` takes
check test "$(tail -n1 "$T/out")" = "test/tiny-llama-gguf:q8_0"
check grep -q "GET /cdn/$Q8 range=bytes=700000-" "$T/requests.log"
check cmp "$SNAP/Tiny-Llama-Q8_0.gguf" "$M/tiny-llama-spm-Q8_0.gguf"
check test ! -e "$R/blobs/$Q8.incomplete"

# 3. a split model: every part, in its folder
check pull test/Tiny-Llama-GGUF:F16
check cmp "$SNAP/F16/Tiny-Llama-F16-00001-of-00002.gguf" "$M/tiny-llama-spm-F16.gguf"
check cmp "$SNAP/F16/Tiny-Llama-F16-00002-of-00002.gguf" "$M/tiny-llama-spm-Q4_1.gguf"
check test "$(readlink "$SNAP/F16/Tiny-Llama-F16-00001-of-00002.gguf")" = \
    "../../../blobs/$(sha "$M/tiny-llama-spm-F16.gguf")"

# 4. an explicit file that is already there: no download
n=$(grep -c "GET /cdn/" "$T/requests.log")
check pull test/Tiny-Llama-GGUF/Tiny-Llama-Q4_0.gguf
check test "$(grep -c "GET /cdn/" "$T/requests.log")" = "$n"

# a file not in LFS: its blob is named by its git id, as huggingface_hub names it
check pull test/Tiny-Llama-GGUF/README.md
check cmp "$SNAP/README.md" "$M/README.md"
GIT_OID=$(python3 -c "import hashlib,sys; d=open(sys.argv[1],'rb').read(); print(hashlib.sha1(b'blob %d\0' % len(d) + d).hexdigest())" "$M/README.md")
check test "$(readlink "$SNAP/README.md")" = "../../blobs/$GIT_OID"

# 5. no such quant: the quants that exist are listed
pull test/Tiny-Llama-GGUF:Q5_K_M
check test $? -eq 1
check has "$T/err" "no Q5_K_M file; its quants are: Q4_0, Q8_0, F16"

# 6. a wrong SHA-256: refused, nothing left (no blob, no partial, no snapshot)
pull test/Bad-GGUF:Q4_0
check test $? -eq 1
check has "$T/err" "is corrupt: its SHA-256 is $(sha "$M/tiny-llama-spm-Q4_0.gguf")"
pull test/Bad-GGUF/NOTES.md # a file outside LFS is checked against its git blob id
check test $? -eq 1
check has "$T/err" "NOTES.md is corrupt: its git blob id is"
check test -z "$(find "$HF_HOME/hub/models--test--Bad-GGUF" -type f -o -type l)"

# 7. no such repository (404), a gated one (401) without and with HF_TOKEN
pull test/Nothing-GGUF
check test $? -eq 1
check has "$T/err" "no repository test/Nothing-GGUF"
pull test/Gated-GGUF
check test $? -eq 1
check has "$T/err" "test/Gated-GGUF is gated"
check has "$T/err" "HF_TOKEN"
HF_TOKEN=hf_wrong pull test/Gated-GGUF
check test $? -eq 1
HF_TOKEN=hf_secret pull test/Gated-GGUF
check test $? -eq 0
check test -L "$HF_HOME/hub/models--test--Gated-GGUF/snapshots/0123456789abcdef0123456789abcdef01234567/Gated-Q4_0.gguf"

# 8. bad arguments and the network down
pull not-a-repo
check test $? -eq 2
HF_ENDPOINT=http://127.0.0.1:9 pull test/Tiny-Llama-GGUF
check test $? -eq 1
check has "$T/err" "cannot reach"

# 9. a write failure (a 500 kB file size limit stands in for a full disk): nothing visible
rm -rf "$T/hf2"
(ulimit -f 500; HF_HOME="$T/hf2" "$BIN" pull test/Tiny-Llama-GGUF:Q8_0 > "$T/out" 2> "$T/err")
check test $? -eq 1
check has "$T/err" "File too large"
check test -z "$(find "$T/hf2" -path '*snapshots*' -type l)"

# 10. discovery finds what was pulled, with no configuration
"$BIN" list --json > "$T/list.json" 2> "$T/list.err"
check python3 - "$T/list.json" "$HF_HOME/hub" <<'EOF'
import json, sys
models = json.load(open(sys.argv[1]))
models = models["models"] if isinstance(models, dict) else models
hf = [m for m in models if m.get("source") == "hf"]
paths = sorted(m["path"].split("/snapshots/")[1] for m in hf if sys.argv[2] in m["path"])
want = ["0123456789abcdef0123456789abcdef01234567/F16/Tiny-Llama-F16-00001-of-00002.gguf",
        "0123456789abcdef0123456789abcdef01234567/Gated-Q4_0.gguf",
        "0123456789abcdef0123456789abcdef01234567/Tiny-Llama-Q4_0.gguf",
        "0123456789abcdef0123456789abcdef01234567/Tiny-Llama-Q8_0.gguf"]
if paths != want:
    print("listed:", json.dumps(hf, indent=1))
    sys.exit(1)
EOF
echo "What is git?" | "$BIN" run test/tiny-llama-gguf:q8_0 -n 4 --seed 1 > "$T/out" 2> "$T/err"
check test $? -eq 0

exit $fail
