/*
 * libFuzzer target: the tool-call parser (src/server/toolcall.c) over arbitrary model output in
 * every call format, plus the streaming hold-back scan, the request-side tools check and the
 * history message check (tools and tool_calls come from any client).
 *
 * Input: byte 0 picks the format (low 2 bits) and the mode (bit 2: also read the rest as a JSON
 * request {"tools", "tool_choice", "parallel_tool_calls", "message"}), the rest is the text.
 *
 * Checked: parsing never fails but for memory; a call has a non-empty name and arguments that
 * are the compact text of a JSON object; content is trimmed and NUL-terminated; n == 0 leaves
 * nothing allocated. The hold-back cut is within the text, never splits a UTF-8 character
 * (markers are ASCII), only grows with the text (a prefix never releases more than its
 * extension), and once a call has started the prefix is held to the end.
 */
#include "toolcall.h"

#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const server_tool_format formats[4] = {SERVER_TOOLS_GENERIC, SERVER_TOOLS_HERMES,
                                              SERVER_TOOLS_LLAMA3, SERVER_TOOLS_MISTRAL};
static volatile size_t sink;

static bool is_space(char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static void check_parse(server_tool_format f, const char *text, size_t len) {
    server_toolcalls c;
    memset(&c, 0xA5, sizeof c); /* the parser must fill every field */
    shimmy_error err;
    FUZZ_REQUIRE(server_toolcall_parse(f, text, len, &c, &err) == SHIMMY_OK); /* NOMEM only */
    FUZZ_REQUIRE(c.n > 0 || !c.calls);
    for (size_t i = 0; i < c.n; i++) {
        FUZZ_REQUIRE(c.calls[i].name && c.calls[i].name[0] && c.calls[i].arguments);
        json_error_t je;
        json_t *args = json_loads(c.calls[i].arguments, 0, &je);
        if (!json_is_object(args)) {
            fprintf(stderr, "arguments not an object: %s\n", c.calls[i].arguments);
            abort();
        }
        json_decref(args);
    }
    if (c.content) {
        FUZZ_REQUIRE(c.content_len > 0 && c.content[c.content_len] == 0);
        FUZZ_REQUIRE(!is_space(c.content[0]) && !is_space(c.content[c.content_len - 1]));
    } else {
        FUZZ_REQUIRE(c.content_len == 0);
    }
    server_toolcalls_free(&c);
}

static void check_hold(server_tool_format f, const char *text, size_t len) {
    size_t prev = 0;
    bool was_started = false;
    /* Every prefix a stream may see, as a generation grows (at most 64 of them). */
    size_t step = len / 64 + 1;
    for (size_t n = 0; n <= len; n += (n + step > len && n < len) ? len - n : step) {
        bool started = false;
        size_t cut = server_toolcall_hold(f, text, n, true, &started);
        FUZZ_REQUIRE(cut <= n);
        /* never inside a UTF-8 character: the byte at the cut is no continuation byte */
        FUZZ_REQUIRE(cut == n || (unsigned char)text[cut] < 0x80 ||
                     (unsigned char)text[cut] >= 0xC0);
        if (cut < prev) {
            fprintf(stderr, "hold released %zu bytes, then only %zu of a longer text\n", prev, cut);
            abort();
        }
        FUZZ_REQUIRE(!was_started || started);
        prev = cut;
        was_started = started;
        if (n == len) break;
    }
}

static void check_request(const char *text, size_t len) {
    json_t *root = json_loadb(text, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    server_tools t = {0};
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status st =
        server_tools_check(json_object_get(root, "tools"), json_object_get(root, "tool_choice"),
                           json_object_get(root, "parallel_tool_calls"), &t, &err);
    if (st != SHIMMY_OK) {
        FUZZ_REQUIRE(err.message[0] && !t.tools);
    } else {
        FUZZ_REQUIRE(!t.tools || json_is_array(t.tools));
        json_decref(t.tools);
    }
    json_t *msg = json_object_get(root, "message");
    if (json_is_object(msg)) {
        json_t *copy = json_deep_copy(msg);
        shimmy_error_clear(&err);
        FUZZ_REQUIRE(server_tools_message(copy, 0, &err) == SHIMMY_OK || err.message[0]);
        json_decref(copy);
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    server_tool_format f = formats[data[0] & 3];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    check_parse(f, text, len);
    check_hold(f, text, len);
    if (data[0] & 4) check_request(text, len);
    sink += strlen(server_toolcall_format_name(f));
    return 0;
}
