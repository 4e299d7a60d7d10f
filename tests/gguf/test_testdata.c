/* The shared test files, read with the gguf module and held to what their READMEs state
 * (testdata/models, testdata/vocab and testdata/lora). Skips when the data is absent. */
#include "gguf/gguf.h"
#include "test.h"

#include <stdint.h>

typedef struct type_count {
    uint32_t type;
    int count;
} type_count;

typedef struct model_spec {
    const char *file;
    const char *arch;
    uint64_t bytes; /* 0: not stated */
    size_t n_tensors;
    uint32_t n_embd, n_layer, n_vocab;
    uint32_t embd_type;     /* token_embd.weight; GGUF_T_COUNT: not stated */
    type_count matrices[3]; /* the 7 layer matrices of every layer, by type */
} model_spec;

/* models/README.md: "Files and tensor types" and the families table. Tensor counts: each layer
 * has 9 tensors (2 norms, q, k, v, o, gate, up, down) plus token_embd and output_norm (tied
 * embeddings, no output.weight); qwen2 adds 3 biases per layer, qwen3 2 head norms. */
static const model_spec models[] = {
    {"tiny-llama-spm-F32.gguf", "llama", 4920992, 20, 32, 2, 32000, GGUF_T_F32, {{GGUF_T_F32, 14}}},
    {"tiny-llama-spm-F16.gguf", "llama", 2823872, 20, 32, 2, 32000, GGUF_T_F16, {{GGUF_T_F16, 14}}},
    {"tiny-llama-spm-BF16.gguf",
     "llama",
     2823872,
     20,
     32,
     2,
     32000,
     GGUF_T_BF16,
     {{GGUF_T_BF16, 14}}},
    {"tiny-llama-spm-Q8_0.gguf",
     "llama",
     1840832,
     20,
     32,
     2,
     32000,
     GGUF_T_Q8_0,
     {{GGUF_T_Q8_0, 14}}},
    {"tiny-llama-spm-Q4_0.gguf",
     "llama",
     1316544,
     20,
     32,
     2,
     32000,
     GGUF_T_Q4_0,
     {{GGUF_T_Q4_0, 14}}},
    {"tiny-llama-spm-Q4_1.gguf",
     "llama",
     1382080,
     20,
     32,
     2,
     32000,
     GGUF_T_Q4_1,
     {{GGUF_T_Q4_1, 14}}},
    {"tiny-llama-spm-Q5_0.gguf",
     "llama",
     1447616,
     20,
     32,
     2,
     32000,
     GGUF_T_Q5_0,
     {{GGUF_T_Q5_0, 14}}},
    {"tiny-llama-spm-Q5_1.gguf",
     "llama",
     1513152,
     20,
     32,
     2,
     32000,
     GGUF_T_Q5_1,
     {{GGUF_T_Q5_1, 14}}},
    {"tiny-llama-spm-e256-Q2_K.gguf",
     "llama",
     3852864,
     20,
     256,
     2,
     32000,
     GGUF_T_Q2_K,
     {{GGUF_T_Q2_K, 8}, {GGUF_T_Q3_K, 6}}},
    {"tiny-llama-spm-e256-Q3_K_M.gguf",
     "llama",
     3995200,
     20,
     256,
     2,
     32000,
     GGUF_T_Q2_K,
     {{GGUF_T_Q3_K, 8}, {GGUF_T_Q4_K, 4}, {GGUF_T_Q5_K, 2}}},
    {"tiny-llama-spm-e256-Q4_K_M.gguf",
     "llama",
     4124992,
     20,
     256,
     2,
     32000,
     GGUF_T_Q2_K,
     {{GGUF_T_Q4_K, 12}, {GGUF_T_Q6_K, 2}}},
    {"tiny-llama-spm-e256-Q5_K_M.gguf",
     "llama",
     4251968,
     20,
     256,
     2,
     32000,
     GGUF_T_Q2_K,
     {{GGUF_T_Q5_K, 12}, {GGUF_T_Q6_K, 2}}},
    {"tiny-llama-spm-e256-Q6_K.gguf",
     "llama",
     4386880,
     20,
     256,
     2,
     32000,
     GGUF_T_Q2_K,
     {{GGUF_T_Q6_K, 14}}},
    {"tiny-llama-bpe-Q4_0.gguf",
     "llama",
     10143008,
     20,
     32,
     2,
     128256,
     GGUF_T_Q4_0,
     {{GGUF_T_Q4_0, 14}}},
    {"tiny-qwen2-Q4_0.gguf", "qwen2", 8680224, 26, 32, 2, 151936, GGUF_T_Q4_0, {{GGUF_T_Q4_0, 14}}},
    {"tiny-qwen3-F32.gguf", "qwen3", 0, 24, 32, 2, 151936, GGUF_T_F32, {{GGUF_T_F32, 14}}},
    {"docs-llama-30m-Q8_0.gguf", "llama", 0, 56, 512, 6, 32000, GGUF_T_COUNT, {{0, 0}}},
    {"docs-llama-30m-Q4_K_M.gguf", "llama", 0, 56, 512, 6, 32000, GGUF_T_COUNT, {{0, 0}}},
};

