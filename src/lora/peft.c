/* Hugging Face PEFT LoRA adapters: adapter_config.json + adapter_model.safetensors.
 *
 * PEFT names tensors after the Hugging Face modules; they are renamed to the GGUF base weights
 * the same way llama.cpp's converter renames the base model, and for architectures whose
 * converter permutes q/k rows for GGML's rope layout (llama) lora_B gets the same permutation:
 * B·A is then exactly the delta the converter would have produced. Config options that change
 * what the delta means (DoRA, transposed weights, per-layer ranks, extra trained modules) are
 * refused: applying them as plain LoRA would be silently wrong. */
#include "lora/lora_impl.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PEFT_MAX_CONFIG (1u << 20)
#define PEFT_MAX_RANK   (1 << 20)

/* ---- architectures ---- */

typedef struct peft_arch {
    const char *name;
    bool rope_permute; /* the base converter reorders q/k rows (GGML's non-NeoX rope) */
} peft_arch;

static const peft_arch peft_archs[] = {
    {"llama", true},
    {"qwen2", false},
    {"qwen3", false},
};

/* ---- modules: Hugging Face module path under a layer -> GGUF tensor ---- */

typedef enum peft_heads { PEFT_HEADS_NONE, PEFT_HEADS_Q, PEFT_HEADS_KV } peft_heads;

typedef struct peft_module {
    const char *hf;   /* after "model.layers.N." */
    const char *gguf; /* between "blk.N." and ".weight" */
    peft_heads heads; /* which head count reorders lora_B when the arch permutes */
} peft_module;

static const peft_module peft_modules[] = {
    {"self_attn.q_proj", "attn_q", PEFT_HEADS_Q},
    {"self_attn.k_proj", "attn_k", PEFT_HEADS_KV},
    {"self_attn.v_proj", "attn_v", PEFT_HEADS_NONE},
    {"self_attn.o_proj", "attn_output", PEFT_HEADS_NONE},
    {"mlp.gate_proj", "ffn_gate", PEFT_HEADS_NONE},
    {"mlp.up_proj", "ffn_up", PEFT_HEADS_NONE},
    {"mlp.down_proj", "ffn_down", PEFT_HEADS_NONE},
};

static const struct {
    const char *suffix;
    bool is_b;
} peft_suffixes[] = {
    {".lora_A.weight", false},
    {".lora_B.weight", true},
};

#define PEFT_PREFIX "base_model.model.model.layers."

/* ---- config rules: keys whose non-default value we refuse ---- */

static bool is_false(json_t *v) {
    return !v || json_is_null(v) || json_is_false(v);
}
static bool is_empty(json_t *v) {
    return !v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_object(v) && json_object_size(v) == 0);
}
static bool is_none(json_t *v) {
    return !v || json_is_null(v) || (json_is_string(v) && !strcmp(json_string_value(v), "none"));
}

typedef struct peft_rule {
    const char *key;
    bool (*ok)(json_t *v);
    const char *why;
} peft_rule;

static const peft_rule peft_rules[] = {
    {"use_dora", is_false, "use_dora is true: DoRA also rescales W's columns, which is not LoRA"},
    {"fan_in_fan_out", is_false,
     "fan_in_fan_out is true: the base stores transposed (Conv1D) weights"},
    {"bias", is_none, "bias is not \"none\": the adapter also trains biases"},
    {"lora_bias", is_false, "lora_bias is true: lora_B has a bias"},
    {"modules_to_save", is_empty, "modules_to_save lists fully trained modules"},
    {"rank_pattern", is_empty, "rank_pattern gives some layers another rank"},
    {"alpha_pattern", is_empty, "alpha_pattern gives some layers another alpha"},
    {"layer_replication", is_empty, "layer_replication duplicates layers"},
    {"trainable_token_indices", is_empty, "trainable_token_indices trains embedding rows"},
    {"target_parameters", is_empty, "target_parameters adapts raw parameters"},
    {"use_qalora", is_false, "use_qalora is true: QA-LoRA pools the input in groups"},
    {"alora_invocation_tokens", is_empty,
     "alora_invocation_tokens is set: the adapter only acts after those tokens"},
    {"arrow_config", is_empty, "arrow_config routes between several adapters"},
};

