// Structured outputs through /v1/chat/completions with the official openai client: a corpus of
// JSON Schemas — the draft-04 JSON Schema Test Suite (npm json-schema-test-suite: every schema,
// required and optional/format) plus the schemas in ./schemas written for this — sent as
// response_format json_schema to random-weight tiny models (the best adversary: the mask does
// all the work) and to the demo model docs-llama-30m, several seeds each. Every finished output
// must parse and validate with ajv + ajv-formats (validators written independently of shimmy).
// A schema the server refuses must get a 400 whose param is response_format and whose message
// names one of the schema's keywords; a suite schema that uses only keywords the converter
// documents as supported must not be refused. Also: json_object mode, streaming, GBNF on
// /v1/completions checked by a JavaScript regex, finish_reason "length" when max_tokens cuts.
import OpenAI from 'openai';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, expectApiError, withTemplate } from './helpers.mjs';

const MODELS = ['tiny-llama-spm-Q8_0.gguf', 'tiny-qwen2-Q4_0.gguf', 'docs-llama-30m-Q4_K_M.gguf'];
const { bin, data } = requireEnv(MODELS);
const require = createRequire(import.meta.url);
for (const p of ['ajv', 'ajv-formats', 'ajv-draft-04', 'json-schema-test-suite/package.json']) {
  try {
    require.resolve(p);
  } catch {
    console.log(`SKIP: node_modules/${p} missing (run scripts/test-setup.sh)`);
    process.exit(77);
  }
}
const Ajv2020 = require('ajv/dist/2020').default;
const Ajv04 = require('ajv-draft-04').default ?? require('ajv-draft-04');
const addFormats = require('ajv-formats').default ?? require('ajv-formats');

const here = path.dirname(fileURLToPath(import.meta.url));
const suiteDir = path.join(path.dirname(require.resolve('json-schema-test-suite/package.json')), 'tests', 'draft4');

// ---- the corpus ----
const corpus = [];
for (const f of fs.readdirSync(suiteDir).sort()) {
  if (!f.endsWith('.json')) continue;
  JSON.parse(fs.readFileSync(path.join(suiteDir, f))).forEach((g, i) =>
    corpus.push({ name: `suite/${f}#${i} ${g.description}`, schema: g.schema, draft: 4 }));
}
JSON.parse(fs.readFileSync(path.join(suiteDir, 'optional', 'format.json'))).forEach((g, i) =>
  corpus.push({ name: `suite/optional/format.json#${i} ${g.description}`, schema: g.schema, draft: 4 }));
for (const f of fs.readdirSync(path.join(here, 'schemas')).sort()) {
  if (f === 'unsupported.json') continue;
  corpus.push({ name: `schemas/${f}`, schema: JSON.parse(fs.readFileSync(path.join(here, 'schemas', f))), draft: 2020, own: true });
}
const unsupported = JSON.parse(fs.readFileSync(path.join(here, 'schemas', 'unsupported.json')));

// The keywords a schema uses (subschema positions walked; property names are not keywords).
function keywords(s, out = new Set()) {
  if (!s || typeof s !== 'object' || Array.isArray(s)) return out;
  for (const [k, v] of Object.entries(s)) {
    out.add(k === 'uniqueItems' && v === false ? 'uniqueItems:false' : k);
    if (k === '$ref' && typeof v === 'string' && !v.startsWith('#')) out.add('$ref:remote');
    if (k === 'format') out.add(`format:${v}`);
    if (['properties', 'patternProperties', 'definitions', '$defs', 'dependencies'].includes(k) && v && typeof v === 'object')
      for (const sub of Object.values(v)) keywords(sub, out);
    else if (['items', 'additionalItems', 'additionalProperties', 'not'].includes(k))
      (Array.isArray(v) ? v : [v]).forEach((x) => keywords(x, out));
    else if (['anyOf', 'oneOf', 'allOf', 'prefixItems'].includes(k) && Array.isArray(v)) v.forEach((x) => keywords(x, out));
  }
  return out;
}
// What docs/grammar.md lists as enforced (allOf/oneOf have documented limits, so they may be refused).
const SUPPORTED = new Set(['type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items',
  'prefixItems', 'additionalItems', 'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern', 'minimum',
  'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'anyOf', '$ref', 'definitions', '$defs', 'uniqueItems:false',
  'format', 'format:date', 'format:time', 'format:date-time', 'format:uuid', 'format:email', 'format:ipv4',
  'format:hostname', 'format:ipv6', 'format:uri', 'format:duration', 'title', 'description', 'default', 'examples', '$schema', 'id', '$id', '$comment']);
