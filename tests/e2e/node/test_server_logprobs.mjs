// logprobs and the reasoning split through the official openai client: chat logprobs (streamed
// per chunk and not), legacy completions logprobs and echo, one value checked against
// `shimmy logits`; a Qwen3-style thinking template (written into a copy of tiny-qwen3-F32.gguf)
// with reasoning_content streamed and not, reasoning_format "none", chat_template_kwargs
// enable_thinking false; and the fields' validation errors.
import OpenAI from 'openai';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { requireEnv, modelDir, startServer, runner, assert, assertEq, expectApiError, withTemplate } from './helpers.mjs';

const TEXT_FILE = 'docs-llama-30m-Q4_K_M.gguf'; // a trained model: real words, SPM vocabulary, BOS
const QWEN2_FILE = 'tiny-qwen2-Q4_0.gguf'; // BPE vocabulary, no BOS
const QWEN3_FILE = 'tiny-qwen3-F32.gguf';
const { bin, data } = requireEnv([TEXT_FILE, QWEN2_FILE, QWEN3_FILE]);
const dir = modelDir(data, [TEXT_FILE, QWEN2_FILE]);
const TEXT = 'docs-llama-30m-q4_k_m';
const QWEN2 = 'tiny-qwen2-q4_0';
const THINK = 'think-qwen3';

// A Qwen3-style template (ChatML): with enable_thinking false the generation prompt holds an
// empty, closed thinking block; with open_think false it leaves the thinking to the model (as
// Qwen3's does); otherwise it opens "<think>" itself (as DeepSeek-R1's does), so the output starts
// inside the thinking.
const TEMPLATE = `{%- for m in messages %}<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor %}{%- if add_generation_prompt %}<|im_start|>assistant
{% if enable_thinking is defined and enable_thinking is false %}<think>

</think>

{% elif open_think is defined and open_think is false %}{% else %}<think>
{% endif %}{%- endif %}`;
withTemplate(path.join(data, 'models', QWEN3_FILE), path.join(dir, `${THINK}.gguf`), TEMPLATE);

const t = runner();
const srv = await startServer(bin, ['--model-dirs', dir, '--parallel', '1', '--threads', '2']);
const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });
const messages = [{ role: 'user', content: 'How do I load a model?' }];
const utf8 = (bytes) => Buffer.from(bytes).toString('utf8');

// The checks every chat logprobs entry must pass; greedy: the chosen token is the most likely.
function checkEntry(e, top, greedy) {
  assert(typeof e.token === 'string' && Array.isArray(e.bytes), 'token and bytes');
  assert(e.logprob <= 0 && Number.isFinite(e.logprob), `logprob ${e.logprob}`);
  assertEq(e.top_logprobs.length, top, 'top_logprobs count');
  for (let i = 1; i < e.top_logprobs.length; i++)
    assert(e.top_logprobs[i - 1].logprob >= e.top_logprobs[i].logprob, 'top_logprobs sorted');
  for (const a of e.top_logprobs) assert(a.logprob <= 0 && Array.isArray(a.bytes), 'alternative');
  if (greedy && top > 0) {
    assertEq(e.top_logprobs[0].bytes, e.bytes, 'greedy: the chosen token is the most likely');
    assert(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6, 'greedy: its logprob is the max');
  }
}

