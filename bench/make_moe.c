/* bench_make_moe OUT.gguf TYPE [--n-expert 8] [--n-used 2] [--n-ff-exp 2304] [--n-embd 1024]
 *                              [--n-layer 16] [--seed 1]
 *
 * Writes the mixture-of-experts benchmark model: Qwen3-MoE-shaped (qwen3moe: q/k norms, 16 / 4
 * heads of 64, softmax router over n_expert experts of which n_used run per token, renormalised
 * weights), about 1.0B parameters by default of which 0.3B are active per token, the fixture's
 * random weights and synthetic tokenizer, untied output. TYPE as bench_make_model's (Q4_K_M:
 * Q4_K experts and attention, Q6_K output and, on llama-quantize's _M layers, attn_v and the
 * expert down matrices). The experts are a dense fixture's FFN of n_expert * n_ff_exp rows cut
 * into n_expert blocks (gate/up: consecutive row blocks; down: consecutive column blocks, whole
 * quantization blocks each), and the routers (F32, as llama-quantize leaves them) are drawn
 * here. */
#include "fixture.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: bench_make_moe OUT.gguf TYPE [--n-expert 8] [--n-used 2] [--n-ff-exp 2304]\n"
    "       [--n-embd 1024] [--n-layer 16] [--seed 1]\n";

/* Normal deviates from a 64-bit LCG (Box-Muller): the same file on every machine. */
static double next_normal(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    const double u1 = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    const double u2 = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static bool is_ffn(const char *name, const char *which) {
    const char *dot = strchr(name + 4, '.');
    return strncmp(name, "blk.", 4) == 0 && dot && strcmp(dot + 1, which) == 0;
}

/* Rewrites the dense qwen3 file at tmp as a qwen3moe file at out. */
static shimmy_status to_moe(const char *tmp, const char *out, uint32_t n_expert, uint32_t n_used,
                            uint32_t n_ff_exp, uint64_t seed, shimmy_error *err) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    unsigned char *down = NULL;
    float *router = NULL;
    shimmy_status st = gguf_open(tmp, &f, err);
    if (!st) st = gguf_writer_new(&w, err);
    if (st) goto done;
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        char key[256];
        if (kv->key.len > 6 && memcmp(kv->key.data, "qwen3.", 6) == 0)
            snprintf(key, sizeof key, "qwen3moe.%.*s", (int)kv->key.len - 6, kv->key.data + 6);
        else
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.data);
        gguf_writer_set_value(w, key, &kv->value);
    }
    gguf_writer_set_str(w, "general.architecture", "qwen3moe");
    gguf_writer_set_u32(w, "qwen3moe.expert_count", n_expert);
    gguf_writer_set_u32(w, "qwen3moe.expert_used_count", n_used);
    gguf_writer_set_u32(w, "qwen3moe.expert_feed_forward_length", n_ff_exp);
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        const bool gate = is_ffn(name, "ffn_gate.weight"), up = is_ffn(name, "ffn_up.weight");
        if (!gate && !up && !is_ffn(name, "ffn_down.weight")) {
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
            continue;
        }
        const int64_t E = gate || up ? t->ne[0] : t->ne[1];
        char ename[160];
        snprintf(ename, sizeof ename, "%.*s_exps.weight", (int)(strstr(name, ".weight") - name),
                 name);
        if (gate || up) { /* expert e = rows [e*F, (e+1)*F): the same bytes, one more dim */
            const int64_t ne[3] = {E, n_ff_exp, n_expert};
            gguf_writer_add_tensor(w, ename, t->type, 3, ne, t->data);
        } else { /* down row r of expert e = elements [e*F, (e+1)*F) of dense row r */
            const quant_traits *qt = quant_get(t->type);
            const size_t rb = quant_row_bytes(qt, t->ne[0]), eb = quant_row_bytes(qt, n_ff_exp);
            free(down);
            down = malloc(rb * (size_t)E);
            if (!down) {
                st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
                goto done;
            }
            for (uint32_t e = 0; e < n_expert; e++)
                for (int64_t r = 0; r < E; r++)
                    memcpy(down + ((size_t)e * (size_t)E + (size_t)r) * eb,
                           (const unsigned char *)t->data + (size_t)r * rb + e * eb, eb);
            const int64_t ne[3] = {n_ff_exp, E, n_expert};
            gguf_writer_add_tensor(w, ename, t->type, 3, ne, down);
        }
        if (gate) { /* the router, N(0, 1/n_embd) */
            free(router);
            router = malloc(sizeof(float) * (size_t)E * n_expert);
            if (!router) {
                st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
                goto done;
            }
            uint64_t s = seed * 7919u + i;
            for (int64_t k = 0; k < E * (int64_t)n_expert; k++)
                router[k] = (float)(next_normal(&s) / sqrt((double)E));
            snprintf(ename, sizeof ename, "%.*s_inp.weight", (int)(strstr(name, ".weight") - name),
                     name);
            const int64_t ne[2] = {E, n_expert};
            gguf_writer_add_tensor(w, ename, GGUF_T_F32, 2, ne, router);
        }
    }
    st = gguf_writer_write(w, out, err);
