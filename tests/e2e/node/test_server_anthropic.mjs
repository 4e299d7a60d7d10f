// The Anthropic Messages API with the official @anthropic-ai/sdk client pointed at shimmy serve:
// messages.create, the stream helper (events in Anthropic's order, finalMessage), stop_sequences
// (stop_reason "stop_sequence" naming the one that matched), count_tokens, tools (a tool_use block
// from a Qwen2.5 tool template, forced as in test_server_tools.mjs), errors (the SDK's error
// classes with Anthropic's error types) and x-api-key auth.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, withTemplate } from './helpers.mjs';

try {
  createRequire(import.meta.url).resolve('@anthropic-ai/sdk');
} catch {
  console.log('SKIP: node_modules/@anthropic-ai/sdk missing (run scripts/test-setup.sh)');
  process.exit(77);
}
const { default: Anthropic } = await import('@anthropic-ai/sdk');

const QWEN_FILE = 'tiny-qwen2-Q4_0.gguf';
const QWEN3_FILE = 'tiny-qwen3-F32.gguf';
const { bin, data } = requireEnv([QWEN_FILE, QWEN3_FILE]);
const DEMO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../models/docs-llama-30m-Q4_K_M.gguf');
const tpl = path.join(data, 'templates', 'Qwen-Qwen2.5-7B-Instruct.jinja');
if (!fs.existsSync(DEMO) || !fs.existsSync(tpl)) {
  console.log('SKIP: the demo model or the Qwen2.5 template is missing');
  process.exit(77);
}
const dir = modelDir(data, [QWEN3_FILE]);
fs.symlinkSync(DEMO, path.join(dir, 'docs-llama-30m-Q4_K_M.gguf'));
const QWEN25 = 'tiny-qwen25-tools', DOCS = 'docs-llama-30m-q4_k_m';
withTemplate(path.join(data, 'models', QWEN_FILE), path.join(dir, `${QWEN25}.gguf`), fs.readFileSync(tpl, 'utf8'));

const t = runner();
const srv = await startServer(bin, ['--model-dirs', dir, '--threads', '2']);
const client = new Anthropic({ baseURL: srv.url, apiKey: 'unused', maxRetries: 0 });

const ask = [{ role: 'user', content: 'Once upon a time' }];
const base = { model: DOCS, max_tokens: 24, temperature: 0, system: 'You tell stories.', messages: ask };
const textOf = (m) => m.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

// Raw events of a streamed request, through the SDK's own stream parser.
async function events(params) {
  const stream = await client.messages.create({ ...params, stream: true });
  const out = [];
  for await (const e of stream) out.push(e);
  return out;
}

