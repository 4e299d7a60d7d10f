/* shimmy generate: text from a prompt, streamed to stdout, or one JSON object with --json. */
#include "cli.h"
#include "engine/engine.h"
#include "lora/lora.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const USAGE =
    "shimmy generate MODEL --prompt TEXT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
    "       [--repeat-penalty R] [--repeat-last-n N] [--seed S] [--stop TEXT]... [--ignore-eos]\n"
    "       [--ctx-size N] [--threads N] [--kv f16|f32] [--lora FILE] [--lora-scaled FILE S]\n"
    "       [--json]";

#define MAX_STOP 16

typedef struct gen_opts {
    const char *model;
    const char *prompt;
    long n_predict;
    engine_gen_params gp;
    const char *stop[MAX_STOP];
    size_t n_stop;
    bool json;
    cli_run_opts run;
} gen_opts;

typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool json;
    bool failed;
} text_buf;

static bool sink(void *user, const char *text, size_t len, int32_t token) {
    (void)token;
    text_buf *b = user;
    if (!b->json) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return !ferror(stdout);
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return false;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
    return true;
}

static int parse(int argc, char **argv, gen_opts *o) {
    memset(o, 0, sizeof *o);
    cli_run_opts_init(&o->run);
    engine_gen_params_default(&o->gp);
    o->n_predict = 128;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        long l;
        int r = cli_run_opt("generate", USAGE, argc, argv, &i, &o->run);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", USAGE);
            exit(0);
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--ignore-eos") == 0) {
            o->gp.ignore_eos = true;
        } else if (a[0] == '-' && a[1] != '\0' && !val) {
            return cli_usage_error("generate", USAGE, "option %s needs a value", a);
        } else if (strcmp(a, "--prompt") == 0 || strcmp(a, "-p") == 0) {
            o->prompt = argv[++i];
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--n-predict") == 0) {
            if (!cli_parse_long(val, -1, 1 << 24, &o->n_predict))
                return cli_usage_error("generate", USAGE,
                                       "-n must be -1 (until the context is "
                                       "full) or a token count");
            i++;
        } else if (strcmp(a, "--temp") == 0) {
            if (!cli_parse_double(val, 0, 100, &d))
                return cli_usage_error("generate", USAGE, "--temp must be in [0, 100]");
            o->gp.sampling.temperature = (float)d;
            i++;
        } else if (strcmp(a, "--top-k") == 0) {
            if (!cli_parse_long(val, 0, 1 << 30, &l))
                return cli_usage_error("generate", USAGE, "--top-k must be >= 0 (0 = off)");
            o->gp.sampling.top_k = (int32_t)l;
            i++;
        } else if (strcmp(a, "--top-p") == 0 || strcmp(a, "--min-p") == 0) {
            if (!cli_parse_double(val, 0, 1, &d))
                return cli_usage_error("generate", USAGE, "%s must be in [0, 1]", a);
            if (a[2] == 't')
                o->gp.sampling.top_p = (float)d;
            else
                o->gp.sampling.min_p = (float)d;
            i++;
        } else if (strcmp(a, "--repeat-penalty") == 0) {
            if (!cli_parse_double(val, 0.01, 100, &d))
                return cli_usage_error("generate", USAGE,
                                       "--repeat-penalty must be in [0.01, 100]");
            o->gp.sampling.repeat_penalty = (float)d;
            i++;
        } else if (strcmp(a, "--repeat-last-n") == 0) {
            if (!cli_parse_long(val, -1, 1 << 24, &l))
                return cli_usage_error("generate", USAGE, "--repeat-last-n must be >= -1");
            o->gp.sampling.penalty_last_n = (int32_t)l;
            i++;
        } else if (strcmp(a, "--seed") == 0 || strcmp(a, "-s") == 0) {
            if (!cli_parse_long(val, 0, 0xFFFFFFFFL, &l))
                return cli_usage_error("generate", USAGE, "--seed must be in [0, 4294967295]");
            o->gp.sampling.seed = (uint32_t)l;
            i++;
        } else if (strcmp(a, "--stop") == 0) {
            if (o->n_stop == MAX_STOP)
                return cli_usage_error("generate", USAGE, "at most %d --stop strings", MAX_STOP);
            o->stop[o->n_stop++] = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error("generate", USAGE, "unknown option %s", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            return cli_usage_error("generate", USAGE, "unexpected argument '%s'", a);
        }
    }
    if (!o->model) return cli_usage_error("generate", USAGE, "MODEL is missing");
    if (!o->prompt) return cli_usage_error("generate", USAGE, "--prompt is missing");
    return 0;
}

