/* engine_model: what is loaded once per file and shared by every session. */
#include "constrain.h"
#include "engine.h"
#include "gpu/gpu.h"
#include "lora/lora.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct engine_model {
    gguf_file *file;
    model *weights;
    tok_vocab *vocab;
    char *chat_template;
    char bos_text[128];
    char eos_text[128];
    engine_model_info info;
    gpu_model *gpu;        /* the weights' copy on a GPU, or NULL: the CPU runs the model */
    grammar_vocab *gvocab; /* built on first use by a grammar (atomic pointer) */
};

/* Guards building a model's grammar trie; held only while one is built (rare). */
static pthread_mutex_t gvocab_lock = PTHREAD_MUTEX_INITIALIZER;

shimmy_status engine_model_grammar_vocab(const engine_model *m, const grammar_vocab **out,
                                         shimmy_error *err) {
    engine_model *mm = (engine_model *)m; /* the lazily built trie is a cache, not state */
    grammar_vocab *gv = __atomic_load_n(&mm->gvocab, __ATOMIC_ACQUIRE);
    if (!gv) {
        if (!m->vocab)
            return core_error(err, SHIMMY_ERR_INVALID_ARG, "grammar",
                              "the model was opened without a tokenizer");
        pthread_mutex_lock(&gvocab_lock);
        gv = mm->gvocab;
        shimmy_status st = gv ? SHIMMY_OK : grammar_vocab_new(m->vocab, &gv, err);
        if (!st) __atomic_store_n(&mm->gvocab, gv, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&gvocab_lock);
        if (st) return st;
    }
    *out = gv;
    return SHIMMY_OK;
}

