/* Adapter objects: choosing the reader for a path, pairing the halves a reader found, holding
 * every pair to the base model's shapes, and the reference count that lets sessions share one
 * adapter.
 *
 * All checks run before anything is handed out, so a bad adapter is refused whole: the caller
 * never sees an adapter of which only some pairs apply. */
#include "lora/lora_impl.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Types a LoRA matrix may have: each runs through quant's kernels with its own vec_dot_type. */
static const uint32_t lora_types[] = {GGUF_T_F32, GGUF_T_F16, GGUF_T_BF16, GGUF_T_Q8_0};

/* Base weights that are not an ordinary product W·x in the engine. llama.cpp adds the embedding's
 * delta to looked-up rows with lora_a stored transposed, and our output may be the tied
 * embedding, so applying either as a plain pair would be silently wrong. */
static const struct {
    const char *weight;
    const char *what;
} lora_refused[] = {
    {"token_embd.weight", "the token embedding"},
    {"output.weight", "the output projection"},
};

shimmy_status lora_halves_push(lora_halves *hs, const lora_half *h, const char *adapter,
                               shimmy_error *err) {
    if (hs->n == hs->cap) {
        size_t cap = hs->cap ? hs->cap * 2 : 64;
        lora_half *v = core_realloc(hs->v, cap * sizeof *v);
        if (!v)
            return core_error(err, SHIMMY_ERR_NOMEM, adapter, "out of memory reading adapter '%s'",
                              adapter);
        hs->v = v;
        hs->cap = cap;
    }
    hs->v[hs->n++] = *h;
    return SHIMMY_OK;
}

bool lora_base_arch(const gguf_file *base, char *buf, size_t cap) {
    gguf_str s;
    if (!gguf_get_str(base, "general.architecture", &s) || s.len == 0 || s.len >= cap) return false;
    gguf_str_copy(s, buf, cap);
    return true;
}

/* ---- choosing a reader ---- */

static shimmy_status join(const char *dir, const char *file, char *buf, size_t cap,
                          shimmy_error *err) {
    if ((size_t)snprintf(buf, cap, "%s/%s", dir, file) >= cap)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, dir, "adapter path '%s' is too long", dir);
    return SHIMMY_OK;
}

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static shimmy_status read_peft_dir(lora_adapter *ad, const gguf_file *base, lora_halves *out,
                                   shimmy_error *err) {
    char cfg[4096], st[4096], bin[4096];
    shimmy_status rc = join(ad->path, "adapter_config.json", cfg, sizeof cfg, err);
    if (rc == SHIMMY_OK) rc = join(ad->path, "adapter_model.safetensors", st, sizeof st, err);
    if (rc == SHIMMY_OK) rc = join(ad->path, "adapter_model.bin", bin, sizeof bin, err);
    if (rc != SHIMMY_OK) return rc;
    if (!is_file(st)) {
        if (is_file(bin))
            return core_error(err, SHIMMY_ERR_UNSUPPORTED, ad->path,
                              "adapter '%s' holds adapter_model.bin (a PyTorch pickle), which is "
                              "not loaded for safety; save it as adapter_model.safetensors",
                              ad->path);
        return core_error(err, SHIMMY_ERR_NOT_FOUND, ad->path,
                          "adapter folder '%s' has no adapter_model.safetensors", ad->path);
    }
    return lora_peft_read(ad, cfg, st, base, out, err);
}

