#!/usr/bin/env bash
# `shimmy list --json` and `shimmy discover --json` over a home folder laid out like a real
# user's: a Hugging Face cache (snapshot symlinks into blobs), an Ollama store (manifests and
# sha256 blobs), LM Studio, ~/models with a split model, an adapter, a corrupt, a vocab-only and
# a non-GGUF file. The model files are copies of the shared test models.
set -u
BIN=${SHIMMY_BIN:?SHIMMY_BIN must point to the shimmy binary}
DATA=${SHIMMY_TESTDATA:-}
M=$DATA/models
for f in "$M/tiny-llama-spm-Q4_0.gguf" "$M/tiny-qwen2-Q4_0.gguf" "$M/tiny-llama-spm-Q8_0.gguf" \
         "$DATA/lora/lora-tiny-qwen2-r4.gguf" "$DATA/vocab/ggml-vocab-llama-spm.gguf"; do
    [ -f "$f" ] || { echo "skip: $f is absent"; exit 77; }
done
command -v python3 >/dev/null || { echo "skip: python3 is needed to check JSON"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/shimmy-registry.XXXXXX")
trap 'rm -rf "$T"' EXIT
H=$T/home
fail=0
check() { if ! "$@"; then echo "FAILED: $*"; fail=1; fi; }

# ~/models: a model, a split model (two GGUF parts), an adapter beside a qwen2 base, junk
mkdir -p "$H/models/split" "$H/models/qwen"
cp "$M/tiny-llama-spm-Q4_0.gguf" "$H/models/Tiny-Llama.gguf"
cp "$M/tiny-llama-spm-Q8_0.gguf" "$H/models/split/big-00001-of-00002.gguf"
cp "$M/tiny-llama-spm-Q4_0.gguf" "$H/models/split/big-00002-of-00002.gguf"
cp "$M/tiny-qwen2-Q4_0.gguf" "$H/models/qwen/qwen-base.gguf"
cp "$DATA/lora/lora-tiny-qwen2-r4.gguf" "$H/models/qwen/qwen-lora.gguf"
cp "$DATA/vocab/ggml-vocab-llama-spm.gguf" "$H/models/vocab.gguf"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\177junkjunkjunkjunk' > "$H/models/corrupt.gguf"
echo "not a model" > "$H/models/notes.gguf"

# Hugging Face cache
R=$H/.cache/huggingface/hub/models--TheOrg--Tiny-Chat-GGUF
mkdir -p "$R/blobs" "$R/snapshots/0123abcd" "$R/refs"
cp "$M/tiny-qwen2-Q4_0.gguf" "$R/blobs/5f1e2d"
ln -s ../../blobs/5f1e2d "$R/snapshots/0123abcd/tiny-chat-Q4_0.gguf"
echo 0123abcd > "$R/refs/main"

# Ollama store: model blob, template blob, manifest
O=$H/.ollama/models
mkdir -p "$O/blobs" "$O/manifests/registry.ollama.ai/library/tinyllama"
mhex=$(printf '%064d' 7)
thex=$(printf '%064d' 8)
cp "$M/tiny-llama-spm-Q8_0.gguf" "$O/blobs/sha256-$mhex"
echo '[INST] {{ .Prompt }} [/INST]' > "$O/blobs/sha256-$thex"
cat > "$O/manifests/registry.ollama.ai/library/tinyllama/1b" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
 "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:$thex","size":1},
 "layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:$mhex","size":1},
           {"mediaType":"application/vnd.ollama.image.template","digest":"sha256:$thex","size":1}]}
EOF

# LM Studio
mkdir -p "$H/.lmstudio/models/lmstudio-community/Tiny-GGUF"
cp "$M/tiny-llama-spm-Q4_0.gguf" "$H/.lmstudio/models/lmstudio-community/Tiny-GGUF/lms-tiny-Q4_0.gguf"

