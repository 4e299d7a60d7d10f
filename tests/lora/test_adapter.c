/* lora: loading the shared GGUF and PEFT adapters onto their bases, the PEFT -> GGUF equivalence
 * (names, q/k row permutation for llama, none for qwen2), scales, and refusal of hostile or
 * unsupported adapters with errors that name the adapter, the tensor and the problem. */
#include "fixture.h"
#include "lora_fixtures.h"

#include <math.h>
#include <unistd.h>

static gguf_file *llama, *qwen2;
static char tmp[512];

static lora_adapter *open_ok(const char *rel, gguf_file *base) {
    char path[600];
    test_require_data(rel, path, sizeof path);
    lora_adapter *a = NULL;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status rc = lora_adapter_open(path, base, &a, &err);
    CHECK_MSG(rc == SHIMMY_OK && a, "%s: %s", rel, err.message);
    return a;
}

/* Every pair of the GGUF adapter has a PEFT twin holding exactly the same A and B bytes. */
static void check_twins(const char *gguf_rel, const char *peft_rel, gguf_file *base, size_t n_pairs,
                        int64_t rank, float alpha) {
    lora_adapter *g = open_ok(gguf_rel, base), *p = open_ok(peft_rel, base);
    if (!g || !p) goto out;
    CHECK(lora_adapter_format(g) == LORA_FORMAT_GGUF && lora_adapter_format(p) == LORA_FORMAT_PEFT);
    CHECK_EQ_INT(lora_adapter_n_pairs(g), n_pairs);
    CHECK_EQ_INT(lora_adapter_n_pairs(p), n_pairs);
    CHECK(lora_adapter_alpha(g) == alpha && lora_adapter_alpha(p) == alpha);
    for (size_t i = 0; i < lora_adapter_n_pairs(g); i++) {
        const lora_pair *a = lora_adapter_pair_at(g, i);
        const lora_pair *b = lora_adapter_find(p, a->weight);
        CHECK_MSG(b != NULL, "%s: no PEFT twin for %s", peft_rel, a->weight);
        if (!b) continue;
        CHECK(lora_adapter_find(g, a->weight) == a);
        CHECK_EQ_INT(a->rank, rank);
        CHECK(a->type_a == b->type_a && a->type_b == b->type_b && a->n_in == b->n_in &&
              a->n_out == b->n_out && a->rank == b->rank);
        const gguf_tensor *w = gguf_find_tensor(base, a->weight);
        CHECK(w && w->ne[0] == a->n_in && w->ne[1] == a->n_out);
        CHECK_MSG(memcmp(a->a, b->a, a->a_row_bytes * (size_t)a->rank) == 0, "%s: lora_a differs",
                  a->weight);
        CHECK_MSG(memcmp(a->b, b->b, a->b_row_bytes * (size_t)a->n_out) == 0, "%s: lora_b differs",
                  a->weight);
        /* alpha / r = 2 for every shared adapter */
        CHECK(lora_pair_scale(a, 1.0f) == 2.0f && lora_pair_scale(b, 1.0f) == 2.0f);
        CHECK(lora_pair_scale(a, 0.5f) == 1.0f && lora_pair_scale(b, 0.5f) == 1.0f);
    }
out:
    lora_adapter_unref(g);
    lora_adapter_unref(p);
}

/* Whether PEFT's stored q lora_B rows equal the GGUF ones: they must not for llama (the loader
 * has to permute) and must for qwen2 (it must not). */
static void check_raw_q(const char *gguf_rel, const char *st_rel, gguf_file *base, bool same) {
    char path[600];
    lora_adapter *g = open_ok(gguf_rel, base);
    lora_st *st = NULL;
    shimmy_error err;
    test_require_data(st_rel, path, sizeof path);
    CHECK(lora_st_open(path, &st, &err) == SHIMMY_OK);
    const lora_st_tensor *t =
        st ? lora_st_find(st, FX_PEFT "1.self_attn.q_proj.lora_B.weight") : NULL;
    const lora_pair *p = g ? lora_adapter_find(g, "blk.1.attn_q.weight") : NULL;
    CHECK(t && p && t->nbytes == p->b_row_bytes * (size_t)p->n_out);
    if (t && p) CHECK((memcmp(t->data, p->b, t->nbytes) == 0) == same);
    lora_st_close(st);
    lora_adapter_unref(g);
}

