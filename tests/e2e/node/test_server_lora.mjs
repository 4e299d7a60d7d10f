// LoRA adapters on a shared base, driven by the openai client: adapter models ("parent"), the
// per-request "lora" list, GET /api/adapters, serve --lora-scaled; every generated text is
// compared with `shimmy generate --lora` on the same prompt (greedy), and concurrent requests
// with different adapter sets on one base must each give their sequential result.
import OpenAI from 'openai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, expectApiError, SKIP } from './helpers.mjs';

const BASE_FILE = 'tiny-llama-spm-F32.gguf';
const R4_FILE = 'lora-tiny-llama-spm-r4.gguf';
const PEFT_DIR = 'peft-tiny-llama-spm-r8-attn';
const QWEN_LORA = 'lora-tiny-qwen2-r4.gguf';
const { bin, data } = requireEnv([BASE_FILE]);
const lora = path.join(data, 'lora');
for (const f of [R4_FILE, PEFT_DIR, QWEN_LORA]) {
  if (!fs.existsSync(path.join(lora, f))) {
    console.log(`SKIP: ${path.join(lora, f)} missing`);
    process.exit(SKIP);
  }
}
const dir = modelDir(data, [BASE_FILE]);
fs.symlinkSync(path.join(lora, R4_FILE), path.join(dir, R4_FILE));
fs.symlinkSync(path.join(lora, PEFT_DIR), path.join(dir, PEFT_DIR));
fs.symlinkSync(path.join(lora, QWEN_LORA), path.join(dir, QWEN_LORA)); // no qwen2 base: unpaired
const BASE = 'tiny-llama-spm-f32';
const R4 = 'lora-tiny-llama-spm-r4';
const R8 = 'peft-tiny-llama-spm-r8-attn';
const QWEN = 'lora-tiny-qwen2-r4';
const PROMPT = 'Once upon a time';
const N = 24;

// `shimmy generate` with the given adapter flags: the reference text.
function generate(args) {
  const out = execFileSync(bin, ['generate', path.join(dir, BASE_FILE), '--prompt', PROMPT, '-n', String(N),
    '--temp', '0', ...args, '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return JSON.parse(out).text;
}

const ref = {
  base: generate([]),
  r4: generate(['--lora', path.join(dir, R4_FILE)]),
  r4half: generate(['--lora-scaled', path.join(dir, R4_FILE), '0.5']),
  r8: generate(['--lora', path.join(dir, PEFT_DIR)]),
};

const t = runner();
const srv = await startServer(bin, ['--model-dirs', dir, '--parallel', '3', '--threads', '2']);
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });

async function complete(model, loras, extra = {}) {
  const body = { model, prompt: PROMPT, max_tokens: N, temperature: 0, ...extra };
  if (loras) body.lora = loras;
  const r = await client.completions.create(body);
  return r.choices[0].text;
}

