// Tool calling on /v1/chat/completions with the official openai client: request validation, the
// tools reaching the model's own template (prompt_tokens against `shimmy template --tools` +
// `shimmy tokenize`), history with tool_calls and tool results, and the answer path.
//
// The test models have random weights and never call a tool on their own. The answer path is
// driven deterministically: greedy decoding with logit_bias on the tokens of a call, each bias
// below the previous one and repeat_penalty 10 (applied after the bias) pushing every token
// used down, so the model writes `<tool_call>{"name":"f"}</tool_call>` (Qwen2.5) or
// `{"name":"f"}` (Llama 3.1) token by token. The user message is long enough that the call's
// tokens in the tool prompt fall out of the 64-token penalty window. Also covered: an answer
// without a call, and a call marker that leads to no call (plain content, the text the stream
// held back intact). The parser's cases are unit-tested (tests/server/test_toolcall.c).
//
// The test models' own templates (Qwen2, Llama 3) ignore tools, so copies of two models are made
// with tool-calling templates from the test data (Qwen2.5, Llama 3.1) written into their GGUF.
import OpenAI from 'openai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, expectApiError, withTemplate } from './helpers.mjs';

const QWEN_FILE = 'tiny-qwen2-Q4_0.gguf'; // Qwen2 ChatML template: renders no tools
const LLAMA_FILE = 'tiny-llama-bpe-Q4_0.gguf';
const { bin, data } = requireEnv([QWEN_FILE, LLAMA_FILE]);
const tplDir = path.join(data, 'templates');
for (const f of ['Qwen-Qwen2.5-7B-Instruct.jinja', 'meta-llama-Llama-3.1-8B-Instruct.jinja']) {
  if (!fs.existsSync(path.join(tplDir, f))) {
    console.log(`SKIP: template ${f} missing`);
    process.exit(77);
  }
}
const dir = modelDir(data, [QWEN_FILE]);

const QWEN25 = 'tiny-qwen25-tools', LLAMA31 = 'tiny-llama31-tools', QWEN2 = 'tiny-qwen2-q4_0';
withTemplate(path.join(data, 'models', QWEN_FILE), path.join(dir, `${QWEN25}.gguf`),
  fs.readFileSync(path.join(tplDir, 'Qwen-Qwen2.5-7B-Instruct.jinja'), 'utf8'));
withTemplate(path.join(data, 'models', LLAMA_FILE), path.join(dir, `${LLAMA31}.gguf`),
  fs.readFileSync(path.join(tplDir, 'meta-llama-Llama-3.1-8B-Instruct.jinja'), 'utf8'));

const t = runner();
const srv = await startServer(bin, ['--model-dirs', dir, '--threads', '2']);
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });

const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
const time = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } };
const ask = [{ role: 'user', content: 'Weather in Paris?' }];

// The prompt tokens of a conversation as the CLI renders and tokenizes it (the rendering already
// starts with the BOS text when the template writes one, so tokenize adds none).
function cliTokens(model, messages, tools) {
  const file = path.join(dir, `${model}.gguf`);
  const args = ['template', file, '--messages', JSON.stringify(messages), '--json'];
  if (tools) args.push('--tools', JSON.stringify(tools));
  const rendered = JSON.parse(execFileSync(bin, args)).prompt;
  return JSON.parse(execFileSync(bin, ['tokenize', file, '--text', rendered, '--no-bos', '--json'])).tokens.length;
}

const promptTokens = async (params) =>
  (await client.chat.completions.create({ max_tokens: 1, temperature: 0, ...params })).usage.prompt_tokens;

async function streamChat(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}
const streamedText = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
const streamedCalls = (chunks) => chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
const finishOf = (chunks) => chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);