static void test_shared(void) {
    check_twins("lora/lora-tiny-llama-spm-r4.gguf", "lora/peft-tiny-llama-spm-r4", llama, 14, 4,
                8.0f);
    check_twins("lora/lora-tiny-llama-spm-r8-attn.gguf", "lora/peft-tiny-llama-spm-r8-attn", llama,
                8, 8, 16.0f);
    check_twins("lora/lora-tiny-qwen2-r4.gguf", "lora/peft-tiny-qwen2-r4", qwen2, 14, 4, 8.0f);
    /* the .safetensors file named directly, config beside it */
    check_twins("lora/lora-tiny-llama-spm-r4.gguf",
                "lora/peft-tiny-llama-spm-r4/adapter_model.safetensors", llama, 14, 4, 8.0f);
    check_raw_q("lora/lora-tiny-llama-spm-r4.gguf",
                "lora/peft-tiny-llama-spm-r4/adapter_model.safetensors", llama, false);
    check_raw_q("lora/lora-tiny-qwen2-r4.gguf", "lora/peft-tiny-qwen2-r4/adapter_model.safetensors",
                qwen2, true);

    lora_adapter *a = open_ok("lora/lora-tiny-llama-spm-r8-attn.gguf", llama);
    if (a) {
        const lora_pair *p = lora_adapter_find(a, "blk.0.attn_k.weight");
        CHECK(p && p->type_a == GGUF_T_F16 && p->type_b == GGUF_T_F16 && p->n_in == 32 &&
              p->n_out == 16 && p->rank == 8);
        CHECK(lora_adapter_find(a, "blk.0.ffn_up.weight") == NULL);
        CHECK(lora_adapter_find(a, "blk.0.attn_k.weight.lora_a") == NULL);
        CHECK_STR(lora_adapter_arch(a), "llama");
        shimmy_error err;
        CHECK(lora_adapter_validate(a, llama, &err) == SHIMMY_OK);
        CHECK(lora_adapter_validate(a, qwen2, &err) == SHIMMY_ERR_ADAPTER);
        /* shared by reference: the extra reference keeps it alive */
        CHECK(lora_adapter_ref(a) == a);
        lora_adapter_unref(a);
        CHECK_EQ_INT(lora_adapter_n_pairs(a), 8);
        lora_adapter_unref(a);
    }
    /* a llama adapter on the qwen2 base */
    char path[600];
    lora_adapter *x = (lora_adapter *)1;
    shimmy_error err;
    test_require_data("lora/lora-tiny-llama-spm-r4.gguf", path, sizeof path);
    CHECK(lora_adapter_open(path, qwen2, &x, &err) == SHIMMY_ERR_ADAPTER && !x);
    CHECK(strstr(err.message, "architecture 'llama'") && strstr(err.message, "'qwen2'"));
}

/* The llama permutation checked against the README formula on rows numbered by their index. */
static void test_permutation(void) {
    uint32_t n_head = 0;
    CHECK(gguf_get_u32(llama, "llama.attention.head_count", &n_head) && n_head > 0);
    const int64_t n_out = 32, r = 2, d = n_out / (n_head ? n_head : 1);
    float bvals[64];
    for (int64_t row = 0; row < n_out; row++)
        for (int64_t c = 0; c < r; c++) bvals[row * r + c] = (float)(row * 10 + c);
    fx_st ts[] = {{FX_PEFT "0.self_attn.q_proj.lora_A.weight", "F32", r, 32, NULL},
                  {FX_PEFT "0.self_attn.q_proj.lora_B.weight", "F32", n_out, r, bvals}};
    char path[700];
    if (!fx_peft(tmp, "perm", "{\"r\": 2}", ts, 2, path, sizeof path)) {
        CHECK(!"fixture");
        return;
    }
    lora_adapter *a = NULL;
    shimmy_error err;
    CHECK_MSG(lora_adapter_open(path, llama, &a, &err) == SHIMMY_OK, "%s", err.message);
    const lora_pair *p = a ? lora_adapter_find(a, "blk.0.attn_q.weight") : NULL;
    CHECK(p != NULL);
    for (int64_t h = 0; p && h < (int64_t)n_head; h++)
        for (int64_t i = 0; i < d / 2; i++)
            for (int64_t j = 0; j < 2; j++) {
                float got[2];
                memcpy(got, (const char *)p->b + (size_t)(h * d + 2 * i + j) * p->b_row_bytes, 8);
                int64_t hf = h * d + j * (d / 2) + i;
                CHECK(got[0] == (float)(hf * 10) && got[1] == (float)(hf * 10 + 1));
            }
    lora_adapter_unref(a);
}

