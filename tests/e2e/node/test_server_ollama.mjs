// Ollama's API with the official `ollama` npm client (new Ollama({ host }) pointed at shimmy):
// list, chat (JSON and streamed), generate, format (json and a schema), show, ps, version,
// load/unload, tool calls, errors (unknown model, invalid fields: 400 in Ollama's shape naming the
// field), HEAD /, and llama-server's /tokenize, /detokenize, /apply-template, /props via fetch.
//
// Tool calls: the test models have random weights and never call a tool on their own; as in
// test_server_tools.mjs the call is forced with greedy decoding, a descending logit_bias (a shimmy
// extension the Ollama routes accept too) on the tokens of `<tool_call>{"name":"f"}</tool_call>`
// and repeat_penalty 10, on a copy of a Qwen2 model given the Qwen2.5 template.
import { Ollama } from 'ollama';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, withTemplate } from './helpers.mjs';

const TINY_FILE = 'tiny-llama-spm-Q8_0.gguf';
const DOCS_FILE = 'docs-llama-30m-Q4_K_M.gguf';
const QWEN_FILE = 'tiny-qwen2-Q4_0.gguf';
const QWEN3_FILE = 'tiny-qwen3-F32.gguf';
const { bin, data } = requireEnv([TINY_FILE, DOCS_FILE, QWEN_FILE, QWEN3_FILE]);
const tpl = path.join(data, 'templates', 'Qwen-Qwen2.5-7B-Instruct.jinja');
if (!fs.existsSync(tpl)) {
  console.log('SKIP: template Qwen-Qwen2.5-7B-Instruct.jinja missing');
  process.exit(77);
}
const dir = modelDir(data, [TINY_FILE, DOCS_FILE, QWEN3_FILE]);
const TINY = 'tiny-llama-spm-q8_0', DOCS = 'docs-llama-30m-q4_k_m', QWEN25 = 'tiny-qwen25-tools';
const QWEN3 = 'tiny-qwen3-f32';
withTemplate(path.join(data, 'models', QWEN_FILE), path.join(dir, `${QWEN25}.gguf`), fs.readFileSync(tpl, 'utf8'));

const t = runner();
const srv = await startServer(bin, ['--model-dirs', dir, '--threads', '2']);
const ollama = new Ollama({ host: srv.url });
const ask = [{ role: 'user', content: 'What does git switch do?' }];
const greedy = { temperature: 0, num_predict: 12 };

// The error an ollama client call throws (ResponseError: status_code and the server's message).
async function expectError(promise, status, pattern) {
  try {
    await promise;
  } catch (e) {
    assertEq(e.status_code, status, `status (${e.message})`);
    assert(pattern.test(e.message), `message ${JSON.stringify(e.message)} matches ${pattern}`);
    return e;
  }
  throw new Error(`expected HTTP ${status}, the call succeeded`);
}

function checkFinal(r, maxEval) {
  assertEq(r.done, true, 'done');
  assert(['stop', 'length'].includes(r.done_reason), `done_reason ${r.done_reason}`);
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count', 'eval_duration'])
    assert(Number.isInteger(r[k]) && r[k] >= 0, `${k} = ${r[k]}`);
  assert(r.prompt_eval_count > 0 && r.eval_count > 0 && r.eval_count <= maxEval, `counts ${r.prompt_eval_count} ${r.eval_count}`);
  // nanoseconds: a generation of a few tokens takes well over a microsecond and under a minute
  assert(r.total_duration > 1e3 && r.total_duration < 60e9, `total_duration ${r.total_duration}`);
  assert(r.total_duration >= r.prompt_eval_duration + r.eval_duration, 'total covers prompt + eval');
  assert(!Number.isNaN(Date.parse(r.created_at)), `created_at ${r.created_at}`);
}

