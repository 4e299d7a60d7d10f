/* POST /api/show: a model's details, chat template, capabilities and GGUF metadata
 * (model_info), read from the file's header only. */
#include "ollama.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Arrays longer than this (the vocabulary, merges, token types) are null unless verbose, as
 * Ollama does: they are megabytes of JSON. */
#define SHOW_ARRAY_MAX 64

static json_t *gguf_json(const shimmy_gguf_value *v, bool verbose, int depth);

static json_t *gguf_array(const shimmy_gguf_value *v, bool verbose, int depth) {
    if (depth > 4 || (!verbose && v->count > SHOW_ARRAY_MAX) || v->count > (1u << 20))
        return json_null();
    json_t *arr = json_array();
    for (uint64_t i = 0; arr && i < v->count; i++) {
        shimmy_gguf_value e;
        if (!shimmy_gguf_array_at(v, i, &e)) break;
        json_array_append_new(arr, gguf_json(&e, verbose, depth + 1));
    }
    return arr ? arr : json_null();
}

static json_t *gguf_json(const shimmy_gguf_value *v, bool verbose, int depth) {
    switch (v->type) {
    case SHIMMY_GGUF_U8:
    case SHIMMY_GGUF_U16:
    case SHIMMY_GGUF_U32:
    case SHIMMY_GGUF_U64: return json_integer((json_int_t)v->u64);
    case SHIMMY_GGUF_I8:
    case SHIMMY_GGUF_I16:
    case SHIMMY_GGUF_I32:
    case SHIMMY_GGUF_I64: return json_integer((json_int_t)v->i64);
    case SHIMMY_GGUF_F32:
    case SHIMMY_GGUF_F64: return json_real(v->f64);
    case SHIMMY_GGUF_BOOL: return json_boolean(v->b);
    case SHIMMY_GGUF_STRING: {
        json_t *s = json_stringn(v->str, v->str_len);
        return s ? s : json_null(); /* not UTF-8 */
    }
    case SHIMMY_GGUF_ARRAY: return gguf_array(v, verbose, depth);
    }
    return json_null();
}

/* Every metadata key but the chat template (it is "template"), plus the parameter count. */
static json_t *model_info(const char *path, uint64_t parameters, bool verbose, shimmy_error *err) {
    shimmy_gguf *g = NULL;
    if (shimmy_gguf_open(path, &g, err)) return NULL;
    json_t *info = json_object();
    shimmy_gguf_info gi;
    shimmy_gguf_get_info(g, &gi);
    for (size_t i = 0; info && i < gi.n_kv; i++) {
        const char *key;
        size_t key_len;
        shimmy_gguf_value v;
        if (!shimmy_gguf_kv_at(g, i, &key, &key_len, &v)) break;
        char k[256];
        if (key_len >= sizeof k) continue;
        memcpy(k, key, key_len);
        k[key_len] = '\0';
        if (strncmp(k, "tokenizer.chat_template", 23) == 0) continue;
        json_t *val = gguf_json(&v, verbose, 0);
        json_object_set_new(info, k, val ? val : json_null());
    }
    if (info && !json_object_get(info, "general.parameter_count"))
        json_object_set_new(info, "general.parameter_count", json_integer((json_int_t)parameters));
    shimmy_gguf_free(g);
    return info;
}

/* What the model can be asked for, from its template: "tools" when it renders tool
 * definitions, "thinking" when it writes <think> blocks. */
static json_t *capabilities(const char *source) {
    json_t *caps = json_pack("[s]", "completion");
    if (source && strstr(source, "tools")) json_array_append_new(caps, json_string("tools"));
    if (source && (strstr(source, "<think>") || strstr(source, "enable_thinking")))
        json_array_append_new(caps, json_string("thinking"));
    return caps;
}

static void add_details(json_t *v, const shimmy_model_entry *e) {
    const char *family = e->architecture && *e->architecture ? e->architecture : "unknown";
    json_object_set_new(v, "details",
                        json_pack("{s:s,s:s,s:s,s:[s],s:s,s:s}", "parent_model", "", "format",
                                  "gguf", "family", family, "families", family, "parameter_size",
                                  e->size_label ? e->size_label : "", "quantization_level",
                                  e->quant ? e->quant : ""));
}

int server_handle_ollama_show(server_call *c) {
    shimmy_error err;
    json_t *root = json_loadb(c->body, c->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        shimmy_error_set(&err, SHIMMY_ERR_INVALID_JSON, NULL,
                         "request body must be a JSON object {\"model\": \"...\"}");
        return ollama_reply_error(c, &err);
    }
    const json_t *m = json_object_get(root, "model");
    if (!m || json_is_null(m)) m = json_object_get(root, "name");
    const json_t *verbose = json_object_get(root, "verbose");
    shimmy_status st = SHIMMY_OK;
    if (!json_is_string(m) || json_string_length(m) == 0 || json_string_length(m) >= 256)
        st = shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "model",
                              "'model' is required (a model name from GET /api/tags)");
    else if (verbose && !json_is_null(verbose) && !json_is_boolean(verbose))
        st = shimmy_error_set(&err, SHIMMY_ERR_INVALID_ARG, "verbose",
                              "'verbose' must be true or false");
    char name[256];
    if (!st) snprintf(name, sizeof name, "%s", json_string_value(m));
    bool verb = json_is_true(verbose);
    json_decref(root);
    if (st) return ollama_reply_error(c, &err);

    shimmy_model_list *l = server_list(c->srv);
    size_t i, n = strlen(name);
    bool found = shimmy_model_list_find(l, name, &i);
    if (!found && n > 7 && strcmp(name + n - 7, ":latest") == 0) {
        name[n - 7] = '\0';
        found = shimmy_model_list_find(l, name, &i);
    }
    shimmy_model_entry e;
    if (!found || !shimmy_model_list_entry(l, i, &e)) {
        shimmy_model_list_free(l);
        shimmy_error_set(&err, SHIMMY_ERR_MODEL_NOT_FOUND, "model",
                         "model \"%.200s\" not found (GET /api/tags lists the models)", name);
        return ollama_reply_error(c, &err);
    }
    json_t *info = model_info(e.path, e.parameters, verb, &err);
    if (!info) {
        shimmy_model_list_free(l);
        return ollama_reply_error(c, &err);
    }
    shimmy_template *t = NULL;
    shimmy_error terr;
    const char *source = "";
    if (shimmy_template_from_gguf(e.path, NULL, &t, &terr) == SHIMMY_OK)
        source = shimmy_template_source(t);
    struct stat fst;
    char ts[40];
    ollama_time(stat(e.path, &fst) == 0 ? (double)fst.st_mtime : 0, ts);
    char modelfile[1200];
    snprintf(modelfile, sizeof modelfile,
             "# shimmy serves this GGUF file as it is found on disk\nFROM %s\n", e.path);
    json_t *v = json_pack("{s:s,s:s,s:s,s:o,s:o,s:s}", "modelfile", modelfile, "parameters", "",
                          "template", source, "model_info", info, "capabilities",
                          capabilities(source), "modified_at", ts);
    if (v) add_details(v, &e);
    shimmy_template_free(t);
    shimmy_model_list_free(l);
    return server_reply_json(c, 200, v);
}