static shimmy_status read_peft_file(lora_adapter *ad, const gguf_file *base, lora_halves *out,
                                    shimmy_error *err) {
    char dir[4096], cfg[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s", ad->path) >= sizeof dir)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, ad->path, "adapter path is too long");
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    shimmy_status rc = join(dir, "adapter_config.json", cfg, sizeof cfg, err);
    return rc != SHIMMY_OK ? rc : lora_peft_read(ad, cfg, ad->path, base, out, err);
}

static bool match_dir(const char *path, const struct stat *sb) {
    return S_ISDIR(sb->st_mode);
}

static bool match_gguf(const char *path, const struct stat *sb) {
    FILE *fp = S_ISREG(sb->st_mode) ? fopen(path, "rb") : NULL;
    if (!fp) return false;
    unsigned char m[4] = {0};
    size_t n = fread(m, 1, 4, fp);
    fclose(fp);
    return n == 4 && memcmp(m, "GGUF", 4) == 0;
}

static bool match_safetensors(const char *path, const struct stat *sb) {
    size_t n = strlen(path), k = strlen(".safetensors");
    return S_ISREG(sb->st_mode) && n > k && strcmp(path + n - k, ".safetensors") == 0;
}

typedef struct lora_reader {
    bool (*match)(const char *path, const struct stat *sb);
    shimmy_status (*read)(lora_adapter *ad, const gguf_file *base, lora_halves *out,
                          shimmy_error *err);
    lora_format format;
} lora_reader;

static const lora_reader lora_readers[] = {
    {match_dir, read_peft_dir, LORA_FORMAT_PEFT},
    {match_gguf, lora_gguf_read, LORA_FORMAT_GGUF},
    {match_safetensors, read_peft_file, LORA_FORMAT_PEFT},
};

static shimmy_status read_any(lora_adapter *ad, const gguf_file *base, lora_halves *out,
                              shimmy_error *err) {
    struct stat sb;
    if (stat(ad->path, &sb) != 0)
        return core_error(err, errno == ENOENT ? SHIMMY_ERR_NOT_FOUND : SHIMMY_ERR_IO, ad->path,
                          "cannot open adapter '%s': %s", ad->path, strerror(errno));
    for (size_t i = 0; i < sizeof lora_readers / sizeof lora_readers[0]; i++) {
        if (!lora_readers[i].match(ad->path, &sb)) continue;
        ad->format = lora_readers[i].format;
        return lora_readers[i].read(ad, base, out, err);
    }
    return core_error(err, SHIMMY_ERR_UNSUPPORTED, ad->path,
                      "adapter '%s' is neither a GGUF adapter, a PEFT folder (adapter_config.json "
                      "+ adapter_model.safetensors) nor a .safetensors file",
                      ad->path);
}

/* ---- pairing and validation ---- */

static int cmp_half(const void *pa, const void *pb) {
    const lora_half *a = pa, *b = pb;
    int c = strcmp(a->weight, b->weight);
    return c ? c : (int)a->is_b - (int)b->is_b;
}

static int cmp_pair(const void *pa, const void *pb) {
    return strcmp(((const lora_pair *)pa)->weight, ((const lora_pair *)pb)->weight);
}

/* Checks one half's type and that the quant table can run it; fills its traits. */
static shimmy_status check_type(const char *adapter, const lora_half *h, const quant_traits **qt,
                                shimmy_error *err) {
    bool listed = false;
    for (size_t i = 0; i < sizeof lora_types / sizeof lora_types[0]; i++)
        listed |= lora_types[i] == h->type;
    if (!listed)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, adapter,
                          "adapter '%s': tensor '%.*s' has type %s; LoRA matrices must be F32, "
                          "F16, BF16 or Q8_0",
                          adapter, (int)h->src_len, h->src, gguf_type_name(h->type));
    *qt = quant_get(h->type);
    const quant_traits *vd = *qt ? quant_get((*qt)->vec_dot_type) : NULL;
    if (!*qt || !(*qt)->vec_dot || !vd || !vd->from_float)
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, adapter,
                          "adapter '%s': tensor '%.*s': this build has no %s kernels", adapter,
                          (int)h->src_len, h->src, gguf_type_name(h->type));
    return SHIMMY_OK;
}

/* Rows of n elements must fill whole blocks of both the type and its activation type. */
static bool row_fits(const quant_traits *qt, int64_t n) {
    const quant_traits *vd = quant_get(qt->vec_dot_type);
    return n > 0 && n % qt->block_size == 0 && n % vd->block_size == 0;
}

