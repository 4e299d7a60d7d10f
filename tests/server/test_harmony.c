/* server/harmony: the harmony splitter (reasoning.h) on texts as gpt-oss writes them, each fed
 * whole, byte by byte, and cut in two and in three at every offset (the result must never depend
 * on the cuts); calls through SERVER_TOOLS_HARMONY's parser; malformed and cut-off markup
 * degrading to answer text; the stream hold and the prompt check. */
#include "reasoning.h"
#include "server.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

typedef struct out {
    char think[2048], answer[2048];
    size_t nt, na;
} out;

static void collect(void *user, bool thinking, const char *text, size_t len) {
    out *o = user;
    CHECK(len > 0);
    char *dst = thinking ? o->think + o->nt : o->answer + o->na;
    size_t *n = thinking ? &o->nt : &o->na;
    if (*n + len < sizeof o->think) {
        memcpy(dst, text, len);
        *n += len;
    }
}

static out split(const char *text, bool calls, const size_t *cuts, size_t n_cuts) {
    out o = {0};
    server_reasoning r;
    server_reasoning_init_harmony(&r, calls);
    size_t at = 0, len = strlen(text);
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        server_reasoning_push(&r, text + at, end - at, collect, &o);
        at = end;
    }
    server_reasoning_flush(&r, collect, &o);
    return o;
}

static bool same(const out *a, const out *b) {
    return a->nt == b->nt && a->na == b->na && memcmp(a->think, b->think, a->nt) == 0 &&
           memcmp(a->answer, b->answer, a->na) == 0;
}

/* Every way of cutting gives `think` / `answer`. */
static void expect(const char *text, bool calls, const char *think, const char *answer) {
    out whole = split(text, calls, NULL, 0);
    CHECK_MSG(whole.nt == strlen(think) && memcmp(whole.think, think, whole.nt) == 0,
              "%s: thinking \"%.*s\", want \"%s\"", text, (int)whole.nt, whole.think, think);
    CHECK_MSG(whole.na == strlen(answer) && memcmp(whole.answer, answer, whole.na) == 0,
              "%s: answer \"%.*s\", want \"%s\"", text, (int)whole.na, whole.answer, answer);
    size_t len = strlen(text), bad = 0;
    size_t *cuts = malloc(sizeof *cuts * (len + 1));
    for (size_t i = 0; i < len; i++) cuts[i] = i + 1;
    out bytes = split(text, calls, cuts, len ? len - 1 : 0);
    bad += !same(&whole, &bytes);
    for (size_t i = 0; i <= len; i++) {
        out two = split(text, calls, (size_t[]){i}, 1);
        bad += !same(&whole, &two);
        for (size_t j = i; j <= len && len < 200; j++) {
            out three = split(text, calls, (size_t[]){i, j}, 2);
            bad += !same(&whole, &three);
        }
    }
    free(cuts);
    CHECK_MSG(bad == 0, "%s: %zu cuttings differ from the whole", text, bad);
}

/* A call as the splitter hands it on (toolcall.h, SERVER_TOOLS_HARMONY). */
#define CALL_HEAD        "<|start|>assistant to=functions."
#define CALL(name, args) CALL_HEAD name "<|channel|>commentary json<|message|>" args "<|call|>"

static void channels(void) {
    /* thinking then the answer ("<|return|>" ends generation without being text) */
    expect("<|channel|>analysis<|message|>User asks 2+2. Answer 4.<|end|><|start|>assistant"
           "<|channel|>final<|message|>2 + 2 = 4.",
           false, "User asks 2+2. Answer 4.", "2 + 2 = 4.");
    expect("<|channel|>analysis<|message|>a<|end|><|start|>assistant<|channel|>final<|message|>"
           "b<|return|>",
           false, "a", "b");
    /* no thinking; a final channel with a constraint */
    expect("<|channel|>final <|constrain|>json<|message|>{\"a\":1}", false, "", "{\"a\":1}");
    /* a preamble (commentary to no one) is for the user, like the final answer */
    expect("<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>final"
           "<|message|>Done.",
           false, "", "Checking.Done.");
    /* gpt-oss-20b's stray commentary header before the analysis */
    expect("<|channel|>commentary to=assistant<|channel|>analysis<|message|>hm<|end|>", false, "hm",
           "");
    /* two analysis messages; space between messages; markup-like text inside a body */
    expect("<|channel|>analysis<|message|>x <| y<|end|>\n<|start|>assistant<|channel|>analysis"
           "<|message|>z<|end|><|start|>assistant<|channel|>final<|message|><|end|",
           false, "x <| yz", "<|end|");
    /* a body closed by the next message's start, without an end */
    expect("<|channel|>analysis<|message|>t<|start|>assistant<|channel|>final<|message|>a", false,
           "t", "a");
    /* UTF-8 passes through */
    expect("<|channel|>final<|message|>Grüße, 世界", false, "", "Grüße, 世界");
}

