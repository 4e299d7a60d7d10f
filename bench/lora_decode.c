/* bench_lora_decode BASE.gguf ADAPTER [-t 1] [-b 16] [-n 256] [-r 4] [-p 128] [--json]
 *
 * What an attached adapter costs, measured side by side in one process: one context decodes
 * the same tokens at the same positions once with the adapter and once without, block by block
 * (-b tokens per block; after a block the cache is cut back and the block decoded again by the
 * other side, so both see the same cache and attention length), the side that goes first
 * alternating from block to block, over -n positions, -r times. A slow minute of a shared
 * machine then hits both sides of a block alike, which wall-clock runs in separate processes
 * cannot promise. Prompt processing (-p tokens from an empty cache) alternates the same way.
 * Prints the slowdown of the medians of the per-block time ratios and of the total times.
 * Token ids are seeded pseudo-random ids: any model can be measured without its tokenizer. */
#include "lora/lora.h"
#include "model/model.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct side_times {
    double *ratio; /* per block: time with the adapter / time without */
    int n;
    double base_ms, lora_ms;
} side_times;

/* Evaluates toks[0..n) at the cache's current end with the set (or none) attached; ms. */
static double eval_ms(model_ctx *c, const lora_set *set, const int32_t *toks, int n,
                      bool one_by_one, shimmy_error *err, int *failed) {
    if (model_ctx_set_lora(c, set, err)) {
        *failed = 1;
        return 0;
    }
    const double t0 = core_time_ms();
    for (int i = 0; i < n && !*failed; i += one_by_one ? 1 : n)
        if (model_ctx_eval(c, toks + i, one_by_one ? 1 : n, 1, err)) *failed = 1;
    return core_time_ms() - t0;
}

/* One block both ways from the cache's current end; the cache ends after it either way. */
static void block(model_ctx *c, const lora_set *set, const int32_t *toks, int n, bool one_by_one,
                  bool lora_first, side_times *st, shimmy_error *err, int *failed) {
    const int32_t start = model_ctx_n_past(c);
    double t[2];
    for (int k = 0; k < 2 && !*failed; k++) {
        const bool with = (k == 0) == lora_first;
        if (k == 1) model_ctx_truncate(c, start);
        t[with] = eval_ms(c, with ? set : NULL, toks, n, one_by_one, err, failed);
    }
    if (*failed) return;
    st->ratio[st->n++] = t[1] / t[0];
    st->base_ms += t[0];
    st->lora_ms += t[1];
}

static void report(const char *what, int tokens, side_times *st, bool json, bool last) {
    const double base_tps = tokens * 1000.0 / st->base_ms, lora_tps = tokens * 1000.0 / st->lora_ms;
    const double med = (1.0 - 1.0 / test_median(st->ratio, st->n)) * 100.0;
    const double tot = (1.0 - st->base_ms / st->lora_ms) * 100.0;
    if (json)
        printf("\"%s\":{\"blocks\":%d,\"base_tokens_per_s\":%.2f,\"lora_tokens_per_s\":%.2f,"
               "\"slowdown_median_pct\":%.2f,\"slowdown_total_pct\":%.2f}%s",
               what, st->n, base_tps, lora_tps, med, tot, last ? "" : ",");
    else
        printf("%-3s %6d blocks  base %8.2f tok/s  lora %8.2f tok/s  slowdown: median of blocks "
               "%5.1f %%, total %5.1f %%\n",
               what, st->n, base_tps, lora_tps, med, tot);
}

