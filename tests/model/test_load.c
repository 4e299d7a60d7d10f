/*
 * Binding and hyper-parameter checks on broken models: every defect gives a clear error that
 * names the tensor or key, never a crash. A valid fixture model (tests/support/fixture.h) is
 * rewritten with one defect at a time.
 */
#include "engine/engine.h"
#include "fixture.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "test.h"

typedef struct defect {
    const char *drop_tensor; /* omitted */
    const char *half_tensor; /* written with half its rows */
    const char *f16_tensor;  /* written as F16 zeros */
    const char *drop_key;    /* omitted */
    const char *set_key;     /* overridden: string value for general.architecture, else u32 */
    const char *set_str;
    uint32_t set_u32;
} defect;

static shimmy_status rewrite(const char *src, const char *dst, const defect *d, shimmy_error *err) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    shimmy_status st = gguf_open(src, &f, err);
    if (!st) st = gguf_writer_new(&w, err);
    for (size_t i = 0; !st && i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        char key[256];
        gguf_str_copy(kv->key, key, sizeof key);
        if (d->drop_key && strcmp(key, d->drop_key) == 0) continue;
        if (d->set_key && strcmp(key, d->set_key) == 0) {
            if (d->set_str)
                gguf_writer_set_str(w, key, d->set_str);
            else
                gguf_writer_set_u32(w, key, d->set_u32);
            continue;
        }
        gguf_writer_set_value(w, key, &kv->value);
    }
    static unsigned char zeros[1 << 16];
    for (size_t i = 0; !st && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        gguf_str_copy(t->name, name, sizeof name);
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (d->drop_tensor && strcmp(name, d->drop_tensor) == 0) continue;
        if (d->half_tensor && strcmp(name, d->half_tensor) == 0) ne[1] /= 2;
        if (d->f16_tensor && strcmp(name, d->f16_tensor) == 0) {
            gguf_writer_add_tensor(w, name, GGUF_T_F16, t->n_dims, ne, zeros);
            continue;
        }
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, ne, t->data);
    }
    if (!st) st = gguf_writer_write(w, dst, err);
    gguf_writer_free(w);
    gguf_close(f);
    return st;
}

/* Loads path and expects status `want` with `needle` in the message. */
static void expect(const char *path, shimmy_status want, const char *needle, const char *what) {
    gguf_file *f = NULL;
    model *m = NULL;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status st = gguf_open(path, &f, &err);
    if (!st) st = model_load(f, &m, &err);
    CHECK_MSG(st == want, "%s: status %s, want %s (%s)", what, shimmy_status_name(st),
              shimmy_status_name(want), err.message);
    if (needle)
        CHECK_MSG(strstr(err.message, needle) != NULL, "%s: '%s' lacks '%s'", what, err.message,
                  needle);
    CHECK(st != SHIMMY_OK || m != NULL);
    CHECK(st == SHIMMY_OK || m == NULL);
    model_free(m);
    gguf_close(f);
}

static void test_eval_errors(const char *path) {
    gguf_file *f = NULL;
    model *m = NULL;
    shimmy_error err;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (f) CHECK(model_load(f, &m, &err) == SHIMMY_OK);
    if (!m) {
        gguf_close(f);
        return;
    }
    CHECK_EQ_INT(m->hp.n_embd, 64);
    CHECK_EQ_INT(m->hp.head_dim, 16);
    CHECK_EQ_INT(m->hp.n_vocab, 512);
    model_ctx_params cp = {.n_ctx = 8, .n_batch = 4, .n_logits = 2};
    model_ctx *c = NULL;
    CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_OK);
    int32_t toks[8] = {1, 300, 301, 302, 303, 304, 305, 306};
    CHECK(model_ctx_eval(c, toks, 5, 1, &err) == SHIMMY_ERR_INVALID_ARG); /* > n_batch */
    CHECK(model_ctx_eval(c, toks, 4, 3, &err) == SHIMMY_ERR_INVALID_ARG); /* > n_logits */
    int32_t bad[2] = {1, 512};
    CHECK(model_ctx_eval(c, bad, 2, 1, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "512") != NULL);
    bad[1] = -1;
    CHECK(model_ctx_eval(c, bad, 2, 1, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(model_ctx_eval(c, toks, 4, 2, &err) == SHIMMY_OK);
    const float *l0 = model_ctx_logits(c, 0), *l1 = model_ctx_logits(c, 1);
    CHECK(l0 && l1 && !model_ctx_logits(c, 2));
    CHECK(model_ctx_eval(c, toks + 4, 4, 1, &err) == SHIMMY_OK);
    CHECK_EQ_INT(model_ctx_n_past(c), 8);
    CHECK(model_ctx_eval(c, toks, 1, 1, &err) == SHIMMY_ERR_CONTEXT_EXCEEDED);
    /* truncating and re-running a prefix reproduces its logits (a batch and single steps sum in
     * different float orders, as the reference does, so not bit for bit) */
    CHECK(model_ctx_eval(c, toks, 1, 1, &err) == SHIMMY_ERR_CONTEXT_EXCEEDED);
    model_ctx_truncate(c, 3);
    CHECK(model_ctx_eval(c, toks + 3, 1, 1, &err) == SHIMMY_OK);
    float first[512];
    memcpy(first, model_ctx_logits(c, 0), sizeof first);
    model_ctx_truncate(c, 0);
    CHECK(model_ctx_eval(c, toks, 4, 1, &err) == SHIMMY_OK);
    double worst = 0;
    for (int i = 0; i < 512; i++) worst = fmax(worst, fabs(first[i] - model_ctx_logits(c, 0)[i]));
    CHECK_MSG(worst < 1e-3, "batch vs incremental logits differ by %g", worst);
    model_ctx_free(c);
    cp.n_ctx = 0;
    CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_ERR_INVALID_ARG);
    cp.n_ctx = 8;
    cp.kv_type = (model_kv_type)7;
    CHECK(model_ctx_new(m, &cp, &c, &err) == SHIMMY_ERR_INVALID_ARG);
    model_ctx_free(NULL);
    model_free(m);
    gguf_close(f);
}

