/* Counters and the Prometheus text exposition of GET /metrics. */
#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void server_metrics_init(server_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void server_metrics_deinit(server_metrics *m) {
    pthread_mutex_destroy(&m->mu);
}

void server_metrics_request(server_metrics *m, const char *route, int status) {
    pthread_mutex_lock(&m->mu);
    size_t i = 0;
    while (i < m->n_req && !(m->req[i].route == route && m->req[i].status == status)) i++;
    if (i == m->n_req && m->n_req < SERVER_METRIC_ROWS) {
        m->req[i].route = route;
        m->req[i].status = status;
        m->req[i].count = 0;
        m->n_req++;
    }
    if (i < m->n_req) m->req[i].count++;
    pthread_mutex_unlock(&m->mu);
}

void server_metrics_generation(server_metrics *m, int64_t n_prompt, double prompt_ms, int64_t n_gen,
                               double gen_ms, bool cancelled) {
    pthread_mutex_lock(&m->mu);
    if (n_prompt > 0) m->prompt_tokens += (uint64_t)n_prompt;
    if (n_gen > 0) m->gen_tokens += (uint64_t)n_gen;
    m->prompt_ms += prompt_ms;
    m->gen_ms += gen_ms;
    m->generations++;
    if (cancelled) m->cancelled++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct text_buf {
    char *p;
    size_t len, cap;
    bool failed;
} text_buf;

static void put(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_buf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap : 4096) * 2 + (size_t)n;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* Label values are model names; Prometheus escapes \, " and newline. */
static void put_label(text_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            put(b, "\\%c", *s);
        else if (*s == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *s);
    }
}