int main(int argc, char **argv) {
    const char *base = NULL, *adapter = NULL;
    int threads = 1, blk = 16, n_pos = 256, reps = 4, n_prompt = 128;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(a, "-t") == 0) {
            threads = atoi(v), i++;
        } else if (strcmp(a, "-b") == 0) {
            blk = atoi(v), i++;
        } else if (strcmp(a, "-n") == 0) {
            n_pos = atoi(v), i++;
        } else if (strcmp(a, "-r") == 0) {
            reps = atoi(v), i++;
        } else if (strcmp(a, "-p") == 0) {
            n_prompt = atoi(v), i++;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (a[0] != '-' && !base) {
            base = a;
        } else if (a[0] != '-' && !adapter) {
            adapter = a;
        } else {
            base = NULL;
            break;
        }
    }
    if (!base || !adapter || threads < 1 || blk < 1 || n_pos < blk || reps < 1 || n_prompt < 0) {
        fprintf(stderr, "usage: bench_lora_decode BASE.gguf ADAPTER [-t 1] [-b 16] [-n 256] "
                        "[-r 4] [-p 128] [--json]\n");
        return 2;
    }
    shimmy_error err = {0};
    gguf_file *f = NULL;
    model *m = NULL;
    core_pool *pool = NULL;
    model_ctx *c = NULL;
    lora_adapter *ad = NULL;
    lora_set *set = NULL;
    int failed = 0;
    const int n_ctx = (n_pos > n_prompt ? n_pos : n_prompt) + 1;
    model_ctx_params cp = {.n_ctx = n_ctx, .n_batch = n_prompt > blk ? n_prompt : blk};
    if (gguf_open(base, &f, &err) || model_load(f, &m, &err) ||
        (threads > 1 && core_pool_new(threads, &pool, &err)) ||
        (cp.pool = pool, model_ctx_new(m, &cp, &c, &err)) ||
        lora_adapter_open(adapter, f, &ad, &err) || lora_set_new(&set, &err) ||
        lora_set_add(set, ad, 1.0f, &err))
        failed = 1;
    int32_t *toks = malloc(sizeof *toks * (size_t)n_ctx);
    const int n_blocks = reps * (n_pos / blk), n_pp = 2 * reps + 1;
    side_times tg = {.ratio = malloc(sizeof(double) * (size_t)n_blocks)},
               pp = {.ratio = malloc(sizeof(double) * (size_t)n_pp)};
    if (!toks || !tg.ratio || !pp.ratio) failed = 1;
    if (!failed) {
        test_rng rng;
        test_rng_seed(&rng, 7);
        for (int i = 0; i < n_ctx; i++)
            toks[i] = (int32_t)(test_rng_u64(&rng) % (unsigned long long)m->hp.n_vocab);
        /* one warm-up of each side: page faults of the mapping and the adapter's first touch */
        for (int w = 0; w < 2 && !failed; w++) {
            model_ctx_truncate(c, 0);
            eval_ms(c, w ? set : NULL, toks, blk, true, &err, &failed);
        }
        for (int r = 0; r < n_pp && n_prompt > 0 && !failed; r++) {
            model_ctx_truncate(c, 0);
            block(c, set, toks, n_prompt, false, r % 2, &pp, &err, &failed);
        }
        for (int r = 0, b = 0; r < reps && !failed; r++) {
            model_ctx_truncate(c, 0);
            for (int p = 0; p + blk <= n_pos && !failed; p += blk, b++)
                block(c, set, toks + p, blk, true, b % 2, &tg, &err, &failed);
        }
    }
    if (failed) {
        fprintf(stderr, "bench_lora_decode: %s\n", err.message[0] ? err.message : "out of memory");
    } else {
        if (json)
            printf("{\"model\":\"%s\",\"adapter\":\"%s\",\"threads\":%d,", base, adapter, threads);
        else
            printf("%s + %s, %d thread(s), isa %s: pp %d tokens x %d, tg blocks of %d tokens over "
                   "%d positions x %d\n",
                   base, adapter, threads, core_cpu_isa_name(), n_prompt, pp.n, blk, n_pos, reps);
        if (n_prompt > 0) report("pp", n_prompt * pp.n, &pp, json, false);
        report("tg", blk * tg.n, &tg, json, true);
        if (json) printf("}\n");
    }
    free(toks);
    free(tg.ratio);
    free(pp.ratio);
    lora_set_free(set);
    lora_adapter_unref(ad);
    model_ctx_free(c);
    core_pool_free(pool);
    model_free(m);
    gguf_close(f);
    return failed;
}
