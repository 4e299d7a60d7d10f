/* Tiny random-weight models with a synthetic SentencePiece vocabulary (see fixture.h).
 *
 * Weights are generated in fixed chunks of rows, each chunk from its own RNG stream derived from
 * (seed, tensor name, chunk index): the bytes do not depend on the thread count, and the chunks
 * run on a thread pool so that the 0.25B-parameter benchmark model takes seconds, not minutes. */
#include "fixture.h"

#include "quant/quant.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const fixture_llama2_template =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
    "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set "
    "system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] "
    "== 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != "
    "false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
    "message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if "
    "message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif "
    "message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% "
    "endfor %}";

fixture_params fixture_params_default(void) {
    return (fixture_params){.arch = "llama",
                            .n_embd = 64,
                            .n_layer = 2,
                            .n_head = 4,
                            .n_head_kv = 2,
                            .n_ff = 128,
                            .n_vocab = 512,
                            .n_ctx = 256,
                            .rope_base = 10000.0f,
                            .rms_eps = 1e-5f,
                            .weight_type = GGUF_T_F32,
                            .output_type = GGUF_T_F32,
                            .attn_v_type = GGUF_T_F32,
                            .ffn_down_type = GGUF_T_F32,
                            .seed = 1};
}

typedef struct mix {
    const char *name;
    uint32_t weights, output, raised; /* raised: attn_v and ffn_down */
    bool by_layer;
    uint32_t file_type; /* llama.cpp's general.file_type (LLAMA_FTYPE_*) */
} mix;

static const mix mixes[] = {
    {"F32", GGUF_T_F32, GGUF_T_F32, GGUF_T_F32, false, 0},
    {"F16", GGUF_T_F16, GGUF_T_F16, GGUF_T_F16, false, 1},
    {"BF16", GGUF_T_BF16, GGUF_T_BF16, GGUF_T_BF16, false, 32},
    {"Q4_0", GGUF_T_Q4_0, GGUF_T_Q4_0, GGUF_T_Q4_0, false, 2},
    {"Q4_1", GGUF_T_Q4_1, GGUF_T_Q4_1, GGUF_T_Q4_1, false, 3},
    {"Q8_0", GGUF_T_Q8_0, GGUF_T_Q8_0, GGUF_T_Q8_0, false, 7},
    {"Q5_0", GGUF_T_Q5_0, GGUF_T_Q5_0, GGUF_T_Q5_0, false, 8},
    {"Q5_1", GGUF_T_Q5_1, GGUF_T_Q5_1, GGUF_T_Q5_1, false, 9},
    {"Q4_K_S", GGUF_T_Q4_K, GGUF_T_Q4_K, GGUF_T_Q4_K, false, 14},
    {"Q4_K_M", GGUF_T_Q4_K, GGUF_T_Q6_K, GGUF_T_Q6_K, true, 15},
    {"Q6_K", GGUF_T_Q6_K, GGUF_T_Q6_K, GGUF_T_Q6_K, false, 18},
    {"IQ4_NL", GGUF_T_IQ4_NL, GGUF_T_IQ4_NL, GGUF_T_IQ4_NL, false, 25},
    {"IQ4_XS", GGUF_T_IQ4_XS, GGUF_T_IQ4_XS, GGUF_T_IQ4_XS, false, 30},
    /* every matrix MXFP4 but the output (Q8_0): the MoE benchmark's MXFP4 experts */
    {"MXFP4", GGUF_T_MXFP4, GGUF_T_Q8_0, GGUF_T_MXFP4, false, 38},
};

bool fixture_params_set_mix(fixture_params *p, const char *name) {
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
        if (strcmp(mixes[i].name, name) == 0) {
            p->weight_type = mixes[i].weights;
            p->output_type = mixes[i].output;
            p->attn_v_type = mixes[i].raised;
            p->ffn_down_type = mixes[i].raised;
            p->raise_by_layer = mixes[i].by_layer;
            return true;
        }
    return false;
}

void fixture_params_set_type(fixture_params *p, uint32_t type) {
    p->weight_type = p->output_type = p->attn_v_type = p->ffn_down_type = type;
    p->raise_by_layer = false;
}

/* The llama.cpp file type matching the params, for tools that display it. */
static uint32_t file_type_of(const fixture_params *p) {
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
        if (mixes[i].weights == p->weight_type && mixes[i].raised == p->ffn_down_type &&
            mixes[i].by_layer == p->raise_by_layer)
            return mixes[i].file_type;
    return 0;
}

