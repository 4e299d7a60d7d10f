/* The CPU backend: the model module's own forward pass over a model_ctx. */
#include "engine.h"

static shimmy_status cpu_ctx_new(const model *m, const model_ctx_params *p, void **ctx,
                                 shimmy_error *err) {
    model_ctx *c = NULL;
    shimmy_status st = model_ctx_new(m, p, &c, err);
    *ctx = c;
    return st;
}

static void cpu_ctx_free(void *ctx) {
    model_ctx_free(ctx);
}

static shimmy_status cpu_eval(void *ctx, const int32_t *tokens, int32_t n, int32_t n_logits,
                              shimmy_error *err) {
    return model_ctx_eval(ctx, tokens, n, n_logits, err);
}

static const float *cpu_logits(const void *ctx, int32_t i) {
    return model_ctx_logits(ctx, i);
}
static int32_t cpu_truncate(void *ctx, int32_t n_keep) {
    return model_ctx_truncate(ctx, n_keep);
}
static int32_t cpu_n_past(const void *ctx) {
    return model_ctx_n_past(ctx);
}

static shimmy_status cpu_set_lora(void *ctx, const struct lora_set *set, shimmy_error *err) {
    return model_ctx_set_lora(ctx, set, err);
}

const engine_backend engine_backend_cpu = {
    .name = "cpu",
    .ctx_new = cpu_ctx_new,
    .ctx_free = cpu_ctx_free,
    .eval = cpu_eval,
    .logits = cpu_logits,
    .truncate = cpu_truncate,
    .n_past = cpu_n_past,
    .set_lora = cpu_set_lora,
};
