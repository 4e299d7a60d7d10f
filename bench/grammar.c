/* bench_grammar [--quick | --decode]: the structured-output engine's costs.
 *
 *  1. per vocabulary (Qwen2 152k, Llama-3 128k): building the token trie;
 *  2. per grammar (GBNF and JSON Schemas through the converter): compile time (uncached, median
 *     of 20), then along a valid document tokenized by that vocabulary, per token:
 *       - full mask: the trie walk with the mask cache cleared (the worst case, what MaskBench
 *         measures), average, p99 and max; each grammar starts on a fresh copy of the
 *         vocabulary (no slices from earlier grammars), and of BENCH_GRAMMAR_RUNS such runs
 *         (3; --quick 1) the fastest counts per token;
 *       - engine path: what a generation pays per token, with a random-model adversary: the
 *         "sampled" token is the document's next token half of the time and a uniformly random
 *         one otherwise; it is checked, the mask is computed (cache allowed) only when it is
 *         refused, then the token is accepted. Average and p99;
 *  3. end to end on docs-llama-30m: per-token decode time with and without a grammar.
 * Test data from SHIMMY_TESTDATA. Mask times are the thread's CPU time; decode times both
 * wall-clock and CPU time. BENCH_GRAMMAR_ONLY=substring picks grammars, BENCH_GRAMMAR_TRACE=1
 * prints every token's full mask, BENCH_GRAMMAR_REPEAT=n walks each n times (for a profiler). */
#include "grammar/grammar.h"
#include "grammar/schema.h"
#include "shimmy.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const json_gbnf =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\")\n"
    "object ::= \"{\" ws ( string \":\" ws value ( \",\" ws string \":\" ws value )* )? ws \"}\"\n"
    "array  ::= \"[\" ws ( value ( \",\" ws value )* )? ws \"]\"\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1f] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" "
    "[0-9a-fA-F]{4}) )* \"\\\"\"\n"
    "number ::= \"-\"? (\"0\" | [1-9] [0-9]*) (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)?\n"
    "ws     ::= [ \\t\\n]{0,2}\n";

typedef struct gcase {
    const char *name;
    const char *gbnf;   /* or */
    const char *schema; /* JSON Schema text, converted first */
    const char *doc;    /* a valid output */
} gcase;