/* ---- refusals ---- */

static void expect_fail(const char *label, const char *path, gguf_file *base, shimmy_status want,
                        const char *needle, const char *needle2) {
    lora_adapter *a = (lora_adapter *)1;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status rc = lora_adapter_open(path, base, &a, &err);
    CHECK_MSG(rc == want, "%s: got %s: %s", label, shimmy_status_name(rc), err.message);
    CHECK_MSG(a == NULL, "%s: adapter returned on failure", label);
    CHECK_MSG(strstr(err.message, needle), "%s: '%s' lacks '%s'", label, err.message, needle);
    if (needle2)
        CHECK_MSG(strstr(err.message, needle2), "%s: '%s' lacks '%s'", label, err.message, needle2);
    if (rc == SHIMMY_OK) lora_adapter_unref(a);
}

static const fx_gguf fx_ok = {"llama", "adapter", "lora", true, 8.0f};

static void gguf_case(const char *label, const fx_gguf *m, const fx_tensor *ts, size_t n,
                      shimmy_status want, const char *needle, const char *needle2) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s.gguf", tmp, label);
    if (!fx_write_gguf(path, m, ts, n)) {
        CHECK_MSG(0, "%s: fixture not written", label);
        return;
    }
    expect_fail(label, path, llama, want, needle, needle2);
    /* every message names the adapter */
    lora_adapter *a = NULL;
    shimmy_error err;
    if (lora_adapter_open(path, llama, &a, &err) != SHIMMY_OK)
        CHECK_MSG(strstr(err.message, path), "%s: message does not name the file", label);
    lora_adapter_unref(a);
}

#define Q_A(t, r)                                                                                  \
    { "blk.0.attn_q.weight.lora_a", t, 32, r }
#define Q_B(t, r)                                                                                  \
    { "blk.0.attn_q.weight.lora_b", t, r, 32 }

