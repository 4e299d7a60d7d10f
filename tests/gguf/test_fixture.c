/* The shared fixture models: complete llama.cpp-style metadata, the expected tensors and shapes,
 * a usable synthetic vocabulary, deterministic bytes, and weights that survive each type's
 * quantizer (dequantized through the quant module's reference, they match the F32 fixture). */
#include "fixture.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "test.h"

#include <stdint.h>

static char dir[512];

static gguf_file *write_open(const fixture_params *p, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    shimmy_error err;
    shimmy_status st = fixture_write_llama(path, p, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s: %s", name, err.message);
    if (st) return NULL;
    gguf_file *f = NULL;
    st = gguf_open(path, &f, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s: %s", name, err.message);
    return f;
}

static uint32_t get_u32(const gguf_file *f, const char *key) {
    uint32_t v = 0;
    CHECK_MSG(gguf_get_u32(f, key, &v), "missing %s", key);
    return v;
}

static int64_t token_id(const gguf_value *toks, const char *text) {
    for (uint64_t i = 0; i < toks->v.arr.count; i++)
        if (gguf_str_eq(toks->v.arr.strs[i], text)) return (int64_t)i;
    return -1;
}

static void test_llama_f32(void) {
    fixture_params p = fixture_params_default();
    gguf_file *f = write_open(&p, "llama-f32.gguf");
    if (!f) return;
    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s) && gguf_str_eq(s, "llama"));
    CHECK(gguf_get_str(f, "general.name", &s) && gguf_str_eq(s, "fixture-llama"));
    CHECK_EQ_INT(get_u32(f, "llama.context_length"), 256);
    CHECK_EQ_INT(get_u32(f, "llama.embedding_length"), 64);
    CHECK_EQ_INT(get_u32(f, "llama.block_count"), 2);
    CHECK_EQ_INT(get_u32(f, "llama.feed_forward_length"), 128);
    CHECK_EQ_INT(get_u32(f, "llama.attention.head_count"), 4);
    CHECK_EQ_INT(get_u32(f, "llama.attention.head_count_kv"), 2);
    CHECK_EQ_INT(get_u32(f, "llama.rope.dimension_count"), 16);
    float eps = 0, base = 0;
    CHECK(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps) && eps == 1e-5f);
    CHECK(gguf_get_f32(f, "llama.rope.freq_base", &base) && base == 10000.0f);
    /* 2 layers x 9 + token_embd + output_norm + output */
    CHECK_EQ_INT(gguf_n_tensors(f), 21);
    const gguf_tensor *t = gguf_find_tensor(f, "blk.1.attn_k.weight");
    CHECK(t && t->ne[0] == 64 && t->ne[1] == 32 && t->type == GGUF_T_F32);
    t = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    CHECK(t && t->ne[0] == 128 && t->ne[1] == 64);
    t = gguf_find_tensor(f, "blk.0.attn_output.weight");
    CHECK(t && t->ne[0] == 64 && t->ne[1] == 64);
    t = gguf_find_tensor(f, "output.weight");
    CHECK(t && t->ne[0] == 64 && t->ne[1] == 512);
    t = gguf_find_tensor(f, "blk.0.attn_norm.weight");
    CHECK(t && t->n_dims == 1 && t->ne[0] == 64);
    if (t) {
        /* norms ~ 1 + N(0, 0.1^2) */
        const float *w = t->data;
        double mean = 0;
        for (int i = 0; i < 64; i++) mean += w[i] / 64.0;
        CHECK_NEAR(mean, 1.0, 0.06);
    }
    t = gguf_find_tensor(f, "blk.0.attn_q.weight");
    if (t) {
        /* matrices ~ N(0, 1/n_in): sample variance within 10% of 1/64 over 4096 values */
        const float *w = t->data;
        double ss = 0;
        for (int i = 0; i < 64 * 64; i++) ss += (double)w[i] * w[i];
        CHECK_NEAR(ss / 4096.0, 1.0 / 64, 0.1 / 64);
    }
    /* tokenizer */
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VT_STRING);
    const gguf_value *types = gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_VT_INT32);
    const gguf_value *scores = gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_VT_FLOAT32);
    CHECK(toks && types && scores && toks->v.arr.count == 512 && types->v.arr.count == 512 &&
          scores->v.arr.count == 512);
    if (toks && types && scores && toks->v.arr.count == 512) {
        CHECK(gguf_str_eq(toks->v.arr.strs[0], "<unk>") && gguf_arr_i64(types, 0) == 2);
        CHECK(gguf_str_eq(toks->v.arr.strs[1], "<s>") && gguf_arr_i64(types, 1) == 3);
        CHECK(gguf_str_eq(toks->v.arr.strs[2], "</s>") && gguf_arr_i64(types, 2) == 3);
        CHECK(gguf_str_eq(toks->v.arr.strs[3], "<0x00>") && gguf_arr_i64(types, 3) == 6);
        CHECK(gguf_str_eq(toks->v.arr.strs[258], "<0xFF>") && gguf_arr_i64(types, 258) == 6);
        CHECK(gguf_arr_i64(types, 259) == 1);
        /* every prefix of a common word is a piece, so SPM merging reaches "▁the" */
        int64_t t1 = token_id(toks, "\xe2\x96\x81t"), t2 = token_id(toks, "\xe2\x96\x81th"),
                t3 = token_id(toks, "\xe2\x96\x81the");
        CHECK(t1 > 258 && t2 > 258 && t3 > 258);
        CHECK(token_id(toks, "a") > 258 && token_id(toks, "\xe2\x96\x81") > 258);
        /* texts are unique and piece scores strictly decrease */
        bool unique = true, decreasing = true;
        for (uint64_t i = 0; i < 512; i++) {
            if (i > 259 && !(gguf_arr_f64(scores, i) < gguf_arr_f64(scores, i - 1)))
                decreasing = false;
            for (uint64_t k = i + 1; k < 512 && unique; k++)
                if (toks->v.arr.strs[i].len == toks->v.arr.strs[k].len &&
                    memcmp(toks->v.arr.strs[i].data, toks->v.arr.strs[k].data,
                           toks->v.arr.strs[i].len) == 0)
                    unique = false;
        }
        CHECK(unique);
        CHECK(decreasing);
    }
    CHECK_EQ_INT(get_u32(f, "tokenizer.ggml.bos_token_id"), FIXTURE_BOS_ID);
    CHECK_EQ_INT(get_u32(f, "tokenizer.ggml.eos_token_id"), FIXTURE_EOS_ID);
    bool add_bos = false;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos) && add_bos);
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &s) && gguf_str_eq(s, "llama"));
    CHECK(gguf_get_str(f, "tokenizer.chat_template", &s) &&
          gguf_str_eq(s, fixture_llama2_template) && s.len > 500);
    gguf_close(f);
}

