/* The architecture table and hyper-parameters read from `<arch>.*` metadata keys. Every value is
 * validated here so that the forward pass can trust shapes (no division by zero, no overflow). */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const model_arch *const arch_table[] = {
    &model_arch_llama,      &model_arch_qwen2,    &model_arch_qwen3,    &model_arch_bert,
    &model_arch_nomic_bert, &model_arch_qwen3moe, &model_arch_qwen2moe, &model_arch_gpt_oss,
    &model_arch_gemma2,     &model_arch_gemma3,   &model_arch_phi3,     &model_arch_mistral3,
    &model_arch_smollm3,    &model_arch_granite,  &model_arch_olmo2,    &model_arch_qwen35,
    &model_arch_qwen35moe};
#define N_ARCH (sizeof arch_table / sizeof arch_table[0])

const model_arch *model_arch_find(const char *name) {
    for (size_t i = 0; i < N_ARCH; i++)
        if (strcmp(arch_table[i]->name, name) == 0) return arch_table[i];
    return NULL;
}

static char arch_names[256];
static pthread_once_t arch_names_once = PTHREAD_ONCE_INIT;

static void arch_names_build(void) {
    for (size_t i = 0; i < N_ARCH; i++) {
        if (i) strncat(arch_names, ", ", sizeof arch_names - strlen(arch_names) - 1);
        strncat(arch_names, arch_table[i]->name, sizeof arch_names - strlen(arch_names) - 1);
    }
}

const char *model_arch_names(void) {
    pthread_once(&arch_names_once, arch_names_build);
    return arch_names;
}

/* Limits that keep every derived size far from overflow and reject absurd files early. */
#define MAX_DIM    (1 << 20)
#define MAX_LAYERS 4096
#define MAX_HEADS  4096

typedef struct hp_key {
    const char *suffix;
    int32_t *dst;
    bool required;
    int32_t lo, hi;
} hp_key;

static shimmy_status read_i32(const gguf_file *f, const char *arch, const hp_key *k,
                              shimmy_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, k->suffix);
    const gguf_value *v = gguf_get(f, key);
    if (!v) {
        if (k->required)
            return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f), "metadata key '%s' is missing",
                              key);
        return SHIMMY_OK;
    }
    if (v->type == GGUF_VT_ARRAY)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, gguf_path(f),
                          "metadata key '%s' is a per-layer array; only a single value is "
                          "supported",
                          key);
    uint32_t u;
    if (!gguf_get_u32(f, key, &u) || u > (uint32_t)k->hi || (int64_t)u < k->lo)
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                          "metadata key '%s' must be an integer in [%d, %d]", key, k->lo, k->hi);
    *k->dst = (int32_t)u;
    return SHIMMY_OK;
}

static shimmy_status read_f32(const gguf_file *f, const char *arch, const char *suffix, float *dst,
                              bool required, shimmy_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!gguf_get(f, key)) {
        if (required)
            return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f), "metadata key '%s' is missing",
                              key);
        return SHIMMY_OK;
    }
    float v;
    if (!gguf_get_f32(f, key, &v) || !isfinite(v))
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                          "metadata key '%s' must be a finite number", key);
    *dst = v;
    return SHIMMY_OK;
}

/* YaRN with llama.cpp's defaults (beta_fast 32, beta_slow 1) and its attention factor: the
 * factor's mscale 1 + 0.1 ln(factor) (divided by the same with yarn_log_multiplier when the file
 * has one, as Ministral 3 and DeepSeek files do), divided by the 1 + 0.1 ln(factor) that rope
 * multiplies in again, times rope.scaling.attn_factor. */
static float yarn_mscale(float factor, float mul) {
    return factor <= 1.0f ? 1.0f : 0.1f * mul * logf(factor) + 1.0f;
}

static shimmy_status read_yarn(const gguf_file *f, const char *arch, model_hparams *hp,
                               shimmy_error *err) {
    hp->rope_ext_factor = 1.0f;
    hp->yarn_beta_fast = 32.0f;
    hp->yarn_beta_slow = 1.0f;
    float log_mul = 0.0f;
    shimmy_status st;
    if ((st = read_f32(f, arch, "rope.scaling.yarn_beta_fast", &hp->yarn_beta_fast, false, err)) ||
        (st = read_f32(f, arch, "rope.scaling.yarn_beta_slow", &hp->yarn_beta_slow, false, err)) ||
        (st = read_f32(f, arch, "rope.scaling.yarn_log_multiplier", &log_mul, false, err)))
        return st;
    const float fct = 1.0f / hp->rope_freq_scale;
    const float mscale = log_mul != 0.0f ? yarn_mscale(fct, 1.0f) / yarn_mscale(fct, log_mul)
                                         : yarn_mscale(fct, 1.0f);
    hp->yarn_attn_factor = mscale * (1.0f / (1.0f + 0.1f * logf(fct))) * hp->rope_attn_factor;
    return SHIMMY_OK;
}

/* The rope.scaling.* keys as llama.cpp reads them: the type defaults to linear, and its factor
 * (or the older rope.scale_linear) divides every frequency unless the type is none; yarn adds
 * its ramp and attention factor; longrope scales like linear (the factor tensors themselves
 * are the architecture's: model_rope_longrope_factors). */
