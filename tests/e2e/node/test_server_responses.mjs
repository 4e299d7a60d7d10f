// The OpenAI Responses API (stateless) with the official openai client: responses.create, a
// streamed response (every event in order with sequence_number, deltas adding up to the final
// text), function tools (a function_call item from a Qwen2.5 tool template, forced as in
// test_server_tools.mjs, streamed with the function-call events), function_call_output items as
// history, and the 400s of the stateless server (previous_response_id, store: true).
import OpenAI from 'openai';
import fs from 'node:fs';
import path from 'node:path';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, expectApiError, withTemplate } from './helpers.mjs';

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
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });

const base = { model: DOCS, input: 'Once upon a time', instructions: 'You tell stories.', max_output_tokens: 20, temperature: 0 };

async function streamed(params) {
  const stream = await client.responses.create({ ...params, stream: true });
  const out = [];
  for await (const e of stream) out.push(e);
  return out;
}

try {
  let full;
  await t.test('responses.create: a response object with a message item and usage', async () => {
    const r = await client.responses.create(base);
    assert(/^resp_[A-Za-z0-9]{24}$/.test(r.id), `id ${r.id}`);
    assertEq([r.object, r.model, r.instructions, r.store], ['response', DOCS, 'You tell stories.', false], 'fields');
    assert(['completed', 'incomplete'].includes(r.status), r.status);
    assertEq(r.output.map((o) => [o.type, o.role]), [['message', 'assistant']], 'one message item');
    assertEq(r.output[0].content.map((c) => c.type), ['output_text'], 'output_text part');
    assert(r.output_text.length > 0, 'the SDK joins output_text');
    assert(r.usage.output_tokens >= 1 && r.usage.output_tokens <= 20, JSON.stringify(r.usage));
    assertEq(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens, 'total');
    if (r.status === 'incomplete') {
      assertEq(r.incomplete_details, { reason: 'max_output_tokens' }, 'incomplete_details');
      assertEq(r.usage.output_tokens, 20, 'cut at max_output_tokens');
    }
    // input items instead of a string: the same prompt, the same answer
    const items = await client.responses.create({ ...base, input: [{ type: 'message', role: 'user',
      content: [{ type: 'input_text', text: 'Once upon a time' }] }] });
    assertEq([items.output_text, items.usage.input_tokens], [r.output_text, r.usage.input_tokens], 'items = string');
    full = r;
  });

  await t.test('streaming: the documented events in order, sequence_number 0..n, deltas = text', async () => {
    const ev = await streamed(base);
    assertEq(ev.map((e) => e.sequence_number), ev.map((_, i) => i), 'sequence numbers');
    const types = ev.map((e) => e.type);
    const last = full.status === 'completed' ? 'response.completed' : 'response.incomplete';
    assertEq(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added',
      'response.content_part.added'], 'start');
    assertEq(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', last], 'end');
    assert(types.slice(4, -4).every((x) => x === 'response.output_text.delta'), 'deltas between');
    assertEq(ev[0].response.status, 'in_progress', 'created status');
    const itemId = ev[2].item.id;
    assert(ev.slice(2, -1).every((e) => (e.item_id ?? e.item.id) === itemId), 'one item id');
    const text = ev.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assertEq(text, full.output_text, 'deltas = the non-streamed text');
    assertEq(ev.at(-4).text, text, 'output_text.done');
    const final = ev.at(-1).response;
    assertEq([final.status, final.output[0].content[0].text], [full.status, text], 'final response');
    assertEq(final.usage.output_tokens, full.usage.output_tokens, 'usage');
  });

  await t.test('logprobs: include message.output_text.logprobs and top_logprobs', async () => {
    const p = { ...base, max_output_tokens: 6, include: ['message.output_text.logprobs'], top_logprobs: 2 };
    const r = await client.responses.create(p);
    const part = r.output[0].content[0];
    assertEq(part.text, full.output_text.slice(0, part.text.length), 'same greedy text');
    assertEq(part.logprobs.map((l) => l.token).join(''), part.text, 'tokens spell the text');
    assert(part.logprobs.every((l) => l.logprob <= 0 && l.top_logprobs.length === 2 &&
      l.top_logprobs[0].logprob >= l.top_logprobs[1].logprob), 'values and alternatives');
    assert(part.logprobs.every((l) => l.logprob === l.top_logprobs[0].logprob), 'greedy: the chosen token is the top one');
    const ev = await streamed(p);
    const deltas = ev.filter((e) => e.type === 'response.output_text.delta');
    assert(deltas.every((d) => d.logprobs.map((l) => l.token).join('') === d.delta), 'each delta carries its tokens');
    assertEq(ev.find((e) => e.type === 'response.output_text.done').logprobs, part.logprobs, 'done carries all');
    const plain = await client.responses.create({ ...base, max_output_tokens: 2 });
    assertEq(plain.output[0].content[0].logprobs, [], 'none unless asked');
  });

  // <tool_call> {" name ":" f "} </tool_call> (see test_server_tools.mjs for how the bias works)
  const steps = (ids) => Object.fromEntries(ids.map((id, i) => [id, 100 - 11 * i]));
  const fTool = { type: 'function', name: 'f', parameters: { type: 'object', properties: {} } };
  const ask = 'Please call the function f now. '.repeat(12).trim();
  const forced = { model: QWEN25, input: ask, tools: [fTool], max_output_tokens: 7, temperature: 0,
    repeat_penalty: 10, logit_bias: steps([151657, 4913, 606, 3252, 69, 9207, 151658]) };
  let call;
  await t.test('function tools: a generated call is a function_call output item', async () => {
    const r = await client.responses.create(forced);
    assertEq(r.status, 'completed', 'status');
    assertEq(r.output.map((o) => o.type), ['function_call'], 'items');
    call = r.output[0];
    assertEq([call.name, call.arguments, call.status], ['f', '{}', 'completed'], 'call');
    assert(/^call_[A-Za-z0-9]{24}$/.test(call.call_id) && /^fc_/.test(call.id), `${call.call_id} ${call.id}`);
    const ev = await streamed(forced);
    const types = ev.map((e) => e.type);
    assertEq(types, ['response.created', 'response.in_progress', 'response.output_item.added',
      'response.function_call_arguments.delta', 'response.function_call_arguments.done',
      'response.output_item.done', 'response.completed'], 'function-call events');
    assertEq([ev[2].item.type, ev[2].item.name, ev[2].item.arguments], ['function_call', 'f', ''], 'added');
    assertEq([ev[3].delta, ev[4].arguments, ev[5].item.arguments], ['{}', '{}', '{}'], 'arguments');
    assertEq(ev.at(-1).response.output.map((o) => [o.type, o.name]), [['function_call', 'f']], 'final output');
  });

  await t.test('function tools: tool_choice required forces a call that fits the parameters', async () => {
    const weather = { type: 'function', name: 'get_weather', parameters: { type: 'object',
      properties: { city: { type: 'string', maxLength: 8 } }, required: ['city'], additionalProperties: false } };
    const r = await client.responses.create({ model: QWEN25, input: 'Weather in Paris?', tools: [weather],
      tool_choice: 'required', max_output_tokens: 60, temperature: 0 });
    assertEq(r.output.map((o) => [o.type, o.name]), [['function_call', 'get_weather']], 'one call');
    const args = JSON.parse(r.output[0].arguments);
    assert(Object.keys(args).join() === 'city' && args.city.length <= 8, r.output[0].arguments);
  });

  await t.test('function_call and function_call_output items go back as input', async () => {
    assert(call, 'needs the call above');
    const history = [{ role: 'user', content: ask }, call, { type: 'function_call_output', call_id: call.call_id, output: '42' }];
    // max_output_tokens is a bound: more than the 256-token context leaves is clamped, not a 400
    const r = await client.responses.create({ model: QWEN25, input: history, tools: [fTool], max_output_tokens: 4096, temperature: 0 });
    assert(r.usage.total_tokens <= 256, JSON.stringify(r.usage));
    const plain = await client.responses.create({ model: QWEN25, input: ask, tools: [fTool], max_output_tokens: 1, temperature: 0 });
    assert(r.usage.input_tokens > plain.usage.input_tokens + 5, `history rendered (${plain.usage.input_tokens} -> ${r.usage.input_tokens})`);
  });

  // <think> Let me think </think> The answer: forced with the same stepped bias (Qwen3 vocabulary)
  const thinks = { model: 'tiny-qwen3-f32', max_output_tokens: 7, temperature: 0, repeat_penalty: 10,
    input: 'Go on please. '.repeat(16).trim(), logit_bias: steps([151667, 10061, 752, 1744, 151668, 785, 4226]) };
  await t.test('reasoning: a reasoning item before the message', async () => {
    const r = await client.responses.create(thinks);
    assertEq(r.output.map((o) => o.type), ['reasoning', 'message'], 'items');
    assertEq(r.output[0].content, [{ type: 'reasoning_text', text: 'Let me think' }], 'reasoning text');
    assertEq(r.output_text, 'The answer', 'answer');
    const ev = await streamed(thinks);
    const added = ev.filter((e) => e.type === 'response.output_item.added');
    assertEq(added.map((e) => [e.output_index, e.item.type]), [[0, 'reasoning'], [1, 'message']], 'items in order');
    assertEq(ev.filter((e) => e.type === 'response.reasoning_text.delta').map((e) => e.delta).join(''), 'Let me think', 'deltas');
    assertEq(ev.find((e) => e.type === 'response.reasoning_text.done').text, 'Let me think', 'done');
    assertEq(ev.at(-1).response.output.map((o) => o.type), ['reasoning', 'message'], 'final output');
  });

  await t.test('text.format json_schema: the answer is JSON of that schema', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer' } },
      required: ['name', 'age'], additionalProperties: false };
    const p = { model: DOCS, input: 'Give me a person.', max_output_tokens: 100, temperature: 0,
      text: { format: { type: 'json_schema', name: 'person', schema, strict: true } } };
    const r = await client.responses.create(p);
    assertEq(r.status, 'completed', 'the grammar ends the answer');
    const v = JSON.parse(r.output_text);
    assertEq(Object.keys(v).sort(), ['age', 'name'], 'keys');
    assert(typeof v.name === 'string' && v.name.length <= 10 && Number.isInteger(v.age), r.output_text);
    assertEq(r.text.format.type, 'json_schema', 'echoed');
    const ev = await streamed(p);
    assertEq(ev.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), r.output_text, 'streamed');
    await expectApiError(client.responses.create({ ...p, text: { format: { type: 'json_schema', name: 'x',
      schema: { type: 'object', properties: { a: { type: 'string', pattern: '((' } } } } } }), 400, { param: 'text.format' });
  });

  await t.test('stateless: previous_response_id and store: true are 400 naming the field', async () => {
    const e = await expectApiError(client.responses.create({ ...base, previous_response_id: 'resp_abc' }), 400,
      { param: 'previous_response_id' });
    assert(/stateless/.test(e.message), e.message);
    await expectApiError(client.responses.create({ ...base, store: true }), 400, { param: 'store' });
    await expectApiError(client.responses.retrieve('resp_abc'), 404);
    await expectApiError(client.responses.create({ ...base, max_output_tokens: 0 }), 400, { param: 'max_output_tokens' });
    await expectApiError(client.responses.create({ ...base, tools: [{ type: 'web_search_preview' }] }), 400, { param: 'tools[0].type' });
    await expectApiError(client.responses.create({ ...base, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] }),
      400, { param: 'input[0].content[0]' });
    await expectApiError(client.responses.create({ ...base, model: 'no-such-model' }), 404, { code: 'model_not_found' });
  });
} finally {
  const code = await srv.stop();
  await t.test('server exits 0 on SIGTERM', async () => assertEq(code, 0, 'exit code'));
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(t.finish());
