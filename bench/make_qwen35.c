/* bench_make_qwen35 OUT.gguf TYPE [--n-embd 1024] [--n-layer 24] [--seed 1]
 *
 * Writes the hybrid benchmark model: Qwen3.5-shaped (qwen35, the 0.8B's layout): every fourth
 * layer gated full attention (8 query heads of 256 with their output gate, 2 KV heads, per-head
 * q/k norms, rope on 64 dims), the other three Gated DeltaNet (16 key heads and 16 value heads
 * of 128, conv kernel 4), a SwiGLU FFN of 3584 on every layer, the fixture's synthetic
 * tokenizer (32000 pieces) and untied output. TYPE as bench_make_model's: the fixture's dense
 * qwen3 file of that mix gives the embeddings, norms, FFNs and output; the attention and
 * DeltaNet projections are drawn here (N(0, 1/n_in)) and quantized to the type of the file's
 * attn_q (attn_qkv, attn_gate, attn_q/k, ssm_alpha/beta) or attn_output (ssm_out, attn_output);
 * conv taps, dt bias, A and norms stay F32 as llama.cpp's converter leaves them. */
#include "fixture.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: bench_make_qwen35 OUT.gguf TYPE [--n-embd 1024] [--n-layer 24] [--seed 1]\n";

enum { NH = 8, NKV = 2, HD = 256, NROT = 64, NFF = 3584, NG = 16, NVH = 16, DK = 128, KC = 4 };

/* Normal deviates from a 64-bit LCG (Box-Muller): the same file on every machine. */
static double next_normal(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    const double u1 = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    const double u2 = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* a matrix of n_out rows of n_in, N(0, scale^2 / n_in), as type; or an F32 vector (n_out 0) */
static bool add(gguf_writer *w, uint64_t *s, const char *name, uint32_t type, int64_t n_in,
                int64_t n_out, double scale, double mean) {
    const int64_t rows = n_out ? n_out : 1;
    float *row = malloc(sizeof(float) * (size_t)n_in);
    const quant_traits *qt = quant_get(type);
    const size_t rb = quant_row_bytes(qt, n_in);
    unsigned char *data = malloc(rb * (size_t)rows);
    if (!row || !data) {
        free(row), free(data);
        return false;
    }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < n_in; i++)
            row[i] = (float)(mean + scale / sqrt((double)n_in) * next_normal(s));
        if (type == GGUF_T_F32)
            memcpy(data + (size_t)r * rb, row, rb);
        else
            (qt->quantize ? qt->quantize : qt->from_float)(row, data + (size_t)r * rb, n_in);
    }
    free(row);
    const int64_t ne[2] = {n_in, rows};
    gguf_writer_add_tensor(w, name, type, n_out ? 2 : 1, ne, data); /* copies */
    free(data);
    return true;
}

static bool layer_tensor(const char *name, const char *which) {
    const char *dot = strchr(name + 4, '.');
    return strncmp(name, "blk.", 4) == 0 && dot && strcmp(dot + 1, which) == 0;
}

