#!/usr/bin/env python3
"""Regenerates the seed corpora in tests/fuzz/corpus/ from real inputs: the chat templates,
vocabularies and PEFT adapters of the shared test data and the request bodies and model outputs
of the unit tests. Hand-written seeds (and regress-* files) are kept; files named seed-* are
rewritten. Usage: python3 tests/fuzz/seeds.py [TESTDATA] (default ../shared/testdata)."""
import json, os, re, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(SRC, '..', 'shared', 'testdata')


def out(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed-' + name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def c_strings(path):
    """Adjacent C string literals joined and unescaped, in file order."""
    text = open(path, encoding='utf-8').read()
    lit = r'"(?:[^"\\\n]|\\.)*"'
    for m in re.finditer(r'(%s(?:\s*%s)*)' % (lit, lit), text):
        parts = re.findall(lit, m.group(1))
        s = ''.join(p[1:-1] for p in parts)
        yield bytes(s, 'utf-8').decode('unicode_escape').encode('latin-1').decode('utf-8', 'replace')


# ---- jinja: every template with a plain and a tool conversation ----
exp = json.load(open(os.path.join(DATA, 'templates', 'expected.json')))
tools = json.load(open(os.path.join(SRC, 'tests', 'chat', 'tool_cases.json')))['conversations']
convs = [exp['conversations']['system_multiturn'], next(iter(tools.values()))]
for fn in sorted(os.listdir(os.path.join(DATA, 'templates'))):
    if not fn.endswith('.jinja'):
        continue
    tpl = open(os.path.join(DATA, 'templates', fn), encoding='utf-8').read()
    for i, c in enumerate(convs):
        out('jinja', '%s-%d' % (fn[:-6], i), tpl + '\0' + json.dumps(c, ensure_ascii=False))

# ---- tokenizer: the vocab test strings through every vocabulary, three option sets ----
vocabs = sorted(f for f in os.listdir(os.path.join(DATA, 'vocab')) if f.endswith('.gguf'))
inp = open(os.path.join(DATA, 'vocab', 'ggml-vocab-llama-spm.gguf.inp'), 'rb').read()
texts = inp.split(b'\n__ggml_vocab_test__\n')[:-1]
picks = [texts[i] for i in (1, 5, 12, 20, 30, len(texts) - 1) if i < len(texts)]
specials = b'<s>Hi</s><|im_start|>user\n<|im_end|><|endoftext|><|eot_id|>\xe2\x96\x81x'
for vi, v in enumerate(vocabs):
    name = v[len('ggml-vocab-'):-len('.gguf')]
    for k, t in enumerate(picks):
        out('tokenizer', '%s-%d' % (name, k), bytes([vi, 0]) + t)
    out('tokenizer', '%s-special' % name, bytes([vi, 7]) + specials)
    out('tokenizer', '%s-invalid' % name, bytes([vi, 0]) + b'ok \xff\xc3 \xe2\x82 \xf0\x9f\x98')

# ---- wordpiece: the vocab test strings, alone (four option sets) and as pairs (both forms) ----
bert = open(os.path.join(DATA, 'vocab', 'ggml-vocab-bert-bge.gguf.inp'), 'rb').read()
btexts = bert.split(b'\n__ggml_vocab_test__\n')[:-1]
for k, i in enumerate((1, 12, 20, 30, 33, len(btexts) - 1)):
    if i < len(btexts):
        out('wordpiece', '%d' % k, bytes([k % 4, 0]) + btexts[i])
        out('wordpiece', 'pair-%d' % k, bytes([4 | (k % 2) * 8, 100]) + btexts[i])
out('wordpiece', 'special', bytes([3, 0]) + b'[CLS] Caf\xc3\xa9 [MASK]\xe6\x9d\xb1\xe4\xba\xac[SEP]x')
out('wordpiece', 'invalid', bytes([0, 0]) + b'ok \xff\xc3 \xe2\x82 a\xcc\x81 \x01\xe2\x80\x8b')

# ---- unigram: the ALBERT test vocabulary's strings (tests/tokenizer/data) ----
uinp = open(os.path.join(SRC, 'tests', 'tokenizer', 'data', 'albert-unigram.gguf.inp'), 'rb').read()
utexts = uinp.split(b'\n__ggml_vocab_test__\n')[:-1]
for k, i in enumerate((1, 12, 20, 33, 45, 46, 47, 48, 49, 50, 51, 52, 55)):
    out('unigram', '%d' % k, bytes([k % 4]) + utexts[i])
out('unigram', 'invalid', bytes([0]) + b'ok \xff\xc3 \xe2\x82 \xf0\x9f\x98 \xc0\x80 \xed\xa0\x80')
out('unigram', 'special', bytes([3]) + b'<unk><unk>[CLS]x(y)[MASK]\xe2\x80\x93<pad>')

# ---- safetensors and PEFT adapters ----
for d in sorted(os.listdir(os.path.join(DATA, 'lora'))):
    p = os.path.join(DATA, 'lora', d)
    if not d.startswith('peft-'):
        continue
    st = open(os.path.join(p, 'adapter_model.safetensors'), 'rb').read()
    cfg = open(os.path.join(p, 'adapter_config.json'), 'rb').read()
    out('safetensors', d, st)
    base = 1 if 'qwen2' in d else 0
    out('lora_peft', d, bytes([base]) + cfg + b'\n@@safetensors@@\n' + st)

# ---- server requests: every JSON body in the request and job unit tests, for every API ----
bodies = []
for t in ('test_request.c', 'test_job.c', 'test_toolcall.c'):
    p = os.path.join(SRC, 'tests', 'server', t)
    if os.path.exists(p):
        bodies += [s for s in c_strings(p) if s.startswith('{') and len(s) > 8]
for i, b in enumerate(dict.fromkeys(bodies)):
    for api in range(3):
        out('server_request', '%03d-%d' % (i, api), bytes([api]) + b.encode())

# ---- tool calls: the model outputs of the tool-call unit test, in every format ----
p = os.path.join(SRC, 'tests', 'server', 'test_toolcall.c')
outs = [s for s in c_strings(p) if any(k in s for k in ('<tool_call>', '[TOOL_CALLS]', '"name"'))]
for i, s in enumerate(dict.fromkeys(outs)):
    out('server_toolcall', '%03d' % i, bytes([i % 4 | 4]) + s.encode())


# ---- WebSocket: client frames of a /ws/generate session ----
def frame(op, payload, fin=True, mask=b'\x37\xfa\x21\x3d'):
    n = len(payload)
    h = bytes([(0x80 if fin else 0) | op])
    if n < 126:
        h += bytes([0x80 | n])
    elif n < 65536:
        h += bytes([0x80 | 126]) + struct.pack('>H', n)
    else:
        h += bytes([0x80 | 127]) + struct.pack('>Q', n)
    return h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


req = b'{"model":"docs-llama-30m","prompt":"Hello","max_tokens":8,"stream":true}'
out('server_ws', 'request', b'\x03' + frame(1, req))
out('server_ws', 'fragmented', b'\x03' + frame(1, req[:10], fin=False) + frame(9, b'ping') +
    frame(0, req[10:]))
out('server_ws', 'close', b'\x03' + frame(1, req) + frame(10, b'') + frame(8, b'\x03\xe8bye'))
out('server_ws', 'len126', b'\x01' + frame(1, b'{"prompt":"' + b'a' * 300 + b'"}'))
out('server_ws', 'len127', b'\x02' + frame(2, bytes(range(256)) * 260))
out('server_ws', 'unmasked', b'\x03' + b'\x81\x05hello')


# ---- small hand-made safetensors/PEFT seeds: headers dominate, so mutations reach the parser ----
def safetensors(tensors, meta=None):
    """tensors: [(name, dtype, shape)]; data is a counting byte pattern."""
    size = {'F32': 4, 'F16': 2, 'BF16': 2}
    hdr, off, data = {}, 0, b''
    if meta:
        hdr['__metadata__'] = meta
    for name, dt, shape in tensors:
        n = size[dt]
        for d in shape:
            n *= d
        hdr[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [off, off + n]}
        data += bytes((off + i) % 251 for i in range(n))
        off += n
    h = json.dumps(hdr, separators=(',', ':')).encode()
    return struct.pack('<Q', len(h)) + h + data


out('safetensors', 'small', safetensors([('a', 'F32', [2, 2]), ('b', 'F16', [3]),
                                         ('c', 'BF16', [1, 1, 2])], {'format': 'pt'}))
out('safetensors', 'scalar-empty', safetensors([('s', 'F32', []), ('e', 'F16', [0, 4])]))
P = 'base_model.model.model.layers.%d.%s.lora_%s.weight'
small = safetensors([(P % (0, 'self_attn.q_proj', 'A'), 'F32', [1, 32]),
                     (P % (0, 'self_attn.q_proj', 'B'), 'F32', [32, 1]),
                     (P % (1, 'mlp.down_proj', 'A'), 'F16', [1, 96]),
                     (P % (1, 'mlp.down_proj', 'B'), 'F16', [32, 1])])
cfg = json.dumps({'peft_type': 'LORA', 'r': 1, 'lora_alpha': 2.0, 'use_rslora': False,
                  'target_modules': ['q_proj', 'down_proj'], 'bias': 'none'}).encode()
out('lora_peft', 'small-llama', b'\0' + cfg + b'\n@@safetensors@@\n' + small)
out('lora_peft', 'small-qwen2', b'\1' + cfg + b'\n@@safetensors@@\n' + small)
