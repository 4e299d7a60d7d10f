/*
 * libFuzzer target: the Anthropic Messages and OpenAI Responses request parsers (compat.h) on any
 * body a client can send.
 *
 * Input: byte 0 picks the parser (0 /v1/messages, 1 /v1/messages/count_tokens, 2 /v1/responses;
 * modulo 3), the rest is the body.
 *
 * Checked: a refused body is INVALID_JSON or INVALID_ARG with a message (and a `where` for
 * INVALID_ARG); a parsed one is a chat request within its limits (messages an array of objects
 * with a string role and content, max_tokens within the cap, at most SERVER_MAX_STOP stop
 * sequences, all NUL-terminated, none in the library's stop list). Everything is released (leaks
 * are findings).
 */
#include "compat.h"

#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CAP = 4096 };
static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] % 3;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    server_request r;
    server_compat_req *x = calloc(1, sizeof *x);
    if (!x) return 0;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status st = which == 2 ? server_responses_parse(body, len, CAP, &r, x, &err)
                                  : server_anthropic_parse(body, len, CAP, which == 1, &r, x, &err);
    if (st != SHIMMY_OK) {
        FUZZ_REQUIRE(err.message[0]);
        if (st != SHIMMY_ERR_INVALID_JSON && st != SHIMMY_ERR_INVALID_ARG) {
            fprintf(stderr, "status %d: %s\n", (int)st, err.message);
            abort();
        }
        FUZZ_REQUIRE(!(st == SHIMMY_ERR_INVALID_ARG && !err.where[0]));
        server_compat_req_free(x);
        return 0;
    }
    FUZZ_REQUIRE(r.api == SERVER_API_CHAT && memchr(r.model, 0, sizeof r.model));
    FUZZ_REQUIRE(r.max_tokens >= -1 && r.max_tokens <= CAP);
    FUZZ_REQUIRE(r.n_stop == 0 && x->n_stop <= SERVER_MAX_STOP);
    for (size_t i = 0; i < x->n_stop; i++) sink += strlen(x->stop[i]);
    FUZZ_REQUIRE(json_is_array(r.messages) && json_array_size(r.messages) > 0);
    size_t i;
    json_t *m;
    json_array_foreach(r.messages, i, m) {
        FUZZ_REQUIRE(json_is_object(m) && json_is_string(json_object_get(m, "role")) &&
                     json_is_string(json_object_get(m, "content")));
    }
    FUZZ_REQUIRE(!(r.tools.tools && !json_is_array(r.tools.tools)));
    FUZZ_REQUIRE(which != 2 || json_is_object(x->echo));
    /* the stop scan on whatever text the body held */
    if (x->n_stop) {
        int hit;
        size_t n = server_compat_stop_scan(body, len, x->stop, x->n_stop, &hit);
        FUZZ_REQUIRE(n <= len && hit >= 0 && (size_t)hit <= x->n_stop);
        FUZZ_REQUIRE(!hit || memcmp(body + n, x->stop[hit - 1], strlen(x->stop[hit - 1])) == 0);
    }
    server_request_deinit(&r);
    server_compat_req_free(x);
    return 0;
}
