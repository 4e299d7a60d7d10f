/* bench_embed [OUT.gguf] [-n 32] [-l 64] [-t 2] [-r 3] [--type f16|f32] [--keep]
 *
 * Embeddings per second of a BERT-base-shaped model (n_embd 768, 12 layers, 12 heads, n_ff 3072,
 * 512 positions, CLS pooling; random weights, the WordPiece vocabulary of
 * $SHIMMY_TESTDATA/vocab/ggml-vocab-bert-bge.gguf): -n inputs of -l tokens ([CLS] random ids
 * [SEP]) embedded in one call, the median of -r runs on -t threads, wall clock and process CPU
 * time. The model is written to
 * OUT.gguf (default /tmp/shimmy-bench-bert.gguf; removed afterwards unless --keep), so that
 * another engine (llama-server --embeddings, llama-embedding) can be timed on the same file. */
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define E     768
#define L     12
#define H     12
#define FF    3072
#define NPOS  512
#define VOCAB 30522

static test_rng rng;

/* A tensor of n_out rows of n_in values ~ N(0, sd^2) in `type` (F32 or F16). */
static void add(gguf_writer *w, const char *name, int64_t n_in, int64_t n_out, double sd,
                double mean, uint32_t type) {
    const size_t n = (size_t)(n_in * n_out);
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)(mean + sd * test_rng_normal(&rng));
    const int64_t ne[2] = {n_in, n_out};
    if (type == GGUF_T_F16 && n_out > 1) {
        uint16_t *h = malloc(n * sizeof *h);
        for (size_t i = 0; i < n; i++) h[i] = quant_f32_to_f16(f[i]);
        gguf_writer_add_tensor(w, name, GGUF_T_F16, 2, ne, h);
        free(h);
    } else {
        gguf_writer_add_tensor(w, name, GGUF_T_F32, n_out > 1 ? 2 : 1, ne, f);
    }
    free(f);
}