async function streamChat(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

try {
  let reference;
  await t.test('chat logprobs: tokens make up the content, greedy picks the most likely', async () => {
    const r = await client.chat.completions.create({ model: TEXT, messages, temperature: 0, max_tokens: 20, logprobs: true, top_logprobs: 4 });
    const c = r.choices[0];
    const lp = c.logprobs.content;
    // every generated token but an end of turn
    assert(lp.length >= 1 && lp.length <= r.usage.completion_tokens, `${lp.length} entries, ${r.usage.completion_tokens} tokens`);
    for (const e of lp) checkEntry(e, 4, true);
    assertEq(utf8(lp.flatMap((e) => e.bytes)), c.message.content, 'bytes concatenate to the content');
    assertEq(lp.map((e) => e.token).join(''), c.message.content, 'tokens concatenate to the content');
    reference = { content: c.message.content, lp };
  });

  await t.test('chat logprobs streamed: each chunk carries the tokens of its text', async () => {
    const chunks = await streamChat({ model: TEXT, messages, temperature: 0, max_tokens: 20, logprobs: true, top_logprobs: 4 });
    let content = '';
    const all = [];
    for (const ch of chunks) {
      const c = ch.choices[0];
      if (!c) continue;
      const text = c.delta.content ?? '';
      const entries = c.logprobs?.content ?? [];
      assertEq(utf8(entries.flatMap((e) => e.bytes)), text, 'a chunk\'s tokens are its text');
      content += text;
      all.push(...entries);
    }
    assertEq(content, reference.content, 'same content as without streaming');
    assertEq(all.length, reference.lp.length, 'same number of tokens');
    all.forEach((e, i) => {
      assertEq(e.token, reference.lp[i].token, `token ${i}`);
      // the second request reuses the first's KV prefix and runs the last prompt token alone:
      // another kernel (one row, not a batch) on a quantized model moves values a little
      const d = Math.abs(e.logprob - reference.lp[i].logprob);
      assert(d < 0.05, `logprob ${i}: ${e.logprob} vs ${reference.lp[i].logprob}`);
    });
  });

  await t.test('the client\'s stream helper assembles the logprobs', async () => {
    const final = await client.beta.chat.completions.stream({ model: TEXT, messages, temperature: 0, max_tokens: 20, logprobs: true, top_logprobs: 4 }).finalChatCompletion();
    const c = final.choices[0];
    assertEq(c.message.content, reference.content, 'content');
    assertEq(c.logprobs.content.map((e) => e.token), reference.lp.map((e) => e.token), 'the tokens of every chunk, in order');
  });

  await t.test('chat logprobs with top_logprobs 0 and sampling', async () => {
    const r = await client.chat.completions.create({ model: TEXT, messages, temperature: 1.5, seed: 3, max_tokens: 16, logprobs: true });
    const lp = r.choices[0].logprobs.content;
    for (const e of lp) checkEntry(e, 0, false);
    assertEq(utf8(lp.flatMap((e) => e.bytes)), r.choices[0].message.content, 'bytes concatenate to the content');
    const plain = await client.chat.completions.create({ model: TEXT, messages, max_tokens: 4 });
    assertEq(plain.choices[0].logprobs, null, 'no logprobs unless asked');
  });

  await t.test('completions logprobs: tokens, token_logprobs, top_logprobs, text_offset', async () => {
    for (const stream of [false, true]) {
      const params = { model: TEXT, prompt: 'The quick brown fox', temperature: 0, max_tokens: 16, logprobs: 3 };
      let text = '', lp = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
      if (stream) {
        for await (const ch of await client.completions.create({ ...params, stream: true })) {
          const c = ch.choices[0];
          if (!c) continue;
          if (c.logprobs) for (const k of Object.keys(lp)) lp[k].push(...c.logprobs[k]);
          text += c.text;
        }
      } else {
        const r = await client.completions.create(params);
        text = r.choices[0].text;
        lp = r.choices[0].logprobs;
      }
      assertEq(lp.tokens.join(''), text, `tokens concatenate to the text (stream ${stream})`);
      let off = 0;
      lp.tokens.forEach((tok, i) => {
        assertEq(lp.text_offset[i], off, `text_offset ${i}`);
        off += Buffer.byteLength(tok);
        const lps = lp.top_logprobs[i];
        assertEq(Object.keys(lps).length, 3, 'three alternatives');
        const best = Math.max(...Object.values(lps));
        assert(lp.token_logprobs[i] <= 0, 'logprob <= 0');
        assertEq(lps[tok], lp.token_logprobs[i], 'greedy: the chosen token is among the alternatives');
        assertEq(lp.token_logprobs[i], best, 'greedy: with the highest logprob');
      });
    }
  });

  await t.test('a logprob agrees with shimmy logits (log-softmax of the raw logits)', async () => {
    const prompt = 'Shimmy loads models from';
    const r = await client.completions.create({ model: TEXT, prompt, temperature: 0, max_tokens: 1, logprobs: 1 });
    const lp = r.choices[0].logprobs;
    const out = JSON.parse(execFileSync(bin, ['logits', path.join(dir, TEXT_FILE), '--prompt', prompt, '--top', '1000000', '--json'],
      { maxBuffer: 64 << 20 }));
    const step = out.steps[0];
    const max = Math.max(...step.map(([, l]) => l));
    const lse = max + Math.log(step.reduce((s, [, l]) => s + Math.exp(l - max), 0));
    const [id, logit] = step[0]; // the argmax: what greedy decoding picked
    const piece = execFileSync(bin, ['detokenize', path.join(dir, TEXT_FILE), '--tokens', String(id)]).toString();
    assertEq(lp.tokens[0].trim(), piece.trim(), 'the argmax token');
    assert(Math.abs(lp.token_logprobs[0] - (logit - lse)) < 0.02, `${lp.token_logprobs[0]} vs ${logit - lse}`);
  });

  await t.test('echo with logprobs: the prompt\'s tokens first', async () => {
    // SPM with BOS: BOS is not text, so the first text token has a value (conditioned on BOS)
    const r = await client.completions.create({ model: TEXT, prompt: 'The quick brown fox', temperature: 0, max_tokens: 4, logprobs: 2, echo: true });
    const c = r.choices[0];
    assert(c.text.startsWith('The quick brown fox'), 'echo');
    assertEq(c.logprobs.tokens.join(''), c.text, 'tokens concatenate to prompt + completion');
    assert(c.logprobs.token_logprobs.every((v) => typeof v === 'number' && v <= 0), 'every value a logprob');
    // no BOS (Qwen2): the first token has nothing before it
    const q = await client.completions.create({ model: QWEN2, prompt: 'Hello there, friend', temperature: 0, max_tokens: 3, logprobs: 1, echo: true });
    const ql = q.choices[0].logprobs;
    assertEq(ql.token_logprobs[0], null, 'the first token\'s logprob is null');
    assertEq(ql.top_logprobs[0], null, 'and so are its alternatives');
    assert(ql.token_logprobs.slice(1).every((v) => v <= 0), 'the rest are logprobs');
    assertEq(ql.tokens.join(''), q.choices[0].text, 'tokens concatenate to the text');
  });

  // ---- reasoning ----
  const ws = /^[ \t\r\n]+|[ \t\r\n]+$/g;
  let raw;
  await t.test('reasoning_format none keeps the raw text', async () => {
    const r = await client.chat.completions.create({ model: THINK, messages, temperature: 0, max_tokens: 24, reasoning_format: 'none' });
    raw = r.choices[0].message.content;
    assert(raw.length > 0, 'text');
    assertEq(r.choices[0].message.reasoning_content, undefined, 'no reasoning_content');
  });

  // What the split must give for the raw text (the prompt opened <think>).
  const expected = () => {
    assert(typeof raw === 'string', 'the raw text of the test before');
    const cut = raw.indexOf('</think>');
    return cut < 0 ? { reasoning: raw.replace(ws, ''), content: '' }
      : { reasoning: raw.slice(0, cut).replace(ws, ''), content: raw.slice(cut + 8).replace(/^[ \t\r\n]+/, '') };
  };

  await t.test('reasoning_content split from the answer (template opens <think>)', async () => {
    const want = expected();
    const r = await client.chat.completions.create({ model: THINK, messages, temperature: 0, max_tokens: 24 });
    const m = r.choices[0].message;
    assertEq(m.reasoning_content ?? '', want.reasoning, 'reasoning_content');
    assertEq(m.content, want.content, 'content');
  });

  await t.test('reasoning_content streamed in delta.reasoning_content', async () => {
    const want = expected();
    const chunks = await streamChat({ model: THINK, messages, temperature: 0, max_tokens: 24, reasoning_format: 'deepseek' });
    let reasoning = '', content = '', seenContent = false;
    for (const ch of chunks) {
      const d = ch.choices[0]?.delta ?? {};
      if (d.reasoning_content) {
        assert(!seenContent, 'all thinking comes before the answer');
        reasoning += d.reasoning_content;
      }
      if (d.content) {
        seenContent = true;
        content += d.content;
      }
    }
    assertEq(reasoning, want.reasoning, 'streamed reasoning');
    assertEq(content, want.content, 'streamed content');
  });

  // The random-weight model made to write "<think>", a little, "</think>" and more (token biases
  // found by a search; greedy, so the same on every run): thinking the model opens itself and
  // closes mid-stream.
  const forced = { model: THINK, messages, temperature: 0, max_tokens: 32, chat_template_kwargs: { open_think: false },
    logit_bias: { 151667: 11.5, 151668: 13 } };
  await t.test('thinking opened and closed by the model, streamed and not, with logprobs', async () => {
    const r0 = await client.chat.completions.create({ ...forced, reasoning_format: 'none' });
    const raw0 = r0.choices[0].message.content;
    const m0 = raw0.match(/^[ \t\r\n]*<think>([\s\S]*?)<\/think>([\s\S]*)$/);
    assert(m0 && m0[1].trim() && m0[2].trim(), `the output thinks, then answers: ${JSON.stringify(raw0)}`);
    const want = { reasoning: m0[1].replace(ws, ''), content: m0[2].replace(/^[ \t\r\n]+/, '') };
    const r = await client.chat.completions.create({ ...forced, logprobs: true, top_logprobs: 2 });
    const m = r.choices[0].message;
    assertEq(m.reasoning_content, want.reasoning, 'reasoning_content');
    assertEq(m.content, want.content, 'content');
    // the answer's tokens only: "</think>" is one token, so they make up the content exactly
    assertEq(utf8(r.choices[0].logprobs.content.flatMap((e) => e.bytes)), m.content, 'logprobs cover the answer');
    let reasoning = '', content = '', lpBytes = [];
    for (const ch of await streamChat({ ...forced, logprobs: true })) {
      const d = ch.choices[0]?.delta ?? {};
      reasoning += d.reasoning_content ?? '';
      content += d.content ?? '';
      for (const e of ch.choices[0]?.logprobs?.content ?? []) lpBytes.push(...e.bytes);
    }
    assertEq(reasoning, want.reasoning, 'streamed reasoning');
    assertEq(content, want.content, 'streamed content');
    assertEq(utf8(lpBytes), content, 'streamed logprobs cover the answer');
  });

  await t.test('chat_template_kwargs enable_thinking false reaches the template', async () => {
    const on = await client.chat.completions.create({ model: THINK, messages, temperature: 0, max_tokens: 8 });
    const off = await client.chat.completions.create({ model: THINK, messages, temperature: 0, max_tokens: 8, chat_template_kwargs: { enable_thinking: false } });
    // "<think>\n" vs "<think>\n\n</think>\n\n": the closed block adds tokens to the prompt
    assert(off.usage.prompt_tokens > on.usage.prompt_tokens, `${off.usage.prompt_tokens} vs ${on.usage.prompt_tokens}`);
    const m = off.choices[0].message;
    assertEq(m.reasoning_content, undefined, 'the thinking was closed in the prompt: no reasoning');
    assert(m.content.length > 0, 'the whole output is the answer');
    const tok = JSON.parse(execFileSync(bin, ['template', path.join(dir, `${THINK}.gguf`), '--messages', JSON.stringify(messages), '--json'])).prompt;
    assert(tok.endsWith('<think>\n'), 'the template itself opens the thinking by default');
  });

  // ---- validation ----
  await t.test('invalid fields are 400 naming the field', async () => {
    const chat = (extra) => client.chat.completions.create({ model: TEXT, messages, max_tokens: 2, ...extra });
    await expectApiError(chat({ logprobs: 'yes' }), 400, { param: 'logprobs' });
    await expectApiError(chat({ logprobs: true, top_logprobs: 21 }), 400, { param: 'top_logprobs' });
    await expectApiError(chat({ logprobs: true, top_logprobs: 1.5 }), 400, { param: 'top_logprobs' });
    await expectApiError(chat({ top_logprobs: 3 }), 400, { param: 'top_logprobs' });
    await expectApiError(chat({ reasoning_format: 'bogus' }), 400, { param: 'reasoning_format' });
    await expectApiError(chat({ chat_template_kwargs: 'enable_thinking' }), 400, { param: 'chat_template_kwargs' });
    const compl = (extra) => client.completions.create({ model: TEXT, prompt: 'x', max_tokens: 2, ...extra });
    await expectApiError(compl({ logprobs: 21 }), 400, { param: 'logprobs' });
    await expectApiError(compl({ logprobs: true }), 400, { param: 'logprobs' });
    await expectApiError(compl({ logprobs: -1 }), 400, { param: 'logprobs' });
  });
} finally {
  await srv.stop();
}
process.exit(t.finish());
