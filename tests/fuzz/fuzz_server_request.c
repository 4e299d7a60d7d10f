/*
 * libFuzzer target: the server's request parsers (server_request_parse for every server_api) on
 * any body a client can send.
 *
 * Input: byte 0 picks the API (modulo the table below), the rest is the body.
 * Dialects added later (a new server_api value) go into `apis`; a dialect with its own parse
 * function gets its own fuzz_server_<dialect>.c (docs/fuzz.md).
 *
 * Checked: the body is refused with INVALID_JSON or INVALID_ARG and a message (a `where` for
 * INVALID_ARG), or the parsed request respects its limits: counts within their maxima, owned
 * strings NUL-terminated, max_tokens within the cap, the model name terminated, the message list
 * normalised to objects with a string role and content. Then it is released (leaks are findings).
 */
#include "server.h"

#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const server_api apis[] = {SERVER_API_CHAT, SERVER_API_COMPLETIONS, SERVER_API_GENERATE};
enum { N_APIS = sizeof apis / sizeof apis[0], CAP = 4096 };
static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    server_api api = apis[data[0] % N_APIS];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    server_request r;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status st = server_request_parse(api, body, len, CAP, &r, &err);
    if (st != SHIMMY_OK) {
        FUZZ_REQUIRE(err.message[0]);
        if (st != SHIMMY_ERR_INVALID_JSON && st != SHIMMY_ERR_INVALID_ARG) {
            fprintf(stderr, "status %d: %s\n", (int)st, err.message);
            abort();
        }
        FUZZ_REQUIRE(st != SHIMMY_ERR_INVALID_ARG || err.where[0]);
        return 0;
    }
    FUZZ_REQUIRE(r.api == api && memchr(r.model, 0, sizeof r.model));
    FUZZ_REQUIRE(r.n_prompts <= SERVER_MAX_PROMPTS && r.n_stop <= SERVER_MAX_STOP &&
                 r.n_bias <= SERVER_MAX_BIAS && r.n_lora <= SERVER_MAX_LORA);
    FUZZ_REQUIRE(r.max_tokens >= -1 && r.max_tokens <= CAP);
    for (size_t i = 0; i < r.n_prompts; i++) sink += strlen(r.prompts[i]);
    for (size_t i = 0; i < r.n_stop; i++) sink += strlen(r.stop[i]);
    for (size_t i = 0; i < r.n_lora; i++)
        FUZZ_REQUIRE(memchr(r.lora[i].name, 0, sizeof r.lora[i].name) &&
                     r.lora[i].scale == r.lora[i].scale); /* terminated, not NaN */
    if (r.messages) {
        FUZZ_REQUIRE(json_is_array(r.messages) && r.n_prompts == 0);
        size_t i;
        json_t *m;
        json_array_foreach(r.messages, i, m) {
            FUZZ_REQUIRE(json_is_object(m) && json_is_string(json_object_get(m, "role")));
        }
    } else {
        FUZZ_REQUIRE(r.n_prompts > 0); /* a request is a conversation or prompts */
    }
    FUZZ_REQUIRE(!r.tools.tools || json_is_array(r.tools.tools));
    server_request_deinit(&r);
    return 0;
}