const mayRefuse = (kws) => [...kws].some((k) => !SUPPORTED.has(k) && k !== 'oneOf' && k !== 'allOf');

function validator(c) {
  const ajv = c.draft === 4 ? new Ajv04({ strict: false }) : new Ajv2020({ strict: false });
  addFormats(ajv);
  return ajv.compile(c.schema);
}

// A deterministic sample: every schema on the fast tiny llama with 2 seeds; every third on the
// tiny qwen2 (152k-token vocabulary) and the demo model, one seed, offset so all are covered.
const runs = [];
corpus.forEach((c, i) => {
  runs.push({ c, model: 'tiny-llama-spm-q8_0', seed: 1000 + i });
  runs.push({ c, model: 'tiny-llama-spm-q8_0', seed: 2000 + i });
  if (i % 3 === 0 || c.own) runs.push({ c, model: 'tiny-qwen2-q4_0', seed: 3000 + i });
  if (i % 3 === 1 || c.own) runs.push({ c, model: 'docs-llama-30m-q4_k_m', seed: 4000 + i });
});
// SHIMMY_STRUCTURED_SEEDS=N: N more seeds of every schema on every model (a deeper run by hand).
for (let k = 0; k < Number(process.env.SHIMMY_STRUCTURED_SEEDS ?? 0); k++)
  corpus.forEach((c, i) => ['tiny-llama-spm-q8_0', 'tiny-qwen2-q4_0', 'docs-llama-30m-q4_k_m']
    .forEach((model) => runs.push({ c, model, seed: 10000 * (k + 1) + i })));

const dir = modelDir(data, MODELS);
// Copies of the tiny models with tool-calling templates (Hermes/Qwen2.5 and Llama 3.1 formats).
const tplDir = path.join(data, 'templates');
const TOOL_MODELS = [['tiny-qwen25-tools', 'tiny-qwen2-Q4_0.gguf', 'Qwen-Qwen2.5-7B-Instruct.jinja'],
  ['tiny-llama31-tools', 'tiny-llama-bpe-Q4_0.gguf', 'meta-llama-Llama-3.1-8B-Instruct.jinja']]
  .filter(([, file, tpl]) => fs.existsSync(path.join(data, 'models', file)) && fs.existsSync(path.join(tplDir, tpl)));
for (const [name, file, tpl] of TOOL_MODELS)
  withTemplate(path.join(data, 'models', file), path.join(dir, `${name}.gguf`), fs.readFileSync(path.join(tplDir, tpl), 'utf8'));
const t = runner();
const srv = await startServer(bin, ['--model-dirs', dir, '--threads', '1', '--parallel', '2', '--ctx-size', '1024']);
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000 });
const ask = [{ role: 'user', content: 'Reply with the JSON document.' }];
const fmt = (schema) => ({ type: 'json_schema', json_schema: { name: 'doc', schema, strict: true } });

async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

