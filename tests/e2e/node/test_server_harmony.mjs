// gpt-oss's harmony chat format through /v1/chat/completions with the official openai client.
//
// tiny-gpt-oss-F16 carries no chat template, so the built-in "harmony" family renders its
// conversations; a copy with OpenAI's own template (tests/chat/gpt-oss.jinja, what real gpt-oss
// GGUFs carry) renders tools as its developer message. The prompt is checked against
// `shimmy template` + `shimmy tokenize`. The model has random weights and writes no harmony on its
// own: a GBNF grammar (llama-server's `grammar` field) makes it write exactly the text gpt-oss
// writes, so the server's harmony splitter runs on real generated tokens: the analysis channel
// comes back as reasoning_content, the final channel as content, a call on the commentary
// channel as tool_calls, streamed and not. The splitter's cases (every cut, malformed markup) are
// unit-tested in tests/server/test_harmony.c.
import OpenAI from 'openai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, withTemplate } from './helpers.mjs';

const FILE = 'tiny-gpt-oss-F16.gguf';
const { bin, data } = requireEnv([FILE]);
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = modelDir(data, [FILE]);
const PLAIN = 'tiny-gpt-oss-f16', TPL = 'tiny-gpt-oss-tpl';
withTemplate(path.join(data, 'models', FILE), path.join(dir, `${TPL}.gguf`),
  fs.readFileSync(path.join(here, '..', '..', 'chat', 'gpt-oss.jinja'), 'utf8'));

const t = runner();
const srv = await startServer(bin, ['--model-dirs', dir, '--threads', '2']);
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });

const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name' } }, required: ['city'] } } };
const ask = [{ role: 'user', content: 'Weather in Paris?' }];
const gbnf = (text) => `root ::= ${JSON.stringify(text)}\n`;

function rendered(model, messages, tools) {
  const file = path.join(dir, model === PLAIN ? FILE : `${model}.gguf`);
  const args = ['template', file, '--messages', JSON.stringify(messages), '--json'];
  if (tools) args.push('--tools', JSON.stringify(tools));
  const prompt = JSON.parse(execFileSync(bin, args)).prompt;
  const n = JSON.parse(execFileSync(bin, ['tokenize', file, '--text', prompt, '--json'])).tokens.length;
  return { prompt, n };
}

async function stream(params) {
  const s = await client.chat.completions.create({ ...params, stream: true });
  const out = { reasoning: '', content: '', calls: [], finish: null };
  for await (const ch of s) {
    const d = ch.choices[0]?.delta ?? {};
    if (d.reasoning_content) out.reasoning += d.reasoning_content;
    if (d.content) out.content += d.content;
    for (const c of d.tool_calls ?? []) {
      if (!out.calls[c.index]) out.calls[c.index] = { name: '', arguments: '' };
      if (c.function?.name) out.calls[c.index].name += c.function.name;
      if (c.function?.arguments) out.calls[c.index].arguments += c.function.arguments;
    }
    if (ch.choices[0]?.finish_reason) out.finish = ch.choices[0].finish_reason;
  }
  return out;
}

await t.test('the built-in harmony family renders a template-less gpt-oss file', async () => {
  const messages = [{ role: 'system', content: 'Be brief.' }, ...ask];
  const { prompt, n } = rendered(PLAIN, messages);
  assert(prompt.startsWith('<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n' +
    'Knowledge cutoff: 2024-06\nCurrent date: '), `system preamble: ${prompt.slice(0, 120)}`);
  assert(prompt.endsWith('<|start|>developer<|message|># Instructions\n\nBe brief.\n\n<|end|>' +
    '<|start|>user<|message|>Weather in Paris?<|end|><|start|>assistant'), `turns: ${prompt.slice(-160)}`);
  const r = await client.chat.completions.create({ model: PLAIN, messages, max_tokens: 4, temperature: 0 });
  assertEq(r.usage.prompt_tokens, n, 'prompt tokens as the CLI renders and tokenizes');
});

await t.test("OpenAI's template renders the tools in the developer message", async () => {
  const { prompt, n } = rendered(TPL, ask, [weather]);
  assert(prompt.includes('<|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n' +
    '// Weather of a city\ntype get_weather = (_: {\n// City name\ncity: string,\n}) => any;\n\n' +
    '} // namespace functions<|end|>'), `tools: ${prompt}`);
  assert(prompt.includes("Calls to these tools must go to the commentary channel: 'functions'."), 'system note');
  const r = await client.chat.completions.create({ model: TPL, messages: ask, tools: [weather], max_tokens: 2, temperature: 0 });
  assertEq(r.usage.prompt_tokens, n, 'prompt tokens with tools');
});