/* llama.cpp's general.file_type values (llama_ftype) and their names. */
static const struct {
    uint32_t ftype;
    const char *name;
} ftype_names[] = {
    {0, "F32"},      {1, "F16"},      {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
    {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
    {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
    {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"},
    {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"}, {26, "IQ3_S"},  {27, "IQ3_M"},
    {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"}, {31, "IQ1_M"},  {32, "BF16"},
};

static void fill_info(engine_model *m) {
    engine_model_info *in = &m->info;
    const model *w = m->weights;
    snprintf(in->architecture, sizeof in->architecture, "%s", w->arch->name);
    gguf_str s;
    if (gguf_get_str(m->file, "general.name", &s)) {
        gguf_str_copy(s, in->name, sizeof in->name);
    } else {
        const char *path = gguf_path(m->file), *slash = strrchr(path, '/');
        snprintf(in->name, sizeof in->name, "%s", slash ? slash + 1 : path);
        char *dot = strrchr(in->name, '.');
        if (dot && strcmp(dot, ".gguf") == 0) *dot = '\0';
    }
    const char *ft = gguf_type_name(w->file_type);
    uint32_t ftype;
    if (gguf_get_u32(m->file, "general.file_type", &ftype))
        for (size_t i = 0; i < sizeof ftype_names / sizeof ftype_names[0]; i++)
            if (ftype_names[i].ftype == ftype) ft = ftype_names[i].name;
    snprintf(in->file_type, sizeof in->file_type, "%s", ft);
    in->n_params = w->n_params;
    in->n_ctx_train = w->hp.n_ctx_train;
    in->n_embd = w->hp.n_embd;
    in->n_layer = w->hp.n_layer;
    in->n_head = w->hp.n_head;
    in->n_head_kv = w->hp.n_head_kv;
    in->n_vocab = w->hp.n_vocab;
    in->file_bytes = gguf_file_size(m->file);
    in->weight_bytes = w->weight_bytes;
}

/* Puts the model on the device p asks for (engine_model_params' rules) and fills the info's
 * device fields. */
static shimmy_status open_device(engine_model *m, const engine_model_params *p, shimmy_error *err) {
    engine_model_info *in = &m->info;
    snprintf(in->device, sizeof in->device, "cpu");
    const char *dev = p && p->device && *p->device ? p->device : "auto";
    const int32_t layers = p ? p->n_gpu_layers : 0;
    if (layers < -1)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_gpu_layers",
                          "n_gpu_layers is %d: use 0 or -1 for all layers, N > 0 for the first N",
                          layers);
    bool wants = false;
    shimmy_status st = gpu_parse_device(dev, &wants, err);
    if (st || !wants) return st;
    const bool lenient = strcmp(dev, "auto") == 0;
    if (lenient && !gpu_built()) return SHIMMY_OK; /* the CPU, as always without Vulkan */
    const model *w = m->weights;
    if (gpu_built() && !w->arch->device) {
        if (lenient) {
            core_log(CORE_LOG_DEBUG, "device auto: the %s architecture runs on the CPU only",
                     w->arch->name);
            return SHIMMY_OK;
        }
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, "device",
                          "device %s: the %s architecture runs on the CPU only (use --device cpu "
                          "or auto)",
                          dev, w->arch->name);
    }
    const gpu_model_params gp = {.device = dev, .n_gpu_layers = layers > 0 ? layers : -1};
    shimmy_error gerr;
    memset(&gerr, 0, sizeof gerr);
    st = gpu_model_open(w, &gp, &m->gpu, lenient ? &gerr : err);
    if (st && lenient) {
        core_log(CORE_LOG_WARN, "device auto: %s; running on the CPU", gerr.message);
        m->gpu = NULL;
        return SHIMMY_OK;
    }
    if (st || !m->gpu) return st;
    gpu_model_info gi;
    gpu_model_get_info(m->gpu, &gi);
    snprintf(in->device, sizeof in->device, "%s", gi.device.name);
    in->n_gpu_layers = gi.n_gpu_layers;
    in->device_bytes = gi.weight_bytes;
    return SHIMMY_OK;
}

static void describe_kernels(engine_model *m) {
    const model *w = m->weights;
    engine_model_info *in = &m->info;
    int n = snprintf(in->cpu_kernels, sizeof in->cpu_kernels, "%s", quant_isa());
    if (w->n_packed > 0 && n > 0 && (size_t)n < sizeof in->cpu_kernels)
        n += snprintf(in->cpu_kernels + n, sizeof in->cpu_kernels - (size_t)n,
                      "; repacked %s: %d matrices, %.1f MiB", w->pack_layouts, (int)w->n_packed,
                      (double)w->pack_bytes / (1 << 20));
    if (w->n_xpacked > 0 && n > 0 && (size_t)n < sizeof in->cpu_kernels) {
        if (w->n_packed > 0)
            snprintf(in->cpu_kernels + n, sizeof in->cpu_kernels - (size_t)n,
                     "; %d expert tensors packed per expert on first use", (int)w->n_xpacked);
        else
            snprintf(in->cpu_kernels + n, sizeof in->cpu_kernels - (size_t)n,
                     "; repacked %s: %d expert tensors, per expert on first use", w->pack_layouts,
                     (int)w->n_xpacked);
    }
}

static bool device_holds(void *ud, const void *data) {
    const model_device *d = gpu_model_device(ud);
    return d && d->ops->holds(d->impl, data);
}

static void special_text(const tok_vocab *v, int32_t id, char *buf, size_t cap) {
    buf[0] = '\0';
    if (!v || id < 0) return;
    size_t n = tok_piece(v, id, true, buf, cap - 1);
    buf[n < cap - 1 ? n : 0] = '\0';
}

shimmy_status engine_model_open(const char *path, const engine_model_params *p, engine_model **out,
                                shimmy_error *err) {
    *out = NULL;
    engine_model *m = core_calloc(1, sizeof *m);
    if (!m) return core_error(err, SHIMMY_ERR_NOMEM, path, "cannot allocate a model");
    shimmy_status st = gguf_open(path, &m->file, err);
    if (!st) st = model_load(m->file, &m->weights, err);
    if (!st && !(p && p->no_tokenizer)) {
        st = tok_vocab_load(m->file, &m->vocab, err);
        if (!st && tok_n_vocab(m->vocab) > m->weights->hp.n_vocab)
            st = core_error(err, SHIMMY_ERR_FORMAT, path,
                            "the vocabulary has %d tokens but token_embd.weight only %d rows",
                            tok_n_vocab(m->vocab), m->weights->hp.n_vocab);
    }
    if (st) {
        engine_model_close(m);
        return st;
    }
    gguf_str tmpl;
    if (gguf_get_str(m->file, "tokenizer.chat_template", &tmpl)) {
        m->chat_template = core_malloc(tmpl.len + 1);
        if (!m->chat_template) {
            engine_model_close(m);
            return core_error(err, SHIMMY_ERR_NOMEM, path, "cannot copy the chat template");
        }
        memcpy(m->chat_template, tmpl.data, tmpl.len);
        m->chat_template[tmpl.len] = '\0';
    }
    if (m->vocab) {
        special_text(m->vocab, tok_bos(m->vocab), m->bos_text, sizeof m->bos_text);
        special_text(m->vocab, tok_eos(m->vocab), m->eos_text, sizeof m->eos_text);
    }
    fill_info(m);
    st = open_device(m, p, err);
    /* after the device took its copies: what stays on the CPU gets the CPU's layouts */
    if (!st) st = model_repack(m->weights, m->gpu ? device_holds : NULL, m->gpu, 0, err);
    if (!st) describe_kernels(m);
    if (st) {
        engine_model_close(m);
        return st;
    }
    *out = m;
    return SHIMMY_OK;
}

void engine_model_close(engine_model *m) {
    if (!m) return;
    grammar_vocab_free(m->gvocab);
    tok_vocab_free(m->vocab);
    gpu_model_close(m->gpu); /* before the weights it borrows */
    model_free(m->weights);
    gguf_close(m->file);
    free(m->chat_template);
    free(m);
}

const engine_model_info *engine_model_get_info(const engine_model *m) {
    return &m->info;
}
const tok_vocab *engine_model_vocab(const engine_model *m) {
    return m->vocab;
}
const char *engine_model_chat_template(const engine_model *m) {
    return m->chat_template;
}
const char *engine_model_bos_text(const engine_model *m) {
    return m->bos_text;
}
const char *engine_model_eos_text(const engine_model *m) {
    return m->eos_text;
}
const model *engine_model_weights(const engine_model *m) {
    return m->weights;
}
const gguf_file *engine_model_file(const engine_model *m) {
    return m->file;
}
const model_device *engine_model_device(const engine_model *m) {
    return m->gpu ? gpu_model_device(m->gpu) : NULL;
}
uint64_t engine_model_device_bytes_now(const engine_model *m) {
    return m->gpu ? m->info.device_bytes + gpu_model_ctx_bytes(m->gpu) : 0;
}

shimmy_status engine_lora_open(const engine_model *m, const engine_adapter_spec *specs, size_t n,
                               struct lora_set **out, shimmy_error *err) {
    *out = NULL;
    lora_set *set = NULL;
    shimmy_status st = lora_set_new(&set, err);
    for (size_t i = 0; !st && i < n; i++) {
        lora_adapter *a = NULL;
        st = lora_adapter_open(specs[i].path, m->file, &a, err);
        if (!st) st = lora_set_add(set, a, specs[i].scale, err);
        lora_adapter_unref(a); /* the set holds its own reference */
    }
    if (st) {
        lora_set_free(set);
        return st;
    }
    *out = set;
    return SHIMMY_OK;
}
