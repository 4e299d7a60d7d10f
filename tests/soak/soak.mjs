#!/usr/bin/env node
// Soak test: `shimmy_asan serve` (the server built with ASan+UBSan) under mixed traffic from
// several concurrent clients for a bounded time, then checks that
//  - every request was answered with the status its kind expects, or cleanly refused (503 busy);
//    a 2xx stream ends with its API's end marker, an error body is JSON with an `error`;
//  - RSS stays flat after warm-up (RssAnon, the heap and KV caches: model weights are file pages
//    that come and go with loads), the idle memory at the end is near the idle memory after the
//    warm-up, and descriptors and threads at rest are back to their warm-up counts;
//  - the sanitizers reported nothing (no report file, no report on stderr, exit status 0 after
//    SIGTERM, which also runs LeakSanitizer);
//  - the server is still healthy at the end.
// Usage: node tests/soak/soak.mjs [--seconds 40] [--clients 4] [--bin build/shimmy_asan]
//          [--round 120] [--report FILE.json] [--verbose]
// Request kinds are one table (kinds.mjs); kinds whose route the server lacks are skipped.
// Exit: 0 pass, 1 fail, 77 skip (binary or test data missing).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KINDS } from './kinds.mjs';
import { httpRequest } from './client.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

function parseArgs(argv) {
  const o = { seconds: 40, clients: 4, bin: process.env.SHIMMY_ASAN_BIN, report: null,
    verbose: !!process.env.SOAK_VERBOSE, sampleMs: 1000, round: 120 };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i], v = argv[i + 1];
    if (a === '--seconds') (o.seconds = Number(v)), i++;
    else if (a === '--clients') (o.clients = Number(v)), i++;
    else if (a === '--bin') (o.bin = v), i++;
    else if (a === '--report') (o.report = v), i++;
    else if (a === '--round') (o.round = Number(v)), i++;
    else if (a === '--verbose') o.verbose = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.bin && process.env.SHIMMY_BIN)
    o.bin = path.join(path.dirname(process.env.SHIMMY_BIN), 'shimmy_asan');
  if (!(o.seconds > 0) || !(o.clients >= 1)) throw new Error('--seconds and --clients must be > 0');
  return o;
}

const opts = parseArgs(process.argv);
const data = process.env.SHIMMY_TESTDATA || path.resolve(repo, '../shared/testdata');
const skip = (why) => {
  console.log(`SKIP: ${why}`);
  process.exit(77);
};
if (!opts.bin || !fs.existsSync(opts.bin)) skip(`no ASan server binary (${opts.bin}); build shimmy_asan`);
const M = path.join(data, 'models'), L = path.join(data, 'lora');
const demo = path.join(repo, 'models/docs-llama-30m-Q4_K_M.gguf');
// Three folders so that each adapter pairs with the only model of its architecture beside it.
const layout = {
  a: [`${M}/tiny-llama-spm-F32.gguf`, `${L}/lora-tiny-llama-spm-r4.gguf`, `${L}/lora-tiny-llama-spm-r8-attn.gguf`],
  b: [`${M}/tiny-qwen2-Q4_0.gguf`, `${L}/peft-tiny-qwen2-r4`],
  c: [demo, `${M}/tiny-llama-bpe-Q4_0.gguf`, `${M}/tiny-llama-spm-Q8_0.gguf`, `${M}/tiny-qwen3-F32.gguf`,
    `${M}/tiny-gemma3-Q8_0.gguf`],
};
for (const f of Object.values(layout).flat()) if (!fs.existsSync(f)) skip(`test file ${f} missing`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shimmy-soak-'));
for (const [d, files] of Object.entries(layout)) {
  fs.mkdirSync(path.join(work, d));
  for (const f of files) fs.symlinkSync(f, path.join(work, d, path.basename(f)));
}
// A budget below the sum of the models, so that loads evict (docs-llama alone is 22 MB).
const BUDGET = 40 * 1000 * 1000;
const KEEP_ALIVE_S = 2;
const serverArgs = ['serve', '--bind', 'auto', '--model-dirs', ['a', 'b', 'c'].map((d) => path.join(work, d)).join(':'),
  '--ctx-size', '512', '--parallel', '2', '--threads', '2', '--max-body', '262144', '--queue', '64',
  '--max-loaded', String(BUDGET), '--keep-alive', String(KEEP_ALIVE_S), '--timeout', '20'];
const san = path.join(work, 'san');
const env = { ...process.env, SHIMMY_NO_ENV: '1', SHIMMY_NO_MODEL_PATHS: '1', SHIMMY_NO_LOCAL: '1',
  SHIMMY_NO_HOME: '1', SHIMMY_NO_BASE_DIR: '1', SHIMMY_NO_OLLAMA: '1', SHIMMY_NO_HF: '1',
  SHIMMY_NO_LMSTUDIO: '1', SHIMMY_NO_DOWNLOADS: '1',
  // A small quarantine keeps ASan's own retained memory bounded, so that RSS can be flat.
  ASAN_OPTIONS: `detect_leaks=1:halt_on_error=1:quarantine_size_mb=16:log_path=${san}/asan`,
  UBSAN_OPTIONS: `print_stacktrace=1:halt_on_error=1:log_path=${san}/ubsan` };
fs.mkdirSync(san);

const failures = [];
const fail = (what) => {
  failures.push(what);
  if (failures.length <= 30) console.log(`FAIL: ${what}`);
};

function startServer() {
  return new Promise((resolve, reject) => {
    const proc = spawn(opts.bin, serverArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const errLog = fs.createWriteStream(path.join(work, 'server.err'));
    proc.stderr.on('data', (d) => {
      errLog.write(d);
      if (opts.verbose) process.stderr.write(d);
    });
    const timer = setTimeout(() => reject(new Error('server did not start in 60 s')), 60000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]) });
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
  });
}