static void test_archs(void) {
    fixture_params p = fixture_params_default();
    p.arch = "qwen2";
    p.tied = true;
    p.n_vocab = 300;
    gguf_file *f = write_open(&p, "qwen2.gguf");
    if (f) {
        CHECK_EQ_INT(gguf_n_tensors(f), 2 + 2 * 12);
        CHECK(gguf_find_tensor(f, "output.weight") == NULL);
        const gguf_tensor *b = gguf_find_tensor(f, "blk.1.attn_k.bias");
        CHECK(b && b->ne[0] == 32 && b->n_dims == 1);
        CHECK_EQ_INT(get_u32(f, "qwen2.block_count"), 2);
        gguf_close(f);
    }
    p.arch = "qwen3";
    p.head_dim = 32; /* n_head x head_dim = 128 != n_embd, as in real Qwen3 models */
    f = write_open(&p, "qwen3.gguf");
    if (f) {
        CHECK_EQ_INT(gguf_n_tensors(f), 2 + 2 * 11);
        const gguf_tensor *q = gguf_find_tensor(f, "blk.0.attn_q.weight");
        CHECK(q && q->ne[0] == 64 && q->ne[1] == 128);
        const gguf_tensor *o = gguf_find_tensor(f, "blk.0.attn_output.weight");
        CHECK(o && o->ne[0] == 128 && o->ne[1] == 64);
        const gguf_tensor *n = gguf_find_tensor(f, "blk.0.attn_k_norm.weight");
        CHECK(n && n->ne[0] == 32);
        CHECK_EQ_INT(get_u32(f, "qwen3.attention.key_length"), 32);
        gguf_close(f);
    }
    shimmy_error err;
    char path[700];
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    p = fixture_params_default();
    p.arch = "gpt9";
    CHECK(fixture_write_llama(path, &p, &err) == SHIMMY_ERR_INVALID_ARG);
    p = fixture_params_default();
    p.n_vocab = 100;
    CHECK(fixture_write_llama(path, &p, &err) == SHIMMY_ERR_INVALID_ARG);
    p = fixture_params_default();
    CHECK(fixture_params_set_mix(&p, "Q4_K_M"));
    CHECK(fixture_write_llama(path, &p, &err) == SHIMMY_ERR_INVALID_ARG); /* 64 % 256 */
    CHECK(strstr(err.message, "block size") != NULL);
    CHECK(!fixture_params_set_mix(&p, "Q9_X"));
    /* one type everywhere */
    p = fixture_params_default();
    p.n_vocab = 300;
    fixture_params_set_type(&p, GGUF_T_Q8_0);
    gguf_file *q = write_open(&p, "q8-uniform.gguf");
    if (q) {
        int n_q8 = 0, n_f32 = 0;
        for (size_t i = 0; i < gguf_n_tensors(q); i++) {
            uint32_t t = gguf_tensor_at(q, i)->type;
            n_q8 += t == GGUF_T_Q8_0;
            n_f32 += t == GGUF_T_F32;
        }
        CHECK_EQ_INT(n_q8, 2 * 7 + 2);  /* layer matrices, token_embd, output */
        CHECK_EQ_INT(n_f32, 2 * 2 + 1); /* norms */
        gguf_close(q);
    }
}