try {
  await t.test('invalid tools, tool_choice and tool messages are 400 naming the field', async () => {
    const chat = (p) => client.chat.completions.create({ model: QWEN25, messages: ask, max_tokens: 1, ...p });
    await expectApiError(chat({ tools: { a: 1 } }), 400, { param: 'tools' });
    await expectApiError(chat({ tools: [{ type: 'retrieval' }] }), 400, { param: 'tools[0].type' });
    await expectApiError(chat({ tools: [weather, { type: 'function', function: { description: 'x' } }] }), 400,
      { param: 'tools[1].function.name' });
    await expectApiError(chat({ tools: [weather, weather] }), 400, { param: 'tools[1].function.name' });
    await expectApiError(chat({ tools: [weather], tool_choice: 'always' }), 400, { param: 'tool_choice' });
    await expectApiError(chat({ tool_choice: 'required' }), 400, { param: 'tool_choice' });
    await expectApiError(chat({ tools: [weather], tool_choice: { type: 'function', function: { name: 'get_time' } } }), 400,
      { param: 'tool_choice.function.name' });
    await expectApiError(chat({ tools: [weather], parallel_tool_calls: 'yes' }), 400, { param: 'parallel_tool_calls' });
    await expectApiError(chat({ messages: [...ask, { role: 'tool', content: '18 C' }] }), 400,
      { param: 'messages[1].tool_call_id' });
    await expectApiError(chat({ messages: [...ask, { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: {} }] }] }),
      400, { param: 'messages[1].tool_calls[0].function.name' });
  });

  await t.test('tools reach the model template (Qwen2.5: same tokens as shimmy template --tools)', async () => {
    const plain = await promptTokens({ model: QWEN25, messages: ask });
    const withTools = await promptTokens({ model: QWEN25, messages: ask, tools: [weather, time] });
    assertEq(plain, cliTokens(QWEN25, ask), 'no tools');
    assertEq(withTools, cliTokens(QWEN25, ask, [weather, time]), 'with tools');
    assert(withTools > plain + 20, `tools add their definitions (${plain} -> ${withTools})`);
    // "none" renders without tools; a named choice shows the model that tool only
    assertEq(await promptTokens({ model: QWEN25, messages: ask, tools: [weather, time], tool_choice: 'none' }), plain, 'none');
    const named = await promptTokens({ model: QWEN25, messages: ask, tools: [weather, time],
      tool_choice: { type: 'function', function: { name: 'get_time' } } });
    assertEq(named, cliTokens(QWEN25, ask, [time]), 'named tool only');
    assertEq(await promptTokens({ model: QWEN25, messages: ask, tools: [weather, time], tool_choice: 'auto' }), withTools, 'auto');
  });

  await t.test('tools reach the model template (Llama 3.1)', async () => {
    const plain = await promptTokens({ model: LLAMA31, messages: ask });
    const withTools = await promptTokens({ model: LLAMA31, messages: ask, tools: [weather] });
    assertEq(withTools, cliTokens(LLAMA31, ask, [weather]), 'with tools');
    assert(withTools > plain + 20, `tools add their definitions (${plain} -> ${withTools})`);
  });

  await t.test('a template without tool support still answers (tools ignored by it)', async () => {
    const plain = await promptTokens({ model: QWEN2, messages: ask });
    assertEq(await promptTokens({ model: QWEN2, messages: ask, tools: [weather] }), plain, 'Qwen2 template renders no tools');
  });

  await t.test('history with tool_calls and tool results renders as the template expects', async () => {
    const history = [...ask,
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_abc', type: 'function',
        function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_abc', content: '{"temperature": 18}' }];
    const got = await promptTokens({ model: QWEN25, messages: history, tools: [weather] });
    // the template prints arguments with tojson: the server hands it the object the string holds
    const asObject = structuredClone(history);
    asObject[1].tool_calls[0].function.arguments = { city: 'Paris' };
    assertEq(got, cliTokens(QWEN25, asObject, [weather]), 'arguments rendered as an object');
    assert(got !== cliTokens(QWEN25, history, [weather]), 'a JSON string would render differently');
    const llama = await promptTokens({ model: LLAMA31, messages: history, tools: [weather] });
    assertEq(llama, cliTokens(LLAMA31, asObject, [weather]), 'Llama 3.1 history');
  });

  // A forced call (see the top of the file): token ids of the Qwen and Llama 3 vocabularies.
  const longAsk = [{ role: 'user', content: 'Please call the function f now. '.repeat(12).trim() }];
  const fTool = { type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } };
  // Steps of 8 to 14 write the Qwen call and 8 to 20 the Llama one (measured): 11 sits in the
  // middle, away from the edges where a change in the engine's rounding could flip a token.
  const steps = (ids) => Object.fromEntries(ids.map((id, i) => [id, 100 - 11 * i]));
  // <tool_call> {" name ":" f "} </tool_call>
  const qwenCall = { model: QWEN25, messages: longAsk, tools: [fTool], temperature: 0, max_tokens: 7,
    repeat_penalty: 10, logit_bias: steps([151657, 4913, 606, 3252, 69, 9207, 151658]) };
  let forced;
  await t.test('a generated Hermes call becomes message.tool_calls (Qwen2.5)', async () => {
    const r = await client.chat.completions.create(qwenCall);
    const c = r.choices[0];
    assertEq(c.finish_reason, 'tool_calls', 'finish_reason');
    assertEq(c.message.content, null, 'content');
    assertEq(c.message.tool_calls.length, 1, 'one call');
    const call = c.message.tool_calls[0];
    assert(/^call_[A-Za-z0-9]{24}$/.test(call.id), `id ${call.id}`);
    assertEq(call.type, 'function', 'type');
    assertEq(call.function, { name: 'f', arguments: '{}' }, 'function');
    // without tools the same bias is just text: the parser only runs for requests with tools
    const text = await client.chat.completions.create({ ...qwenCall, tools: undefined, max_tokens: 3 });
    assertEq(text.choices[0].message.tool_calls, undefined, 'no tool_calls without tools');
    assert(text.choices[0].message.content.startsWith('<tool_call>'), text.choices[0].message.content);
    forced = c.message;
  });

  await t.test('a generated call streams as delta.tool_calls and the client assembles it', async () => {
    const s = await streamChat(qwenCall);
    assertEq(streamedText(s), '', 'no content: the call was held back, then sent as a call');
    const calls = streamedCalls(s);
    assertEq(calls.length, 1, 'one tool_calls delta');
    assertEq(calls[0].index, 0, 'index');
    assert(/^call_[A-Za-z0-9]{24}$/.test(calls[0].id), `id ${calls[0].id}`);
    assertEq(calls[0].type, 'function', 'type');
    assertEq(calls[0].function, { name: 'f', arguments: '{}' }, 'function');
    assertEq(finishOf(s), ['tool_calls'], 'finish_reason');
    // the openai client's stream helper accumulates the deltas into a message
    const final = await client.beta.chat.completions.stream(qwenCall).finalChatCompletion();
    assertEq(final.choices[0].finish_reason, 'tool_calls', 'assembled finish_reason');
    assertEq(final.choices[0].message.tool_calls.map((c) => c.function), [{ name: 'f', arguments: '{}' }], 'assembled call');
  });

  await t.test('the call and its result go back as history', async () => {
    assert(forced, 'needs the call of the test above');
    const history = [...longAsk, forced, { role: 'tool', tool_call_id: forced.tool_calls[0].id, content: '42' }];
    const got = await promptTokens({ model: QWEN25, messages: history, tools: [fTool] });
    const asObject = structuredClone(history);
    asObject[1].tool_calls[0].function.arguments = {};
    assertEq(got, cliTokens(QWEN25, asObject, [fTool]), 'rendered as the CLI renders it');
  });

  await t.test('a generated Llama 3 call (the whole answer is the JSON object)', async () => {
    // {" name ":" f "}
    const p = { model: LLAMA31, messages: longAsk, tools: [fTool], temperature: 0, max_tokens: 5,
      repeat_penalty: 10, logit_bias: steps([5018, 609, 3332, 69, 9388]) };
    const r = await client.chat.completions.create(p);
    assertEq(r.choices[0].finish_reason, 'tool_calls', 'finish_reason');
    assertEq(r.choices[0].message.tool_calls.map((c) => c.function), [{ name: 'f', arguments: '{}' }], 'call');
    const s = await streamChat(p);
    assertEq(streamedCalls(s).map((c) => c.function), [{ name: 'f', arguments: '{}' }], 'streamed call');
    assertEq(streamedText(s), '', 'no content');
  });

  await t.test('an answer without a call is plain content, streamed the same', async () => {
    const p = { model: QWEN25, messages: ask, tools: [weather], temperature: 0, max_tokens: 12 };
    const r = await client.chat.completions.create(p);
    const m = r.choices[0].message;
    assertEq(m.tool_calls, undefined, 'no tool_calls');
    assert(typeof m.content === 'string' && m.content.length > 0, 'content');
    assert(!m.content.includes('<tool_call>'), 'this greedy answer has no marker (else the case below covers it)');
    assert(['stop', 'length'].includes(r.choices[0].finish_reason), r.choices[0].finish_reason);
    const s = await streamChat(p);
    assertEq(streamedText(s), m.content, 'streamed text');
    assertEq(streamedCalls(s), [], 'no streamed tool_calls');
    assertEq(finishOf(s), [r.choices[0].finish_reason], 'finish_reason');
    // the same request without tools gives the same answer only if the prompt is the same: it is not
    const bare = await client.chat.completions.create({ ...p, tools: undefined });
    assert(bare.usage.prompt_tokens < r.usage.prompt_tokens, 'tools were in the prompt');
  });

  await t.test('a call marker that leads to no call comes back as content (streamed text held, then sent)', async () => {
    // <tool_call> is token 151657 of the Qwen vocabulary: +100 makes greedy decoding repeat it
    const p = { model: QWEN25, messages: ask, tools: [weather], temperature: 0, max_tokens: 4, logit_bias: { 151657: 100 } };
    const r = await client.chat.completions.create(p);
    assertEq(r.choices[0].message.content, '<tool_call>'.repeat(4), 'content');
    assertEq(r.choices[0].message.tool_calls, undefined, 'no tool_calls');
    assertEq(r.choices[0].finish_reason, 'length', 'finish_reason');
    const s = await streamChat(p);
    assertEq(streamedText(s), '<tool_call>'.repeat(4), 'streamed text');
    assertEq(streamedCalls(s), [], 'no streamed tool_calls');
    assertEq(finishOf(s), ['length'], 'finish_reason');
    // held from the marker on: the text arrives in one piece at the end, not token by token
    const pieces = s.map((c) => c.choices[0]?.delta?.content).filter((x) => x);
    assertEq(pieces, ['<tool_call>'.repeat(4)], 'held until the end');
    // without tools nothing is held back
    const plain = await streamChat({ ...p, tools: undefined });
    assertEq(plain.map((c) => c.choices[0]?.delta?.content).filter((x) => x).length, 4, 'token by token without tools');
  });

  await t.test('Llama 3.1: an answer opening with "{" is held and returned as content when it is no call', async () => {
    // "{" is token 90 of the Llama 3 vocabulary
    const p = { model: LLAMA31, messages: ask, tools: [weather], temperature: 0, max_tokens: 3, logit_bias: { 90: 100 } };
    const r = await client.chat.completions.create(p);
    assertEq(r.choices[0].message.content, '{{{', 'content');
    assertEq(r.choices[0].message.tool_calls, undefined, 'no tool_calls');
    const s = await streamChat(p);
    assertEq(streamedText(s), '{{{', 'streamed text');
    assertEq(finishOf(s), ['length'], 'finish_reason');
  });
} finally {
  const code = await srv.stop();
  await t.test('server exits 0 on SIGTERM', async () => assertEq(code, 0, 'exit code'));
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(t.finish());
