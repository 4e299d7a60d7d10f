/* Model specs: a builder whose setters only record, and one validation (shared with the
 * declarative shimmy_model_config) that names every bad field at once. */
#include "api.h"

#include "chat/chat.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CTX     (1 << 20)
#define MAX_THREADS 512

static char *dup_or_null(const char *s, bool *nomem) {
    if (!s) return NULL;
    char *d = core_strdup(s);
    if (!d) *nomem = true;
    return d;
}

static void set_str(api_fields *f, char **slot, const char *s) {
    free(*slot);
    *slot = dup_or_null(s, &f->nomem);
}

void api_fields_free(api_fields *f) {
    free(f->name);
    free(f->base_path);
    free(f->template_name);
    free(f->device);
    for (size_t i = 0; i < f->n_lora; i++) free(f->lora[i].path);
    for (size_t i = 0; i < SHIMMY_MAX_STOP; i++) free(f->stop[i]);
    free(f->grammar);
    free(f->json_schema);
    free(f->grammar_after);
    memset(f, 0, sizeof *f);
}

void api_fields_set_gen(api_fields *f, const shimmy_gen_options *o) {
    for (size_t i = 0; i < SHIMMY_MAX_STOP; i++) {
        free(f->stop[i]);
        f->stop[i] = NULL;
    }
    f->gen = *o;
    size_t n = o->n_stop < SHIMMY_MAX_STOP ? o->n_stop : SHIMMY_MAX_STOP;
    for (size_t i = 0; o->stop && i < n; i++) f->stop[i] = dup_or_null(o->stop[i], &f->nomem);
    /* n_stop keeps the caller's count so validation sees a count above the limit */
    f->gen.stop = o->n_stop ? (const char *const *)f->stop : NULL;
    /* the structured-output texts are borrowed from the caller: the spec keeps its own copies */
    char *g = dup_or_null(o->grammar, &f->nomem), *js = dup_or_null(o->json_schema, &f->nomem),
         *ga = dup_or_null(o->grammar_after, &f->nomem);
    free(f->grammar); /* after the copies: o may be f's own gen */
    free(f->json_schema);
    free(f->grammar_after);
    f->grammar = g;
    f->json_schema = js;
    f->grammar_after = ga;
    f->gen.grammar = f->grammar;
    f->gen.json_schema = f->json_schema;
    f->gen.grammar_after = f->grammar_after;
}

bool api_fields_copy(api_fields *dst, const api_fields *src) {
    memset(dst, 0, sizeof *dst);
    dst->name = dup_or_null(src->name, &dst->nomem);
    dst->base_path = dup_or_null(src->base_path, &dst->nomem);
    dst->template_name = dup_or_null(src->template_name, &dst->nomem);
    dst->device = dup_or_null(src->device, &dst->nomem);
    for (size_t i = 0; i < src->n_lora; i++) {
        dst->lora[i].path = dup_or_null(src->lora[i].path, &dst->nomem);
        dst->lora[i].scale = src->lora[i].scale;
    }
    dst->n_lora = src->n_lora;
    dst->too_many_lora = src->too_many_lora;
    dst->ctx_len = src->ctx_len;
    dst->threads = src->threads;
    dst->gpu_layers = src->gpu_layers;
    api_fields_set_gen(dst, &src->gen);
    if (dst->nomem) {
        api_fields_free(dst);
        return false;
    }
    return true;
}

/* ---- builder ---- */

shimmy_spec_builder *shimmy_spec_new(void) {
    return core_calloc(1, sizeof(shimmy_spec_builder));
}

void shimmy_spec_builder_free(shimmy_spec_builder *b) {
    if (!b) return;
    api_fields_free(&b->f);
    free(b);
}

