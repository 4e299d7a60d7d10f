/* shimmy bench MODEL — prompt processing (pp) and generation (tg) speed in tokens/s, measured
 * the way llama-bench does it so the figures can be compared: each pp run evaluates -p tokens
 * (BOS, then seeded pseudo-random ids) into an empty cache in batches; each tg run evaluates -n
 * tokens one at a time from an empty cache, forcing seeded pseudo-random ids (no sampling and no
 * end-of-generation check, so every run does exactly -n forward steps). Both go through
 * shimmy_evaluator_eval, i.e. the real forward pass with its KV cache and thread pool. */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const USAGE =
    "shimmy bench MODEL [-p 512] [-n 128] [-t N] [-r 5] [--kv f16|f32] [--ctx-size N]\n"
    "       [--lora FILE] [--lora-scaled FILE S] [--json]\n"
    "       " CLI_DEVICE_USAGE;

#define MAX_TOKEN (1L << 20)

typedef struct bench_opts {
    const char *model;
    long n_prompt, n_gen, reps;
    bool json;
    cli_run_opts run; /* --threads, --ctx-size, --kv, --lora, --lora-scaled, --device */
} bench_opts;

/* Where the model ran: "cpu" or the GPU's name, and the layers on it. */
typedef struct bench_device {
    const char *name;
    int32_t layers;
    const char *cpu_kernels; /* shimmy_model_cpu_kernels */
} bench_device;

/* Mean and sample standard deviation (n - 1, as llama-bench reports) of tokens/s. */
typedef struct bench_stat {
    long n;
    double mean, stddev;
} bench_stat;

static int parse(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    cli_run_opts_init(&o->run);
    o->n_prompt = 512;
    o->n_gen = 128;
    o->reps = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        const int r = cli_run_opt("bench", USAGE, argc, argv, &i, &o->run);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", USAGE);
            exit(0);
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (a[0] == '-' && a[1] != '\0' && !val) {
            return cli_usage_error("bench", USAGE, "option %s needs a value", a);
        } else if (strcmp(a, "-p") == 0 || strcmp(a, "--n-prompt") == 0) {
            if (!cli_parse_long(val, 0, MAX_TOKEN, &o->n_prompt))
                return cli_usage_error("bench", USAGE, "-p must be a token count in [0, %ld]",
                                       MAX_TOKEN);
            i++;
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--n-gen") == 0) {
            if (!cli_parse_long(val, 0, MAX_TOKEN, &o->n_gen))
                return cli_usage_error("bench", USAGE, "-n must be a token count in [0, %ld]",
                                       MAX_TOKEN);
            i++;
        } else if (strcmp(a, "-r") == 0 || strcmp(a, "--repetitions") == 0) {
            if (!cli_parse_long(val, 1, 1000, &o->reps))
                return cli_usage_error("bench", USAGE, "-r must be in [1, 1000]");
            i++;
        } else {
            const int rc = cli_model_arg("bench", USAGE, a, &o->model);
            if (rc) return rc;
        }
    }
    if (!o->model) return cli_usage_error("bench", USAGE, "MODEL is missing");
    return 0;
}

/* splitmix64: a fixed seed gives every run (and every machine) the same token ids. */
static uint64_t next_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* BOS (when the vocabulary adds one) followed by random ids, like llama-bench's prompts. */
static void fill_tokens(int32_t *toks, size_t n, const shimmy_vocab *v, int32_t n_vocab) {
    uint64_t state = 42;
    for (size_t i = 0; i < n; i++) toks[i] = (int32_t)(next_rand(&state) % (uint64_t)n_vocab);
    const int32_t bos = v ? shimmy_vocab_bos(v) : -1;
    if (n > 0 && bos >= 0 && bos < n_vocab && shimmy_vocab_adds_bos(v)) toks[0] = bos;
}

static bench_stat summarize(long n, const double *rate, long reps) {
    bench_stat st = {.n = n};
    if (n == 0) return st;
    double sum = 0, sq = 0;
    for (long r = 0; r < reps; r++) sum += rate[r];
    st.mean = sum / (double)reps;
    for (long r = 0; r < reps; r++) sq += (rate[r] - st.mean) * (rate[r] - st.mean);
    st.stddev = reps > 1 ? sqrt(sq / (double)(reps - 1)) : 0.0;
    return st;
}

/* Runs the repetitions; pp_rate and tg_rate receive tokens/s of each. */
static shimmy_status measure(shimmy_evaluator *s, const bench_opts *o, const int32_t *toks,
                             double *pp_rate, double *tg_rate, shimmy_error *err) {
    shimmy_status st;
    /* One unmeasured pass first (llama-bench does the same): the first touch of the mapped
     * weights and of the scratch buffers costs page faults that are not the forward pass. */
    if (o->n_prompt > 0 &&
        (st = shimmy_evaluator_eval(s, toks, (size_t)o->n_prompt, 0, false, err)))
        return st;
    if (o->n_gen > 0 && (st = shimmy_evaluator_eval(s, toks, 1, 0, false, err))) return st;
    for (long r = 0; r < o->reps; r++) {
        if (o->n_prompt > 0) {
            /* pos 0 discards the whole cache: each run starts from an empty context */
            const double t0 = cli_time_ms();
            if ((st = shimmy_evaluator_eval(s, toks, (size_t)o->n_prompt, 0, false, err)))
                return st;
            pp_rate[r] = (double)o->n_prompt * 1000.0 / (cli_time_ms() - t0);
        }
        if (o->n_gen > 0) {
            const double t0 = cli_time_ms();
            for (long i = 0; i < o->n_gen; i++)
                if ((st = shimmy_evaluator_eval(s, &toks[i], 1, (int32_t)i, false, err))) return st;
            tg_rate[r] = (double)o->n_gen * 1000.0 / (cli_time_ms() - t0);
        }
    }
    return SHIMMY_OK;
}

