/* Token records as OpenAI's two logprobs shapes: chat's choices[].logprobs.content[] entries
 * ({token, logprob, bytes, top_logprobs}) and the legacy completions object (tokens,
 * token_logprobs, top_logprobs, text_offset). A token that holds part of a UTF-8 character has
 * its exact bytes in `bytes` and a readable string in `token` ("\xe2\x80" for the bytes that
 * are no character on their own), as OpenAI does. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 character at s (n bytes left), 0 when there is none. */
static size_t utf8_char(const unsigned char *s, size_t n) {
    size_t len = s[0] < 0x80                    ? 1
                 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
                 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                                : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    /* overlong, surrogate and beyond-U+10FFFF forms */
    if (len == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F))) return 0;
    if (len == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))) return 0;
    return len;
}

json_t *server_lp_token_string(const char *bytes, size_t n) {
    const unsigned char *s = (const unsigned char *)bytes;
    char *out = malloc(n * 4 + 1), *p = out;
    if (!out) return json_string("");
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char(s + i, n - i);
        if (k) {
            memcpy(p, s + i, k);
            p += k;
            i += k;
        } else {
            p += sprintf(p, "\\x%02x", s[i]);
            i++;
        }
    }
    json_t *v = json_stringn(out, (size_t)(p - out));
    free(out);
    return v ? v : json_string("");
}

static json_t *bytes_array(const char *bytes, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer((unsigned char)bytes[i]));
    return a;
}

/* An alternative's bytes: control tokens show their text (an alternative "<|im_end|>" says
 * that the turn could have ended there). */
static size_t alt_piece(const shimmy_vocab *v, int32_t id, char *buf, size_t cap) {
    size_t n = shimmy_token_piece(v, id, true, buf, cap);
    return n < cap ? n : cap;
}

json_t *server_lp_chat_entry(const shimmy_vocab *v, const shimmy_token_info *t) {
    json_t *top = json_array();
    char buf[512];
    for (size_t i = 0; top && i < t->n_top; i++) {
        size_t n = alt_piece(v, t->top[i].token, buf, sizeof buf);
        json_array_append_new(
            top, json_pack("{s:o,s:f,s:o}", "token", server_lp_token_string(buf, n), "logprob",
                           (double)t->top[i].logprob, "bytes", bytes_array(buf, n)));
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "token", server_lp_token_string(t->bytes, t->n_bytes),
                     "logprob", t->has_logprob ? json_real(t->logprob) : json_null(), "bytes",
                     bytes_array(t->bytes, t->n_bytes), "top_logprobs", top ? top : json_array());
}

json_t *server_lp_compl_new(void) {
    return json_pack("{s:[],s:[],s:[],s:[]}", "tokens", "token_logprobs", "top_logprobs",
                     "text_offset");
}

void server_lp_compl_append(json_t *obj, const shimmy_vocab *v, const shimmy_token_info *t,
                            size_t text_offset) {
    json_array_append_new(json_object_get(obj, "tokens"),
                          server_lp_token_string(t->bytes, t->n_bytes));
    json_array_append_new(json_object_get(obj, "token_logprobs"),
                          t->has_logprob ? json_real(t->logprob) : json_null());
    json_t *top = NULL;
    if (t->has_logprob) {
        top = json_object();
        char buf[512];
        for (size_t i = 0; top && i < t->n_top; i++) {
            size_t n = alt_piece(v, t->top[i].token, buf, sizeof buf);
            json_t *key = server_lp_token_string(buf, n);
            /* two alternatives may read alike (byte tokens): the likelier keeps the key */
            if (key && !json_object_get(top, json_string_value(key)))
                json_object_set_new(top, json_string_value(key), json_real(t->top[i].logprob));
            json_decref(key);
        }
    }
    json_array_append_new(json_object_get(obj, "top_logprobs"), top ? top : json_null());
    json_array_append_new(json_object_get(obj, "text_offset"),
                          json_integer((json_int_t)text_offset));
}