static int print_json(const gen_opts *o, const tok_buf *prompt, const int32_t *out,
                      const engine_result *r, const text_buf *text, double load_ms) {
    json_t *root = json_object(), *toks = json_array(), *tim = json_object();
    for (int32_t i = 0; i < r->n_generated; i++) json_array_append_new(toks, json_integer(out[i]));
    json_object_set_new(root, "model", json_string(o->model));
    json_object_set_new(root, "prompt_tokens", json_integer((json_int_t)prompt->n));
    json_object_set_new(root, "tokens", toks);
    json_object_set_new(root, "text",
                        json_stringn(text->data ? text->data : "", text->data ? text->len : 0));
    json_object_set_new(root, "finish_reason", json_string(engine_finish_name(r->finish)));
    const int32_t n_eval = r->n_prompt - r->n_cached;
    json_object_set_new(tim, "load_ms", json_real(load_ms));
    json_object_set_new(tim, "prompt_ms", json_real(r->prompt_ms));
    json_object_set_new(tim, "generation_ms", json_real(r->gen_ms));
    json_object_set_new(tim, "ttft_ms", json_real(r->ttft_ms));
    json_object_set_new(tim, "prompt_tokens_per_s",
                        json_real(r->prompt_ms > 0 ? n_eval * 1000.0 / r->prompt_ms : 0.0));
    json_object_set_new(tim, "generation_tokens_per_s",
                        json_real(r->gen_ms > 0 && r->n_generated > 1
                                      ? (r->n_generated - 1) * 1000.0 / r->gen_ms
                                      : 0.0));
    json_object_set_new(root, "timings", tim);
    char *s = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!s) {
        fprintf(stderr, "shimmy: generate: cannot encode the result\n");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

int cli_cmd_generate(int argc, char **argv) {
    gen_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    char path[4096];
    shimmy_error err;
    shimmy_error_clear(&err);
    if (cli_resolve_model(o.model, path, sizeof path, &err) || cli_run_resolve_lora(&o.run, &err))
        return cli_fail(&err);
    const double t0 = core_time_ms();
    engine_model *m = NULL;
    engine_session *s = NULL;
    lora_set *lora = NULL;
    tok_buf prompt = {0};
    int32_t *out = NULL;
    text_buf text = {.json = o.json};
    engine_result r = {0};
    rc = 1;
    if (engine_model_open(path, NULL, &m, &err)) goto done;
    tok_encode_opts eo = {.add_special = true, .parse_special = true};
    if (tok_encode(engine_model_vocab(m), o.prompt, strlen(o.prompt), &eo, &prompt, &err))
        goto done;
    engine_session_params sp = {
        .n_ctx = (int32_t)o.run.ctx, .kv_type = o.run.kv, .n_threads = (int32_t)o.run.threads};
    if (engine_session_new(m, &sp, &s, &err)) goto done;
    if (o.run.n_lora && (engine_lora_open(m, o.run.lora, o.run.n_lora, &lora, &err) ||
                         engine_session_set_lora(s, lora, &err)))
        goto done;
    const double load_ms = core_time_ms() - t0;
    o.gp.max_tokens = (int32_t)(o.n_predict < 0 ? 0 : o.n_predict);
    o.gp.stop = o.stop;
    o.gp.n_stop = o.n_stop;
    const size_t cap = (size_t)engine_session_n_ctx(s);
    out = malloc(sizeof *out * cap);
    if (!out) {
        core_error(&err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate the output");
        goto done;
    }
    o.gp.out_tokens = out;
    o.gp.out_tokens_cap = cap;
    if (o.n_predict == 0) {
        r.n_prompt = (int32_t)prompt.n;
    } else if (engine_generate(s, prompt.ids, prompt.n, &o.gp, sink, &text, &r, &err)) {
        goto done;
    }
    if (text.failed) {
        core_error(&err, SHIMMY_ERR_NOMEM, NULL, "cannot buffer the generated text");
        goto done;
    }
    if (o.json) {
        rc = print_json(&o, &prompt, out, &r, &text, load_ms);
    } else {
        printf("\n");
        fprintf(stderr,
                "shimmy: %d prompt tokens in %.1f ms, %d generated in %.1f ms (%.1f tokens/s), "
                "finish: %s\n",
                r.n_prompt, r.prompt_ms, r.n_generated, r.gen_ms,
                r.gen_ms > 0 && r.n_generated > 1 ? (r.n_generated - 1) * 1000.0 / r.gen_ms : 0.0,
                engine_finish_name(r.finish));
        rc = 0;
    }
done:
    if (rc == 1 && err.status != SHIMMY_OK) cli_fail(&err);
    free(out);
    free(text.data);
    tok_buf_free(&prompt);
    engine_session_free(s);
    lora_set_free(lora);
    engine_model_close(m);
    return rc;
}
