/*
 * chat — turning a conversation into the exact prompt text a model was trained on.
 *
 * A model's chat template is a Jinja program (tokenizer.chat_template in a GGUF). This module
 * compiles it once with its own sandboxed Jinja interpreter (the environment of Hugging Face
 * transformers: trim_blocks, lstrip_blocks, loop controls, raise_exception, strftime_now, tojson
 * without ASCII escaping) and renders it per request. Models without a template get one of the
 * built-in families, written as Jinja sources and rendered by the same interpreter.
 *
 * Invariants:
 *  - Rendering is sandboxed: no file or environment access, a step budget (time), a memory
 *    budget, a recursion limit and an output limit. Any failure, including a template's own
 *    raise_exception(), is SHIMMY_ERR_TEMPLATE with the template line/column or the message.
 *  - out->spans lists, in order and non-overlapping, the byte ranges of out->text that came from
 *    message content (strings under messages[*].content), so the tokenizer can parse special
 *    tokens in the template's own text but never in what a user wrote. Provenance survives
 *    concatenation, slicing, trim/strip and macro calls; other string transformations of content
 *    (upper, replace, ...) keep it only when the whole string was content.
 *
 * Ownership: chat_template_new/chat_template_free pair up (the source is copied);
 * chat_output_free releases what chat_render filled in. Render parameters are borrowed for the
 * duration of the call. Strings returned by chat_builtin_* / chat_family_* are static.
 * Thread-safety: a chat_template is immutable after chat_template_new; any number of threads may
 * render it concurrently (each render has its own memory).
 */
#ifndef SHIMMY_CHAT_H
#define SHIMMY_CHAT_H

#include "core/core.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct chat_template chat_template;

/* Compiles a Jinja template. Syntax errors are SHIMMY_ERR_TEMPLATE naming line and column. */
shimmy_status chat_template_new(const char *source, chat_template **out, shimmy_error *err);
void chat_template_free(chat_template *t);
/* The source text the template was compiled from (borrowed, valid until chat_template_free). */
const char *chat_template_source(const chat_template *t);

typedef struct chat_render_params {
    const json_t *messages; /* required: array of objects (role, content, tool_calls, ...) */
    const json_t *tools;    /* array, or NULL: `tools` is then undefined */
    const json_t *extra;    /* object of further template variables, or NULL */
    bool add_generation_prompt;
    const char *bos_token; /* NULL = "" */
    const char *eos_token; /* NULL = "" */
    /* As llama-server does when the tokenizer adds BOS itself: drop one leading bos_token text
     * and one trailing eos_token text from the rendering. */
    bool trim_bos_eos;
    /* strftime_now() uses this date ("YYYY-MM-DD", reproducible tests) instead of the local
     * time when non-NULL. */
    const char *fixed_date;
    /* Limits; 0 = default: interpreter steps (2,000,000), bytes allocated while rendering
     * (64 MiB + 16 per byte of text in messages/tools/extra), output bytes (16 MiB + 4 per
     * input byte), nesting of macro calls (100). */
    uint64_t max_steps;
    size_t max_memory;
    size_t max_output;
    int max_depth;
} chat_render_params;

typedef struct chat_span {
    size_t begin, end; /* [begin, end) byte offsets into chat_output.text */
} chat_span;

typedef struct chat_output {
    char *text; /* owned, NUL-terminated, exactly len bytes before the NUL */
    size_t len;
    chat_span *spans; /* owned; sorted, disjoint, non-empty, adjacent ranges merged */
    size_t n_spans;
} chat_output;

/* Renders. On failure *out is zeroed and nothing needs freeing. */
shimmy_status chat_render(const chat_template *t, const chat_render_params *p, chat_output *out,
                          shimmy_error *err);
void chat_output_free(chat_output *out);

/* ---- built-in families ---- */

/* Jinja source of a built-in template ("chatml", "llama2", "llama3", "mistral", "phi3",
 * "gemma", "zephyr", "vicuna", "openchat", "deepseek", "command-r", "harmony"), or NULL. */
const char *chat_builtin_get(const char *name);
size_t chat_builtin_count(void);
const char *chat_builtin_name(size_t i); /* NULL when i >= chat_builtin_count() */

/* True when the vocabulary has a token whose text is exactly `text`. */
typedef bool (*chat_has_token_fn)(const char *text, void *user);

/* Chooses a built-in for a model without a template, from its vocabulary's marker tokens first
 * and its architecture name (general.architecture, may be NULL) second. has_token may be NULL.
 * Always returns a name (chatml as the last resort). */
const char *chat_builtin_pick(const char *arch, chat_has_token_fn has_token, void *user);

/* Classifies a template text into a family name (one of the built-in names, or "unknown"). */
const char *chat_family_of(const char *source);
/* The text of the token that ends a model turn in a family ("<|im_end|>", "<|eot_id|>", "</s>",
 * ...), for the server's stop set; NULL for "unknown" or an unknown name. */
const char *chat_family_eot(const char *family);

#endif