void shimmy_spec_set_name(shimmy_spec_builder *b, const char *name) {
    if (b) set_str(&b->f, &b->f.name, name);
}
void shimmy_spec_set_base_path(shimmy_spec_builder *b, const char *path) {
    if (b) set_str(&b->f, &b->f.base_path, path);
}
void shimmy_spec_set_template(shimmy_spec_builder *b, const char *family) {
    if (b) set_str(&b->f, &b->f.template_name, family);
}
void shimmy_spec_set_device(shimmy_spec_builder *b, const char *device) {
    if (b) set_str(&b->f, &b->f.device, device);
}
void shimmy_spec_set_gpu_layers(shimmy_spec_builder *b, int32_t gpu_layers) {
    if (b) b->f.gpu_layers = gpu_layers;
}
void shimmy_spec_set_ctx_len(shimmy_spec_builder *b, int32_t ctx_len) {
    if (b) b->f.ctx_len = ctx_len;
}
void shimmy_spec_set_threads(shimmy_spec_builder *b, int32_t threads) {
    if (b) b->f.threads = threads;
}
void shimmy_spec_set_generation(shimmy_spec_builder *b, const shimmy_gen_options *o) {
    if (b && o) api_fields_set_gen(&b->f, o);
}
void shimmy_spec_add_lora(shimmy_spec_builder *b, const char *path, float scale) {
    if (!b) return;
    if (b->f.n_lora == API_MAX_LORA) {
        b->f.too_many_lora = true;
        return;
    }
    api_lora *l = &b->f.lora[b->f.n_lora++];
    l->path = dup_or_null(path, &b->f.nomem);
    l->scale = scale;
}

/* ---- validation ---- */

static void check_name(const api_fields *f, api_problems *p) {
    if (!f->name || !*f->name) {
        api_problem(p, SHIMMY_ERR_INVALID_ARG, "name", "a model name is required");
        return;
    }
    size_t n = strlen(f->name);
    if (n > 255) api_problem(p, SHIMMY_ERR_INVALID_ARG, "name", "%zu bytes; at most 255", n);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)f->name[i] < 0x20 || f->name[i] == 0x7f) {
            api_problem(p, SHIMMY_ERR_INVALID_ARG, "name",
                        "contains a control character at byte %zu", i);
            break;
        }
    }
}

/* Reads the magic without blocking: a FIFO or device never reaches open() (regular files
 * only), so validation cannot hang. */
static void check_gguf_file(const char *field, const char *path, api_problems *p) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        api_problem(p, errno == ENOENT ? SHIMMY_ERR_NOT_FOUND : SHIMMY_ERR_IO, field,
                    "'%s' cannot be opened: %s", path, strerror(errno));
        return;
    }
    if (!S_ISREG(sb.st_mode)) {
        api_problem(p, SHIMMY_ERR_INVALID_ARG, field, "'%s' is not a regular file", path);
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    char magic[4] = {0};
    ssize_t got = fd >= 0 ? read(fd, magic, sizeof magic) : -1;
    if (fd >= 0) close(fd);
    if (got < 0)
        api_problem(p, SHIMMY_ERR_IO, field, "'%s' cannot be read: %s", path, strerror(errno));
    else if (got != 4 || memcmp(magic, "GGUF", 4) != 0)
        api_problem(p, SHIMMY_ERR_FORMAT, field, "'%s' is not a GGUF file (no GGUF magic)", path);
}

static void check_lora(const api_fields *f, api_problems *p) {
    char field[32];
    if (f->too_many_lora)
        api_problem(p, SHIMMY_ERR_INVALID_ARG, "lora", "more than %d adapters", API_MAX_LORA);
    for (size_t i = 0; i < f->n_lora; i++) {
        snprintf(field, sizeof field, "lora[%zu]", i);
        const api_lora *l = &f->lora[i];
        struct stat sb;
        if (!l->path || !*l->path)
            api_problem(p, SHIMMY_ERR_INVALID_ARG, field, "the adapter path is empty");
        else if (stat(l->path, &sb) != 0)
            api_problem(p, errno == ENOENT ? SHIMMY_ERR_NOT_FOUND : SHIMMY_ERR_IO, field,
                        "'%s' cannot be opened: %s", l->path, strerror(errno));
        else if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
            api_problem(p, SHIMMY_ERR_INVALID_ARG, field,
                        "'%s' is neither a file nor a PEFT folder", l->path);
        if (!(l->scale >= -100.0f && l->scale <= 100.0f))
            api_problem(p, SHIMMY_ERR_INVALID_ARG, field, "scale %g is outside [-100, 100]",
                        (double)l->scale);
    }
}

static void check_template(const api_fields *f, api_problems *p) {
    if (!f->template_name || chat_builtin_get(f->template_name)) return;
    char names[256] = "";
    for (size_t i = 0; i < chat_builtin_count(); i++) {
        size_t n = strlen(names);
        snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", chat_builtin_name(i));
    }
    api_problem(p, SHIMMY_ERR_INVALID_ARG, "template",
                "'%s' is not a built-in family (%s; NULL = the model's own)", f->template_name,
                names);
}

