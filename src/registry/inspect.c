/*
 * Inspecting one candidate: stat it (following symlinks), read the GGUF header (never tensor
 * data; the magic is looked at only when that fails, to tell "not GGUF" from "damaged") or a
 * PEFT adapter_config.json, and classify: model, adapter, later part of a split model, or
 * skipped with a reason. Runs on pool threads: touches only its candidate.
 */
#include "internal.h"

#include "chat/chat.h"
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEFT_CONFIG_MAX (1u << 20)

void reg_cand_free(reg_cand *c) {
    if (!c) return;
    free(c->path);
    free(c->hint);
    free(c->template_text);
    free(c->origin);
    free(c->reason);
    free(c->arch);
    free(c->quant);
    free(c->size_label);
    free(c->display);
    free(c->family);
    free(c->base_hint);
    free(c->name);
    free(c->pair_reason);
    free(c);
}

static void skip(reg_cand *c, char *reason) {
    c->kind = REG_KIND_SKIP;
    free(c->reason);
    c->reason = reason ? reason : reg_strdup("skipped");
}

bool reg_split_parse(const char *path, int *no, int *count, size_t *prefix_len) {
    /* "-00001-of-00003.gguf" is 20 bytes */
    size_t n = strlen(path);
    if (n < 20) return false;
    const char *s = path + n - 20;
    int a = 0, b = 0;
    if (s[0] != '-' || strncmp(s + 6, "-of-", 4) != 0 || !reg_ends_with_ci(s, ".gguf"))
        return false;
    for (int i = 1; i <= 5; i++) {
        if (s[i] < '0' || s[i] > '9' || s[i + 9] < '0' || s[i + 9] > '9') return false;
        a = a * 10 + (s[i] - '0');
        b = b * 10 + (s[i + 9] - '0');
    }
    if (a < 1 || b < 1 || a > b) return false;
    *no = a;
    *count = b;
    *prefix_len = n - 20;
    return true;
}

/* ---- what the header says ---- */