typedef struct peft_config {
    int64_t r;
    double alpha;
    bool rslora;
    json_t *targets; /* borrowed from root: array of module names, or NULL (not checked) */
} peft_config;

static shimmy_status cfg_error(const char *cfg, const char *msg, const char *detail,
                               shimmy_error *err) {
    return core_error(err, SHIMMY_ERR_UNSUPPORTED, cfg, "adapter config '%s': %s%s", cfg, msg,
                      detail);
}

static shimmy_status parse_config(const char *cfg, json_t *root, peft_config *c,
                                  shimmy_error *err) {
    if (!json_is_object(root))
        return core_error(err, SHIMMY_ERR_ADAPTER, cfg, "adapter config '%s' is not a JSON object",
                          cfg);
    json_t *pt = json_object_get(root, "peft_type");
    if (!json_is_string(pt) || strcmp(json_string_value(pt), "LORA") != 0)
        return cfg_error(cfg, "peft_type must be \"LORA\"",
                         json_is_string(pt) ? " (this is another PEFT method)" : " (missing)", err);
    for (size_t i = 0; i < sizeof peft_rules / sizeof peft_rules[0]; i++)
        if (!peft_rules[i].ok(json_object_get(root, peft_rules[i].key)))
            return cfg_error(cfg, peft_rules[i].why, "; shimmy cannot apply this exactly", err);
    json_t *r = json_object_get(root, "r"), *alpha = json_object_get(root, "lora_alpha");
    if (!json_is_integer(r) || json_integer_value(r) <= 0 || json_integer_value(r) > PEFT_MAX_RANK)
        return core_error(err, SHIMMY_ERR_ADAPTER, cfg,
                          "adapter config '%s': r must be a positive integer", cfg);
    if (!json_is_number(alpha) || !isfinite(json_number_value(alpha)) ||
        json_number_value(alpha) == 0.0)
        /* alpha 0 would make PEFT's delta zero but llama.cpp's scale 1: refuse the ambiguity. */
        return core_error(err, SHIMMY_ERR_ADAPTER, cfg,
                          "adapter config '%s': lora_alpha must be a non-zero number", cfg);
    json_t *rs = json_object_get(root, "use_rslora");
    if (rs && !json_is_boolean(rs) && !json_is_null(rs))
        return core_error(err, SHIMMY_ERR_ADAPTER, cfg,
                          "adapter config '%s': use_rslora must be true or false", cfg);
    json_t *tm = json_object_get(root, "target_modules");
    for (size_t i = 0; json_is_array(tm) && i < json_array_size(tm); i++)
        if (!json_is_string(json_array_get(tm, i)))
            return core_error(err, SHIMMY_ERR_ADAPTER, cfg,
                              "adapter config '%s': target_modules must list strings", cfg);
    c->r = json_integer_value(r);
    c->alpha = json_number_value(alpha);
    c->rslora = json_is_true(rs);
    /* A string is a regular expression over full module paths; the weights present in the file
     * decide what is adapted either way, so only the list form is cross-checked. */
    c->targets = json_is_array(tm) ? tm : NULL;
    return SHIMMY_OK;
}

static shimmy_status load_config(const char *cfg, json_t **root, shimmy_error *err) {
    struct stat sb;
    if (stat(cfg, &sb) != 0 || !S_ISREG(sb.st_mode))
        return core_error(err, SHIMMY_ERR_NOT_FOUND, cfg,
                          "no adapter_config.json at '%s': a PEFT adapter needs it (r, lora_alpha)",
                          cfg);
    if ((uint64_t)sb.st_size > PEFT_MAX_CONFIG)
        return core_error(err, SHIMMY_ERR_ADAPTER, cfg,
                          "adapter config '%s' is larger than 1 MB; not an adapter config", cfg);
    json_error_t jerr;
    *root = json_load_file(cfg, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root)
        return core_error(err, SHIMMY_ERR_INVALID_JSON, cfg,
                          "adapter config '%s' is not valid JSON: %s (line %d, column %d)", cfg,
                          jerr.text, jerr.line, jerr.column);
    return SHIMMY_OK;
}

