/*
 * libFuzzer target: the Ollama request parsers (ollama.h) on any body a client can send, and the
 * keep_alive duration parser on any string.
 *
 * Input: byte 0 picks the parser (0 /api/generate, 1 /api/chat, 2 a keep_alive string; modulo
 * 3), the rest is the body (or the duration's text).
 *
 * Checked: a refused body is INVALID_JSON or INVALID_ARG with a message (and a `where` for
 * INVALID_ARG); a parsed one names a model, keeps max_tokens within the cap, has at most
 * SERVER_MAX_STOP non-empty stop strings, sampling options the library accepts
 * (shimmy_gen_options_check), and either nothing to generate (load_only) or messages that are
 * objects with a string role and content (or, for a raw prompt, one prompt). A parsed duration is
 * -1 or a finite number >= 0. Everything is released (leaks are findings).
 */
#include "ollama.h"

#include "fuzz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CAP = 4096 };
static volatile size_t sink;

static void check_duration(const uint8_t *data, size_t size) {
    json_t *v = json_stringn((const char *)data, size);
    if (!v) return; /* not UTF-8: no client can send it as a JSON string */
    double s = 0;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status st = ollama_duration_parse(v, "keep_alive", &s, &err);
    if (st) {
        FUZZ_REQUIRE(st == SHIMMY_ERR_INVALID_ARG && err.message[0]);
        FUZZ_REQUIRE(strcmp(err.where, "keep_alive") == 0);
    } else {
        FUZZ_REQUIRE(s == -1 || (isfinite(s) && s >= 0));
    }
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] % 3;
    if (which == 2) {
        check_duration(data + 1, size - 1);
        return 0;
    }
    server_request r;
    ollama_opts o;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status st =
        ollama_request_parse(which == 1, (const char *)data + 1, size - 1, CAP, &r, &o, &err);
    if (st != SHIMMY_OK) {
        FUZZ_REQUIRE(err.message[0]);
        if (st != SHIMMY_ERR_INVALID_JSON && st != SHIMMY_ERR_INVALID_ARG) {
            fprintf(stderr, "status %d: %s\n", (int)st, err.message);
            abort();
        }
        FUZZ_REQUIRE(!(st == SHIMMY_ERR_INVALID_ARG && !err.where[0]));
        return 0;
    }
    FUZZ_REQUIRE(r.model[0] && memchr(r.model, 0, sizeof r.model));
    FUZZ_REQUIRE(r.max_tokens == -1 || (r.max_tokens >= 1 && r.max_tokens <= CAP));
    FUZZ_REQUIRE(r.n_stop <= SERVER_MAX_STOP);
    for (size_t i = 0; i < r.n_stop; i++) FUZZ_REQUIRE(strlen(r.stop[i]) > 0);
    FUZZ_REQUIRE(shimmy_gen_options_check(&r.gen, &err) == SHIMMY_OK);
    FUZZ_REQUIRE(o.chat == (which == 1));
    FUZZ_REQUIRE(!o.format || json_is_string(o.format) || json_is_object(o.format));
    FUZZ_REQUIRE(!o.format == !o.grammar); /* a format is accepted only with its grammar */
    FUZZ_REQUIRE(!o.has_keep_alive || o.keep_alive_s == -1 || o.keep_alive_s >= 0);
    if (!o.load_only) {
        FUZZ_REQUIRE((r.messages != NULL) != (r.n_prompts == 1));
        size_t i;
        json_t *m;
        json_array_foreach(r.messages, i, m) {
            FUZZ_REQUIRE(json_is_object(m) && json_is_string(json_object_get(m, "role")) &&
                         json_is_string(json_object_get(m, "content")));
        }
        if (r.n_prompts) sink += strlen(r.prompts[0]);
    }
    FUZZ_REQUIRE(!(r.tools.tools && !json_is_array(r.tools.tools)));
    server_request_deinit(&r);
    ollama_opts_deinit(&o);
    return 0;
}
