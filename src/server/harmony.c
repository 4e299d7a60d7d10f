/* The harmony splitter (reasoning.h): a byte-at-a-time state machine like the "<think>" one, so
 * that where the stream is cut never matters. The hold keeps a header until its "<|message|>",
 * or the bytes of a body that may still be a closing marker. */
#include "harmony.h"

#include <string.h>

enum { HEAD, BODY, BETWEEN, PLAIN };
enum { K_THINK, K_ANSWER, K_CALL, K_DROP };

static const char START_MARK[] = "<|start|>", MESSAGE[] = "<|message|>", CHANNEL[] = "<|channel|>",
                  CONSTRAIN[] = "<|constrain|>", CALL_OPEN[] = "<|start|>assistant to=functions.",
                  CALL_HEAD[] = "<|channel|>commentary json<|message|>", CALL_END[] = "<|call|>";
/* What closes a body: "<|start|>" only when a model skips the end of a message. */
static const char *const CLOSERS[] = {"<|end|>", "<|return|>", "<|call|>", "<|start|>"};
enum { N_CLOSERS = sizeof CLOSERS / sizeof CLOSERS[0] };
#define LEN(s) (sizeof s - 1)

void server_reasoning_init_harmony(server_reasoning *r, bool calls) {
    r->state = HEAD;
    r->held = 0;
    r->harmony = true;
    r->calls = calls;
    r->first = true;
    r->kind = K_ANSWER;
}

bool server_harmony_thinking(const server_reasoning *r) {
    if (r->state == PLAIN) return false;
    if (r->state == BODY) return r->kind == K_THINK || r->kind == K_DROP;
    return true; /* between messages: what comes next is not known yet */
}

bool server_reasoning_prompt_harmony(const char *tail, size_t len) {
    static const char open[] = "<|start|>assistant";
    return len >= LEN(open) && memcmp(tail + len - LEN(open), open, LEN(open)) == 0;
}

static void body_out(server_reasoning *r, server_reasoning_run *o, const char *p, size_t n) {
    if (r->kind == K_THINK) server_reasoning_run_put(o, true, p, n);
    if (r->kind == K_ANSWER || r->kind == K_CALL) server_reasoning_run_put(o, false, p, n);
}

static bool ends_with(const char *s, size_t n, const char *m, size_t mn) {
    return n >= mn && memcmp(s + n - mn, m, mn) == 0;
}

static const char *find(const char *s, size_t n, const char *m, size_t mn) {
    for (size_t i = 0; i + mn <= n; i++)
        if (memcmp(s + i, m, mn) == 0) return s + i;
    return NULL;
}

static bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* Whether h[0..n) can still grow into a header: an optional role word (not before the first
 * message: the prompt wrote "assistant"), then " to=RECIPIENT" and/or "<|channel|>NAME", then
 * optionally " json" / " <|constrain|>json", with "<|" only in those markers (the tail may be
 * the beginning of one, or of "<|message|>"). */
static bool header_viable(const server_reasoning *r, const char *h, size_t n) {
    size_t i = 0;
    if (!r->first)
        while (i < n && word_char(h[i])) i++;
    if (i == n) return true;
    static const char to[] = " to=";
    size_t rest = n - i;
    bool opens = memcmp(h + i, CHANNEL, rest < LEN(CHANNEL) ? rest : LEN(CHANNEL)) == 0 ||
                 memcmp(h + i, to, rest < LEN(to) ? rest : LEN(to)) == 0 ||
                 memcmp(h + i, MESSAGE, rest < LEN(MESSAGE) ? rest : LEN(MESSAGE)) == 0;
    if (!opens) return false;
    for (size_t k = i; k + 1 < n; k++) {
        if (h[k] != '<' || h[k + 1] != '|') continue;
        bool ok = false;
        const char *const marks[] = {CHANNEL, CONSTRAIN, MESSAGE};
        const size_t lens[] = {LEN(CHANNEL), LEN(CONSTRAIN), LEN(MESSAGE)};
        for (size_t m = 0; m < 3 && !ok; m++) {
            size_t avail = n - k < lens[m] ? n - k : lens[m];
            ok = memcmp(h + k, marks[m], avail) == 0;
        }
        if (!ok) return false;
    }
    return true;
}