static shimmy_status read_rope_scaling(const gguf_file *f, const char *arch, model_hparams *hp,
                                       shimmy_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    float factor = 0.0f;
    char fkey[128];
    snprintf(fkey, sizeof fkey, "%s.rope.scaling.factor", arch);
    const hp_key orig = {"rope.scaling.original_context_length", &hp->n_ctx_orig_yarn, false, 0,
                         1 << 30};
    hp->n_ctx_orig_yarn = hp->n_ctx_train;
    hp->rope_attn_factor = 1.0f;
    shimmy_status st;
    if ((st = read_f32(f, arch, gguf_get(f, fkey) ? "rope.scaling.factor" : "rope.scale_linear",
                       &factor, false, err)) ||
        (st = read_i32(f, arch, &orig, err)) ||
        (st = read_f32(f, arch, "rope.scaling.attn_factor", &hp->rope_attn_factor, false, err)))
        return st;
    if (hp->n_ctx_orig_yarn == 0) hp->n_ctx_orig_yarn = hp->n_ctx_train; /* 0: not given */
    if (factor < 0.0f || !(hp->rope_attn_factor > 0.0f))
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                          "%s: the RoPE scaling factor and attention factor must be positive",
                          arch);
    gguf_str type = {0};
    if (gguf_get(f, key) && !gguf_get_str(f, key, &type))
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                          "metadata key '%s' must be a string", key);
    const bool has_type = gguf_get(f, key) != NULL;
    if (has_type && gguf_str_eq(type, "none")) return SHIMMY_OK; /* never scaled */
    if (factor > 0.0f) hp->rope_freq_scale = 1.0f / factor;
    if (!has_type || gguf_str_eq(type, "linear") || gguf_str_eq(type, "longrope")) return SHIMMY_OK;
    if (gguf_str_eq(type, "yarn")) return read_yarn(f, arch, hp, err);
    char name[32];
    return core_error(err, SHIMMY_ERR_UNSUPPORTED, gguf_path(f),
                      "RoPE scaling type '%s' (%s) is not supported; supported: none, linear, "
                      "yarn, longrope",
                      gguf_str_copy(type, name, sizeof name), key);
}

shimmy_status model_hparams_read(const gguf_file *f, const model_arch *a, model_hparams *hp,
                                 shimmy_error *err) {
    memset(hp, 0, sizeof *hp);
    hp->n_head_kv = -1;
    hp->head_dim = -1;
    hp->head_dim_v = -1;
    hp->n_rot = -1;
    hp->rope_base = 10000.0f;
    hp->rope_freq_scale = 1.0f;
    hp->rms_eps = 1e-5f;
    hp->n_swa = 0;
    hp->norm_eps = 1e-12f;
    hp->pooling = MODEL_POOL_UNSPEC;
    const hp_key keys[] = {
        {"context_length", &hp->n_ctx_train, true, 1, 1 << 24},
        {"embedding_length", &hp->n_embd, true, 1, MAX_DIM},
        {"block_count", &hp->n_layer, true, 1, MAX_LAYERS},
        {"feed_forward_length", &hp->n_ff, true, 1, MAX_DIM},
        {"attention.head_count", &hp->n_head, true, 1, MAX_HEADS},
        {"attention.head_count_kv", &hp->n_head_kv, false, 1, MAX_HEADS},
        {"attention.key_length", &hp->head_dim, false, 1, 65536},
        {"attention.value_length", &hp->head_dim_v, false, 1, 65536},
        {"rope.dimension_count", &hp->n_rot, false, 0, 65536},
        {"pooling_type", &hp->pooling, false, MODEL_POOL_NONE, MODEL_POOL_RANK},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        shimmy_status st = read_i32(f, a->name, &keys[i], err);
        if (st) return st;
    }
    shimmy_status st;
    if ((st = read_f32(f, a->name, "attention.layer_norm_rms_epsilon", &hp->rms_eps, false, err)) ||
        (st = read_f32(f, a->name, "rope.freq_base", &hp->rope_base, false, err)) ||
        (st = read_f32(f, a->name, "attention.layer_norm_epsilon", &hp->norm_eps, false, err)) ||
        (st = read_rope_scaling(f, a->name, hp, err)))
        return st;
    if (hp->n_head_kv < 0) hp->n_head_kv = hp->n_head;
    if (hp->head_dim < 0) {
        if (hp->n_embd % hp->n_head)
            return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                              "%s.embedding_length %d is not a multiple of "
                              "%s.attention.head_count %d",
                              a->name, hp->n_embd, a->name, hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    if (hp->head_dim_v < 0) hp->head_dim_v = hp->head_dim;
    if (hp->n_rot < 0) hp->n_rot = hp->head_dim;
    if (hp->n_head % hp->n_head_kv)
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                          "%s.attention.head_count %d is not a multiple of head_count_kv %d",
                          a->name, hp->n_head, hp->n_head_kv);
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                          "%s.rope.dimension_count %d must be even and at most the head size %d",
                          a->name, hp->n_rot, hp->head_dim);
    if ((int64_t)hp->n_head * hp->head_dim > MAX_DIM ||
        (int64_t)hp->n_head * hp->head_dim_v > MAX_DIM)
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f), "attention size %d x %d too large",
                          hp->n_head, hp->head_dim);
    if (!(hp->rms_eps > 0.0f) || !(hp->rope_base > 0.0f))
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(f),
                          "%s: RMSNorm epsilon and RoPE base must be positive", a->name);
    return SHIMMY_OK;
}

/* ---- keys for the arch hooks ---- */

shimmy_status model_load_key_i32(model_loader *ld, const char *suffix, bool required, int32_t lo,
                                 int32_t hi, int32_t *out) {
    const hp_key k = {suffix, out, required, lo, hi};
    return read_i32(ld->f, ld->m->arch->name, &k, ld->err);
}

shimmy_status model_load_key_f32(model_loader *ld, const char *suffix, bool required, float *out) {
    return read_f32(ld->f, ld->m->arch->name, suffix, out, required, ld->err);
}

shimmy_status model_load_fail(model_loader *ld, shimmy_status st, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return core_error(ld->err, st, gguf_path(ld->f), "%s", msg);
}
