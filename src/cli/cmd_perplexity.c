/*
 * shimmy perplexity — what llama.cpp's llama-perplexity computes, so figures compare directly:
 * the whole file is tokenized once (BOS per metadata, no special-token parsing), cut into
 * n_ctx-token chunks; each chunk starts with BOS, is evaluated from position 0 with an empty
 * cache, and only its second half is scored (positions n_ctx/2 .. n_ctx-2 predict the next
 * token), so every scored token sees at least n_ctx/2 tokens of context.
 *
 * --kl-base MODEL2 evaluates a second model on the same chunks and reports how far this
 * model's next-token distributions are from MODEL2's: mean KL(P_base || P_model), its 99th
 * percentile, and how often both pick the same top token.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PPL_USAGE                                                                                  \
    "shimmy perplexity MODEL --file TEXT [--ctx-size N] [--batch N] [--kv f16|f32] "               \
    "[--threads N] [--chunks N] [--kl-base MODEL2] [--lora A] [--lora-scaled A S] [--json]\n"      \
    "       " CLI_DEVICE_USAGE

typedef struct ppl_opts {
    const char *model, *file, *kl_base;
    long ctx, batch, max_chunks;
    cli_run_opts run; /* --threads, --ctx-size, --kv, --lora (on MODEL only, not --kl-base) */
    bool json;
} ppl_opts;

typedef struct ppl_side {
    shimmy_model *model;
    shimmy_evaluator *session;
} ppl_side;

static int parse_opts(int argc, char **argv, ppl_opts *o) {
    memset(o, 0, sizeof *o);
    cli_run_opts_init(&o->run);
    for (int i = 1; i < argc; i++) {
        int r = cli_run_opt("perplexity", PPL_USAGE, argc, argv, &i, &o->run);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", PPL_USAGE);
            exit(0);
        } else if (a[0] == '-' && !v) {
            return cli_usage_error("perplexity", PPL_USAGE, "%s needs a value", a);
        } else if (strcmp(a, "--file") == 0 || strcmp(a, "-f") == 0) {
            o->file = argv[++i];
        } else if (strcmp(a, "--kl-base") == 0) {
            o->kl_base = argv[++i];
        } else if (strcmp(a, "--batch") == 0 || strcmp(a, "-b") == 0) {
            if (!cli_parse_long(argv[++i], 1, 1 << 20, &o->batch))
                return cli_usage_error("perplexity", PPL_USAGE, "--batch wants a positive number");
        } else if (strcmp(a, "--chunks") == 0) {
            if (!cli_parse_long(argv[++i], 1, 1 << 30, &o->max_chunks))
                return cli_usage_error("perplexity", PPL_USAGE, "--chunks wants a positive number");
        } else if (a[0] == '-') {
            return cli_usage_error("perplexity", PPL_USAGE, "unknown option %s", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            return cli_usage_error("perplexity", PPL_USAGE, "unexpected argument '%s'", a);
        }
    }
    if (!o->model) return cli_usage_error("perplexity", PPL_USAGE, "MODEL is required");
    if (!o->file) return cli_usage_error("perplexity", PPL_USAGE, "--file is required");
    o->ctx = o->run.ctx ? o->run.ctx : 512;
    if (o->ctx < 8) return cli_usage_error("perplexity", PPL_USAGE, "--ctx-size must be >= 8");
    if (o->batch == 0 || o->batch > o->ctx) o->batch = o->ctx;
    return 0;
}

static shimmy_status open_side(const char *arg, const ppl_opts *o, bool with_lora, ppl_side *side,
                               shimmy_error *err) {
    char path[4096];
    shimmy_status st = cli_resolve_model(arg, path, sizeof path, err);
    if (st) return st;
    st = cli_load_model(arg, path, &o->run, &side->model, err);
    if (st) return st;
    shimmy_evaluator_params ep = {
        .ctx_len = (int32_t)o->ctx,
        .batch = (int32_t)o->batch,
        .n_logits = (int32_t)o->ctx,
        .kv = o->run.kv,
        .threads = (int32_t)o->run.threads,
        .lora = with_lora ? o->run.lora : NULL,
        .n_lora = with_lora ? o->run.n_lora : 0,
    };
    return shimmy_evaluator_new(side->model, &ep, &side->session, err);
}

