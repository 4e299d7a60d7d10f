/* bench_make_model OUT.gguf TYPE [--n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N
 *                                 --n-vocab N --n-ctx N --seed N --tied]
 *
 * Writes the benchmark model: Llama-shaped, about 0.25B parameters by default (n_embd 1024, 16
 * layers, 16 / 4 heads, n_ff 2816, 32000 tokens, untied output), random weights and the fixture's
 * synthetic tokenizer. TYPE is a llama-quantize style mix: F32, F16, BF16, Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q4_K_S, Q4_K_M (Q4_K; Q6_K for output, and for attn_v and ffn_down on the layers
 * llama-quantize's _M rule picks), Q6_K, IQ4_NL, IQ4_XS (every matrix in that type, the output
 * included: a benchmark of the type's kernels rather than llama-quantize's mix for it). */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: bench_make_model OUT.gguf TYPE [--n-embd 1024] [--n-layer 16] [--n-head 16]\n"
    "       [--n-head-kv 4] [--n-ff 2816] [--n-vocab 32000] [--n-ctx 4096] [--seed 1] [--tied]\n"
    "TYPE: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_S Q4_K_M Q6_K IQ4_NL IQ4_XS\n";

typedef struct opt {
    const char *flag;
    size_t offset; /* of a uint32_t in fixture_params */
} opt;

static const opt opts[] = {
    {"--n-embd", offsetof(fixture_params, n_embd)},
    {"--n-layer", offsetof(fixture_params, n_layer)},
    {"--n-head", offsetof(fixture_params, n_head)},
    {"--n-head-kv", offsetof(fixture_params, n_head_kv)},
    {"--n-ff", offsetof(fixture_params, n_ff)},
    {"--n-vocab", offsetof(fixture_params, n_vocab)},
    {"--n-ctx", offsetof(fixture_params, n_ctx)},
};

static bool parse_u32(const char *s, uint32_t *out) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v == 0 || v > 1u << 24) return false;
    *out = (uint32_t)v;
    return true;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs(usage, stderr);
        return 2;
    }
    fixture_params p = fixture_params_default();
    p.name = "shimmy-bench-0.25b";
    p.n_embd = 1024;
    p.n_layer = 16;
    p.n_head = 16;
    p.n_head_kv = 4;
    p.n_ff = 2816;
    p.n_vocab = 32000;
    p.n_ctx = 4096;
    if (!fixture_params_set_mix(&p, argv[2])) {
        fprintf(stderr, "bench_make_model: unknown TYPE '%s'\n%s", argv[2], usage);
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--tied") == 0) {
            p.tied = true;
            continue;
        }
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            p.seed = strtoull(argv[++i], NULL, 10);
            continue;
        }
        size_t k = 0;
        while (k < sizeof opts / sizeof opts[0] && strcmp(argv[i], opts[k].flag) != 0) k++;
        uint32_t *field =
            k < sizeof opts / sizeof opts[0] ? (uint32_t *)((char *)&p + opts[k].offset) : NULL;
        if (!field || i + 1 >= argc || !parse_u32(argv[i + 1], field)) {
            fprintf(stderr, "bench_make_model: bad option '%s'\n%s", argv[i], usage);
            return 2;
        }
        i++;
    }
    uint64_t hd = p.n_embd / p.n_head;
    uint64_t per_layer = 2ull * p.n_embd + (uint64_t)p.n_embd * hd * (p.n_head + 2 * p.n_head_kv) +
                         hd * p.n_head * p.n_embd + 3ull * p.n_embd * p.n_ff;
    uint64_t params =
        per_layer * p.n_layer + (uint64_t)p.n_embd * p.n_vocab * (p.tied ? 1 : 2) + p.n_embd;
    double t0 = core_time_ms();
    shimmy_error err;
    if (fixture_write_llama(argv[1], &p, &err) != SHIMMY_OK) {
        fprintf(stderr, "bench_make_model: %s\n", err.message);
        return 1;
    }
    struct stat st;
    stat(argv[1], &st);
    printf("%s: %s, %.3fB parameters, %.1f MB, written in %.1f s\n", argv[1], argv[2],
           (double)params / 1e9, (double)st.st_size / 1e6, (core_time_ms() - t0) / 1e3);
    return 0;
}
