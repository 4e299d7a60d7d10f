// shimmy serve driven by the official openai client: models, chat and completions (streaming and
// not), stop sequences, usage, and the error cases of the OpenAI API reference.
import OpenAI from 'openai';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, expectApiError } from './helpers.mjs';

const CHAT_MODEL_FILE = 'tiny-qwen2-Q4_0.gguf'; // ChatML template, BPE vocabulary
const SPM_MODEL_FILE = 'tiny-llama-spm-Q8_0.gguf'; // Llama-2 template, SPM vocabulary
const { bin, data } = requireEnv([CHAT_MODEL_FILE, SPM_MODEL_FILE]);
const dir = modelDir(data, [CHAT_MODEL_FILE, SPM_MODEL_FILE]);
const CHAT = 'tiny-qwen2-q4_0';
const SPM = 'tiny-llama-spm-q8_0';

const t = runner();
const srv = await startServer(bin, ['--model-dirs', dir, '--parallel', '2', '--threads', '2', '--max-body', '65536']);
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Name three colours.' },
];

async function streamChat(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

try {
  await t.test('models.list and models.retrieve', async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id).sort();
    assertEq(ids, [CHAT, SPM].sort(), 'model ids');
    for (const m of list.data) {
      assertEq(m.object, 'model', 'object');
      assert(typeof m.created === 'number' && m.created > 0, 'created');
      assertEq(m.owned_by, 'shimmy', 'owned_by');
    }
    const one = await client.models.retrieve(CHAT);
    assertEq(one.id, CHAT, 'retrieve id');
    await expectApiError(client.models.retrieve('no-such-model'), 404, { code: 'model_not_found' });
  });

  let reference; // the non-streaming greedy answer
  await t.test('chat completion (non-streaming)', async () => {
    const r = await client.chat.completions.create({ model: CHAT, messages, temperature: 0, max_tokens: 24, seed: 7 });
    assert(r.id.startsWith('chatcmpl-'), `id ${r.id}`);
    assertEq(r.object, 'chat.completion', 'object');
    assertEq(r.model, CHAT, 'model');
    assert(Number.isInteger(r.created), 'created');
    assertEq(r.choices.length, 1, 'one choice');
    const c = r.choices[0];
    assertEq(c.index, 0, 'index');
    assertEq(c.message.role, 'assistant', 'role');
    assert(typeof c.message.content === 'string' && c.message.content.length > 0, 'content');
    assert(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
    assertEq(c.logprobs, null, 'logprobs');
    const u = r.usage;
    assert(u.prompt_tokens > 5, `prompt_tokens ${u.prompt_tokens}`);
    assert(u.completion_tokens >= 1 && u.completion_tokens <= 24, `completion_tokens ${u.completion_tokens}`);
    if (c.finish_reason === 'length') assertEq(u.completion_tokens, 24, 'length means max_tokens');
    assertEq(u.total_tokens, u.prompt_tokens + u.completion_tokens, 'total');
    // prompt_tokens agrees with the CLI rendering the same chat and tokenizing it
    const model = path.join(dir, CHAT_MODEL_FILE);
    const rendered = JSON.parse(execFileSync(bin, ['template', model, '--messages', JSON.stringify(messages), '--json'])).prompt;
    const tok = JSON.parse(execFileSync(bin, ['tokenize', model, '--text', rendered, '--json']));
    assertEq(u.prompt_tokens, tok.tokens.length, 'prompt_tokens vs shimmy template + tokenize');
    reference = r;
    // greedy is deterministic across calls (and across the prefix cache of the slot)
    const again = await client.chat.completions.create({ model: CHAT, messages, temperature: 0, max_tokens: 24, seed: 7 });
    assertEq(again.choices[0].message.content, c.message.content, 'same text twice');
  });

  await t.test('chat completion streaming equals non-streaming', async () => {
    const chunks = await streamChat({ model: CHAT, messages, temperature: 0, max_tokens: 24, seed: 7,
      stream_options: { include_usage: true } });
    assert(chunks.length >= 3, `chunks ${chunks.length}`);
    for (const c of chunks) {
      assertEq(c.object, 'chat.completion.chunk', 'chunk object');
      assert(c.id.startsWith('chatcmpl-') && c.id === chunks[0].id, 'same id in every chunk');
      assertEq(c.model, CHAT, 'chunk model');
    }
    assertEq(chunks[0].choices[0].delta.role, 'assistant', 'role in the first delta');
    const usageChunk = chunks[chunks.length - 1];
    assertEq(usageChunk.choices, [], 'usage chunk has no choices');
    // the same prompt again: its prefix may now come from the prompt cache, which only
    // prompt_tokens_details.cached_tokens tells
    const counts = (u) => ({ ...u, prompt_tokens_details: undefined });
    assertEq(counts(usageChunk.usage), counts(reference.usage), 'streamed usage equals non-streaming usage');
    const cached = usageChunk.usage.prompt_tokens_details?.cached_tokens;
    assert(Number.isInteger(cached) && cached >= 0 && cached < usageChunk.usage.prompt_tokens,
      `cached_tokens ${cached}`);
    const finals = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
    assertEq(finals.length, 1, 'one final chunk');
    assertEq(finals[0].choices[0].finish_reason, reference.choices[0].finish_reason, 'finish_reason');
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assertEq(text, reference.choices[0].message.content, 'assembled text');
    // without include_usage there is no usage chunk
    const plain = await streamChat({ model: CHAT, messages, temperature: 0, max_tokens: 4 });
    assert(plain.every((c) => !c.usage && c.choices.length === 1), 'no usage chunk unless asked');
  });

  await t.test('seeded sampling is reproducible', async () => {
    const p = { model: SPM, messages, temperature: 1.0, top_p: 0.9, max_tokens: 16, seed: 1234 };
    const a = await client.chat.completions.create(p);
    const b = await client.chat.completions.create(p);
    assertEq(a.choices[0].message.content, b.choices[0].message.content, 'same seed, same text');
    const s = await streamChat(p);
    assertEq(s.map((c) => c.choices[0]?.delta?.content ?? '').join(''), a.choices[0].message.content, 'streamed');
  });

  await t.test('stop sequences cut the text and report finish_reason stop', async () => {
    const p = { model: CHAT, messages, temperature: 0, max_tokens: 24, seed: 7 };
    const full = reference.choices[0].message.content;
    // a stop string taken from the middle of the greedy answer
    const start = Math.floor(full.length / 2);
    const cps = Array.from(full.slice(start));
    const stop = cps.slice(0, 2).join('');
    assert(stop.trim().length > 0 || stop.length > 0, 'usable stop string');
    const expected = full.slice(0, full.indexOf(stop));
    const r = await client.chat.completions.create({ ...p, stop: [stop, 'never-in-output-xyz'] });
    assertEq(r.choices[0].message.content, expected, 'text before the stop string');
    assertEq(r.choices[0].finish_reason, 'stop', 'finish_reason');
    const s = await streamChat({ ...p, stop });
    assertEq(s.map((c) => c.choices[0]?.delta?.content ?? '').join(''), expected, 'streamed text before the stop string');
  });

  await t.test('max_tokens and max_completion_tokens bound the answer', async () => {
    for (const key of ['max_tokens', 'max_completion_tokens']) {
      const r = await client.chat.completions.create({ model: SPM, messages, temperature: 0, [key]: 3 });
      const u = r.usage;
      assert(u.completion_tokens <= 3, `${key}: ${u.completion_tokens}`);
      if (r.choices[0].finish_reason === 'length') assertEq(u.completion_tokens, 3, key);
    }
  });

  await t.test('content as an array of text parts', async () => {
    const parts = [{ role: 'system', content: [{ type: 'text', text: 'You are terse.' }] },
      { role: 'user', content: [{ type: 'text', text: 'Name three colours.' }] }];
    const r = await client.chat.completions.create({ model: CHAT, messages: parts, temperature: 0, max_tokens: 24, seed: 7 });
    assertEq(r.choices[0].message.content, reference.choices[0].message.content, 'same prompt, same answer');
    assertEq(r.usage.prompt_tokens, reference.usage.prompt_tokens, 'same prompt tokens');
  });

  await t.test('special-token text in message content stays text', async () => {
    const count = async (content) => (await client.chat.completions.create({ model: CHAT, max_tokens: 1,
      messages: [{ role: 'user', content }] })).usage.prompt_tokens;
    const empty = await count('');
    const special = await count('<|im_end|>');
    // parsed as the control token it would add exactly one token; as text it is several
    assert(special - empty > 1, `"<|im_end|>" in content added ${special - empty} token(s)`);
  });

  await t.test('legacy completions, streaming and echo', async () => {
    const p = { model: SPM, prompt: 'The quick brown fox', temperature: 0, max_tokens: 12 };
    const r = await client.completions.create(p);
    assertEq(r.object, 'text_completion', 'object');
    assert(r.id.startsWith('cmpl-'), 'id');
    assertEq(r.choices.length, 1, 'choices');
    assert(typeof r.choices[0].text === 'string', 'text');
    assert(r.usage.completion_tokens <= 12, 'usage');
    // prompt_tokens agrees with the CLI's own tokenizer run (BOS included)
    const tok = JSON.parse(execFileSync(bin, ['tokenize', path.join(dir, SPM_MODEL_FILE), '--text', p.prompt, '--json']));
    assertEq(r.usage.prompt_tokens, tok.tokens.length, 'prompt_tokens vs shimmy tokenize');
    const stream = await client.completions.create({ ...p, stream: true, stream_options: { include_usage: true } });
    let text = '', usage = null, finish = null;
    for await (const c of stream) {
      assertEq(c.object, 'text_completion', 'chunk object');
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        text += ch.text;
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assertEq(text, r.choices[0].text, 'streamed text');
    assertEq(finish, r.choices[0].finish_reason, 'finish');
    assertEq({ ...usage, prompt_tokens_details: undefined }, { ...r.usage, prompt_tokens_details: undefined }, 'usage');
    assert(Number.isInteger(usage.prompt_tokens_details?.cached_tokens), 'cached_tokens reported');
    const e = await client.completions.create({ ...p, echo: true });
    assertEq(e.choices[0].text, p.prompt + r.choices[0].text, 'echo prefixes the prompt');
    const two = await client.completions.create({ ...p, prompt: ['The quick brown fox', 'Once upon'] });
    assertEq(two.choices.length, 2, 'one choice per prompt');
    assertEq(two.choices[0].text, r.choices[0].text, 'first prompt');
    assertEq(two.choices[1].index, 1, 'second index');
  });

  await t.test('invalid requests are 400 naming the field', async () => {
    await expectApiError(client.chat.completions.create({ model: CHAT, messages, temperature: 5 }), 400, { param: 'temperature' });
    await expectApiError(client.chat.completions.create({ model: CHAT, messages, n: 2 }), 400, { param: 'n' });
    await expectApiError(client.chat.completions.create({ model: CHAT, messages: [] }), 400, { param: 'messages' });
    await expectApiError(client.chat.completions.create({ model: CHAT, messages: [{ role: 'robot', content: 'x' }] }), 400, { param: 'messages[0].role' });
    await expectApiError(client.chat.completions.create({ model: CHAT, messages, top_p: -1 }), 400, { param: 'top_p' });
    await expectApiError(client.chat.completions.create({ model: CHAT, messages, stop: [1] }), 400, { param: 'stop' });
    await expectApiError(client.chat.completions.create({ model: CHAT, messages, logit_bias: { 999999999: 1 } }), 400, { param: 'logit_bias' });
    await expectApiError(client.completions.create({ model: CHAT, prompt: [1, 2] }), 400, { param: 'prompt' });
  });

  await t.test('unknown model is 404 model_not_found', async () => {
    await expectApiError(client.chat.completions.create({ model: 'gpt-4o', messages }), 404, { code: 'model_not_found', param: 'model' });
    await expectApiError(client.completions.create({ model: 'gpt-4o', prompt: 'x' }), 404, { code: 'model_not_found' });
  });

  await t.test('context_length_exceeded', async () => {
    const long = 'hello world '.repeat(400);
    await expectApiError(client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: long }] }), 400, { code: 'context_length_exceeded' });
    await expectApiError(client.chat.completions.create({ model: CHAT, messages, max_tokens: 100000 }), 400, { code: 'context_length_exceeded', param: 'max_tokens' });
    await expectApiError(client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: long }], stream: true }), 400, { code: 'context_length_exceeded' });
  });

  await t.test('raw HTTP errors: malformed JSON, route, method, body limit', async () => {
    const post = (p, body, headers = {}) => fetch(srv.url + p, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    let r = await post('/v1/chat/completions', '{"model": ');
    assertEq(r.status, 400, 'malformed JSON');
    let j = await r.json();
    assertEq(j.error.type, 'invalid_request_error', 'type');
    assert(j.error.message.includes('JSON'), j.error.message);
    r = await post('/v1/chat/completions', Buffer.from([0x7b, 0x22, 0x6d, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
    assertEq(r.status, 400, 'invalid UTF-8');
    r = await fetch(srv.url + '/v1/nothing-here');
    assertEq(r.status, 404, 'unknown route');
    j = await r.json();
    assertEq(j.error.code, 'not_found', 'code');
    r = await fetch(srv.url + '/v1/chat/completions');
    assertEq(r.status, 405, 'GET on a POST route');
    r = await post('/v1/chat/completions', JSON.stringify({ model: CHAT, messages: [{ role: 'user', content: 'x'.repeat(70000) }] }));
    assertEq(r.status, 413, 'body over --max-body');
    j = await r.json();
    assertEq(j.error.code, 'request_too_large', 'code');
  });

  await t.test('health and metrics answer', async () => {
    const h = await (await fetch(srv.url + '/health')).json();
    assertEq(h.status, 'ok', 'status');
    assert(typeof h.version === 'string', 'version');
    assert(h.models_loaded.some((m) => m.name === CHAT), 'loaded models listed');
    const m = await (await fetch(srv.url + '/metrics')).text();
    assert(/shimmy_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+/.test(m), 'requests by route');
    assert(/shimmy_tokens_generated_total [1-9]\d*/.test(m), 'tokens generated');
    assert(/shimmy_model_memory_bytes\{model="tiny-qwen2-q4_0"\} [1-9]\d*/.test(m), 'model memory');
    assert(/shimmy_queue_depth 0/.test(m), 'queue depth');
  });
} finally {
  const code = await srv.stop();
  await t.test('server exits 0 on SIGTERM', async () => assertEq(code, 0, 'exit code'));
}
process.exit(t.finish());
