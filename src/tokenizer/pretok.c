/* Pre-tokenizers of byte-level BPE: the regex lists the engine applies for each
 * tokenizer.ggml.pre name, compiled once per vocabulary with PCRE2 (UTF, UCP, JIT).
 *
 * Splitting semantics (the engine's): regexes run in order; each one runs separately inside
 * every piece the previous ones produced; a match becomes a piece and so does every unmatched
 * gap between matches. `$` means the end of the piece. The patterns are the published ones
 * (tokenizer.json), with the engine's case-folding rewrite of the contractions. */
#include "tok_impl.h"

#include <stdlib.h>
#include <string.h>

static const char *const re_llama3[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-"
    "\xc6\xbf\xc7\x84-\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-"
    "\xcd\xbd\xcd\xbf\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-"
    "\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-"
    "\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-"
    "\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-"
    "\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-"
    "\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-"
    "\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-"
    "\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-"
    "\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-"
    "\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-"
    "\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-"
    "\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-"
    "\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85\x85-"
    "\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-"
    "\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-"
    "\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-"
    "\xea\x9e\x87\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-"
    "\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-"
    "\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-"
    "\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-"
    "\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-"
    "\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+",
    "\\s?[!-/"
    ":-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80\x80-"
    "\xe3\x80\x82]+",
    "\\s+$",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+",
    "\\p{N}+",
    NULL};
/* The engine matches \\p{S} without '~' (its ASCII table omits it), hence the ~ guards. */
static const char *const re_deepseek3[] = {
    "\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
    "[!\"#$%&'()*+,\\-./"
    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|(?:[^\r\n\\p{L}\\p{P}\\p{S}]|~)?[\\p{L}\\p{M}]+| "
    "?(?:(?!~)[\\p{P}\\p{S}])+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_deepseek_coder[] = {
    "[\r\n]",      "\\s?\\p{L}+",
    "\\s?\\p{P}+", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+",
    "\\p{N}",      NULL};
static const char *const re_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]", NULL};
static const char *const re_starcoder[] = {
    "\\p{N}", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL};
static const char *const re_gpt2[] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)", NULL};
static const char *const re_qwen2[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_poro[] = {
    " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+",
    NULL};
static const char *const re_viking[] = {
    " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+",
    "\\p{N}", NULL};
static const char *const re_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?"
    "=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_chameleon[] = {
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL};
static const char *const re_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)", "\\p{N}+",
    "[0-9][0-9][0-9]", NULL};

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* name(s), regexes, clean_spaces, ignore_merges, add_bos, no_bos */
static const tok_pretok pretoks[] = {
    {NAMES("default"), re_default, true, false, false, false},
    {NAMES("llama3", "llama-v3", "llama-bpe", "falcon3"), re_llama3, true, true, false, false},
    {NAMES("dbrx", "smaug-bpe"), re_llama3, true, false, false, false},
    {NAMES("chatglm-bpe"), re_llama3, true, false, false, true},
    {NAMES("deepseek-llm"), re_deepseek_llm, false, false, false, false},
    {NAMES("deepseek-v3"), re_deepseek3, false, false, false, false},
    {NAMES("deepseek-coder"), re_deepseek_coder, false, false, false, false},
    {NAMES("falcon"), re_falcon, true, false, false, false},
    {NAMES("starcoder", "refact", "codeshell", "exaone", "minerva-7b"), re_starcoder, true, false,
     false, false},
    {NAMES("command-r", "smollm"), re_starcoder, false, false, false, false},
    {NAMES("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
           "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"),
     re_gpt2, true, false, false, false},
    {NAMES("qwen2", "deepseek-r1-qwen"), re_qwen2, false, false, false, false},
    {NAMES("stablelm2", "megrez"), re_qwen2, true, false, false, false},
    {NAMES("poro-chat"), re_poro, false, false, false, false},
    {NAMES("bloom", "gpt3-finnish"), re_poro, true, false, false, false},
    {NAMES("viking"), re_viking, false, false, false, false},
    {NAMES("tekken"), re_tekken, false, true, true, false},
    {NAMES("chameleon"), re_chameleon, false, false, true, false},
};

const tok_pretok *tok_pretok_find(const char *name) {
    if (!name) name = "default";
    for (size_t i = 0; i < sizeof pretoks / sizeof pretoks[0]; i++)
        for (const char *const *n = pretoks[i].names; *n; n++)
            if (strcmp(*n, name) == 0) return &pretoks[i];
    return NULL;
}

/* The engine's whitespace: PCRE2's \s also matches U+180E, which the engine (like current
 * Unicode) does not count as a space, so \s and \S are spelled out as this set. */
#define WS_SET                                                                                     \
    "\\t\\n\\x{0B}\\f\\r "                                                                         \
    "\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Copies pattern p into out (cap bytes) with \s / \S replaced; false if it does not fit or
 * uses \S inside a class (no pattern here does). */