static bool is_layer_matrix(const gguf_tensor *t) {
    static const char *const kinds[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                        "ffn_gate", "ffn_up", "ffn_down"};
    char name[96], kind[64];
    int layer;
    gguf_str_copy(t->name, name, sizeof name);
    if (sscanf(name, "blk.%d.%63[a-z_].weight", &layer, kind) != 2) return false;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, kinds[i]) == 0 &&
            strlen(name) == (size_t)snprintf(NULL, 0, "blk.%d.%s.weight", layer, kinds[i]))
            return true;
    return false;
}

static void check_model(const model_spec *m) {
    char path[1024], key[128];
    if (!test_data_path(m->file, path, sizeof path)) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/%s", m->file);
        if (!test_data_path(rel, path, sizeof path)) {
            printf("absent: %s\n", rel);
            return;
        }
    }
    gguf_file *f = NULL;
    shimmy_error err;
    shimmy_status st = gguf_open(path, &f, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s: %s", m->file, err.message);
    if (st) return;
    CHECK_EQ_INT(gguf_version(f), 3);
    if (m->bytes) CHECK_MSG(gguf_file_size(f) == m->bytes, "%s size", m->file);
    CHECK_MSG(gguf_n_tensors(f) == m->n_tensors, "%s: %zu tensors", m->file, gguf_n_tensors(f));
    gguf_str arch;
    CHECK(gguf_get_str(f, "general.architecture", &arch) && gguf_str_eq(arch, m->arch));
    uint32_t v = 0;
    snprintf(key, sizeof key, "%s.embedding_length", m->arch);
    CHECK_MSG(gguf_get_u32(f, key, &v) && v == m->n_embd, "%s %s", m->file, key);
    snprintf(key, sizeof key, "%s.block_count", m->arch);
    CHECK_MSG(gguf_get_u32(f, key, &v) && v == m->n_layer, "%s %s", m->file, key);
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VT_STRING);
    CHECK_MSG(toks && toks->v.arr.count == m->n_vocab, "%s vocab", m->file);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    CHECK(emb && emb->ne[0] == m->n_embd && emb->ne[1] == m->n_vocab);
    if (emb && m->embd_type != GGUF_T_COUNT)
        CHECK_MSG(emb->type == m->embd_type, "%s: token_embd is %s", m->file,
                  gguf_type_name(emb->type));
    CHECK_MSG(gguf_find_tensor(f, "output.weight") == NULL, "%s is tied", m->file);
    CHECK(gguf_find_tensor(f, "output_norm.weight") != NULL);
    if (m->matrices[0].count) {
        int counts[GGUF_T_COUNT] = {0}, n_mat = 0;
        for (size_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            if (!is_layer_matrix(t)) continue;
            n_mat++;
            if (t->type < GGUF_T_COUNT) counts[t->type]++;
        }
        CHECK_MSG(n_mat == 7 * (int)m->n_layer, "%s: %d matrices", m->file, n_mat);
        for (int k = 0; k < 3 && m->matrices[k].count; k++)
            CHECK_MSG(counts[m->matrices[k].type] == m->matrices[k].count, "%s: %d x %s", m->file,
                      counts[m->matrices[k].type], gguf_type_name(m->matrices[k].type));
    }
    /* Every tensor's data lies inside the file, after the aligned data offset. */
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        CHECK(t->offset % gguf_alignment(f) == 0);
        CHECK(gguf_data_offset(f) + t->offset + t->nbytes <= gguf_file_size(f));
        CHECK(t == gguf_find_tensor(f, gguf_str_copy(t->name, key, sizeof key)));
    }
    gguf_close(f);
}