/* ---- synthetic vocabulary ---- */

/* Common words; every prefix ("▁t", "▁th", "▁the") becomes a piece so that SentencePiece's
 * pairwise merging can reach the whole word. */
static const char *const words[] = {
    "the", "of",    "and", "to",   "in",    "is",    "it",    "that",  "for",    "you",
    "was", "on",    "are", "with", "as",    "be",    "this",  "have",  "not",    "at",
    "by",  "from",  "or",  "an",   "but",   "what",  "all",   "were",  "when",   "we",
    "can", "there", "one", "has",  "hello", "world", "model", "token", "shimmy", "test",
};
#define SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's word-boundary marker */

typedef struct vocab {
    char **text;
    float *scores;
    int32_t *types;
    uint32_t n, cap;
    uint32_t *slots; /* hash set of texts: index + 1 */
    uint32_t n_slots;
} vocab;

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Adds a token unless present or the vocabulary is full; false only on allocation failure. */
static bool vocab_add(vocab *v, const char *text, float score, int32_t type) {
    if (v->n == v->cap) return true;
    uint32_t i = (uint32_t)fnv(text) & (v->n_slots - 1);
    for (; v->slots[i]; i = (i + 1) & (v->n_slots - 1))
        if (strcmp(v->text[v->slots[i] - 1], text) == 0) return true;
    char *t = strdup(text);
    if (!t) return false;
    v->text[v->n] = t;
    v->scores[v->n] = score;
    v->types[v->n] = type;
    v->slots[i] = ++v->n;
    return true;
}

/* A piece's score: earlier pieces are more likely and merge first. */
static bool add_piece(vocab *v, const char *text) {
    return vocab_add(v, text, -(float)(v->n - FIXTURE_FIRST_PIECE), 1);
}

static void vocab_free(vocab *v) {
    for (uint32_t i = 0; i < v->n; i++) free(v->text[i]);
    free(v->text);
    free(v->scores);
    free(v->types);
    free(v->slots);
}

static bool vocab_build(vocab *v, uint32_t n_vocab) {
    memset(v, 0, sizeof *v);
    v->cap = n_vocab;
    v->n_slots = 1024;
    while (v->n_slots < 2 * n_vocab) v->n_slots *= 2;
    v->text = calloc(n_vocab, sizeof *v->text);
    v->scores = calloc(n_vocab, sizeof *v->scores);
    v->types = calloc(n_vocab, sizeof *v->types);
    v->slots = calloc(v->n_slots, sizeof *v->slots);
    if (!v->text || !v->scores || !v->types || !v->slots) return false;
    bool ok =
        vocab_add(v, "<unk>", 0, 2) && vocab_add(v, "<s>", 0, 3) && vocab_add(v, "</s>", 0, 3);
    char buf[64];
    for (int b = 0; b < 256 && ok; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        ok = vocab_add(v, buf, 0, 6);
    }
    ok = ok && add_piece(v, SPACE);
    static const char singles[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                  ".,!?'\"-:;()";
    for (const char *c = singles; *c && ok; c++) {
        snprintf(buf, sizeof buf, "%c", *c);
        ok = add_piece(v, buf);
    }
    for (size_t w = 0; w < sizeof words / sizeof words[0] && ok; w++)
        for (size_t len = 1; len <= strlen(words[w]) && ok; len++) {
            snprintf(buf, sizeof buf, SPACE "%.*s", (int)len, words[w]);
            ok = add_piece(v, buf);
        }
    /* Fill with lowercase strings of growing length, with and without the boundary marker. */
    for (int len = 1; len <= 4 && ok && v->n < v->cap; len++) {
        long total = 1;
        for (int i = 0; i < len; i++) total *= 26;
        for (long k = 0; k < total && ok && v->n < v->cap; k++) {
            char s[8];
            long x = k;
            for (int i = len - 1; i >= 0; i--, x /= 26) s[i] = (char)('a' + x % 26);
            s[len] = '\0';
            snprintf(buf, sizeof buf, SPACE "%s", s);
            ok = add_piece(v, buf) && (len == 1 || add_piece(v, s));
        }
    }
    return ok && v->n == v->cap;
}

shimmy_status fixture_add_tokenizer(gguf_writer *w, uint32_t n_vocab, shimmy_error *err) {
    if (n_vocab < FIXTURE_FIRST_PIECE || n_vocab > 26u * 26 * 26 * 26)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_vocab",
                          "fixture n_vocab %u must be in [%d, %u]", n_vocab, FIXTURE_FIRST_PIECE,
                          26u * 26 * 26 * 26);
    vocab v;
    if (!vocab_build(&v, n_vocab)) {
        vocab_free(&v);
        return core_error(err, SHIMMY_ERR_NOMEM, "n_vocab", "no memory for a %u-token vocabulary",
                          n_vocab);
    }
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.text, v.n);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, v.scores, v.n);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, v.types, v.n);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", FIXTURE_BOS_ID);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", FIXTURE_EOS_ID);
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", FIXTURE_UNK_ID);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    gguf_writer_set_str(w, "tokenizer.chat_template", fixture_llama2_template);
    vocab_free(&v);
    return SHIMMY_OK;
}