char *server_metrics_render(server *s) {
    text_buf b = {0};
    server_metrics *m = &s->metrics;
    put(&b, "# HELP shimmy_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE shimmy_requests_total counter\n");
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_req; i++)
        put(&b, "shimmy_requests_total{route=\"%s\",status=\"%d\"} %llu\n", m->req[i].route,
            m->req[i].status, (unsigned long long)m->req[i].count);
    uint64_t pt = m->prompt_tokens, gt = m->gen_tokens, gens = m->generations, canc = m->cancelled;
    double pms = m->prompt_ms, gms = m->gen_ms;
    pthread_mutex_unlock(&m->mu);
    put(&b,
        "# HELP shimmy_prompt_tokens_total Prompt tokens processed (cached prefixes excluded).\n"
        "# TYPE shimmy_prompt_tokens_total counter\nshimmy_prompt_tokens_total %llu\n"
        "# HELP shimmy_tokens_generated_total Tokens generated.\n"
        "# TYPE shimmy_tokens_generated_total counter\nshimmy_tokens_generated_total %llu\n"
        "# HELP shimmy_generations_total Generations run on a slot.\n"
        "# TYPE shimmy_generations_total counter\nshimmy_generations_total %llu\n"
        "# HELP shimmy_generations_cancelled_total Generations stopped because the client left.\n"
        "# TYPE shimmy_generations_cancelled_total counter\n"
        "shimmy_generations_cancelled_total %llu\n",
        (unsigned long long)pt, (unsigned long long)gt, (unsigned long long)gens,
        (unsigned long long)canc);
    put(&b,
        "# HELP shimmy_prompt_tokens_per_second Prompt processing rate over the server's life.\n"
        "# TYPE shimmy_prompt_tokens_per_second gauge\nshimmy_prompt_tokens_per_second %.3f\n"
        "# HELP shimmy_generation_tokens_per_second Generation rate per request over the "
        "server's life.\n"
        "# TYPE shimmy_generation_tokens_per_second gauge\n"
        "shimmy_generation_tokens_per_second %.3f\n",
        pms > 0 ? (double)pt * 1000.0 / pms : 0.0,
        gms > 0 && gt > gens ? (double)(gt - gens) * 1000.0 / gms : 0.0);
    int queued, running;
    server_queue_depth(s, &queued, &running);
    put(&b,
        "# HELP shimmy_queue_depth Requests waiting for a slot.\n"
        "# TYPE shimmy_queue_depth gauge\nshimmy_queue_depth %d\n"
        "# HELP shimmy_requests_in_flight Generations running on a slot.\n"
        "# TYPE shimmy_requests_in_flight gauge\nshimmy_requests_in_flight %d\n"
        "# HELP shimmy_slots Configured slots (--parallel).\n"
        "# TYPE shimmy_slots gauge\nshimmy_slots %d\n",
        queued, running, s->n_slots);
    /* continuous batching: every batch's steps summed (one batch per model in use) */
    shimmy_batch_stats bt = {0};
    pthread_mutex_lock(&s->qmu);
    for (int i = 0; s->batches && i < s->n_slots; i++) {
        if (!s->batches[i].b) continue;
        shimmy_batch_stats one;
        shimmy_batch_get_stats(s->batches[i].b, &one);
        bt.steps += one.steps, bt.tokens += one.tokens, bt.sequences += one.sequences;
        bt.last_batch += one.last_batch, bt.queued += one.queued;
        if (one.max_batch > bt.max_batch) bt.max_batch = one.max_batch;
        bt.cached_tokens += one.cached_tokens, bt.reused_tokens += one.reused_tokens;
        bt.cached_seqs += one.cached_seqs;
    }
    pthread_mutex_unlock(&s->qmu);
    put(&b,
        "# HELP shimmy_batch_steps_total Forward steps shared by the slots (continuous "
        "batching).\n"
        "# TYPE shimmy_batch_steps_total counter\nshimmy_batch_steps_total %llu\n"
        "# HELP shimmy_batch_sequences_total Sessions in those steps, summed over steps.\n"
        "# TYPE shimmy_batch_sequences_total counter\nshimmy_batch_sequences_total %llu\n"
        "# HELP shimmy_batch_tokens_total Tokens (prompt and generated) in those steps.\n"
        "# TYPE shimmy_batch_tokens_total counter\nshimmy_batch_tokens_total %llu\n"
        "# HELP shimmy_batch_size Sessions in the last step.\n"
        "# TYPE shimmy_batch_size gauge\nshimmy_batch_size %d\n"
        "# HELP shimmy_batch_size_max Sessions in the largest step.\n"
        "# TYPE shimmy_batch_size_max gauge\nshimmy_batch_size_max %d\n"
        "# HELP shimmy_batch_waiting Sessions waiting for the next step.\n"
        "# TYPE shimmy_batch_waiting gauge\nshimmy_batch_waiting %d\n",
        (unsigned long long)bt.steps, (unsigned long long)bt.sequences,
        (unsigned long long)bt.tokens, bt.last_batch, bt.max_batch, bt.queued);
    put(&b,
        "# HELP shimmy_prompt_cache_entries Prompt caches kept for requests that ended.\n"
        "# TYPE shimmy_prompt_cache_entries gauge\nshimmy_prompt_cache_entries %d\n"
        "# HELP shimmy_prompt_cache_tokens Positions held by those caches.\n"
        "# TYPE shimmy_prompt_cache_tokens gauge\nshimmy_prompt_cache_tokens %llu\n"
        "# HELP shimmy_prompt_cache_reused_tokens_total Prompt positions copied from another "
        "sequence's cache.\n"
        "# TYPE shimmy_prompt_cache_reused_tokens_total counter\n"
        "shimmy_prompt_cache_reused_tokens_total %llu\n",
        bt.cached_seqs, (unsigned long long)bt.cached_tokens, (unsigned long long)bt.reused_tokens);
    size_t n;
    shimmy_load_status *infos = server_models_snapshot(s, &n);
    size_t loaded = 0;
    for (size_t i = 0; i < n; i++) loaded += infos[i].state == SHIMMY_LOAD_LOADED;
    put(&b,
        "# HELP shimmy_models_loaded Models loaded in memory.\n"
        "# TYPE shimmy_models_loaded gauge\nshimmy_models_loaded %zu\n"
        "# HELP shimmy_model_memory_bytes Memory of each loaded model.\n"
        "# TYPE shimmy_model_memory_bytes gauge\n",
        loaded);
    for (size_t i = 0; i < n; i++) {
        if (infos[i].state != SHIMMY_LOAD_LOADED) continue;
        put(&b, "shimmy_model_memory_bytes{model=\"");
        put_label(&b, infos[i].name);
        put(&b, "\"} %llu\n", (unsigned long long)infos[i].bytes);
    }
    free(infos);
    put(&b,
        "# HELP shimmy_resident_memory_bytes Resident memory of the server process.\n"
        "# TYPE shimmy_resident_memory_bytes gauge\nshimmy_resident_memory_bytes %llu\n"
        "# HELP shimmy_uptime_seconds Seconds since the server started.\n"
        "# TYPE shimmy_uptime_seconds gauge\nshimmy_uptime_seconds %.1f\n",
        (unsigned long long)shimmy_process_rss_bytes(), (server_clock_ms() - s->t_start) / 1000.0);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
