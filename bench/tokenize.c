/* bench_tokenize — tokenizer throughput, vocabulary load time and memory.
 *
 * Builds ~1 MB of mixed English documentation, code, CJK and emoji from testdata (the
 * perplexity text and the engine's tokenizer test strings), then for the Llama 3 (llama-bpe),
 * Qwen2 and Llama 2 (SPM) vocabularies reports: load time (best of 3), heap held by the
 * vocabulary, encode MB/s over the whole text in one call and in 4 KB prompts, streaming
 * decode MB/s. One thread; times are this thread's CPU time (wall clock beside them).
 *
 * usage: bench_tokenize [--mb N] [--reps N]     (needs $SHIMMY_TESTDATA or ../shared/testdata)
 */
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <malloc.h>
#include <time.h>

/* CPU time of this thread: the machine may be shared, and "MB/s on one core" is about the work
 * done, not about waiting for a core. Wall-clock figures are printed beside it. */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double mb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) mb = atof(line + 6) / 1024.0;
    if (f) fclose(f);
    return mb;
}

static const char *const vocabs[] = {"ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf",
                                     "ggml-vocab-llama-spm.gguf", "ggml-vocab-bert-bge.gguf"};

static char *build_text(double mb, size_t *len) {
    char p1[1024], p2[1024];
    if (!test_data_path("text/ppl-eval.txt", p1, sizeof p1) ||
        !test_data_path("vocab/ggml-vocab-llama-bpe.gguf.inp", p2, sizeof p2))
        return NULL;
    size_t n1, n2;
    char *doc = test_read_file(p1, &n1), *inp = test_read_file(p2, &n2);
    if (!doc || !inp) return NULL;
    /* the test strings without their separators */
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t m = 0;
    for (char *s = inp, *e; (e = strstr(s, sep)); s = e + strlen(sep)) {
        memmove(inp + m, s, (size_t)(e - s));
        m += (size_t)(e - s);
        inp[m++] = '\n';
    }
    size_t want = (size_t)(mb * 1024 * 1024), n = 0;
    char *t = malloc(want + n1 + m);
    while (t && n < want) {
        memcpy(t + n, doc, n1);
        n += n1;
        memcpy(t + n, inp, m);
        n += m;
    }
    free(doc);
    free(inp);
    *len = n;
    return t;
}

static void bench_vocab(const char *name, const char *text, size_t len, int reps) {
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "vocab/%s", name);
    if (!test_data_path(rel, path, sizeof path)) {
        printf("%-28s absent\n", name);
        return;
    }
    shimmy_error err;
    gguf_file *f = NULL;
    if (gguf_open(path, &f, &err)) {
        printf("%s: %s\n", name, err.message);
        return;
    }
    double best_load = 1e9, best_load_wall = 1e9;
    size_t heap = 0;
    tok_vocab *v = NULL;
    for (int r = 0; r < 3; r++) {
        tok_vocab_free(v);
        v = NULL;
        size_t h0 = mallinfo2().uordblks;
        double t0 = cpu_ms(), w0 = core_time_ms();
        if (tok_vocab_load(f, &v, &err)) {
            printf("%s: %s\n", name, err.message);
            gguf_close(f);
            return;
        }
        double dt = cpu_ms() - t0, dw = core_time_ms() - w0;
        if (dt < best_load) best_load = dt;
        if (dw < best_load_wall) best_load_wall = dw;
        heap = mallinfo2().uordblks - h0;
    }
    gguf_close(f);

    tok_buf b = {0};
    tok_encode_opts o = {.add_special = true, .parse_special = true};
    double best = 1e9, best_wall = 1e9;
    for (int r = 0; r < reps; r++) {
        b.n = 0;
        double t0 = cpu_ms(), w0 = core_time_ms();
        if (tok_encode(v, text, len, &o, &b, &err)) printf("%s: %s\n", name, err.message);
        double dt = cpu_ms() - t0, dw = core_time_ms() - w0;
        if (dt < best) best = dt;
        if (dw < best_wall) best_wall = dw;
    }
    /* prompts of 4 KB, as a server sees them (a vocabulary of scratch set-up per call) */
    tok_buf c = {0};
    double t0 = cpu_ms();
    for (size_t off = 0; off < len; off += 4096) {
        c.n = 0;
        size_t n = len - off < 4096 ? len - off : 4096;
        tok_encode(v, text + off, n, &o, &c, &err);
    }
    double chunked = cpu_ms() - t0;

    size_t cap = tok_decoder_max_out(v), out = 0;
    char *chunk = malloc(cap);
    tok_decoder d;
    tok_decoder_init(&d, v, false, true);
    t0 = cpu_ms();
    for (size_t i = 0; i < b.n; i++) out += tok_decoder_push(&d, b.ids[i], chunk, cap);
    out += tok_decoder_flush(&d, chunk, cap);
    double dec = cpu_ms() - t0;
    free(chunk);

    double mbytes = (double)len / (1024.0 * 1024.0);
    printf("%-26s %-4s n_vocab %6d  load %6.1f ms (wall %6.1f)  heap %5.1f MB (tok_vocab_bytes "
           "%5.1f MB)\n",
           name, (const char *const[]){"spm", "bpe", "wpm"}[tok_vocab_algo(v)], tok_n_vocab(v),
           best_load, best_load_wall, (double)heap / (1024.0 * 1024.0),
           (double)tok_vocab_bytes(v) / (1024.0 * 1024.0));
    printf("%-26s encode %6.1f MB/s (wall %5.1f), 4 KB prompts %6.1f MB/s, %zu tokens (%.2f "
           "bytes/token), streaming decode %6.1f MB/s\n",
           "", mbytes / (best / 1000.0), mbytes / (best_wall / 1000.0), mbytes / (chunked / 1000.0),
           b.n, (double)len / (double)b.n, (double)out / (1024.0 * 1024.0) / (dec / 1000.0));
    tok_buf_free(&b);
    tok_buf_free(&c);
    tok_vocab_free(v);
}

int main(int argc, char **argv) {
    double mb = 1.0;
    int reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mb") == 0)
            mb = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
    }
    if (!getenv("SHIMMY_TESTDATA")) setenv("SHIMMY_TESTDATA", "../shared/testdata", 0);
    if (mb <= 0 || mb > 1024 || reps < 1) {
        fprintf(stderr, "usage: bench_tokenize [--mb N (0..1024]] [--reps N]\n");
        return 2;
    }
    size_t len = 0;
    char *text = build_text(mb, &len);
    if (!text) {
        fprintf(stderr, "bench_tokenize: test data not found (set SHIMMY_TESTDATA)\n");
        return 1;
    }
    printf("text: %.2f MB of documentation, code and multilingual test strings; best of %d\n",
           (double)len / (1024.0 * 1024.0), reps);
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++)
        bench_vocab(vocabs[i], text, len, reps);
    printf("peak RSS %.1f MB (the text, one vocabulary at a time, its mapped file)\n",
           peak_rss_mb());
    free(text);
    return 0;
}