static const gcase cases[] = {
    {"json (GBNF)", NULL, NULL,
     "{\"model\": \"shimmy\", \"tokens\": [1, 2, 3], \"nested\": {\"ok\": true, \"pi\": 3.14159, "
     "\"note\": \"Structured outputs keep the model inside the grammar: \\\"quoted\\\" text, "
     "unicode \\u00e9 and \xE2\x82\xAC signs.\"}, \"list\": [{\"a\": null}, {\"b\": -12e3}]}"},
    {"schema: person", NULL,
     "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,"
     "\"maxLength\":40},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},\"email\":{"
     "\"type\":\"string\",\"format\":\"email\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":"
     "\"string\"},\"maxItems\":5}},\"required\":[\"name\",\"age\"],\"additionalProperties\":false}",
     "{\"name\":\"Ada Lovelace\",\"age\":36,\"email\":\"ada@example.org\",\"tags\":[\"math\","
     "\"poetry\"]}"},
    {"schema: order", NULL,
     "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}-[0-"
     "9]{4}$\"},\"status\":{\"enum\":[\"pending\",\"shipped\",\"delivered\"]},\"items\":{\"type\":"
     "\"array\",\"minItems\":1,\"items\":{\"type\":\"object\",\"properties\":{\"sku\":{\"type\":"
     "\"string\"},\"qty\":{\"type\":\"integer\",\"minimum\":1},\"price\":{\"type\":\"number\"}},"
     "\"required\":[\"sku\",\"qty\",\"price\"],\"additionalProperties\":false}},\"created\":{"
     "\"type\":\"string\",\"format\":\"date-time\"}},\"required\":[\"id\",\"status\",\"items\"],"
     "\"additionalProperties\":false}",
     "{\"id\":\"ABC-1234\",\"status\":\"shipped\",\"items\":[{\"sku\":\"X-1\",\"qty\":2,\"price\":"
     "9.99},{\"sku\":\"Y-22\",\"qty\":1,\"price\":120.5}],\"created\":\"2026-12-07T02:00:00Z\"}"},
    {"schema: any object", NULL, "{\"type\":\"object\"}",
     "{\"query\":\"weather in Paris\",\"units\":\"metric\",\"days\":[1,2,3],\"extra\":{\"a\":"
     "[true,false,null],\"b\":\"text with spaces and punctuation, like this one.\"}}"},
    {"csv lines (GBNF)",
     "root ::= line{1,40}\nline ::= [A-Za-z ]{1,24} \",\" [0-9]{1,6} \",\" (\"yes\" | \"no\") "
     "\"\\n\"\n",
     NULL, "Alice Smith,1234,yes\nBob,99,no\nCarol Jones,500000,yes\nDan,7,no\n"},
    {"prose (GBNF)", "root ::= [^{}<>]{1,600} \".\"", NULL,
     "The quick brown fox jumps over the lazy dog, while the grammar engine checks every token "
     "against a set of stacks and the mask cache remembers the state it saw a moment ago."},
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* CPU time of this thread: the machine these run on is shared, and wall-clock per-token times
 * of a few microseconds mostly measure the scheduler */
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *case_gbnf(const gcase *c) {
    if (c->gbnf) return strdup(c->gbnf ? c->gbnf : json_gbnf);
    if (!c->schema) return strdup(json_gbnf);
    char *g = NULL;
    shimmy_error err = {0};
    if (grammar_schema_to_gbnf(c->schema, strlen(c->schema), &g, &err)) {
        fprintf(stderr, "%s: %s\n", c->name, err.message);
        return NULL;
    }
    return g;
}

static bool trace;
static int repeat = 1;   /* BENCH_GRAMMAR_REPEAT: walks per token (for a profiler) */
static const char *only; /* BENCH_GRAMMAR_ONLY: the cases whose name contains it */
static int runs = 3;     /* BENCH_GRAMMAR_RUNS: runs per grammar, the fastest per token counts */

static void bench_vocab(const char *file, bool quick) {
    char path[512];
    const char *p = test_data_path(file, path, sizeof path);
    if (!p) {
        printf("%s: not found (SHIMMY_TESTDATA)\n", file);
        return;
    }
    tok_vocab *v = NULL;
    grammar_vocab *gv = NULL;
    shimmy_error err = {0};
    if (tok_vocab_load_path(p, &v, &err)) {
        printf("%s: %s\n", file, err.message);
        return;
    }
    double t0 = now_ms();
    if (grammar_vocab_new(v, &gv, &err)) {
        printf("%s: %s\n", file, err.message);
        tok_vocab_free(v);
        return;
    }
    const int32_t nv = tok_n_vocab(v);
    printf("\n%s: %d tokens, trie of %zu nodes built in %.1f ms\n", file, nv,
           grammar_vocab_trie_nodes(gv), now_ms() - t0);
    printf("%-20s %8s %6s | %9s %9s %9s | %9s %9s %7s | %8s\n", "grammar", "compile", "tokens",
           "full avg", "full p99", "full max", "path avg", "path p99", "masks", "visits");
    uint64_t *mask = malloc(((size_t)nv + 63) / 64 * 8);
    test_rng r;
    test_rng_seed(&r, 42);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const gcase *c = &cases[ci];
        if (only && !strstr(c->name, only)) continue;
        double comp[20];
        const int reps = quick ? 3 : 20;
        char *text = NULL;
        grammar *g = NULL;
        for (int i = 0; i < reps; i++) {
            double a = now_ms();
            free(text);
            text = case_gbnf(c);
            grammar_unref(g);
            g = NULL;
            if (text && grammar_compile(text, strlen(text), &g, &err)) {
                printf("%s: does not compile: %s\n", c->name, err.message);
                break;
            }
            comp[i] = now_ms() - a;
        }
        if (!g) {
            free(text);
            continue;
        }
        const double compile_ms = pct(comp, (size_t)reps, 0.5);
        tok_buf toks = {0};
        tok_encode(v, c->doc, strlen(c->doc), NULL, &toks, &err);
        double *full = calloc(toks.n + 1, sizeof *full), *path_ms = calloc(toks.n + 1, 8);
        double *f1 = calloc(toks.n + 1, sizeof *f1), *p1 = calloc(toks.n + 1, sizeof *p1);
        size_t n = 0;
        uint64_t masks = 0;
        bool ok = full && path_ms && f1 && p1;
        grammar_stats gs = {0};
        /* each run on a vocabulary of its own, so that every run (and every grammar) starts
         * with no slices: per token, the fastest run counts (the others' noise is the other
         * jobs of a shared machine) */
        for (int run = 0; ok && run < runs; run++) {
            grammar_vocab *rv = NULL;
            grammar_matcher *m = NULL, *m2 = NULL;
            ok = grammar_vocab_new(v, &rv, &err) == SHIMMY_OK &&
                 grammar_matcher_new(g, rv, &m, &err) == SHIMMY_OK &&
                 grammar_matcher_new(g, rv, &m2, &err) == SHIMMY_OK;
            test_rng_seed(&r, 42);
            n = 0;
            masks = 0;
            for (size_t i = 0; ok && i < toks.n; i++) {
                grammar_matcher_clear_cache(m);
                double a = now_ms();
                grammar_stats s0, s1;
                grammar_matcher_stats(m, &s0);
                const int64_t allowed = grammar_matcher_mask(m, mask, &err);
                ok = allowed > 0;
                f1[n] = now_ms() - a;
                for (int k = 1; k < repeat; k++) { /* profiling: the same walk again, untimed */
                    grammar_matcher_clear_cache(m);
                    grammar_matcher_mask(m, mask, NULL);
                }
                if (trace) {
                    grammar_matcher_stats(m, &s1);
                    char piece[64];
                    size_t pl = tok_piece(v, toks.ids[i], false, piece, sizeof piece - 1);
                    piece[pl < sizeof piece ? pl : sizeof piece - 1] = 0;
                    printf("  %-12.12s %3zu %8.3fms allowed %6lld visits %6llu chains %4llu "
                           "slice %d next '%s'\n",
                           c->name, i, f1[n], (long long)allowed,
                           (unsigned long long)(s1.trie_visits - s0.trie_visits),
                           (unsigned long long)(s1.chain_takes - s0.chain_takes),
                           (int)(s1.slice_masks - s0.slice_masks), piece);
                }
                /* the engine path on the second matcher (its cache persists) */
                const int32_t sampled =
                    test_rng_u64(&r) % 2 ? toks.ids[i] : (int32_t)(test_rng_u64(&r) % (uint64_t)nv);
                a = now_ms();
                if (!grammar_matcher_allows_token(m2, sampled)) {
                    grammar_matcher_mask(m2, mask, NULL);
                    masks++;
                }
                ok = ok && grammar_matcher_accept_token(m2, toks.ids[i], &err) == SHIMMY_OK;
                p1[n] = now_ms() - a;
                ok = ok && grammar_matcher_accept_token(m, toks.ids[i], &err) == SHIMMY_OK;
                full[n] = run == 0 || f1[n] < full[n] ? f1[n] : full[n];
                path_ms[n] = run == 0 || p1[n] < path_ms[n] ? p1[n] : path_ms[n];
                n++;
            }
            if (m) grammar_matcher_stats(m, &gs);
            grammar_matcher_free(m);
            grammar_matcher_free(m2);
            grammar_vocab_free(rv);
        }
        if (!ok || n == 0) {
            printf("%-20s the document does not fit the grammar at some token: %s\n", c->name,
                   err.message);
        } else {
            double fs = 0, ps = 0;
            for (size_t i = 0; i < n; i++) fs += full[i], ps += path_ms[i];
            const double fmax = pct(full, n, 1.0), f99 = pct(full, n, 0.99);
            printf("%-20s %6.2fms %6zu | %7.3fms %7.3fms %7.3fms | %7.4fms %7.4fms %7llu | %8.0f\n",
                   c->name, compile_ms, n, fs / (double)n, f99, fmax, ps / (double)n,
                   pct(path_ms, n, 0.99), (unsigned long long)masks,
                   (double)gs.trie_visits / (double)(gs.masks ? gs.masks : 1));
        }
        free(full);
        free(path_ms);
        free(f1);
        free(p1);
        tok_buf_free(&toks);
        grammar_unref(g);
        free(text);
    }
    free(mask);
    grammar_vocab_free(gv);
    tok_vocab_free(v);
}