/* ---- weights ---- */

typedef struct gen_job {
    const char *name;
    uint32_t type;
    int64_t ne0, rows, rows_per_chunk, n_chunks;
    uint64_t row_bytes, seed;
    float mean, std;
    quant_from_float_fn encode; /* NULL for F32/F16/BF16, converted inline */
    unsigned char *out;
    float *scratch; /* per thread: rows_per_chunk * ne0 floats */
} gen_job;

/* Decorrelates neighbouring seeds (xorshift streams from seeds 1 and 2 start out alike). */
static uint64_t splitmix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void encode_plain(uint32_t type, const float *x, int64_t n, void *out) {
    if (type == GGUF_T_F32) {
        memcpy(out, x, (size_t)n * sizeof *x);
        return;
    }
    uint16_t *h = out;
    for (int64_t i = 0; i < n; i++)
        h[i] = type == GGUF_T_F16 ? quant_f32_to_f16(x[i]) : quant_f32_to_bf16(x[i]);
}

static void gen_task(void *ctx, int ith, int nth) {
    gen_job *j = ctx;
    float *x = j->scratch + (size_t)ith * (size_t)(j->rows_per_chunk * j->ne0);
    for (int64_t c = ith; c < j->n_chunks; c += nth) {
        int64_t r0 = c * j->rows_per_chunk;
        int64_t nr = j->rows - r0 < j->rows_per_chunk ? j->rows - r0 : j->rows_per_chunk;
        int64_t n = nr * j->ne0;
        test_rng rng;
        test_rng_seed(&rng, splitmix(j->seed + (uint64_t)c));
        /* Marsaglia's polar method: two normals per accepted pair, no trigonometry. */
        for (int64_t i = 0; i < n; i += 2) {
            double u, v, s;
            do {
                u = 2.0 * test_rng_uniform(&rng) - 1.0;
                v = 2.0 * test_rng_uniform(&rng) - 1.0;
                s = u * u + v * v;
            } while (s >= 1.0 || s == 0.0);
            double k = sqrt(-2.0 * log(s) / s);
            x[i] = (float)(j->mean + j->std * u * k);
            if (i + 1 < n) x[i + 1] = (float)(j->mean + j->std * v * k);
        }
        unsigned char *dst = j->out + (size_t)r0 * j->row_bytes;
        if (j->encode)
            j->encode(x, dst, n);
        else
            encode_plain(j->type, x, n, dst);
    }
}

typedef struct model_ctx {
    gguf_writer *w;
    const fixture_params *p;
    core_pool *pool;
    float *scratch;
    size_t scratch_floats;
    shimmy_error *err;
} model_ctx;

