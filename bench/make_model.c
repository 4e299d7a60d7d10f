/* bench_make_model OUT.gguf TYPE [--n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N
 *                                 --n-vocab N --n-ctx N --head-dim N --seed N --tied --gemma3]
 *
 * Writes the benchmark model: Llama-shaped, about 0.25B parameters by default (n_embd 1024, 16
 * layers, 16 / 4 heads, n_ff 2816, 32000 tokens, untied output), random weights and the fixture's
 * synthetic tokenizer. TYPE is a llama-quantize style mix: F32, F16, BF16, Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q4_K_S, Q4_K_M (Q4_K; Q6_K for output, and for attn_v and ffn_down on the layers
 * llama-quantize's _M rule picks), Q6_K, IQ4_NL, IQ4_XS (every matrix in that type, the output
 * included: a benchmark of the type's kernels rather than llama-quantize's mix for it).
 * --gemma3 writes a Gemma-3-shaped model of about 0.27B parameters instead (Gemma 3's heads:
 * 4 / 1 of 256, n_ff 4 n_embd, tied; n_embd 1280, a multiple of 256 that K-quants need, which
 * Gemma 3 1B's 1152 is not; 10 layers, 32000 tokens; window 512 on five layers of six, q/k norms,
 * post-norms, GELU-gated FFN):
 * the qwen3 layout the fixture writes (head_dim apart from n_embd, q/k norms) renamed to gemma3,
 * with the post-norms and Gemma 3's keys added. */
#include "fixture.h"
#include "gguf/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: bench_make_model OUT.gguf TYPE [--n-embd 1024] [--n-layer 16] [--n-head 16]\n"
    "       [--n-head-kv 4] [--n-ff 2816] [--n-vocab 32000] [--n-ctx 4096] [--head-dim N]\n"
    "       [--seed 1] [--tied] [--gemma3]\n"
    "TYPE: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_S Q4_K_M Q6_K IQ4_NL IQ4_XS MXFP4\n";

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
    {"--head-dim", offsetof(fixture_params, head_dim)},
};

/* Rewrites the qwen3 file at tmp as a gemma3 file at out: keys renamed, Gemma 3's window and
 * rope keys added, post-attention and post-FFN norms (ones) added to every layer. */
static shimmy_status to_gemma3(const char *tmp, const char *out, const fixture_params *p,
                               shimmy_error *err) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    shimmy_status st = gguf_open(tmp, &f, err);
    if (!st) st = gguf_writer_new(&w, err);
    float *ones = malloc(sizeof(float) * p->n_embd);
    if (!st && !ones) st = core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    if (st) goto done;
    for (uint32_t i = 0; i < p->n_embd; i++) ones[i] = 1.0f;
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        char key[256];
        if (kv->key.len > 6 && memcmp(kv->key.data, "qwen3.", 6) == 0)
            snprintf(key, sizeof key, "gemma3.%.*s", (int)kv->key.len - 6, kv->key.data + 6);
        else
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.data);
        gguf_writer_set_value(w, key, &kv->value);
    }
    gguf_writer_set_str(w, "general.architecture", "gemma3");
    gguf_writer_set_u32(w, "gemma3.attention.sliding_window", 512);
    gguf_writer_set_f32(w, "gemma3.rope.freq_base", 1000000.0f);
    gguf_writer_set_f32(w, "gemma3.rope.freq_base_swa", 10000.0f);
    gguf_writer_set_f32(w, "gemma3.attention.layer_norm_rms_epsilon", 1e-6f);
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    const int64_t ne[1] = {p->n_embd};
    for (uint32_t il = 0; il < p->n_layer; il++) {
        char name[128];
        snprintf(name, sizeof name, "blk.%u.post_attention_norm.weight", il);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 1, ne, ones);
        snprintf(name, sizeof name, "blk.%u.post_ffw_norm.weight", il);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 1, ne, ones);
    }
    st = gguf_writer_write(w, out, err);
done:
    free(ones);
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
    bool gemma3 = false;
    for (int i = 3; i < argc; i++)
        if (strcmp(argv[i], "--gemma3") == 0) {
            gemma3 = true;
            p.name = "shimmy-bench-gemma3";
            p.arch = "qwen3";
            p.n_embd = 1280;
            p.n_layer = 10;
            p.n_head = 4;
            p.n_head_kv = 1;
            p.head_dim = 256;
            p.n_ff = 5120;
            p.tied = true;
            p.rms_eps = 1e-6f;
        }
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--gemma3") == 0) continue;
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
    uint64_t hd = p.head_dim ? p.head_dim : p.n_embd / p.n_head;
    uint64_t per_layer = (gemma3 ? 4ull : 2ull) * p.n_embd +
                         (uint64_t)p.n_embd * hd * (p.n_head + 2 * p.n_head_kv) +
                         hd * p.n_head * p.n_embd + 3ull * p.n_embd * p.n_ff;
    uint64_t params =
        per_layer * p.n_layer + (uint64_t)p.n_embd * p.n_vocab * (p.tied ? 1 : 2) + p.n_embd;
    double t0 = core_time_ms();
    shimmy_error err;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.qwen3.tmp", argv[1]);
    if (fixture_write_llama(gemma3 ? tmp : argv[1], &p, &err) != SHIMMY_OK ||
        (gemma3 && to_gemma3(tmp, argv[1], &p, &err) != SHIMMY_OK)) {
        fprintf(stderr, "bench_make_model: %s\n", err.message);
        return 1;
    }
    struct stat st;
    stat(argv[1], &st);
    printf("%s: %s, %.3fB parameters, %.1f MB, written in %.1f s\n", argv[1], argv[2],
           (double)params / 1e9, (double)st.st_size / 1e6, (core_time_ms() - t0) / 1e3);
    return 0;
}
