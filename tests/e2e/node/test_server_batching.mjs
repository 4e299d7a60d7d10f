// Continuous batching through the official openai client: many concurrent streams on one model
// share forward steps (/metrics shows steps holding several sessions), and every client gets
// exactly the text it gets alone — greedy and seeded — including while another client's long
// prompt is being processed and while a client disconnects mid-stream. The same requests on a
// server with --no-batching give the same texts.
import OpenAI from 'openai';
import { requireEnv, modelDir, startServer, runner, assert, assertEq } from './helpers.mjs';

const FILES = ['tiny-llama-spm-F16.gguf', 'tiny-qwen2-Q4_0.gguf'];
const { bin, data } = requireEnv(FILES);
const dir = modelDir(data, FILES);
const N = 6;
const TOKENS = 24;

const prompts = ['Hello', 'The quick brown fox', 'Once upon a time in a land far away',
  'List three colors:', '1, 2, 3,', 'A long time ago'];

function request(model, i) {
  const seeded = i % 2 === 1;
  return {
    model,
    messages: [{ role: 'user', content: prompts[i] }],
    max_tokens: TOKENS,
    temperature: seeded ? 0.9 : 0,
    seed: seeded ? 100 + i : undefined,
    logit_bias: { 2: -100 }, // no end of sequence: every answer runs TOKENS tokens
  };
}

async function stream(client, body) {
  const s = await client.chat.completions.create({ ...body, stream: true });
  let text = '';
  for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? '';
  return text;
}

async function metric(url, name) {
  const body = await (await fetch(`${url}/metrics`)).text();
  const m = body.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

const t = runner();
const sequential = {};

await t.test('alone: the reference texts, one request at a time', async () => {
  const srv = await startServer(bin, ['--model-dirs', dir, '--parallel', '1', '--threads', '2']);
  try {
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'x' });
    for (const model of ['tiny-llama-spm-f16', 'tiny-qwen2-q4_0'])
      for (let i = 0; i < N; i++) sequential[`${model}/${i}`] = await stream(client, request(model, i));
  } finally {
    await srv.stop();
  }
  assert(Object.values(sequential).every((s) => s.length > 0), 'every reference text is non-empty');
});

for (const batching of [true, false]) {
  await t.test(`${N} concurrent streams ${batching ? 'in shared steps' : 'with --no-batching'} give the texts they give alone`, async () => {
    const args = ['--model-dirs', dir, '--parallel', String(N), '--threads', '2'];
    if (!batching) args.push('--no-batching');
    const srv = await startServer(bin, args);
    try {
      const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'x', maxRetries: 0 });
      for (const model of ['tiny-llama-spm-f16', 'tiny-qwen2-q4_0']) {
        // one more client that leaves after its first chunk, and a long prompt joining late
        const leaver = (async () => {
          const s = await client.chat.completions.create({ ...request(model, 0), stream: true });
          for await (const chunk of s) { s.controller.abort(); break; }
        })().catch(() => {});
        const texts = await Promise.all(Array.from({ length: N - 1 }, (_, i) => stream(client, request(model, i + 1))));
        await leaver;
        for (let i = 1; i < N; i++)
          assertEq(texts[i - 1], sequential[`${model}/${i}`], `${model} client ${i}`);
        const long = { ...request(model, 0), messages: [{ role: 'user', content: 'word '.repeat(150) }] };
        const [a, b] = await Promise.all([stream(client, request(model, 2)), stream(client, long)]);
        assertEq(a, sequential[`${model}/2`], `${model} client 2 beside a long prompt`);
        assert(b.length > 0, 'the long prompt is answered');
      }
      const biggest = await metric(srv.url, 'shimmy_batch_size_max');
      if (batching) assert(biggest >= 2, `a step held ${biggest} sessions; expected several`);
      else assertEq(await metric(srv.url, 'shimmy_batch_steps_total'), 0, 'no shared steps with --no-batching');
      const health = await fetch(`${srv.url}/health`);
      assertEq(health.status, 200, '/health answers');
    } finally {
      await srv.stop();
    }
  });
}

process.exit(t.finish());
