/*
 * libFuzzer target: the Jinja interpreter (src/chat) on hostile template text and a hostile
 * conversation. A GGUF from a stranger carries the template; any client sends the messages.
 *
 * Input: template text, then optionally a NUL byte and a JSON conversation: an array of
 * messages, or an object {"messages": [...], "tools": [...], "extra": {...},
 * "add_generation_prompt": bool, "trim": bool}. Anything else renders a fixed conversation.
 *
 * Checked: compile and render either succeed or fail with SHIMMY_ERR_TEMPLATE and a message;
 * the sandbox holds: the output stays within max_output, the heap the render grows stays within
 * the memory budget (measured through the sanitizer's malloc hooks where there is one), the step
 * budget bounds the time (libFuzzer -timeout / the driver's alarm), deep nesting is an error and
 * not a stack overflow; the content spans are sorted, disjoint, merged and inside the text.
 */
#include "chat/chat.h"

#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_STEPS = 200000, MAX_DEPTH = 40 };
#define MAX_MEMORY ((size_t)8 << 20)
#define MAX_OUTPUT ((size_t)1 << 20)
/* What the render may hold beyond the arena budget: chunk headers, the output copy, scopes. */
#define HEAP_SLACK ((size_t)4 << 20)

/* ---- heap accounting through the sanitizer allocator (ASan/UBSan builds only) ---- */

int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *))
    __attribute__((weak));
size_t __sanitizer_get_allocated_size(const volatile void *p) __attribute__((weak));

static int counting;
static long long live, peak;

static void on_malloc(const volatile void *p, size_t n) {
    if (!counting) return;
    live += (long long)n;
    if (live > peak) peak = live;
}

static void on_free(const volatile void *p) {
    if (counting && p && __sanitizer_get_allocated_size)
        live -= (long long)__sanitizer_get_allocated_size(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (__sanitizer_install_malloc_and_free_hooks && __sanitizer_get_allocated_size)
        __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    return 0;
}

static const char default_conv[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi <s>\"},"
    "{\"role\":\"assistant\",\"content\":\"Hello\",\"tool_calls\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1}}}]},{\"role\":\"tool\",\"content\":\"2\"}"
    ","
    "{\"role\":\"user\",\"content\":\"Thanks\"}]";

static void check_output(const chat_output *o) {
    FUZZ_REQUIRE(o->len <= MAX_OUTPUT && strlen(o->text) <= o->len);
    for (size_t i = 0; i < o->n_spans; i++) {
        const chat_span *s = &o->spans[i];
        FUZZ_REQUIRE(s->begin < s->end && s->end <= o->len);
        FUZZ_REQUIRE(i == 0 || s->begin > o->spans[i - 1].end); /* sorted, disjoint, merged */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *source = malloc(tlen + 1);
    if (!source) return 0;
    memcpy(source, data, tlen);
    source[tlen] = 0;

    json_t *conv = NULL;
    if (nul) conv = json_loadb((const char *)nul + 1, size - tlen - 1, JSON_DECODE_ANY, NULL);
    if (!conv) conv = json_loads(default_conv, 0, NULL);
    chat_render_params p = {.bos_token = "<s>",
                            .eos_token = "</s>",
                            .fixed_date = "2024-07-26",
                            .add_generation_prompt = true,
                            .max_steps = MAX_STEPS,
                            .max_memory = MAX_MEMORY,
                            .max_output = MAX_OUTPUT,
                            .max_depth = MAX_DEPTH};
    if (json_is_array(conv)) {
        p.messages = conv;
    } else if (json_is_object(conv)) {
        p.messages = json_object_get(conv, "messages");
        p.tools = json_object_get(conv, "tools");
        p.extra = json_object_get(conv, "extra");
        json_t *agp = json_object_get(conv, "add_generation_prompt");
        if (agp) p.add_generation_prompt = json_is_true(agp);
        p.trim_bos_eos = json_is_true(json_object_get(conv, "trim"));
    }

    shimmy_error err;
    shimmy_error_clear(&err);
    chat_template *t = NULL;
    shimmy_status st = chat_template_new(source, &t, &err);
    if (st != SHIMMY_OK) {
        FUZZ_REQUIRE(!t && err.message[0] && st == SHIMMY_ERR_TEMPLATE);
    } else {
        FUZZ_REQUIRE(strcmp(chat_template_source(t), source) == 0);
        chat_output out;
        shimmy_error_clear(&err);
        live = peak = 0;
        counting = 1;
        st = chat_render(t, &p, &out, &err);
        counting = 0;
        if ((size_t)peak > MAX_MEMORY + HEAP_SLACK) {
            fprintf(stderr, "render grew the heap by %lld bytes (budget %zu)\n", peak, MAX_MEMORY);
            abort();
        }
        bool bad_params = !json_is_array(p.messages) || (p.tools && !json_is_array(p.tools)) ||
                          (p.extra && !json_is_object(p.extra));
        if (st == SHIMMY_OK) {
            FUZZ_REQUIRE(!bad_params);
            check_output(&out);
            chat_output_free(&out);
        } else {
            FUZZ_REQUIRE(err.message[0] && !out.text && !out.spans);
            if (st != (bad_params ? SHIMMY_ERR_INVALID_ARG : SHIMMY_ERR_TEMPLATE)) {
                fprintf(stderr, "render failed with status %d: %s\n", (int)st, err.message);
                abort();
            }
        }
        /* The family classifier reads any template text. */
        const char *fam = chat_family_of(source);
        FUZZ_REQUIRE(fam && (strcmp(fam, "unknown") == 0 || chat_builtin_get(fam)));
        chat_template_free(t);
    }
    json_decref(conv);
    free(source);
    return 0;
}
