// The soak test's request kinds: one row per kind of traffic, picked at random by weight.
// A row is {name, weight, route?, run(ctx) -> {ok, refused?, status, why}}; most rows are made by
// api() from a template: method, path, a body maker, the statuses that count as answered
// correctly, and for a stream the text its last event must carry. `route` marks a kind of an API
// dialect that may not be built yet: it runs only when the server serves that route.
// To add an API: add rows (non-streaming, streaming, cancelled) with its route and end marker.
import { httpRequest, rawRequest, wsRequest } from './client.mjs';

const PROMPTS = ['What does git switch do?', 'hello', 'Summarise: the cat sat on the mat.',
  'Écris une phrase en français.', '日本語で答えて', 'emoji 🙂 test', 'List three colours.', ''];
const rnd = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));
const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
const model = (ctx) => pick(ctx.generative);
const sampling = () => ({ temperature: Math.random() < 0.3 ? 0 : Math.random() * 1.2, seed: rnd(0, 1e6) });
const userMsg = () => [{ role: 'user', content: pick(PROMPTS) || 'hi' }];
const LONG = 'lorem ipsum dolor sit amet '.repeat(600); // > 512 tokens: over the context

function errorBodyOk(body) {
  try {
    return JSON.parse(body).error !== undefined;
  } catch {
    return false;
  }
}

// Checks one HTTP answer against a template's expectations.
function judge(t, r) {
  if (r.aborted && (r.status === -1 || t.expect.includes(r.status))) return { ok: true, status: 'cancelled' };
  if (r.status === 0) return { ok: false, status: 0, why: `no answer: ${r.error}` };
  if (r.status === 503) return errorBodyOk(r.body) ? { ok: true, refused: true, status: 503 } : { ok: false, status: 503, why: '503 without an error body' };
  if (!t.expect.includes(r.status))
    return { ok: false, status: r.status, why: `status ${r.status} (expected ${t.expect}): ${String(r.body).slice(0, 300)}` };
  if (r.status >= 400 && t.method !== 'HEAD' && !errorBodyOk(r.body))
    return { ok: false, status: r.status, why: `error body is not JSON with "error": ${String(r.body).slice(0, 200)}` };
  if (r.status === 200 && t.end && !t.end.test(r.body))
    return { ok: false, status: 200, why: `stream did not end with ${t.end}: ...${String(r.body).slice(-300)}` };
  if (r.status === 200 && !t.end && t.json !== false) {
    let j;
    try {
      j = JSON.parse(r.body);
    } catch {
      return { ok: false, status: 200, why: `body is not JSON: ${String(r.body).slice(0, 200)}` };
    }
    if (t.check && !t.check(j)) return { ok: false, status: 200, why: `unexpected body ${r.body.slice(0, 300)}` };
  }
  return { ok: true, status: r.status };
}

function api(name, weight, t) {
  return { name, weight, route: t.route, async run(ctx) {
    const body = t.raw ? t.raw(ctx) : t.body ? JSON.stringify(t.body(ctx)) : undefined;
    const r = await httpRequest(ctx.port, { method: t.method || 'POST', path: typeof t.path === 'function' ? t.path(ctx) : t.path,
      body, headers: t.headers, abortAfterBytes: t.abortAfterBytes, abortAfterMs: t.abortAfterMs && t.abortAfterMs() });
    return judge(t, r);
  } };
}

const chatBody = (extra) => (ctx) => ({ model: model(ctx), messages: userMsg(), max_tokens: rnd(1, 10), ...sampling(), ...extra });
const promptBody = (extra) => (ctx) => ({ model: model(ctx), prompt: pick(PROMPTS) || 'hi', max_tokens: rnd(1, 10), ...sampling(), ...extra });
const ollamaGen = (extra) => (ctx) => {
  const { stream, ...opt } = extra;
  return { model: model(ctx), prompt: pick(PROMPTS) || 'hi', ...(stream === undefined ? {} : { stream }),
    options: { num_predict: rnd(1, 10), ...sampling(), ...opt } };
};
const loraList = (ctx, parent) => ctx.adapters.filter((a) => a.parent === parent && Math.random() < 0.7)
  .map((a) => ({ name: a.id, scale: Math.round(Math.random() * 200) / 100 }));

