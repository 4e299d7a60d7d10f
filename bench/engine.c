/* bench_engine [MODEL.gguf ...] [-p 512] [-n 128] [-t 1,2] [-r 3] [--kv f16|f32] [--json]
 *
 * Prompt processing (pp: -p tokens in batches of 512) and generation (tg: -n tokens one at a
 * time from an empty cache, as llama-bench measures it) in tokens/s, the median of -r runs, for
 * each model and thread count. Without MODEL arguments every .gguf in $SHIMMY_TESTDATA/models
 * is measured. Token ids are seeded pseudo-random ids, so any model can be measured without its
 * tokenizer. */
#include "engine/engine.h"
#include "test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS  64
#define MAX_THREADS 8

typedef struct bench_opts {
    const char *models[MAX_MODELS];
    int n_models;
    int n_prompt, n_gen, reps;
    int threads[MAX_THREADS];
    int n_threads;
    model_kv_type kv;
    bool json;
} bench_opts;

/* tokens/s of pp and tg for one model and thread count (0 on failure) */
static int run(const char *path, const bench_opts *o, int n_threads, double *pp, double *tg) {
    shimmy_error err;
    engine_model_params mp = {.no_tokenizer = true};
    engine_model *m = NULL;
    engine_session *s = NULL;
    if (engine_model_open(path, &mp, &m, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        return 1;
    }
    engine_session_params sp = {
        .n_ctx = o->n_prompt + o->n_gen + 1, .kv_type = o->kv, .n_threads = n_threads};
    if (engine_session_new(m, &sp, &s, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        engine_model_close(m);
        return 1;
    }
    const int32_t n_vocab = engine_n_vocab(s);
    int32_t *toks = malloc(sizeof *toks * (size_t)(o->n_prompt + o->n_gen + 1));
    test_rng rng;
    test_rng_seed(&rng, 42);
    for (int i = 0; i < o->n_prompt + o->n_gen + 1; i++)
        toks[i] = (int32_t)(test_rng_u64(&rng) % (unsigned long long)n_vocab);
    double pp_v[64], tg_v[64];
    int reps = o->reps < 64 ? o->reps : 64;
    /* one warm-up of each, so page faults of the mapping are not measured */
    (void)engine_eval(s, toks, (size_t)o->n_prompt, 0, false, &err);
    for (int r = 0; r < reps; r++) {
        double t0 = core_time_ms();
        if (o->n_prompt > 0 && engine_eval(s, toks, (size_t)o->n_prompt, 0, false, &err)) break;
        double t1 = core_time_ms();
        for (int i = 0; i < o->n_gen; i++)
            if (engine_eval(s, &toks[i], 1, i, false, &err)) break;
        double t2 = core_time_ms();
        pp_v[r] = o->n_prompt * 1000.0 / (t1 - t0);
        tg_v[r] = o->n_gen * 1000.0 / (t2 - t1);
    }
    *pp = o->n_prompt > 0 ? test_median(pp_v, reps) : 0.0;
    *tg = o->n_gen > 0 ? test_median(tg_v, reps) : 0.0;
    free(toks);
    engine_session_free(s);
    engine_model_close(m);
    return 0;
}

static int list_models(bench_opts *o) {
    static char paths[MAX_MODELS][1024 + 512];
    const char *dir = getenv("SHIMMY_TESTDATA");
    char d[1024];
    snprintf(d, sizeof d, "%s/models", dir ? dir : "../shared/testdata");
    DIR *dp = opendir(d);
    if (!dp) {
        fprintf(stderr, "bench_engine: no MODEL given and %s cannot be read\n", d);
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(dp)) && o->n_models < MAX_MODELS) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".gguf") == 0) {
            snprintf(paths[o->n_models], sizeof paths[0], "%s/%s", d, e->d_name);
            o->models[o->n_models] = paths[o->n_models];
            o->n_models++;
        }
    }
    closedir(dp);
    return 0;
}

int main(int argc, char **argv) {
    bench_opts o = {.n_prompt = 512, .n_gen = 128, .reps = 3, .threads = {1, 2}, .n_threads = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(a, "-p") == 0) {
            o.n_prompt = atoi(v), i++;
        } else if (strcmp(a, "-n") == 0) {
            o.n_gen = atoi(v), i++;
        } else if (strcmp(a, "-r") == 0) {
            o.reps = atoi(v), i++;
        } else if (strcmp(a, "--kv") == 0) {
            o.kv = strcmp(v, "f32") == 0 ? MODEL_KV_F32 : MODEL_KV_F16, i++;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "-t") == 0) {
            o.n_threads = 0;
            for (char *p = argv[++i]; p && *p && o.n_threads < MAX_THREADS;) {
                o.threads[o.n_threads++] = (int)strtol(p, &p, 10);
                if (*p == ',') p++;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "usage: bench_engine [MODEL.gguf ...] [-p 512] [-n 128] [-t 1,2] "
                            "[-r 3] [--kv f16|f32] [--json]\n");
            return 2;
        } else if (o.n_models < MAX_MODELS) {
            o.models[o.n_models++] = a;
        }
    }
    if (o.reps < 1 || o.n_prompt < 0 || o.n_gen < 0 || o.n_threads == 0) return 2;
    if (o.n_models == 0 && list_models(&o)) return 1;
    if (!o.json)
        printf("%-40s %3s %10s %10s   (pp%d / tg%d, kv %s, isa %s)\n", "model", "thr", "pp tok/s",
               "tg tok/s", o.n_prompt, o.n_gen, o.kv == MODEL_KV_F32 ? "f32" : "f16",
               core_cpu_isa_name());
    else
        printf("[");
    int rc = 0, first = 1;
    for (int mi = 0; mi < o.n_models; mi++) {
        const char *base = strrchr(o.models[mi], '/');
        base = base ? base + 1 : o.models[mi];
        for (int ti = 0; ti < o.n_threads; ti++) {
            double pp = 0, tg = 0;
            if (run(o.models[mi], &o, o.threads[ti], &pp, &tg)) {
                rc = 1;
                continue;
            }
            if (o.json)
                printf("%s{\"model\":\"%s\",\"threads\":%d,\"pp\":%d,\"tg\":%d,\"pp_tps\":%.1f,"
                       "\"tg_tps\":%.1f}",
                       first ? "" : ",", base, o.threads[ti], o.n_prompt, o.n_gen, pp, tg);
            else
                printf("%-40s %3d %10.1f %10.1f\n", base, o.threads[ti], pp, tg);
            first = 0;
            fflush(stdout);
        }
    }
    if (o.json) printf("]\n");
    return rc;
}
