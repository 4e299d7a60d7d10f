/* Special tokens: ids from metadata, the engine's text-based detection of end-of-turn / FIM
 * tokens, the end-of-generation set, the list of tokens matched in input text, and the few
 * per-model attribute rules (strip whitespace around special tokens). */
#include "tok_impl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct id_key {
    const char *key;
    size_t field; /* offsetof(tok_vocab, ...) */
} id_key;

#define F(x) offsetof(tok_vocab, x)
static const id_key id_keys[] = {
    {"tokenizer.ggml.bos_token_id", F(bos)},
    {"tokenizer.ggml.eos_token_id", F(eos)},
    {"tokenizer.ggml.eot_token_id", F(eot)},
    {"tokenizer.ggml.eom_token_id", F(eom)},
    {"tokenizer.ggml.unknown_token_id", F(unk)},
    {"tokenizer.ggml.seperator_token_id", F(sep)}, /* sic: the GGUF key is misspelled */
    {"tokenizer.ggml.padding_token_id", F(pad)},
    {"tokenizer.ggml.mask_token_id", F(mask)},
    {"tokenizer.ggml.fim_pre_token_id", F(fim_pre)},
    {"tokenizer.ggml.fim_suf_token_id", F(fim_suf)},
    {"tokenizer.ggml.fim_mid_token_id", F(fim_mid)},
    {"tokenizer.ggml.fim_pad_token_id", F(fim_pad)},
    {"tokenizer.ggml.fim_rep_token_id", F(fim_rep)},
    {"tokenizer.ggml.fim_sep_token_id", F(fim_sep)},
    {"tokenizer.ggml.prefix_token_id", F(fim_pre)}, /* deprecated spellings */
    {"tokenizer.ggml.suffix_token_id", F(fim_suf)},
    {"tokenizer.ggml.middle_token_id", F(fim_mid)},
};

/* Tokens found by their text when the metadata does not name them (the engine's workaround for
 * converters that do not write these ids). NULL-terminated lists. */
typedef struct text_rule {
    size_t field;
    const char *texts[8];
} text_rule;

static const text_rule text_rules[] = {
    {F(eot),
     {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
      "<\xef\xbd\x9c"
      "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
      NULL}},
    {F(eom), {"<|eom_id|>", NULL}},
    {F(fim_pre),
     {"<|fim_prefix|>", "<fim-prefix>",
      "<\xef\xbd\x9c"
      "fim\xe2\x96\x81"
      "begin\xef\xbd\x9c>",
      "<PRE>", NULL}},
    {F(fim_suf),
     {"<|fim_suffix|>", "<fim-suffix>",
      "<\xef\xbd\x9c"
      "fim\xe2\x96\x81hole\xef\xbd\x9c>",
      "<SUF>", NULL}},
    {F(fim_mid),
     {"<|fim_middle|>", "<fim-middle>",
      "<\xef\xbd\x9c"
      "fim\xe2\x96\x81"
      "end\xef\xbd\x9c>",
      "<MID>", NULL}},
    {F(fim_pad), {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL}},
    {F(fim_rep), {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL}},
    {F(fim_sep), {"<|file_sep|>", NULL}},
};

/* Texts that always end generation. */
static const char *const eog_texts[] = {
    "<|eot_id|>",    "<|im_end|>",    "<|end|>",    "<|return|>", "<|call|>",
    "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",      NULL};
#undef F

static int32_t *field(tok_vocab *v, size_t off) {
    return (int32_t *)((char *)v + off);
}

static void force_control(tok_vocab *v, int32_t id) {
    if (!(v->attr[id] & TOK_ATTR_CONTROL)) {
        size_t n;
        const char *s = tok_str(v, id, &n);
        core_log(CORE_LOG_WARN,
                 "control-looking token %d '%.*s' was not control-type; treating it as control", id,
                 (int)n, s);
        v->attr[id] = TOK_ATTR_CONTROL;
    }
}

/* Lowest id whose text is one of texts (the engine walks a hash map, so with several candidates
 * its choice is arbitrary; the lowest id is a stable stand-in). */
static int32_t find_first(const tok_vocab *v, const char *const *texts) {
    int32_t best = -1;
    for (size_t i = 0; texts[i]; i++) {
        int32_t id = tok_find(v, texts[i], strlen(texts[i]));
        if (id >= 0 && (best < 0 || id < best)) best = id;
    }
    return best;
}

typedef struct len_id {
    uint32_t len;
    int32_t id;
} len_id;