try {
  let full;
  await t.test('messages.create returns a Message', async () => {
    const m = await client.messages.create(base);
    assert(/^msg_[A-Za-z0-9]{24}$/.test(m.id), `id ${m.id}`);
    assertEq([m.type, m.role, m.model], ['message', 'assistant', DOCS], 'type, role, model');
    assertEq(m.content.map((b) => b.type), ['text'], 'one text block');
    assert(m.content[0].text.length > 0, 'text');
    assert(['end_turn', 'max_tokens'].includes(m.stop_reason), m.stop_reason);
    assertEq(m.stop_sequence, null, 'stop_sequence');
    assert(m.usage.input_tokens > 5 && m.usage.output_tokens >= 1 && m.usage.output_tokens <= 24, JSON.stringify(m.usage));
    if (m.stop_reason === 'max_tokens') assertEq(m.usage.output_tokens, 24, 'max_tokens reached');
    full = m;
  });

  await t.test('streaming: Anthropic event order, and the stream helper assembles the same message', async () => {
    const ev = await events(base);
    const types = ev.map((e) => e.type);
    // the SDK drops pings: the raw stream shows them, and that each event's name is its data's type
    const raw = await fetch(`${srv.url}/v1/messages`, { method: 'POST', body: JSON.stringify({ ...base, stream: true }),
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' } });
    assertEq(raw.headers.get('content-type'), 'text/event-stream', 'content type');
    const frames = (await raw.text()).trim().split('\n\n').map((f) => f.split('\n'));
    assert(frames.every((f) => f.length === 2 && f[0].startsWith('event: ') && f[1].startsWith('data: ')), 'event + data');
    const names = frames.map((f) => f[0].slice(7));
    assertEq(frames.map((f) => JSON.parse(f[1].slice(6)).type), names, 'data.type = event name');
    assertEq(names.slice(0, 3), ['message_start', 'content_block_start', 'ping'], 'raw start');
    assertEq(names.filter((n) => n !== 'ping'), types, 'the SDK saw every other event');
    assertEq(types[0], 'message_start', 'first event');
    assertEq(ev[0].message.content, [], 'message_start has empty content');
    assertEq(ev[0].message.usage.input_tokens, full.usage.input_tokens, 'input_tokens known at the start');
    assertEq(types[1], 'content_block_start', 'then the block');
    assertEq(ev[1].content_block, { type: 'text', text: '' }, 'empty text block');
    assertEq(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop'], 'end');
    const deltas = ev.filter((e) => e.type === 'content_block_delta');
    assert(deltas.length >= 2 && deltas.every((d) => d.index === 0 && d.delta.type === 'text_delta'), 'text deltas');
    assertEq(deltas.map((d) => d.delta.text).join(''), full.content[0].text, 'deltas = the non-streamed text');
    const md = ev.at(-2);
    assertEq([md.delta.stop_reason, md.delta.stop_sequence], [full.stop_reason, null], 'message_delta');
    assertEq(md.usage.output_tokens, full.usage.output_tokens, 'output_tokens');
    const final = await client.messages.stream(base).finalMessage();
    assertEq(final.content, full.content, 'finalMessage content');
    assertEq(final.stop_reason, full.stop_reason, 'finalMessage stop_reason');
    assertEq(final.usage.output_tokens, full.usage.output_tokens, 'finalMessage usage');
  });

  await t.test('stop_sequences end the answer before the sequence and name it', async () => {
    const text = full.content[0].text;
    // a word from the middle of the greedy answer, as the stop
    const words = text.trim().split(/\s+/).filter((w) => w.length >= 3);
    assert(words.length >= 3, `enough words in ${JSON.stringify(text)}`);
    const stop = words[2];
    const at = text.indexOf(stop);
    const m = await client.messages.create({ ...base, stop_sequences: ['never-generated-xyz', stop] });
    assertEq(m.stop_reason, 'stop_sequence', 'stop_reason');
    assertEq(m.stop_sequence, stop, 'stop_sequence');
    assertEq(textOf(m), text.slice(0, at), 'text up to the sequence');
    const final = await client.messages.stream({ ...base, stop_sequences: [stop] }).finalMessage();
    assertEq([final.stop_reason, final.stop_sequence], ['stop_sequence', stop], 'streamed');
    assertEq(textOf(final), text.slice(0, at), 'streamed text');
    const none = await client.messages.create({ ...base, stop_sequences: ['never-generated-xyz'] });
    assertEq([none.stop_reason, textOf(none)], [full.stop_reason, text], 'a sequence that never occurs');
  });

  await t.test('models.list and models.retrieve in Anthropic\'s shape', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assertEq([m.type, m.display_name], ['model', m.id], 'type, display_name');
      assert(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(m.created_at), m.created_at);
      ids.push(m.id);
    }
    assertEq(ids.sort(), [DOCS, QWEN25, 'tiny-qwen3-f32'].sort(), 'every model');
    const one = await client.models.retrieve(DOCS);
    assertEq([one.id, one.type], [DOCS, 'model'], 'retrieve');
    // without anthropic-version the OpenAI listing is unchanged
    const plain = await (await fetch(`${srv.url}/v1/models`)).json();
    assertEq([plain.object, plain.has_more, plain.data[0].type], ['list', undefined, undefined], 'OpenAI shape');
  });

  await t.test('count_tokens counts what messages.create bills as input', async () => {
    const n = await client.messages.countTokens({ model: DOCS, system: base.system, messages: ask });
    assertEq(n.input_tokens, full.usage.input_tokens, 'same as usage.input_tokens');
    const bare = await client.messages.countTokens({ model: DOCS, messages: ask });
    assert(bare.input_tokens < n.input_tokens, 'the system prompt counts');
    // over the context (256 tokens for the tiny model) the count is still the answer
    const long = await client.messages.countTokens({ model: QWEN25, messages: [{ role: 'user', content: 'word '.repeat(400) }] });
    assert(long.input_tokens > 256, `counted ${long.input_tokens}`);
  });

  // <tool_call> {" name ":" f "} </tool_call> (see test_server_tools.mjs for how the bias works)
  const steps = (ids) => Object.fromEntries(ids.map((id, i) => [id, 100 - 11 * i]));
  const fTool = { name: 'f', input_schema: { type: 'object', properties: {} } };
  const forced = { model: QWEN25, max_tokens: 7, temperature: 0, tools: [fTool],
    messages: [{ role: 'user', content: 'Please call the function f now. '.repeat(12).trim() }],
    repeat_penalty: 10, logit_bias: steps([151657, 4913, 606, 3252, 69, 9207, 151658]) };
  let call;
  await t.test('tools: a generated call is a tool_use block (stop_reason tool_use)', async () => {
    const m = await client.messages.create(forced);
    assertEq(m.stop_reason, 'tool_use', 'stop_reason');
    assertEq(m.content.map((b) => b.type), ['tool_use'], 'blocks');
    call = m.content[0];
    assert(/^toolu_[A-Za-z0-9]{24}$/.test(call.id), `id ${call.id}`);
    assertEq([call.name, call.input], ['f', {}], 'name and input');
    const final = await client.messages.stream(forced).finalMessage();
    assertEq(final.stop_reason, 'tool_use', 'streamed stop_reason');
    assertEq(final.content.map((b) => [b.type, b.name, b.input]), [['tool_use', 'f', {}]], 'streamed tool_use');
    const ev = await events(forced);
    const start = ev.find((e) => e.type === 'content_block_start');
    assertEq([start.content_block.type, start.content_block.input], ['tool_use', {}], 'block starts empty');
    assertEq(ev.filter((e) => e.delta?.type === 'input_json_delta').map((e) => e.delta.partial_json).join(''), '{}',
      'input_json_delta');
  });

  await t.test('tools: tool_choice any / tool force a call that fits input_schema', async () => {
    const weather = { name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string', maxLength: 8 } },
      required: ['city'], additionalProperties: false } };
    for (const tool_choice of [{ type: 'any' }, { type: 'tool', name: 'get_weather' }]) {
      const m = await client.messages.create({ model: QWEN25, max_tokens: 60, temperature: 0, tools: [weather, fTool], tool_choice,
        messages: [{ role: 'user', content: 'Weather in Paris?' }] });
      assertEq(m.stop_reason, 'tool_use', `${tool_choice.type}: stop_reason`);
      const calls = m.content.filter((b) => b.type === 'tool_use');
      assert(calls.length >= 1, `${tool_choice.type}: a call`);
      if (tool_choice.type === 'tool') assertEq(calls.map((c) => c.name), ['get_weather'], 'the named tool');
      for (const c of calls.filter((x) => x.name === 'get_weather')) {
        assertEq(Object.keys(c.input), ['city'], 'input keys');
        assert(typeof c.input.city === 'string' && c.input.city.length <= 8, JSON.stringify(c.input));
      }
    }
  });

  await t.test('tools: tool_use and tool_result go back as history; tool_choice none drops the tools', async () => {
    assert(call, 'needs the call above');
    const history = [...forced.messages, { role: 'assistant', content: [call] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '42' }] }];
    const withResult = await client.messages.countTokens({ model: QWEN25, tools: [fTool], messages: history });
    const without = await client.messages.countTokens({ model: QWEN25, tools: [fTool], messages: forced.messages });
    assert(withResult.input_tokens > without.input_tokens + 5, `history rendered (${without.input_tokens} -> ${withResult.input_tokens})`);
    // max_tokens is a bound: far more than the 256-token context leaves is clamped, not a 400
    const m = await client.messages.create({ ...forced, messages: history, logit_bias: undefined, max_tokens: 4096 });
    assertEq(m.type, 'message', 'answers after a tool result');
    assertEq(m.usage.input_tokens, withResult.input_tokens, 'input tokens');
    assert(m.usage.input_tokens + m.usage.output_tokens <= 256, JSON.stringify(m.usage));
    const none = await client.messages.countTokens({ model: QWEN25, tools: [fTool], tool_choice: { type: 'none' }, messages: forced.messages });
    const bare = await client.messages.countTokens({ model: QWEN25, messages: forced.messages });
    assertEq(none.input_tokens, bare.input_tokens, 'tool_choice none renders no tools');
  });

  // <think> Let me think </think> The answer: forced with the same stepped bias (Qwen3 vocabulary)
  const thinks = { model: 'tiny-qwen3-f32', max_tokens: 7, temperature: 0, repeat_penalty: 10,
    messages: [{ role: 'user', content: 'Go on please. '.repeat(16).trim() }],
    logit_bias: steps([151667, 10061, 752, 1744, 151668, 785, 4226]) };
  await t.test('reasoning: the thinking is a thinking block before the text block', async () => {
    const m = await client.messages.create(thinks);
    assertEq(m.content.map((b) => b.type), ['thinking', 'text'], 'blocks');
    assertEq([m.content[0].thinking, m.content[1].text], ['Let me think', 'The answer'], 'split');
    const ev = await events(thinks);
    const starts = ev.filter((e) => e.type === 'content_block_start');
    assertEq(starts.map((e) => [e.index, e.content_block.type]), [[0, 'thinking'], [1, 'text']], 'streamed blocks');
    assertEq(ev.filter((e) => e.delta?.type === 'thinking_delta').map((e) => e.delta.thinking).join(''), 'Let me think', 'thinking_delta');
    assertEq(ev.filter((e) => e.type === 'content_block_stop').map((e) => e.index), [0, 1], 'each block stops');
    const final = await client.messages.stream(thinks).finalMessage();
    assertEq(final.content.map((b) => b.thinking ?? b.text), ['Let me think', 'The answer'], 'finalMessage');
  });

  await t.test('invalid requests: BadRequestError with invalid_request_error; unknown model: NotFoundError', async () => {
    const expect = async (p, cls, type, re) => {
      try {
        await p;
      } catch (e) {
        assert(e instanceof cls, `${e.constructor.name}: ${e.message}`);
        assertEq(e.error?.type, 'error', 'envelope type');
        assertEq(e.error?.error?.type, type, 'error type');
        assert(re.test(e.error.error.message), e.error.error.message);
        return;
      }
      throw new Error('expected an error');
    };
    await expect(client.messages.create({ model: DOCS, messages: ask }), Anthropic.BadRequestError,
      'invalid_request_error', /max_tokens/);
    await expect(client.messages.create({ ...base, temperature: 1.5 }), Anthropic.BadRequestError,
      'invalid_request_error', /temperature/);
    await expect(client.messages.create({ ...base, messages: [{ role: 'user', content: [{ type: 'image',
      source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }] }] }), Anthropic.BadRequestError,
      'invalid_request_error', /text-only/);
    await expect(client.messages.create({ ...base, model: 'no-such-model' }), Anthropic.NotFoundError,
      'not_found_error', /no-such-model/);
  });
} finally {
  const code = await srv.stop();
  await t.test('server exits 0 on SIGTERM', async () => assertEq(code, 0, 'exit code'));
}

// --api-key: the SDK's x-api-key header is accepted; a wrong key is an authentication_error.
const keyed = await startServer(bin, ['--model-dirs', dir, '--threads', '2', '--api-key', 'sk-test']);
try {
  await t.test('x-api-key authenticates; a wrong key is AuthenticationError', async () => {
    const ok = new Anthropic({ baseURL: keyed.url, apiKey: 'sk-test', maxRetries: 0 });
    assert((await ok.messages.countTokens({ model: DOCS, messages: ask })).input_tokens > 0, 'counted');
    const bad = new Anthropic({ baseURL: keyed.url, apiKey: 'wrong', maxRetries: 0 });
    try {
      await bad.messages.countTokens({ model: DOCS, messages: ask });
      throw new Error('expected a 401');
    } catch (e) {
      assert(e instanceof Anthropic.AuthenticationError, `${e.constructor.name}: ${e.message}`);
      assertEq(e.error?.error?.type, 'authentication_error', 'error type');
    }
  });
} finally {
  await keyed.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(t.finish());