/* Holds a pair's dimensions to base weight W; messages name both tensors. */
static shimmy_status check_base(const char *adapter, const char *weight, const char *a_name,
                                int64_t n_in, int64_t rank, int64_t n_out, const gguf_file *base,
                                shimmy_error *err) {
    for (size_t i = 0; i < sizeof lora_refused / sizeof lora_refused[0]; i++)
        if (strcmp(weight, lora_refused[i].weight) == 0)
            return core_error(err, SHIMMY_ERR_UNSUPPORTED, adapter,
                              "adapter '%s': tensor '%s' targets %s ('%s'); LoRA on it is not "
                              "supported",
                              adapter, a_name, lora_refused[i].what, weight);
    const gguf_tensor *w = gguf_find_tensor(base, weight);
    if (!w)
        return core_error(err, SHIMMY_ERR_ADAPTER, adapter,
                          "adapter '%s': tensor '%s' targets '%s', which the base model '%s' does "
                          "not have (adapter made for another model?)",
                          adapter, a_name, weight, gguf_path(base));
    if (w->n_dims != 2)
        return core_error(err, SHIMMY_ERR_ADAPTER, adapter,
                          "adapter '%s': tensor '%s' targets '%s', which is not a matrix", adapter,
                          a_name, weight);
    if (w->ne[0] != n_in || w->ne[1] != n_out)
        return core_error(err, SHIMMY_ERR_ADAPTER, adapter,
                          "adapter '%s': pair for '%s' has lora_a [%lld, %lld] and lora_b [%lld, "
                          "%lld], but the base weight is [%lld, %lld], so lora_a must be [%lld, r] "
                          "and lora_b [r, %lld] (adapter made for another model?)",
                          adapter, weight, (long long)n_in, (long long)rank, (long long)rank,
                          (long long)n_out, (long long)w->ne[0], (long long)w->ne[1],
                          (long long)w->ne[0], (long long)w->ne[1]);
    return SHIMMY_OK;
}

/* The complete check of one pair; on success *p is filled with b still pointing at the stored
 * rows and *n_heads > 0 when those rows must be permuted. */
static shimmy_status check_pair(lora_adapter *ad, const lora_half *a, const lora_half *b,
                                const gguf_file *base, lora_pair *p, int64_t *n_heads,
                                shimmy_error *err) {
    const char *path = ad->path;
    char an[LORA_NAME_MAX + 64];
    snprintf(an, sizeof an, "%.*s", (int)a->src_len, a->src);
    if (a->n_dims != 2 || b->n_dims != 2 || a->ne[1] != b->ne[0] || a->ne[1] <= 0)
        return core_error(err, SHIMMY_ERR_ADAPTER, path,
                          "adapter '%s': pair for '%s' has lora_a [%lld, %lld] and lora_b [%lld, "
                          "%lld]; both must be matrices with lora_a.ne1 == lora_b.ne0 (the rank)",
                          path, a->weight, (long long)a->ne[0], (long long)a->ne[1],
                          (long long)b->ne[0], (long long)b->ne[1]);
    int64_t n_in = a->ne[0], rank = a->ne[1], n_out = b->ne[1];
    shimmy_status rc = check_base(path, a->weight, an, n_in, rank, n_out, base, err);
    if (rc == SHIMMY_OK && a->expect_rank && rank != a->expect_rank)
        rc = core_error(err, SHIMMY_ERR_ADAPTER, path,
                        "adapter '%s': tensor '%s' has rank %lld but adapter_config.json says "
                        "r = %lld",
                        path, an, (long long)rank, (long long)a->expect_rank);
    if (rc == SHIMMY_OK) rc = check_type(path, a, &p->qa, err);
    if (rc == SHIMMY_OK) rc = check_type(path, b, &p->qb, err);
    if (rc != SHIMMY_OK) return rc;
    if (!row_fits(p->qa, n_in) || !row_fits(p->qb, rank))
        return core_error(err, SHIMMY_ERR_ADAPTER, path,
                          "adapter '%s': pair for '%s': rows of %lld (lora_a, %s) or %lld (lora_b, "
                          "%s) elements do not fill whole blocks of the type",
                          path, a->weight, (long long)n_in, gguf_type_name(a->type),
                          (long long)rank, gguf_type_name(b->type));
    p->xa = quant_get(p->qa->vec_dot_type);
    p->xb = quant_get(p->qb->vec_dot_type);
    p->a_row_bytes = quant_row_bytes(p->qa, n_in);
    p->b_row_bytes = quant_row_bytes(p->qb, rank);
    if (a->nbytes != p->a_row_bytes * (uint64_t)rank ||
        b->nbytes != p->b_row_bytes * (uint64_t)n_out)
        return core_error(err, SHIMMY_ERR_FORMAT, path,
                          "adapter '%s': pair for '%s': stored sizes do not match the shapes", path,
                          a->weight);
    *n_heads = b->perm_heads;
    if (*n_heads && (n_out % *n_heads || (n_out / *n_heads) % 2))
        return core_error(err, SHIMMY_ERR_ADAPTER, path,
                          "adapter '%s': cannot reorder the %lld rows of '%s' for rope: they do "
                          "not split into %lld heads of even size",
                          path, (long long)n_out, a->weight, (long long)*n_heads);
    p->type_a = a->type;
    p->type_b = b->type;
    p->a = a->data;
    p->b = b->data;
    p->n_in = n_in;
    p->n_out = n_out;
    p->rank = rank;
    p->alpha = ad->alpha;
    p->divisor = ad->rslora ? sqrtf((float)rank) : (float)rank;
    return SHIMMY_OK;
}