/* Q4_K_M follows llama-quantize: Q6_K for output, and for attn_v/ffn_down on the layers its
 * rule picks — with 8 layers, the first and last (n/8 = 1) and 3 and 6 ((i - 1) % 3 == 2). */
static void test_q4_k_m_layers(void) {
    fixture_params p = fixture_params_default();
    p.n_embd = 256;
    p.n_ff = 256;
    p.n_layer = 8;
    p.n_vocab = 300;
    CHECK(fixture_params_set_mix(&p, "Q4_K_M"));
    gguf_file *f = write_open(&p, "q4km-8.gguf");
    if (!f) return;
    static const bool raised[8] = {true, false, false, true, false, false, true, true};
    for (int il = 0; il < 8; il++) {
        const char *kinds[] = {"attn_v", "ffn_down", "attn_k", "ffn_up"};
        for (int k = 0; k < 4; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", il, kinds[k]);
            const gguf_tensor *t = gguf_find_tensor(f, name);
            uint32_t want = k < 2 && raised[il] ? GGUF_T_Q6_K : GGUF_T_Q4_K;
            CHECK_MSG(t && t->type == want, "%s is %s", name, t ? gguf_type_name(t->type) : "-");
        }
    }
    const gguf_tensor *o = gguf_find_tensor(f, "output.weight");
    CHECK(o && o->type == GGUF_T_Q6_K);
    const gguf_tensor *e = gguf_find_tensor(f, "token_embd.weight");
    CHECK(e && e->type == GGUF_T_Q4_K);
    CHECK_EQ_INT(get_u32(f, "general.file_type"), 15);
    gguf_close(f);
}

/* Each type's fixture, dequantized with the reference kernels, is the F32 fixture within the
 * type's precision: same seed, same values before quantization. */
