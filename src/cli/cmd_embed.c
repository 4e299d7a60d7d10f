/* shimmy embed MODEL (--text TEXT ... | --file PATH [--lines]) [--query Q] [--raw]
 *                   [--dimensions N] [--truncate] [--json]
 *
 * Prints the embedding of each input (L2-normalised unless --raw), pooled as the model says,
 * one line of numbers per input; with --query the inputs are documents and a reranker prints
 * each one's relevance score. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "shimmy embed MODEL (--text TEXT ... | --file PATH|- [--lines]) "
                            "[--query Q] [--raw] [--dimensions N] [--truncate] [--json]\n"
                            "       " CLI_DEVICE_USAGE;

static void help(void) {
    printf("usage: %s\n\n"
           "  --text TEXT      an input (repeat for several, embedded together)\n"
           "  --file PATH      the input from a file ('-' = standard input)\n"
           "  --lines          with --file: each non-empty line is an input\n"
           "  --query Q        rerank: score each input as a document for query Q (needs a\n"
           "                   reranker, a model with rank pooling)\n"
           "  --raw            the pooled vectors without L2 normalisation\n"
           "  --dimensions N   keep the first N components, then normalise (Matryoshka)\n"
           "  --truncate       cut inputs longer than the model's context (default: error)\n"
           "  --json           print {\"model\",\"pooling\",\"dim\",\"embeddings\",\"tokens\"}\n"
           "                   (with --query: {\"model\",\"scores\",\"tokens\"})\n"
           "  --device D       where the model runs (see shimmy probe --devices)\n"
           "  --gpu-layers N   layers on the GPU (0 = none; default all)\n",
           usage);
}

#define MAX_TEXT ((size_t)1 << 30)

typedef struct embed_opts {
    const char *model, *file, *query;
    const char **texts;
    size_t n_texts;
    bool lines, raw, truncate, json;
    long dims;
    cli_run_opts dev; /* --device, --gpu-layers */
} embed_opts;

static int parse(int argc, char **argv, embed_opts *o) {
    memset(o, 0, sizeof *o);
    cli_run_opts_init(&o->dev);
    o->texts = calloc((size_t)argc, sizeof *o->texts);
    if (!o->texts) return cli_usage_error("embed", usage, "out of memory");
    for (int i = 1; i < argc; i++) {
        const int r = cli_device_opt("embed", usage, argc, argv, &i, &o->dev);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i];
        const bool val = strcmp(a, "--text") == 0 || strcmp(a, "--file") == 0 ||
                         strcmp(a, "--query") == 0 || strcmp(a, "--dimensions") == 0;
        if (val && i + 1 >= argc) return cli_usage_error("embed", usage, "%s needs a value", a);
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return -1;
        } else if (strcmp(a, "--text") == 0)
            o->texts[o->n_texts++] = argv[++i];
        else if (strcmp(a, "--file") == 0)
            o->file = argv[++i];
        else if (strcmp(a, "--query") == 0)
            o->query = argv[++i];
        else if (strcmp(a, "--dimensions") == 0) {
            char *end;
            o->dims = strtol(argv[++i], &end, 10);
            if (*end || o->dims < 1 || o->dims > 1 << 20)
                return cli_usage_error("embed", usage, "--dimensions needs a positive integer");
        } else if (strcmp(a, "--lines") == 0)
            o->lines = true;
        else if (strcmp(a, "--raw") == 0)
            o->raw = true;
        else if (strcmp(a, "--truncate") == 0)
            o->truncate = true;
        else if (strcmp(a, "--json") == 0)
            o->json = true;
        else if (a[0] == '-' && a[1])
            return cli_usage_error("embed", usage, "unknown option %s", a);
        else if (!o->model)
            o->model = a;
        else
            return cli_usage_error("embed", usage, "unexpected argument '%s'", a);
    }
    if (!o->model) return cli_usage_error("embed", usage, "which model? (a .gguf path or a name)");
    if (!o->n_texts == !o->file)
        return cli_usage_error("embed", usage, "give --text TEXT (one or more) or --file PATH");
    if (o->lines && !o->file) return cli_usage_error("embed", usage, "--lines needs --file");
    return 0;
}

