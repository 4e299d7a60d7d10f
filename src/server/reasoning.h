/*
 * reasoning — separating a reasoning model's thinking from its answer, as text streams in.
 *
 * Qwen3, QwQ and the DeepSeek-R1 distills write "<think> ... </think>" before the answer; some
 * templates (DeepSeek-R1's) open "<think>" in the generation prompt, so the output starts
 * inside the thinking. server_reasoning is a pure incremental splitter: bytes in, runs of
 * thinking and answer out, with the same result however the stream is cut (a tag split across
 * pushes, at any byte). Rules (those of llama-server's "deepseek" format):
 *  - "<think>" opens the thinking only at the start of the output (after whitespace);
 *    anything else there means the model answers directly and the whole output is answer;
 *  - the thinking runs to the first "</think>" (or to the end of the output: a model cut off
 *    by max_tokens thought and never answered); leading and trailing whitespace of the
 *    thinking and leading whitespace of the answer are dropped.
 * OpenAI's harmony format (gpt-oss) has a splitter of its own behind the same calls (below).
 * Memory: a fixed buffer holds back what may still be a tag or trailing whitespace; nothing is
 * allocated. Thread-safety: one splitter per stream, used by one thread.
 */
#ifndef SHIMMY_SERVER_REASONING_H
#define SHIMMY_SERVER_REASONING_H

#include <stdbool.h>
#include <stddef.h>

/* "reasoning_format": the zero value splits (llama-server's "auto" and "deepseek"). */
typedef enum server_reasoning_format {
    SERVER_REASONING_AUTO = 0, /* split the thinking out of the answer */
    SERVER_REASONING_NONE,     /* keep the raw text, tags included, in the answer */
} server_reasoning_format;

/* Parses a reasoning_format value: "auto", "deepseek", "deepseek-legacy" (split) or "none";
 * false for anything else. */
bool server_reasoning_format_parse(const char *name, server_reasoning_format *out);

/* Receives one run of output: thinking (true) or answer (false); len > 0. */
typedef void (*server_reasoning_fn)(void *user, bool thinking, const char *text, size_t len);

#define SERVER_REASONING_HOLD 256 /* bytes held back at most (a run of trailing whitespace) */

/* Output gathered into runs of one kind (thinking or not), handed to fn when the kind changes or
 * the buffer fills; flush hands over the rest. Shared by the <think> and harmony splitters. */
typedef struct server_reasoning_run {
    server_reasoning_fn fn;
    void *user;
    bool thinking;
    size_t len;
    char buf[512];
} server_reasoning_run;
void server_reasoning_run_put(server_reasoning_run *o, bool thinking, const char *p, size_t n);
void server_reasoning_run_flush(server_reasoning_run *o);

typedef struct server_reasoning {
    int state;   /* internal: start, thinking, answer-start, answer (harmony: its own states) */
    size_t held; /* bytes in hold */
    char hold[SERVER_REASONING_HOLD];
    bool harmony; /* the stream is in OpenAI's harmony format (harmony.c) */
    bool calls;   /* harmony: tool calls are wanted (else dropped, as unsolicited) */
    bool first;   /* harmony: no message has begun yet */
    int kind;     /* harmony: what the current message's body is */
} server_reasoning;

/* Starts a stream; inside: the prompt already opened "<think>" (the output starts thinking). */
void server_reasoning_init(server_reasoning *r, bool inside);
/* Feeds len bytes; calls out for every run that is now certain (possibly several times). */
void server_reasoning_push(server_reasoning *r, const char *text, size_t len,
                           server_reasoning_fn out, void *user);
/* Ends the stream: what was held back and can be released is released. */
void server_reasoning_flush(server_reasoning *r, server_reasoning_fn out, void *user);
/* True while the stream is (or may still turn out to be) in the thinking part. */
bool server_reasoning_thinking(const server_reasoning *r);

/* OpenAI's harmony format (gpt-oss, harmony.c): the answer is a series of messages
 * "<|channel|>NAME<|message|>BODY<|end|>", each later one opened by "<|start|>assistant"; the
 * prompt already opened the first. The analysis channel is thinking; final (and commentary
 * addressed to no one: a preamble for the user) is answer. A message addressed "to=functions.NAME"
 * is a tool call: when `calls`, it goes to the answer as
 * "<|start|>assistant to=functions.NAME<|channel|>commentary json<|message|>ARGS<|call|>" (as
 * the template renders a call, parsed by toolcall.h's SERVER_TOOLS_HARMONY); otherwise, like
 * calls to other recipients (built-in browser/python tools), it is dropped. "<|end|>",
 * "<|return|>", "<|call|>" or the end of the stream close a message. Markup that cannot be a
 * header (too long, unknown markers, text where a header belongs) turns the rest of the stream,
 * held bytes included, into answer text as written; a header cut off by the end is dropped. */
void server_reasoning_init_harmony(server_reasoning *r, bool calls);

/* Whether a rendered prompt's end opens a harmony assistant message ("<|start|>assistant"). */
bool server_reasoning_prompt_harmony(const char *tail, size_t len);

/* Whether a rendered prompt's end opens the thinking: it ends with "<think>" and optional
 * whitespace (DeepSeek-R1's template; Qwen3's with enable_thinking false closes it again). */
bool server_reasoning_prompt_opens(const char *tail, size_t len);

#endif
