/* shimmy logits: top-K logits after a prompt and after each forced continuation token (teacher
 * forcing: the prompt in one batch, then one token per step, as the reference files were made). */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const USAGE =
    "shimmy logits MODEL --prompt TEXT [--continue ID,ID,...] [--top K] [--kv f16|f32]\n"
    "       [--ctx-size N] [--threads N] [--lora FILE] [--lora-scaled FILE S] [--json]\n"
    "       " CLI_DEVICE_USAGE;

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
        } else {
            const int rc = cli_model_arg("logits", USAGE, a, &o->model);
            if (rc) return rc;
        }
    }
    if (!o->model) return cli_usage_error("logits", USAGE, "MODEL is missing");
    if (!o->prompt) return cli_usage_error("logits", USAGE, "--prompt is missing");
    return 0;
}

typedef struct id_list {
    int32_t *ids;
    size_t n, cap;
} id_list;

/* "12,34,5" -> ids appended to out; false (with a message) on anything else. */
static bool parse_ids(const char *s, id_list *out) {
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "shimmy: logits: --continue must be comma-separated token ids\n");
            return false;
        }
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 16;
            int32_t *p = realloc(out->ids, cap * sizeof *p);
            if (!p) return false;
            out->ids = p;
            out->cap = cap;
        }
        out->ids[out->n++] = (int32_t)v;
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
    shimmy_model *m = NULL;
    shimmy_evaluator *ev = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    id_list cont = {0};
    json_t *root = NULL;
    int32_t *idx = NULL;
    rc = 1;
    if (o.cont && !parse_ids(o.cont, &cont)) goto done;
    if (cli_load_model(o.model, path, &o.run, &m, &err)) goto done;
    if (shimmy_tokenize(shimmy_model_vocab(m), o.prompt, strlen(o.prompt),
                        SHIMMY_TOKENIZE_ADD_SPECIAL | SHIMMY_TOKENIZE_PARSE_SPECIAL, &prompt,
                        &n_prompt, &err))
        goto done;
    if (n_prompt == 0) {
        shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "prompt", "the prompt has no tokens");
        goto done;
    }
    const size_t need = n_prompt + cont.n;
    shimmy_evaluator_params ep = {.ctx_len = o.run.ctx ? (int32_t)o.run.ctx : (int32_t)need,
                                  .batch = (int32_t)n_prompt,
                                  .kv = o.run.kv,
                                  .threads = (int32_t)o.run.threads,
                                  .lora = o.run.lora,
                                  .n_lora = o.run.n_lora};
    if (need > (size_t)ep.ctx_len) {
        shimmy_error_set(&err, SHIMMY_ERR_CONTEXT_EXCEEDED, "ctx-size",
                         "%zu prompt + %zu forced tokens exceed the context size %d", n_prompt,
                         cont.n, ep.ctx_len);
        goto done;
    }
    if (shimmy_evaluator_new(m, &ep, &ev, &err)) goto done;
    const int32_t n_vocab = shimmy_evaluator_vocab_size(ev);
    const int32_t k = o.top < n_vocab ? (int32_t)o.top : n_vocab;
    idx = malloc(sizeof *idx * (size_t)k);
    root = json_object();
    json_t *ptoks = json_array(), *steps = json_array();
    json_object_set_new(root, "prompt_tokens", ptoks);
    json_object_set_new(root, "steps", steps);
    if (!idx || !root) {
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_prompt; i++) json_array_append_new(ptoks, json_integer(prompt[i]));
    if (shimmy_evaluator_eval(ev, prompt, n_prompt, 0, false, &err)) goto done;
    top_k(shimmy_evaluator_logits(ev, 0), n_vocab, k, idx, steps);
    for (size_t i = 0; i < cont.n; i++) {
        if (shimmy_evaluator_eval(ev, &cont.ids[i], 1, (int32_t)(n_prompt + i), false, &err))
            goto done;
        top_k(shimmy_evaluator_logits(ev, 0), n_vocab, k, idx, steps);
    }
    if (o.json) {
        char *str = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
        if (str) printf("%s\n", str);
        free(str);
    } else {
        printf("prompt: %zu tokens\n", n_prompt);
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
    shimmy_free(prompt);
    free(cont.ids);
    shimmy_evaluator_free(ev);
    shimmy_model_unref(m);
    return rc;
}