try {
  await t.test('GET and HEAD / answer as Ollama does; version', async () => {
    const r = await fetch(`${srv.url}/`);
    assertEq(r.status, 200, 'GET /');
    assertEq(await r.text(), 'Ollama is running', 'body');
    assertEq((await fetch(`${srv.url}/`, { method: 'HEAD' })).status, 200, 'HEAD /');
    const v = await ollama.version();
    assert(/^\d+\.\d+\.\d+/.test(v.version), `version ${v.version}`);
  });

  await t.test('list (/api/tags)', async () => {
    const { models } = await ollama.list();
    assertEq(models.map((m) => m.name).sort(), [DOCS, QWEN25, QWEN3, TINY].sort(), 'names');
    const docs = models.find((m) => m.name === DOCS);
    assertEq(docs.model, DOCS, 'model');
    assertEq(docs.size, fs.statSync(path.join(dir, DOCS_FILE)).size, 'size');
    assert(/^[0-9a-f]{40,64}$/.test(docs.digest), `digest ${docs.digest}`);
    assertEq(docs.details.format, 'gguf', 'format');
    assertEq(docs.details.family, 'llama', 'family');
    assertEq(docs.details.quantization_level, 'Q4_K_M', 'quantization_level');
    assert(/^\d+(\.\d+)?[KMB]$/.test(docs.details.parameter_size), `parameter_size ${docs.details.parameter_size}`);
    assert(!Number.isNaN(Date.parse(docs.modified_at)), 'modified_at');
  });

  let answer;
  await t.test('chat (JSON body)', async () => {
    const r = await ollama.chat({ model: DOCS, messages: ask, options: greedy });
    assertEq(r.model, DOCS, 'model');
    assertEq(r.message.role, 'assistant', 'role');
    assert(typeof r.message.content === 'string' && r.message.content.length > 0, 'content');
    checkFinal(r, 12);
    answer = r;
    // the default tag Ollama clients add resolves to the same model
    const again = await ollama.chat({ model: `${DOCS}:latest`, messages: ask, options: greedy });
    assertEq(again.message.content, r.message.content, 'name:latest = name (greedy)');
    assertEq(again.model, `${DOCS}:latest`, 'the name is echoed as sent');
  });

  await t.test('chat streaming: NDJSON chunks that add up to the same answer', async () => {
    const stream = await ollama.chat({ model: DOCS, messages: ask, options: greedy, stream: true });
    let text = '', last, n = 0;
    for await (const part of stream) {
      n++;
      if (!part.done) assertEq(part.message.role, 'assistant', 'chunk role');
      text += part.message.content;
      last = part;
    }
    assert(n > 2, `chunks: ${n}`);
    assertEq(text, answer.message.content, 'streamed text = JSON answer');
    checkFinal(last, 12);
    assertEq(last.eval_count, answer.eval_count, 'eval_count');
    // without "stream" in the body the server streams (Ollama's default)
    const raw = await fetch(`${srv.url}/api/chat`, { method: 'POST', body: JSON.stringify({ model: DOCS, messages: ask, options: greedy }) });
    assertEq(raw.headers.get('content-type'), 'application/x-ndjson', 'content-type');
    const lines = (await raw.text()).trim().split('\n').map((l) => JSON.parse(l));
    assertEq(lines.map((l) => l.message.content).join(''), answer.message.content, 'default stream');
  });

  await t.test('generate: templated, raw, streamed; system and stop', async () => {
    const r = await ollama.generate({ model: TINY, prompt: 'Once upon a time', options: { ...greedy, num_predict: 8 } });
    assert(typeof r.response === 'string', 'response');
    checkFinal(r, 8);
    const s = await ollama.generate({ model: TINY, prompt: 'Once upon a time', options: { ...greedy, num_predict: 8 }, stream: true });
    let text = '', last;
    for await (const part of s) {
      text += part.response;
      last = part;
    }
    assertEq(text, r.response, 'streamed = JSON');
    assertEq(last.done_reason, r.done_reason, 'done_reason');
    // raw skips the template: fewer prompt tokens than the templated prompt
    const raw = await ollama.generate({ model: TINY, prompt: 'Once upon a time', raw: true, options: { ...greedy, num_predict: 4 } });
    assert(raw.prompt_eval_count < r.prompt_eval_count, `raw ${raw.prompt_eval_count} < templated ${r.prompt_eval_count}`);
    const sys = await ollama.generate({ model: DOCS, prompt: 'Hi', system: 'You are a pirate.', options: { ...greedy, num_predict: 2 } });
    const nosys = await ollama.generate({ model: DOCS, prompt: 'Hi', options: { ...greedy, num_predict: 2 } });
    assert(sys.prompt_eval_count > nosys.prompt_eval_count, 'system prompt reaches the template');
    // a stop string ends the answer before it and is not part of it
    const full = await ollama.generate({ model: DOCS, prompt: 'What does git switch do?', options: { temperature: 0, num_predict: 20 } });
    const word = full.response.trim().split(/\s+/)[2];
    const cut = await ollama.generate({ model: DOCS, prompt: 'What does git switch do?', options: { temperature: 0, num_predict: 20, stop: [word] } });
    assertEq(cut.done_reason, 'stop', 'stopped');
    assert(!cut.response.includes(word) && full.response.startsWith(cut.response), `${cut.response} | ${full.response}`);
  });

  await t.test('format: "json" and a JSON Schema constrain the answer', async () => {
    const j = await ollama.chat({ model: DOCS, messages: [{ role: 'user', content: 'Describe git as JSON.' }], format: 'json',
      options: { temperature: 0, num_predict: 200 } });
    const v = JSON.parse(j.message.content);
    assert(v && typeof v === 'object' && !Array.isArray(v), 'an object');
    const schema = { type: 'object', properties: { age: { type: 'integer' }, name: { type: 'string', maxLength: 8 } }, required: ['age', 'name'] };
    const g = await ollama.generate({ model: DOCS, prompt: 'A person as JSON.', format: schema, options: { temperature: 0, num_predict: 200 } });
    const p = JSON.parse(g.response);
    assert(Number.isInteger(p.age) && typeof p.name === 'string' && p.name.length <= 8, g.response);
    assertEq(Object.keys(p).sort(), ['age', 'name'], 'keys');
    // a schema the grammar cannot enforce is a 400
    await expectError(ollama.generate({ model: DOCS, prompt: 'x', format: { type: 'integer', multipleOf: 3 } }), 400, /multipleOf/);
  });

  await t.test('think: the thinking goes to message.thinking (forced <think> on a Qwen3 model)', async () => {
    // <think> Let me think </think> The answer: the stepped bias of test_server_anthropic.mjs
    const steps = (ids) => Object.fromEntries(ids.map((id, i) => [id, 100 - 11 * i]));
    const req = { model: QWEN3, messages: [{ role: 'user', content: 'Go on please. '.repeat(16).trim() }],
      options: { temperature: 0, num_predict: 7, repeat_penalty: 10 },
      logit_bias: steps([151667, 10061, 752, 1744, 151668, 785, 4226]) };
    const r = await ollama.chat({ ...req, think: true });
    assertEq([r.message.thinking, r.message.content], ['Let me think', 'The answer'], 'split');
    const s = await ollama.chat({ ...req, think: true, stream: true });
    let thinking = '', content = '';
    for await (const part of s) {
      thinking += part.message.thinking ?? '';
      content += part.message.content;
    }
    assertEq([thinking, content], ['Let me think', 'The answer'], 'streamed split');
    const g = await ollama.generate({ model: QWEN3, prompt: req.messages[0].content, think: true,
      options: req.options, logit_bias: req.logit_bias });
    assertEq([g.thinking, g.response], ['Let me think', 'The answer'], 'generate split');
    // without "think" the text is as the model wrote it
    const raw = await ollama.chat(req);
    assert(raw.message.content.startsWith('<think>') && raw.message.thinking === undefined, raw.message.content);
  });

  await t.test('show: details, template, model_info from the GGUF header', async () => {
    const s = await ollama.show({ model: DOCS });
    assertEq(s.details.family, 'llama', 'family');
    assertEq(s.details.quantization_level, 'Q4_K_M', 'quantization_level');
    assert(s.details.parameter_size.length > 0, 'parameter_size');
    assert(s.template.includes('{%') || s.template.includes('{{'), 'the chat template (Jinja)');
    assertEq(s.model_info['general.architecture'], 'llama', 'general.architecture');
    assert(Number.isInteger(s.model_info['llama.context_length']), 'llama.context_length');
    assert(s.model_info['general.parameter_count'] > 1e6, 'parameter_count');
    assertEq(s.model_info['tokenizer.ggml.tokens'], null, 'big arrays only with verbose');
    assert(s.capabilities.includes('completion'), 'capabilities');
    const v = await ollama.show({ model: DOCS, verbose: true });
    assert(Array.isArray(v.model_info['tokenizer.ggml.tokens']), 'verbose: vocabulary');
    await expectError(ollama.show({ model: 'nope' }), 404, /not found/);
  });

  await t.test('ps, load and unload (empty prompt; keep_alive 0)', async () => {
    let ps = await ollama.ps();
    const docs = ps.models.find((m) => m.name === DOCS);
    assert(docs, 'the model used above is loaded');
    assert(docs.size > 0, 'size');
    assert(Date.parse(docs.expires_at) > Date.now(), `expires_at ${docs.expires_at}`);
    const u = await ollama.generate({ model: TINY, prompt: '', keep_alive: 0 });
    assertEq(u.done_reason, 'unload', 'unload');
    ps = await ollama.ps();
    assert(!ps.models.some((m) => m.name === TINY), 'unloaded');
    const l = await ollama.chat({ model: TINY, messages: [] });
    assertEq(l.done_reason, 'load', 'load');
    ps = await ollama.ps();
    assert(ps.models.some((m) => m.name === TINY), 'loaded again');
    // keep_alive 0 on a generation unloads once it is done
    await ollama.generate({ model: TINY, prompt: 'Hi', keep_alive: '0s', options: { num_predict: 2 } });
    ps = await ollama.ps();
    assert(!ps.models.some((m) => m.name === TINY), 'keep_alive 0 unloaded after the answer');
    // keep_alive -1: loaded until told otherwise; a duration: unloaded once it has passed
    await ollama.generate({ model: TINY, prompt: 'Hi', keep_alive: -1, options: { num_predict: 2 } });
    ps = await ollama.ps();
    assert(Date.parse(ps.models.find((m) => m.name === TINY).expires_at) > Date.now() + 365 * 86400e3, 'never expires');
    await ollama.generate({ model: TINY, prompt: 'Hi', keep_alive: '1500ms', options: { num_predict: 2 } });
    ps = await ollama.ps();
    const exp = Date.parse(ps.models.find((m) => m.name === TINY).expires_at) - Date.now();
    assert(exp > 0 && exp <= 1500, `expires in ${exp} ms`);
    const t0 = Date.now();
    while (Date.now() - t0 < 6000 && (await ollama.ps()).models.some((m) => m.name === TINY))
      await new Promise((r) => setTimeout(r, 200));
    const gone = Date.now() - t0;
    assert(!(await ollama.ps()).models.some((m) => m.name === TINY), 'unloaded after its keep_alive');
    assert(gone >= 1000, `not before its time (${gone} ms)`);
  });

  await t.test('tool calls come back as message.tool_calls', async () => {
    const longAsk = [{ role: 'user', content: 'Please call the function f now. '.repeat(12).trim() }];
    const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }];
    const steps = (ids) => Object.fromEntries(ids.map((id, i) => [id, 100 - 11 * i]));
    const req = { model: QWEN25, messages: longAsk, tools, options: { temperature: 0, num_predict: 7, repeat_penalty: 10 },
      logit_bias: steps([151657, 4913, 606, 3252, 69, 9207, 151658]) };
    const r = await ollama.chat(req);
    assertEq(r.message.tool_calls, [{ function: { name: 'f', arguments: {} } }], 'tool_calls');
    assertEq(r.message.content, '', 'content');
    const s = await ollama.chat({ ...req, stream: true });
    const calls = [];
    for await (const part of s) calls.push(...(part.message.tool_calls ?? []));
    assertEq(calls, [{ function: { name: 'f', arguments: {} } }], 'streamed tool_calls');
    // the call and its result go back as history (Ollama's shapes: arguments an object, tool_name)
    const back = await ollama.chat({ model: QWEN25, tools, options: { num_predict: 2 },
      messages: [...longAsk, r.message, { role: 'tool', tool_name: 'f', content: '42' }] });
    assert(back.prompt_eval_count > r.prompt_eval_count, 'history renders');
  });

  await t.test('errors: unknown model 404, invalid fields 400 naming the field', async () => {
    await expectError(ollama.chat({ model: 'no-such-model', messages: ask }), 404, /model "no-such-model" not found/);
    await expectError(ollama.generate({ model: 'no-such-model', prompt: 'x' }), 404, /not found/);
    await expectError(ollama.chat({ model: DOCS, messages: ask, options: { temperature: 'hot' } }), 400, /options\.temperature/);
    await expectError(ollama.chat({ model: DOCS, messages: ask, options: { top_p: 2 } }), 400, /options\.top_p/);
    await expectError(ollama.chat({ model: DOCS, messages: ask, options: { num_predict: 0 } }), 400, /options\.num_predict/);
    await expectError(ollama.chat({ model: DOCS, messages: [{ role: 'robot', content: 'x' }] }), 400, /messages\[0\]\.role/);
    await expectError(ollama.chat({ model: DOCS, messages: ask, keep_alive: 'forever' }), 400, /keep_alive/);
    await expectError(ollama.chat({ model: DOCS, messages: ask, format: 'yaml' }), 400, /format/);
    await expectError(ollama.chat({ model: DOCS, messages: ask, think: 'max' }), 400, /think/);
    await expectError(ollama.generate({ model: DOCS, prompt: 'x', template: '{{ .Prompt }}' }), 400, /template/);
    await expectError(ollama.generate({ model: DOCS, prompt: 'x', images: ['aGk='] }), 400, /images/);
    await expectError(ollama.pull({ model: 'llama3' }), 501, /shimmy pull/);
    await expectError(ollama.delete({ model: DOCS }), 501, /model store/);
    await expectError(ollama.embed({ model: DOCS, input: [1, 2] }), 400, /input\[0\]/);
    // a body that is no JSON
    const r = await fetch(`${srv.url}/api/chat`, { method: 'POST', body: '{"model":' });
    assertEq(r.status, 400, 'malformed body');
    assert(typeof (await r.json()).error === 'string', 'Ollama error shape');
  });

  await t.test('llama-server extras: /tokenize, /detokenize, /apply-template, /props', async () => {
    const post = async (p, body) => {
      const r = await fetch(`${srv.url}${p}`, { method: 'POST', body: JSON.stringify(body) });
      return { status: r.status, body: await r.json() };
    };
    const tk = await post('/tokenize', { model: TINY, content: 'Hello world' });
    assertEq(tk.status, 200, 'tokenize');
    assert(tk.body.tokens.length > 0 && tk.body.tokens.every(Number.isInteger), 'ids');
    const wp = await post('/tokenize', { model: TINY, content: 'Hello world', with_pieces: true });
    assertEq(wp.body.tokens.map((x) => x.id), tk.body.tokens, 'with_pieces ids');
    assertEq(wp.body.tokens.map((x) => x.piece).join('').trim(), 'Hello world', 'pieces');
    const bos = await post('/tokenize', { model: TINY, content: 'Hello world', add_special: true });
    assertEq(bos.body.tokens.length, tk.body.tokens.length + 1, 'add_special adds BOS');
    const dt = await post('/detokenize', { model: TINY, tokens: tk.body.tokens });
    assertEq(dt.body.content.trim(), 'Hello world', 'round trip');
    assertEq((await post('/detokenize', { model: TINY, tokens: [1, 'x'] })).status, 400, 'bad token');
    assertEq((await post('/tokenize', { model: TINY, content: 5 })).status, 400, 'content must be a string');
    assertEq((await post('/tokenize', { content: 'x' })).status, 400, 'model required with several models');
    const at = await post('/apply-template', { model: DOCS, messages: ask });
    assertEq(at.status, 200, 'apply-template');
    assert(at.body.prompt.includes(ask[0].content), at.body.prompt);
    const props = await (await fetch(`${srv.url}/props?model=${DOCS}`)).json();
    assert(props.default_generation_settings.n_ctx > 0, 'n_ctx');
    assertEq(props.total_slots, 2, 'total_slots');
    assert(props.chat_template.length > 0, 'chat_template');
  });
  await t.test('a second --bind serves the same API on another address (what --ollama does on 11434)', async () => {
    const proc = spawn(bin, ['serve', '--bind', 'auto', '--bind', '127.0.0.1:0', '--model-dirs', dir, '--threads', '1'],
      { env: { ...process.env, SHIMMY_NO_ENV: '1', SHIMMY_NO_HOME: '1', SHIMMY_NO_OLLAMA: '1', SHIMMY_NO_HF: '1',
        SHIMMY_NO_LOCAL: '1', SHIMMY_NO_MODEL_PATHS: '1', SHIMMY_NO_BASE_DIR: '1', SHIMMY_NO_LMSTUDIO: '1',
        SHIMMY_NO_DOWNLOADS: '1' }, stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      let out = '';
      const urls = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no listening lines: ${out}`)), 20000);
        proc.stdout.on('data', (d) => {
          out += d;
          const a = out.match(/shimmy: listening on (http:\/\/\S+)/), b = out.match(/also listening on (http:\/\/\S+)/);
          if (a && b) {
            clearTimeout(timer);
            resolve([a[1], b[1]]);
          }
        });
      });
      assert(urls[0] !== urls[1], `two addresses: ${urls}`);
      const second = new Ollama({ host: urls[1] });
      const { models } = await second.list();
      assert(models.some((m) => m.name === TINY), 'same models on the second address');
      const r = await second.generate({ model: TINY, prompt: 'Hi', options: { num_predict: 2 } });
      assertEq(r.done, true, 'generates there too');
    } finally {
      proc.kill('SIGTERM');
    }
  });
} finally {
  await srv.stop();
}
process.exit(t.finish());