/* Hugging Face rows h·d + j·d/2 + i go to GGUF rows h·d + 2i + j (the converter's rope order). */
static void permute_rows(const unsigned char *src, unsigned char *dst, int64_t n_rows,
                         int64_t n_heads, size_t row_bytes) {
    int64_t d = n_rows / n_heads;
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < d / 2; i++)
            for (int64_t j = 0; j < 2; j++)
                memcpy(dst + (size_t)(h * d + 2 * i + j) * row_bytes,
                       src + (size_t)(h * d + j * (d / 2) + i) * row_bytes, row_bytes);
}

/* Pairs the sorted halves into ad->pairs; any incomplete or doubled pair is an error. */
static shimmy_status pair_halves(lora_adapter *ad, lora_halves *hs, const gguf_file *base,
                                 int64_t *heads, shimmy_error *err) {
    const char *path = ad->path;
    for (size_t i = 0; i < hs->n;) {
        const lora_half *h = &hs->v[i];
        size_t j = i + 1;
        while (j < hs->n && strcmp(hs->v[j].weight, h->weight) == 0) j++;
        const lora_half *a = NULL, *b = NULL;
        for (size_t k = i; k < j; k++) {
            const lora_half **slot = hs->v[k].is_b ? &b : &a;
            if (*slot)
                return core_error(err, SHIMMY_ERR_ADAPTER, path,
                                  "adapter '%s': tensors '%.*s' and '%.*s' both give lora_%s of "
                                  "'%s'",
                                  path, (int)(*slot)->src_len, (*slot)->src, (int)hs->v[k].src_len,
                                  hs->v[k].src, hs->v[k].is_b ? "b" : "a", h->weight);
            *slot = &hs->v[k];
        }
        if (!a || !b)
            return core_error(err, SHIMMY_ERR_ADAPTER, path,
                              "adapter '%s': tensor '%.*s' has no matching lora_%s: the pair for "
                              "'%s' is incomplete",
                              path, (int)h->src_len, h->src, a ? "b" : "a", h->weight);
        lora_pair *p = &ad->pairs[ad->n_pairs];
        snprintf(ad->names[ad->n_pairs], LORA_NAME_MAX, "%s", h->weight);
        shimmy_status rc = check_pair(ad, a, b, base, p, &heads[ad->n_pairs], err);
        if (rc != SHIMMY_OK) return rc;
        p->weight = ad->names[ad->n_pairs++];
        i = j;
    }
    return SHIMMY_OK;
}