static shimmy_next drop(const char *piece, size_t len, void *user) {
    (void)piece, (void)len, (void)user;
    return SHIMMY_CONTINUE;
}

/* Per-token decode time (ms) of n tokens, median of reps runs: wall-clock, and the process's CPU
 * time (every thread's; on a shared machine the wall clock mostly measures the other jobs, while
 * the grammar's work adds CPU time on the generating thread only) */
typedef struct dtime {
    double wall, cpu;
} dtime;

static double process_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static dtime decode_ms(shimmy_evaluator *ev, const int32_t *prompt, size_t n_prompt,
                       const char *gbnf, int n, int reps, int *made) {
    double w[8], c[8];
    for (int i = 0; i < reps; i++) {
        shimmy_gen_options o = {.max_tokens = n,
                                .temperature = 0.8f,
                                .top_k = 40,
                                .seed = 1,
                                .ignore_eos = true,
                                .grammar = gbnf};
        shimmy_eval_output out = {0};
        shimmy_error err = {0};
        const double c0 = process_ms();
        if (shimmy_evaluator_generate(ev, prompt, n_prompt, &o, drop, NULL, &out, &err)) {
            printf("decode: %s\n", err.message);
            return (dtime){-1, -1};
        }
        *made = out.result.completion_tokens;
        const int k = out.result.completion_tokens > 1 ? out.result.completion_tokens : 1;
        w[i] = out.result.gen_ms / (k > 1 ? k - 1 : 1);
        c[i] = (process_ms() - c0) / k;
    }
    return (dtime){pct(w, (size_t)reps, 0.5), pct(c, (size_t)reps, 0.5)};
}

