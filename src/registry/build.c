/*
 * Turning inspected candidates into the registry's tables: drop duplicate files, group split
 * parts, give unique names, pair adapters with models. Candidates arrive in priority order
 * (root, then path), which is what makes every choice here deterministic.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- an open-addressing hash set (file identities and names) ---- */

typedef struct hset {
    uint64_t *keys; /* hash | 1 (0 = empty) */
    void **vals;
    size_t cap;
} hset;

static bool hset_init(hset *h, size_t n) {
    h->cap = 64;
    while (h->cap < n * 2) h->cap *= 2;
    h->keys = calloc(h->cap, sizeof *h->keys);
    h->vals = calloc(h->cap, sizeof *h->vals);
    return h->keys && h->vals;
}

static void hset_deinit(hset *h) {
    free(h->keys);
    free(h->vals);
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x | 1;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return mix64(h);
}

/* Finds the slot of key (eq decides equality against stored values); returns its index. */
static size_t hset_slot(const hset *h, uint64_t key, bool (*eq)(const void *, const void *),
                        const void *probe) {
    size_t i = key & (h->cap - 1);
    while (h->keys[i] && !(h->keys[i] == key && eq(h->vals[i], probe))) i = (i + 1) & (h->cap - 1);
    return i;
}

static bool same_file(const void *a, const void *b) {
    const reg_cand *x = a, *y = b;
    return x->dev == y->dev && x->ino == y->ino;
}

static bool same_name(const void *a, const void *b) {
    return strcmp(a, b) == 0;
}

static bool has_file(const reg_cand *c) {
    return c->kind == REG_KIND_MODEL || c->kind == REG_KIND_ADAPTER || c->kind == REG_KIND_PART;
}

static void set_skip(reg_cand *c, char *reason) {
    c->kind = REG_KIND_SKIP;
    free(c->reason);
    c->reason = reason ? reason : reg_strdup("skipped");
}

/* ---- duplicates ---- */

static bool dedupe(registry *r) {
    hset h;
    if (!hset_init(&h, r->n_cands)) {
        hset_deinit(&h);
        return false;
    }
    for (size_t i = 0; i < r->n_cands; i++) {
        reg_cand *c = r->cands[i];
        if (!has_file(c)) continue;
        uint64_t key = mix64((uint64_t)c->dev * 0x9e3779b97f4a7c15ull ^ (uint64_t)c->ino);
        size_t s = hset_slot(&h, key, same_file, c);
        if (!h.keys[s]) {
            h.keys[s] = key;
            h.vals[s] = c;
            continue;
        }
        reg_cand *first = h.vals[s];
        c->dup_of = first;
        set_skip(c, reg_printf("same file as %s", first->path));
    }
    hset_deinit(&h);
    return true;
}

/* ---- split models ---- */

static int cmp_split(const void *a, const void *b) {
    const reg_cand *x = *(reg_cand *const *)a, *y = *(reg_cand *const *)b;
    size_t n =
        x->split_prefix_len < y->split_prefix_len ? x->split_prefix_len : y->split_prefix_len;
    int c = memcmp(x->path, y->path, n);
    if (c) return c;
    if (x->split_prefix_len != y->split_prefix_len)
        return x->split_prefix_len < y->split_prefix_len ? -1 : 1;
    if (x->split_count != y->split_count) return x->split_count < y->split_count ? -1 : 1;
    return x->split_no - y->split_no;
}

static bool same_group(const reg_cand *x, const reg_cand *y) {
    return x->split_prefix_len == y->split_prefix_len && x->split_count == y->split_count &&
           memcmp(x->path, y->path, x->split_prefix_len) == 0;
}

static bool group_splits(registry *r) {
    size_t n = 0;
    for (size_t i = 0; i < r->n_cands; i++) {
        reg_cand *c = r->cands[i];
        c->n_parts = 1;
        if (c->split_count > 1 && (c->kind == REG_KIND_MODEL || c->kind == REG_KIND_PART)) n++;
    }
    if (!n) return true;
    reg_cand **v = malloc(n * sizeof *v);
    if (!v) return false;
    n = 0;
    for (size_t i = 0; i < r->n_cands; i++) {
        reg_cand *c = r->cands[i];
        if (c->split_count > 1 && (c->kind == REG_KIND_MODEL || c->kind == REG_KIND_PART))
            v[n++] = c;
    }
    qsort(v, n, sizeof *v, cmp_split);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_group(v[i], v[j])) j++;
        reg_cand *first = v[i]->split_no == 1 && v[i]->kind == REG_KIND_MODEL ? v[i] : NULL;
        int count = v[i]->split_count, found = 0;
        for (size_t k = i; k < j; k++)
            if (v[k]->split_no == found + 1) found++;
        if (first && found == count) {
            for (size_t k = i + 1; k < j; k++) {
                first->size += v[k]->size;
                first->n_params += v[k]->n_params;
            }
            first->n_parts = count;
        } else if (first) {
            set_skip(first,
                     reg_printf("split model incomplete: %d of %d parts found", found, count));
        } else {
            for (size_t k = i; k < j; k++)
                set_skip(v[k], reg_printf("part %d of %d of a split model whose first part is "
                                          "missing",
                                          v[k]->split_no, count));
        }
        i = j;
    }
    free(v);
    return true;
}

