// The soak test's clients: plain HTTP (with optional disconnect mid-response), raw bytes on a
// socket (bodies cut short, oversized), and a minimal RFC 6455 WebSocket client (node 20 has no
// WebSocket in its standard library). Every call resolves; nothing throws on a network error.
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

const TIMEOUT_MS = 90000; // a request slower than this (under ASan, 2 slots) counts as hung

// Resolves {status, headers, body, aborted} or {status: 0, error}. abortAfterBytes/abortAfterMs
// destroy the socket mid-response (the client going away).
export function httpRequest(port, { method, path, body, headers = {}, abortAfterBytes, abortAfterMs }) {
  return new Promise((resolve) => {
    let done = false, aborting = false;
    const finish = (r) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        // destroy() may end the response synchronously: what it cut short is an abort
        resolve(aborting ? { ...r, aborted: true } : r);
      }
    };
    const buf = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false,
      headers: { ...(buf ? { 'Content-Type': 'application/json', 'Content-Length': buf.length } : {}), ...headers } });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ status: 0, error: `no complete answer in ${TIMEOUT_MS} ms` });
    }, TIMEOUT_MS);
    if (abortAfterMs !== undefined)
      setTimeout(() => {
        if (done) return;
        aborting = true;
        req.destroy();
        finish({ status: -1 });
      }, abortAfterMs);
    req.on('response', (res) => {
      const chunks = [];
      let n = 0;
      res.on('data', (d) => {
        chunks.push(d);
        n += d.length;
        if (abortAfterBytes !== undefined && n >= abortAfterBytes && !done) {
          aborting = true;
          req.destroy();
          finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(), aborted: true });
        }
      });
      res.on('end', () => finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', (e) => finish({ status: res.statusCode, error: e.message, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', (e) => finish({ status: 0, error: e.message }));
    if (buf) req.write(buf);
    req.end();
  });
}

// Writes `head` and `body` bytes on a fresh connection (closing after closeAfterBytes of the body
// when given) and resolves {status, text}: status 0 when no status line came back.
export function rawRequest(port, head, body, { closeAfterBytes } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      resolve({ status: m ? Number(m[1]) : 0, text });
    };
    const timer = setTimeout(finish, TIMEOUT_MS);
    s.on('connect', () => {
      s.write(head);
      if (closeAfterBytes !== undefined) {
        s.write(body.subarray(0, closeAfterBytes));
        setTimeout(finish, 50); // the client gives up mid-body
        return;
      }
      s.write(body);
    });
    s.on('data', (d) => {
      text += d;
      // Complete once the headers and the declared body are in.
      const i = text.indexOf('\r\n\r\n');
      const cl = text.match(/content-length:\s*(\d+)/i);
      if (i >= 0 && cl && Buffer.byteLength(text) - (i + 4) >= Number(cl[1])) finish();
    });
    s.on('error', finish); // a reset after the server answered (it stops reading a 413 body)
    s.on('close', finish);
  });
}

function wsFrame(opcode, data) {
  const mask = crypto.randomBytes(4);
  const payload = Buffer.from(data); // bytes, not UTF-16 units
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, 0x80 | n])
    : n < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 255])
      : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), (() => {
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(BigInt(n));
        return b;
      })()]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

// One /ws/generate exchange. Resolves {status: 101 or the HTTP status, messages: [parsed JSON],
// closeCode, cancelled}; cancelAfterFirst closes the socket after the first token message.
export function wsRequest(port, message, { cancelAfterFirst = false } = {}) {
  return new Promise((resolve) => {
    const key = crypto.randomBytes(16).toString('base64');
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0), upgraded = false, status = 0;
    const out = { status: 0, messages: [], closeCode: null, cancelled: false };
    let done = false;
    const finish = (extra = {}) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ ...out, status, ...extra });
    };
    const timer = setTimeout(() => finish({ error: 'timeout' }), TIMEOUT_MS);
    s.on('connect', () => s.write(`GET /ws/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const head = buf.subarray(0, i).toString();
        status = Number((head.match(/^HTTP\/1\.1 (\d{3})/) || [0, 0])[1]);
        if (status !== 101 || !head.includes(accept)) return finish({ error: `handshake: ${head.split('\r\n')[0]}` });
        upgraded = true;
        buf = buf.subarray(i + 4);
        s.write(wsFrame(1, typeof message === 'string' ? message : JSON.stringify(message)));
      }
      for (;;) { // server frames are unmasked
        if (buf.length < 2) return;
        const op = buf[0] & 15;
        let n = buf[1] & 127, off = 2;
        if (n === 126) {
          if (buf.length < 4) return;
          n = buf.readUInt16BE(2);
          off = 4;
        } else if (n === 127) {
          if (buf.length < 10) return;
          n = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + n) return;
        const payload = buf.subarray(off, off + n);
        buf = buf.subarray(off + n);
        if (op === 1) {
          try {
            out.messages.push(JSON.parse(payload.toString()));
          } catch {
            return finish({ error: `not JSON: ${payload.toString().slice(0, 100)}` });
          }
          if (cancelAfterFirst && out.messages.length === 1) return finish({ cancelled: true });
        } else if (op === 8) {
          out.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
          s.write(wsFrame(8, payload.subarray(0, 2)));
          return finish();
        } else if (op === 9) s.write(wsFrame(10, payload));
      }
    });
    s.on('error', (e) => finish({ error: e.message }));
    s.on('close', () => finish({ error: out.closeCode === null ? 'closed without a close frame' : undefined }));
  });
}