run() {
    (cd "$T" && env -u SHIMMY_BASE_GGUF -u SHIMMY_LORA_GGUF -u SHIMMY_MODEL_PATHS -u HF_HOME \
        -u HF_HUB_CACHE -u OLLAMA_MODELS HOME="$H" "$BIN" "$@")
}

check run list --json > "$T/list.json"
check python3 - "$T/list.json" "$H" <<'EOF'
import json, os, sys
doc = json.load(open(sys.argv[1]))
home = sys.argv[2]
# paired adapters are models of their own, marked by "parent"
models = {m["name"]: m for m in doc["models"] if "parent" not in m}
adapter_models = {m["name"]: m for m in doc["models"] if "parent" in m}
def need(cond, what):
    if not cond:
        print("list:", what); sys.exit(1)
for m in doc["models"]:
    for key in ("name", "path", "size", "architecture", "parameters", "quant", "context_length",
                "template", "source", "adapters"):
        need(key in m, f"{m.get('name')} lacks {key}")
expected = {
    "tiny-llama": ("dir", "llama", "Q4_0", "llama2"),
    "big": ("dir", "llama", "Q8_0", "llama2"),
    "qwen-base": ("dir", "qwen2", "Q4_0", "chatml"),
    "theorg/tiny-chat-gguf:q4_0": ("hf", "qwen2", "Q4_0", "chatml"),
    "tinyllama:1b": ("ollama", "llama", "Q8_0", "llama2"),
    "lms-tiny-q4_0": ("lmstudio", "llama", "Q4_0", "llama2"),
}
need(set(models) == set(expected), f"names {sorted(models)}")
for name, (src, arch, quant, tmpl) in expected.items():
    m = models[name]
    need((m["source"], m["architecture"], m["quant"], m["template"]) == (src, arch, quant, tmpl),
         f"{name}: {m}")
    need(os.path.isfile(m["path"]), f"{name}: path {m['path']} is not a file")
    need(m["context_length"] == 256, f"{name}: context {m['context_length']}")
big = models["big"]
parts = [os.path.join(home, "models/split", f"big-0000{i}-of-00002.gguf") for i in (1, 2)]
need(big["path"] == parts[0], f"split path {big['path']}")
need(big["size"] == sum(os.path.getsize(p) for p in parts), "split size is not the sum of parts")
need(models["theorg/tiny-chat-gguf:q4_0"]["path"].endswith("/snapshots/0123abcd/tiny-chat-Q4_0.gguf"),
     "hf path")
need(models["tinyllama:1b"]["path"].endswith("/blobs/sha256-" + "0" * 63 + "7"), "ollama path")
ad = models["qwen-base"]["adapters"]
need(len(ad) == 1 and ad[0]["name"] == "qwen-lora" and ad[0]["path"].endswith("qwen/qwen-lora.gguf"),
     f"adapters {ad}")
need(all(not m["adapters"] for n, m in models.items() if n != "qwen-base"), "stray adapters")
need(set(adapter_models) == {"qwen-lora"}, f"adapter models {sorted(adapter_models)}")
am = adapter_models["qwen-lora"]
need(am["parent"] == "qwen-base" and am["architecture"] == "qwen2" and
     am["path"].endswith("qwen/qwen-lora.gguf") and am["adapters"] == [], f"adapter model {am}")
EOF

check run discover --json > "$T/discover.json"
check python3 - "$T/discover.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
def need(cond, what):
    if not cond:
        print("discover:", what); sys.exit(1)
skipped = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in doc["skipped"]}
need("vocab-only" in skipped.get("vocab.gguf", ""), f"vocab: {skipped}")
need("corrupt" in skipped.get("corrupt.gguf", ""), f"corrupt: {skipped}")
need("not a GGUF" in skipped.get("notes.gguf", ""), f"notes: {skipped}")
need(len(doc["models"]) == 6, "model count")
need(any(r.startswith("ollama ") for r in doc["roots"]), f"roots {doc['roots']}")
origin = {m["name"]: m["origin"] for m in doc["models"]}
need(origin["tinyllama:1b"].startswith("ollama manifest ")
     and origin["tinyllama:1b"].endswith("/manifests/registry.ollama.ai/library/tinyllama/1b"),
     f"ollama origin {origin['tinyllama:1b']}")