/* ---- names ---- */

static char *stem_of(const reg_cand *c) {
    const char *base = strrchr(c->path, '/');
    base = base ? base + 1 : c->path;
    size_t len = strlen(base);
    if (c->split_count > 1)
        len = c->split_prefix_len - (size_t)(base - c->path);
    else if (reg_ends_with_ci(base, ".gguf"))
        len -= 5;
    return reg_strndup(base, len);
}

static char *base_name_of(const reg_cand *c) {
    char *name;
    switch (c->naming) {
    case REG_NAME_FIXED: name = reg_strdup(c->hint); break;
    case REG_NAME_REPO: name = reg_printf("%s:%s", c->hint, c->quant ? c->quant : "gguf"); break;
    case REG_NAME_ADAPTER: name = reg_printf("%s-adapter", c->hint); break;
    default: name = stem_of(c); break;
    }
    if (name) reg_name_clean(name);
    if (name && !*name) {
        free(name);
        name = reg_strdup("model");
    }
    return name;
}

static bool give_name(hset *names, reg_cand *c) {
    char *base = base_name_of(c);
    if (!base) return false;
    char *name = reg_strdup(base);
    for (int k = 2; name; k++) {
        uint64_t key = hash_str(name);
        size_t s = hset_slot(names, key, same_name, name);
        if (!names->keys[s]) {
            names->keys[s] = key;
            names->vals[s] = name;
            break;
        }
        free(name);
        name = reg_printf("%s-%d", base, k);
    }
    free(base);
    c->name = name;
    return name != NULL;
}

static int cmp_name(const void *a, const void *b) {
    const reg_cand *x = *(reg_cand *const *)a, *y = *(reg_cand *const *)b;
    return strcmp(x->name, y->name);
}

static const char *source_root_label(const registry *r, const reg_cand *c) {
    if (c->origin) return c->origin;
    return c->root >= 0 && (size_t)c->root < r->n_roots ? r->roots[c->root] : "";
}

static void fill_entry(const registry *r, registry_entry *e, const reg_cand *c) {
    e->name = c->name;
    e->path = c->path;
    e->size = c->size;
    e->n_parts = c->n_parts;
    e->architecture = c->arch ? c->arch : "";
    e->n_params = c->n_params;
    e->size_label = c->size_label ? c->size_label : "";
    e->quant = c->quant ? c->quant : "unknown";
    e->context_length = c->ctx;
    e->template = c->family ? c->family : "none";
    e->source = c->source;
    e->origin = source_root_label(r, c);
    e->display = c->display ? c->display : "";
}

/* ---- pairing ---- */

static void set_dir(reg_cand *c) {
    const char *s = strrchr(c->path, '/');
    c->dir_len = s ? (size_t)(s - c->path) : 0;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < c->dir_len; i++) h = (h ^ (unsigned char)c->path[i]) * 1099511628211ull;
    c->dir_hash = h;
}

static bool same_dir(const reg_cand *a, const reg_cand *b) {
    return a->dir_hash == b->dir_hash && a->dir_len == b->dir_len &&
           memcmp(a->path, b->path, a->dir_len) == 0;
}

static bool arch_compatible(const reg_cand *a, const reg_cand *m) {
    return !a->arch || !*a->arch || !m->arch || strcasecmp(a->arch, m->arch) == 0;
}

/* Does model m answer to the base name an adapter's metadata gives? */
static bool names_base(const reg_cand *m, const char *hint) {
    if (m->display && strcasecmp(m->display, hint) == 0) return true;
    if (strcasecmp(m->name, hint) == 0) return true;
    const char *slash = strchr(m->name, '/'), *colon = strrchr(m->name, ':');
    if (slash && colon && colon > slash)
        return strncasecmp(slash + 1, hint, (size_t)(colon - slash - 1)) == 0 &&
               strlen(hint) == (size_t)(colon - slash - 1);
    return false;
}

static reg_cand *final_of(reg_cand *c) {
    while (c && c->dup_of) c = c->dup_of;
    return c && c->kind == REG_KIND_MODEL ? c : NULL;
}