static shimmy_status add_tensor(model_ctx *m, const char *name, uint32_t type, int64_t ne0,
                                int64_t ne1, float mean, float std) {
    uint64_t row_bytes;
    if (!gguf_row_bytes(type, ne0, &row_bytes))
        return core_error(m->err, SHIMMY_ERR_INVALID_ARG, name,
                          "fixture tensor %s: %lld columns is not a multiple of the %s block size",
                          name, (long long)ne0, gguf_type_name(type));
    gen_job j = {.name = name,
                 .type = type,
                 .ne0 = ne0,
                 .rows = ne1,
                 .row_bytes = row_bytes,
                 .mean = mean,
                 .std = std};
    if (type != GGUF_T_F32 && type != GGUF_T_F16 && type != GGUF_T_BF16) {
        const quant_traits *q = quant_get_ref(type);
        /* The model-file quantizer, so fixtures hold what llama-quantize would write. */
        j.encode = q ? (q->quantize ? q->quantize : q->from_float) : NULL;
        if (!j.encode)
            return core_error(m->err, SHIMMY_ERR_UNSUPPORTED, name,
                              "fixture tensor %s: the quant module cannot make %s", name,
                              gguf_type_name(type));
    }
    j.seed = (m->p->seed * 0x2545F4914F6CDD1Dull) ^ fnv(name);
    j.rows_per_chunk = ne0 >= 65536 ? 1 : 65536 / ne0;
    j.n_chunks = (ne1 + j.rows_per_chunk - 1) / j.rows_per_chunk;
    size_t need = (size_t)(j.rows_per_chunk * ne0) * (size_t)core_pool_size(m->pool);
    if (need > m->scratch_floats) {
        free(m->scratch);
        m->scratch = malloc(need * sizeof *m->scratch);
        m->scratch_floats = m->scratch ? need : 0;
    }
    j.out = malloc((size_t)(row_bytes * (uint64_t)ne1));
    if (!m->scratch || !j.out) {
        free(j.out);
        return core_error(m->err, SHIMMY_ERR_NOMEM, name, "no memory for fixture tensor %s", name);
    }
    j.scratch = m->scratch;
    core_pool_run(m->pool, gen_task, &j);
    int64_t ne[2] = {ne0, ne1};
    gguf_writer_add_tensor(m->w, name, type, ne1 > 1 ? 2 : 1, ne, j.out);
    free(j.out);
    return SHIMMY_OK;
}

typedef struct arch_traits {
    const char *name;
    bool qkv_bias; /* qwen2 */
    bool qk_norm;  /* qwen3 */
} arch_traits;

static const arch_traits archs[] = {
    {"llama", false, false},
    {"qwen2", true, false},
    {"qwen3", false, true},
};

/* The layers llama-quantize's _M mixes give more bits: the first and last eighth, and every
 * third layer in between. */
static bool more_bits_layer(uint32_t il, uint32_t n_layer) {
    int i = (int)il, n = (int)n_layer;
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static shimmy_status add_layer(model_ctx *m, const arch_traits *a, uint32_t il) {
    const fixture_params *p = m->p;
    bool raise = !p->raise_by_layer || more_bits_layer(il, p->n_layer);
    uint32_t v_type = raise ? p->attn_v_type : p->weight_type;
    uint32_t down_type = raise ? p->ffn_down_type : p->weight_type;
    int64_t hd = p->head_dim ? p->head_dim : p->n_embd / p->n_head;
    int64_t e = p->n_embd, q = hd * p->n_head, kv = hd * p->n_head_kv, ff = p->n_ff;
    float se = 1.0f / sqrtf((float)e);
    /* attn_output and ffn_down are 4x larger so that the layers, not the embedding of the
     * current token, dominate the residual stream (otherwise random models repeat one token). */
    struct {
        const char *kind;
        uint32_t type;
        int64_t ne0, ne1;
        float mean, std;
        bool on;
    } t[] = {
        {"attn_norm.weight", GGUF_T_F32, e, 1, 1.0f, 0.1f, true},
        {"attn_q.weight", p->weight_type, e, q, 0, se, true},
        {"attn_k.weight", p->weight_type, e, kv, 0, se, true},
        {"attn_v.weight", v_type, e, kv, 0, se, true},
        {"attn_q.bias", GGUF_T_F32, q, 1, 0, 0.1f, a->qkv_bias},
        {"attn_k.bias", GGUF_T_F32, kv, 1, 0, 0.1f, a->qkv_bias},
        {"attn_v.bias", GGUF_T_F32, kv, 1, 0, 0.1f, a->qkv_bias},
        {"attn_q_norm.weight", GGUF_T_F32, hd, 1, 1.0f, 0.1f, a->qk_norm},
        {"attn_k_norm.weight", GGUF_T_F32, hd, 1, 1.0f, 0.1f, a->qk_norm},
        {"attn_output.weight", p->weight_type, q, e, 0, 4.0f / sqrtf((float)q), true},
        {"ffn_norm.weight", GGUF_T_F32, e, 1, 1.0f, 0.1f, true},
        {"ffn_gate.weight", p->weight_type, e, ff, 0, se, true},
        {"ffn_up.weight", p->weight_type, e, ff, 0, se, true},
        {"ffn_down.weight", down_type, ff, e, 0, 4.0f / sqrtf((float)ff), true},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!t[i].on) continue;
        char name[96];
        snprintf(name, sizeof name, "blk.%u.%s", il, t[i].kind);
        shimmy_status st = add_tensor(m, name, t[i].type, t[i].ne0, t[i].ne1, t[i].mean, t[i].std);
        if (st) return st;
    }
    return SHIMMY_OK;
}

