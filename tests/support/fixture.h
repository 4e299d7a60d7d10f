/*
 * fixture — tiny random-weight GGUF models for everybody's tests and benchmarks.
 *
 * fixture_write_llama writes a complete, loadable model: llama.cpp's hyper-parameter keys and
 * tensor names for arch "llama", "qwen2" (q/k/v biases) or "qwen3" (per-head q/k norms), seeded
 * normal weights in F32/F16/BF16 or any type the quant module can make (Q8_0, Q4_0, Q4_K, Q6_K,
 * ...), tied or untied output, and a SYNTHETIC SentencePiece vocabulary that needs no external
 * file: <unk> <s> </s>, the 256 byte tokens <0x00>..<0xFF> (type 6), then scored pieces ("▁",
 * letters, digits, punctuation, every prefix of common words such as "▁the", then enumerated
 * letter strings) up to n_vocab.
 *
 * Invariants: the same params (seed included) give the same bytes on every machine; a tensor's
 * values depend only on the seed and its name, so changing n_layer does not change blk.0.
 * Ownership: nothing returned needs freeing. Thread-safety: functions are reentrant.
 */
#ifndef SHIMMY_FIXTURE_H
#define SHIMMY_FIXTURE_H

#include "gguf/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Specials and byte tokens: the smallest possible fixture vocabulary. */
#define FIXTURE_N_SPECIAL   3
#define FIXTURE_FIRST_PIECE (FIXTURE_N_SPECIAL + 256)
#define FIXTURE_UNK_ID      0
#define FIXTURE_BOS_ID      1
#define FIXTURE_EOS_ID      2

typedef struct fixture_params {
    const char *arch; /* "llama", "qwen2" or "qwen3" */
    const char *name; /* general.name (NULL: "fixture-<arch>") */
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff;
    uint32_t n_vocab; /* >= FIXTURE_FIRST_PIECE */
    uint32_t n_ctx;
    uint32_t head_dim; /* 0: n_embd / n_head (qwen3 may set it independently) */
    float rope_base, rms_eps;
    uint32_t weight_type;   /* the layer matrices and token_embd (gguf_ttype) */
    uint32_t output_type;   /* output.weight when untied */
    uint32_t attn_v_type;   /* blk.N.attn_v.weight (the _M mixes raise it) */
    uint32_t ffn_down_type; /* blk.N.ffn_down.weight (likewise) */
    /* llama-quantize's _M rule: attn_v_type/ffn_down_type only on the first and last eighth of
     * the layers and every third layer between; weight_type elsewhere. false: on every layer. */
    bool raise_by_layer;
    bool tied; /* no output.weight: the output projection is token_embd */
    uint64_t seed;
} fixture_params;

/* Defaults: llama, n_embd 64, 2 layers, 4 heads / 2 KV heads, n_ff 128, n_vocab 512, n_ctx 256,
 * rope base 10000, eps 1e-5, F32 everywhere, untied, seed 1. Change fields after calling. */
fixture_params fixture_params_default(void);

/* Sets the weight types from a llama-quantize style name: "F32", "F16", "BF16", "Q8_0", "Q4_0",
 * "Q4_1", "Q5_0", "Q5_1", "Q4_K_S" (all Q4_K), "Q4_K_M" (Q4_K; Q6_K for output and, on the
 * raise_by_layer layers, attn_v and ffn_down), "Q6_K", "IQ4_NL", "IQ4_XS" (every matrix). False
 * for other names (p unchanged). */
bool fixture_params_set_mix(fixture_params *p, const char *mix);

/* Uses one type for every matrix (layer matrices, token_embd, output); norms and biases stay
 * F32. Prefer this to setting weight_type alone, which leaves output/attn_v/ffn_down as they were.
 */
void fixture_params_set_type(fixture_params *p, uint32_t type);

/* Writes the model. INVALID_ARG for impossible shapes (e.g. rows not a multiple of the type's
 * block size) or an unknown arch; UNSUPPORTED when the quant module cannot make a type. */
shimmy_status fixture_write_llama(const char *path, const fixture_params *p, shimmy_error *err);

/* For a test: writes the default model (fixture_params_default) to fixture.gguf in a new
 * temporary directory; dir and path (cap bytes each) receive the directory and the file. Skips
 * the test (exit 77) when either cannot be made. */
void fixture_write_default(char *dir, size_t dir_cap, char *path, size_t path_cap);

/* Adds the synthetic tokenizer (tokenizer.* keys incl. the Llama-2 chat template) to a writer;
 * usable for vocab-only files. n_vocab >= FIXTURE_FIRST_PIECE. */
shimmy_status fixture_add_tokenizer(gguf_writer *w, uint32_t n_vocab, shimmy_error *err);

/* The Llama-2 chat template the fixtures carry. */
extern const char *const fixture_llama2_template;

#endif