/* Gives back the whole pages of [p, p + n) of the adapter's file mapping, whose data was copied
 * and is not read there again: a private, read-only file mapping re-reads a page from the file if
 * it is ever touched, so this only lowers the resident memory (an adapter then costs its bytes
 * once, not its copy plus the pages the copy was read from). Never for heap memory. */
static void release_mapped(const void *p, size_t n) {
    const long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || n == 0) return;
    const uintptr_t page = (uintptr_t)ps;
    const uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
    const uintptr_t e = ((uintptr_t)p + n) & ~(page - 1);
    if (a < e) (void)madvise((void *)a, e - a, MADV_DONTNEED); /* a hint: failure is fine */
}

/* Copies and reorders the lora_b rows that need it into one owned block. */
static shimmy_status permute_all(lora_adapter *ad, const int64_t *heads, shimmy_error *err) {
    size_t total = 0;
    for (size_t i = 0; i < ad->n_pairs; i++)
        if (heads[i]) total += ad->pairs[i].b_row_bytes * (size_t)ad->pairs[i].n_out;
    if (!total) return SHIMMY_OK;
    unsigned char *blk = core_malloc(total);
    if (!blk)
        return core_error(err, SHIMMY_ERR_NOMEM, ad->path, "out of memory loading adapter '%s'",
                          ad->path);
    ad->owned = blk;
    ad->owned_bytes = total;
    for (size_t i = 0; i < ad->n_pairs; i++) {
        lora_pair *p = &ad->pairs[i];
        if (!heads[i]) continue;
        permute_rows(p->b, blk, p->n_out, heads[i], p->b_row_bytes);
        release_mapped(p->b, p->b_row_bytes * (size_t)p->n_out);
        p->b = blk;
        blk += p->b_row_bytes * (size_t)p->n_out;
    }
    return SHIMMY_OK;
}

/* ---- the owned copy a decode step reads ----
 * A decode step reads every A and B once, with two multiply-adds per element: it runs at the speed
 * of memory, and memory is only fast for long sequential streams (one core here: ~25 GB/s over
 * consecutive 32 KB blocks, ~13 GB/s when each 32 KB block sits elsewhere). So the pairs that take
 * panels get A and their panels copied into one block, in the order this engine uses them: layer
 * by layer, each product group (q,k,v; output; gate,up; down: the products sharing an input, which
 * run together) as the A's of its members, then their panels. The mapping is left as it is. */

static const struct {
    const char *suffix;
    int group, member;
} use_order[] = {
    {"attn_q.weight", 0, 0},      {"attn_k.weight", 0, 1},   {"attn_v.weight", 0, 2},
    {"attn_output.weight", 1, 0}, {"ffn_gate.weight", 2, 0}, {"ffn_up.weight", 2, 1},
    {"ffn_down.weight", 3, 0},
};

typedef struct use_key {
    long layer; /* LONG_MAX: not a "blk.N." name */
    int group;  /* 99: not a known projection */
    int member;
    lora_pair *p;
} use_key;

static use_key use_key_of(lora_pair *p) {
    use_key k = {LONG_MAX, 99, 0, p};
    if (strncmp(p->weight, "blk.", 4) != 0) return k;
    char *end;
    const long layer = strtol(p->weight + 4, &end, 10);
    if (end == p->weight + 4 || *end != '.') return k;
    k.layer = layer;
    for (size_t i = 0; i < sizeof use_order / sizeof use_order[0]; i++)
        if (strcmp(end + 1, use_order[i].suffix) == 0) {
            k.group = use_order[i].group;
            k.member = use_order[i].member;
        }
    return k;
}

static int cmp_use(const void *va, const void *vb) {
    const use_key *a = va, *b = vb;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    if (a->group != b->group) return a->group < b->group ? -1 : 1;
    if (a->member != b->member) return a->member < b->member ? -1 : 1;
    return strcmp(a->p->weight, b->p->weight);
}

