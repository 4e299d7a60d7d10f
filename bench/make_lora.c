/* bench_make_lora BASE.gguf OUT.gguf [--rank 16] [--type f16|f32] [--alpha A] [--seed N]
 *
 * Writes a GGUF LoRA adapter for BASE, as convert_lora_to_gguf.py lays it out
 * (general.type "adapter", adapter.type "lora", adapter.lora.alpha, general.architecture copied
 * from the base): a rank-R pair on all seven projections (attn_q, attn_k, attn_v, attn_output,
 * ffn_gate, ffn_up, ffn_down) of every layer. Shapes come from the base: for W [n_in, n_out],
 * lora_a is [n_in, R] and lora_b is [R, n_out]. Entries are seeded normals (A: std 1/sqrt(n_in),
 * B: std 0.02), so the delta is small and the output stays finite. Default alpha = R (scale 1). */
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "test.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: bench_make_lora BASE.gguf OUT.gguf [--rank 16] [--type f16|f32] [--alpha A]\n"
    "       [--seed 1]\n";

static const char *const projections[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                          "ffn_gate", "ffn_up", "ffn_down"};

/* Fills n values of N(0, std) in `type` (F32 or F16) into buf. */
static void fill(test_rng *rng, void *buf, size_t n, double std, uint32_t type) {
    for (size_t i = 0; i < n; i++) {
        float v = (float)(test_rng_normal(rng) * std);
        if (type == GGUF_T_F16)
            ((uint16_t *)buf)[i] = quant_f32_to_f16(v);
        else
            ((float *)buf)[i] = v;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs(usage, stderr);
        return 2;
    }
    const char *base_path = argv[1], *out_path = argv[2];
    long rank = 16;
    uint32_t type = GGUF_T_F32;
    double alpha = -1;
    unsigned long long seed = 1;
    for (int i = 3; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!val) {
            fprintf(stderr, "bench_make_lora: option %s needs a value\n%s", a, usage);
            return 2;
        }
        if (strcmp(a, "--rank") == 0) {
            rank = strtol(val, &end, 10);
            if (*end || rank < 1 || rank > 4096) {
                fprintf(stderr, "bench_make_lora: --rank must be in [1, 4096]\n");
                return 2;
            }
        } else if (strcmp(a, "--type") == 0) {
            if (strcmp(val, "f32") == 0 || strcmp(val, "F32") == 0) {
                type = GGUF_T_F32;
            } else if (strcmp(val, "f16") == 0 || strcmp(val, "F16") == 0) {
                type = GGUF_T_F16;
            } else {
                fprintf(stderr, "bench_make_lora: --type must be f16 or f32\n");
                return 2;
            }
        } else if (strcmp(a, "--alpha") == 0) {
            alpha = strtod(val, &end);
            if (*end || !(alpha > 0)) {
                fprintf(stderr, "bench_make_lora: --alpha must be a positive number\n");
                return 2;
            }
        } else if (strcmp(a, "--seed") == 0) {
            seed = strtoull(val, &end, 10);
            if (*end) {
                fprintf(stderr, "bench_make_lora: --seed must be an integer\n");
                return 2;
            }
        } else {
            fprintf(stderr, "bench_make_lora: unknown option '%s'\n%s", a, usage);
            return 2;
        }
    }
    if (alpha < 0) alpha = (double)rank;

    shimmy_error err;
    shimmy_error_clear(&err);
    gguf_file *base = NULL;
    gguf_writer *w = NULL;
    void *buf = NULL;
    int rc = 1;
    if (gguf_open_header(base_path, &base, &err) != SHIMMY_OK) goto fail;
    gguf_str arch_s;
    char arch[64], key[128];
    if (!gguf_get_str(base, "general.architecture", &arch_s)) {
        fprintf(stderr, "bench_make_lora: %s has no general.architecture\n", base_path);
        goto done;
    }
    gguf_str_copy(arch_s, arch, sizeof arch);
    uint32_t n_layer = 0;
    snprintf(key, sizeof key, "%s.block_count", arch);
    if (!gguf_get_u32(base, key, &n_layer) || n_layer == 0) {
        fprintf(stderr, "bench_make_lora: %s has no %s\n", base_path, key);
        goto done;
    }
    if (gguf_writer_new(&w, &err) != SHIMMY_OK) goto fail;
    gguf_writer_set_str(w, "general.architecture", arch);
    gguf_writer_set_str(w, "general.type", "adapter");
    gguf_writer_set_str(w, "adapter.type", "lora");
    gguf_writer_set_f32(w, "adapter.lora.alpha", (float)alpha);
    gguf_writer_set_str(w, "general.name", "shimmy-bench-lora");

    test_rng rng;
    test_rng_seed(&rng, seed);
    const size_t esize = type == GGUF_T_F16 ? 2 : 4;
    size_t cap = 0, n_pairs = 0;
    uint64_t n_params = 0;
    for (uint32_t l = 0; l < n_layer; l++) {
        for (size_t k = 0; k < sizeof projections / sizeof projections[0]; k++) {
            char wname[96], tname[112];
            snprintf(wname, sizeof wname, "blk.%u.%s.weight", l, projections[k]);
            const gguf_tensor *t = gguf_find_tensor(base, wname);
            if (!t || t->n_dims != 2) {
                fprintf(stderr, "bench_make_lora: %s has no matrix %s\n", base_path, wname);
                goto done;
            }
            const int64_t n_in = t->ne[0], n_out = t->ne[1];
            const size_t need = (size_t)(n_in > n_out ? n_in : n_out) * (size_t)rank * esize;
            if (need > cap) {
                void *nb = realloc(buf, need);
                if (!nb) {
                    fprintf(stderr, "bench_make_lora: out of memory\n");
                    goto done;
                }
                buf = nb;
                cap = need;
            }
            const int64_t ne_a[2] = {n_in, rank}, ne_b[2] = {rank, n_out};
            fill(&rng, buf, (size_t)(n_in * rank), 1.0 / sqrt((double)n_in), type);
            snprintf(tname, sizeof tname, "%s.lora_a", wname);
            gguf_writer_add_tensor(w, tname, type, 2, ne_a, buf);
            fill(&rng, buf, (size_t)(n_out * rank), 0.02, type);
            snprintf(tname, sizeof tname, "%s.lora_b", wname);
            gguf_writer_add_tensor(w, tname, type, 2, ne_b, buf);
            n_params += (uint64_t)(n_in + n_out) * (uint64_t)rank;
            n_pairs++;
        }
    }
    if (gguf_writer_write(w, out_path, &err) != SHIMMY_OK) goto fail;
    struct stat st;
    if (stat(out_path, &st) != 0) st.st_size = 0;
    printf("%s: %s LoRA for %s (%u layers): %zu pairs, rank %ld, alpha %g, %s, %" PRIu64
           " parameters, %lld bytes\n",
           out_path, arch, base_path, n_layer, n_pairs, rank, alpha,
           type == GGUF_T_F16 ? "F16" : "F32", n_params, (long long)st.st_size);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_make_lora: %s\n", err.message);
done:
    free(buf);
    gguf_writer_free(w);
    gguf_close(base);
    return rc;
}