static reg_cand *pair_one(registry *r, reg_cand *a, reg_cand *env_base) {
    if (a->pair_model) {
        reg_cand *m = final_of(a->pair_model);
        a->pair_reason = reg_strdup(m ? "paired by its Ollama manifest"
                                      : "its Ollama manifest's model is not listed");
        return m;
    }
    if (a->pair_env_base) {
        reg_cand *m = final_of(env_base);
        a->pair_reason = reg_strdup(m ? "SHIMMY_LORA_GGUF pairs it with SHIMMY_BASE_GGUF"
                                      : "SHIMMY_LORA_GGUF is set but SHIMMY_BASE_GGUF is not a "
                                        "listed model");
        if (m) return m;
    }
    reg_cand *hit = NULL;
    int n_hint = 0, n_dir = 0;
    const char *hint = a->base_hint ? strrchr(a->base_hint, '/') : NULL;
    hint = hint ? hint + 1 : a->base_hint;
    if (hint && *hint) {
        for (size_t i = 0; i < r->n_entries; i++) {
            reg_cand *m = r->entry_cands[i];
            if (arch_compatible(a, m) && names_base(m, hint)) {
                hit = m;
                n_hint++;
            }
        }
        if (n_hint == 1) {
            free(a->pair_reason);
            a->pair_reason = reg_printf("its metadata names the base model '%s'", a->base_hint);
            return hit;
        }
    }
    if (a->source == REGISTRY_SOURCE_OLLAMA) return NULL;
    if (a->pair_cli) {
        /* serve --lora: the only compatible --model file, else the only compatible model. */
        for (int pass = 0; pass < 2; pass++) {
            int n = 0;
            for (size_t i = 0; i < r->n_entries; i++) {
                reg_cand *m = r->entry_cands[i];
                if ((pass == 1 || m->explicit_file) && arch_compatible(a, m)) {
                    hit = m;
                    n++;
                }
            }
            if (n == 1) {
                free(a->pair_reason);
                a->pair_reason = reg_strdup(pass == 0 ? "--lora: the only compatible --model file"
                                                      : "--lora: the only compatible model");
                return hit;
            }
            if (n > 1) break; /* several candidates: the folder rule decides */
        }
    }
    for (size_t i = 0; i < r->n_entries; i++) {
        reg_cand *m = r->entry_cands[i];
        if (same_dir(m, a) && arch_compatible(a, m)) {
            hit = m;
            n_dir++;
        }
    }
    const char *arch = a->arch && *a->arch ? a->arch : "";
    if (n_dir == 1) {
        free(a->pair_reason);
        a->pair_reason = reg_printf("the only %s%smodel in its folder", arch, *arch ? " " : "");
        return hit;
    }
    if (!a->pair_reason && n_hint > 1)
        a->pair_reason = reg_printf("unpaired: its metadata names the base '%s', which matches %d "
                                    "models, and %d share its folder",
                                    a->base_hint, n_hint, n_dir);
    if (!a->pair_reason)
        a->pair_reason =
            n_dir == 0 ? reg_printf("unpaired: no %s%smodel in its folder", arch, *arch ? " " : "")
                       : reg_printf("unpaired: %d %s%smodels in its folder; name the base "
                                    "with SHIMMY_BASE_GGUF/SHIMMY_LORA_GGUF or --lora",
                                    n_dir, arch, *arch ? " " : "");
    return NULL;
}

static bool build_adapters(registry *r, reg_cand **adapters, size_t n) {
    reg_cand *env_base = NULL;
    for (size_t i = 0; i < r->n_cands && !env_base; i++)
        if (r->cands[i]->env_base) env_base = r->cands[i];
    r->adapters = calloc(n ? n : 1, sizeof *r->adapters);
    r->adapter_cands = adapters;
    r->adapter_refs = calloc(n ? n : 1, sizeof *r->adapter_refs);
    if (!r->adapters || !r->adapter_refs) return false;
    r->n_adapters = n;
    size_t *count = calloc(r->n_entries + 1, sizeof *count);
    long *base_of = malloc((n ? n : 1) * sizeof *base_of);
    if (!count || !base_of) {
        free(count);
        free(base_of);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        reg_cand *a = adapters[i];
        reg_cand *m = pair_one(r, a, env_base);
        registry_adapter *ra = &r->adapters[i];
        ra->name = a->name;
        ra->path = a->path;
        ra->format = a->is_peft ? REGISTRY_ADAPTER_PEFT : REGISTRY_ADAPTER_GGUF;
        ra->source = a->source;
        ra->architecture = a->arch ? a->arch : "";
        ra->alpha = a->alpha;
        ra->rank = a->rank;
        ra->base = m ? &r->entries[m->entry] : NULL;
        ra->reason = a->pair_reason ? a->pair_reason : "";
        base_of[i] = m ? m->entry : -1;
        if (m) count[m->entry]++;
    }
    /* each entry's list is a slice of adapter_refs, in adapter name order */
    size_t off = 0;
    for (size_t e = 0; e < r->n_entries; e++) {
        r->entries[e].adapters = r->adapter_refs + off;
        off += count[e];
        count[e] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (base_of[i] < 0) continue;
        registry_entry *e = &r->entries[base_of[i]];
        ((const registry_adapter **)e->adapters)[count[base_of[i]]++] = &r->adapters[i];
        e->n_adapters++;
    }
    free(count);
    free(base_of);
    return true;
}

