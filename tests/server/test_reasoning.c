/* server/reasoning: the thinking splitter against expected (thinking, answer) pairs, each
 * stream fed whole, byte by byte, and cut in two and in three at every byte offset (the result
 * must never depend on the cuts), the prompt-opens check, and the reasoning_format names. */
#include "reasoning.h"
#include "server.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

typedef struct out {
    char think[1024], answer[1024];
    size_t nt, na;
    bool prev_kind, any;
    int switches_back; /* answer followed by thinking: must never happen */
} out;

static void collect(void *user, bool thinking, const char *text, size_t len) {
    out *o = user;
    CHECK(len > 0);
    if (o->any && !o->prev_kind && thinking) o->switches_back++;
    o->any = true;
    o->prev_kind = thinking;
    char *dst = thinking ? o->think + o->nt : o->answer + o->na;
    size_t *n = thinking ? &o->nt : &o->na;
    if (*n + len < sizeof o->think) {
        memcpy(dst, text, len);
        *n += len;
    }
}

/* Feeds text cut at the given offsets (sorted, within the text). */
static out split(const char *text, bool inside, const size_t *cuts, size_t n_cuts) {
    out o = {0};
    server_reasoning r;
    server_reasoning_init(&r, inside);
    size_t at = 0, len = strlen(text);
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        server_reasoning_push(&r, text + at, end - at, collect, &o);
        at = end;
    }
    server_reasoning_flush(&r, collect, &o);
    o.think[o.nt] = o.answer[o.na] = '\0';
    return o;
}

static void expect(const char *text, bool inside, const char *think, const char *answer) {
    out o = split(text, inside, NULL, 0);
    CHECK_MSG(strcmp(o.think, think) == 0 && strcmp(o.answer, answer) == 0,
              "[%s]: thinking [%s] answer [%s], expected [%s] [%s]", text, o.think, o.answer, think,
              answer);
    CHECK_EQ_INT(o.switches_back, 0);
    size_t len = strlen(text);
    /* byte by byte */
    size_t *every = malloc(sizeof *every * (len ? len : 1));
    for (size_t i = 0; i + 1 < len; i++) every[i] = i + 1;
    o = split(text, inside, every, len ? len - 1 : 0);
    CHECK_MSG(strcmp(o.think, think) == 0 && strcmp(o.answer, answer) == 0,
              "[%s] byte by byte: [%s] [%s]", text, o.think, o.answer);
    free(every);
    /* one cut anywhere, and two cuts anywhere */
    for (size_t a = 0; a <= len; a++) {
        size_t c1[1] = {a};
        o = split(text, inside, c1, 1);
        CHECK_MSG(strcmp(o.think, think) == 0 && strcmp(o.answer, answer) == 0,
                  "[%s] cut at %zu: [%s] [%s]", text, a, o.think, o.answer);
        for (size_t b = a; b <= len; b++) {
            size_t c2[2] = {a, b};
            o = split(text, inside, c2, 2);
            CHECK_MSG(strcmp(o.think, think) == 0 && strcmp(o.answer, answer) == 0,
                      "[%s] cut at %zu, %zu: [%s] [%s]", text, a, b, o.think, o.answer);
        }
    }
}

static void test_split(void) {
    /* Qwen3 / QwQ: the model opens the thinking itself */
    expect("<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4.", false,
           "Let me add 2 and 2.", "The answer is 4.");
    expect("<think></think>Hi", false, "", "Hi");
    expect("<think>\n\n</think>\n\nHi there", false, "", "Hi there");
    expect("  \n<think>a</think>b", false, "a", "b");
    /* DeepSeek-R1: the prompt opened it; the output starts inside */
    expect("Okay, so 2+2.\n</think>\n\n4", true, "Okay, so 2+2.", "4");
    expect("</think>4", true, "", "4");
    /* no thinking: everything is the answer, as written (leading space kept) */
    expect("Hello <think> world", false, "", "Hello <think> world");
    expect(" Hello", false, "", " Hello");
    expect("<thinking>x</thinking>", false, "", "<thinking>x</thinking>");
    expect("<thin", false, "", "<thin");
    expect("", false, "", "");
    /* cut off before the end of the thinking (max_tokens): all thinking */
    expect("<think>still going", false, "still going", "");
    expect("<think>still </thi", false, "still </thi", "");
    expect("still going  \n", true, "still going", "");
    /* things that look like the closing tag but are not */
    expect("<think>a </thinkx> b < / </th</think>c", false, "a </thinkx> b < / </th", "c");
    expect("<think>a<</think>c", false, "a<", "c");
    expect("<think>x</think>y</think>z", false, "x", "y</think>z");
    /* UTF-8 passes through untouched */
    expect("<think>é – 思考</think>答え", false, "é – 思考", "答え");
    /* inner whitespace is kept, trailing whitespace of the thinking is not */
    expect("<think> a \n b \n</think> \n c d ", false, "a \n b", "c d ");
}

static void test_long_whitespace(void) {
    /* a run of whitespace longer than the hold goes out instead of growing the buffer */
    char text[2000];
    strcpy(text, "<think>a");
    size_t n = strlen(text);
    memset(text + n, ' ', 600);
    strcpy(text + n + 600, "b</think>c");
    out o = split(text, false, NULL, 0);
    CHECK(o.nt == 602 && o.think[0] == 'a' && o.think[601] == 'b');
    CHECK_STR(o.answer, "c");
    /* leading whitespace longer than the hold: an answer */
    memset(text, '\n', 700);
    strcpy(text + 700, "<think>x</think>y");
    o = split(text, false, NULL, 0);
    CHECK_EQ_INT((int)o.nt, 0);
    CHECK(o.na == strlen(text));
}

static void test_prompt_opens(void) {
    CHECK(server_reasoning_prompt_opens("<|Assistant|><think>\n", 21));
    CHECK(server_reasoning_prompt_opens("<think>", 7));
    CHECK(!server_reasoning_prompt_opens("<think>\n\n</think>\n\n", 19));
    CHECK(!server_reasoning_prompt_opens("<|im_start|>assistant\n", 22));
    CHECK(!server_reasoning_prompt_opens("think>", 6));
    CHECK(!server_reasoning_prompt_opens("", 0));
}

static void test_formats(void) {
    server_reasoning_format f = SERVER_REASONING_NONE;
    CHECK(server_reasoning_format_parse("auto", &f) && f == SERVER_REASONING_AUTO);
    CHECK(server_reasoning_format_parse("none", &f) && f == SERVER_REASONING_NONE);
    CHECK(server_reasoning_format_parse("deepseek", &f) && f == SERVER_REASONING_AUTO);
    CHECK(!server_reasoning_format_parse("raw", &f));
    CHECK(!server_reasoning_format_parse("", &f));
}

int main(void) {
    test_split();
    test_long_whitespace();
    test_prompt_opens();
    test_formats();
    return test_finish("server/reasoning");
}