/* A complete header h[0..n) (before "<|message|>"): the body's kind, and the call's name. */
static int header_kind(const server_reasoning *r, const char *h, size_t n, const char **name,
                       size_t *name_len) {
    const char *to = find(h, n, "to=", 3);
    if (to) {
        const char *rcpt = to + 3, *e = rcpt;
        while (e < h + n && word_char(*e)) e++;
        static const char fn[] = "functions.";
        size_t rn = (size_t)(e - rcpt);
        if (rn > LEN(fn) && memcmp(rcpt, fn, LEN(fn)) == 0) {
            *name = rcpt + LEN(fn);
            *name_len = rn - LEN(fn);
            return r->calls ? K_CALL : K_DROP;
        }
        /* "to=assistant" is the model addressing itself (a stray commentary header) */
        if (!(rn == 9 && memcmp(rcpt, "assistant", 9) == 0)) return K_DROP;
    }
    const char *ch = NULL, *at = h;
    while ((at = find(at, (size_t)(h + n - at), CHANNEL, LEN(CHANNEL)))) {
        ch = at + LEN(CHANNEL);
        at = ch;
    }
    static const char analysis[] = "analysis";
    if (ch && (size_t)(h + n - ch) >= LEN(analysis) && memcmp(ch, analysis, LEN(analysis)) == 0 &&
        (ch + LEN(analysis) == h + n || !word_char(ch[LEN(analysis)])))
        return K_THINK;
    return K_ANSWER;
}

/* Markup that cannot be a header: it and the rest of the stream are answer text. */
static void degrade(server_reasoning *r, server_reasoning_run *o, bool after_start) {
    if (after_start) server_reasoning_run_put(o, false, START_MARK, LEN(START_MARK));
    server_reasoning_run_put(o, false, r->hold, r->held);
    r->held = 0;
    r->state = PLAIN;
}

static void head_byte(server_reasoning *r, char c, server_reasoning_run *o) {
    r->hold[r->held++] = c;
    if (ends_with(r->hold, r->held, MESSAGE, LEN(MESSAGE))) {
        const char *name = NULL;
        size_t name_len = 0, n = r->held - LEN(MESSAGE);
        r->kind = header_kind(r, r->hold, n, &name, &name_len);
        if (r->kind == K_CALL) {
            server_reasoning_run_put(o, false, CALL_OPEN, LEN(CALL_OPEN));
            server_reasoning_run_put(o, false, name, name_len);
            server_reasoning_run_put(o, false, CALL_HEAD, LEN(CALL_HEAD));
        }
        r->held = 0;
        r->state = BODY;
        r->first = false;
        return;
    }
    if (r->held == sizeof r->hold || !header_viable(r, r->hold, r->held)) degrade(r, o, !r->first);
}

static void end_message(server_reasoning *r, server_reasoning_run *o) {
    if (r->kind == K_CALL) server_reasoning_run_put(o, false, CALL_END, LEN(CALL_END));
}

static void body_byte(server_reasoning *r, char c, server_reasoning_run *o) {
    r->hold[r->held++] = c;
    for (size_t k = 0; k < N_CLOSERS; k++) {
        size_t mn = strlen(CLOSERS[k]);
        if (!ends_with(r->hold, r->held, CLOSERS[k], mn)) continue;
        body_out(r, o, r->hold, r->held - mn);
        end_message(r, o);
        r->held = 0;
        r->state = k == N_CLOSERS - 1 ? HEAD : BETWEEN;
        return;
    }
    /* Keep the longest tail that may still become a closer; the rest is body. */
    size_t keep = 0;
    for (size_t k = 0; k < N_CLOSERS; k++) {
        size_t mn = strlen(CLOSERS[k]);
        for (size_t t = mn - 1 < r->held ? mn - 1 : r->held; t > keep; t--)
            if (memcmp(r->hold + r->held - t, CLOSERS[k], t) == 0) {
                keep = t;
                break;
            }
    }
    body_out(r, o, r->hold, r->held - keep);
    memmove(r->hold, r->hold + r->held - keep, keep);
    r->held = keep;
}

static void between_byte(server_reasoning *r, char c, server_reasoning_run *o) {
    if (r->held == 0 && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) return;
    r->hold[r->held++] = c;
    if (memcmp(r->hold, START_MARK, r->held) != 0) {
        degrade(r, o, false);
        return;
    }
    if (r->held == LEN(START_MARK)) {
        r->held = 0;
        r->state = HEAD;
    }
}

void server_harmony_push(server_reasoning *r, const char *text, size_t len, server_reasoning_fn out,
                         void *user) {
    server_reasoning_run o = {.fn = out, .user = user};
    for (size_t i = 0; i < len; i++) {
        switch (r->state) {
        case HEAD: head_byte(r, text[i], &o); break;
        case BODY: body_byte(r, text[i], &o); break;
        case BETWEEN: between_byte(r, text[i], &o); break;
        default: server_reasoning_run_put(&o, false, text + i, len - i); i = len;
        }
    }
    server_reasoning_run_flush(&o);
}

void server_harmony_flush(server_reasoning *r, server_reasoning_fn out, void *user) {
    server_reasoning_run o = {.fn = out, .user = user};
    if (r->state == BODY) {
        /* The beginning of a closer that never completed is body; "<|return|>" and "<|call|>"
         * end generation without being text, so the end of the stream closes the message. */
        body_out(r, &o, r->hold, r->held);
        end_message(r, &o);
        r->state = BETWEEN;
    }
    r->held = 0;
    server_reasoning_run_flush(&o);
}
