/* The individual samplers: each is a vtable row plus a small state allocated at creation. */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- candidate helpers ---- */

/* Descending logit, ties to the lower id: a total order, so results never depend on qsort. */
static int cand_cmp(const void *a, const void *b) {
    const sampling_cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static bool cand_before(const sampling_cand *x, const sampling_cand *y) {
    return x->logit > y->logit || (x->logit == y->logit && x->id < y->id);
}

static void cands_sort(sampling_cands *c) {
    if (c->sorted) return;
    qsort(c->data, c->size, sizeof *c->data, cand_cmp);
    c->sorted = true;
}

/* Moves the k best candidates to the front, sorted: a heap of the k best seen so far whose root
 * is the worst of them, then a sort of those k. O(n log k), in place. */
static void heap_sift(sampling_cand *h, size_t n, size_t i) {
    for (;;) {
        size_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cand_before(&h[w], &h[l])) w = l;
        if (r < n && cand_before(&h[w], &h[r])) w = r;
        if (w == i) return;
        sampling_cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void cands_partial_sort(sampling_cands *c, size_t k) {
    if (c->sorted) return;
    sampling_cand *d = c->data;
    for (size_t i = k / 2; i-- > 0;) heap_sift(d, k, i);
    for (size_t i = k; i < c->size; i++) {
        if (cand_before(&d[i], &d[0])) {
            sampling_cand t = d[0];
            d[0] = d[i];
            d[i] = t;
            heap_sift(d, k, 0);
        }
    }
    qsort(d, k, sizeof *d, cand_cmp);
}

/* Fills p with the softmax of the logits (sorting first). */
static void cands_softmax(sampling_cands *c) {
    cands_sort(c);
    if (c->size == 0) return;
    const float max = c->data[0].logit;
    double sum = 0.0;
    for (size_t i = 0; i < c->size; i++) {
        c->data[i].p = expf(c->data[i].logit - max);
        sum += c->data[i].p;
    }
    for (size_t i = 0; i < c->size; i++) c->data[i].p = (float)(c->data[i].p / sum);
}

static sampler *make(const sampler_vtable *vt, void *state) {
    sampler *s = core_malloc(sizeof *s);
    if (!s) {
        free(state);
        return NULL;
    }
    s->vt = vt;
    s->state = state;
    return s;
}

static void free_plain(sampler *s) {
    free(s->state);
}

/* ---- greedy ---- */

static void greedy_apply(sampler *s, sampling_cands *c) {
    if (c->size == 0) return;
    size_t best = 0;
    for (size_t i = 1; i < c->size; i++)
        if (cand_before(&c->data[i], &c->data[best])) best = i;
    c->selected = (int32_t)best;
}

static const sampler_vtable greedy_vt = {"greedy", greedy_apply, NULL, NULL, NULL};

sampler *sampler_new_greedy(void) {
    return make(&greedy_vt, NULL);
}

/* ---- dist: seeded draw from the softmax ---- */

typedef struct dist_state {
    uint32_t seed;
    uint64_t s[4]; /* xoshiro256** */
} dist_state;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4]) {
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static void dist_seed(dist_state *d) {
    uint64_t x = d->seed;
    for (int i = 0; i < 4; i++) d->s[i] = splitmix64(&x);
}

static void dist_apply(sampler *s, sampling_cands *c) {
    dist_state *d = s->state;
    if (c->size == 0) return;
    cands_softmax(c);
    const double u = (double)(xoshiro_next(d->s) >> 11) * 0x1.0p-53;
    double cum = 0.0;
    for (size_t i = 0; i < c->size; i++) {
        cum += c->data[i].p;
        if (u < cum) {
            c->selected = (int32_t)i;
            return;
        }
    }
    c->selected = (int32_t)c->size - 1; /* u within rounding of 1 */
}

static void dist_reset(sampler *s) {
    dist_seed(s->state);
}

static const sampler_vtable dist_vt = {"dist", dist_apply, NULL, dist_reset, free_plain};

sampler *sampler_new_dist(uint32_t seed) {
    dist_state *d = core_calloc(1, sizeof *d);
    if (!d) return NULL;
    d->seed =
        seed == SAMPLING_SEED_RANDOM ? (uint32_t)(core_time_ns() ^ (core_time_ns() >> 32)) : seed;
    dist_seed(d);
    return make(&dist_vt, d);
}

/* ---- temperature ---- */

static void temp_apply(sampler *s, sampling_cands *c) {
    const float t = *(const float *)s->state;
    if (t <= 0.0f) return; /* greedy: the picker decides */
    for (size_t i = 0; i < c->size; i++) c->data[i].logit /= t;
}

static const sampler_vtable temp_vt = {"temp", temp_apply, NULL, NULL, free_plain};

sampler *sampler_new_temp(float t) {
    float *st = core_malloc(sizeof *st);
    if (!st) return NULL;
    *st = t;
    return make(&temp_vt, st);
}

/* ---- top-k ---- */

static void top_k_apply(sampler *s, sampling_cands *c) {
    const int32_t k = *(const int32_t *)s->state;
    if (k <= 0 || (size_t)k >= c->size) return;
    cands_partial_sort(c, (size_t)k);
    c->size = (size_t)k;
    c->sorted = true;
}

static const sampler_vtable top_k_vt = {"top_k", top_k_apply, NULL, NULL, free_plain};

sampler *sampler_new_top_k(int32_t k) {
    int32_t *st = core_malloc(sizeof *st);
    if (!st) return NULL;
    *st = k;
    return make(&top_k_vt, st);
}

/* ---- top-p (nucleus) ---- */

static void top_p_apply(sampler *s, sampling_cands *c) {
    const float p = *(const float *)s->state;
    if (p >= 1.0f || c->size == 0) return;
    cands_softmax(c);
    double cum = 0.0;
    size_t keep = c->size;
    for (size_t i = 0; i < c->size; i++) {
        cum += c->data[i].p;
        if (cum >= p) {
            keep = i + 1;
            break;
        }
    }
    c->size = keep;
}

static const sampler_vtable top_p_vt = {"top_p", top_p_apply, NULL, NULL, free_plain};

sampler *sampler_new_top_p(float p) {
    float *st = core_malloc(sizeof *st);
    if (!st) return NULL;
    *st = p;
    return make(&top_p_vt, st);
}

/* ---- min-p: keep tokens with p >= min_p * p_max, i.e. logit >= max + log(min_p) ---- */

static void min_p_apply(sampler *s, sampling_cands *c) {
    const float p = *(const float *)s->state;
    if (p <= 0.0f || c->size == 0) return;
    float max = -INFINITY;
    for (size_t i = 0; i < c->size; i++)
        if (c->data[i].logit > max) max = c->data[i].logit;
    const float min_logit = max + logf(p);
    size_t n = 0;
    for (size_t i = 0; i < c->size; i++)
        if (c->data[i].logit >= min_logit) c->data[n++] = c->data[i];
    c->size = n; /* compaction keeps the order, so a sorted list stays sorted */
}

static const sampler_vtable min_p_vt = {"min_p", min_p_apply, NULL, NULL, free_plain};

sampler *sampler_new_min_p(float p) {
    float *st = core_malloc(sizeof *st);
    if (!st) return NULL;
    *st = p;
    return make(&min_p_vt, st);
}

/* ---- penalties over a window of the last N accepted tokens ---- */

typedef struct pen_state {
    int32_t last_n;
    float repeat, freq, presence;
    int32_t *ring;   /* last_n tokens */
    int32_t head, n; /* next write index, tokens held */
    int32_t *count;  /* occurrences in the window, grown on demand up to the largest id seen */
    int32_t n_count;
} pen_state;

static void pen_apply(sampler *s, sampling_cands *c) {
    pen_state *p = s->state;
    if (p->n == 0) return;
    for (size_t i = 0; i < c->size; i++) {
        const int32_t id = c->data[i].id;
        if (id < 0 || id >= p->n_count || p->count[id] == 0) continue;
        float l = c->data[i].logit;
        l = l > 0.0f ? l / p->repeat : l * p->repeat;
        l -= (float)p->count[id] * p->freq + p->presence;
        c->data[i].logit = l;
    }
    c->sorted = false;
}

static void pen_accept(sampler *s, int32_t token) {
    pen_state *p = s->state;
    if (token < 0 || token >= p->n_count) return;
    if (p->n == p->last_n) {
        const int32_t old = p->ring[p->head];
        if (old >= 0 && old < p->n_count) p->count[old]--;
    } else {
        p->n++;
    }
    p->ring[p->head] = token;
    p->head = (p->head + 1) % p->last_n;
    p->count[token]++;
}

static void pen_reset(sampler *s) {
    pen_state *p = s->state;
    p->head = p->n = 0;
    memset(p->count, 0, sizeof *p->count * (size_t)p->n_count);
}

static void pen_free(sampler *s) {
    pen_state *p = s->state;
    if (p) {
        free(p->ring);
        free(p->count);
    }
    free(p);
}

static const sampler_vtable pen_vt = {"penalties", pen_apply, pen_accept, pen_reset, pen_free};

/* n_vocab bounds the count table, so accepting a token never allocates. */
sampler *sampler_new_penalties(int32_t last_n, float repeat, float freq, float presence,
                               int32_t n_vocab) {
    if (last_n <= 0 || n_vocab <= 0) return NULL;
    pen_state *p = core_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->last_n = last_n;
    p->repeat = repeat;
    p->freq = freq;
    p->presence = presence;
    p->n_count = n_vocab;
    p->ring = core_malloc(sizeof *p->ring * (size_t)last_n);
    p->count = core_calloc((size_t)n_vocab, sizeof *p->count);
    if (p->ring && p->count) {
        void *ring = p->ring, *count = p->count;
        sampler *s = make(&pen_vt, p); /* frees p (only p) when it fails */
        if (!s) {
            free(ring);
            free(count);
        }
        return s;
    }
    free(p->ring);
    free(p->count);
    free(p);
    return NULL;
}

/* ---- logit bias ---- */

typedef struct bias_state {
    size_t n;
    sampling_logit_bias b[];
} bias_state;

static void bias_apply(sampler *s, sampling_cands *c) {
    const bias_state *st = s->state;
    for (size_t j = 0; j < st->n; j++) {
        const int32_t id = st->b[j].token;
        /* first in a chain the list is still the identity; otherwise search */
        if ((size_t)id < c->size && c->data[id].id == id) {
            c->data[id].logit += st->b[j].bias;
            continue;
        }
        for (size_t i = 0; i < c->size; i++)
            if (c->data[i].id == id) c->data[i].logit += st->b[j].bias;
    }
    c->sorted = false;
}

static const sampler_vtable bias_vt = {"logit_bias", bias_apply, NULL, NULL, free_plain};

sampler *sampler_new_logit_bias(const sampling_logit_bias *b, size_t n, int32_t n_vocab) {
    bias_state *st = core_malloc(sizeof *st + n * sizeof *b);
    if (!st) return NULL;
    st->n = 0;
    for (size_t i = 0; i < n; i++)
        if (b[i].token >= 0 && b[i].token < n_vocab) st->b[st->n++] = b[i];
    return make(&bias_vt, st);
}
