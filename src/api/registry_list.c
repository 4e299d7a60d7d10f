/* The registry's full scan report for tools (what `shimmy list`, `discover` and `probe` print):
 * scans with explicit options, every fact of a listed model, the pairing of adapters by index,
 * several "did you mean" names, the places searched and the files read. */
#include "api.h"

#include "registry/registry.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The registry's progress reports, handed on in the public header's type. */
typedef struct progress_relay {
    void (*fn)(void *user, const shimmy_scan_progress *p);
    void *user;
} progress_relay;

static void relay_progress(void *user, const registry_progress *p) {
    const progress_relay *r = user;
    shimmy_scan_progress q = {
        .folders = p->folders, .found = p->found, .read = p->read, .done = p->done};
    r->fn(r->user, &q);
}

shimmy_status shimmy_scan(const shimmy_scan_options *o, shimmy_model_list **out,
                          shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    shimmy_scan_options none = {0};
    if (!o) o = &none;
    if (o->n_files && !o->files)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "files", "n_files > 0 but files is NULL");
    shimmy_model_list *l = core_calloc(1, sizeof *l);
    if (!l) return core_error(err, SHIMMY_ERR_NOMEM, "scan", "out of memory");
    registry_options ro = {.dirs = o->dirs,
                           .files = o->files,
                           .n_files = o->n_files,
                           .ignore_env = o->ignore_env,
                           .disable = o->no_defaults ? REGISTRY_NO_DEFAULTS : 0};
    progress_relay relay = {o->progress, o->progress_user};
    if (o->progress) {
        ro.progress = relay_progress;
        ro.progress_user = &relay;
    }
    shimmy_status st = registry_scan(&ro, &l->reg, err);
    if (st) {
        free(l);
        return st;
    }
    *out = l;
    return SHIMMY_OK;
}

static const registry_entry *entry_at(const shimmy_model_list *l, size_t i) {
    return l && i < registry_count(l->reg) ? registry_entry_at(l->reg, i) : NULL;
}

bool shimmy_model_list_entry(const shimmy_model_list *l, size_t i, shimmy_model_entry *out) {
    const registry_entry *e = entry_at(l, i);
    if (!e || !out) return false;
    memset(out, 0, sizeof *out);
    out->name = e->name;
    out->path = e->path;
    out->architecture = e->architecture;
    out->size_label = e->size_label;
    out->quant = e->quant;
    out->template_family = e->template;
    out->source = registry_source_name(e->source);
    out->origin = e->origin;
    out->size = e->size;
    out->parameters = e->n_params;
    out->ctx_len = e->context_length;
    out->parts = e->n_parts;
    out->n_adapters = e->n_adapters;
    return true;
}

size_t shimmy_model_list_paired(const shimmy_model_list *l, size_t i, size_t k) {
    const registry_entry *e = entry_at(l, i);
    if (!e || k >= e->n_adapters) return SIZE_MAX;
    for (size_t j = 0; j < registry_adapter_count(l->reg); j++)
        if (registry_adapter_at(l->reg, j) == e->adapters[k]) return j;
    return SIZE_MAX;
}

size_t shimmy_model_list_suggestions(const shimmy_model_list *l, const char *name, const char **out,
                                     size_t max) {
    if (!l || !name || !out) return 0;
    return registry_suggest(l->reg, name, out, max);
}

size_t shimmy_model_list_root_count(const shimmy_model_list *l) {
    return l ? registry_root_count(l->reg) : 0;
}

const char *shimmy_model_list_root(const shimmy_model_list *l, size_t i) {
    return l && i < registry_root_count(l->reg) ? registry_root_at(l->reg, i) : NULL;
}

size_t shimmy_model_list_files_read(const shimmy_model_list *l) {
    return l ? registry_files_read(l->reg) : 0;
}
