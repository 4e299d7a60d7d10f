/* More of a listing for servers: lookups by name or path, "did you mean", the adapters with
 * their pairing, the files left out, and what an adapter file targets. */
#include "api.h"

#include "gguf/gguf.h"
#include "registry/registry.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool shimmy_model_list_find(const shimmy_model_list *l, const char *name, size_t *index) {
    const registry_entry *e = l && name ? registry_find(l->reg, name) : NULL;
    for (size_t i = 0; e && i < registry_count(l->reg); i++) {
        if (registry_entry_at(l->reg, i) != e) continue;
        if (index) *index = i;
        return true;
    }
    return false;
}

double shimmy_model_list_scan_ms(const shimmy_model_list *l) {
    return l ? registry_scan_ms(l->reg) : 0.0;
}

size_t shimmy_model_list_skipped_count(const shimmy_model_list *l) {
    return l ? registry_skipped_count(l->reg) : 0;
}

const char *shimmy_model_list_skipped_path(const shimmy_model_list *l, size_t i) {
    return l && i < registry_skipped_count(l->reg) ? registry_skipped_at(l->reg, i)->path : NULL;
}

const char *shimmy_model_list_skipped_reason(const shimmy_model_list *l, size_t i) {
    return l && i < registry_skipped_count(l->reg) ? registry_skipped_at(l->reg, i)->reason : NULL;
}

size_t shimmy_model_list_adapter_count(const shimmy_model_list *l) {
    return l ? registry_adapter_count(l->reg) : 0;
}

bool shimmy_model_list_adapter(const shimmy_model_list *l, size_t i, shimmy_adapter_info *out) {
    if (!out) return false;
    memset(out, 0, sizeof *out);
    if (!l || i >= registry_adapter_count(l->reg)) return false;
    const registry_adapter *a = registry_adapter_at(l->reg, i);
    out->name = a->name;
    out->path = a->path;
    out->format = a->format == REGISTRY_ADAPTER_PEFT ? "peft" : "gguf";
    out->architecture = a->architecture ? a->architecture : "";
    out->source = registry_source_name(a->source);
    out->alpha = a->alpha;
    out->rank = a->rank;
    out->base = a->base ? a->base->name : NULL;
    out->reason = a->reason ? a->reason : "";
    return true;
}

bool shimmy_model_list_find_adapter(const shimmy_model_list *l, const char *name, size_t *index) {
    const registry_adapter *a = l && name ? registry_find_adapter(l->reg, name) : NULL;
    for (size_t i = 0; a && i < registry_adapter_count(l->reg); i++) {
        if (registry_adapter_at(l->reg, i) != a) continue;
        if (index) *index = i;
        return true;
    }
    return false;
}

/* ---- adapter files ---- */

static bool add_target(shimmy_adapter_desc *d, const char *name, size_t len) {
    char **v = core_realloc(d->targets, (d->n_targets + 1) * sizeof *v);
    if (!v) return false;
    d->targets = v;
    if (!(v[d->n_targets] = core_strndup(name, len))) return false;
    d->n_targets++;
    return true;
}

/* The base weights of a GGUF adapter's lora_a tensors, and the rank from their shape. */
static shimmy_status describe_gguf(const char *path, shimmy_adapter_desc *d, shimmy_error *err) {
    gguf_file *f = NULL;
    shimmy_status st = gguf_open_header(path, &f, err);
    if (st) return st;
    for (size_t i = 0; !st && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        size_t n = (size_t)t->name.len;
        if (n <= 7 || memcmp(t->name.data + n - 7, ".lora_a", 7) != 0) continue;
        if (!add_target(d, t->name.data, n - 7))
            st = core_error(err, SHIMMY_ERR_NOMEM, path, "out of memory");
        if (!d->rank && t->n_dims >= 2) d->rank = (int32_t)t->ne[1];
    }
    gguf_close(f);
    return st;
}

/* A PEFT folder's adapter_config.json: target_modules (a list or one name) and r. */
static shimmy_status describe_peft(const char *path, shimmy_adapter_desc *d, shimmy_error *err) {
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s/adapter_config.json", path) >= sizeof p)
        return core_error(err, SHIMMY_ERR_IO, path, "the path is too long");
    json_error_t je;
    json_t *cfg = json_load_file(p, 0, &je);
    if (!cfg)
        return core_error(err, SHIMMY_ERR_FORMAT, p, "%s: not readable JSON: %s (line %d)", p,
                          je.text, je.line);
    shimmy_status st = SHIMMY_OK;
    const json_t *tm = json_object_get(cfg, "target_modules");
    if (json_is_array(tm)) {
        size_t i;
        const json_t *m;
        json_array_foreach(tm, i, m) {
            if (!st && json_is_string(m) &&
                !add_target(d, json_string_value(m), json_string_length(m)))
                st = core_error(err, SHIMMY_ERR_NOMEM, path, "out of memory");
        }
    } else if (json_is_string(tm) &&
               !add_target(d, json_string_value(tm), json_string_length(tm))) {
        st = core_error(err, SHIMMY_ERR_NOMEM, path, "out of memory");
    }
    const json_t *r = json_object_get(cfg, "r");
    if (json_is_integer(r) && json_integer_value(r) > 0 && json_integer_value(r) < INT32_MAX)
        d->rank = (int32_t)json_integer_value(r);
    json_decref(cfg);
    return st;
}

/* Bytes of a file, or of every regular file directly in a folder. */
static uint64_t path_bytes(const char *path, const struct stat *st) {
    if (!S_ISDIR(st->st_mode)) return (uint64_t)st->st_size;
    uint64_t total = 0;
    DIR *dir = opendir(path);
    struct dirent *de;
    while (dir && (de = readdir(dir)) != NULL) {
        char p[4096];
        struct stat fs;
        if (de->d_name[0] == '.') continue;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", path, de->d_name) >= sizeof p) continue;
        if (stat(p, &fs) == 0 && S_ISREG(fs.st_mode)) total += (uint64_t)fs.st_size;
    }
    if (dir) closedir(dir);
    return total;
}

shimmy_status shimmy_adapter_describe(const char *path, shimmy_adapter_desc *out,
                                      shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return core_error(err, SHIMMY_ERR_INVALID_ARG, "path", "the path is NULL");
    struct stat st;
    if (stat(path, &st) != 0)
        return core_error(err, SHIMMY_ERR_IO, path, "%s: cannot read it (%s)", path,
                          strerror(errno));
    out->bytes = path_bytes(path, &st);
    shimmy_status s =
        S_ISDIR(st.st_mode) ? describe_peft(path, out, err) : describe_gguf(path, out, err);
    if (s) shimmy_adapter_desc_free(out);
    return s;
}

void shimmy_adapter_desc_free(shimmy_adapter_desc *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_targets; i++) free(d->targets[i]);
    free(d->targets);
    memset(d, 0, sizeof *d);
}