/* ---- tensor names ---- */

/* Parses "N." (a layer index without sign or leading zeros); returns the rest or NULL. */
static const char *parse_layer(const char *s, int *layer) {
    int n = 0, digits = 0;
    while (s[digits] >= '0' && s[digits] <= '9' && digits < 7) n = n * 10 + (s[digits++] - '0');
    if (digits == 0 || digits == 7 || (digits > 1 && s[0] == '0') || s[digits] != '.') return NULL;
    *layer = n;
    return s + digits + 1;
}

/* Matches the module path the way PEFT matches a list entry: equal, or a suffix at a dot. */
static bool targeted(json_t *targets, int layer, const char *hf) {
    if (!targets) return true;
    char key[96];
    snprintf(key, sizeof key, "model.layers.%d.%s", layer, hf);
    size_t kn = strlen(key);
    for (size_t i = 0; i < json_array_size(targets); i++) {
        const char *t = json_string_value(json_array_get(targets, i));
        size_t tn = strlen(t);
        if (!strcmp(key, t) || (tn < kn && key[kn - tn - 1] == '.' && !strcmp(key + kn - tn, t)))
            return true;
    }
    return false;
}

typedef struct peft_ctx {
    lora_adapter *ad;
    const peft_config *cfg;
    const peft_arch *arch;
    const gguf_file *base;
} peft_ctx;

static shimmy_status bad_name(const peft_ctx *c, const char *name, shimmy_error *err) {
    const char *hint = strstr(name, "lora_embedding") ? " (LoRA on embeddings is not supported)"
                       : strstr(name, "lm_head")      ? " (LoRA on the output is not supported)"
                       : strstr(name, ".bias")        ? " (trained biases are not supported)"
                       : strstr(name, "magnitude")    ? " (DoRA is not supported)"
                                                      : "";
    return core_error(err, SHIMMY_ERR_ADAPTER, c->ad->path,
                      "adapter '%s': tensor '%s' is not a LoRA matrix of a supported projection "
                      "(" PEFT_PREFIX "N.{self_attn.{q,k,v,o}_proj|mlp.{gate,up,down}_proj}"
                      ".lora_{A,B}.weight)%s",
                      c->ad->path, name, hint);
}

/* The head count whose rows lora_B of this module reorders, or 0. */
static shimmy_status perm_heads(const peft_ctx *c, const peft_module *m, int64_t *out,
                                shimmy_error *err) {
    *out = 0;
    if (!c->arch->rope_permute || m->heads == PEFT_HEADS_NONE) return SHIMMY_OK;
    char kq[96], kkv[96];
    snprintf(kq, sizeof kq, "%s.attention.head_count", c->arch->name);
    snprintf(kkv, sizeof kkv, "%s.attention.head_count_kv", c->arch->name);
    uint32_t nh = 0, nkv = 0;
    if (!gguf_get_u32(c->base, kq, &nh) || nh == 0)
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(c->base),
                          "base model '%s' has no usable %s (needed to permute adapter '%s')",
                          gguf_path(c->base), kq, c->ad->path);
    if (!gguf_get_u32(c->base, kkv, &nkv)) nkv = nh; /* absent means no grouped-query attention */
    *out = m->heads == PEFT_HEADS_Q ? nh : nkv;
    return SHIMMY_OK;
}