typedef struct vocab_spec {
    const char *file, *arch, *model, *pre; /* pre NULL: absent */
    uint32_t n_vocab;
    uint64_t merges;  /* 0: absent */
    int64_t bos, eos; /* -1: not checked */
    int add_bos;      /* -1: unset, 0/1 */
} vocab_spec;

/* vocab/README.md "Which tokenizer each file uses". */
static const vocab_spec vocabs[] = {
    {"ggml-vocab-baichuan.gguf", "baichuan", "llama", NULL, 64000, 0, 1, 2, -1},
    {"ggml-vocab-bert-bge.gguf", "bert", "bert", "bert-bge", 30522, 0, -1, -1, -2},
    {"ggml-vocab-deepseek-coder.gguf", "llama", "gpt2", "deepseek-coder", 32256, 31757, 32013,
     32014, 1},
    {"ggml-vocab-deepseek-llm.gguf", "llama", "gpt2", "deepseek-llm", 102400, 99757, 100000, 100001,
     1},
    {"ggml-vocab-falcon.gguf", "falcon", "gpt2", "falcon", 65024, 64784, 11, 11, -1},
    {"ggml-vocab-gpt-2.gguf", "gpt2", "gpt2", "gpt-2", 50257, 50000, 50256, 50256, -1},
    {"ggml-vocab-gpt-neox.gguf", "gptneox", "gpt2", NULL, 50432, 50009, 0, 0, -1},
    {"ggml-vocab-llama-bpe.gguf", "llama", "gpt2", "llama-bpe", 128256, 280147, 128000, 128001, 1},
    {"ggml-vocab-llama-spm.gguf", "llama", "llama", "default", 32000, 0, 1, 2, 1},
    {"ggml-vocab-mpt.gguf", "mpt", "gpt2", "mpt", 50432, 50009, 0, 0, -1},
    {"ggml-vocab-phi-3.gguf", "phi3", "llama", "default", 32064, 0, 1, 32000, 1},
    {"ggml-vocab-qwen2.gguf", "qwen2", "gpt2", "qwen2", 151936, 151387, 151643, 151645, 0},
    {"ggml-vocab-refact.gguf", "refact", "gpt2", "refact", 49216, 48891, 0, 0, -1},
    {"ggml-vocab-starcoder.gguf", "starcoder2", "gpt2", "starcoder", 49152, 48872, 0, 0, -1},
};