static void calls(void) {
    const char *text = "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant"
                       "<|channel|>commentary to=functions.get_weather <|constrain|>json"
                       "<|message|>{\"city\":\"Paris\"}";
    expect(text, true, "Need the weather.", CALL("get_weather", "{\"city\":\"Paris\"}"));
    /* without tools in the request, calls are dropped like built-in tools' */
    expect(text, false, "Need the weather.", "");
    expect("<|channel|>analysis<|message|>search<|end|><|start|>assistant<|channel|>analysis "
           "to=browser.search code<|message|>{\"query\":\"x\"}<|call|>",
           true, "search", "");
    /* the recipient in the role (how the template renders calls), first message and later */
    expect(" to=functions.now<|channel|>commentary json<|message|>{}<|call|>", true, "",
           CALL("now", "{}"));
    expect("<|channel|>commentary<|message|>Let me look.<|end|><|start|>assistant "
           "to=functions.a<|channel|>commentary json<|message|>{\"x\":[1]}<|call|>",
           true, "", "Let me look." CALL("a", "{\"x\":[1]}"));

    /* the answer text goes through the call parser */
    server_toolcalls c;
    shimmy_error err;
    const char *two = "Let me look." CALL("a", "{\"x\": [1, 2]}") CALL("b", "{}");
    CHECK(server_toolcall_parse(SERVER_TOOLS_HARMONY, two, strlen(two), &c, &err) == SHIMMY_OK);
    CHECK_EQ_INT(c.n, 2);
    if (c.n == 2) {
        CHECK_STR(c.calls[0].name, "a");
        CHECK_STR(c.calls[0].arguments, "{\"x\":[1,2]}");
        CHECK_STR(c.calls[1].name, "b");
        CHECK_STR(c.calls[1].arguments, "{}");
        CHECK_STR(c.content, "Let me look.");
    }
    server_toolcalls_free(&c);
    /* arguments that are not a JSON object, a cut-off call, a bad name: content, no call */
    const char *bad[] = {CALL("a", "[1]"), CALL("a", "{\"x\":"),
                         "<|start|>assistant to=functions.a<|channel|>commentary json<|message|>{}",
                         CALL("a b", "{}"), CALL("", "{}")};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(server_toolcall_parse(SERVER_TOOLS_HARMONY, bad[i], strlen(bad[i]), &c, &err) ==
              SHIMMY_OK);
        CHECK_MSG(c.n == 0, "%s: parsed as a call", bad[i]);
        server_toolcalls_free(&c);
    }
    /* streaming holds from the call's start */
    bool started;
    const char *t = "Hi <|start|>assis";
    CHECK_EQ_INT(server_toolcall_hold(SERVER_TOOLS_HARMONY, t, strlen(t), true, &started), 3);
    CHECK(!started);
    t = "Hi " CALL("a", "{}");
    CHECK_EQ_INT(server_toolcall_hold(SERVER_TOOLS_HARMONY, t, strlen(t), true, &started), 3);
    CHECK(started);
    CHECK(server_toolcall_format("{{ '<|start|>assistant<|channel|>final' }}", NULL) ==
          SERVER_TOOLS_HARMONY);
    CHECK(server_toolcall_format(NULL, "harmony") == SERVER_TOOLS_HARMONY);
}

static void degraded(void) {
    /* no markup: the model answered in plain text */
    expect("Hello world", true, "", "Hello world");
    expect(" to be or not", true, "", " to be or not");
    /* an unknown marker in a header, text where the next message should start */
    expect("<|channel|>analysis<|foo|>x", true, "", "<|channel|>analysis<|foo|>x");
    expect("<|channel|>final<|message|>ok<|end|>junk<|end|>", true, "", "okjunk<|end|>");
    expect("<|channel|>analysis<|message|>a<|end|><|start|>user<|end|>b", true, "a",
           "<|start|>user<|end|>b");
    /* a header cut off by max_tokens is markup, not text */
    expect("<|channel|>analysis<|message|>a<|end|><|start|>assistant<|chan", true, "a", "");
    expect("<|channel|>fin", true, "", "");
    /* a body cut off inside what might have been a closer keeps those bytes */
    expect("<|channel|>final<|message|>a <|en", true, "", "a <|en");
    /* a header longer than the hold */
    char longer[400] = "<|channel|>";
    memset(longer + 11, 'a', 300);
    longer[311] = '\0';
    expect(longer, true, "", longer);
}

static void states(void) {
    CHECK(server_reasoning_prompt_harmony("<|end|><|start|>assistant", 25));
    CHECK(!server_reasoning_prompt_harmony("<|start|>assistant<|channel|>", 29));
    CHECK(!server_reasoning_prompt_harmony("<|im_start|>assistant\n", 22));
    server_reasoning r;
    out o = {0};
    server_reasoning_init_harmony(&r, false);
    CHECK(server_reasoning_thinking(&r));
    const char *a = "<|channel|>analysis<|message|>x";
    server_reasoning_push(&r, a, strlen(a), collect, &o);
    CHECK(server_reasoning_thinking(&r));
    const char *f = "<|end|><|start|>assistant<|channel|>final<|message|>y";
    server_reasoning_push(&r, f, strlen(f), collect, &o);
    CHECK(!server_reasoning_thinking(&r));
    server_reasoning_flush(&r, collect, &o);
    /* the plain splitter is untouched by a harmony stream before it */
    server_reasoning_init(&r, false);
    CHECK(!r.harmony);
}

int main(void) {
    channels();
    calls();
    degraded();
    states();
    return test_finish("server/harmony");
}
