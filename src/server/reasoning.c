/* The thinking splitter (reasoning.h): a byte-at-a-time state machine, so that where the
 * stream is cut never matters, with output gathered into runs so a push of many bytes makes
 * few callbacks. */
#include "reasoning.h"
#include "harmony.h"

#include <string.h>

enum { START, THINK_START, THINK, ANSWER_START, ANSWER };

static const char OPEN[] = "<think>";
static const char CLOSE[] = "</think>";
#define OPEN_LEN  (sizeof OPEN - 1)
#define CLOSE_LEN (sizeof CLOSE - 1)

bool server_reasoning_format_parse(const char *name, server_reasoning_format *out) {
    static const struct {
        const char *name;
        server_reasoning_format f;
    } rows[] = {{"auto", SERVER_REASONING_AUTO},
                {"deepseek", SERVER_REASONING_AUTO},
                {"deepseek-legacy", SERVER_REASONING_AUTO},
                {"none", SERVER_REASONING_NONE}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (strcmp(rows[i].name, name) == 0) {
            *out = rows[i].f;
            return true;
        }
    }
    return false;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void server_reasoning_init(server_reasoning *r, bool inside) {
    r->state = inside ? THINK_START : START;
    r->held = 0;
    r->harmony = false;
}

bool server_reasoning_thinking(const server_reasoning *r) {
    if (r->harmony) return server_harmony_thinking(r);
    return r->state == START || r->state == THINK_START || r->state == THINK;
}

void server_reasoning_run_flush(server_reasoning_run *o) {
    if (o->len) o->fn(o->user, o->thinking, o->buf, o->len);
    o->len = 0;
}

void server_reasoning_run_put(server_reasoning_run *o, bool thinking, const char *p, size_t n) {
    if (n && thinking != o->thinking) {
        server_reasoning_run_flush(o);
        o->thinking = thinking;
    }
    while (n) {
        size_t k = sizeof o->buf - o->len < n ? sizeof o->buf - o->len : n;
        memcpy(o->buf + o->len, p, k);
        o->len += k;
        p += k;
        n -= k;
        if (o->len == sizeof o->buf) server_reasoning_run_flush(o);
    }
}

/* Length of the longest suffix of s[0..n) that is a prefix of tag (shorter than the tag). */
static size_t tag_suffix(const char *s, size_t n, const char *tag, size_t tag_len) {
    size_t k = n < tag_len - 1 ? n : tag_len - 1;
    for (; k > 0; k--)
        if (memcmp(s + n - k, tag, k) == 0) return k;
    return 0;
}

/* START: the hold is whitespace and maybe the beginning of "<think>". */
static void start_byte(server_reasoning *r, char c, server_reasoning_run *o) {
    r->hold[r->held++] = c;
    size_t k = 0;
    while (k < r->held && is_space(r->hold[k])) k++;
    size_t t = r->held - k; /* bytes after the leading whitespace */
    if (t == 0 && r->held < sizeof r->hold) return;
    /* A full hold cannot wait for the rest of the tag (the next byte would be written past it):
     * whitespace and a partial "<think>" that long is answer, as a whitespace run that long is. */
    bool room = r->held < sizeof r->hold || t == OPEN_LEN;
    if (room && t > 0 && t <= OPEN_LEN && memcmp(r->hold + k, OPEN, t) == 0) {
        if (t == OPEN_LEN) {
            r->state = THINK_START;
            r->held = 0;
        }
        return;
    }
    /* No thinking: the output is all answer, as written. */
    server_reasoning_run_put(o, false, r->hold, r->held);
    r->held = 0;
    r->state = ANSWER;
}

/* THINK: the hold is trailing whitespace of the thinking, then maybe the beginning of
 * "</think>". */
static void think_byte(server_reasoning *r, char c, server_reasoning_run *o) {
    r->hold[r->held++] = c;
    if (r->held >= CLOSE_LEN && memcmp(r->hold + r->held - CLOSE_LEN, CLOSE, CLOSE_LEN) == 0) {
        r->held = 0; /* whitespace before the tag is trailing: dropped */
        r->state = ANSWER_START;
        return;
    }
    size_t tag = tag_suffix(r->hold, r->held, CLOSE, CLOSE_LEN);
    size_t w = r->held - tag;
    while (w > 0 && is_space(r->hold[w - 1])) w--;
    /* A whitespace run longer than the hold is not trimmed: it goes out as thinking. */
    if (r->held == sizeof r->hold) w = r->held - tag;
    server_reasoning_run_put(o, true, r->hold, w);
    memmove(r->hold, r->hold + w, r->held - w);
    r->held -= w;
}

void server_reasoning_push(server_reasoning *r, const char *text, size_t len,
                           server_reasoning_fn out, void *user) {
    if (r->harmony) {
        server_harmony_push(r, text, len, out, user);
        return;
    }
    server_reasoning_run o = {.fn = out, .user = user};
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        switch (r->state) {
        case START: start_byte(r, c, &o); break;
        case THINK_START:
            if (is_space(c)) break;
            r->state = THINK;
            think_byte(r, c, &o);
            break;
        case THINK: think_byte(r, c, &o); break;
        case ANSWER_START:
            if (is_space(c)) break;
            r->state = ANSWER;
            server_reasoning_run_put(&o, false, &c, 1);
            break;
        default: {
            /* The answer passes through: the rest of this push at once. */
            server_reasoning_run_put(&o, false, text + i, len - i);
            i = len;
        }
        }
    }
    server_reasoning_run_flush(&o);
}

void server_reasoning_flush(server_reasoning *r, server_reasoning_fn out, void *user) {
    if (r->harmony) {
        server_harmony_flush(r, out, user);
        return;
    }
    server_reasoning_run o = {.fn = out, .user = user};
    if (r->state == START) {
        /* Whitespace, or a beginning of "<think>" that never completed: answer text. */
        size_t k = 0;
        while (k < r->held && is_space(r->hold[k])) k++;
        if (k < r->held) server_reasoning_run_put(&o, false, r->hold, r->held);
    } else if (r->state == THINK) {
        /* A beginning of "</think>" that never completed is thinking; trailing space is not. */
        size_t w = r->held;
        while (w > 0 && is_space(r->hold[w - 1])) w--;
        server_reasoning_run_put(&o, true, r->hold, w);
    }
    r->held = 0;
    server_reasoning_run_flush(&o);
}

bool server_reasoning_prompt_opens(const char *tail, size_t len) {
    while (len > 0 && is_space(tail[len - 1])) len--;
    return len >= OPEN_LEN && memcmp(tail + len - OPEN_LEN, OPEN, OPEN_LEN) == 0;
}