static shimmy_status validate(const api_fields *f, shimmy_error *err) {
    if (f->nomem) return core_error(err, SHIMMY_ERR_NOMEM, "spec", "out of memory");
    api_problems p = {0};
    check_name(f, &p);
    if (!f->base_path || !*f->base_path)
        api_problem(&p, SHIMMY_ERR_INVALID_ARG, "base_path", "a base .gguf path is required");
    else
        check_gguf_file("base_path", f->base_path, &p);
    check_lora(f, &p);
    check_template(f, &p);
    if (f->ctx_len < 0 || f->ctx_len > MAX_CTX)
        api_problem(&p, SHIMMY_ERR_INVALID_ARG, "ctx_len",
                    "%d is outside [0, %d] (0 = the model's default)", (int)f->ctx_len, MAX_CTX);
    if (f->threads < 0 || f->threads > MAX_THREADS)
        api_problem(&p, SHIMMY_ERR_INVALID_ARG, "threads",
                    "%d is outside [0, %d] (0 = physical cores)", (int)f->threads, MAX_THREADS);
    api_check_device(f->device, f->gpu_layers, &p);
    api_gen_options_check(&f->gen, "generation.", &p);
    if (f->gen.max_tokens > 0 && f->ctx_len > 0 && f->gen.max_tokens >= f->ctx_len)
        api_problem(&p, SHIMMY_ERR_INVALID_ARG, "generation.max_tokens",
                    "%d leaves no room for a prompt in ctx_len %d", (int)f->gen.max_tokens,
                    (int)f->ctx_len);
    return api_problems_report(&p, err);
}

static shimmy_status freeze(const api_fields *f, shimmy_spec **out, shimmy_error *err) {
    *out = NULL;
    shimmy_status st = validate(f, err);
    if (st) return st;
    shimmy_spec *s = core_calloc(1, sizeof *s);
    if (!s || !api_fields_copy(&s->f, f)) {
        free(s);
        return core_error(err, SHIMMY_ERR_NOMEM, "spec", "out of memory");
    }
    *out = s;
    return SHIMMY_OK;
}

shimmy_status shimmy_spec_build(const shimmy_spec_builder *b, shimmy_spec **out,
                                shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!b)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "builder",
                          "the builder is NULL (shimmy_spec_new ran out of memory?)");
    return freeze(&b->f, out, err);
}

shimmy_status shimmy_spec_from_config(const shimmy_model_config *c, shimmy_spec **out,
                                      shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!c) return core_error(err, SHIMMY_ERR_INVALID_ARG, "config", "the config is NULL");
    api_fields f = {0};
    f.name = dup_or_null(c->name, &f.nomem);
    f.base_path = dup_or_null(c->base_path, &f.nomem);
    f.template_name = dup_or_null(c->template, &f.nomem);
    f.device = dup_or_null(c->device, &f.nomem);
    if (c->lora_path) {
        f.lora[0].path = dup_or_null(c->lora_path, &f.nomem);
        f.lora[0].scale = c->lora_scale == 0.0f ? 1.0f : c->lora_scale;
        f.n_lora = 1;
    }
    f.ctx_len = c->ctx_len;
    f.threads = c->threads;
    f.gpu_layers = c->gpu_layers;
    api_fields_set_gen(&f, &c->generation);
    shimmy_status st = freeze(&f, out, err);
    api_fields_free(&f);
    return st;
}

void shimmy_spec_free(shimmy_spec *s) {
    if (!s) return;
    api_fields_free(&s->f);
    free(s);
}

const char *shimmy_spec_name(const shimmy_spec *s) {
    return s ? s->f.name : NULL;
}
const char *shimmy_spec_base_path(const shimmy_spec *s) {
    return s ? s->f.base_path : NULL;
}
size_t shimmy_spec_lora_count(const shimmy_spec *s) {
    return s ? s->f.n_lora : 0;
}
const char *shimmy_spec_lora_path(const shimmy_spec *s, size_t i) {
    return s && i < s->f.n_lora ? s->f.lora[i].path : NULL;
}
int32_t shimmy_spec_ctx_len(const shimmy_spec *s) {
    return s ? s->f.ctx_len : 0;
}