/* general.file_type values (llama.cpp's llama_ftype) and their customary names. */
static const struct {
    uint32_t id;
    const char *name;
} file_types[] = {
    {0, "F32"},      {1, "F16"},      {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
    {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
    {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
    {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"},
    {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"}, {26, "IQ3_S"},  {27, "IQ3_M"},
    {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"}, {31, "IQ1_M"},  {32, "BF16"},
    {36, "TQ1_0"},   {37, "TQ2_0"},
};

/* The file type, or else the type holding most weights among matrices (n_dims >= 2). */
static char *quant_of(const gguf_file *f) {
    uint32_t ft;
    if (gguf_get_u32(f, "general.file_type", &ft))
        for (size_t i = 0; i < sizeof file_types / sizeof file_types[0]; i++)
            if (file_types[i].id == ft) return reg_strdup(file_types[i].name);
    uint64_t per_type[GGUF_T_COUNT] = {0};
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->n_dims >= 2 && t->type < GGUF_T_COUNT) per_type[t->type] += t->nbytes;
    }
    uint32_t best = 0;
    for (uint32_t t = 1; t < GGUF_T_COUNT; t++)
        if (per_type[t] > per_type[best]) best = t;
    return reg_strdup(per_type[best] ? gguf_type_name(best) : "unknown");
}

static uint64_t params_of(const gguf_file *f) {
    uint64_t total = 0;
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++)
            if (t->ne[d] < 0 || !core_mul_u64(n, (uint64_t)t->ne[d], &n)) return 0;
        if (!core_add_u64(total, n, &total)) return 0;
    }
    return total;
}

char *reg_size_label(uint64_t n) {
    static const char units[] = {'K', 'M', 'B', 'T'};
    if (n < 1000) return reg_printf("%llu", (unsigned long long)n);
    double v = (double)n;
    int u = -1;
    /* 999.96M would print as "1000.0M": such values move up a unit too */
    while (v >= 999.95 && u < 3) {
        v /= 1000.0;
        u++;
    }
    char *s = reg_printf("%.1f%c", v, units[u]);
    /* "30.0M" reads better as "30M" */
    char *dot = s ? strstr(s, ".0") : NULL;
    if (dot && dot[2] >= 'A') memmove(dot, dot + 2, strlen(dot + 2) + 1);
    return s;
}

static char *str_key(const gguf_file *f, const char *key) {
    gguf_str s;
    return gguf_get_str(f, key, &s) ? reg_strndup(s.data, (size_t)s.len) : NULL;
}

/* The chat module owns the families (the same names the server renders with); it reads a
 * NUL-terminated text, so the template is copied out of the mapping. */
const char *reg_template_family(const char *text, size_t len) {
    if (!text || len == 0) return "none";
    char *copy = reg_strndup(text, len);
    const char *family = copy ? chat_family_of(copy) : "unknown";
    free(copy);
    return family;
}

static void inspect_gguf_meta(reg_cand *c, const gguf_file *f) {
    char *type = str_key(f, "general.type");
    c->arch = str_key(f, "general.architecture");
    if (!c->arch) c->arch = reg_strdup("");
    const char *base = strrchr(c->path, '/');
    base = base ? base + 1 : c->path;
    bool adapter = type && strcmp(type, "adapter") == 0;
    bool projector = (type && strcmp(type, "mmproj") == 0) ||
                     (c->arch && strcmp(c->arch, "clip") == 0) || strstr(base, "mmproj");
    free(type);
    if (c->split_no > 1) {
        c->kind = REG_KIND_PART;
        c->n_params = params_of(f);
        return;
    }
    if (projector) {
        skip(c, reg_strdup("multimodal projector (used with a model, not on its own)"));
        return;
    }
    if (adapter) {
        c->kind = REG_KIND_ADAPTER;
        float alpha = 0;
        if (gguf_get_f32(f, "adapter.lora.alpha", &alpha)) c->alpha = alpha;
        c->base_hint = str_key(f, "general.base_model.0.name");
        c->display = str_key(f, "general.name");
        return;
    }
    if (gguf_n_tensors(f) == 0 && c->split_count <= 1) {
        skip(c, reg_strdup("vocab-only file (no tensors): a tokenizer, not a model"));
        return;
    }
    c->kind = REG_KIND_MODEL;
    c->n_params = params_of(f);
    c->quant = quant_of(f);
    c->display = str_key(f, "general.name");
    c->size_label = str_key(f, "general.size_label");
    char key[96];
    snprintf(key, sizeof key, "%s.context_length", c->arch);
    if (!gguf_get_u32(f, key, &c->ctx)) c->ctx = 0;
    gguf_str tmpl;
    if (gguf_get_str(f, "tokenizer.chat_template", &tmpl) && tmpl.len)
        c->family = reg_strdup(reg_template_family(tmpl.data, (size_t)tmpl.len));
    else if (c->template_text)
        c->family = reg_strdup(reg_template_family(c->template_text, strlen(c->template_text)));
    else
        c->family = reg_strdup("none");
}

/* The first bytes decide between "not a GGUF file" and "a damaged one" once opening failed. */
static bool has_gguf_magic(const char *path) {
    unsigned char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t got = pread(fd, magic, 4, 0);
    close(fd);
    return got == 4 && memcmp(magic, "GGUF", 4) == 0;
}

static void inspect_gguf(reg_cand *c) {
    struct stat st;
    /* stat follows symlinks: a Hugging Face snapshot link is identified by its blob */
    if (stat(c->path, &st) != 0) {
        skip(c, reg_printf("cannot open: %s", strerror(errno)));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        skip(c, reg_strdup("not a regular file"));
        return;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    c->size = (uint64_t)st.st_size;
    gguf_file *f = NULL;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (gguf_open_header(c->path, &f, &err) == SHIMMY_OK) {
        inspect_gguf_meta(c, f);
        gguf_close(f);
        return;
    }
    if (!has_gguf_magic(c->path)) {
        skip(c, reg_strdup("not a GGUF file (it does not start with \"GGUF\")"));
        return;
    }
    /* the reader's messages usually start with the path already */
    size_t plen = strlen(c->path);
    const char *why = err.message;
    if (strncmp(why, c->path, plen) == 0 && strncmp(why + plen, ": ", 2) == 0) why += plen + 2;
    skip(c, reg_printf("corrupt GGUF: %s", why));
    core_log(CORE_LOG_WARN, "registry: skipping %s: %s", c->path, why);
}

/* A PEFT folder: adapter_config.json (LORA) next to adapter_model.safetensors. */
static void inspect_peft(reg_cand *c) {
    struct stat st;
    if (stat(c->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        skip(c, reg_printf("PEFT adapter folder unreadable: %s", strerror(errno)));
        return;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    char *cfg = reg_printf("%s/adapter_config.json", c->path);
    char *weights = reg_printf("%s/adapter_model.safetensors", c->path);
    struct stat ws, cs;
    json_t *doc = NULL;
    json_error_t jerr;
    jerr.text[0] = '\0';
    if (!cfg || !weights) {
        skip(c, NULL);
    } else if (stat(weights, &ws) != 0) {
        skip(c, reg_strdup("PEFT folder without adapter_model.safetensors"));
    } else if (stat(cfg, &cs) != 0 || !S_ISREG(cs.st_mode) || cs.st_size > PEFT_CONFIG_MAX) {
        skip(c, reg_strdup("adapter_config.json unreadable or larger than 1 MiB"));
    } else if (!(doc = json_load_file(cfg, 0, &jerr)) || !json_is_object(doc)) {
        skip(c, reg_printf("adapter_config.json is not a JSON object: %s", jerr.text));
    } else {
        const char *type = json_string_value(json_object_get(doc, "peft_type"));
        if (type && strcmp(type, "LORA") != 0) {
            skip(c, reg_printf("PEFT type %s is not supported (only LORA)", type));
        } else {
            c->kind = REG_KIND_ADAPTER;
            c->size = (uint64_t)ws.st_size;
            c->arch = reg_strdup("");
            c->alpha = (float)json_number_value(json_object_get(doc, "lora_alpha"));
            c->rank = (int)json_integer_value(json_object_get(doc, "r"));
            c->base_hint =
                reg_strdup(json_string_value(json_object_get(doc, "base_model_name_or_path")));
        }
    }
    json_decref(doc);
    free(cfg);
    free(weights);
}

void reg_inspect(reg_cand *c) {
    if (c->kind == REG_KIND_SKIP) return; /* decided by the walker (bad manifest) */
    if (c->is_peft) {
        inspect_peft(c);
        return;
    }
    if (!reg_split_parse(c->path, &c->split_no, &c->split_count, &c->split_prefix_len))
        c->split_no = c->split_count = 0;
    inspect_gguf(c);
}
