#!/usr/bin/env python3
"""Writes a vocab-only GGUF ("t5" = SentencePiece Unigram) from a SentencePiece .model file, with
the tokenizer.* keys llama.cpp's converter writes for T5-style models (tokens, scores, types,
add_space_prefix, remove_extra_whitespaces, precompiled_charsmap), plus optional special ids.

    python3 tools/spm_to_gguf.py MODEL.model OUT.gguf NAME [key=id ...]

Only the standard library: the protobuf is read by hand (ModelProto fields 1 pieces, 2 trainer
spec, 3 normalizer spec)."""
import struct, sys


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        f, t = k >> 3, k & 7
        if t == 0:
            v, i = varint(b, i)
        elif t == 1:
            v, i = b[i:i + 8], i + 8
        elif t == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif t == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError('wire type %d' % t)
        yield f, v


def load(path):
    pieces, trainer, norm = [], {}, {}
    for f, v in fields(open(path, 'rb').read()):
        if f == 1:
            p = {1: b'', 2: b'\0\0\0\0', 3: 1}
            p.update(dict(fields(v)))
            pieces.append((p[1], struct.unpack('<f', p[2])[0], p[3]))
        elif f == 2:
            trainer.update(dict(fields(v)))
        elif f == 3:
            norm.update(dict(fields(v)))
    if trainer.get(3, 1) != 1:
        sys.exit('%s: not a Unigram model (model_type %d)' % (path, trainer[3]))
    return pieces, trainer, norm


def gguf(out, kvs):
    def s(x):
        x = x if isinstance(x, bytes) else x.encode()
        return struct.pack('<Q', len(x)) + x
    body = b''
    for key, (t, v) in kvs.items():
        body += s(key) + struct.pack('<I', t)
        if t == 8:
            body += s(v)
        elif t == 7:
            body += struct.pack('<B', v)
        elif t == 4:
            body += struct.pack('<I', v)
        elif t == 9:
            et, items = v
            body += struct.pack('<IQ', et, len(items))
            if et == 8:
                body += b''.join(s(x) for x in items)
            elif et == 0:
                body += bytes(items)
            else:
                body += struct.pack('<%d%s' % (len(items), {5: 'i', 6: 'f'}[et]), *items)
    head = b'GGUF' + struct.pack('<IQQ', 3, 0, len(kvs))
    data = head + body
    data += b'\0' * (-len(data) % 32)
    open(out, 'wb').write(data)


def main():
    pieces, trainer, norm = load(sys.argv[1])
    kvs = {
        'general.architecture': (8, 't5'),
        'general.name': (8, sys.argv[3]),
        'tokenizer.ggml.model': (8, 't5'),
        'tokenizer.ggml.pre': (8, 'default'),
        'tokenizer.ggml.tokens': (9, (8, [p[0] for p in pieces])),
        'tokenizer.ggml.scores': (9, (6, [p[1] for p in pieces])),
        'tokenizer.ggml.token_type': (9, (5, [p[2] for p in pieces])),
        # proto defaults: add_dummy_prefix and remove_extra_whitespaces are true
        'tokenizer.ggml.add_space_prefix': (7, norm.get(3, 1)),
        'tokenizer.ggml.remove_extra_whitespaces': (7, norm.get(4, 1)),
    }
    if norm.get(2):
        kvs['tokenizer.ggml.precompiled_charsmap'] = (9, (0, list(norm[2])))
    for arg in sys.argv[4:]:
        k, v = arg.split('=')
        kvs['tokenizer.ggml.' + k] = (7, v == 'true') if k.startswith('add_') else (4, int(v))
    gguf(sys.argv[2], kvs)


main()
