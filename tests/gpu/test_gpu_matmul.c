/* The Vulkan matmul shader (src/gpu/shaders/matmul.comp, one SPIR-V per weight type) against
 * the CPU: for every type in matmul_types.txt, random weights quantized by the CPU's own
 * quantizer (random valid blocks for the codebook i-quants, which have none), run through
 * gpu_debug_matmul (the first usable device, software ones included), and each output compared
 * with the CPU reference's dequantized weights dotted in double:
 * |got - want| <= 1e-4 * sum|w||x| + 1e-6.
 *
 * Sizes: n_in 32, 256, 4096 for block types (those that are multiples of the block size), 1,
 * 31, 33, 1000 for the float types (tails of a 32-element run); n_out 1, 7, 65; n_tok 1, 3, 8,
 * 9, 17 (tiles of 8 tokens: full, partial, several); and one matrix taller than 32768 rows (the
 * dispatch's z dimension). Skips (77) when there is no usable Vulkan device. A type name as the
 * first argument runs that type alone (`gpu_test_gpu_matmul q4_k`). */
#include "gpu/gpu.h"
#include "gpu/gpu_vk.h"
#include "quant/quant.h"
#include "test.h"

#include <stdint.h>
#include <strings.h>

static const uint32_t types[] = {
    GGUF_T_F32,   GGUF_T_F16,     GGUF_T_BF16,  GGUF_T_Q4_0,    GGUF_T_Q4_1,
    GGUF_T_Q5_0,  GGUF_T_Q5_1,    GGUF_T_Q8_0,  GGUF_T_Q2_K,    GGUF_T_Q3_K,
    GGUF_T_Q4_K,  GGUF_T_Q5_K,    GGUF_T_Q6_K,  GGUF_T_IQ4_NL,  GGUF_T_IQ4_XS,
    GGUF_T_TQ1_0, GGUF_T_TQ2_0,   GGUF_T_MXFP4, GGUF_T_IQ2_XXS, GGUF_T_IQ2_XS,
    GGUF_T_IQ2_S, GGUF_T_IQ3_XXS, GGUF_T_IQ3_S, GGUF_T_IQ1_S,   GGUF_T_IQ1_M,
};
#define N_TYPES (sizeof types / sizeof types[0])

static const int64_t n_in_blocks[] = {32, 256, 4096};
static const int64_t n_in_floats[] = {1, 31, 33, 1000};
static const int64_t n_outs[] = {1, 7, 65};
static const int32_t n_toks[] = {1, 3, 8, 9, 17};

static int n_cases, n_failed_cases;

/* The types above are those CMake compiles a shader for: every line of matmul_types.txt (found
 * through $SHIMMY_SRC, which CTest sets) is one of them and each of them has a line. */
static void check_type_list(void) {
    const char *src = getenv("SHIMMY_SRC");
    if (!src || !*src) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/src/gpu/shaders/matmul_types.txt", src);
    char *text = test_read_file(path, NULL);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    if (!text) return;
    bool listed[N_TYPES] = {0};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        bool found = false;
        for (size_t k = 0; k < N_TYPES; k++) {
            const quant_traits *q = quant_get_ref(types[k]);
            if (q && strcasecmp(line, q->name) == 0) found = listed[k] = true;
        }
        CHECK_MSG(found, "matmul_types.txt lists \"%s\", which this test does not cover", line);
    }
    for (size_t k = 0; k < N_TYPES; k++)
        CHECK_MSG(listed[k], "type %u is tested but not in matmul_types.txt", (unsigned)types[k]);
    free(text);
}

/* A row of a codebook i-quant (no quantizer): random bytes, which are valid blocks (every index,
 * sign and scale code means something), with each block's fp16 scale set to a normal value in
 * [0.01, 0.02) (IQ1_M keeps it in the top nibbles of its four scale words, bytes 48..55). */
static void random_grid_row(const quant_traits *q, unsigned char *row, int64_t n_in,
                            test_rng *rng) {
    const size_t bytes = quant_row_bytes(q, n_in);
    for (size_t i = 0; i < bytes; i++) row[i] = (unsigned char)test_rng_u64(rng);
    for (size_t b = 0; b < bytes; b += q->type_size) {
        const uint16_t d = quant_f32_to_f16((float)(0.01 * (1.0 + test_rng_uniform(rng))));
        if (q->type == GGUF_T_IQ1_M) {
            for (int k = 0; k < 4; k++) {
                unsigned char *hi = row + b + 48 + 2 * k + 1; /* top byte of scale word k */
                *hi = (unsigned char)((*hi & 0x0F) | (((d >> (4 * k)) & 0xF) << 4));
            }
        } else {
            memcpy(row + b, &d, 2);
        }
    }
}