static void set_hparams(gguf_writer *w, const fixture_params *p, uint32_t head_dim) {
    char key[128], name[96];
    snprintf(name, sizeof name, "fixture-%s", p->arch);
    gguf_writer_set_str(w, "general.architecture", p->arch);
    gguf_writer_set_str(w, "general.name", p->name ? p->name : name);
    gguf_writer_set_str(w, "general.description", "random-weight test model (shimmy fixture)");
    gguf_writer_set_u32(w, "general.file_type", file_type_of(p));
    gguf_writer_set_u32(w, "general.quantization_version", 2);
    struct {
        const char *suffix;
        uint32_t v;
    } u[] = {
        {"context_length", p->n_ctx},        {"embedding_length", p->n_embd},
        {"block_count", p->n_layer},         {"feed_forward_length", p->n_ff},
        {"attention.head_count", p->n_head}, {"attention.head_count_kv", p->n_head_kv},
        {"attention.key_length", head_dim},  {"attention.value_length", head_dim},
        {"rope.dimension_count", head_dim},  {"vocab_size", p->n_vocab},
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", p->arch, u[i].suffix);
        gguf_writer_set_u32(w, key, u[i].v);
    }
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", p->arch);
    gguf_writer_set_f32(w, key, p->rms_eps);
    snprintf(key, sizeof key, "%s.rope.freq_base", p->arch);
    gguf_writer_set_f32(w, key, p->rope_base);
}

static shimmy_status check_params(const fixture_params *p, const arch_traits **arch,
                                  shimmy_error *err) {
    *arch = NULL;
    for (size_t i = 0; p->arch && i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(archs[i].name, p->arch) == 0) *arch = &archs[i];
    if (!*arch)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "arch",
                          "fixture arch '%s' is not llama, qwen2 or qwen3",
                          p->arch ? p->arch : "(null)");
    if (!p->n_embd || !p->n_layer || !p->n_head || !p->n_head_kv || !p->n_ff || !p->n_ctx ||
        p->n_head % p->n_head_kv || (!p->head_dim && p->n_embd % p->n_head))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "fixture_params",
                          "fixture shape n_embd %u, n_head %u, n_head_kv %u, n_ff %u, n_layer %u, "
                          "n_ctx %u is not a valid model",
                          p->n_embd, p->n_head, p->n_head_kv, p->n_ff, p->n_layer, p->n_ctx);
    return SHIMMY_OK;
}

shimmy_status fixture_write_llama(const char *path, const fixture_params *p, shimmy_error *err) {
    const arch_traits *arch;
    shimmy_status st = check_params(p, &arch, err);
    if (st) return st;
    uint32_t head_dim = p->head_dim ? p->head_dim : p->n_embd / p->n_head;
    model_ctx m = {.p = p, .err = err};
    if ((st = gguf_writer_new(&m.w, err))) return st;
    if ((st = core_pool_new(0, &m.pool, err))) goto done;
    set_hparams(m.w, p, head_dim);
    if ((st = fixture_add_tokenizer(m.w, p->n_vocab, err))) goto done;
    /* logits ~ N(0, 0.5^2 * n_embd) through a tied embedding: peaked enough to be non-uniform */
    if ((st = add_tensor(&m, "token_embd.weight", p->weight_type, p->n_embd, p->n_vocab, 0, 0.5f)))
        goto done;
    for (uint32_t il = 0; il < p->n_layer; il++)
        if ((st = add_layer(&m, arch, il))) goto done;
    if ((st = add_tensor(&m, "output_norm.weight", GGUF_T_F32, p->n_embd, 1, 1.0f, 0.1f)))
        goto done;
    if (!p->tied && (st = add_tensor(&m, "output.weight", p->output_type, p->n_embd, p->n_vocab, 0,
                                     2.0f / sqrtf((float)p->n_embd))))
        goto done;
    st = gguf_writer_write(m.w, path, err);
done:
    free(m.scratch);
    core_pool_free(m.pool);
    gguf_writer_free(m.w);
    return st;
}

void fixture_write_default(char *dir, size_t dir_cap, char *path, size_t path_cap) {
    if (!test_tmpdir(dir, dir_cap)) test_skip("no temporary directory");
    snprintf(path, path_cap, "%s/fixture.gguf", dir);
    const fixture_params p = fixture_params_default();
    shimmy_error err;
    if (fixture_write_llama(path, &p, &err)) test_skip(err.message);
}