static void bench_decode(bool quick) {
    char path[512];
    const char *p = test_data_path("models/docs-llama-30m-Q4_K_M.gguf", path, sizeof path);
    if (!p) return;
    shimmy_model_config c = {.name = "docs", .base_path = p, .ctx_len = 1024};
    shimmy_spec *spec = NULL;
    shimmy_model *m = NULL;
    shimmy_evaluator *ev = NULL;
    shimmy_error err = {0};
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    const char *text = "Write the answer as JSON. The capital of France is";
    /* one thread: its CPU time is then all the work of a token, the grammar's included */
    const shimmy_evaluator_params one_thread = {.threads = 1};
    if (shimmy_spec_from_config(&c, &spec, &err) || shimmy_model_load(spec, &m, &err) ||
        shimmy_evaluator_new(m, &one_thread, &ev, &err) ||
        shimmy_tokenize(shimmy_model_vocab(m), text, strlen(text), SHIMMY_TOKENIZE_ADD_SPECIAL,
                        &prompt, &n_prompt, &err)) {
        printf("docs-llama-30m: %s\n", err.message);
    } else {
        const int n = quick ? 32 : 200, reps = quick ? 1 : 9;
        /* grammars that never complete, so every run makes all n tokens: free text inside an
         * open JSON string (the check passes unless the model wants a quote or a newline), and a
         * list of short quoted items (a mask at nearly every item boundary) */
        const char *prose = "root ::= \"{\\\"answer\\\": \\\"\" ([^\"\\\\\\x00-\\x1f] | "
                            "\"\\\\\" [\"\\\\nt])*";
        const char *list = "root ::= \"[\" item (\",\" \" \"? item)*\n"
                           "item ::= \"\\\"\" [a-zA-Z ,.]{1,40} \"\\\"\"";
        int made0 = 0, made1 = 0, made2 = 0;
        decode_ms(ev, prompt, n_prompt, NULL, 8, 1, &made0); /* warm-up */
        /* interleaved, so that the other jobs' drift falls on all three alike */
        double bw[16], bc[16], cw[16], cc[16], jw[16], jc[16];
        for (int r = 0; r < reps; r++) {
            dtime t = decode_ms(ev, prompt, n_prompt, NULL, n, 1, &made0);
            bw[r] = t.wall, bc[r] = t.cpu;
            t = decode_ms(ev, prompt, n_prompt, prose, n, 1, &made1);
            cw[r] = t.wall, cc[r] = t.cpu;
            t = decode_ms(ev, prompt, n_prompt, list, n, 1, &made2);
            jw[r] = t.wall, jc[r] = t.cpu;
        }
        const size_t nr = (size_t)reps;
        const dtime base = {pct(bw, nr, 0.5), pct(bc, nr, 0.5)};
        const dtime con = {pct(cw, nr, 0.5), pct(cc, nr, 0.5)};
        const dtime js = {pct(jw, nr, 0.5), pct(jc, nr, 0.5)};
        printf("\ndocs-llama-30m decode on one thread, per token (median of %d runs; wall-clock | "
               "process CPU time):\n",
               reps);
        printf("  unconstrained           %.3f ms | %.3f ms (%d tokens)\n", base.wall, base.cpu,
               made0);
        printf("  open JSON string        %.3f ms | %.3f ms (%d tokens)  slowdown %+.1f%% | "
               "%+.1f%%\n",
               con.wall, con.cpu, made1, 100.0 * (con.wall - base.wall) / base.wall,
               100.0 * (con.cpu - base.cpu) / base.cpu);
        printf("  list of quoted items    %.3f ms | %.3f ms (%d tokens)  slowdown %+.1f%% | "
               "%+.1f%%\n",
               js.wall, js.cpu, made2, 100.0 * (js.wall - base.wall) / base.wall,
               100.0 * (js.cpu - base.cpu) / base.cpu);
    }
    shimmy_free(prompt);
    shimmy_evaluator_free(ev);
    shimmy_model_unref(m);
    shimmy_spec_free(spec);
}

int main(int argc, char **argv) {
    const bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const bool decode_only = argc > 1 && strcmp(argv[1], "--decode") == 0;
    trace = getenv("BENCH_GRAMMAR_TRACE") != NULL;
    only = getenv("BENCH_GRAMMAR_ONLY");
    if (getenv("BENCH_GRAMMAR_REPEAT")) repeat = atoi(getenv("BENCH_GRAMMAR_REPEAT"));
    if (quick) runs = 1;
    if (getenv("BENCH_GRAMMAR_RUNS")) runs = atoi(getenv("BENCH_GRAMMAR_RUNS"));
    if (runs < 1) runs = 1;
    if (!decode_only) {
        bench_vocab("vocab/ggml-vocab-qwen2.gguf", quick);
        bench_vocab("vocab/ggml-vocab-llama-bpe.gguf", quick);
    }
    if (!only) bench_decode(quick);
    return 0;
}