const THINK_FINAL = '<|channel|>analysis<|message|>The user greets. Reply briefly.<|end|>' +
  '<|start|>assistant<|channel|>final<|message|>Hello! How can I help?';

await t.test('analysis becomes reasoning_content, final becomes content', async () => {
  for (const model of [PLAIN, TPL]) {
    const p = { model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 200, temperature: 0, grammar: gbnf(THINK_FINAL) };
    const r = await client.chat.completions.create(p);
    const m = r.choices[0].message;
    assertEq(m.reasoning_content, 'The user greets. Reply briefly.', `${model} reasoning_content`);
    assertEq(m.content, 'Hello! How can I help?', `${model} content`);
    assertEq(r.choices[0].finish_reason, 'stop', 'finish');
    const s = await stream(p);
    assertEq(s.reasoning, m.reasoning_content, 'streamed reasoning');
    assertEq(s.content, m.content, 'streamed content');
  }
  const raw = await client.chat.completions.create({ model: PLAIN, messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 200, temperature: 0, grammar: gbnf(THINK_FINAL), reasoning_format: 'none' });
  assertEq(raw.choices[0].message.content, THINK_FINAL, 'reasoning_format none keeps the markup');
});

await t.test('a call on the commentary channel becomes tool_calls', async () => {
  const text = '<|channel|>analysis<|message|>Need the weather tool.<|end|><|start|>assistant' +
    '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}';
  const p = { model: TPL, messages: ask, tools: [weather], max_tokens: 200, temperature: 0, grammar: gbnf(text) };
  const r = await client.chat.completions.create(p);
  const c = r.choices[0];
  assertEq(c.finish_reason, 'tool_calls', 'finish');
  assertEq(c.message.content, null, 'no content');
  assertEq(c.message.reasoning_content, 'Need the weather tool.', 'reasoning');
  assertEq(c.message.tool_calls.length, 1, 'one call');
  assertEq(c.message.tool_calls[0].function.name, 'get_weather', 'name');
  assertEq(c.message.tool_calls[0].function.arguments, '{"city":"Paris"}', 'arguments');
  assert(/^call_[A-Za-z0-9]{24}$/.test(c.message.tool_calls[0].id), 'id');
  const s = await stream(p);
  assertEq(s.finish, 'tool_calls', 'streamed finish');
  assertEq(s.content, '', 'streamed content');
  assertEq(s.reasoning, 'Need the weather tool.', 'streamed reasoning');
  assertEq(JSON.stringify(s.calls), JSON.stringify([{ name: 'get_weather', arguments: '{"city":"Paris"}' }]), 'streamed call');
  // The answer goes back as the client got it (content null, reasoning_content): the server
  // hands the template its thinking as "thinking" and no content, as llama-server does.
  const result = { role: 'tool', tool_call_id: c.message.tool_calls[0].id, content: '{"temp": 21}' };
  const history = [...ask, c.message, result];
  const asObject = c.message.tool_calls.map((k) => ({ ...k, function: { ...k.function, arguments: JSON.parse(k.function.arguments) } }));
  const { prompt, n } = rendered(TPL, [...ask, { role: 'assistant', thinking: c.message.reasoning_content,
    tool_calls: asObject }, result], [weather]);
  assert(prompt.endsWith('<|start|>assistant<|channel|>analysis<|message|>Need the weather tool.<|end|>' +
    '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>' +
    '{"city": "Paris"}<|call|><|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>' +
    '"{\\"temp\\": 21}"<|end|><|start|>assistant'), `history: ${prompt.slice(-260)}`);
  const again = await client.chat.completions.create({ model: TPL, messages: history, tools: [weather], max_tokens: 2, temperature: 0 });
  assertEq(again.usage.prompt_tokens, n, 'prompt tokens of the history');
});

await t.test('text without harmony markup is plain content; a forced call is refused', async () => {
  const r = await client.chat.completions.create({ model: PLAIN, messages: ask, max_tokens: 50, temperature: 0,
    grammar: gbnf('Just text, no channels.') });
  assertEq(r.choices[0].message.content, 'Just text, no channels.', 'content');
  assertEq(r.choices[0].message.reasoning_content, undefined, 'no reasoning');
  let e = null;
  try {
    await client.chat.completions.create({ model: TPL, messages: ask, tools: [weather], tool_choice: 'required', max_tokens: 4 });
  } catch (err) {
    e = err;
  }
  assert(e && e.status >= 400 && e.status < 600 && /harmony/.test(e.error?.message ?? e.message), `refused: ${e}`);
  // random weights, no constraint: the request still completes
  const free = await client.chat.completions.create({ model: PLAIN, messages: ask, max_tokens: 16, temperature: 0 });
  assert(typeof free.choices[0].message.content === 'string', 'an answer');
});

srv.stop();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(t.finish());