/* The file as one input, or its non-empty lines (split in place) as inputs. */
static bool file_inputs(embed_opts *o, char *text, size_t len) {
    if (!o->lines) {
        o->texts[0] = text;
        o->n_texts = 1;
        return strlen(text) == len;
    }
    size_t cap = 16;
    free(o->texts);
    o->texts = malloc(cap * sizeof *o->texts);
    for (char *p = text; o->texts && p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        char *end = nl ? nl : text + len;
        *end = '\0';
        if (end > p && end[-1] == '\r') end[-1] = '\0';
        if (*p) {
            if (o->n_texts == cap) {
                const char **t = realloc(o->texts, 2 * cap * sizeof *t);
                if (!t) return false;
                o->texts = t;
                cap *= 2;
            }
            o->texts[o->n_texts++] = p;
        }
        p = end + 1;
    }
    return o->texts != NULL;
}

static void print_rows(const embed_opts *o, const shimmy_model *m, const float *v, size_t n,
                       int32_t dim, const int32_t *n_tokens) {
    if (!o->json) {
        for (size_t i = 0; i < n; i++) {
            for (int32_t k = 0; k < dim; k++)
                printf(k ? " %.7f" : "%.7f", (double)v[i * (size_t)dim + (size_t)k]);
            putchar('\n');
        }
        return;
    }
    json_t *root = json_object(), *rows = json_array(), *toks = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array();
        if (o->query)
            r = json_real(v[i]);
        else
            for (int32_t k = 0; k < dim; k++)
                json_array_append_new(r, json_real(v[i * (size_t)dim + (size_t)k]));
        json_array_append_new(rows, r);
        json_array_append_new(toks, json_integer(n_tokens ? n_tokens[i] : 0));
    }
    json_object_set_new(root, "model", json_string(shimmy_model_name(m)));
    if (o->query) {
        json_object_set_new(root, "scores", rows);
        json_decref(toks);
    } else {
        json_object_set_new(root, "pooling", json_string(shimmy_model_pooling(m)));
        json_object_set_new(root, "dim", json_integer(dim));
        json_object_set_new(root, "embeddings", rows);
        json_object_set_new(root, "tokens", toks);
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (s) printf("%s\n", s);
    free(s);
    json_decref(root);
}

int cli_cmd_embed(int argc, char **argv) {
    embed_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) {
        free(o.texts);
        return rc < 0 ? 0 : rc;
    }
    shimmy_error err;
    shimmy_error_clear(&err);
    char path[4096];
    shimmy_model *m = NULL;
    char *owned = NULL;
    shimmy_embed_input *in = NULL;
    float *scores = NULL;
    shimmy_embeddings e = {0};
    rc = 1;
    if (cli_resolve_model(o.model, path, sizeof path, &err)) goto done;
    if (o.file) {
        size_t len = 0;
        owned = cli_read_file(o.file, true, MAX_TEXT, &len, &err);
        if (!owned) goto done;
        if (!file_inputs(&o, owned, len)) {
            shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, o.file,
                             "the file has a NUL byte (or memory ran out)");
            goto done;
        }
        if (o.n_texts == 0) {
            shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, o.file, "the file has no input lines");
            goto done;
        }
    }
    if (cli_load_model(o.model, path, &o.dev, &m, &err)) goto done;
    const shimmy_embed_options eo = {
        .raw = o.raw, .dimensions = (int32_t)o.dims, .truncate = o.truncate};
    if (o.query) {
        scores = malloc(sizeof *scores * o.n_texts);
        if (!scores) {
            shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
            goto done;
        }
        if (shimmy_rerank(m, o.query, o.texts, o.n_texts, &eo, scores, NULL, &err)) goto done;
        print_rows(&o, m, scores, o.n_texts, 1, NULL);
    } else {
        in = calloc(o.n_texts, sizeof *in);
        if (!in) {
            shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < o.n_texts; i++) in[i].text = o.texts[i];
        if (shimmy_embed(m, in, o.n_texts, &eo, &e, &err)) goto done;
        print_rows(&o, m, e.data, e.n, e.dim, e.n_tokens);
    }
    rc = 0;
done:
    if (rc) rc = cli_fail(&err);
    shimmy_embeddings_free(&e);
    free(scores);
    free(in);
    free(owned);
    free(o.texts);
    shimmy_model_unref(m);
    return rc;
}