static void test_gguf_refusals(void) {
    const fx_tensor pair[] = {Q_A(GGUF_T_F32, 4), Q_B(GGUF_T_F32, 4)};
    fx_gguf m = fx_ok;
    m.arch = "qwen2";
    gguf_case("arch", &m, pair, 2, SHIMMY_ERR_ADAPTER, "architecture 'qwen2'", "'llama'");
    m = fx_ok;
    m.gtype = "model";
    gguf_case("gtype", &m, pair, 2, SHIMMY_ERR_ADAPTER, "general.type", "\"model\"");
    m.gtype = NULL;
    gguf_case("no-gtype", &m, pair, 2, SHIMMY_ERR_ADAPTER, "general.type", NULL);
    m = fx_ok;
    m.atype = "ia3";
    gguf_case("atype", &m, pair, 2, SHIMMY_ERR_UNSUPPORTED, "adapter.type", "\"ia3\"");

    const fx_tensor half[] = {Q_A(GGUF_T_F32, 4)};
    gguf_case("half", &fx_ok, half, 1, SHIMMY_ERR_ADAPTER, "incomplete", "lora_b");
    const fx_tensor unknown[] = {{"blk.0.attn_zzz.weight.lora_a", GGUF_T_F32, 32, 4},
                                 {"blk.0.attn_zzz.weight.lora_b", GGUF_T_F32, 4, 32}};
    gguf_case("unknown", &fx_ok, unknown, 2, SHIMMY_ERR_ADAPTER, "blk.0.attn_zzz.weight",
              "does not have");
    const fx_tensor shape[] = {{"blk.0.attn_q.weight.lora_a", GGUF_T_F32, 16, 4},
                               Q_B(GGUF_T_F32, 4)};
    gguf_case("shape", &fx_ok, shape, 2, SHIMMY_ERR_ADAPTER, "blk.0.attn_q.weight",
              "another model");
    const fx_tensor out_dim[] = {Q_A(GGUF_T_F32, 4),
                                 {"blk.0.attn_q.weight.lora_b", GGUF_T_F32, 4, 16}};
    gguf_case("out-dim", &fx_ok, out_dim, 2, SHIMMY_ERR_ADAPTER, "[32, 32]", "another model");
    const fx_tensor rank[] = {Q_A(GGUF_T_F32, 4), Q_B(GGUF_T_F32, 8)};
    gguf_case("rank", &fx_ok, rank, 2, SHIMMY_ERR_ADAPTER, "blk.0.attn_q.weight", "rank");
    const fx_tensor q4[] = {Q_A(GGUF_T_Q4_0, 4), Q_B(GGUF_T_F32, 4)};
    gguf_case("type", &fx_ok, q4, 2, SHIMMY_ERR_UNSUPPORTED, "Q4_0", "lora_a");
    const fx_tensor suffix[] = {Q_A(GGUF_T_F32, 4),
                                {"blk.0.attn_q.weight.lora_c", GGUF_T_F32, 4, 32}};
    gguf_case("suffix", &fx_ok, suffix, 2, SHIMMY_ERR_ADAPTER, "lora_c", "not a LoRA matrix");
    const fx_tensor embd[] = {{"token_embd.weight.lora_a", GGUF_T_F32, 32, 4},
                              {"token_embd.weight.lora_b", GGUF_T_F32, 4, 8}};
    gguf_case("embd", &fx_ok, embd, 2, SHIMMY_ERR_UNSUPPORTED, "token embedding", "not supported");
    const fx_tensor vec[] = {{"blk.0.attn_norm.weight.lora_a", GGUF_T_F32, 32, 4},
                             {"blk.0.attn_norm.weight.lora_b", GGUF_T_F32, 4, 1}};
    gguf_case("vector", &fx_ok, vec, 2, SHIMMY_ERR_ADAPTER, "attn_norm", "not a matrix");
    gguf_case("empty", &fx_ok, NULL, 0, SHIMMY_ERR_ADAPTER, "no LoRA tensors", NULL);

    /* norm vectors are skipped (as llama.cpp does); no alpha means scale = user scale */
    const fx_tensor norm[] = {
        Q_A(GGUF_T_F32, 4), {"blk.0.attn_norm.weight", GGUF_T_F32, 32, 0}, Q_B(GGUF_T_F32, 4)};
    m = fx_ok;
    m.has_alpha = false;
    char path[700];
    snprintf(path, sizeof path, "%s/norm.gguf", tmp);
    CHECK(fx_write_gguf(path, &m, norm, 3));
    lora_adapter *a = NULL;
    shimmy_error err;
    CHECK_MSG(lora_adapter_open(path, llama, &a, &err) == SHIMMY_OK, "%s", err.message);
    if (a) {
        CHECK_EQ_INT(lora_adapter_n_pairs(a), 1);
        CHECK(lora_adapter_alpha(a) == 0.0f);
        CHECK(lora_pair_scale(lora_adapter_pair_at(a, 0), 0.75f) == 0.75f);
        lora_adapter_unref(a);
    }
    /* Q8_0 and BF16 matrices load with their own kernels */
    const fx_tensor q8[] = {Q_A(GGUF_T_Q8_0, 32), Q_B(GGUF_T_BF16, 32)};
    snprintf(path, sizeof path, "%s/q8.gguf", tmp);
    CHECK(fx_write_gguf(path, &fx_ok, q8, 2));
    CHECK_MSG(lora_adapter_open(path, llama, &a, &err) == SHIMMY_OK, "%s", err.message);
    if (a) {
        const lora_pair *p = lora_adapter_pair_at(a, 0);
        CHECK(p->type_a == GGUF_T_Q8_0 && p->type_b == GGUF_T_BF16 && p->rank == 32);
        CHECK(lora_pair_scale(p, 1.0f) == 0.25f);
        lora_adapter_unref(a);
    }

    /* things that are not adapters at all */
    char base_path[600];
    test_require_data(FX_LLAMA, base_path, sizeof base_path);
    expect_fail("base-as-adapter", base_path, llama, SHIMMY_ERR_ADAPTER, "general.type", NULL);
    snprintf(path, sizeof path, "%s/notes.txt", tmp);
    FILE *fp = fopen(path, "w");
    if (fp) fclose(fp);
    expect_fail("text", path, llama, SHIMMY_ERR_UNSUPPORTED, "neither", NULL);
    snprintf(path, sizeof path, "%s/missing.gguf", tmp);
    expect_fail("missing", path, llama, SHIMMY_ERR_NOT_FOUND, "missing.gguf", NULL);
}

#define PQ(s) FX_PEFT "0.self_attn.q_proj.lora_" s ".weight"

