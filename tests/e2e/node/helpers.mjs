// Shared harness for the node end-to-end tests: starts `shimmy serve --bind auto` on a temporary
// model folder, reads the listening line, and always stops the server by PID.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

export const SKIP = 77;

// Exits 77 when the binary, the test data or the openai package is missing.
export function requireEnv(models) {
  const bin = process.env.SHIMMY_BIN;
  const data = process.env.SHIMMY_TESTDATA;
  const skip = (why) => {
    console.log(`SKIP: ${why}`);
    process.exit(SKIP);
  };
  if (!bin || !fs.existsSync(bin)) skip('SHIMMY_BIN is not set or missing');
  if (!data || !fs.existsSync(path.join(data, 'models'))) skip('SHIMMY_TESTDATA/models missing');
  for (const m of models) {
    if (!fs.existsSync(path.join(data, 'models', m))) skip(`test model ${m} missing`);
  }
  try {
    createRequire(import.meta.url).resolve('openai');
  } catch {
    skip('node_modules/openai missing (run scripts/test-setup.sh)');
  }
  return { bin, data };
}

// A temporary folder with symlinks to the given test models.
export function modelDir(data, models) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shimmy-e2e-'));
  for (const m of models) fs.symlinkSync(path.join(data, 'models', m), path.join(dir, m));
  return dir;
}

const running = new Set();
function killAll() {
  for (const p of running) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {}
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));

// Starts the server and resolves once it printed its address.
export function startServer(bin, args, { timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, SHIMMY_NO_ENV: '1', SHIMMY_NO_MODEL_PATHS: '1',
      SHIMMY_NO_LOCAL: '1', SHIMMY_NO_HOME: '1', SHIMMY_NO_BASE_DIR: '1', SHIMMY_NO_OLLAMA: '1',
      SHIMMY_NO_HF: '1', SHIMMY_NO_LMSTUDIO: '1', SHIMMY_NO_DOWNLOADS: '1' };
    const proc = spawn(bin, ['serve', '--bind', 'auto', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(proc);
    let out = '', err = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start in ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    proc.stderr.on('data', (d) => {
      err += d;
      if (process.env.SHIMMY_E2E_VERBOSE) process.stderr.write(d);
    });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve({
          proc,
          url: m[1],
          stderr: () => err,
          stop: () => stopServer(proc),
        });
      }
    });
    proc.on('exit', (code) => {
      running.delete(proc);
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${err}`));
    });
  });
}

// SIGTERM, then the exit code (SIGKILL after 10 s).
export function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    proc.on('exit', (code, sig) => {
      clearTimeout(t);
      running.delete(proc);
      resolve(code ?? sig);
    });
    proc.kill('SIGTERM');
  });
}

// A tiny test runner: named async cases, failures counted, a final "N passed, N failed" line.
export function runner() {
  let passed = 0, failed = 0;
  return {
    async test(name, fn) {
      try {
        await fn();
        passed++;
        console.log(`ok   ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
      }
    },
    finish() {
      console.log(`${passed} passed, ${failed} failed`);
      return failed ? 1 : 0;
    },
  };
}

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

export function assertEq(a, b, msg) {
  if (JSON.stringify(a) !== JSON.stringify(b))
    throw new Error(`${msg}: ${JSON.stringify(a)} !== ${JSON.stringify(b)}`);
}

// Expects an openai APIError with the given status (and code / param when given).
export async function expectApiError(promise, status, { code, param } = {}) {
  try {
    await promise;
  } catch (e) {
    assertEq(e.status, status, `status (${e.message})`);
    if (code !== undefined) assertEq(e.code ?? e.error?.code, code, 'error code');
    if (param !== undefined) assertEq(e.param ?? e.error?.param, param, 'error param');
    assert(typeof (e.error?.message ?? e.message) === 'string', 'error message');
    return e;
  }
  throw new Error(`expected HTTP ${status}, the call succeeded`);
}

// A copy of a GGUF file with tokenizer.chat_template replaced (or added): the key/value section is rebuilt,
// the tensor data is copied after the header, re-aligned (offsets are relative to the data).
export function withTemplate(src, dst, template) {
  const b = fs.readFileSync(src);
  let o = 0;
  const u32 = () => { const v = b.readUInt32LE(o); o += 4; return v; };
  const u64 = () => { const v = Number(b.readBigUInt64LE(o)); o += 8; return v; };
  const fixed = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (type) => {
    if (type === 8) {
      const n = u64(); // read before o is: `o += u64()` would lose the length's 8 bytes
      o += n;
    }
    else if (type === 9) {
      const et = u32(), n = u64();
      if (fixed[et]) o += n * fixed[et];
      else for (let i = 0; i < n; i++) skip(et);
    } else if (fixed[type]) o += fixed[type];
    else throw new Error(`GGUF value type ${type}`);
  };
  assertEq(b.toString('latin1', 0, 4), 'GGUF', 'magic');
  o = 4;
  assertEq(u32(), 3, 'GGUF version');
  const nTensors = u64(), nKv = u64();
  let align = 32, at = -1, end = -1;
  for (let i = 0; i < nKv; i++) {
    const klen = u64();
    const key = b.toString('utf8', o, o + klen);
    o += klen;
    const type = u32(), start = o;
    if (key === 'general.alignment') align = b.readUInt32LE(o);
    skip(type);
    if (key === 'tokenizer.chat_template') [at, end] = [start, o];
  }
  const kvEnd = o;
  for (let i = 0; i < nTensors; i++) {
    const name = u64();
    o += name;
    const dims = u32();
    o += 8 * dims + 4 + 8;
  }
  const dataAt = Math.ceil(o / align) * align;
  const text = Buffer.from(template, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  let head;
  if (at > 0) {
    head = Buffer.concat([b.subarray(0, at), len, text, b.subarray(end, o)]);
  } else { // a file without a template gets the key appended
    const key = Buffer.from('tokenizer.chat_template', 'utf8');
    const kl = Buffer.alloc(12);
    kl.writeBigUInt64LE(BigInt(key.length));
    const type = Buffer.alloc(4);
    type.writeUInt32LE(8); // string
    head = Buffer.concat([b.subarray(0, kvEnd), kl.subarray(0, 8), key, type, len, text, b.subarray(kvEnd, o)]);
    head.writeBigUInt64LE(BigInt(nKv + 1), 16);
  }
  const pad = Buffer.alloc((align - (head.length % align)) % align);
  fs.writeFileSync(dst, Buffer.concat([head, pad, b.subarray(dataAt)]));
}
