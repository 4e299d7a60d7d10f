/* Prompt tokens of the reference runs: every case of testdata/reference/<model>.json and every
 * rendered chat of chat-templates.json, tokenized the way the engine's server and CLI do it
 * (add_special and parse_special), must give the recorded ids exactly; the recorded pieces
 * must match tok_piece(special = true). */
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <dirent.h>
#include <jansson.h>

typedef struct loaded {
    char name[256];
    tok_vocab *v;
} loaded;

#define MAX_CACHE 128
static loaded cache[MAX_CACHE];
static size_t n_cache;

/* Each model file carries its own tokenizer keys, so each is loaded (once). */
static tok_vocab *vocab_of(const char *model_file) {
    for (size_t i = 0; i < n_cache; i++)
        if (strcmp(cache[i].name, model_file) == 0) return cache[i].v;
    char rel[512], path[1024];
    snprintf(rel, sizeof rel, "models/%s", model_file);
    if (!test_data_path(rel, path, sizeof path)) {
        fprintf(stderr, "  %s absent, its cases are skipped\n", model_file);
        return NULL;
    }
    gguf_file *f = NULL;
    shimmy_error err;
    tok_vocab *v = NULL;
    CHECK_MSG(gguf_open_header(path, &f, &err) == SHIMMY_OK, "%s: %s", path, err.message);
    if (f) CHECK_MSG(tok_vocab_load(f, &v, &err) == SHIMMY_OK, "%s: %s", path, err.message);
    gguf_close(f);
    CHECK_MSG(!v || n_cache < MAX_CACHE, "more than %d model files: raise MAX_CACHE", MAX_CACHE);
    if (v && n_cache >= MAX_CACHE) tok_vocab_free(v), v = NULL;
    if (v) {
        snprintf(cache[n_cache].name, sizeof cache[n_cache].name, "%s", model_file);
        cache[n_cache++].v = v;
    }
    return v;
}

static int n_cases, n_pass, n_pieces;

static void check_case(const char *what, tok_vocab *v, json_t *c) {
    const char *prompt = json_string_value(json_object_get(c, "prompt"));
    json_t *want = json_object_get(c, "prompt_tokens");
    CHECK_MSG(prompt && json_is_array(want), "%s: case without prompt/prompt_tokens", what);
    if (!prompt || !json_is_array(want)) return;
    tok_buf got = {0};
    shimmy_error err;
    tok_encode_opts o = {.add_special = true, .parse_special = true};
    CHECK(tok_encode(v, prompt, strlen(prompt), &o, &got, &err) == SHIMMY_OK);
    bool same = got.n == json_array_size(want);
    for (size_t i = 0; same && i < got.n; i++)
        same = got.ids[i] == json_integer_value(json_array_get(want, i));
    n_cases++;
    if (same)
        n_pass++;
    else {
        fprintf(stderr, "  %s: \"%.60s\": %zu ids, want %zu\n", what, prompt, got.n,
                json_array_size(want));
        for (size_t i = 0; i < got.n && i < json_array_size(want); i++)
            if (got.ids[i] != json_integer_value(json_array_get(want, i))) {
                fprintf(stderr, "    first difference at %zu: %d vs %lld\n", i, got.ids[i],
                        json_integer_value(json_array_get(want, i)));
                break;
            }
    }
    CHECK_MSG(same, "%s: prompt tokens differ", what);

    json_t *pieces = json_object_get(c, "prompt_pieces");
    for (size_t i = 0; same && json_is_array(pieces) && i < json_array_size(pieces); i++) {
        const char *p = json_string_value(json_array_get(pieces, i));
        char buf[256];
        size_t n = tok_piece(v, got.ids[i], true, buf, sizeof buf);
        /* a piece that is part of a UTF-8 character cannot be recorded in JSON as is */
        if (!p || n > sizeof buf || !core_utf8_valid(buf, n)) continue;
        n_pieces++;
        CHECK_MSG(n == strlen(p) && memcmp(buf, p, n) == 0,
                  "%s: piece %zu of id %d: '%.*s' vs '%s'", what, i, got.ids[i], (int)n, buf, p);
    }
    tok_buf_free(&got);
}

static void model_reference(const char *path) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    CHECK_MSG(root != NULL, "%s: %s", path, je.text);
    if (!root) return;
    const char *model = json_string_value(json_object_get(root, "model_file"));
    json_t *cases = json_object_get(root, "cases");
    if (model && json_is_array(cases)) {
        tok_vocab *v = vocab_of(model);
        for (size_t i = 0; v && i < json_array_size(cases); i++)
            check_case(model, v, json_array_get(cases, i));
    }
    json_decref(root);
}

static void chat_reference(const char *path) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    CHECK_MSG(root != NULL, "%s: %s", path, je.text);
    if (!root) return;
    json_t *results = json_object_get(root, "results");
    CHECK(json_is_array(results));
    for (size_t i = 0; i < json_array_size(results); i++) {
        json_t *r = json_array_get(results, i);
        const char *model = json_string_value(json_object_get(r, "model_file"));
        tok_vocab *v = model ? vocab_of(model) : NULL;
        const char *key;
        json_t *c;
        json_object_foreach(json_object_get(r, "cases"), key, c) {
            char what[300];
            snprintf(what, sizeof what, "%s chat %s%s", model, key,
                     json_is_true(json_object_get(r, "jinja")) ? " (jinja)" : "");
            if (v) check_case(what, v, c);
        }
    }
    json_decref(root);
}

int main(void) {
    char dir[1024];
    test_require_data("reference/README.md", dir, sizeof dir);
    *strrchr(dir, '/') = '\0';
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return test_finish("tokenizer/reference");
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        /* <model>.embed.json are embedding references (texts, pooled vectors; their token lists
         * include the pooling's appended tokens): the embeddings tests read those */
        if (l < 6 || strcmp(n + l - 5, ".json") != 0 ||
            (l > 11 && strcmp(n + l - 11, ".embed.json") == 0))
            continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, n);
        if (strcmp(n, "chat-templates.json") == 0)
            chat_reference(path);
        else if (strncmp(n, "tiny-", 5) == 0 || strncmp(n, "docs-llama-30m-", 15) == 0) {
            model_reference(path);
            files++;
        }
    }
    closedir(d);
    printf("reference prompts: %d/%d token sequences exact over %d model files, %d pieces "
           "checked\n",
           n_pass, n_cases, files, n_pieces);
    CHECK(files >= 18);
    CHECK(n_cases >= 60);
    for (size_t i = 0; i < n_cache; i++) tok_vocab_free(cache[i].v);
    return test_finish("tokenizer/reference");
}
