// Authentication, CORS, saturation (503), cancellation, and the native API (/api/models/*; and
// /api/generate, now Ollama's: see test_server_ollama.mjs), against the real binary.
import OpenAI from 'openai';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, expectApiError } from './helpers.mjs';

const TINY_FILE = 'tiny-llama-spm-Q8_0.gguf';
const SLOW_FILE = 'docs-llama-30m-Q4_K_M.gguf'; // 1024 context: a 960-token answer takes seconds
const { bin, data } = requireEnv([TINY_FILE, SLOW_FILE]);
const dir = modelDir(data, [TINY_FILE, SLOW_FILE]);
const TINY = 'tiny-llama-spm-q8_0';
const SLOW = 'docs-llama-30m-q4_k_m';
const EOS = 2; // </s> in the Llama SPM vocabulary: banned so that answers run to max_tokens
const t = runner();
const servers = [];
const messages = [{ role: 'user', content: 'What does git switch do?' }];

try {
  const keyed = await startServer(bin, ['--model-dirs', dir, '--api-key', 'sekrit', '--cors', 'https://app.example']);
  servers.push(keyed);
  await t.test('API key: 401 without or with a wrong key, 200 with it', async () => {
    const bad = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await expectApiError(bad.models.list(), 401, { code: 'invalid_api_key' });
    const r = await fetch(`${keyed.url}/v1/models`);
    assertEq(r.status, 401, 'no Authorization header');
    const good = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'sekrit', maxRetries: 0 });
    const list = await good.models.list();
    assertEq(list.data.length, 2, 'models with the right key');
    const h = await fetch(`${keyed.url}/health`);
    assertEq(h.status, 200, '/health needs no key');
  });
  await t.test('CORS headers and preflight', async () => {
    const pre = await fetch(`${keyed.url}/v1/chat/completions`, { method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' } });
    assertEq(pre.status, 204, 'preflight status');
    assertEq(pre.headers.get('access-control-allow-origin'), 'https://app.example', 'allow-origin');
    assert(/POST/.test(pre.headers.get('access-control-allow-methods')), 'allow-methods');
    assert(/authorization/i.test(pre.headers.get('access-control-allow-headers')), 'allow-headers');
    const r = await fetch(`${keyed.url}/health`);
    assertEq(r.headers.get('access-control-allow-origin'), 'https://app.example', 'on responses');
  });
  await keyed.stop();

  const srv = await startServer(bin, ['--model-dirs', dir, '--parallel', '1', '--queue', '0', '--threads', '2']);
  servers.push(srv);
  const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'x', maxRetries: 0 });

  await t.test('503 when the slot is busy and the queue is full; cancel frees the slot', async () => {
    const stream = await client.chat.completions.create({ model: SLOW, messages, max_tokens: 960,
      temperature: 0, logit_bias: { [EOS]: -100 }, stream: true });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert(!first.done, 'first chunk');
    const e = await expectApiError(client.chat.completions.create({ model: TINY, messages, max_tokens: 2 }), 503);
    assertEq(e.error?.type ?? e.type, 'server_error', 'type');
    // health and models still answer while the only slot is busy
    const h = await (await fetch(`${srv.url}/health`)).json();
    assertEq(h.slots.busy, 1, 'busy slot visible in /health');
    await client.models.list();
    stream.controller.abort(); // the client goes away mid-stream
    const t0 = Date.now();
    let ok = null;
    while (!ok && Date.now() - t0 < 5000) {
      try {
        ok = await client.chat.completions.create({ model: TINY, messages, max_tokens: 2 });
      } catch (err) {
        if (err.status !== 503) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert(ok, 'the slot was freed after the client left');
    const m = await (await fetch(`${srv.url}/metrics`)).text();
    assert(/shimmy_generations_cancelled_total [1-9]/.test(m), 'cancellation counted');
  });

  await t.test('/api/generate (Ollama\'s): JSON and NDJSON agree', async () => {
    const body = { model: TINY, prompt: 'Once upon a time', options: { num_predict: 10, temperature: 0 } };
    const r = await fetch(`${srv.url}/api/generate`, { method: 'POST', body: JSON.stringify({ ...body, stream: false }) });
    assertEq(r.status, 200, 'status');
    const j = await r.json();
    assertEq(j.done, true, 'done');
    assert(typeof j.response === 'string', 'response');
    assert(['stop', 'length'].includes(j.done_reason), 'done_reason');
    assert(j.eval_count > 0 && j.eval_count <= 10, 'eval_count');
    const s = await fetch(`${srv.url}/api/generate`, { method: 'POST', body: JSON.stringify(body) });
    assertEq(s.headers.get('content-type'), 'application/x-ndjson', 'streams by default');
    const events = (await s.text()).trim().split('\n').map((x) => JSON.parse(x));
    assertEq(events.map((e) => e.response).join(''), j.response, 'streamed text');
    const last = events[events.length - 1];
    assertEq(last.done, true, 'final event');
    assertEq([last.prompt_eval_count, last.eval_count], [j.prompt_eval_count, j.eval_count], 'final counts');
    // Ollama's API requires the model
    const noModel = await fetch(`${srv.url}/api/generate`, { method: 'POST', body: JSON.stringify({ prompt: 'x' }) });
    assertEq(noModel.status, 400, 'model required');
    assert(/model/.test((await noModel.json()).error), 'error names the field');
  });

  await t.test('/api/models, load, status, unload', async () => {
    const list = await (await fetch(`${srv.url}/api/models`)).json();
    assertEq(list.models.map((m) => m.name).sort(), [SLOW, TINY].sort(), 'names');
    const tiny = list.models.find((m) => m.name === TINY);
    assertEq(tiny.architecture, 'llama', 'architecture');
    let r = await fetch(`${srv.url}/api/models/${TINY}/load`, { method: 'POST' });
    assertEq(r.status, 200, 'load');
    let st = await r.json();
    assertEq(st.state, 'loaded', 'loaded');
    assert(st.bytes > 0, 'bytes');
    r = await fetch(`${srv.url}/api/models/${TINY}/unload`, { method: 'POST' });
    assertEq(r.status, 200, 'unload');
    st = await (await fetch(`${srv.url}/api/models/${TINY}/status`)).json();
    assert(st.state !== 'loaded', `state after unload: ${st.state}`);
    r = await fetch(`${srv.url}/api/models/nope/status`);
    assertEq(r.status, 404, 'unknown model');
    assertEq((await r.json()).error.code, 'model_not_found', 'code');
    r = await fetch(`${srv.url}/api/models/discover`, { method: 'POST' });
    assertEq((await r.json()).models, 2, 'rediscovered');
    // a request after unload loads the model again
    const again = await client.completions.create({ model: TINY, prompt: 'Hi', max_tokens: 2 });
    assert(again.choices.length === 1, 'reload on demand');
  });

  await t.test('graceful shutdown with a stream in flight exits 0', async () => {
    const stream = await client.chat.completions.create({ model: SLOW, messages, max_tokens: 960,
      logit_bias: { [EOS]: -100 }, stream: true });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const stopping = srv.stop();
    // the stream ends cleanly: with its final chunk, or with the server's "shutting down" error
    let ending = 'cut';
    try {
      for (let r = await it.next(); !r.done; r = await it.next())
        if (r.value.choices[0]?.finish_reason) ending = 'finished';
    } catch (e) {
      if (/shutting down/.test(e.message)) ending = 'error event';
      else throw e;
    }
    assert(ending !== 'cut', 'stream ended without a final chunk or an error event');
    assertEq(await stopping, 0, 'exit code');
  });
} finally {
  for (const s of servers) await s.stop();
}
process.exit(t.finish());