static bool rewrite_ws(const char *p, char *out, size_t cap) {
    size_t o = 0;
    bool in_class = false;
    for (size_t i = 0; p[i]; i++) {
        const char *add = NULL;
        char two[3] = {p[i], 0, 0};
        if (p[i] == '\\' && p[i + 1]) {
            char c = p[++i];
            if (c == 's')
                add = in_class ? WS_SET : "[" WS_SET "]";
            else if (c == 'S') {
                if (in_class) return false;
                add = "[^" WS_SET "]";
            } else {
                two[1] = c;
                add = two;
            }
        } else {
            if (p[i] == '[' && !in_class)
                in_class = true;
            else if (p[i] == ']' && in_class)
                in_class = false;
            add = two;
        }
        size_t n = strlen(add);
        if (o + n + 1 > cap) return false;
        memcpy(out + o, add, n);
        o += n;
    }
    out[o] = '\0';
    return true;
}

shimmy_status tok_pretok_compile(tok_vocab *v, shimmy_error *err) {
    for (const char *const *r = v->pre->regex; *r; r++) {
        if (v->n_re == TOK_MAX_REGEX)
            return core_error(err, SHIMMY_ERR_INTERNAL, v->pre_name,
                              "too many pre-tokenizer regexes");
        char pat[4096];
        if (!rewrite_ws(*r, pat, sizeof pat))
            return core_error(err, SHIMMY_ERR_INTERNAL, v->pre_name,
                              "pre-tokenizer regex %d cannot be prepared", v->n_re);
        int code;
        PCRE2_SIZE off;
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &code, &off, NULL);
        if (!re) {
            char msg[128];
            pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof msg);
            return core_error(err, SHIMMY_ERR_INTERNAL, v->pre_name,
                              "pre-tokenizer regex does not compile at %zu: %s", (size_t)off, msg);
        }
        /* without JIT support matching still works, only slower */
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        v->re[v->n_re++] = re;
    }
    return SHIMMY_OK;
}

void tok_pretok_free(tok_vocab *v) {
    for (int i = 0; i < v->n_re; i++) pcre2_code_free(v->re[i]);
    v->n_re = 0;
}

static bool push_cut(size_t **a, size_t *n, size_t *cap, size_t at) {
    if (!tok_grow((void **)a, cap, *n + 1, sizeof **a)) return false;
    (*a)[(*n)++] = at;
    return true;
}

static int match_at(const pcre2_code *re, const char *subj, size_t len, size_t from,
                    pcre2_match_data *md) {
    int rc = pcre2_match(re, (PCRE2_SPTR)subj, len, from, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc < -1 && rc != PCRE2_ERROR_PARTIAL) /* JIT stack exhausted and the like: interpret */
        rc = pcre2_match(re, (PCRE2_SPTR)subj, len, from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md,
                         NULL);
    return rc;
}

shimmy_status tok_pretok_split(const tok_vocab *v, const char *text, size_t len, tok_scratch *s,
                               shimmy_error *err) {
    s->n_cuts = 0;
    if (len == 0) return SHIMMY_OK;
    if (!s->md && !(s->md = pcre2_match_data_create(32, NULL)))
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    if (!push_cut(&s->cuts, &s->n_cuts, &s->cap_cuts, len)) goto nomem;
    for (int r = 0; r < v->n_re; r++) {
        s->n_cuts2 = 0;
        size_t start = 0;
        for (size_t p = 0; p < s->n_cuts; p++) {
            size_t end = s->cuts[p], pos = 0, last = 0, plen = end - start;
            const char *subj = text + start;
            while (pos < plen) {
                int rc = match_at(v->re[r], subj, plen, pos, s->md);
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0)
                    return core_error(err, SHIMMY_ERR_TOKENIZER, v->pre_name,
                                      "the text could not be pre-tokenized (regex error %d)", rc);
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
                size_t ms = ov[0], me = ov[1];
                if (me <= ms) { /* an empty match splits nothing; step one character */
                    pos = ms + 1;
                    while (pos < plen && ((unsigned char)subj[pos] & 0xC0) == 0x80) pos++;
                    continue;
                }
                if (ms > last && !push_cut(&s->cuts2, &s->n_cuts2, &s->cap_cuts2, start + ms))
                    goto nomem;
                if (!push_cut(&s->cuts2, &s->n_cuts2, &s->cap_cuts2, start + me)) goto nomem;
                last = pos = me;
            }
            if (last < plen && !push_cut(&s->cuts2, &s->n_cuts2, &s->cap_cuts2, end)) goto nomem;
            start = end;
        }
        size_t *t = s->cuts, tc = s->cap_cuts;
        s->cuts = s->cuts2;
        s->cap_cuts = s->cap_cuts2;
        s->n_cuts = s->n_cuts2;
        s->cuts2 = t;
        s->cap_cuts2 = tc;
    }
    return SHIMMY_OK;
nomem:
    return core_error(err, SHIMMY_ERR_NOMEM, NULL, "out of memory pre-tokenizing %zu bytes", len);
}