await t.test('corpus: every finished output validates; refusals name a keyword', async () => {
  const stats = { requests: 0, refusedRequests: 0, stop: 0, length: 0, refused: new Set(), accepted: new Set(), finished: new Map() };
  const problems = [];
  const validators = new Map();
  await pool(runs, 2, async ({ c, model, seed }) => {
    stats.requests++;
    let r;
    try {
      r = await client.chat.completions.create({ model, messages: ask, max_tokens: c.own ? 160 : 48, temperature: 1, seed,
        response_format: fmt(c.schema) });
    } catch (e) {
      const kws = keywords(c.schema);
      const msg = e.error?.message ?? e.message;
      if (e.status !== 400 || (e.param ?? e.error?.param) !== 'response_format')
        problems.push(`${c.name}: ${e.status} ${msg}`);
      else if (![...kws].some((k) => msg.includes(`"${k.replace(/:.*/, '')}"`) || msg.includes(`/${k.replace(/:.*/, '')}`)))
        problems.push(`${c.name}: the 400 names none of the schema's keywords: ${msg}`);
      else if (!mayRefuse(kws) && !/oneOf|allOf/.test(msg))
        problems.push(`${c.name}: refused although it uses supported keywords only: ${msg}`);
      stats.refused.add(c.name);
      stats.refusedRequests++;
      return;
    }
    stats.accepted.add(c.name);
    const ch = r.choices[0];
    if (ch.finish_reason === 'length') return void stats.length++;
    if (ch.finish_reason !== 'stop') return void problems.push(`${c.name}: finish_reason ${ch.finish_reason}`);
    stats.stop++;
    stats.finished.set(c.name, (stats.finished.get(c.name) ?? 0) + 1);
    let doc;
    try {
      doc = JSON.parse(ch.message.content);
    } catch (e) {
      return void problems.push(`${c.name} (${model}, seed ${seed}): not JSON: ${JSON.stringify(ch.message.content)}`);
    }
    if (!validators.has(c)) validators.set(c, validator(c));
    const v = validators.get(c);
    if (!v(doc))
      problems.push(`${c.name} (${model}, seed ${seed}): invalid ${ch.message.content}: ${JSON.stringify(v.errors)}`);
  });
  console.log(`  ${corpus.length} schemas (${stats.accepted.size} accepted, ${stats.refused.size} refused), ` +
    `${stats.requests} requests: ${stats.stop} finished and validated, ${stats.length} cut by max_tokens`);
  assert(problems.length === 0, `${problems.length} problems:\n${problems.join('\n')}`);
  for (const c of corpus.filter((x) => x.own)) {
    assert(stats.accepted.has(c.name), `${c.name} accepted`);
    console.log(`  ${c.name}: ${stats.finished.get(c.name) ?? 0} finished outputs validated`);
  }
  // The mask must let most generations finish, or the validation above would prove little.
  assert(stats.stop >= (stats.requests - stats.refusedRequests) / 2, `enough finished outputs (${stats.stop})`);
});

await t.test('unsupported keywords: 400 naming the keyword and its path', async () => {
  for (const u of unsupported) {
    const e = await expectApiError(client.chat.completions.create({ model: 'tiny-llama-spm-q8_0', messages: ask,
      max_tokens: 8, response_format: fmt(u.schema) }), 400, { param: 'response_format' });
    const msg = e.error?.message ?? e.message;
    assert(msg.includes(u.keyword), `message names ${u.keyword}: ${msg}`);
    assert(/JSON Schema at \//.test(msg), `message gives the path: ${msg}`);
  }
  await expectApiError(client.chat.completions.create({ model: 'tiny-llama-spm-q8_0', messages: ask,
    response_format: { type: 'xml' } }), 400, { param: 'response_format' });
});

await t.test('json_object mode and streaming', async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({ model: 'docs-llama-30m-q4_k_m', messages: ask, max_tokens: 64,
      seed, temperature: 1, response_format: { type: 'json_object' } });
    if (r.choices[0].finish_reason !== 'stop') continue;
    const doc = JSON.parse(r.choices[0].message.content);
    assert(doc && typeof doc === 'object' && !Array.isArray(doc), `an object: ${r.choices[0].message.content}`);
  }
  const schema = JSON.parse(fs.readFileSync(path.join(here, 'schemas', 'classify.json')));
  const stream = await client.chat.completions.create({ model: 'tiny-qwen2-q4_0', messages: ask, max_tokens: 64,
    seed: 7, temperature: 1, stream: true, response_format: fmt(schema) });
  let text = '', finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assertEq(finish, 'stop', `finish of ${text}`);
  const v = validator({ schema, draft: 2020 });
  assert(v(JSON.parse(text)), `valid: ${text}`);
});

