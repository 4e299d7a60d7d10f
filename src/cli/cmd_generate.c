/* shimmy generate: text from a prompt, streamed to stdout, or one JSON object with --json. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const USAGE =
    "shimmy generate MODEL --prompt TEXT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
    "       [--repeat-penalty R] [--repeat-last-n N] [--seed S] [--stop TEXT]... [--ignore-eos]\n"
    "       [--ctx-size N] [--threads N] [--kv f16|f32] [--lora FILE] [--lora-scaled FILE S]\n"
    "       [--grammar FILE | --json-schema FILE] [--grammar-after TEXT] [--json]\n"
    "       " CLI_DEVICE_USAGE;

#define MAX_STOP 16

typedef struct gen_opts {
    const char *model;
    const char *prompt;
    long n_predict;
    long last_n;
    shimmy_gen_options gp;
    const char *stop[MAX_STOP];
    size_t n_stop;
    bool json;
    const char *grammar_file, *schema_file; /* structured output (docs/grammar.md) */
    cli_run_opts run;
} gen_opts;

typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool json;
    bool failed;
} text_buf;

static shimmy_next sink(const char *text, size_t len, void *user) {
    text_buf *b = user;
    if (!b->json) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return ferror(stdout) ? SHIMMY_STOP : SHIMMY_CONTINUE;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return SHIMMY_STOP;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
    return SHIMMY_CONTINUE;
}

static int parse(int argc, char **argv, gen_opts *o) {
    memset(o, 0, sizeof *o);
    cli_run_opts_init(&o->run);
    /* llama.cpp's sampling defaults, as its tools take them */
    o->gp.temperature = 0.8f;
    o->gp.top_k = 40;
    o->gp.top_p = 0.95f;
    o->gp.min_p = 0.05f;
    o->gp.repeat_penalty = 1.0f;
    o->gp.seed = SHIMMY_SEED_RANDOM;
    o->last_n = 64;
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
            if (!cli_parse_double(val, 0, 10, &d))
                return cli_usage_error("generate", USAGE, "--temp must be in [0, 10]");
            o->gp.temperature = (float)d;
            i++;
        } else if (strcmp(a, "--top-k") == 0) {
            if (!cli_parse_long(val, 0, 1 << 30, &l))
                return cli_usage_error("generate", USAGE, "--top-k must be >= 0 (0 = off)");
            o->gp.top_k = (int32_t)l;
            i++;
        } else if (strcmp(a, "--top-p") == 0 || strcmp(a, "--min-p") == 0) {
            if (!cli_parse_double(val, 0, 1, &d))
                return cli_usage_error("generate", USAGE, "%s must be in [0, 1]", a);
            if (a[2] == 't')
                o->gp.top_p = (float)d;
            else
                o->gp.min_p = (float)d;
            i++;
        } else if (strcmp(a, "--repeat-penalty") == 0) {
            if (!cli_parse_double(val, 0.01, 10, &d))
                return cli_usage_error("generate", USAGE, "--repeat-penalty must be in [0.01, 10]");
            o->gp.repeat_penalty = (float)d;
            i++;
        } else if (strcmp(a, "--repeat-last-n") == 0) {
            if (!cli_parse_long(val, -1, 1 << 20, &l))
                return cli_usage_error("generate", USAGE,
                                       "--repeat-last-n must be in [-1, 1048576]");
            o->last_n = l;
            i++;
        } else if (strcmp(a, "--seed") == 0 || strcmp(a, "-s") == 0) {
            if (!cli_parse_long(val, 0, 0xFFFFFFFFL, &l))
                return cli_usage_error("generate", USAGE, "--seed must be in [0, 4294967295]");
            o->gp.seed = (uint32_t)l;
            i++;
        } else if (strcmp(a, "--grammar") == 0) {
            o->grammar_file = argv[++i];
        } else if (strcmp(a, "--json-schema") == 0) {
            o->schema_file = argv[++i];
        } else if (strcmp(a, "--grammar-after") == 0) {
            o->gp.grammar_after = argv[++i];
        } else if (strcmp(a, "--stop") == 0) {
            if (o->n_stop == MAX_STOP)
                return cli_usage_error("generate", USAGE, "at most %d --stop strings", MAX_STOP);
            o->stop[o->n_stop++] = argv[++i];
        } else {
            const int rc = cli_model_arg("generate", USAGE, a, &o->model);
            if (rc) return rc;
        }
    }
    if (!o->model) return cli_usage_error("generate", USAGE, "MODEL is missing");
    if (!o->prompt) return cli_usage_error("generate", USAGE, "--prompt is missing");
    if (o->grammar_file && o->schema_file)
        return cli_usage_error("generate", USAGE, "--grammar and --json-schema exclude each other");
    return 0;
}