static void check_vocab(const vocab_spec *s) {
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "vocab/%s", s->file);
    if (!test_data_path(rel, path, sizeof path)) {
        printf("absent: %s\n", rel);
        return;
    }
    gguf_file *f = NULL;
    shimmy_error err;
    shimmy_status st = gguf_open_header(path, &f, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s: %s", s->file, err.message);
    if (st) return;
    gguf_str str;
    CHECK_EQ_INT(gguf_n_tensors(f), 0);
    CHECK_MSG(gguf_get_str(f, "general.architecture", &str) && gguf_str_eq(str, s->arch), "%s",
              s->file);
    CHECK_MSG(gguf_get_str(f, "tokenizer.ggml.model", &str) && gguf_str_eq(str, s->model), "%s",
              s->file);
    if (s->pre)
        CHECK_MSG(gguf_get_str(f, "tokenizer.ggml.pre", &str) && gguf_str_eq(str, s->pre), "%s",
                  s->file);
    else
        CHECK_MSG(gguf_get(f, "tokenizer.ggml.pre") == NULL, "%s has a pre", s->file);
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VT_STRING);
    CHECK_MSG(toks && toks->v.arr.count == s->n_vocab, "%s vocab", s->file);
    const gguf_value *merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_VT_STRING);
    if (s->merges)
        CHECK_MSG(merges && merges->v.arr.count == s->merges, "%s merges", s->file);
    else
        CHECK_MSG(merges == NULL, "%s has merges", s->file);
    if (!s->merges && strcmp(s->model, "llama") == 0) {
        const gguf_value *sc = gguf_get_arr(f, "tokenizer.ggml.scores", GGUF_VT_FLOAT32);
        CHECK_MSG(sc && sc->v.arr.count == s->n_vocab, "%s scores", s->file);
    }
    uint32_t id;
    if (s->bos >= 0)
        CHECK_MSG(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &id) && id == s->bos, "%s bos",
                  s->file);
    if (s->eos >= 0)
        CHECK_MSG(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &id) && id == s->eos, "%s eos",
                  s->file);
    bool b;
    if (s->add_bos == -1)
        CHECK_MSG(!gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b), "%s add_bos", s->file);
    else if (s->add_bos >= 0)
        CHECK_MSG(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) && b == (s->add_bos == 1),
                  "%s add_bos", s->file);
    gguf_close(f);
}

/* lora/README.md: adapters pair lora_a/lora_b per targeted matrix, 2 layers. */
static void check_lora(const char *file, const char *arch, float alpha, size_t n_tensors,
                       uint32_t type) {
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "lora/%s", file);
    if (!test_data_path(rel, path, sizeof path)) return;
    gguf_file *f = NULL;
    shimmy_error err;
    CHECK_MSG(gguf_open(path, &f, &err) == SHIMMY_OK, "%s: %s", file, err.message);
    if (!f) return;
    gguf_str s;
    float a = 0;
    CHECK(gguf_get_str(f, "general.architecture", &s) && gguf_str_eq(s, arch));
    CHECK(gguf_get_str(f, "general.type", &s) && gguf_str_eq(s, "adapter"));
    CHECK(gguf_get_str(f, "adapter.type", &s) && gguf_str_eq(s, "lora"));
    CHECK(gguf_get_f32(f, "adapter.lora.alpha", &a) && a == alpha);
    CHECK_EQ_INT(gguf_n_tensors(f), n_tensors);
    const gguf_tensor *la = gguf_find_tensor(f, "blk.0.attn_k.weight.lora_a");
    const gguf_tensor *lb = gguf_find_tensor(f, "blk.0.attn_k.weight.lora_b");
    CHECK(la && lb && la->type == type && la->ne[0] == 32 && la->ne[1] == lb->ne[0]);
    gguf_close(f);
}

int main(void) {
    char path[1024];
    if (!test_data_path("models", path, sizeof path) && !test_data_path("vocab", path, sizeof path))
        test_skip("SHIMMY_TESTDATA models/ and vocab/ are absent");
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) check_model(&models[i]);
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) check_vocab(&vocabs[i]);
    check_lora("lora-tiny-llama-spm-r4.gguf", "llama", 8.0f, 28, GGUF_T_F32);
    check_lora("lora-tiny-llama-spm-r8-attn.gguf", "llama", 16.0f, 16, GGUF_T_F16);
    check_lora("lora-tiny-qwen2-r4.gguf", "qwen2", 8.0f, 28, GGUF_T_F32);
    return test_finish("gguf_testdata");
}