static shimmy_status read_tensor(const peft_ctx *c, const lora_st_tensor *t, lora_halves *out,
                                 shimmy_error *err) {
    const char *rest = NULL;
    int layer = 0;
    if (strncmp(t->name, PEFT_PREFIX, strlen(PEFT_PREFIX)) == 0)
        rest = parse_layer(t->name + strlen(PEFT_PREFIX), &layer);
    const peft_module *m = NULL;
    int which = -1;
    for (size_t i = 0; rest && !m && i < sizeof peft_modules / sizeof peft_modules[0]; i++) {
        size_t n = strlen(peft_modules[i].hf);
        if (strncmp(rest, peft_modules[i].hf, n) != 0) continue;
        for (size_t k = 0; k < sizeof peft_suffixes / sizeof peft_suffixes[0]; k++)
            if (strcmp(rest + n, peft_suffixes[k].suffix) == 0) which = (int)k;
        if (which >= 0) m = &peft_modules[i];
    }
    if (!m) return bad_name(c, t->name, err);
    if (!targeted(c->cfg->targets, layer, m->hf))
        return core_error(err, SHIMMY_ERR_ADAPTER, c->ad->path,
                          "adapter '%s': tensor '%s' adapts '%s', which target_modules in "
                          "adapter_config.json does not list (config and weights disagree)",
                          c->ad->path, t->name, m->hf);
    if (t->n_dims != 2)
        return core_error(err, SHIMMY_ERR_ADAPTER, c->ad->path,
                          "adapter '%s': tensor '%s' has %d dimensions; LoRA matrices have 2",
                          c->ad->path, t->name, t->n_dims);
    lora_half h = {0};
    snprintf(h.weight, sizeof h.weight, "blk.%d.%s.weight", layer, m->gguf);
    h.is_b = peft_suffixes[which].is_b;
    h.src = t->name;
    h.src_len = strlen(t->name);
    h.type = t->type;
    h.n_dims = 2;
    h.ne[0] = t->shape[1]; /* row-major (rows, cols) is GGUF [cols, rows] */
    h.ne[1] = t->shape[0];
    h.ne[2] = h.ne[3] = 1;
    h.data = t->data;
    h.nbytes = t->nbytes;
    h.expect_rank = c->cfg->r;
    shimmy_status rc = h.is_b ? perm_heads(c, m, &h.perm_heads, err) : SHIMMY_OK;
    return rc != SHIMMY_OK ? rc : lora_halves_push(out, &h, c->ad->path, err);
}

static shimmy_status base_arch(lora_adapter *ad, const gguf_file *base, const peft_arch **out,
                               shimmy_error *err) {
    if (!lora_base_arch(base, ad->arch, sizeof ad->arch))
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(base),
                          "base model '%s' has no general.architecture", gguf_path(base));
    for (size_t i = 0; i < sizeof peft_archs / sizeof peft_archs[0]; i++)
        if (strcmp(peft_archs[i].name, ad->arch) == 0) *out = &peft_archs[i];
    if (!*out)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, ad->path,
                          "adapter '%s': PEFT adapters are supported on llama, qwen2 and qwen3 "
                          "bases, not '%s' (convert it with convert_lora_to_gguf.py instead)",
                          ad->path, ad->arch);
    return SHIMMY_OK;
}

shimmy_status lora_peft_read(lora_adapter *ad, const char *config_path, const char *st_path,
                             const gguf_file *base, lora_halves *out, shimmy_error *err) {
    json_t *root = NULL;
    peft_config cfg = {0};
    peft_ctx c = {.ad = ad, .cfg = &cfg, .base = base};
    shimmy_status rc = base_arch(ad, base, &c.arch, err);
    if (rc == SHIMMY_OK) rc = load_config(config_path, &root, err);
    if (rc == SHIMMY_OK) rc = parse_config(config_path, root, &cfg, err);
    if (rc == SHIMMY_OK) rc = lora_st_open(st_path, &ad->st, err);
    if (rc == SHIMMY_OK) {
        ad->alpha = (float)cfg.alpha;
        ad->rslora = cfg.rslora;
    }
    size_t n = rc == SHIMMY_OK ? lora_st_n_tensors(ad->st) : 0;
    for (size_t i = 0; i < n && rc == SHIMMY_OK; i++)
        rc = read_tensor(&c, lora_st_tensor_at(ad->st, i), out, err);
    json_decref(root); /* cfg.targets is not used past this point */
    return rc;
}
