/* GGUF LoRA adapters as convert_lora_to_gguf.py writes them: general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha, and tensors "<base weight>.lora_a" / ".lora_b" that
 * already have the base's layout (the converter permuted what needed permuting). */
#include "lora/lora_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Tensor name suffixes and the half they name; anything else is refused, except norm vectors
 * (which llama.cpp skips too, so such files load the same here as there). */
static const struct {
    const char *suffix;
    bool is_b;
} gguf_suffixes[] = {
    {".lora_a", false},
    {".lora_b", true},
};
static const char gguf_skipped_suffix[] = "_norm.weight";

static bool ends_with(gguf_str s, const char *suffix) {
    size_t k = strlen(suffix);
    return s.len >= k && memcmp(s.data + s.len - k, suffix, k) == 0;
}

/* A required string key must equal `want`. */
static shimmy_status want_str(const lora_adapter *ad, const gguf_file *f, const char *key,
                              const char *want, shimmy_status status, shimmy_error *err) {
    gguf_str s;
    if (!gguf_get_str(f, key, &s))
        return core_error(err, status, ad->path,
                          "adapter '%s' has no string %s: not a LoRA adapter (expected \"%s\")",
                          ad->path, key, want);
    if (!gguf_str_eq(s, want))
        return core_error(err, status, ad->path,
                          "adapter '%s': %s is \"%.*s\"; only \"%s\" is supported", ad->path, key,
                          (int)(s.len > 64 ? 64 : s.len), s.data, want);
    return SHIMMY_OK;
}

static shimmy_status read_meta(lora_adapter *ad, const gguf_file *base, shimmy_error *err) {
    const gguf_file *f = ad->gguf;
    shimmy_status rc = want_str(ad, f, "general.type", "adapter", SHIMMY_ERR_ADAPTER, err);
    if (rc == SHIMMY_OK) rc = want_str(ad, f, "adapter.type", "lora", SHIMMY_ERR_UNSUPPORTED, err);
    if (rc != SHIMMY_OK) return rc;
    char base_arch[64];
    if (!lora_base_arch(base, base_arch, sizeof base_arch))
        return core_error(err, SHIMMY_ERR_FORMAT, gguf_path(base),
                          "base model '%s' has no general.architecture", gguf_path(base));
    if (!lora_base_arch(f, ad->arch, sizeof ad->arch))
        return core_error(err, SHIMMY_ERR_ADAPTER, ad->path,
                          "adapter '%s' has no general.architecture", ad->path);
    if (strcmp(ad->arch, base_arch) != 0)
        return core_error(err, SHIMMY_ERR_ADAPTER, ad->path,
                          "adapter '%s' is for architecture '%s' but the base model '%s' is '%s'",
                          ad->path, ad->arch, gguf_path(base), base_arch);
    /* An absent alpha reads as 0, which llama.cpp takes as "scale by the user scale only". */
    ad->alpha = 0.0f;
    if (gguf_get(f, "adapter.lora.alpha") &&
        (!gguf_get_f32(f, "adapter.lora.alpha", &ad->alpha) || !isfinite(ad->alpha)))
        return core_error(err, SHIMMY_ERR_ADAPTER, ad->path,
                          "adapter '%s': adapter.lora.alpha is not a finite number", ad->path);
    return SHIMMY_OK;
}

/* Turns one tensor into a half, or skips it (*skip) when it is a norm vector. */
static shimmy_status read_tensor(const lora_adapter *ad, const gguf_tensor *t, lora_half *h,
                                 bool *skip, shimmy_error *err) {
    *skip = false;
    int which = -1;
    for (size_t i = 0; i < sizeof gguf_suffixes / sizeof gguf_suffixes[0]; i++)
        if (ends_with(t->name, gguf_suffixes[i].suffix)) which = (int)i;
    if (which < 0) {
        *skip = ends_with(t->name, gguf_skipped_suffix);
        if (*skip) return SHIMMY_OK;
        return core_error(err, SHIMMY_ERR_ADAPTER, ad->path,
                          "adapter '%s': tensor '%.*s' is not a LoRA matrix (names end in "
                          ".lora_a or .lora_b)",
                          ad->path, (int)(t->name.len > 200 ? 200 : t->name.len), t->name.data);
    }
    size_t wlen = t->name.len - strlen(gguf_suffixes[which].suffix);
    if (wlen == 0 || wlen >= LORA_NAME_MAX || memchr(t->name.data, '\0', t->name.len))
        return core_error(err, SHIMMY_ERR_ADAPTER, ad->path,
                          "adapter '%s': tensor name '%.*s' is not the name of a base weight",
                          ad->path, (int)(t->name.len > 200 ? 200 : t->name.len), t->name.data);
    memset(h, 0, sizeof *h);
    memcpy(h->weight, t->name.data, wlen);
    h->is_b = gguf_suffixes[which].is_b;
    h->src = t->name.data;
    h->src_len = (size_t)t->name.len;
    h->type = t->type;
    h->n_dims = t->n_dims;
    memcpy(h->ne, t->ne, sizeof h->ne);
    h->data = t->data;
    h->nbytes = t->nbytes;
    return SHIMMY_OK;
}

shimmy_status lora_gguf_read(lora_adapter *ad, const gguf_file *base, lora_halves *out,
                             shimmy_error *err) {
    shimmy_status rc = gguf_open(ad->path, &ad->gguf, err);
    if (rc == SHIMMY_OK) rc = read_meta(ad, base, err);
    size_t n = rc == SHIMMY_OK ? gguf_n_tensors(ad->gguf) : 0;
    for (size_t i = 0; i < n && rc == SHIMMY_OK; i++) {
        lora_half h;
        bool skip;
        rc = read_tensor(ad, gguf_tensor_at(ad->gguf, i), &h, &skip, err);
        if (rc == SHIMMY_OK && !skip) rc = lora_halves_push(out, &h, ad->path, err);
    }
    return rc;
}
