/* Bad templates and hostile ones: syntax errors name their line and column, runaway loops,
 * unbounded recursion, huge outputs and memory blow-ups stop with an error quickly, bad
 * arguments are refused, one template renders from several threads at once, and mutated real
 * templates never crash the interpreter. */
#include "chat/chat.h"
#include "test.h"

#include <pthread.h>

static shimmy_status run(const char *src, const char *msgs, chat_render_params *extra,
                         chat_output *out, shimmy_error *err) {
    chat_template *t = NULL;
    memset(out, 0, sizeof *out);
    shimmy_status st = chat_template_new(src, &t, err);
    if (st) return st;
    json_t *m = json_loads(msgs ? msgs : "[]", JSON_ALLOW_NUL, NULL);
    chat_render_params p = extra ? *extra : (chat_render_params){0};
    p.messages = m;
    st = chat_render(t, &p, out, err);
    json_decref(m);
    chat_template_free(t);
    return st;
}

static void expect_error(const char *src, const char *needle, chat_render_params *extra) {
    chat_output out;
    shimmy_error err;
    shimmy_error_clear(&err);
    double t0 = core_time_ms();
    shimmy_status st = run(src, NULL, extra, &out, &err);
    double ms = core_time_ms() - t0;
    CHECK_MSG(st == SHIMMY_ERR_TEMPLATE, "%.60s: status %s", src, shimmy_status_name(st));
    CHECK_MSG(strstr(err.message, needle) != NULL, "%.60s: message \"%s\" lacks \"%s\"", src,
              err.message, needle);
    /* a hang would show up here long before CTest's timeout; sanitizers slow things ~10x */
    CHECK_MSG(ms < 10000, "%.60s took %.0f ms", src, ms);
    printf("%-64.64s %8.1f ms  %s\n", src, ms, err.message);
    if (st == SHIMMY_OK) chat_output_free(&out);
}

static void syntax_errors(void) {
    expect_error("{% if x %}never closed", "line 1", NULL);
    expect_error("{% if x %}never closed", "endif", NULL);
    expect_error("line one\n{{ x + }}", "line 2, column", NULL);
    expect_error("{{ 'unterminated }}", "unterminated string", NULL);
    expect_error("{% endfor %}", "endfor", NULL);
    expect_error("{{ x | no_such_filter }}", "no_such_filter", NULL);
    expect_error("{{ x is no_such_test }}", "no_such_test", NULL);
    expect_error("{% include 'other.jinja' %}", "cannot load other files", NULL);
    expect_error("{% continue %}", "outside of a for loop", NULL);
    expect_error("{{ x }", "missing '}}'", NULL);
    expect_error("{% for in x %}{% endfor %}", "expected 'in'", NULL);
    expect_error("{# comment never closed", "unterminated comment", NULL);
    expect_error("{{ 99999999999999999999 }}", "too large", NULL);
}

static void runtime_errors(void) {
    expect_error("{{ raise_exception('Only user and assistant roles are supported!') }}",
                 "Only user and assistant roles are supported!", NULL);
    expect_error("{{ missing.attr }}", "'missing' is undefined", NULL);
    expect_error("\n\n  {{ 1 + 'a' }}", "line 3", NULL);
    expect_error("{{ [1][0:1:0] }}", "slice step", NULL);
    expect_error("{% set x = 1 %}{% set x.y = 2 %}", "namespace", NULL);
    expect_error("{% for a, b in [1, 2] %}{% endfor %}", "unpack", NULL);
    expect_error("{{ 9223372036854775807 + 1 }}", "overflow", NULL);
}

static void limits(void) {
    /* 10^10 iterations: the step budget ends it */
    expect_error("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
                 "steps", NULL);
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested deeper", NULL);
    expect_error("{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}", "output limit", NULL);
    expect_error("{{ 'x' * 10000000000 }}", "output limit", NULL);
    expect_error("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}"
                 "{% set ns.l = ns.l + ns.l %}{% endfor %}",
                 "memory budget", NULL);
    expect_error("{{ range(1000000)|length }}", "too big", NULL);
    char *deep = malloc(30000);
    size_t n = 0;
    n += (size_t)sprintf(deep + n, "{{ ");
    for (int i = 0; i < 10000; i++) deep[n++] = '(';
    deep[n++] = '1';
    for (int i = 0; i < 10000; i++) deep[n++] = ')';
    strcpy(deep + n, " }}");
    expect_error(deep, "nesting", NULL);
    n = 0;
    for (int i = 0; i < 2000; i++) n += (size_t)sprintf(deep + n, "{%% if 1 %%}");
    deep[n] = 0;
    expect_error(deep, "nesting", NULL);
    free(deep);
    chat_render_params small = {.max_output = 100};
    expect_error("{% for i in range(20) %}0123456789{% endfor %}", "output limit", &small);
    chat_render_params few = {.max_steps = 50};
    expect_error("{% for i in range(100) %}{{ i }}{% endfor %}", "steps", &few);
    chat_render_params shallow = {.max_depth = 3};
    expect_error("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}",
                 "nested deeper than 3", &shallow);
}