/* One product: quantize, run on the device, compare every element. */
static void run_case(const quant_traits *q, int64_t n_in, int64_t n_out, int32_t n_tok,
                     test_rng *rng) {
    const size_t row_bytes = quant_row_bytes(q, n_in);
    float *wf = malloc((size_t)(n_in * n_out) * sizeof *wf);
    float *wd = malloc((size_t)(n_in * n_out) * sizeof *wd);
    unsigned char *wq = malloc(row_bytes * (size_t)n_out);
    float *x = malloc((size_t)(n_in * n_tok) * sizeof *x);
    float *y = malloc((size_t)(n_out * n_tok) * sizeof *y);
    if (!wf || !wd || !wq || !x || !y) {
        CHECK_MSG(0, "out of memory");
        goto done;
    }
    /* rows with different offsets, so that the formats' minimums matter */
    for (int64_t r = 0; r < n_out; r++)
        for (int64_t i = 0; i < n_in; i++)
            wf[r * n_in + i] = (float)(test_rng_normal(rng) + 0.25 * (double)(r % 3 - 1));
    for (int64_t i = 0; i < n_in * n_tok; i++) x[i] = (float)test_rng_normal(rng);
    quant_from_float_fn quantize = q->quantize ? q->quantize : q->from_float;
    for (int64_t r = 0; r < n_out; r++) {
        if (quantize)
            quantize(wf + r * n_in, wq + (size_t)r * row_bytes, n_in);
        else
            random_grid_row(q, wq + (size_t)r * row_bytes, n_in, rng);
        q->to_float(wq + (size_t)r * row_bytes, wd + r * n_in, n_in);
    }
    for (int64_t i = 0; i < n_out * n_tok; i++) y[i] = NAN;

    n_cases++;
    shimmy_error err = {0};
    shimmy_status st = gpu_debug_matmul(q->type, wq, n_in, n_out, x, n_tok, y, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s n_in %lld n_out %lld n_tok %d: %s: %s", q->name, (long long)n_in,
              (long long)n_out, n_tok, shimmy_status_name(st), err.message);
    if (st != SHIMMY_OK) {
        n_failed_cases++;
        goto done;
    }
    int bad = 0;
    for (int32_t t = 0; t < n_tok; t++) {
        for (int64_t r = 0; r < n_out; r++) {
            double want = 0.0, mag = 0.0;
            for (int64_t i = 0; i < n_in; i++) {
                const double p = (double)wd[r * n_in + i] * (double)x[t * n_in + i];
                want += p;
                mag += fabs(p);
            }
            const double got = y[t * n_out + r], tol = 1e-4 * mag + 1e-6;
            test_checks++;
            if (!(fabs(got - want) <= tol)) { /* NaN fails too */
                test_failures++;
                if (bad++ < 8)
                    fprintf(stderr,
                            "FAIL %s n_in %lld n_out %lld n_tok %d: token %d row %lld: got %.9g "
                            "want %.9g (tol %.3g)\n",
                            q->name, (long long)n_in, (long long)n_out, n_tok, t, (long long)r, got,
                            want, tol);
            }
        }
    }
    if (bad) {
        n_failed_cases++;
        fprintf(stderr, "FAIL %s n_in %lld n_out %lld n_tok %d: %d of %lld outputs wrong\n",
                q->name, (long long)n_in, (long long)n_out, n_tok, bad, (long long)(n_out * n_tok));
    }
done:
    free(wf);
    free(wd);
    free(wq);
    free(x);
    free(y);
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL; /* a type name: run that type alone */
    shimmy_error err = {0};
    gpu_device_info devs[16];
    const int32_t n_dev = gpu_list(devs, 16, &err);
    int usable = -1;
    for (int32_t i = 0; i < n_dev && i < 16 && usable < 0; i++)
        if (devs[i].usable) usable = i;
    if (usable < 0) {
        char why[700];
        snprintf(why, sizeof why, "gpu/matmul: no usable Vulkan device (%s)",
                 n_dev > 0        ? devs[0].why
                 : err.message[0] ? err.message
                                  : "gpu_list found none");
        test_skip(why);
    }
    fprintf(stderr, "gpu/matmul: %d Vulkan device(s), the first usable: %s\n", (int)n_dev,
            devs[usable].name);
    check_type_list();
    test_rng rng;
    test_rng_seed(&rng, 0x5EED6A7Dull);
    for (size_t k = 0; k < N_TYPES; k++) {
        const quant_traits *q = quant_get_ref(types[k]);
        CHECK_MSG(q != NULL, "type %u missing from the quant table", (unsigned)types[k]);
        if (!q || (only && strcasecmp(only, q->name) != 0)) continue;
        const int failed_before = n_failed_cases;
        const bool is_float = q->block_size == 1;
        const int64_t *n_ins = is_float ? n_in_floats : n_in_blocks;
        const size_t n_n_in = is_float ? sizeof n_in_floats / sizeof n_in_floats[0]
                                       : sizeof n_in_blocks / sizeof n_in_blocks[0];
        for (size_t a = 0; a < n_n_in; a++) {
            if (n_ins[a] % q->block_size) continue;
            for (size_t b = 0; b < sizeof n_outs / sizeof n_outs[0]; b++)
                for (size_t c = 0; c < sizeof n_toks / sizeof n_toks[0]; c++)
                    run_case(q, n_ins[a], n_outs[b], n_toks[c], &rng);
        }
        fprintf(stderr, "gpu/matmul: %-7s %s\n", q->name,
                n_failed_cases == failed_before ? "ok" : "FAILED");
    }
    /* more row groups than one dispatch dimension holds: groups 32768.. come from
     * gl_WorkGroupID.z (one row per workgroup forced, as rows of 16k elements would get); and
     * every rows-per-workgroup split the host can pick */
    if (!only) {
        setenv("SHIMMY_GPU_TPR", "64", 1);
        run_case(quant_get_ref(GGUF_T_Q4_0), 32, 32768 + 37, 9, &rng);
        run_case(quant_get_ref(GGUF_T_F16), 33, 32768 + 5, 2, &rng);
        for (int tpr = 1; tpr <= 64; tpr *= 2) {
            char v[16];
            snprintf(v, sizeof v, "%d", tpr);
            setenv("SHIMMY_GPU_TPR", v, 1);
            run_case(quant_get_ref(GGUF_T_Q4_K), 1024, 67, 9, &rng);
            run_case(quant_get_ref(GGUF_T_F32), 1000, 130, 3, &rng);
        }
        unsetenv("SHIMMY_GPU_TPR");
    }
    fprintf(stderr, "gpu/matmul: %d products, %d failed\n", n_cases, n_failed_cases);
    return test_finish("gpu/matmul");
}