static int write_model(const char *out, uint32_t type, const char *vocab_path) {
    shimmy_error err;
    gguf_file *vf = NULL;
    if (gguf_open(vocab_path, &vf, &err)) {
        fprintf(stderr, "bench_embed: %s\n", err.message);
        return 1;
    }
    gguf_writer *w = NULL;
    if (gguf_writer_new(&w, &err)) {
        fprintf(stderr, "bench_embed: %s\n", err.message);
        gguf_close(vf);
        return 1;
    }
    gguf_writer_set_str(w, "general.architecture", "bert");
    gguf_writer_set_str(w, "general.name", "bench-bert-base");
    gguf_writer_set_u32(w, "bert.context_length", NPOS);
    gguf_writer_set_u32(w, "bert.embedding_length", E);
    gguf_writer_set_u32(w, "bert.block_count", L);
    gguf_writer_set_u32(w, "bert.feed_forward_length", FF);
    gguf_writer_set_u32(w, "bert.attention.head_count", H);
    gguf_writer_set_f32(w, "bert.attention.layer_norm_epsilon", 1e-12f);
    gguf_writer_set_bool(w, "bert.attention.causal", false);
    gguf_writer_set_u32(w, "bert.pooling_type", 2);
    gguf_writer_copy_kv(w, vf, "tokenizer.");
    test_rng_seed(&rng, 7);
    add(w, "token_embd.weight", E, VOCAB, 1.0, 0, type);
    add(w, "token_types.weight", E, 2, 0.5, 0, GGUF_T_F32);
    add(w, "position_embd.weight", E, NPOS, 0.5, 0, GGUF_T_F32);
    add(w, "token_embd_norm.weight", E, 1, 0.1, 1, GGUF_T_F32);
    add(w, "token_embd_norm.bias", E, 1, 0.02, 0, GGUF_T_F32);
    for (int il = 0; il < L; il++) {
        char n[64];
#define T(suffix, in, o, sd, mean, ty)                                                             \
    (snprintf(n, sizeof n, "blk.%d." suffix, il), add(w, n, in, o, sd, mean, ty))
        T("attn_q.weight", E, E, 1 / 27.7, 0, type);
        T("attn_k.weight", E, E, 1 / 27.7, 0, type);
        T("attn_v.weight", E, E, 1 / 27.7, 0, type);
        T("attn_output.weight", E, E, 1 / 27.7, 0, type);
        T("attn_q.bias", E, 1, 0.02, 0, GGUF_T_F32);
        T("attn_k.bias", E, 1, 0.02, 0, GGUF_T_F32);
        T("attn_v.bias", E, 1, 0.02, 0, GGUF_T_F32);
        T("attn_output.bias", E, 1, 0.02, 0, GGUF_T_F32);
        T("attn_output_norm.weight", E, 1, 0.1, 1, GGUF_T_F32);
        T("attn_output_norm.bias", E, 1, 0.02, 0, GGUF_T_F32);
        T("ffn_up.weight", E, FF, 1 / 27.7, 0, type);
        T("ffn_up.bias", FF, 1, 0.02, 0, GGUF_T_F32);
        T("ffn_down.weight", FF, E, 1 / 55.4, 0, type);
        T("ffn_down.bias", E, 1, 0.02, 0, GGUF_T_F32);
        T("layer_output_norm.weight", E, 1, 0.1, 1, GGUF_T_F32);
        T("layer_output_norm.bias", E, 1, 0.02, 0, GGUF_T_F32);
#undef T
    }
    shimmy_status st = gguf_writer_write(w, out, &err);
    gguf_writer_free(w);
    gguf_close(vf);
    if (st) fprintf(stderr, "bench_embed: %s\n", err.message);
    return st ? 1 : 0;
}

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *out = "/tmp/shimmy-bench-bert.gguf";
    int n = 32, len = 64, threads = 2, reps = 3;
    bool keep = false;
    uint32_t type = GGUF_T_F16;
    for (int i = 1; i < argc; i++) {
        const bool more = i + 1 < argc;
        if (!strcmp(argv[i], "-n") && more)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-l") && more)
            len = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && more)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && more)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--type") && more)
            type = !strcmp(argv[++i], "f32") ? GGUF_T_F32 : GGUF_T_F16;
        else if (!strcmp(argv[i], "--keep"))
            keep = true;
        else if (argv[i][0] != '-')
            out = argv[i];
        else {
            fprintf(stderr, "usage: bench_embed [OUT.gguf] [-n 32] [-l 64] [-t 2] [-r 3] "
                            "[--type f16|f32] [--keep]\n");
            return 2;
        }
    }
    if (n < 1 || len < 2 || len > NPOS || threads < 1 || reps < 1) {
        fprintf(stderr, "bench_embed: -n >= 1, -l in 2 .. %d, -t >= 1, -r >= 1\n", NPOS);
        return 2;
    }
    char vocab[1024];
    test_require_data("vocab/ggml-vocab-bert-bge.gguf", vocab, sizeof vocab);
    if (write_model(out, type, vocab)) return 1;
    shimmy_error err;
    engine_model *m = NULL;
    engine_embedder *e = NULL;
    const engine_embed_params ep = {.n_threads = threads};
    if (engine_model_open(out, NULL, &m, &err) || engine_embed_new(m, &ep, &e, &err)) {
        fprintf(stderr, "bench_embed: %s\n", err.message);
        engine_model_close(m);
        return 1;
    }
    int32_t **tok = malloc(sizeof *tok * (size_t)n), *n_tok = malloc(sizeof *n_tok * (size_t)n);
    test_rng_seed(&rng, 11);
    for (int i = 0; i < n; i++) {
        tok[i] = malloc(sizeof **tok * (size_t)len);
        n_tok[i] = len;
        tok[i][0] = 101;
        for (int k = 1; k < len - 1; k++) tok[i][k] = 1000 + (int32_t)(test_rng_u64(&rng) % 29000);
        tok[i][len - 1] = 102;
    }
    float *vec = malloc(sizeof *vec * (size_t)n * E);
    double *t = malloc(sizeof *t * (size_t)reps), *cpu = malloc(sizeof *cpu * (size_t)reps);
    const engine_embed_opts o = {.normalize = true};
    int rc = 0;
    for (int r = 0; r < reps && !rc; r++) {
        const double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (engine_embed_run(e, (const int32_t *const *)tok, n_tok, n, &o, vec, &err)) {
            fprintf(stderr, "bench_embed: %s\n", err.message);
            rc = 1;
        }
        t[r] = clock_s(CLOCK_MONOTONIC) - t0;
        cpu[r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    if (!rc) {
        qsort(t, (size_t)reps, sizeof *t, cmp_d);
        qsort(cpu, (size_t)reps, sizeof *cpu, cmp_d);
        const double med = t[reps / 2], mc = cpu[reps / 2];
        /* CPU seconds too: on a shared machine the wall clock mostly measures the other jobs */
        printf("bert-base-shaped %s, %d inputs x %d tokens, %d threads: %.3f s wall (%.1f "
               "embeddings/s), %.3f s CPU (%.1f embeddings per CPU-second)\n",
               type == GGUF_T_F16 ? "F16" : "F32", n, len, threads, med, n / med, mc, n / mc);
    }
    for (int i = 0; i < n; i++) free(tok[i]);
    free(tok);
    free(n_tok);
    free(vec);
    free(t);
    free(cpu);
    engine_embed_free(e);
    engine_model_close(m);
    if (!keep) remove(out);
    return rc;
}