try {
  await t.test('the references differ (the adapters change the output)', async () => {
    assert(ref.base !== ref.r4, 'r4 changes the text');
    assert(ref.r4 !== ref.r4half, 'the scale changes the text');
    assert(ref.base !== ref.r8, 'r8 changes the text');
  });

  await t.test('/v1/models lists paired adapters with "parent"', async () => {
    const list = await client.models.list();
    const byId = Object.fromEntries(list.data.map((m) => [m.id, m]));
    assertEq(Object.keys(byId).sort(), [BASE, R4, R8].sort(), 'ids');
    assertEq(byId[R4].parent, BASE, 'r4 parent');
    assertEq(byId[R8].parent, BASE, 'r8 parent');
    assertEq(byId[BASE].parent, undefined, 'a base has no parent');
    const one = await client.models.retrieve(R4);
    assertEq(one.parent, BASE, 'retrieve parent');
    const api = await (await fetch(`${srv.url}/api/models`)).json();
    const r4 = api.models.find((m) => m.name === R4);
    assert(r4 && r4.parent === BASE, '/api/models parent');
    assertEq([r4.size, r4.architecture, r4.scale], [21728, 'llama', 1], '/api/models adapter model facts');
  });

  await t.test('shimmy list --json gives adapter models with "parent"', async () => {
    const env = { ...process.env };
    for (const k of ['ENV', 'MODEL_PATHS', 'LOCAL', 'HOME', 'BASE_DIR', 'OLLAMA', 'HF', 'LMSTUDIO', 'DOWNLOADS'])
      env[`SHIMMY_NO_${k}`] = '1';
    const doc = JSON.parse(execFileSync(bin, ['list', '--json', '--model-dirs', dir], { env }));
    const bases = doc.models.filter((m) => !('parent' in m));
    assertEq(bases.map((m) => m.name), [BASE], 'models');
    assertEq(bases[0].adapters.map((a) => [a.name, a.parent]), [[R4, BASE], [R8, BASE]], 'paired adapters');
    assertEq(doc.models.filter((m) => 'parent' in m).map((m) => [m.name, m.parent]), [[R4, BASE], [R8, BASE]],
      'adapter models');
  });

  await t.test('GET /api/adapters', async () => {
    const r = await fetch(`${srv.url}/api/adapters`);
    assertEq(r.status, 200, 'status');
    const { adapters } = await r.json();
    const byName = Object.fromEntries(adapters.map((a) => [a.name, a]));
    const a = byName[R4];
    assert(a, 'r4 listed');
    assertEq([a.base, a.rank, a.alpha, a.format, a.size], [BASE, 4, 8, 'gguf', 21728], 'r4 facts');
    assertEq(a.n_targets, 14, 'r4 targets (7 weights x 2 layers)');
    assert(a.path.endsWith(R4_FILE), 'r4 path');
    const p = byName[R8];
    assertEq([p.base, p.rank, p.alpha, p.format], [BASE, 8, 16, 'peft'], 'r8 facts');
    assertEq(p.targets.slice().sort(), ['k_proj', 'o_proj', 'q_proj', 'v_proj'], 'r8 targets');
    assert(p.size > 0, 'r8 size');
    const q = byName[QWEN];
    assert(q, 'the unpaired adapter is listed');
    assertEq(q.base, null, 'unpaired: base null');
    assert(/unpaired/.test(q.reason), `reason: ${q.reason}`);
    assertEq(q.architecture, 'qwen2', 'architecture');
  });

  await t.test('adapter model = generate --lora; base differs', async () => {
    assertEq(await complete(BASE), ref.base, 'base');
    assertEq(await complete(R4), ref.r4, 'adapter model r4');
    assertEq(await complete(R8), ref.r8, 'adapter model r8 (PEFT)');
    assertEq(await complete(BASE), ref.base, 'base again: no delta left on the slot');
  });

  await t.test('"lora" per request = generate --lora / --lora-scaled', async () => {
    assertEq(await complete(BASE, [{ name: R4 }]), ref.r4, 'r4 default scale 1');
    assertEq(await complete(BASE, [{ name: R4, scale: 1 }]), ref.r4, 'r4 scale 1');
    assertEq(await complete(BASE, [{ name: R4, scale: 0.5 }]), ref.r4half, 'r4 scale 0.5');
    assertEq(await complete(BASE, []), ref.base, 'empty list = base');
    assertEq(await complete(BASE, [{ name: R4, scale: 0 }]), ref.base, 'scale 0 = base');
    // Ollama's /api/generate takes the same field (repeat_penalty 1: Ollama's default is 1.1).
    const g = await (await fetch(`${srv.url}/api/generate`, { method: 'POST', body: JSON.stringify({
      model: BASE, prompt: PROMPT, raw: true, stream: false, options: { num_predict: N, temperature: 0, repeat_penalty: 1 },
      lora: [{ name: R4, scale: 0.5 }] }) })).json();
    assertEq(g.response, ref.r4half, '/api/generate r4 scale 0.5');
    // Streaming takes the same path.
    const stream = await client.completions.create({ model: BASE, prompt: PROMPT, max_tokens: N, temperature: 0,
      stream: true, lora: [{ name: R4, scale: 0.5 }] });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.text ?? '';
    assertEq(text, ref.r4half, 'streamed r4 scale 0.5');
  });

  await t.test('chat: adapter model = base + "lora"', async () => {
    const messages = [{ role: 'user', content: 'Tell me a story.' }];
    const chat = async (model, l) => (await client.chat.completions.create({ model, messages, temperature: 0,
      max_tokens: 16, ...(l ? { lora: l } : {}) })).choices[0].message.content;
    const viaModel = await chat(R4);
    assertEq(await chat(BASE, [{ name: R4 }]), viaModel, 'same text');
    assert((await chat(BASE)) !== viaModel, 'base chat differs');
  });

  await t.test('concurrent requests with different adapter sets each get their own result', async () => {
    const cases = [[null, ref.base], [[{ name: R4 }], ref.r4], [[{ name: R4, scale: 0.5 }], ref.r4half],
      [null, ref.base], [[{ name: R8 }], ref.r8], [[{ name: R4, scale: 0.5 }], ref.r4half]];
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(cases.map(([l]) => complete(BASE, l)));
      got.forEach((text, i) => assertEq(text, cases[i][1], `round ${round} case ${i}`));
    }
  });

  await t.test('bad "lora" values are 400 with param lora', async () => {
    const e1 = await expectApiError(complete(BASE, [{ name: 'no-such-adapter' }]), 400, { param: 'lora' });
    assert(e1.message.includes('no-such-adapter'), `names the adapter: ${e1.message}`);
    const p = path.join(dir, R4_FILE);
    const e2 = await expectApiError(complete(BASE, [{ name: p }]), 400, { param: 'lora' });
    assert(e2.message.includes(p), `names the path: ${e2.message}`);
    await expectApiError(complete(BASE, [{ name: '/etc/passwd' }]), 400, { param: 'lora' });
    const e3 = await expectApiError(complete(BASE, [{ name: QWEN }]), 400, { param: 'lora' });
    assert(e3.message.includes(QWEN), `names the incompatible adapter: ${e3.message}`);
    await expectApiError(complete(QWEN), 400, { param: 'model' }); // unpaired: not a model
    await expectApiError(complete(BASE, [{ name: R4, scale: 'big' }]), 400, { param: 'lora' });
    await expectApiError(complete(BASE, { name: R4 }), 400, { param: 'lora' });
    await expectApiError(complete(BASE, [{ name: R4, weight: 1 }]), 400, { param: 'lora' });
  });
} finally {
  const code = await srv.stop();
  await t.test('server exits 0 on SIGTERM', async () => assertEq(code, 0, 'exit code'));
}

