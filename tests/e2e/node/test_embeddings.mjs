// Embeddings and reranking end to end: the official `openai` client's embeddings.create (single
// and batched inputs give the same vectors; the client asks for base64 by default), dimensions,
// token-id inputs, usage, an input over the context (400 naming it); the `ollama` client's embed
// (and the legacy /api/embeddings); /v1/rerank and /rerank by fetch. Vectors and scores are held
// to llama.cpp's references (testdata/reference/<model>.embed.json, f32_attn: Q8_0 files within
// 2e-3 per component, scores within 0.03). A chat stream running beside a large embedding
// request finishes too (the two take turns on the server's thread pool).
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import fs from 'node:fs';
import path from 'node:path';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, expectApiError } from './helpers.mjs';

const CLS_FILE = 'tiny-bert-cls-Q8_0.gguf';
const RANK_FILE = 'tiny-bert-rerank-Q8_0.gguf';
const QWEN_FILE = 'tiny-qwen3-embed-F32-tokQ8.gguf';
const CHAT_FILE = 'tiny-llama-spm-Q8_0.gguf';
const { bin, data } = requireEnv([CLS_FILE, RANK_FILE, QWEN_FILE, CHAT_FILE]);
const CLS = 'tiny-bert-cls-q8_0', RANK = 'tiny-bert-rerank-q8_0', QWEN = 'tiny-qwen3-embed-f32-tokq8';
const CHAT = 'tiny-llama-spm-q8_0';
const ref = (stem) => JSON.parse(fs.readFileSync(path.join(data, 'reference', `${stem}.embed.json`), 'utf8'));
const clsRef = ref('tiny-bert-cls-Q8_0'), rankRef = ref('tiny-bert-rerank-Q8_0'), qwenRef = ref('tiny-qwen3-embed-F32-tokQ8');

const dir = modelDir(data, [CLS_FILE, RANK_FILE, QWEN_FILE, CHAT_FILE]);
const t = runner();
const srv = await startServer(bin, ['--model-dirs', dir, '--threads', '2', '--parallel', '2']);
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const ollama = new Ollama({ host: srv.url });

