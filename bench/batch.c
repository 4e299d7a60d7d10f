/* bench_batch MODEL [-c CLIENTS] [-n TOKENS] [-t THREADS] [--adapter FILE]... [--alone]
 *
 * Continuous batching through the public library: CLIENTS threads each generate TOKENS tokens
 * (greedy, end of sequence ignored, distinct prompts) with a session of one shimmy_batch, and
 * the aggregate generation rate is printed with the batch's statistics (steps, sessions per
 * step). With --adapter files (one per client, cycled), each client applies its own adapter: the
 * clients still share steps, each adding its adapter's terms. --alone runs the same clients one
 * after another on sessions of their own instead (the sequential baseline). */
#include "core/core.h"
#include "shimmy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS  64
#define MAX_ADAPTERS 64

typedef struct client {
    shimmy_model *m;
    shimmy_batch *batch;
    shimmy_threadpool *pool;
    shimmy_adapter *ad;
    int idx, tokens;
    int32_t generated;
    shimmy_status st;
    char err[512];
} client;

static void *run(void *arg) {
    client *c = arg;
    shimmy_error err;
    shimmy_session *s = NULL;
    shimmy_session_options so = {.ctx_len = 512, .pool = c->pool, .batch = c->batch};
    char text[128];
    snprintf(text, sizeof text, "Client %d writes about the history of the river and", c->idx);
    shimmy_prompt *p = NULL;
    c->st = shimmy_session_new(c->m, &so, &s, &err);
    if (!c->st && c->ad) {
        const float one = 1.0f;
        c->st = shimmy_session_set_adapters(s, &c->ad, &one, 1, &err);
    }
    if (!c->st) c->st = shimmy_prompt_from_text(c->m, text, strlen(text), &p, &err);
    if (!c->st) {
        shimmy_gen_options g = {.max_tokens = c->tokens, .temperature = 0.0f, .ignore_eos = true};
        shimmy_session_request req = {.options = &g};
        shimmy_session_result res;
        c->st = shimmy_session_generate(s, p, &req, NULL, NULL, &res, &err);
        c->generated = res.completion_tokens;
    }
    if (c->st) snprintf(c->err, sizeof c->err, "%s", err.message);
    shimmy_prompt_free(p);
    shimmy_session_free(s);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s MODEL [-c CLIENTS] [-n TOKENS] [-t THREADS] [--adapter FILE]... "
                "[--alone]\n",
                argv[0]);
        return 2;
    }
    int clients = 8, tokens = 64, threads = 2, n_ad = 0;
    bool alone = false;
    const char *ad_paths[MAX_ADAPTERS];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--alone") == 0)
            alone = true;
        else if (i + 1 < argc && strcmp(argv[i], "-c") == 0)
            clients = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-n") == 0)
            tokens = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-t") == 0)
            threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--adapter") == 0 && n_ad < MAX_ADAPTERS)
            ad_paths[n_ad++] = argv[++i];
        else {
            fprintf(stderr, "bench_batch: bad argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (clients < 1 || clients > MAX_CLIENTS || tokens < 1) return 2;
    shimmy_error err;
    shimmy_spec_builder *sb = shimmy_spec_new();
    if (!sb) return 1;
    shimmy_spec_set_name(sb, "bench");
    shimmy_spec_set_base_path(sb, argv[1]);
    shimmy_spec_set_threads(sb, threads);
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    shimmy_threadpool *pool = NULL;
    if (shimmy_spec_build(sb, &spec, &err) || shimmy_model_load(spec, &m, &err) ||
        shimmy_threadpool_new(threads, &pool, &err)) {
        fprintf(stderr, "bench_batch: %s\n", err.message);
        return 1;
    }
    shimmy_spec_free(spec);
    shimmy_spec_builder_free(sb);
    shimmy_adapter *ads[MAX_ADAPTERS] = {0};
    for (int i = 0; i < n_ad; i++)
        if (shimmy_adapter_open(m, ad_paths[i], &ads[i], &err)) {
            fprintf(stderr, "bench_batch: %s: %s\n", ad_paths[i], err.message);
            return 1;
        }
    shimmy_batch *batch = NULL;
    shimmy_batch_options bo = {.slots = clients, .ctx_len = 512, .pool = pool};
    if (!alone && shimmy_batch_new(m, &bo, &batch, &err)) {
        fprintf(stderr, "bench_batch: %s\n", err.message);
        return 1;
    }
    client cs[MAX_CLIENTS];
    pthread_t th[MAX_CLIENTS];
    const double t0 = core_time_ms();
    for (int i = 0; i < clients; i++) {
        cs[i] = (client){.m = m,
                         .batch = batch,
                         .pool = pool,
                         .idx = i,
                         .tokens = tokens,
                         .ad = n_ad ? ads[i % n_ad] : NULL};
        if (alone)
            run(&cs[i]);
        else
            pthread_create(&th[i], NULL, run, &cs[i]);
    }
    long total = 0;
    for (int i = 0; i < clients; i++) {
        if (!alone) pthread_join(th[i], NULL);
        if (cs[i].st) fprintf(stderr, "client %d: %s\n", i, cs[i].err);
        total += cs[i].generated;
    }
    const double ms = core_time_ms() - t0;
    printf("%s: %d clients%s, %d tokens each: %ld tokens in %.0f ms = %.1f tok/s aggregate\n",
           alone ? "alone" : "batched", clients, n_ad ? " with adapters" : "", tokens, total, ms,
           (double)total * 1000.0 / ms);
    if (batch) {
        shimmy_batch_stats st;
        shimmy_batch_get_stats(batch, &st);
        printf("steps %llu, sessions per step %.2f (largest %d), busy %.0f ms\n",
               (unsigned long long)st.steps,
               st.steps ? (double)st.sequences / (double)st.steps : 0.0, st.max_batch, st.busy_ms);
    }
    shimmy_batch_free(batch);
    for (int i = 0; i < n_ad; i++) shimmy_adapter_unref(ads[i]);
    shimmy_threadpool_free(pool);
    shimmy_model_unref(m);
    return 0;
}