static int print_json(const gen_opts *o, size_t n_prompt, const int32_t *out,
                      const shimmy_eval_output *r, const text_buf *text, double load_ms) {
    const shimmy_result *res = &r->result;
    json_t *root = json_object(), *toks = json_array(), *tim = json_object();
    for (int32_t i = 0; i < res->completion_tokens; i++)
        json_array_append_new(toks, json_integer(out[i]));
    json_object_set_new(root, "model", json_string(o->model));
    json_object_set_new(root, "prompt_tokens", json_integer((json_int_t)n_prompt));
    json_object_set_new(root, "tokens", toks);
    json_object_set_new(root, "text",
                        json_stringn(text->data ? text->data : "", text->data ? text->len : 0));
    json_object_set_new(root, "finish_reason", json_string(shimmy_finish_name(res->finish)));
    const int32_t n_eval = res->prompt_tokens - r->cached_tokens;
    json_object_set_new(tim, "load_ms", json_real(load_ms));
    json_object_set_new(tim, "prompt_ms", json_real(res->prompt_ms));
    json_object_set_new(tim, "generation_ms", json_real(res->gen_ms));
    json_object_set_new(tim, "ttft_ms", json_real(r->ttft_ms));
    json_object_set_new(tim, "prompt_tokens_per_s",
                        json_real(res->prompt_ms > 0 ? n_eval * 1000.0 / res->prompt_ms : 0.0));
    json_object_set_new(tim, "generation_tokens_per_s",
                        json_real(res->gen_ms > 0 && res->completion_tokens > 1
                                      ? (res->completion_tokens - 1) * 1000.0 / res->gen_ms
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
    const double t0 = cli_time_ms();
    shimmy_model *m = NULL;
    shimmy_evaluator *ev = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    text_buf text = {.json = o.json};
    shimmy_eval_output r = {0};
    char *grammar = NULL, *schema = NULL;
    size_t n_text;
    rc = 1;
    /* read before loading the model: a missing file is reported at once */
    if (o.grammar_file &&
        !(grammar = cli_read_file(o.grammar_file, true, SHIMMY_MAX_GRAMMAR_LEN, &n_text, &err)))
        goto done;
    if (o.schema_file &&
        !(schema = cli_read_file(o.schema_file, true, SHIMMY_MAX_GRAMMAR_LEN, &n_text, &err)))
        goto done;
    o.gp.grammar = grammar;
    o.gp.json_schema = schema;
    if (cli_load_model(o.model, path, &o.run, &m, &err)) goto done;
    if (shimmy_tokenize(shimmy_model_vocab(m), o.prompt, strlen(o.prompt),
                        SHIMMY_TOKENIZE_ADD_SPECIAL | SHIMMY_TOKENIZE_PARSE_SPECIAL, &prompt,
                        &n_prompt, &err))
        goto done;
    shimmy_evaluator_params ep = {.ctx_len = (int32_t)o.run.ctx,
                                  .kv = o.run.kv,
                                  .threads = (int32_t)o.run.threads,
                                  .lora = o.run.lora,
                                  .n_lora = o.run.n_lora};
    if (shimmy_evaluator_new(m, &ep, &ev, &err)) goto done;
    const double load_ms = cli_time_ms() - t0;
    const int32_t n_ctx = shimmy_evaluator_ctx_len(ev);
    /* -n -1: until the context is full, i.e. every position the prompt leaves */
    const long room = n_ctx - (long)n_prompt;
    o.gp.max_tokens = (int32_t)(o.n_predict < 0 ? (room > 0 ? room : 1) : o.n_predict);
    /* the window the penalties see: -1 is the whole context; 0 turns them off */
    if (o.last_n == 0) o.gp.repeat_penalty = 1.0f;
    o.gp.repeat_last_n = (int32_t)(o.last_n < 0 ? n_ctx : o.last_n == 0 ? 64 : o.last_n);
    o.gp.stop = o.stop;
    o.gp.n_stop = o.n_stop;
    r.ids_cap = (size_t)n_ctx;
    r.ids = malloc(sizeof *r.ids * r.ids_cap);
    if (!r.ids) {
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "cannot allocate the output");
        goto done;
    }
    if (o.n_predict == 0) {
        r.result.prompt_tokens = (int32_t)n_prompt;
    } else if (n_prompt == 0) {
        shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "prompt", "the prompt has no tokens");
        goto done;
    } else if (shimmy_evaluator_generate(ev, prompt, n_prompt, &o.gp, sink, &text, &r, &err)) {
        goto done;
    }
    if (text.failed) {
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "cannot buffer the generated text");
        goto done;
    }
    if (o.json) {
        rc = print_json(&o, n_prompt, r.ids, &r, &text, load_ms);
    } else {
        const shimmy_result *res = &r.result;
        printf("\n");
        fprintf(stderr,
                "shimmy: %d prompt tokens in %.1f ms, %d generated in %.1f ms (%.1f tokens/s), "
                "finish: %s\n",
                res->prompt_tokens, res->prompt_ms, res->completion_tokens, res->gen_ms,
                res->gen_ms > 0 && res->completion_tokens > 1
                    ? (res->completion_tokens - 1) * 1000.0 / res->gen_ms
                    : 0.0,
                shimmy_finish_name(res->finish));
        rc = 0;
    }
done:
    if (rc == 1 && err.status != SHIMMY_OK) cli_fail(&err);
    free(r.ids);
    free(text.data);
    free(grammar);
    free(schema);
    shimmy_free(prompt);
    shimmy_evaluator_free(ev);
    shimmy_model_unref(m);
    return rc;
}