await t.test('max_tokens cuts a constrained output: finish_reason length', async () => {
  const schema = JSON.parse(fs.readFileSync(path.join(here, 'schemas', 'formats.json')));
  const r = await client.chat.completions.create({ model: 'tiny-llama-spm-q8_0', messages: ask, max_tokens: 3,
    response_format: fmt(schema) });
  assertEq(r.choices[0].finish_reason, 'length', 'finish_reason');
  assert(r.choices[0].message.content.startsWith('{'), 'the constrained start');
});

await t.test('GBNF grammar on /v1/completions, checked by a JavaScript regex', async () => {
  const grammar = 'root ::= "<" tag ">" item{3} # a comment\ntag ::= [a-z]{2,5}\nitem ::= [0-9] | "x"\n';
  const re = /^<[a-z]{2,5}>[0-9x]{3}$/;
  for (const model of ['tiny-llama-spm-q8_0', 'tiny-qwen2-q4_0']) {
    for (const seed of [1, 2, 3]) {
      const r = await client.completions.create({ model, prompt: 'x', max_tokens: 32, seed, temperature: 1, grammar });
      assertEq(r.choices[0].finish_reason, 'stop', 'finish');
      assert(re.test(r.choices[0].text), `matches: ${JSON.stringify(r.choices[0].text)}`);
    }
  }
  const e = await expectApiError(client.completions.create({ model: 'tiny-llama-spm-q8_0', prompt: 'x',
    grammar: 'root ::= item\n' }), 400, { param: 'grammar' });
  assert(/line 1/.test(e.error?.message ?? e.message), 'the error gives the line');
  await expectApiError(client.completions.create({ model: 'tiny-llama-spm-q8_0', prompt: 'x',
    grammar: 'root ::= "a"', json_schema: { type: 'string' } }), 400);
  const r = await client.completions.create({ model: 'tiny-llama-spm-q8_0', prompt: 'x', max_tokens: 16, seed: 5,
    temperature: 1, json_schema: { enum: ['yes', 'no'] } });
  assert(['"yes"', '"no"'].includes(r.choices[0].text), `enum: ${r.choices[0].text}`);
});

await t.test('tool_choice required / named: a valid call in the model\'s own format', async () => {
  assert(TOOL_MODELS.length === 2, 'tool-calling template copies made');
  const weather = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object',
    properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 } },
    required: ['city', 'days'], additionalProperties: false } } };
  const clock = { type: 'function', function: { name: 'get_time', parameters: { type: 'object',
    properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] } } };
  const check = { get_weather: validator({ schema: weather.function.parameters, draft: 2020 }),
    get_time: validator({ schema: clock.function.parameters, draft: 2020 }) };
  let calls = 0;
  for (const [model] of TOOL_MODELS) {
    for (const [choice, names] of [['required', ['get_weather', 'get_time']],
      [{ type: 'function', function: { name: 'get_time' } }, ['get_time']]]) {
      for (const seed of [1, 2, 3]) {
        const r = await client.chat.completions.create({ model, messages: ask, tools: [weather, clock],
          tool_choice: choice, max_tokens: 96, seed, temperature: 1 });
        const ch = r.choices[0];
        if (ch.finish_reason === 'length') continue;
        assertEq(ch.finish_reason, 'tool_calls', `${model} finish (${ch.message.content})`);
        const call = ch.message.tool_calls[0].function;
        assert(names.includes(call.name), `${model}: ${call.name} is one of ${names}`);
        const args = JSON.parse(call.arguments);
        assert(check[call.name](args), `${model}: arguments ${call.arguments} valid`);
        calls++;
      }
    }
  }
  assert(calls >= 6, `most generations finished with a call (${calls})`);
  const bad = { type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { not: {} } } } } };
  const e = await expectApiError(client.chat.completions.create({ model: TOOL_MODELS[0][0], messages: ask, tools: [bad],
    tool_choice: 'required' }), 400, { param: 'tools[0].function.parameters' });
  assert((e.error?.message ?? e.message).includes('/properties/a/not'), 'names the path');
});

await srv.stop();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(t.finish());