static void peft_case(const char *label, const char *overrides, const fx_st *ts, size_t n,
                      shimmy_status want, const char *needle, const char *needle2) {
    char path[700];
    if (!fx_peft(tmp, label, overrides, ts, n, path, sizeof path)) {
        CHECK_MSG(0, "%s: fixture not written", label);
        return;
    }
    expect_fail(label, path, llama, want, needle, needle2);
}

static void test_peft_refusals(void) {
    const fx_st ok[] = {{PQ("A"), "F32", 4, 32, NULL}, {PQ("B"), "F32", 32, 4, NULL}};
    const shimmy_status U = SHIMMY_ERR_UNSUPPORTED, A = SHIMMY_ERR_ADAPTER;
    peft_case("dora", "{\"use_dora\": true}", ok, 2, U, "use_dora", "adapter_config.json");
    peft_case("fifo", "{\"fan_in_fan_out\": true}", ok, 2, U, "fan_in_fan_out", NULL);
    peft_case("bias", "{\"bias\": \"all\"}", ok, 2, U, "bias", NULL);
    peft_case("mts", "{\"modules_to_save\": [\"lm_head\"]}", ok, 2, U, "modules_to_save", NULL);
    peft_case("rp", "{\"rank_pattern\": {\"q_proj\": 8}}", ok, 2, U, "rank_pattern", NULL);
    peft_case("ap", "{\"alpha_pattern\": {\"q_proj\": 8}}", ok, 2, U, "alpha_pattern", NULL);
    peft_case("ia3", "{\"peft_type\": \"IA3\"}", ok, 2, U, "peft_type", NULL);
    peft_case("qalora", "{\"use_qalora\": true}", ok, 2, U, "use_qalora", NULL);
    peft_case("alora", "{\"alora_invocation_tokens\": [1, 2]}", ok, 2, U, "alora", NULL);
    peft_case("alpha0", "{\"lora_alpha\": 0}", ok, 2, A, "lora_alpha", NULL);
    peft_case("r0", "{\"r\": 0}", ok, 2, A, "r must be", NULL);
    peft_case("r-mismatch", "{\"r\": 8}", ok, 2, A, "rank 4", "r = 8");
    peft_case("targets", "{\"target_modules\": [\"v_proj\"]}", ok, 2, A, "target_modules",
              "q_proj");
    const fx_st half[] = {{PQ("A"), "F32", 4, 32, NULL}};
    peft_case("half", "", half, 1, A, "incomplete", "lora_b");
    const fx_st head[] = {{"base_model.model.lm_head.lora_A.weight", "F32", 4, 32, NULL},
                          {"base_model.model.lm_head.lora_B.weight", "F32", 8, 4, NULL}};
    peft_case("lm_head", "", head, 2, A, "lm_head.lora_A", "not a LoRA matrix");
    const fx_st zero[] = {{FX_PEFT "01.self_attn.q_proj.lora_A.weight", "F32", 4, 32, NULL},
                          {PQ("B"), "F32", 32, 4, NULL}};
    peft_case("leading-zero", "", zero, 2, A, "layers.01", "not a LoRA matrix");
    const fx_st far[] = {{FX_PEFT "99.self_attn.q_proj.lora_A.weight", "F32", 4, 32, NULL},
                         {FX_PEFT "99.self_attn.q_proj.lora_B.weight", "F32", 32, 4, NULL}};
    peft_case("layer99", "", far, 2, A, "blk.99.attn_q.weight", "does not have");
    const fx_st i64[] = {{PQ("A"), "I64", 4, 32, NULL}, {PQ("B"), "F32", 32, 4, NULL}};
    peft_case("i64", "", i64, 2, U, "I64", NULL);
    const fx_st shape[] = {{PQ("A"), "F32", 4, 32, NULL}, {PQ("B"), "F32", 16, 4, NULL}};
    peft_case("shape", "", shape, 2, A, "blk.0.attn_q.weight", "another model");

    char path[700], cfg[1024];
    /* bad JSON in the config */
    snprintf(path, sizeof path, "%s/badjson", tmp);
    CHECK(fx_peft(tmp, "badjson", "", ok, 2, path, sizeof path) != NULL);
    CHECK(fx_write_config(path, NULL, "{\"r\": 4, \"lora_alpha\": "));
    expect_fail("badjson", path, llama, SHIMMY_ERR_INVALID_JSON, "not valid JSON",
                "adapter_config.json");
    /* no config at all */
    snprintf(cfg, sizeof cfg, "%s/adapter_config.json", path);
    remove(cfg);
    expect_fail("noconfig", path, llama, SHIMMY_ERR_NOT_FOUND, "adapter_config.json", NULL);
    snprintf(cfg, sizeof cfg, "%s/adapter_model.safetensors", path);
    expect_fail("noconfig-file", cfg, llama, SHIMMY_ERR_NOT_FOUND, "adapter_config.json", NULL);
    /* pickle weights only */
    char bin[1100];
    snprintf(bin, sizeof bin, "%s/adapter_model.bin", path);
    CHECK(rename(cfg, bin) == 0);
    expect_fail("pickle", path, llama, SHIMMY_ERR_UNSUPPORTED, "adapter_model.bin", NULL);
    /* a truncated safetensors file */
    CHECK(fx_peft(tmp, "trunc", "", ok, 2, path, sizeof path) != NULL);
    snprintf(cfg, sizeof cfg, "%s/adapter_model.safetensors", path);
    CHECK(truncate(cfg, 100) == 0);
    expect_fail("trunc", path, llama, SHIMMY_ERR_FORMAT, "adapter_model.safetensors", NULL);

    /* rsLoRA: scale = alpha / sqrt(r) = 8 / 2 */
    CHECK(fx_peft(tmp, "rslora", "{\"use_rslora\": true}", ok, 2, path, sizeof path) != NULL);
    lora_adapter *a = NULL;
    shimmy_error err;
    CHECK_MSG(lora_adapter_open(path, llama, &a, &err) == SHIMMY_OK, "%s", err.message);
    if (a) CHECK(lora_pair_scale(lora_adapter_pair_at(a, 0), 1.0f) == 4.0f);
    lora_adapter_unref(a);
}