/* Longest text first; equal lengths by id, so the order is stable across runs. */
static int cmp_special(const void *a, const void *b) {
    const len_id *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void set_attr(tok_vocab *v, int32_t id, uint8_t a, bool on) {
    if (id < 0) return;
    v->attr[id] = on ? (uint8_t)(v->attr[id] | a) : (uint8_t)(v->attr[id] & ~a);
}

static void model_attrs(tok_vocab *v, const gguf_file *f) {
    if (strstr(v->pre_name, "jina-v2-de") || strstr(v->pre_name, "jina-v2-es") ||
        strstr(v->pre_name, "jina-v2-code")) {
        set_attr(v, tok_find(v, "<mask>", 6), TOK_ATTR_LSTRIP, true);
        return;
    }
    gguf_str name;
    char lower[256] = "";
    if (gguf_get_str(f, "general.name", &name)) {
        gguf_str_copy(name, lower, sizeof lower);
        for (char *p = lower; *p; p++) *p = (char)tolower((unsigned char)*p);
    }
    if (strstr(lower, "phi-3") || strstr(lower, "phi3")) {
        for (size_t i = 0; i < v->n_special; i++) set_attr(v, v->special[i], TOK_ATTR_RSTRIP, true);
        set_attr(v, tok_find(v, "</s>", 4), TOK_ATTR_RSTRIP, true);
        static const char *const off[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t i = 0; i < 3; i++)
            set_attr(v, tok_find(v, off[i], strlen(off[i])), TOK_ATTR_RSTRIP, false);
    }
}

static shimmy_status newline_token(tok_vocab *v, shimmy_error *err) {
    if (v->algo == TOK_ALGO_SPM) {
        v->nl = v->spm_byte['\n'];
        return SHIMMY_OK;
    }
    tok_scratch s = {0};
    tok_buf b = {0};
    shimmy_status st = v->encode_fragment(v, "\n", 1, false, &s, &b, err);
    v->nl = (st == SHIMMY_OK && b.n > 0) ? b.ids[0] : -1;
    tok_buf_free(&b);
    tok_scratch_deinit(&s);
    return st;
}

/* OpenAI's harmony vocabulary (gpt-oss): an answer is several messages, so "<|end|>" closes one
 * (the analysis) without ending the turn; "<|return|>" and "<|call|>" end it. The markup that
 * frames messages is user-defined, so generated text spells it out for the server to split
 * channels, as llama.cpp does for this vocabulary (recognised by having all three). */
static void harmony_attrs(tok_vocab *v) {
    int32_t ret = tok_find(v, "<|return|>", 10), call = tok_find(v, "<|call|>", 8),
            end = tok_find(v, "<|end|>", 7);
    if (ret < 0 || call < 0 || end < 0) return;
    v->eog[end] = 0;
    static const char *const shown[] = {"<|end|>", "<|channel|>", "<|message|>", "<|start|>",
                                        "<|constrain|>"};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
        int32_t id = tok_find(v, shown[i], strlen(shown[i]));
        if (id >= 0) v->attr[id] = TOK_ATTR_USER_DEFINED;
    }
}

shimmy_status tok_special_setup(tok_vocab *v, const gguf_file *f, shimmy_error *err) {
    shimmy_status st = newline_token(v, err);
    if (st) return st;
    for (size_t i = 0; i < sizeof id_keys / sizeof id_keys[0]; i++) {
        uint32_t id;
        if (!gguf_get_u32(f, id_keys[i].key, &id)) continue;
        if (id >= (uint32_t)v->n_vocab)
            core_log(CORE_LOG_WARN, "%s: %s = %u is not a token id (vocabulary of %d); ignored",
                     gguf_path(f), id_keys[i].key, id, v->n_vocab);
        else
            *field(v, id_keys[i].field) = (int32_t)id;
    }
    uint32_t cls; /* BERT converters name [CLS] this way; it is the BOS of WordPiece */
    if (v->algo == TOK_ALGO_WPM && !gguf_get(f, "tokenizer.ggml.bos_token_id") &&
        gguf_get_u32(f, "tokenizer.ggml.cls_token_id", &cls) && cls < (uint32_t)v->n_vocab)
        v->bos = (int32_t)cls;
    if (v->nl < 0) v->nl = v->pad;
    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b)) v->add_bos = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b)) v->add_eos = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_sep_token", &b)) v->add_sep = b;
    if (v->add_bos && v->bos < 0) v->add_bos = false;
    if (v->add_eos && v->eos < 0) v->add_eos = false;
    if (v->add_sep && v->sep < 0) v->add_sep = false;

    for (size_t i = 0; i < sizeof text_rules / sizeof text_rules[0]; i++) {
        int32_t *id = field(v, text_rules[i].field);
        if (*id >= 0) continue;
        *id = find_first(v, text_rules[i].texts);
        if (*id >= 0) force_control(v, *id);
    }

    int32_t eog_ids[] = {v->fim_pad, v->fim_rep, v->fim_sep, v->eos, v->eot, v->eom};
    for (size_t i = 0; i < sizeof eog_ids / sizeof eog_ids[0]; i++)
        if (eog_ids[i] >= 0) v->eog[eog_ids[i]] = 1;
    for (size_t i = 0; eog_texts[i]; i++) {
        int32_t id = tok_find(v, eog_texts[i], strlen(eog_texts[i]));
        if (id < 0) continue;
        v->eog[id] = 1;
        force_control(v, id);
    }

    harmony_attrs(v);

    size_t n = 0;
    const uint8_t matched = TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN;
    for (int32_t id = 0; id < v->n_vocab; id++)
        if (v->attr[id] & matched) n++;
    v->special = core_malloc((n ? n : 1) * sizeof *v->special);
    len_id *tmp = core_malloc((n ? n : 1) * sizeof *tmp);
    if (!v->special || !tmp) {
        free(tmp);
        return core_error(err, SHIMMY_ERR_NOMEM, gguf_path(f), "out of memory");
    }
    for (int32_t id = 0; id < v->n_vocab; id++)
        if (v->attr[id] & matched) tmp[v->n_special++] = (len_id){v->str_len[id], id};
    qsort(tmp, v->n_special, sizeof *tmp, cmp_special);
    for (size_t i = 0; i < v->n_special; i++) v->special[i] = tmp[i].id;
    free(tmp);

    model_attrs(v, f);
    return SHIMMY_OK;
}