/* Rounded up to 64 bytes: every copy starts on a cache line. */
static size_t line_up(size_t n) {
    return (n + 63) & ~(size_t)63;
}

static size_t a_bytes(const lora_pair *p) {
    return (size_t)p->rank * p->a_row_bytes;
}

static shimmy_status build_panels(lora_adapter *ad, shimmy_error *err) {
    size_t total = 0, n = 0;
    for (size_t i = 0; i < ad->n_pairs; i++)
        if (lora_pair_panel_ok(&ad->pairs[i])) {
            total += line_up(a_bytes(&ad->pairs[i])) + line_up(lora_panel_bytes(&ad->pairs[i]));
            n++;
        }
    if (!n) return SHIMMY_OK;
    const size_t huge = (size_t)2 << 20; /* whole 2 MB pages where the system grants them */
    const size_t alloc = total >= huge ? (total + huge - 1) / huge * huge : total;
    unsigned char *blk = core_aligned_alloc(total >= huge ? huge : 64, alloc);
    use_key *keys = core_malloc(n * sizeof *keys);
    if (!blk || !keys) {
        core_aligned_free(blk);
        free(keys);
        return core_error(err, SHIMMY_ERR_NOMEM, ad->path, "out of memory loading adapter '%s'",
                          ad->path);
    }
#ifdef MADV_HUGEPAGE
    if (alloc >= huge) (void)madvise(blk, alloc, MADV_HUGEPAGE); /* a hint: failure is fine */
#endif
    ad->bp_owned = blk;
    n = 0;
    for (size_t i = 0; i < ad->n_pairs; i++)
        if (lora_pair_panel_ok(&ad->pairs[i])) keys[n++] = use_key_of(&ad->pairs[i]);
    qsort(keys, n, sizeof *keys, cmp_use);
    for (size_t g = 0; g < n;) { /* one product group: its A's, then its panels */
        size_t e = g + 1;
        while (e < n && keys[e].layer == keys[g].layer && keys[e].group == keys[g].group &&
               keys[g].group != 99)
            e++;
        for (size_t i = g; i < e; i++) {
            lora_pair *p = keys[i].p;
            memcpy(blk, p->a, a_bytes(p));
            release_mapped(p->a, a_bytes(p)); /* A is never in the owned block */
            p->a = blk;
            blk += line_up(a_bytes(p));
        }
        for (size_t i = g; i < e; i++) {
            lora_pair *p = keys[i].p;
            lora_panel_build(p, blk);
            /* the rows the panels hold; the last n_out % 8 are still read from B */
            const unsigned char *b = p->b, *own = ad->owned;
            if (!own || b < own || b >= own + ad->owned_bytes)
                release_mapped(b, (size_t)(p->n_out / LORA_PANEL * LORA_PANEL) * p->b_row_bytes);
            p->bp = blk;
            blk += line_up(lora_panel_bytes(p));
        }
        g = e;
    }
    free(keys);
    return SHIMMY_OK;
}

static shimmy_status build(lora_adapter *ad, lora_halves *hs, const gguf_file *base,
                           shimmy_error *err) {
    if (hs->n == 0)
        return core_error(err, SHIMMY_ERR_ADAPTER, ad->path, "adapter '%s' holds no LoRA tensors",
                          ad->path);
    qsort(hs->v, hs->n, sizeof *hs->v, cmp_half);
    size_t max_pairs = hs->n; /* at most one pair per half, fewer when complete */
    ad->pairs = core_calloc(max_pairs, sizeof *ad->pairs);
    ad->names = core_calloc(max_pairs, sizeof *ad->names);
    int64_t *heads = core_calloc(max_pairs, sizeof *heads);
    shimmy_status rc = SHIMMY_OK;
    if (!ad->pairs || !ad->names || !heads)
        rc = core_error(err, SHIMMY_ERR_NOMEM, ad->path, "out of memory loading adapter '%s'",
                        ad->path);
    if (rc == SHIMMY_OK) rc = pair_halves(ad, hs, base, heads, err);
    if (rc == SHIMMY_OK) rc = permute_all(ad, heads, err);
    if (rc == SHIMMY_OK) rc = build_panels(ad, err); /* after permute_all: the final rows */
    free(heads); /* pairs come out sorted by weight because the halves were */
    return rc;
}