function maxDiff(a, b) {
  assertEq(a.length, b.length, 'vector length');
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

async function post(route, body) {
  const r = await fetch(`${srv.url}${route}`, { method: 'POST', body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

try {
  await t.test('openai embeddings.create: batch = singles = llama.cpp, usage', async () => {
    const texts = clsRef.cases.map((c) => c.text);
    const batch = await client.embeddings.create({ model: CLS, input: texts });
    assertEq(batch.object, 'list', 'object');
    assertEq(batch.model, CLS, 'model');
    assertEq(batch.data.map((d) => d.index), texts.map((_, i) => i), 'indices');
    const tokens = clsRef.cases.reduce((s, c) => s + c.n_tokens, 0);
    assertEq(batch.usage.prompt_tokens, tokens, 'usage.prompt_tokens');
    for (let i = 0; i < texts.length; i++) {
      const single = await client.embeddings.create({ model: CLS, input: texts[i] });
      assertEq(single.data.length, 1, 'one vector');
      const d = maxDiff(single.data[0].embedding, batch.data[i].embedding);
      assert(d < 1e-6, `input ${i}: single vs batch differ by ${d}`);
      const r = maxDiff(batch.data[i].embedding, clsRef.cases[i].f32_attn.embedding);
      assert(r <= 2e-3, `input ${i}: ${r} from the reference`);
      assert(Math.abs(norm(batch.data[i].embedding) - 1) < 1e-5, 'normalised');
    }
  });

  await t.test('float and base64 encodings agree; dimensions; token ids', async () => {
    const text = clsRef.cases[0].text;
    const f = await client.embeddings.create({ model: CLS, input: text, encoding_format: 'float' });
    const raw = await post('/v1/embeddings', { model: CLS, input: text, encoding_format: 'base64' });
    const buf = Buffer.from(raw.body.data[0].embedding, 'base64');
    const b64 = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
    assert(maxDiff(f.data[0].embedding, b64) < 1e-7, 'base64 = float');
    const d8 = await client.embeddings.create({ model: CLS, input: text, dimensions: 8 });
    assertEq(d8.data[0].embedding.length, 8, 'dimensions');
    assert(Math.abs(norm(d8.data[0].embedding) - 1) < 1e-5, 'renormalised');
    const n8 = norm(f.data[0].embedding.slice(0, 8));
    assert(maxDiff(d8.data[0].embedding, f.data[0].embedding.slice(0, 8).map((x) => x / n8)) < 1e-6,
      'the first 8 components, renormalised');
    const ids = await client.embeddings.create({ model: CLS, input: [clsRef.cases[0].tokens, clsRef.cases[4].tokens] });
    assert(maxDiff(ids.data[0].embedding, f.data[0].embedding) < 1e-6, 'token ids = text');
    assertEq(ids.usage.prompt_tokens, clsRef.cases[0].n_tokens + clsRef.cases[4].n_tokens, 'usage of ids');
  });

  await t.test('a decoder as embedding model (Qwen3-Embedding: last token, EOS appended)', async () => {
    const r = await client.embeddings.create({ model: QWEN, input: qwenRef.cases.map((c) => c.text) });
    for (let i = 0; i < qwenRef.cases.length; i++) {
      const d = maxDiff(r.data[i].embedding, qwenRef.cases[i].f32_attn.embedding);
      assert(d <= 1e-4, `input ${i}: ${d} from the reference`);
    }
  });

  await t.test('errors: over the context (400 naming the input), bad fields', async () => {
    const long = 'word '.repeat(700);
    const e = await expectApiError(client.embeddings.create({ model: CLS, input: ['short', long] }), 400,
      { code: 'context_length_exceeded', param: 'input[1]' });
    assert(/input 1/.test(e.message), `message ${e.message}`);
    const ok = await post('/v1/embeddings', { model: CLS, input: ['short', long], truncate: true });
    assertEq(ok.status, 200, 'truncate: true');
    assertEq(ok.body.usage.prompt_tokens, 3 + 512, 'cut to the context');
    await expectApiError(client.embeddings.create({ model: CLS, input: [] }), 400, { param: 'input' });
    await expectApiError(client.embeddings.create({ model: CLS, input: [[101, 999999]] }), 400, { param: 'input[0]' });
    await expectApiError(client.embeddings.create({ model: 'nope', input: 'x' }), 404);
    const fmt = await post('/v1/embeddings', { model: CLS, input: 'x', encoding_format: 'int8' });
    assertEq(fmt.status, 400, 'encoding_format');
  });

  await t.test('ollama embed (normalised, truncates by default) and legacy /api/embeddings', async () => {
    const texts = clsRef.cases.slice(0, 3).map((c) => c.text);
    const r = await ollama.embed({ model: CLS, input: texts });
    assertEq(r.model, CLS, 'model');
    assertEq(r.embeddings.length, 3, 'three vectors');
    for (let i = 0; i < 3; i++) {
      const d = maxDiff(r.embeddings[i], clsRef.cases[i].f32_attn.embedding);
      assert(d <= 2e-3, `input ${i}: ${d}`);
    }
    assertEq(r.prompt_eval_count, clsRef.cases.slice(0, 3).reduce((s, c) => s + c.n_tokens, 0), 'prompt_eval_count');
    const long = await ollama.embed({ model: `${CLS}:latest`, input: 'word '.repeat(700) });
    assertEq(long.embeddings.length, 1, 'truncated, not refused');
    const legacy = await ollama.embeddings({ model: CLS, prompt: clsRef.cases[0].text });
    const d = maxDiff(legacy.embedding, clsRef.cases[0].f32_attn.embedding_raw);
    assert(d <= 5e-3, `legacy endpoint gives the raw vector (${d})`);
  });

  await t.test('rerank: /v1/rerank and /rerank, sorted, top_n, return_documents', async () => {
    const rr = rankRef.rerank;
    const docs = rr.pairs.map((p) => p.document);
    const r = await post('/v1/rerank', { model: RANK, query: rr.query, documents: docs, return_documents: true });
    assertEq(r.status, 200, 'status');
    const res = r.body.results;
    assertEq(res.length, docs.length, 'one result per document');
    for (let k = 1; k < res.length; k++) assert(res[k - 1].relevance_score >= res[k].relevance_score, 'sorted');
    for (const x of res) {
      const want = rr.pairs[x.index].f32_attn.score[0];
      assert(Math.abs(x.relevance_score - want) <= 0.03, `document ${x.index}: ${x.relevance_score} vs ${want}`);
      assertEq(x.document.text, docs[x.index], 'document');
    }
    assertEq(r.body.usage.prompt_tokens, rr.pairs.reduce((s, p) => s + p.tokens.length, 0), 'usage');
    const top = await post('/rerank', { model: RANK, query: rr.query, documents: docs, top_n: 1 });
    assertEq(top.body.results.length, 1, 'top_n');
    assertEq(top.body.results[0].index, res[0].index, 'the best document');
    assert(top.body.results[0].document === undefined, 'no documents unless asked');
    const notRanker = await post('/v1/rerank', { model: CLS, query: 'q', documents: ['d'] });
    assertEq(notRanker.status, 400, 'a model without a classification head');
  });

  await t.test('a chat stream beside a large embedding request: both finish', async () => {
    const many = Array.from({ length: 64 }, (_, i) => `${clsRef.cases[1].text} ${i}`);
    const stream = client.chat.completions.create({
      model: CHAT, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 24, temperature: 0, stream: true,
    });
    const [emb, chat] = await Promise.all([
      client.embeddings.create({ model: CLS, input: many }),
      (async () => {
        let n = 0;
        for await (const ch of await stream) if (ch.choices[0]?.delta?.content) n++;
        return n;
      })(),
    ]);
    assertEq(emb.data.length, 64, 'embeddings');
    assert(chat > 0, 'streamed text');
  });
} finally {
  await srv.stop();
}
process.exit(t.finish());
