/* shimmy logits: top-K logits after a prompt and after each forced continuation token (teacher
 * forcing: the prompt in one batch, then one token per step, as the reference files were made). */
#include "cli.h"
#include "engine/engine.h"
#include "lora/lora.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const USAGE =
    "shimmy logits MODEL --prompt TEXT [--continue ID,ID,...] [--top K] [--kv f16|f32]\n"
    "       [--ctx-size N] [--threads N] [--lora FILE] [--lora-scaled FILE S] [--json]";

typedef struct logits_opts {
    const char *model, *prompt, *cont;
    long top;
    bool json;
    cli_run_opts run;
} logits_opts;

static int parse(int argc, char **argv, logits_opts *o) {
    memset(o, 0, sizeof *o);
    cli_run_opts_init(&o->run);
    o->top = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_run_opt("logits", USAGE, argc, argv, &i, &o->run);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", USAGE);
            exit(0);
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (a[0] == '-' && a[1] != '\0' && !val) {
            return cli_usage_error("logits", USAGE, "option %s needs a value", a);
        } else if (strcmp(a, "--prompt") == 0 || strcmp(a, "-p") == 0) {
            o->prompt = argv[++i];
        } else if (strcmp(a, "--continue") == 0) {
            o->cont = argv[++i];
        } else if (strcmp(a, "--top") == 0) {
            if (!cli_parse_long(val, 1, 1 << 20, &o->top))
                return cli_usage_error("logits", USAGE, "--top must be a positive count");
            i++;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error("logits", USAGE, "unknown option %s", a);
        } else if (!o->model) {
            o->model = a;
        } else {
            return cli_usage_error("logits", USAGE, "unexpected argument '%s'", a);
        }
    }
    if (!o->model) return cli_usage_error("logits", USAGE, "MODEL is missing");
    if (!o->prompt) return cli_usage_error("logits", USAGE, "--prompt is missing");
    return 0;
}

/* "12,34,5" -> ids appended to out; false (with a message) on anything else. */
static bool parse_ids(const char *s, tok_buf *out) {
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "shimmy: logits: --continue must be comma-separated token ids\n");
            return false;
        }
        if (tok_buf_push(out, (int32_t)v, NULL)) return false;
        s = *end ? end + 1 : end;
    }
    return true;
}

/* Appends the top-k [id, logit] pairs of logits to steps (best first, ties to the lower id). */
static void top_k(const float *logits, int32_t n_vocab, int32_t k, int32_t *idx, json_t *steps) {
    int32_t n = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        if (n == k && !(logits[i] > logits[idx[k - 1]])) continue;
        int32_t j = n < k ? n++ : k - 1;
        while (j > 0 && logits[i] > logits[idx[j - 1]]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    json_t *step = json_array();
    for (int32_t j = 0; j < n; j++) {
        json_t *pair = json_array();
        json_array_append_new(pair, json_integer(idx[j]));
        json_array_append_new(pair, json_real(logits[idx[j]]));
        json_array_append_new(step, pair);
    }
    json_array_append_new(steps, step);
}

int cli_cmd_logits(int argc, char **argv) {
    logits_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    char path[4096];
    shimmy_error err;
    shimmy_error_clear(&err);
    if (cli_resolve_model(o.model, path, sizeof path, &err) || cli_run_resolve_lora(&o.run, &err))
        return cli_fail(&err);
    engine_model *m = NULL;
    engine_session *s = NULL;
    lora_set *lora = NULL;
    tok_buf prompt = {0}, cont = {0};
    json_t *root = NULL;
    int32_t *idx = NULL;
    rc = 1;
    if (o.cont && !parse_ids(o.cont, &cont)) goto done;
    if (engine_model_open(path, NULL, &m, &err)) goto done;
    tok_encode_opts eo = {.add_special = true, .parse_special = true};
    if (tok_encode(engine_model_vocab(m), o.prompt, strlen(o.prompt), &eo, &prompt, &err))
        goto done;
    if (prompt.n == 0) {
        core_error(&err, SHIMMY_ERR_INVALID_ARG, "prompt", "the prompt has no tokens");
        goto done;
    }
    const size_t need = prompt.n + cont.n;
    engine_session_params sp = {.n_ctx = o.run.ctx ? (int32_t)o.run.ctx : (int32_t)need,
                                .n_batch = (int32_t)prompt.n,
                                .kv_type = o.run.kv,
                                .n_threads = (int32_t)o.run.threads};
    if (need > (size_t)sp.n_ctx) {
        core_error(&err, SHIMMY_ERR_CONTEXT_EXCEEDED, "ctx-size",
                   "%zu prompt + %zu forced tokens exceed the context size %d", prompt.n, cont.n,
                   sp.n_ctx);
        goto done;
    }
    if (engine_session_new(m, &sp, &s, &err)) goto done;
    if (o.run.n_lora && (engine_lora_open(m, o.run.lora, o.run.n_lora, &lora, &err) ||
                         engine_session_set_lora(s, lora, &err)))
        goto done;
    const int32_t n_vocab = engine_n_vocab(s);
    const int32_t k = o.top < n_vocab ? (int32_t)o.top : n_vocab;
    idx = malloc(sizeof *idx * (size_t)k);
    root = json_object();
    json_t *ptoks = json_array(), *steps = json_array();
    json_object_set_new(root, "prompt_tokens", ptoks);
    json_object_set_new(root, "steps", steps);
    if (!idx || !root) {
        core_error(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < prompt.n; i++) json_array_append_new(ptoks, json_integer(prompt.ids[i]));
    if (engine_eval(s, prompt.ids, prompt.n, 0, false, &err)) goto done;
    top_k(engine_logits(s, 0), n_vocab, k, idx, steps);
    for (size_t i = 0; i < cont.n; i++) {
        if (engine_eval(s, &cont.ids[i], 1, (int32_t)(prompt.n + i), false, &err)) goto done;
        top_k(engine_logits(s, 0), n_vocab, k, idx, steps);
    }
    if (o.json) {
        char *str = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
        if (str) printf("%s\n", str);
        free(str);
    } else {
        printf("prompt: %zu tokens\n", prompt.n);
        for (size_t st = 0; st < json_array_size(steps); st++) {
            printf("step %zu:", st);
            json_t *step = json_array_get(steps, st);
            for (size_t j = 0; j < json_array_size(step); j++) {
                json_t *pair = json_array_get(step, j);
                printf(" %lld (%.6f)", (long long)json_integer_value(json_array_get(pair, 0)),
                       json_real_value(json_array_get(pair, 1)));
            }
            printf("\n");
        }
    }
    rc = 0;
done:
    if (rc == 1 && err.status != SHIMMY_OK) cli_fail(&err);
    json_decref(root);
    free(idx);
    tok_buf_free(&prompt);
    tok_buf_free(&cont);
    engine_session_free(s);
    lora_set_free(lora);
    engine_model_close(m);
    return rc;
}