int main(void) {
    char dir[512], good[1024], bad[1024];
    if (!test_tmpdir(dir, sizeof dir)) test_skip("no temporary directory");
    snprintf(good, sizeof good, "%s/good.gguf", dir);
    snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
    shimmy_error err;
    fixture_params p = fixture_params_default();
    CHECK(fixture_write_llama(good, &p, &err) == SHIMMY_OK);
    expect(good, SHIMMY_OK, NULL, "valid llama");
    test_eval_errors(good);

    const struct {
        defect d;
        shimmy_status want;
        const char *needle;
    } cases[] = {
        {{.drop_tensor = "blk.1.attn_q.weight"}, SHIMMY_ERR_FORMAT, "blk.1.attn_q.weight"},
        {{.drop_tensor = "token_embd.weight"}, SHIMMY_ERR_FORMAT, "token_embd.weight"},
        {{.drop_tensor = "output_norm.weight"}, SHIMMY_ERR_FORMAT, "output_norm.weight"},
        {{.half_tensor = "blk.0.ffn_up.weight"}, SHIMMY_ERR_FORMAT, "blk.0.ffn_up.weight"},
        {{.half_tensor = "blk.0.attn_k.weight"}, SHIMMY_ERR_FORMAT, "shape"},
        {{.f16_tensor = "blk.0.attn_norm.weight"}, SHIMMY_ERR_UNSUPPORTED, "attn_norm"},
        {{.drop_key = "llama.block_count"}, SHIMMY_ERR_FORMAT, "llama.block_count"},
        {{.drop_key = "general.architecture"}, SHIMMY_ERR_FORMAT, "general.architecture"},
        {{.set_key = "general.architecture", .set_str = "gpt2"}, SHIMMY_ERR_UNSUPPORTED, "qwen3"},
        {{.set_key = "llama.attention.head_count", .set_u32 = 3}, SHIMMY_ERR_FORMAT, "head_count"},
        {{.set_key = "llama.attention.head_count_kv", .set_u32 = 3},
         SHIMMY_ERR_FORMAT,
         "head_count_kv"},
        {{.set_key = "llama.embedding_length", .set_u32 = 0},
         SHIMMY_ERR_FORMAT,
         "embedding_length"},
        {{.set_key = "llama.block_count", .set_u32 = 3}, SHIMMY_ERR_FORMAT, "blk.2."},
        {{.set_key = "llama.rope.dimension_count", .set_u32 = 17},
         SHIMMY_ERR_FORMAT,
         "dimension_count"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(rewrite(good, bad, &cases[i].d, &err) == SHIMMY_OK);
        char what[64];
        snprintf(what, sizeof what, "defect %zu", i);
        expect(bad, cases[i].want, cases[i].needle, what);
    }

    /* qwen2 needs its biases; qwen3 its q/k norms */
    p.arch = "qwen2";
    CHECK(fixture_write_llama(good, &p, &err) == SHIMMY_OK);
    expect(good, SHIMMY_OK, NULL, "valid qwen2");
    defect nob = {.drop_tensor = "blk.0.attn_v.bias"};
    CHECK(rewrite(good, bad, &nob, &err) == SHIMMY_OK);
    expect(bad, SHIMMY_ERR_FORMAT, "blk.0.attn_v.bias", "qwen2 without bias");
    p.arch = "qwen3";
    CHECK(fixture_write_llama(good, &p, &err) == SHIMMY_OK);
    expect(good, SHIMMY_OK, NULL, "valid qwen3");
    defect non = {.drop_tensor = "blk.1.attn_k_norm.weight"};
    CHECK(rewrite(good, bad, &non, &err) == SHIMMY_OK);
    expect(bad, SHIMMY_ERR_FORMAT, "blk.1.attn_k_norm.weight", "qwen3 without k norm");

    /* engine_model_open passes the same errors through */
    engine_model *em = (engine_model *)1;
    CHECK(engine_model_open(bad, NULL, &em, &err) == SHIMMY_ERR_FORMAT);
    CHECK(em == NULL);
    FILE *tf = fopen(bad, "wb");
    if (tf) {
        fputs("GGUF", tf);
        fclose(tf);
    }
    CHECK(engine_model_open(bad, NULL, &em, &err) != SHIMMY_OK);
    test_rm_rf(dir);
    return test_finish("model/load");
}
