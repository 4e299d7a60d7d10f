#!/usr/bin/env bash
# shimmy serve over raw sockets (python3 client): malformed HTTP, oversized and invalid bodies,
# idle clients, a client that disconnects mid-stream, 32 concurrent streaming clients, and the
# WebSocket endpoint. Exit 77 (skip) when the binary, python3 or the test models are missing.
set -euo pipefail
: "${SHIMMY_BIN:?SHIMMY_BIN must point at build/shimmy}"
: "${SHIMMY_TESTDATA:=/work/shared/testdata}"
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
[[ -x "$SHIMMY_BIN" ]] || { echo "SKIP: $SHIMMY_BIN missing"; exit 77; }
for m in tiny-llama-spm-Q8_0.gguf docs-llama-30m-Q4_K_M.gguf; do
  [[ -f "$SHIMMY_TESTDATA/models/$m" ]] || { echo "SKIP: test model $m missing"; exit 77; }
done
exec python3 - "$SHIMMY_BIN" "$SHIMMY_TESTDATA" <<'PY'
import base64, json, os, re, signal, socket, struct, subprocess, sys, tempfile, threading, time

BIN, DATA = sys.argv[1], sys.argv[2]
TINY, SLOW = 'tiny-llama-spm-q8_0', 'docs-llama-30m-q4_k_m'
EOS = 2  # </s>: banned where an answer must run long
passed = failed = 0

def check(cond, what):
    if not cond:
        raise AssertionError(what)

def case(fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f'ok   {fn.__name__}', flush=True)
    except Exception as e:  # report and keep going
        failed += 1
        print(f'FAIL {fn.__name__}: {type(e).__name__}: {e}', flush=True)

tmp = tempfile.mkdtemp(prefix='shimmy-raw-')
for f in ('tiny-llama-spm-Q8_0.gguf', 'docs-llama-30m-Q4_K_M.gguf'):
    os.symlink(os.path.join(DATA, 'models', f), os.path.join(tmp, f))
env = dict(os.environ)
for root in ('ENV', 'MODEL_PATHS', 'LOCAL', 'HOME', 'BASE_DIR', 'OLLAMA', 'HF', 'LMSTUDIO', 'DOWNLOADS'):
    env[f'SHIMMY_NO_{root}'] = '1'
proc = subprocess.Popen([BIN, 'serve', '--bind', 'auto', '--model-dirs', tmp, '--parallel', '4',
                         '--threads', '2', '--max-body', '65536', '--timeout', '2', '--queue', '64'],
                        stdout=subprocess.PIPE, env=env, text=True,
                        stderr=None if os.environ.get('SHIMMY_E2E_VERBOSE') else subprocess.DEVNULL)