// ---- /proc sampling ----
function procSample(pid) {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((st.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [0, 0])[1]);
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), threads: kb('Threads'),
    fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Brings the server to rest and samples it: every loaded model unloaded (an idle slot keeps its
// last model's session, so keep-alive alone never empties the server), no connection but the
// listening one, and the descriptor and thread counts steady for two samples.
async function restingSample(ctx, pid) {
  const t0 = Date.now();
  let s = procSample(pid), prev = null;
  while (Date.now() - t0 < 30000) {
    const h = await httpRequest(ctx.port, { method: 'GET', path: '/health' }).catch(() => null);
    const loaded = h && h.status === 200 ? JSON.parse(h.body).models_loaded : null;
    for (const m of loaded || [])
      await httpRequest(ctx.port, { method: 'POST', path: `/api/models/${encodeURIComponent(m.name)}/unload`, body: '' });
    await sleep(500);
    s = procSample(pid);
    if (loaded && loaded.length === 0 && prev && s.fds === prev.fds && s.threads === prev.threads) return s;
    prev = s;
  }
  fail(`the server did not come to rest in 30 s: ${fmtSample(s)}`);
  return s;
}

// ---- the traffic ----
async function clientLoop(ctx, id, deadline, enabled) {
  const total = enabled.reduce((a, k) => a + k.weight, 0);
  while (Date.now() < deadline) {
    let r = Math.random() * total, kind = enabled[0];
    for (const k of enabled) if ((r -= k.weight) < 0) { kind = k; break; }
    const st = (ctx.stats[kind.name] ||= { n: 0, ok: 0, refused: 0, bad: 0, ms: 0, statuses: {} });
    const t0 = Date.now();
    let res;
    try {
      res = await kind.run(ctx);
    } catch (e) {
      res = { ok: false, why: `exception ${e.message}` };
    }
    st.n++;
    st.ms += Date.now() - t0;
    st.statuses[res.status ?? 'none'] = (st.statuses[res.status ?? 'none'] || 0) + 1;
    if (res.ok && res.refused) st.refused++;
    else if (res.ok) st.ok++;
    else {
      st.bad++;
      fail(`${kind.name} (client ${id}): ${res.why}`);
    }
  }
}

async function main() {
  const t0 = Date.now();
  const { proc, port } = await startServer();
  let exited = null;
  proc.on('exit', (code, sig) => (exited = { code, sig }));
  const ctx = { port, stats: {}, models: [], adapters: [] };
  const models = JSON.parse((await httpRequest(port, { method: 'GET', path: '/v1/models' })).body).data;
  ctx.adapters = models.filter((m) => m.parent).map((m) => ({ id: m.id, parent: m.parent }));
  ctx.models = models.filter((m) => !m.parent).map((m) => m.id);
  ctx.generative = ctx.models.filter((m) => !/gemma3/.test(m)); // gemma3 checks a clean refusal
  if (ctx.adapters.length < 3 || ctx.generative.length < 4) throw new Error(`unexpected model list ${JSON.stringify(models)}`);

  // Kinds whose route is absent (an API dialect not built yet) are left out, and said so.
  const enabled = [];
  for (const k of KINDS) {
    if (k.route && !(await routeExists(port, k.route))) {
      console.log(`kind ${k.name}: ${k.route} is not served; skipped`);
      continue;
    }
    enabled.push(k);
  }
  // Every kind once, in order: each works on its own before they are mixed.
  for (const k of enabled) {
    const r = await k.run(ctx).catch((e) => ({ ok: false, why: e.message }));
    if (!r.ok) fail(`first ${k.name}: ${r.why}`);
  }
  // Warm-up: mixed traffic (not counted) until the allocators hold what concurrency needs.
  const warmS = Math.min(Math.max(opts.seconds * 0.25, 10), 60);
  await Promise.all(Array.from({ length: opts.clients }, (_, i) => clientLoop(ctx, i, Date.now() + warmS * 1000, enabled)));
  ctx.stats = {};
  const rests = [{ t: 0, ...(await restingSample(ctx, proc.pid)) }];
  console.log(`warm-up done in ${((Date.now() - t0) / 1000).toFixed(1)} s; at rest: ${fmtSample(rests[0])}`);

  // The measured run, in rounds; between rounds the clients stop until the server is at rest
  // (no model loaded, no connection), where memory, descriptors and threads are compared.
  const samples = [];
  const roundS = Math.min(opts.seconds, opts.round);
  let elapsed = 0, trafficS = 0;
  const tStart = Date.now();
  const sampler = setInterval(() => {
    try {
      samples.push({ t: (Date.now() - tStart) / 1000, ...procSample(proc.pid) });
    } catch {}
  }, opts.sampleMs);
  while (trafficS < opts.seconds - 0.5) {
    const len = Math.min(roundS, opts.seconds - trafficS), r0 = Date.now();
    await Promise.all(Array.from({ length: opts.clients }, (_, i) => clientLoop(ctx, i, r0 + len * 1000, enabled)));
    trafficS += (Date.now() - r0) / 1000;
    const rs = await restingSample(ctx, proc.pid);
    rests.push({ t: (Date.now() - tStart) / 1000, ...rs });
    if (opts.verbose) console.log(`round to ${trafficS.toFixed(0)} s of traffic; at rest: ${fmtSample(rs)}`);
  }
  clearInterval(sampler);
  elapsed = (Date.now() - tStart) / 1000;

  // Still healthy: /health and one generation.
  const h = await httpRequest(port, { method: 'GET', path: '/health' }).catch((e) => ({ status: 0, body: e.message }));
  if (h.status !== 200) fail(`final /health: ${h.status} ${h.body}`);
  const g = await httpRequest(port, { method: 'POST', path: '/v1/completions',
    body: JSON.stringify({ model: ctx.generative[0], prompt: 'still there?', max_tokens: 4 }) }).catch((e) => ({ status: 0, body: e.message }));
  if (g.status !== 200) fail(`final generation: ${g.status} ${g.body}`);
  const rest0 = rests[0], rest1 = rests.at(-1);

  // Memory. At rest (no model loaded) RssAnon is the heap the server keeps between requests:
  // after warm-up it must stay within the slack, which covers allocator caches (ASan's 16 MB
  // quarantine and size-class free lists) but not a leak of per-request memory. Under traffic,
  // the median of the last fifth of the samples is held to the same slack against the first fifth.
  const slackKb = Math.max(24 * 1024, rest0.anon * 0.15);
  const restGrow = rest1.anon - rest0.anon;
  if (restGrow > slackKb)
    fail(`RssAnon at rest grew ${(restGrow / 1024).toFixed(1)} MiB (${rest0.anon} -> ${rest1.anon} kB, limit ${(slackKb / 1024).toFixed(1)} MiB)`);
  const fifth = Math.max(1, Math.floor(samples.length / 5));
  const early = median(samples.slice(0, fifth).map((s) => s.anon));
  const late = median(samples.slice(-fifth).map((s) => s.anon));
  const grow = late - early;
  // Under traffic RssAnon swings by tens of MiB with which models are loaded: the medians are a
  // trend only over enough samples (short runs rely on the resting check).
  if (samples.length >= 100 && grow > slackKb)
    fail(`RssAnon under traffic grew ${(grow / 1024).toFixed(1)} MiB (limit ${(slackKb / 1024).toFixed(1)} MiB)`);
  if (rest1.fds > rest0.fds) fail(`descriptors at rest: ${rest0.fds} -> ${rest1.fds}`);
  if (rest1.threads > rest0.threads) fail(`threads at rest: ${rest0.threads} -> ${rest1.threads}`);

  // Stop; LeakSanitizer runs at exit.
  proc.kill('SIGTERM');
  for (let i = 0; i < 600 && !exited; i++) await sleep(100);
  if (!exited) {
    proc.kill('SIGKILL');
    fail('server did not exit within 60 s of SIGTERM');
  } else if (exited.code !== 0) fail(`server exit: code ${exited.code} signal ${exited.sig}`);
  for (const f of fs.readdirSync(san)) {
    const text = fs.readFileSync(path.join(san, f), 'utf8');
    if (text.trim()) fail(`sanitizer report ${f}:\n${text.slice(0, 4000)}`);
  }
  const serr = fs.readFileSync(path.join(work, 'server.err'), 'utf8');
  for (const pat of [/ERROR: AddressSanitizer/, /ERROR: LeakSanitizer/, /runtime error:/])
    if (pat.test(serr)) fail(`sanitizer output on stderr (${pat})`);

  // Report.
  const totals = Object.values(ctx.stats).reduce((a, s) => ({ n: a.n + s.n, ok: a.ok + s.ok,
    refused: a.refused + s.refused, bad: a.bad + s.bad }), { n: 0, ok: 0, refused: 0, bad: 0 });
  console.log(`\n${opts.clients} clients, ${elapsed.toFixed(0)} s: ${totals.n} requests, ${totals.ok} answered as expected, ` +
    `${totals.refused} refused (503), ${totals.bad} wrong (${(totals.n / trafficS).toFixed(1)} req/s over ${trafficS.toFixed(0)} s of traffic)`);
  console.log('kind                       n    ok  503  bad  mean ms  statuses');
  for (const [name, s] of Object.entries(ctx.stats).sort())
    console.log(`${name.padEnd(24)} ${String(s.n).padStart(4)} ${String(s.ok).padStart(5)} ${String(s.refused).padStart(4)} ` +
      `${String(s.bad).padStart(4)} ${String(Math.round(s.ms / Math.max(1, s.n))).padStart(8)}  ${JSON.stringify(s.statuses)}`);
  console.log('\nat rest (no model loaded, no client):');
  for (const r of rests) console.log(`  after ${r.t.toFixed(0).padStart(5)} s: ${fmtSample(r)}`);
  console.log(`RssAnon under traffic: first fifth ${(early / 1024).toFixed(1)} MiB, last fifth ${(late / 1024).toFixed(1)} MiB ` +
    `(growth ${(grow / 1024).toFixed(1)} MiB, limit ${(slackKb / 1024).toFixed(1)} MiB)`);
  const step = Math.max(1, Math.floor(samples.length / 12));
  console.log('  t (s)   VmRSS MiB  RssAnon MiB  RssFile MiB  fds  threads');
  for (let i = 0; i < samples.length; i += step) {
    const s = samples[i];
    console.log(`${s.t.toFixed(0).padStart(7)} ${(s.rss / 1024).toFixed(1).padStart(11)} ${(s.anon / 1024).toFixed(1).padStart(12)} ` +
      `${(s.file / 1024).toFixed(1).padStart(12)} ${String(s.fds).padStart(4)} ${String(s.threads).padStart(8)}`);
  }
  if (opts.report)
    fs.writeFileSync(opts.report, JSON.stringify({ seconds: elapsed, clients: opts.clients, totals,
      kinds: ctx.stats, rests, early, late, samples, failures }, null, 1));
  if (!failures.length) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`\nserver log and sanitizer files kept in ${work}`);
  console.log(failures.length ? `FAIL: ${failures.length} problem(s)` : 'PASS');
  process.exit(failures.length ? 1 : 0);
}

const fmtSample = (s) => `VmRSS ${(s.rss / 1024).toFixed(1)} MiB, RssAnon ${(s.anon / 1024).toFixed(1)} MiB, ${s.fds} fds, ${s.threads} threads`;

async function routeExists(port, route) {
  const r = await httpRequest(port, { method: 'POST', path: route, body: '{}' }).catch(() => null);
  return !!r && !(r.status === 404 && /no route/.test(r.body));
}

main().catch((e) => {
  console.log(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