/* Corrupted copies of real adapters (GGUF file, PEFT safetensors): a clean load or a clean
 * refusal every time, never a crash or a half-built adapter. */
static void mutate_and_open(const char *src_rel, const char *dst, const char *open_path, int n_it,
                            unsigned long long seed) {
    char src[600];
    test_require_data(src_rel, src, sizeof src);
    size_t len = 0;
    char *orig = test_read_file(src, &len);
    CHECK(orig != NULL);
    if (!orig) return;
    test_rng rng;
    test_rng_seed(&rng, seed);
    int ok = 0;
    for (int it = 0; it < n_it; it++) {
        char *buf = malloc(len);
        memcpy(buf, orig, len);
        size_t n = len, span = len < 4096 ? len : 4096; /* headers and directories come first */
        for (int k = 0; k < 1 + (int)(test_rng_u64(&rng) % 3); k++)
            buf[test_rng_u64(&rng) % span] ^= (char)(1u << (test_rng_u64(&rng) % 8));
        if (test_rng_u64(&rng) % 5 == 0) n = (size_t)(test_rng_u64(&rng) % len);
        FILE *fp = fopen(dst, "wb");
        CHECK(fp && fwrite(buf, 1, n, fp) == n);
        if (fp) fclose(fp);
        free(buf);
        lora_adapter *a = NULL;
        shimmy_error err;
        shimmy_status rc = lora_adapter_open(open_path, llama, &a, &err);
        CHECK_MSG(rc == SHIMMY_OK ? a != NULL : a == NULL && err.message[0], "%s: %s", dst,
                  err.message);
        CHECK_MSG(rc != SHIMMY_ERR_INTERNAL && rc != SHIMMY_ERR_NOMEM, "%s", err.message);
        if (a) CHECK(lora_adapter_validate(a, llama, &err) == SHIMMY_OK);
        ok += rc == SHIMMY_OK;
        lora_adapter_unref(a);
    }
    CHECK_MSG(ok > 0 && ok < n_it, "%s: %d of %d mutants loaded", dst, ok, n_it);
    free(orig);
}

static void test_mutations(void) {
    char path[700], st[800];
    snprintf(path, sizeof path, "%s/mutant.gguf", tmp);
    mutate_and_open("lora/lora-tiny-llama-spm-r8-attn.gguf", path, path, 300, 99);
    const fx_st ok[] = {{PQ("A"), "F32", 4, 32, NULL}, {PQ("B"), "F32", 32, 4, NULL}};
    if (!fx_peft(tmp, "mutant", "{\"r\": 8, \"lora_alpha\": 16}", ok, 2, path, sizeof path)) return;
    snprintf(st, sizeof st, "%s/adapter_model.safetensors", path);
    mutate_and_open("lora/peft-tiny-llama-spm-r8-attn/adapter_model.safetensors", st, path, 300,
                    77);
}