done:
    free(down);
    free(router);
    gguf_writer_free(w);
    gguf_close(f);
    remove(tmp);
    return st;
}

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
    p.name = "shimmy-bench-moe-1b";
    p.arch = "qwen3";
    p.n_embd = 1024;
    p.n_layer = 16;
    p.n_head = 16;
    p.n_head_kv = 4;
    p.head_dim = 64;
    p.n_vocab = 32000;
    p.n_ctx = 4096;
    p.rms_eps = 1e-6f;
    uint32_t n_expert = 8, n_used = 2, n_ff_exp = 2304;
    if (!fixture_params_set_mix(&p, argv[2])) {
        fprintf(stderr, "bench_make_moe: unknown TYPE '%s'\n%s", argv[2], usage);
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        uint32_t *field = !strcmp(argv[i], "--n-expert")   ? &n_expert
                          : !strcmp(argv[i], "--n-used")   ? &n_used
                          : !strcmp(argv[i], "--n-ff-exp") ? &n_ff_exp
                          : !strcmp(argv[i], "--n-embd")   ? &p.n_embd
                          : !strcmp(argv[i], "--n-layer")  ? &p.n_layer
                                                           : NULL;
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            p.seed = strtoull(argv[++i], NULL, 10);
            continue;
        }
        if (!field || i + 1 >= argc || !parse_u32(argv[i + 1], field)) {
            fprintf(stderr, "bench_make_moe: bad option '%s'\n%s", argv[i], usage);
            return 2;
        }
        i++;
    }
    if (n_used > n_expert) {
        fprintf(stderr, "bench_make_moe: --n-used %u exceeds --n-expert %u\n", n_used, n_expert);
        return 2;
    }
    p.n_ff = n_expert * n_ff_exp;
    const uint64_t hd = p.head_dim, E = p.n_embd;
    const uint64_t attn = E * hd * (p.n_head + 2 * p.n_head_kv) + hd * p.n_head * E;
    const uint64_t per_layer = 2 * E + 2 * hd + attn + E * n_expert + 3 * E * p.n_ff;
    const uint64_t params = per_layer * p.n_layer + E * p.n_vocab * 2 + E;
    const uint64_t active =
        (attn + E * n_expert + 3 * E * n_ff_exp * n_used) * p.n_layer + E * p.n_vocab;
    double t0 = core_time_ms();
    shimmy_error err;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.qwen3.tmp", argv[1]);
    if (fixture_write_llama(tmp, &p, &err) != SHIMMY_OK ||
        to_moe(tmp, argv[1], n_expert, n_used, n_ff_exp, p.seed, &err) != SHIMMY_OK) {
        fprintf(stderr, "bench_make_moe: %s\n", err.message);
        return 1;
    }
    struct stat st;
    stat(argv[1], &st);
    printf("%s: %s, %.3fB parameters (%.3fB active per token), %u experts, %u used, %.1f MB, "
           "written in %.1f s\n",
           argv[1], argv[2], (double)params / 1e9, (double)active / 1e9, n_expert, n_used,
           (double)st.st_size / 1e6, (core_time_ms() - t0) / 1e3);
    return 0;
}