static void bad_arguments(void) {
    chat_template *t = NULL;
    shimmy_error err;
    CHECK(chat_template_new(NULL, &t, &err) == SHIMMY_ERR_INVALID_ARG && t == NULL);
    CHECK(chat_template_new("{{ messages|length }}", &t, &err) == SHIMMY_OK);
    chat_output out;
    json_t *obj = json_object(), *arr = json_array();
    chat_render_params p = {.messages = obj};
    CHECK(chat_render(t, &p, &out, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "messages");
    CHECK(out.text == NULL);
    p = (chat_render_params){.messages = arr, .tools = obj};
    CHECK(chat_render(t, &p, &out, &err) == SHIMMY_ERR_INVALID_ARG);
    p = (chat_render_params){.messages = arr, .extra = arr};
    CHECK(chat_render(t, &p, &out, &err) == SHIMMY_ERR_INVALID_ARG);
    /* errors may be ignored by passing NULL */
    CHECK(chat_render(t, &p, &out, NULL) == SHIMMY_ERR_INVALID_ARG);
    p = (chat_render_params){.messages = arr};
    CHECK(chat_render(t, &p, &out, NULL) == SHIMMY_OK);
    CHECK(out.len == 1 && strcmp(out.text, "0") == 0);
    chat_output_free(&out);
    chat_output_free(&out); /* twice is harmless */
    chat_output_free(NULL);
    chat_template_free(t);
    chat_template_free(NULL);
    json_decref(obj);
    json_decref(arr);
    /* embedded NUL bytes in content come through with the exact length */
    shimmy_status st = run("[{{ messages[0].content }}]",
                           "[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]", NULL, &out, &err);
    CHECK(st == SHIMMY_OK && out.len == 5 && memcmp(out.text, "[a\0b]", 6) == 0);
    chat_output_free(&out);
}

/* A long conversation is not a runaway template: the default limits grow with the input. */
static void long_conversation(void) {
    size_t n = (size_t)12 << 20;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
    big[n] = 0;
    json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", big);
    chat_template *t = NULL;
    CHECK(chat_template_new(chat_builtin_get("chatml"), &t, NULL) == SHIMMY_OK);
    chat_render_params p = {.messages = msgs, .add_generation_prompt = true};
    chat_output out;
    shimmy_error err;
    shimmy_status st = chat_render(t, &p, &out, &err);
    CHECK_MSG(st == SHIMMY_OK, "%s", err.message);
    if (st == SHIMMY_OK) {
        CHECK(out.len == n + strlen("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"));
        CHECK(out.n_spans == 1 && out.spans[0].end - out.spans[0].begin == n);
        chat_output_free(&out);
    }
    chat_template_free(t);
    json_decref(msgs);
    free(big);
}

typedef struct job {
    const chat_template *t;
    const json_t *msgs;
    char *text;
    int failures;
} job;

static void *render_many(void *arg) {
    job *j = arg;
    for (int i = 0; i < 200; i++) {
        chat_render_params p = {.messages = j->msgs, .add_generation_prompt = true};
        chat_output out;
        if (chat_render(j->t, &p, &out, NULL) != SHIMMY_OK) {
            j->failures++;
            continue;
        }
        if (!j->text)
            j->text = strdup(out.text);
        else if (strcmp(j->text, out.text) != 0)
            j->failures++;
        chat_output_free(&out);
    }
    return NULL;
}

static void concurrent_renders(void) {
    chat_template *t = NULL;
    CHECK(chat_template_new(chat_builtin_get("llama3"), &t, NULL) == SHIMMY_OK);
    json_t *msgs =
        json_loads("[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":"
                   "\"hello\"}]",
                   0, NULL);
    job jobs[4] = {{0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){.t = t, .msgs = msgs};
        pthread_create(&th[i], NULL, render_many, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(jobs[i].failures, 0);
        CHECK(jobs[i].text && strcmp(jobs[i].text, jobs[0].text) == 0);
    }
    for (int i = 0; i < 4; i++) free(jobs[i].text);
    json_decref(msgs);
    chat_template_free(t);
}

/* The deepest nesting a template can reach (expressions 50 deep inside macro calls 100 deep)
 * must end in an error, not a stack overflow, even on a thread with a small stack. */
static void *deep_render(void *arg) {
    char *src = malloc(8000);
    size_t n = (size_t)sprintf(src, "{%% macro f(n) %%}{%% if n > 0 %%}{{ ");
    for (int i = 0; i < 50; i++) src[n++] = '(';
    n += (size_t)sprintf(src + n, "f(n - 1)");
    for (int i = 0; i < 50; i++) n += (size_t)sprintf(src + n, " ~ 'x')");
    sprintf(src + n, " }}{%% endif %%}{%% endmacro %%}{{ f(99) }}");
    chat_output out;
    shimmy_error err;
    *(shimmy_status *)arg = run(src, NULL, NULL, &out, &err);
    if (*(shimmy_status *)arg == SHIMMY_OK)
        chat_output_free(&out);
    else
        printf("deep nesting: %s\n", err.message);
    free(src);
    return NULL;
}

static void small_stack(void) {
#ifdef SHIMMY_TEST_SANITIZED
    size_t stack = (size_t)16 << 20; /* sanitizer frames are several times larger */
#else
    size_t stack = (size_t)2 << 20;
#endif
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack);
    pthread_t th;
    shimmy_status st = SHIMMY_OK;
    CHECK(pthread_create(&th, &attr, deep_render, &st) == 0);
    pthread_join(th, NULL);
    pthread_attr_destroy(&attr);
    CHECK(st == SHIMMY_ERR_TEMPLATE);
}

/* Random edits of real templates: any outcome but a crash, a hang or a leak is fine. */
static void mutations(void) {
    static const char *const files[] = {"meetkai-functionary-medium-v3.2.jinja",
                                        "CohereForAI-c4ai-command-r-plus-tool_use.jinja",
                                        "mistralai-Mistral-Nemo-Instruct-2407.jinja"};
    static const char alphabet[] = "{}%#-+()[]|.,:'\"\\ \nabz019~*/=<>!";
    json_t *msgs =
        json_loads("[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":"
                   "\"u\"},{\"role\":\"assistant\",\"content\":\"a\"}]",
                   0, NULL);
    test_rng rng;
    test_rng_seed(&rng, 1234);
    int compiled = 0, rendered = 0, total = 0;
#ifdef SHIMMY_TEST_SANITIZED
    const int per_file = 60;
#else
    const int per_file = 400;
#endif
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char rel[256], path[1024];
        snprintf(rel, sizeof rel, "templates/%s", files[f]);
        if (!test_data_path(rel, path, sizeof path)) continue;
        size_t len;
        char *src = test_read_file(path, &len);
        if (!src) continue;
        char *buf = malloc(len + 64);
        for (int k = 0; k < per_file; k++) {
            memcpy(buf, src, len + 1);
            size_t n = len;
            int edits = 1 + (int)(test_rng_u64(&rng) % 4);
            for (int e = 0; e < edits && n > 1; e++) {
                size_t at = test_rng_u64(&rng) % n;
                int kind = (int)(test_rng_u64(&rng) % 3);
                if (kind == 0)
                    memmove(buf + at, buf + at + 1, n - at), n--; /* delete */
                else if (kind == 1)
                    buf[at] = alphabet[test_rng_u64(&rng) % (sizeof alphabet - 1)];
                else if (n < len + 60) { /* insert */
                    memmove(buf + at + 1, buf + at, n - at + 1);
                    buf[at] = alphabet[test_rng_u64(&rng) % (sizeof alphabet - 1)];
                    n++;
                }
            }
            total++;
            chat_template *t = NULL;
            if (chat_template_new(buf, &t, NULL) != SHIMMY_OK) continue;
            compiled++;
            chat_render_params p = {
                .messages = msgs, .add_generation_prompt = true, .max_steps = 200000};
            chat_output out;
            if (chat_render(t, &p, &out, NULL) == SHIMMY_OK) {
                rendered++;
                CHECK(out.text[out.len] == 0);
                chat_output_free(&out);
            }
            chat_template_free(t);
        }
        free(buf);
        free(src);
    }
    printf("mutations: %d tried, %d compiled, %d rendered\n", total, compiled, rendered);
    CHECK(total == 0 || compiled > 0);
    json_decref(msgs);
}

int main(void) {
    syntax_errors();
    runtime_errors();
    limits();
    bad_arguments();
    long_conversation();
    concurrent_renders();
    small_stack();
    mutations();
    return test_finish("chat/sandbox");
}