/* An adapter costs its bytes once (the issue: "an adapter costs only its own bytes"): the pairs
 * that get panels are copied into one owned block at open, and the pages of the file mapping
 * they were read from are given back, so opening one raises the resident set by about its
 * tensor bytes, not twice that. A 10 MB adapter (rank 32, F32, five projections of 16 layers)
 * on a fixture base big enough for page-sized effects to vanish. */
static void test_resident(void) {
    enum { N_LAYER = 16, N_EMBD = 512, RANK = 32 }; /* rank < 64: panels */
    if (core_rss_bytes() == 0) {
        printf("  resident memory: skipped (no VmRSS in /proc/self/status)\n");
        return;
    }
    char base_path[700], ad_path[700];
    snprintf(base_path, sizeof base_path, "%s/resident-base.gguf", tmp);
    snprintf(ad_path, sizeof ad_path, "%s/resident-lora.gguf", tmp);
    fixture_params fp = fixture_params_default();
    fp.n_embd = N_EMBD, fp.n_ff = N_EMBD, fp.n_layer = N_LAYER, fp.n_head = 8, fp.n_head_kv = 8;
    fixture_params_set_type(&fp, GGUF_T_Q8_0);
    shimmy_error err;
    CHECK_MSG(fixture_write_llama(base_path, &fp, &err) == SHIMMY_OK, "base: %s", err.message);
    static const char *proj[] = {"attn_q", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    enum { N_PAIRS = N_LAYER * 5 };
    static char names[2 * N_PAIRS][64];
    fx_tensor ts[2 * N_PAIRS];
    for (int i = 0; i < N_PAIRS; i++) {
        snprintf(names[2 * i], 64, "blk.%d.%s.weight.lora_a", i / 5, proj[i % 5]);
        snprintf(names[2 * i + 1], 64, "blk.%d.%s.weight.lora_b", i / 5, proj[i % 5]);
        ts[2 * i] = (fx_tensor){names[2 * i], GGUF_T_F32, N_EMBD, RANK};
        ts[2 * i + 1] = (fx_tensor){names[2 * i + 1], GGUF_T_F32, RANK, N_EMBD};
    }
    CHECK(fx_write_gguf(ad_path, &fx_ok, ts, 2 * N_PAIRS));
    gguf_file *base = NULL;
    CHECK_MSG(gguf_open(base_path, &base, &err) == SHIMMY_OK, "%s", err.message);
    if (!base) return;
    const double data = 2.0 * N_PAIRS * N_EMBD * RANK * sizeof(float);
    const uint64_t before = core_rss_bytes();
    lora_adapter *a = NULL;
    CHECK_MSG(lora_adapter_open(ad_path, base, &a, &err) == SHIMMY_OK, "%s", err.message);
    const double grew = (double)core_rss_bytes() - (double)before;
    /* copy + mapping would be 2x; the slack covers the sanitizers' shadow of the copy and the
     * pair tables */
    CHECK_MSG(grew <= 1.3 * data + (2 << 20), "opening a %.1f MB adapter raised RSS by %.1f MB",
              data / 1e6, grew / 1e6);
    printf("  resident memory: a %.1f MB adapter raised RSS by %.1f MB\n", data / 1e6, grew / 1e6);
    const lora_pair *p = a ? lora_adapter_find(a, "blk.15.ffn_down.weight") : NULL;
    CHECK(p && p->rank == RANK && p->n_out == N_EMBD);
    lora_adapter_unref(a);
    gguf_close(base);
}

int main(void) {
    llama = fx_base(FX_LLAMA);
    qwen2 = fx_base(FX_QWEN2);
    if (!llama || !qwen2 || !test_tmpdir(tmp, sizeof tmp)) {
        gguf_close(llama);
        gguf_close(qwen2);
        CHECK(!"setup");
        return test_finish("lora/adapter");
    }
    test_shared();
    test_permutation();
    test_gguf_refusals();
    test_peft_refusals();
    test_mutations();
    test_resident();
    test_rm_rf(tmp);
    gguf_close(llama);
    gguf_close(qwen2);
    return test_finish("lora/adapter");
}