try:
    line = proc.stdout.readline()
    m = re.search(r'listening on http://([\d.]+):(\d+)', line)
    if not m:
        print(f'server did not start: {line!r}')
        sys.exit(1)
    HOST, PORT = m.group(1), int(m.group(2))

    def connect(timeout=120):
        s = socket.create_connection((HOST, PORT), timeout=timeout)
        return s

    def recv_all(s):
        out = b''
        while True:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            out += d
        return out

    def request(method, path, body=b'', headers=None):
        s = connect()
        hdr = {'Host': f'{HOST}:{PORT}', 'Connection': 'close'}
        if body:
            hdr['Content-Type'] = 'application/json'
            hdr['Content-Length'] = str(len(body))
        hdr.update(headers or {})
        head = f'{method} {path} HTTP/1.1\r\n' + ''.join(f'{k}: {v}\r\n' for k, v in hdr.items()) + '\r\n'
        s.sendall(head.encode() + body)
        data = recv_all(s)
        s.close()
        return parse_response(data)

    def dechunk(body):
        out, i = b'', 0
        while True:
            j = body.index(b'\r\n', i)
            n = int(body[i:j].split(b';')[0], 16)
            if n == 0:
                return out
            out += body[j + 2:j + 2 + n]
            i = j + 2 + n + 2

    def parse_response(data):
        head, _, body = data.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (l.split(':', 1) for l in lines[1:] if ':' in l)}
        if headers.get('transfer-encoding', '').lower() == 'chunked':
            body = dechunk(body)
        return status, headers, body

    def health_ok():
        st, _, body = request('GET', '/health')
        return st == 200 and json.loads(body)['status'] == 'ok'

    def metric(name):
        _, _, body = request('GET', '/metrics')
        m = re.search(rf'^{name} (\S+)$', body.decode(), re.M)
        return float(m.group(1)) if m else None

    def chat_body(**kw):
        b = {'model': TINY, 'messages': [{'role': 'user', 'content': 'Tell me a story.'}],
             'temperature': 0, 'max_tokens': 32}
        b.update(kw)
        return json.dumps(b).encode()

    def sse_events(body):
        """Strict SSE framing: every event is one 'data: ' line followed by a blank line."""
        text = body.decode('utf-8')
        check(text.endswith('\n\n'), 'stream ends with a blank line')
        events = text[:-2].split('\n\n')
        out = []
        for e in events:
            check(e.startswith('data: ') and '\n' not in e, f'bad SSE event {e[:80]!r}')
            out.append(e[6:])
        check(out[-1] == '[DONE]', 'stream ends with [DONE]')
        return [json.loads(x) for x in out[:-1]]

    def streamed_text(events):
        return ''.join(c['choices'][0]['delta'].get('content', '') for c in events if c['choices'])

    def malformed_http():
        for junk in (b'GARBAGE\r\n\r\n', b'GET / HTTP/9.9\r\n\r\n', b'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n',
                     b'GET /health HTTP/1.1\r\nHost: x\r\n' + b'X-Long: ' + b'a' * 100000 + b'\r\n\r\n'):
            s = connect(10)
            try:
                s.sendall(junk)
                data = recv_all(s)
            except (BrokenPipeError, ConnectionResetError):
                data = b''
            s.close()
            if data:
                status = int(data.split(b' ')[1])
                check(400 <= status < 500 or status == 505, f'status {status} for {junk[:30]!r}')
        check(health_ok(), 'server still healthy after malformed HTTP')

    def oversized_bodies():
        # announced too large: refused before the body is sent
        s = connect()
        s.sendall(f'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n'.encode())
        st, _, body = parse_response(recv_all(s))
        s.close()
        check(st == 413, f'status {st}')
        check(json.loads(body)['error']['code'] == 'request_too_large', 'error code')
        # chunked upload that grows past the limit
        s = connect()
        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n')
        chunk = b'a' * 8192
        try:
            for _ in range(20):
                s.sendall(b'%x\r\n' % len(chunk) + chunk + b'\r\n')
            s.sendall(b'0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = recv_all(s)
        s.close()
        check(data.startswith(b'HTTP/1.1 413'), f'chunked: {data[:40]!r}')
        check(health_ok(), 'healthy after oversized bodies')

    def invalid_utf8_and_json():
        st, _, body = request('POST', '/v1/chat/completions', b'{"model":"' + TINY.encode() + b'","messages":[{"role":"user","content":"\xc3\x28"}]}')
        check(st == 400, f'invalid UTF-8: {st}')
        err = json.loads(body)['error']
        check(err['type'] == 'invalid_request_error' and err['code'] == 'invalid_json', f'{err}')
        st, _, body = request('POST', '/v1/chat/completions', b'{"model": "x", "messages": [}')
        check(st == 400 and 'JSON' in json.loads(body)['error']['message'], 'malformed JSON')
        st, _, body = request('POST', '/v1/chat/completions', b'"just a string"')
        check(st == 400, 'non-object body')
        st, _, body = request('POST', '/v1/chat/completions', b'{"model":"' + TINY.encode() + b'","messages":[{"role":"user","content":"a\\u0000b"}]}')
        check(st == 400, 'NUL in a string')

    def idle_client_is_dropped():
        s = connect(10)
        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n')  # never finishes
        t0 = time.time()
        data = recv_all(s)
        s.close()
        check(time.time() - t0 < 8, f'idle connection held {time.time() - t0:.1f}s (timeout 2s)')
        check(health_ok(), 'healthy after idle client')

    def disconnect_mid_stream():
        before = metric('shimmy_generations_cancelled_total') or 0
        s = connect()
        body = json.dumps({'model': SLOW, 'messages': [{'role': 'user', 'content': 'Hi'}], 'max_tokens': 960,
                           'stream': True, 'logit_bias': {str(EOS): -100}, 'temperature': 0}).encode()
        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
        got = b''
        while got.count(b'data: ') < 4:
            got += s.recv(4096)
        s.close()
        t0 = time.time()
        while time.time() - t0 < 5:
            if metric('shimmy_requests_in_flight') == 0 and (metric('shimmy_generations_cancelled_total') or 0) > before:
                break
            time.sleep(0.05)
        check(metric('shimmy_requests_in_flight') == 0, 'slot freed after the client left')
        check(metric('shimmy_generations_cancelled_total') > before, 'generation counted as cancelled')
        st, _, body = request('POST', '/v1/chat/completions', chat_body(max_tokens=4))
        check(st == 200, 'serving after a disconnect')

    def slow_reader_does_not_stall_others():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, PORT))
        body = json.dumps({'model': SLOW, 'messages': [{'role': 'user', 'content': 'Hi'}], 'max_tokens': 300,
                           'stream': True, 'logit_bias': {str(EOS): -100}}).encode()
        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
        try:
            # never reads: its slot keeps generating into the bounded buffer; others go on
            for _ in range(3):
                t0 = time.time()
                st, _, _ = request('POST', '/v1/chat/completions', chat_body(max_tokens=8))
                check(st == 200, f'status {st}')
                check(time.time() - t0 < 20, f'a request took {time.time() - t0:.1f}s beside a slow reader')
        finally:
            s.close()

    def concurrent_streams():
        st, _, body = request('POST', '/v1/chat/completions', chat_body())
        check(st == 200, f'reference status {st}')
        ref = json.loads(body)
        ref_text = ref['choices'][0]['message']['content']
        results = [None] * 32
        def worker(i):
            try:
                st, hdr, body = request('POST', '/v1/chat/completions', chat_body(stream=True))
                check(st == 200 and hdr.get('content-type') == 'text/event-stream', f'client {i}: {st}')
                ev = sse_events(body)
                check(len({e['id'] for e in ev}) == 1, 'one id per stream')
                results[i] = streamed_text(ev)
            except Exception as e:
                results[i] = e
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
        for t in threads: t.start()
        for t in threads: t.join(120)
        bad = [(i, r) for i, r in enumerate(results) if r != ref_text]
        check(not bad, f'{len(bad)} of 32 streams differ or failed, e.g. {bad[:1]!r} vs {ref_text!r}')

    def ws_frame(opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack('>H', n) if n < 65536 else bytes([0x80 | 127]) + struct.pack('>Q', n))
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    def ws_read(s, buf):
        while True:
            if len(buf) >= 2:
                n, h = buf[1] & 0x7f, 2
                if n == 126: n, h = struct.unpack('>H', buf[2:4])[0], 4
                elif n == 127: n, h = struct.unpack('>Q', buf[2:10])[0], 10
                if len(buf) >= h + n:
                    return buf[0] & 0x0f, bytes(buf[h:h + n]), buf[h + n:]
            d = s.recv(65536)
            if not d:
                raise EOFError('connection closed')
            buf += d

    def websocket_generate():
        req = {'model': TINY, 'prompt': 'Once upon a time', 'max_tokens': 12, 'temperature': 0, 'raw': True}
        # the reference is Ollama's /api/generate with the same greedy settings (repeat_penalty 1:
        # Ollama's default is 1.1, the native API's none)
        oreq = {'model': TINY, 'prompt': 'Once upon a time', 'raw': True, 'stream': False,
                'options': {'num_predict': 12, 'temperature': 0, 'repeat_penalty': 1}}
        st, _, body = request('POST', '/api/generate', json.dumps(oreq).encode())
        check(st == 200, f'/api/generate {st}')
        ref = json.loads(body)
        key = base64.b64encode(os.urandom(16)).decode()
        s = connect()
        s.sendall(f'GET /ws/generate HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode())
        buf = b''
        while b'\r\n\r\n' not in buf:
            buf += s.recv(4096)
        head, _, buf = buf.partition(b'\r\n\r\n')
        check(head.startswith(b'HTTP/1.1 101'), f'handshake: {head[:40]!r}')
        import hashlib
        want = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
        check(want.encode() in head, 'Sec-WebSocket-Accept')
        s.sendall(ws_frame(1, json.dumps(req).encode()))
        tokens, final = [], None
        while True:
            op, payload, buf = ws_read(s, buf)
            if op == 8:
                check(struct.unpack('>H', payload[:2])[0] == 1000, 'normal close')
                break
            check(op == 1, f'text frames only, got {op}')
            msg = json.loads(payload)
            if 'token' in msg: tokens.append(msg['token'])
            elif msg.get('done'): final = msg
        s.close()
        check(final is not None, 'final message')
        check(''.join(tokens) == ref['response'], 'WebSocket text equals /api/generate')
        check(final['usage']['prompt_tokens'] == ref['prompt_eval_count'] and
              final['usage']['completion_tokens'] == ref['eval_count'] and
              final['finish_reason'] == ref['done_reason'], 'usage and finish')
        # a plain GET is told to upgrade
        st, _, body = request('GET', '/ws/generate')
        check(st == 400 and 'WebSocket' in json.loads(body)['error']['message'], 'non-upgrade GET')
        # an invalid request message gets an error message and a close
        s = connect()
        s.sendall(f'GET /ws/generate HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode())
        buf = b''
        while b'\r\n\r\n' not in buf:
            buf += s.recv(4096)
        buf = buf.partition(b'\r\n\r\n')[2]
        s.sendall(ws_frame(1, b'{"model": "' + TINY.encode() + b'", "temperature": 9, "prompt": "x"}'))
        op, payload, buf = ws_read(s, buf)
        check(op == 1 and json.loads(payload)['error']['param'] == 'temperature', f'error message {payload[:80]!r}')
        op, payload, buf = ws_read(s, buf)
        check(op == 8, 'close after the error')
        s.close()
        # closing the socket mid-generation cancels it and frees the slot
        before = metric('shimmy_generations_cancelled_total') or 0
        s = connect()
        s.sendall(f'GET /ws/generate HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode())
        buf = b''
        while b'\r\n\r\n' not in buf:
            buf += s.recv(4096)
        buf = buf.partition(b'\r\n\r\n')[2]
        s.sendall(ws_frame(1, json.dumps({'model': SLOW, 'prompt': 'Hi', 'max_tokens': 960, 'logit_bias': {str(EOS): -100}}).encode()))
        for _ in range(3):
            op, payload, buf = ws_read(s, buf)
            check(op == 1 and 'token' in json.loads(payload), 'token frames')
        s.close()
        t0 = time.time()
        while time.time() - t0 < 5 and not (metric('shimmy_requests_in_flight') == 0 and metric('shimmy_generations_cancelled_total') > before):
            time.sleep(0.05)
        check(metric('shimmy_requests_in_flight') == 0, 'slot freed after the WebSocket closed')
        check(metric('shimmy_generations_cancelled_total') > before, 'WebSocket generation cancelled')

    for fn in (malformed_http, oversized_bodies, invalid_utf8_and_json, idle_client_is_dropped,
               disconnect_mid_stream, slow_reader_does_not_stall_others, concurrent_streams,
               websocket_generate):
        case(fn)

    def connection_limit():
        small = subprocess.Popen([BIN, 'serve', '--bind', 'auto', '--model-dirs', tmp, '--max-connections', '2',
                                  '--timeout', '30'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        try:
            m2 = re.search(r':(\d+)\s*$', small.stdout.readline())
            check(m2, 'second server started')
            port2 = int(m2.group(1))
            held = [socket.create_connection((HOST, port2), timeout=10) for _ in range(2)]
            for h in held:
                h.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\n')  # incomplete: keeps the connection
            time.sleep(0.3)
            # beyond the limit MHD does not accept: the client waits in the listen backlog
            extra = socket.create_connection((HOST, port2), timeout=1)
            extra.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            try:
                early = extra.recv(4096)
            except socket.timeout:
                early = None
            check(early is None, f'a third connection was served beside two: {(early or b"")[:40]!r}')
            for h in held:
                h.close()
            extra.settimeout(10)
            check(recv_all(extra).startswith(b'HTTP/1.1 200'), 'the waiting client is served once a connection closes')
            extra.close()
        finally:
            small.send_signal(signal.SIGTERM)
            try:
                small.wait(15)
            except subprocess.TimeoutExpired:
                small.kill()
    case(connection_limit)

    def port_in_use_is_an_error():
        second = subprocess.run([BIN, 'serve', '--bind', f'{HOST}:{PORT}', '--model-dirs', tmp], env=env,
                                capture_output=True, text=True, timeout=30)
        check(second.returncode == 1, f'second server on the same port: exit {second.returncode}')
        check('cannot listen' in second.stderr, f'message: {second.stderr.strip()[:200]}')
        check(health_ok(), 'the first server is unaffected')
        bad = os.path.join(tmp, 'missing.gguf')
        third = subprocess.run([BIN, 'serve', '--bind', 'auto', '--model', bad], env=env,
                               capture_output=True, text=True, timeout=30)
        check(third.returncode == 1 and bad in third.stderr, f'--model missing file: {third.returncode} {third.stderr.strip()[:200]}')
    case(port_in_use_is_an_error)

    def sigterm_exits_zero():
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(15) == 0, f'exit code {proc.returncode}')
    case(sigterm_exits_zero)
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
print(f'{passed} passed, {failed} failed')
sys.exit(1 if failed else 0)
PY