static void test_types(void) {
    fixture_params p = fixture_params_default();
    p.n_embd = 256;
    p.n_ff = 512;
    p.n_layer = 1;
    p.n_vocab = 300;
    gguf_file *ref = write_open(&p, "types-f32.gguf");
    if (!ref) return;
    static const struct {
        const char *mix;
        double tol; /* max |error| relative to the tensor's max |value| */
    } cases[] = {{"F16", 1e-3}, {"BF16", 8e-3},  {"Q8_0", 0.01},
                 {"Q4_0", 0.1}, {"Q4_K_M", 0.1}, {"Q6_K", 0.03}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fixture_params q = p;
        CHECK(fixture_params_set_mix(&q, cases[c].mix));
        char name[64];
        snprintf(name, sizeof name, "types-%s.gguf", cases[c].mix);
        gguf_file *f = write_open(&q, name);
        if (!f) continue;
        CHECK_EQ_INT(gguf_n_tensors(f), gguf_n_tensors(ref));
        const char *names[] = {"blk.0.attn_q.weight", "blk.0.ffn_down.weight", "output.weight"};
        for (int k = 0; k < 3; k++) {
            const gguf_tensor *a = gguf_find_tensor(ref, names[k]),
                              *b = gguf_find_tensor(f, names[k]);
            CHECK(a && b);
            if (!a || !b) continue;
            /* with one layer, the _M rule raises layer 0 */
            uint32_t want = k == 0 ? q.weight_type : k == 1 ? q.ffn_down_type : q.output_type;
            CHECK_MSG(b->type == want, "%s %s is %s", cases[c].mix, names[k],
                      gguf_type_name(b->type));
            const quant_traits *qt = quant_get_ref(b->type);
            CHECK(qt != NULL);
            if (!qt) continue;
            int64_t n = a->ne[0] * a->ne[1];
            float *y = malloc((size_t)n * sizeof *y);
            qt->to_float(b->data, y, n);
            const float *x = a->data;
            double amax = 0, emax = 0;
            for (int64_t i = 0; i < n; i++) {
                amax = fmax(amax, fabs(x[i]));
                emax = fmax(emax, fabs(x[i] - y[i]));
            }
            CHECK_MSG(emax <= cases[c].tol * amax, "%s %s: max error %g of %g", cases[c].mix,
                      names[k], emax, amax);
            free(y);
        }
        gguf_close(f);
    }
    gguf_close(ref);
}

static void test_deterministic(void) {
    fixture_params p = fixture_params_default();
    p.n_layer = 1;
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/det-a.gguf", dir);
    snprintf(b, sizeof b, "%s/det-b.gguf", dir);
    shimmy_error err;
    CHECK(fixture_write_llama(a, &p, &err) == SHIMMY_OK);
    CHECK(fixture_write_llama(b, &p, &err) == SHIMMY_OK);
    size_t na = 0, nb = 0;
    char *da = test_read_file(a, &na), *db = test_read_file(b, &nb);
    CHECK(da && db && na == nb && memcmp(da, db, na) == 0);
    free(db);
    /* another seed changes the weights; another layer count leaves blk.0 alone */
    p.seed = 2;
    CHECK(fixture_write_llama(b, &p, &err) == SHIMMY_OK);
    db = test_read_file(b, &nb);
    CHECK(db && na == nb && memcmp(da, db, na) != 0);
    free(da);
    free(db);
    p.seed = 1;
    gguf_file *f1 = write_open(&p, "det-1.gguf");
    p.n_layer = 3;
    gguf_file *f3 = write_open(&p, "det-3.gguf");
    if (f1 && f3) {
        const gguf_tensor *x = gguf_find_tensor(f1, "blk.0.ffn_up.weight"),
                          *y = gguf_find_tensor(f3, "blk.0.ffn_up.weight");
        CHECK(x && y && x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0);
    }
    gguf_close(f1);
    gguf_close(f3);
}

int main(void) {
    if (!test_tmpdir(dir, sizeof dir)) return 1;
    test_llama_f32();
    test_archs();
    test_q4_k_m_layers();
    test_types();
    test_deterministic();
    test_rm_rf(dir);
    return test_finish("gguf_fixture");
}