/* ---- aliases: another Ollama tag of the same blob ---- */

static bool build_aliases(registry *r) {
    size_t n = 0;
    for (size_t i = 0; i < r->n_cands; i++) {
        reg_cand *c = r->cands[i], *m = final_of(c->dup_of);
        if (c->dup_of && m && c->naming == REG_NAME_FIXED && c->hint) n++;
    }
    r->alias_names = calloc(n ? n : 1, sizeof *r->alias_names);
    r->alias_entry = calloc(n ? n : 1, sizeof *r->alias_entry);
    if (!r->alias_names || !r->alias_entry) return false;
    for (size_t i = 0; i < r->n_cands; i++) {
        reg_cand *c = r->cands[i], *m = final_of(c->dup_of);
        if (!(c->dup_of && m && c->naming == REG_NAME_FIXED && c->hint)) continue;
        r->alias_names[r->n_aliases] = c->hint; /* cleaned by the Ollama walker */
        r->alias_entry[r->n_aliases++] = (size_t)m->entry;
    }
    return true;
}

shimmy_status reg_build(registry *r, shimmy_error *err) {
    hset names = {0};
    reg_cand **models = NULL, **adapters = NULL;
    size_t n_models = 0, n_adapters = 0, n_skipped = 0;
    if (!dedupe(r) || !group_splits(r)) goto nomem;
    for (size_t i = 0; i < r->n_cands; i++) {
        reg_cand *c = r->cands[i];
        c->entry = -1;
        set_dir(c);
        if (c->kind == REG_KIND_MODEL && !c->size_label) {
            c->size_label = reg_size_label(c->n_params);
            if (!c->size_label) goto nomem;
        }
        n_models += c->kind == REG_KIND_MODEL;
        n_adapters += c->kind == REG_KIND_ADAPTER;
        n_skipped += c->kind == REG_KIND_SKIP;
    }
    models = malloc((n_models ? n_models : 1) * sizeof *models);
    adapters = malloc((n_adapters ? n_adapters : 1) * sizeof *adapters);
    if (!models || !adapters || !hset_init(&names, n_models + n_adapters)) goto nomem;
    n_models = n_adapters = 0;
    /* names are handed out in priority order, so the earlier root keeps the plain name */
    for (size_t i = 0; i < r->n_cands; i++) {
        reg_cand *c = r->cands[i];
        if (c->kind != REG_KIND_MODEL && c->kind != REG_KIND_ADAPTER) continue;
        if (!give_name(&names, c)) goto nomem;
        if (c->kind == REG_KIND_MODEL)
            models[n_models++] = c;
        else
            adapters[n_adapters++] = c;
    }
    qsort(models, n_models, sizeof *models, cmp_name);
    qsort(adapters, n_adapters, sizeof *adapters, cmp_name);
    r->entries = calloc(n_models ? n_models : 1, sizeof *r->entries);
    if (!r->entries) goto nomem;
    r->entry_cands = models;
    models = NULL;
    r->n_entries = n_models;
    for (size_t i = 0; i < n_models; i++) {
        r->entry_cands[i]->entry = (long)i;
        fill_entry(r, &r->entries[i], r->entry_cands[i]);
    }
    if (!build_adapters(r, adapters, n_adapters)) {
        adapters = NULL; /* owned by r now */
        goto nomem;
    }
    adapters = NULL;
    r->skipped = calloc(n_skipped ? n_skipped : 1, sizeof *r->skipped);
    if (!r->skipped || !build_aliases(r)) goto nomem;
    for (size_t i = 0; i < r->n_cands; i++) {
        reg_cand *c = r->cands[i];
        if (c->kind != REG_KIND_SKIP) continue;
        r->skipped[r->n_skipped].path = c->path;
        r->skipped[r->n_skipped++].reason = c->reason ? c->reason : "skipped";
    }
    hset_deinit(&names);
    return SHIMMY_OK;
nomem:
    hset_deinit(&names);
    free(models);
    free(adapters);
    return core_error(err, SHIMMY_ERR_NOMEM, NULL, "no memory to build the model registry");
}