export const KINDS = [
  // ---- OpenAI ----
  api('chat', 6, { path: '/v1/chat/completions', body: chatBody(), expect: [200], check: (j) => j.choices?.[0]?.message }),
  api('chat-stream', 6, { path: '/v1/chat/completions', body: chatBody({ stream: true, stream_options: { include_usage: Math.random() < 0.5 } }),
    expect: [200], end: /data: \[DONE\]\s*$/ }),
  api('chat-stream-disconnect', 3, { path: '/v1/chat/completions', body: chatBody({ stream: true, max_tokens: 40 }),
    expect: [200], abortAfterBytes: 1 }),
  api('completions', 3, { path: '/v1/completions', body: promptBody(), expect: [200], check: (j) => typeof j.choices?.[0]?.text === 'string' }),
  api('completions-stream', 2, { path: '/v1/completions', body: promptBody({ stream: true }), expect: [200], end: /data: \[DONE\]\s*$/ }),
  // ---- Ollama /api/generate (NDJSON when streamed; it replaced the native /api/generate) ----
  api('generate', 3, { path: '/api/generate', body: ollamaGen({ stream: false }), expect: [200],
    check: (j) => j.done === true && typeof j.response === 'string' }),
  api('generate-stream', 3, { path: '/api/generate', body: ollamaGen({}), expect: [200], end: /"done":\s*true[^\n]*\n?$/ }),
  api('generate-cancel', 2, { path: '/api/generate', body: ollamaGen({ num_predict: 30 }), expect: [200],
    abortAfterMs: () => rnd(0, 300), end: /"done":\s*true[^\n]*\n?$/ }), // a fast server may finish first
  // ---- native WebSocket ----
  { name: 'ws', weight: 3, async run(ctx) {
    const r = await wsRequest(ctx.port, promptBody()(ctx));
    const last = r.messages.at(-1);
    if (r.status === 101 && last?.done === true && r.closeCode === 1000) return { ok: true, status: 101 };
    if (last?.error && r.closeCode === 1013) return { ok: true, refused: true, status: 1013 };
    return { ok: false, status: r.status, why: `ws: ${r.error || ''} close ${r.closeCode} last ${JSON.stringify(last)}` };
  } },
  { name: 'ws-cancel', weight: 2, async run(ctx) {
    const r = await wsRequest(ctx.port, promptBody({ max_tokens: 30 })(ctx), { cancelAfterFirst: true });
    return r.status === 101 && (r.cancelled || r.closeCode === 1000) ? { ok: true, status: 101 }
      : { ok: false, status: r.status, why: `ws-cancel: ${r.error} close ${r.closeCode}` };
  } },
  { name: 'ws-bad', weight: 1, async run(ctx) {
    const r = await wsRequest(ctx.port, pick(['{not json', '{"prompt": 5}', '[]', '\u0000']));
    return r.messages.at(-1)?.error && r.closeCode === 1008 ? { ok: true, status: 1008 }
      : { ok: false, status: r.status, why: `ws-bad: close ${r.closeCode} ${JSON.stringify(r.messages)} ${r.error}` };
  } },
  // ---- LoRA ----
  api('lora', 3, { path: '/v1/chat/completions', body: (ctx) => {
    const a = pick(ctx.adapters);
    return { ...chatBody()(ctx), model: a.parent, lora: loraList(ctx, a.parent) };
  }, expect: [200], check: (j) => j.choices?.[0]?.message }),
  api('adapter-model', 2, { path: '/v1/completions', body: (ctx) => ({ ...promptBody({ stream: Math.random() < 0.5 })(ctx), model: pick(ctx.adapters).id }),
    expect: [200], json: false }),
  api('lora-unknown', 1, { path: '/v1/chat/completions', body: (ctx) => ({ ...chatBody()(ctx), lora: [{ name: pick(['nope', '/etc/passwd', '']) }] }),
    expect: [400] }),
  // ---- malformed ----
  api('bad-json', 2, { path: () => pick(['/v1/chat/completions', '/v1/completions', '/api/generate']),
    raw: () => pick(['{"model":', '{"model":"x","messages":[', 'null', '"str"', '[1,2]', '{}', '{"messages":{}}', '']), expect: [400] }),
  api('invalid-utf8', 2, { path: '/v1/chat/completions', raw: (ctx) => Buffer.concat([
    Buffer.from(`{"model":"${model(ctx)}","messages":[{"role":"user","content":"a`), Buffer.from(pick([[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]])),
    Buffer.from('b"}]}')]), expect: [400] }),
  { name: 'huge-body', weight: 1, async run(ctx) {
    const body = Buffer.alloc(300000, 'a');
    const r = await rawRequest(ctx.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n`, body);
    return r.status === 413 ? { ok: true, status: 413 } : { ok: false, status: r.status, why: `huge body: ${r.text.slice(0, 200)}` };
  } },
  { name: 'body-cut', weight: 1, async run(ctx) { // the client vanishes mid-body; nothing to answer
    const body = Buffer.from(JSON.stringify(chatBody()(ctx)));
    await rawRequest(ctx.port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length + 100}\r\n\r\n`, body, { closeAfterBytes: rnd(0, body.length) });
    return { ok: true, status: 'cut' };
  } },
  api('unknown-model', 2, { path: () => pick(['/v1/chat/completions', '/api/generate']),
    body: (ctx) => ({ model: pick(['nope', '../etc/passwd', 'x'.repeat(300)]), messages: userMsg(), prompt: 'hi' }), expect: [404, 400] }),
  api('over-context', 2, { path: () => pick(['/v1/chat/completions', '/v1/completions', '/api/generate']),
    body: (ctx) => ({ model: model(ctx), messages: [{ role: 'user', content: LONG }], prompt: LONG }), expect: [400] }),
  api('bad-param', 1, { path: '/v1/chat/completions', body: (ctx) => ({ ...chatBody()(ctx),
    ...pick([{ temperature: 7 }, { n: 3 }, { messages: [] }, { max_tokens: -5 }, { top_p: 'x' }, { stop: [1, 2] }]) }), expect: [400] }),
  api('wrong-route', 1, { method: 'GET', path: () => pick(['/v1/chat/completions', '/v1/nothing', '/api/models/x/y']), expect: [404, 405] }),
  api('unsupported-arch', 1, { path: '/v1/completions', body: (ctx) => ({ model: ctx.models.find((m) => /gemma3/.test(m)), prompt: 'hi', max_tokens: 2 }),
    expect: [200, 400] }),
  // ---- the manager: load and unload under the memory budget ----
  api('load', 2, { path: (ctx) => `/api/models/${encodeURIComponent(model(ctx))}/load`, raw: () => '', expect: [200] }),
  api('unload', 2, { path: (ctx) => `/api/models/${encodeURIComponent(pick(ctx.models))}/unload`, raw: () => '', expect: [200, 404] }),
  api('status', 1, { method: 'GET', path: (ctx) => pick(['/health', '/v1/models', '/api/models', '/api/adapters', '/metrics',
    `/api/models/${encodeURIComponent(pick(ctx.models))}/status`]), expect: [200], json: false }),
  // ---- API dialects that may be built later: used when their route is served ----
  api('ollama-chat', 2, { route: '/api/chat', path: '/api/chat', body: (ctx) => ({ model: model(ctx), messages: userMsg(),
    stream: false, options: { num_predict: rnd(1, 10), ...sampling() } }), expect: [200], check: (j) => j.done === true }),
  api('ollama-chat-stream', 2, { route: '/api/chat', path: '/api/chat', body: (ctx) => ({ model: model(ctx), messages: userMsg(),
    options: { num_predict: rnd(1, 10) } }), expect: [200], end: /"done":\s*true[^\n]*\n?$/ }),
  api('ollama-chat-cancel', 1, { route: '/api/chat', path: '/api/chat', body: (ctx) => ({ model: model(ctx), messages: userMsg(),
    options: { num_predict: 30 } }), expect: [200], abortAfterBytes: 1 }),
  api('anthropic', 2, { route: '/v1/messages', path: '/v1/messages', headers: { 'anthropic-version': '2023-06-01' },
    body: (ctx) => ({ model: model(ctx), max_tokens: rnd(1, 10), messages: userMsg() }), expect: [200], check: (j) => j.type === 'message' }),
  api('anthropic-stream', 2, { route: '/v1/messages', path: '/v1/messages', headers: { 'anthropic-version': '2023-06-01' },
    body: (ctx) => ({ model: model(ctx), max_tokens: rnd(1, 10), messages: userMsg(), stream: true }), expect: [200], end: /message_stop/ }),
  api('anthropic-cancel', 1, { route: '/v1/messages', path: '/v1/messages', headers: { 'anthropic-version': '2023-06-01' },
    body: (ctx) => ({ model: model(ctx), max_tokens: 30, messages: userMsg(), stream: true }), expect: [200], abortAfterBytes: 1 }),
  api('responses', 2, { route: '/v1/responses', path: '/v1/responses', body: (ctx) => ({ model: model(ctx), input: pick(PROMPTS) || 'hi',
    max_output_tokens: rnd(1, 10) }), expect: [200], check: (j) => j.object === 'response' }),
  api('responses-stream', 2, { route: '/v1/responses', path: '/v1/responses', body: (ctx) => ({ model: model(ctx), input: pick(PROMPTS) || 'hi',
    max_output_tokens: rnd(1, 10), stream: true }), expect: [200], end: /response\.(completed|incomplete)/ }),
];
