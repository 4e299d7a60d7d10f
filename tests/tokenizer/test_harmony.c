/* tokenizer: OpenAI's harmony vocabulary (gpt-oss). With "<|return|>", "<|call|>" and "<|end|>"
 * all present, the first two end generation and "<|end|>" does not (it closes the analysis
 * message, after which the answer follows); "<|start|>", "<|channel|>", "<|message|>",
 * "<|constrain|>" and "<|end|>" are spelled out when generated text is decoded, so the server can
 * split channels. A vocabulary with "<|end|>" alone (Phi-3) keeps it as a hidden end of turn. */
#include "gguf/gguf.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

static tok_vocab *vocab(const char *dir, const char *name, const char *const *extra,
                        size_t n_extra) {
    const char *toks[16] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b"};
    size_t n = 6;
    for (size_t i = 0; i < n_extra; i++) toks[n++] = extra[i];
    float scores[16] = {0};
    int32_t types[16];
    for (size_t i = 0; i < n; i++) types[i] = i < 3 || i >= 6 ? 3 : 1; /* control, normal */
    types[0] = 2;
    char path[600];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    gguf_writer *w = NULL;
    shimmy_error err;
    CHECK(gguf_writer_new(&w, &err) == SHIMMY_OK);
    if (!w) return NULL;
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores, n);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, n);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    CHECK(gguf_writer_write(w, path, &err) == SHIMMY_OK);
    gguf_writer_free(w);
    tok_vocab *v = NULL;
    CHECK_MSG(tok_vocab_load_path(path, &v, &err) == SHIMMY_OK, "%s", err.message);
    return v;
}

static int32_t id(const tok_vocab *v, const char *text) {
    return tok_find(v, text, strlen(text));
}

static const char *shown(const tok_vocab *v, const char *text, char *buf, size_t cap) {
    size_t n = tok_piece(v, id(v, text), false, buf, cap - 1);
    buf[n < cap - 1 ? n : cap - 1] = '\0';
    return buf;
}

int main(void) {
    char dir[512];
    CHECK(test_tmpdir(dir, sizeof dir) != NULL);
    static const char *const harmony[] = {"<|start|>",   "<|end|>",       "<|message|>",
                                          "<|channel|>", "<|constrain|>", "<|return|>",
                                          "<|call|>",    "<|endoftext|>"};
    tok_vocab *v = vocab(dir, "harmony", harmony, sizeof harmony / sizeof harmony[0]);
    CHECK(v != NULL);
    if (!v) return test_finish("tokenizer/harmony");
    CHECK(tok_is_eog(v, id(v, "<|return|>")));
    CHECK(tok_is_eog(v, id(v, "<|call|>")));
    CHECK(tok_is_eog(v, id(v, "<|endoftext|>")));
    CHECK(tok_is_eog(v, 2));
    CHECK(!tok_is_eog(v, id(v, "<|end|>")));
    char buf[64];
    for (size_t i = 0; i < 5; i++) CHECK_STR(shown(v, harmony[i], buf, sizeof buf), harmony[i]);
    CHECK_STR(shown(v, "<|return|>", buf, sizeof buf), ""); /* ends generation unseen */
    /* a template's markup still becomes the tokens */
    tok_buf b = {0};
    shimmy_error err;
    tok_encode_opts o = {.parse_special = true};
    const char *s = "<|start|>assistant<|channel|>final<|message|>ab<|end|>";
    CHECK(tok_encode(v, s, strlen(s), &o, &b, &err) == SHIMMY_OK);
    CHECK(b.n > 0 && b.ids[0] == id(v, "<|start|>") && b.ids[b.n - 1] == id(v, "<|end|>"));
    tok_buf_free(&b);
    tok_vocab_free(v);

    static const char *const phi3[] = {"<|end|>", "<|assistant|>"};
    v = vocab(dir, "phi3", phi3, 2);
    CHECK(v != NULL);
    if (v) {
        CHECK(tok_is_eog(v, id(v, "<|end|>")));
        CHECK_STR(shown(v, "<|end|>", buf, sizeof buf), "");
    }
    tok_vocab_free(v);
    test_rm_rf(dir);
    return test_finish("tokenizer/harmony");
}