static void close_side(ppl_side *side) {
    shimmy_evaluator_free(side->session);
    shimmy_model_unref(side->model);
}

/* Two vocabularies are the same when every token has the same text: only then are next-token
 * distributions comparable position by position. */
static shimmy_status check_same_vocab(const shimmy_vocab *a, const shimmy_vocab *b,
                                      const char *name, shimmy_error *err) {
    if (shimmy_vocab_size(a) != shimmy_vocab_size(b))
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                "--kl-base model has %d tokens, the model %d: vocabularies differ",
                                shimmy_vocab_size(b), shimmy_vocab_size(a));
    for (int32_t i = 0; i < shimmy_vocab_size(a); i++) {
        size_t la, lb;
        const char *ta = shimmy_vocab_token_text(a, i, &la),
                   *tb = shimmy_vocab_token_text(b, i, &lb);
        if (la != lb || (la && memcmp(ta, tb, la) != 0))
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                    "--kl-base model's token %d differs from the model's: "
                                    "vocabularies differ",
                                    i);
    }
    return SHIMMY_OK;
}

/* log-softmax of logits into out (double precision sum, as llama-perplexity). */
static void log_softmax(const float *logits, int32_t n, double *out) {
    float mx = logits[0];
    for (int32_t j = 1; j < n; j++) mx = logits[j] > mx ? logits[j] : mx;
    double sum = 0;
    for (int32_t j = 0; j < n; j++) sum += exp((double)(logits[j] - mx));
    double lse = log(sum);
    for (int32_t j = 0; j < n; j++) out[j] = (double)(logits[j] - mx) - lse;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t j = 1; j < n; j++)
        if (x[j] > x[best]) best = j;
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct ppl_stats {
    double nll, nll2;
    long count;
    double *kl; /* one per scored token when --kl-base */
    long kl_n, top_agree;
} ppl_stats;

static shimmy_status score_chunk(ppl_side *m, ppl_side *base, const int32_t *toks, int32_t ctx,
                                 double *lp_m, double *lp_b, ppl_stats *st, shimmy_error *err) {
    shimmy_status s = shimmy_evaluator_eval(m->session, toks, (size_t)ctx, 0, true, err);
    if (!s && base) s = shimmy_evaluator_eval(base->session, toks, (size_t)ctx, 0, true, err);
    if (s) return s;
    int32_t n_vocab = shimmy_evaluator_vocab_size(m->session);
    for (int32_t i = ctx / 2; i < ctx - 1; i++) {
        const float *lg = shimmy_evaluator_logits(m->session, i);
        log_softmax(lg, n_vocab, lp_m);
        double nll = -lp_m[toks[i + 1]];
        st->nll += nll;
        st->nll2 += nll * nll;
        st->count++;
        if (base) {
            const float *lb = shimmy_evaluator_logits(base->session, i);
            log_softmax(lb, n_vocab, lp_b);
            double kl = 0;
            for (int32_t j = 0; j < n_vocab; j++) kl += exp(lp_b[j]) * (lp_b[j] - lp_m[j]);
            st->kl[st->kl_n++] = kl;
            st->top_agree += argmax(lg, n_vocab) == argmax(lb, n_vocab);
        }
    }
    return SHIMMY_OK;
}

static int report(const ppl_opts *o, const ppl_stats *st, long n_chunk, double secs) {
    double mean = st->nll / (double)st->count, ppl = exp(mean);
    double var = st->nll2 / (double)st->count - mean * mean;
    double ppl_err = var > 0 && st->count > 1 ? ppl * sqrt(var / (double)(st->count - 1)) : 0;
    double kl_mean = 0, kl_p99 = 0, agree = 0;
    if (o->kl_base && st->kl_n > 0) {
        for (long i = 0; i < st->kl_n; i++) kl_mean += st->kl[i];
        kl_mean /= (double)st->kl_n;
        qsort(st->kl, (size_t)st->kl_n, sizeof(double), cmp_double);
        long idx = (long)ceil(0.99 * (double)st->kl_n) - 1;
        kl_p99 = st->kl[idx < 0 ? 0 : idx];
        agree = (double)st->top_agree / (double)st->kl_n;
    }
    if (o->json) {
        json_t *j = json_pack("{s:f,s:f,s:I,s:I,s:I,s:f,s:f}", "ppl", ppl, "ppl_stderr", ppl_err,
                              "chunks", (json_int_t)n_chunk, "ctx", (json_int_t)o->ctx,
                              "tokens_scored", (json_int_t)st->count, "seconds", secs,
                              "tokens_per_s", secs > 0 ? (double)(n_chunk * o->ctx) / secs : 0.0);
        if (o->kl_base)
            json_object_set_new(j, "kl_divergence",
                                json_pack("{s:f,s:f,s:f}", "mean", kl_mean, "p99", kl_p99,
                                          "top1_agreement", agree));
        char *s = json_dumps(j, JSON_REAL_PRECISION(10));
        printf("%s\n", s);
        free(s);
        json_decref(j);
    } else {
        printf("perplexity: %.4f +/- %.5f  (%ld chunks of %ld tokens, %ld tokens scored, %.1f s)\n",
               ppl, ppl_err, n_chunk, o->ctx, st->count, secs);
        if (o->kl_base)
            printf("KL divergence from %s: mean %.6f, p99 %.6f; same top token %.2f%%\n",
                   o->kl_base, kl_mean, kl_p99, 100.0 * agree);
    }
    return 0;
}