/* ---- the object ---- */

static void adapter_free(lora_adapter *ad) {
    if (!ad) return;
    gguf_close(ad->gguf);
    lora_st_close(ad->st);
    free(ad->owned);
    core_aligned_free(ad->bp_owned);
    free(ad->pairs);
    free(ad->names);
    free(ad->path);
    free(ad);
}

shimmy_status lora_adapter_open(const char *path, const gguf_file *base, lora_adapter **out,
                                shimmy_error *err) {
    if (out) *out = NULL;
    if (!path || !base || !out)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, path,
                          "lora_adapter_open needs a path, a base model and an output");
    lora_adapter *ad = core_calloc(1, sizeof *ad);
    if (ad) ad->path = core_strdup(path);
    if (!ad || !ad->path) {
        free(ad);
        return core_error(err, SHIMMY_ERR_NOMEM, path, "out of memory opening adapter '%s'", path);
    }
    atomic_init(&ad->refs, 1);
    lora_halves hs = {0};
    shimmy_status rc = read_any(ad, base, &hs, err);
    if (rc == SHIMMY_OK) rc = build(ad, &hs, base, err);
    free(hs.v);
    if (rc != SHIMMY_OK) {
        adapter_free(ad);
        return rc;
    }
    core_log(CORE_LOG_INFO, "lora: adapter '%s': %zu pairs, alpha %g", path, ad->n_pairs,
             (double)ad->alpha);
    *out = ad;
    return SHIMMY_OK;
}

shimmy_status lora_adapter_validate(const lora_adapter *a, const gguf_file *base,
                                    shimmy_error *err) {
    char arch[64] = "";
    if (!lora_base_arch(base, arch, sizeof arch) || strcmp(arch, a->arch) != 0)
        return core_error(err, SHIMMY_ERR_ADAPTER, a->path,
                          "adapter '%s' is for architecture '%s' but the base model '%s' is '%s'",
                          a->path, a->arch, gguf_path(base), arch);
    for (size_t i = 0; i < a->n_pairs; i++) {
        const lora_pair *p = &a->pairs[i];
        shimmy_status rc =
            check_base(a->path, p->weight, p->weight, p->n_in, p->rank, p->n_out, base, err);
        if (rc != SHIMMY_OK) return rc;
    }
    return SHIMMY_OK;
}

lora_adapter *lora_adapter_ref(lora_adapter *a) {
    if (a) atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    return a;
}

void lora_adapter_unref(lora_adapter *a) {
    if (a && atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1) adapter_free(a);
}

const char *lora_adapter_path(const lora_adapter *a) {
    return a->path;
}
const char *lora_adapter_arch(const lora_adapter *a) {
    return a->arch;
}
lora_format lora_adapter_format(const lora_adapter *a) {
    return a->format;
}
float lora_adapter_alpha(const lora_adapter *a) {
    return a->alpha;
}
size_t lora_adapter_n_pairs(const lora_adapter *a) {
    return a->n_pairs;
}

const lora_pair *lora_adapter_pair_at(const lora_adapter *a, size_t i) {
    return i < a->n_pairs ? &a->pairs[i] : NULL;
}

const lora_pair *lora_adapter_find(const lora_adapter *a, const char *weight_name) {
    lora_pair key = {.weight = weight_name};
    return bsearch(&key, a->pairs, a->n_pairs, sizeof key, cmp_pair);
}

float lora_pair_scale(const lora_pair *p, float user_scale) {
    /* Same operation order as llama.cpp (scale * alpha / rank) so the float result is identical. */
    return p->alpha != 0.0f ? user_scale * p->alpha / p->divisor : user_scale;
}