static json_t *stat_json(const bench_stat *st) {
    return json_pack("{s:I,s:f,s:f}", "n", (json_int_t)st->n, "tokens_per_s", st->mean, "stddev",
                     st->stddev);
}

static int print_json(const bench_opts *o, int threads, const bench_stat *pp, const bench_stat *tg,
                      double load_ms, uint64_t rss, const bench_device *dev) {
    json_t *doc = json_pack("{s:s,s:i,s:o,s:o,s:f,s:I,s:s,s:i,s:s}", "model", o->model, "threads",
                            threads, "pp", stat_json(pp), "tg", stat_json(tg), "load_ms", load_ms,
                            "rss_bytes", (json_int_t)rss, "device", dev->name, "gpu_layers",
                            (int)dev->layers, "cpu_kernels", dev->cpu_kernels);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(doc);
    if (!text) {
        fprintf(stderr, "shimmy: bench: cannot encode the result\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static void print_table(const bench_opts *o, int threads, const bench_stat *pp,
                        const bench_stat *tg, double load_ms, uint64_t rss,
                        const bench_device *dev) {
    const char *base = strrchr(o->model, '/');
    base = base ? base + 1 : o->model;
    printf("| %-36s | %7s | %-8s | %20s |\n", "model", "threads", "test", "t/s");
    printf("| %.36s | ------: | :------- | -------------------: |\n",
           "------------------------------------");
    const bench_stat *rows[2] = {pp, tg};
    const char *names[2] = {"pp", "tg"};
    for (int k = 0; k < 2; k++) {
        if (rows[k]->n == 0) continue;
        char test[32];
        snprintf(test, sizeof test, "%s%ld", names[k], rows[k]->n);
        printf("| %-36.36s | %7d | %-8s | %11.2f ± %6.2f |\n", base, threads, test, rows[k]->mean,
               rows[k]->stddev);
    }
    printf(
        "\nload %.1f ms, resident memory %.1f MiB after %ld repetitions (kv %s, cpu kernels %s)\n",
        load_ms, (double)rss / (1 << 20), o->reps, o->run.kv == SHIMMY_KV_F32 ? "f32" : "f16",
        dev->cpu_kernels);
    if (dev->layers > 0)
        printf("device %s (%d layers on it)\n", dev->name, (int)dev->layers);
    else
        printf("device %s\n", dev->name);
}

int cli_cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    char path[4096];
    shimmy_error err;
    shimmy_error_clear(&err);
    if (cli_resolve_model(o.model, path, sizeof path, &err) || cli_run_resolve_lora(&o.run, &err))
        return cli_fail(&err);
    shimmy_model *m = NULL;
    shimmy_evaluator *s = NULL;
    int32_t *toks = NULL;
    double *rates = NULL;
    rc = 1;
    /* load time as a user waits for it: mapping, weights, vocabulary, KV cache, adapters */
    const double t0 = cli_time_ms();
    if (cli_load_model(o.model, path, &o.run, &m, &err)) goto done;
    /* pp runs use positions [0, p), tg runs [0, n): the larger of the two would do, but p + n
     * keeps the cache the size a request of that shape needs, as llama-bench sizes it.
     * --ctx-size may only make it larger (the KV cache a server would allocate). */
    long n_ctx = o.n_prompt + o.n_gen > 0 ? o.n_prompt + o.n_gen : 1;
    if (o.run.ctx > n_ctx) n_ctx = o.run.ctx;
    shimmy_evaluator_params ep = {.ctx_len = (int32_t)n_ctx,
                                  .kv = o.run.kv,
                                  .threads = (int32_t)o.run.threads,
                                  .lora = o.run.lora,
                                  .n_lora = o.run.n_lora};
    if (shimmy_evaluator_new(m, &ep, &s, &err)) goto done;
    const double load_ms = cli_time_ms() - t0;
    const size_t n_toks = (size_t)(o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen) + 1;
    toks = malloc(sizeof *toks * n_toks);
    rates = calloc((size_t)o.reps * 2, sizeof *rates);
    if (!toks || !rates) {
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate the benchmark tokens");
        goto done;
    }
    fill_tokens(toks, n_toks, shimmy_model_vocab(m), shimmy_evaluator_vocab_size(s));
    if (measure(s, &o, toks, rates, rates + o.reps, &err)) goto done;
    const uint64_t rss = cli_rss_bytes();
    const bench_stat pp = summarize(o.n_prompt, rates, o.reps);
    const bench_stat tg = summarize(o.n_gen, rates + o.reps, o.reps);
    const int threads = o.run.threads > 0 ? (int)o.run.threads : (int)shimmy_default_threads();
    const bench_device dev = {shimmy_model_device(m), shimmy_model_gpu_layers(m),
                              shimmy_model_cpu_kernels(m)};
    if (o.json) {
        rc = print_json(&o, threads, &pp, &tg, load_ms, rss, &dev);
    } else {
        print_table(&o, threads, &pp, &tg, load_ms, rss, &dev);
        rc = 0;
    }
done:
    if (rc == 1 && err.status != SHIMMY_OK) cli_fail(&err);
    free(rates);
    free(toks);
    shimmy_evaluator_free(s);
    shimmy_model_unref(m);
    return rc;
}
