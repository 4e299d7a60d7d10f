/* Discovery for library users: a registry scan behind an opaque list. */
#include "api.h"

#include "registry/registry.h"

#include <stdlib.h>

shimmy_status shimmy_discover(const char *paths, shimmy_model_list **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    shimmy_model_list *l = core_calloc(1, sizeof *l);
    if (!l) return core_error(err, SHIMMY_ERR_NOMEM, "discover", "out of memory");
    /* Explicit paths mean "look here", not "here as well": the defaults are turned off. */
    registry_options ro = {.dirs = paths, .disable = paths ? REGISTRY_NO_DEFAULTS : 0};
    shimmy_status st = registry_scan(&ro, &l->reg, err);
    if (st) {
        free(l);
        return st;
    }
    *out = l;
    return SHIMMY_OK;
}

void shimmy_model_list_free(shimmy_model_list *l) {
    if (!l) return;
    registry_free(l->reg);
    free(l);
}

size_t shimmy_model_list_count(const shimmy_model_list *l) {
    return l ? registry_count(l->reg) : 0;
}

static const registry_entry *at(const shimmy_model_list *l, size_t i) {
    return l && i < registry_count(l->reg) ? registry_entry_at(l->reg, i) : NULL;
}

const char *shimmy_model_list_name(const shimmy_model_list *l, size_t i) {
    const registry_entry *e = at(l, i);
    return e ? e->name : NULL;
}
const char *shimmy_model_list_path(const shimmy_model_list *l, size_t i) {
    const registry_entry *e = at(l, i);
    return e ? e->path : NULL;
}
const char *shimmy_model_list_architecture(const shimmy_model_list *l, size_t i) {
    const registry_entry *e = at(l, i);
    return e ? e->architecture : NULL;
}
const char *shimmy_model_list_quant(const shimmy_model_list *l, size_t i) {
    const registry_entry *e = at(l, i);
    return e ? e->quant : NULL;
}
const char *shimmy_model_list_template(const shimmy_model_list *l, size_t i) {
    const registry_entry *e = at(l, i);
    return e ? e->template : NULL;
}
uint64_t shimmy_model_list_size(const shimmy_model_list *l, size_t i) {
    const registry_entry *e = at(l, i);
    return e ? e->size : 0;
}
uint32_t shimmy_model_list_ctx_len(const shimmy_model_list *l, size_t i) {
    const registry_entry *e = at(l, i);
    return e ? e->context_length : 0;
}

shimmy_spec_builder *shimmy_model_list_spec(const shimmy_model_list *l, size_t i) {
    const registry_entry *e = at(l, i);
    if (!e) return NULL;
    shimmy_spec_builder *b = shimmy_spec_new();
    if (!b) return NULL;
    shimmy_spec_set_name(b, e->name);
    shimmy_spec_set_base_path(b, e->path);
    if (e->n_adapters) shimmy_spec_add_lora(b, e->adapters[0]->path, 1.0f);
    if (b->f.nomem) {
        shimmy_spec_builder_free(b);
        return NULL;
    }
    return b;
}