/* Rewrites the dense qwen3 file at tmp as a qwen35 file at out. */
static shimmy_status to_qwen35(const char *tmp, const char *out, uint64_t seed, shimmy_error *err) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    shimmy_status st = gguf_open(tmp, &f, err);
    if (!st) st = gguf_writer_new(&w, err);
    if (st) goto done;
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        char key[256];
        if (kv->key.len > 6 && memcmp(kv->key.data, "qwen3.", 6) == 0)
            snprintf(key, sizeof key, "qwen35.%.*s", (int)kv->key.len - 6, kv->key.data + 6);
        else
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.data);
        gguf_writer_set_value(w, key, &kv->value);
    }
    gguf_writer_set_str(w, "general.architecture", "qwen35");
    gguf_writer_set_u32(w, "qwen35.rope.dimension_count", NROT);
    gguf_writer_set_u32(w, "qwen35.full_attention_interval", 4);
    /* IMRoPE sections (text: all one position); llama.cpp requires the key */
    const int32_t sections[4] = {11, 11, 10, 0};
    gguf_writer_set_arr(w, "qwen35.rope.dimension_sections", GGUF_VT_INT32, sections, 4);
    gguf_writer_set_u32(w, "qwen35.ssm.conv_kernel", KC);
    gguf_writer_set_u32(w, "qwen35.ssm.inner_size", NVH * DK);
    gguf_writer_set_u32(w, "qwen35.ssm.state_size", DK);
    gguf_writer_set_u32(w, "qwen35.ssm.time_step_rank", NVH);
    gguf_writer_set_u32(w, "qwen35.ssm.group_count", NG);
    const int64_t conv_dim = 2 * NG * DK + NVH * DK, inner = NVH * DK;
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[128], nn[160];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        if (strncmp(name, "blk.", 4) != 0) {
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
            continue;
        }
        const int il = atoi(name + 4);
        const int64_t E = t->ne[0];
        const bool attn = (il + 1) % 4 == 0;
        uint64_t s = seed * 7919u + i;
        if (layer_tensor(name, "ffn_norm.weight")) {
            snprintf(nn, sizeof nn, "blk.%d.post_attention_norm.weight", il);
            gguf_writer_add_tensor(w, nn, t->type, t->n_dims, t->ne, t->data);
        } else if (layer_tensor(name, "attn_q.weight")) { /* the whole mixer, from here */
            const uint32_t qt = t->type;
            const gguf_tensor *o = NULL;
            snprintf(nn, sizeof nn, "blk.%d.attn_output.weight", il);
            o = gguf_find_tensor(f, nn);
            const uint32_t ot = o ? o->type : qt;
            bool ok = true;
#define ADD(suffix, type, n_in, n_out, scale, mean)                                                \
    (snprintf(nn, sizeof nn, "blk.%d.%s", il, suffix),                                             \
     ok = ok && add(w, &s, nn, type, n_in, n_out, scale, mean))
            if (attn) {
                ADD("attn_q.weight", qt, E, 2 * NH * HD, 1.0, 0.0);
                ADD("attn_k.weight", qt, E, NKV * HD, 1.0, 0.0);
                ADD("attn_v.weight", qt, E, NKV * HD, 1.0, 0.0);
                ADD("attn_output.weight", ot, NH * HD, E, 1.0, 0.0);
                ADD("attn_q_norm.weight", GGUF_T_F32, HD, 0, 0.1 * sqrt(HD), 1.0);
                ADD("attn_k_norm.weight", GGUF_T_F32, HD, 0, 0.1 * sqrt(HD), 1.0);
            } else {
                ADD("attn_qkv.weight", qt, E, conv_dim, 1.0, 0.0);
                ADD("attn_gate.weight", qt, E, inner, 1.0, 0.0);
                ADD("ssm_alpha.weight", qt, E, NVH, 1.0, 0.0);
                ADD("ssm_beta.weight", qt, E, NVH, 1.0, 0.0);
                ADD("ssm_out.weight", ot, inner, E, 1.0, 0.0);
                ADD("ssm_conv1d.weight", GGUF_T_F32, KC, conv_dim, 1.0, 0.0);
                ADD("ssm_dt.bias", GGUF_T_F32, NVH, 0, 0.5 * sqrt(NVH), 0.0);
                ADD("ssm_norm.weight", GGUF_T_F32, DK, 0, 0.1 * sqrt(DK), 1.0);
                /* A = -exp(A_log), A_log around 0 */
                snprintf(nn, sizeof nn, "blk.%d.ssm_a", il);
                float a[NVH];
                for (int h = 0; h < NVH; h++) a[h] = (float)-exp(0.5 * next_normal(&s));
                const int64_t ne[1] = {NVH};
                gguf_writer_add_tensor(w, nn, GGUF_T_F32, 1, ne, a);
            }
#undef ADD
            if (!ok) {
                st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
                goto done;
            }
        } else if (!layer_tensor(name, "attn_k.weight") && !layer_tensor(name, "attn_v.weight") &&
                   !layer_tensor(name, "attn_output.weight") &&
                   !layer_tensor(name, "attn_q_norm.weight") &&
                   !layer_tensor(name, "attn_k_norm.weight")) {
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
        }
    }
    st = gguf_writer_write(w, out, err);
done:
    gguf_writer_free(w);
    gguf_close(f);
    remove(tmp);
    return st;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs(usage, stderr);
        return 2;
    }
    fixture_params p = fixture_params_default();
    p.name = "shimmy-bench-qwen35";
    p.arch = "qwen3";
    p.n_embd = 1024;
    p.n_layer = 24;
    p.n_head = NH;
    p.n_head_kv = NKV;
    p.head_dim = HD;
    p.n_ff = NFF;
    p.n_vocab = 32000;
    p.n_ctx = 4096;
    p.rms_eps = 1e-6f;
    if (!fixture_params_set_mix(&p, argv[2])) {
        fprintf(stderr, "bench_make_qwen35: unknown TYPE '%s'\n%s", argv[2], usage);
        return 2;
    }
    for (int i = 3; i < argc; i += 2) {
        char *end = NULL;
        const unsigned long v = i + 1 < argc ? strtoul(argv[i + 1], &end, 10) : 0;
        const bool num = end && !*end && v > 0 && v <= 1u << 16;
        if (!strcmp(argv[i], "--n-embd") && num && v % 256 == 0)
            p.n_embd = (uint32_t)v;
        else if (!strcmp(argv[i], "--n-layer") && num)
            p.n_layer = (uint32_t)v;
        else if (!strcmp(argv[i], "--seed") && num)
            p.seed = v;
        else {
            fprintf(stderr, "bench_make_qwen35: bad option '%s' (n-embd: a multiple of 256)\n%s",
                    argv[i], usage);
            return 2;
        }
    }
    double t0 = core_time_ms();
    shimmy_error err;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.qwen3.tmp", argv[1]);
    if (fixture_write_llama(tmp, &p, &err) != SHIMMY_OK ||
        to_qwen35(tmp, argv[1], p.seed, &err) != SHIMMY_OK) {
        fprintf(stderr, "bench_make_qwen35: %s\n", err.message);
        return 1;
    }
    struct stat st;
    stat(argv[1], &st);
    printf("%s: %s, %u layers (%u DeltaNet), %.1f MB, written in %.1f s\n", argv[1], argv[2],
           p.n_layer, p.n_layer - p.n_layer / 4, (double)st.st_size / 1e6,
           (core_time_ms() - t0) / 1e3);
    return 0;
}