ad = [a for a in doc["adapters"] if a["name"] == "qwen-lora"]
need(ad and ad[0]["base"] == "qwen-base" and ad[0]["format"] == "gguf", f"adapters {doc['adapters']}")
EOF

# the warning about the corrupt file names it
run list > "$T/list.txt" 2> "$T/list.err"
check grep -q "corrupt.gguf" "$T/list.err"
check grep -q "^tinyllama:1b " "$T/list.txt"

# sources can be switched off
SHIMMY_NO_OLLAMA=1 run list --json > "$T/noollama.json"
check python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(any(m["source"]=="ollama" for m in d["models"]))' "$T/noollama.json"

# --model-dirs adds a folder
mkdir -p "$T/extra"
cp "$M/tiny-llama-spm-Q4_0.gguf" "$T/extra/extra-one.gguf"
run list --json --model-dirs "$T/extra" > "$T/extra.json"
check grep -q '"extra-one"' "$T/extra.json"

# MODEL arguments accept registry names (tokenize resolves its MODEL like every model command);
# unknown names point to `shimmy list` with close matches. Exit 2 means the command is not built
# in this tree yet: nothing was resolved, so there is nothing to check.
run tokenize tinyllama:1b --text "Hello world" --json > "$T/tok.txt" 2>&1
code=$?
if [ $code -ne 2 ]; then
    check test $code -eq 0
    check grep -q "15043" "$T/tok.txt" # "▁Hello" in the llama SPM vocabulary of the copied model
fi
run tokenize tinyllam:1b --text hi > "$T/unknown.txt" 2>&1
code=$?
if [ $code -ne 2 ]; then
    check test $code -eq 1
    check grep -q "shimmy list" "$T/unknown.txt"
    check grep -q "tinyllama:1b" "$T/unknown.txt"
fi

# probe loads a registry name through the manager and the engine and runs one token
run probe tinyllama:1b --json > "$T/probe.json" 2> "$T/probe.err"
code=$?
if [ $code -ne 2 ]; then
    check test $code -eq 0
    check python3 - "$T/probe.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
ok = (p["name"] == "tinyllama:1b" and p["architecture"] == "llama" and p["quant"] == "Q8_0"
      and p["context_length"] == 256 and p["template"] == "llama2" and p["load_ms"] > 0
      and 0 <= p["token"] < 32000 and p["prompt_tokens"] >= 1 and p["weight_bytes"] > 0)
if not ok:
    print("probe:", p); sys.exit(1)
EOF
fi
# an adapter by its registry name, and an adapter for another architecture
run probe qwen-base --json --lora qwen-lora > "$T/probe-lora.json" 2> "$T/probe-lora.err"
code=$?
if [ $code -ne 2 ]; then
    check test $code -eq 0
    check python3 - "$T/probe-lora.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
ok = ([a["name"] for a in p["paired_adapters"]] == ["qwen-lora"]
      and len(p["adapters"]) == 1 and p["adapters"][0]["path"].endswith("/qwen/qwen-lora.gguf")
      and p["adapters"][0]["scale"] == 1.0 and p["architecture"] == "qwen2")
if not ok:
    print("probe --lora:", p); sys.exit(1)
EOF
    run probe tiny-llama --lora qwen-lora > "$T/probe-bad-lora.txt" 2>&1
    check test $? -eq 1
    check grep -q "architecture" "$T/probe-bad-lora.txt"
fi
run probe "$H/models/vocab.gguf" > "$T/probe-vocab.txt" 2>&1
check test $? -eq 1
check grep -q "vocab-only" "$T/probe-vocab.txt"

exit $fail