// serve --model BASE --lora-scaled R4 0.5 --lora QWEN: the adapter model uses its scale; an
// adapter for another architecture is refused for this base.
const dir2 = modelDir(data, []);
const srv2 = await startServer(bin, ['--model-dirs', dir2, '--model', path.join(dir, BASE_FILE), '--threads', '2',
  '--lora-scaled', path.join(lora, R4_FILE), '0.5']);
try {
  const c2 = new OpenAI({ baseURL: `${srv2.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await t.test('serve --lora-scaled registers an adapter model with its scale', async () => {
    const list = await c2.models.list();
    const m = list.data.find((x) => x.id === R4);
    assert(m, `adapter model listed: ${JSON.stringify(list.data)}`);
    assertEq(m.parent, BASE, 'parent');
    const r = await c2.completions.create({ model: R4, prompt: PROMPT, max_tokens: N, temperature: 0 });
    assertEq(r.choices[0].text, ref.r4half, 'adapter model at scale 0.5');
    const r1 = await c2.completions.create({ model: BASE, prompt: PROMPT, max_tokens: N, temperature: 0,
      lora: [{ name: R4 }] });
    assertEq(r1.choices[0].text, ref.r4, '"lora" without scale is 1');
  });
} finally {
  await srv2.stop();
}

// An adapter of another architecture, paired with nothing compatible, is refused at start-up.
const dir3 = modelDir(data, []);
await t.test('serve --lora with an incompatible adapter fails at start-up', async () => {
  let failed = false;
  try {
    const s3 = await startServer(bin, ['--model-dirs', dir3, '--model', path.join(dir, BASE_FILE), '--threads', '1',
      '--lora', path.join(lora, QWEN_LORA)], { timeoutMs: 15000 });
    await s3.stop();
  } catch (e) {
    failed = /--lora/.test(String(e.message));
  }
  assert(failed, 'refused, naming --lora');
});
process.exit(t.finish());