int cli_cmd_perplexity(int argc, char **argv) {
    ppl_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    shimmy_error err;
    shimmy_error_clear(&err);
    ppl_side m = {0}, base = {0};
    int32_t *toks = NULL;
    size_t n_toks = 0;
    char *text = NULL;
    double *lp_m = NULL, *lp_b = NULL;
    ppl_stats st = {0};
    rc = 1;
    size_t text_len = 0;
    if (!(text = cli_read_file(o.file, false, (size_t)1 << 30, &text_len, &err))) goto fail;
    if (cli_run_resolve_lora(&o.run, &err) || open_side(o.model, &o, true, &m, &err)) goto fail;
    const shimmy_vocab *v = shimmy_model_vocab(m.model);
    if (o.kl_base) {
        if (open_side(o.kl_base, &o, false, &base, &err)) goto fail;
        if (check_same_vocab(v, shimmy_model_vocab(base.model), o.kl_base, &err)) goto fail;
    }
    if (shimmy_tokenize(v, text, text_len, SHIMMY_TOKENIZE_ADD_SPECIAL, &toks, &n_toks, &err))
        goto fail;
    long n_chunk = (long)n_toks / o.ctx;
    if (n_chunk < 2) {
        shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, o.file,
                         "the text has %zu tokens: perplexity needs at least 2 chunks of "
                         "--ctx-size %ld (%ld tokens)",
                         n_toks, o.ctx, 2 * o.ctx);
        goto fail;
    }
    if (o.max_chunks > 0 && o.max_chunks < n_chunk) n_chunk = o.max_chunks;
    int32_t n_vocab = shimmy_evaluator_vocab_size(m.session);
    lp_m = malloc(sizeof(double) * (size_t)n_vocab);
    lp_b = malloc(sizeof(double) * (size_t)n_vocab);
    if (o.kl_base) st.kl = malloc(sizeof(double) * (size_t)(n_chunk * o.ctx));
    if (!lp_m || !lp_b || (o.kl_base && !st.kl)) {
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory for %d-token distributions",
                         n_vocab);
        goto fail;
    }
    int32_t bos = shimmy_vocab_bos(v);
    double t0 = cli_time_ms();
    for (long c = 0; c < n_chunk; c++) {
        int32_t *chunk = toks + c * o.ctx;
        if (shimmy_vocab_adds_bos(v) && bos >= 0) chunk[0] = bos;
        if (score_chunk(&m, o.kl_base ? &base : NULL, chunk, (int32_t)o.ctx, lp_m, lp_b, &st, &err))
            goto fail;
        double el = (cli_time_ms() - t0) / 1000.0;
        fprintf(stderr, "\rperplexity: chunk %ld/%ld, ppl %.4f, %.0f s left   ", c + 1, n_chunk,
                exp(st.nll / (double)st.count), el / (double)(c + 1) * (double)(n_chunk - c - 1));
    }
    fprintf(stderr, "\n");
    rc = report(&o, &st, n_chunk, (cli_time_ms() - t0) / 1000.0);
fail:
    if (rc == 1) cli_fail(&err);
    free(st.kl);
    free(lp_m);
    free(lp_b);
    shimmy_free(toks);
    free(text);
    close_side(&base);
    close_side(&m);
    return rc;
}
