/* shimmy list [--json] [--model-dirs D1:D2] — the models the registry finds, one per line, or as
 * {"models":[...]}: each model with its paired LoRA adapters, and each paired adapter as a
 * model of its own with "parent": the base's name. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "shimmy list [--json] [--model-dirs D1:D2]";

static json_t *entry_json(const shimmy_model_list *r, size_t i) {
    shimmy_model_entry e;
    shimmy_adapter_info a;
    if (!shimmy_model_list_entry(r, i, &e)) return NULL;
    json_t *adapters = json_array();
    for (size_t k = 0; k < e.n_adapters; k++)
        if (shimmy_model_list_adapter(r, shimmy_model_list_paired(r, i, k), &a))
            json_array_append_new(
                adapters, json_pack("{s:o,s:o,s:o}", "name", cli_json_text(a.name), "path",
                                    cli_json_text(a.path), "parent", cli_json_text(e.name)));
    return json_pack(
        "{s:o,s:o,s:I,s:i,s:o,s:I,s:o,s:s,s:I,s:s,s:s,s:o}", "name", cli_json_text(e.name), "path",
        cli_json_text(e.path), "size", (json_int_t)e.size, "parts", (int)e.parts, "architecture",
        cli_json_text(e.architecture), "parameters", (json_int_t)e.parameters, "size_label",
        cli_json_text(e.size_label), "quant", e.quant, "context_length", (json_int_t)e.ctx_len,
        "template", e.template_family, "source", e.source, "adapters", adapters);
}

static void human_size(uint64_t bytes, char *buf, size_t cap) {
    if (bytes >= (1ull << 30))
        snprintf(buf, cap, "%.1f GiB", (double)bytes / (double)(1ull << 30));
    else if (bytes >= (1ull << 20))
        snprintf(buf, cap, "%.1f MiB", (double)bytes / (double)(1ull << 20));
    else
        snprintf(buf, cap, "%.1f KiB", (double)bytes / 1024.0);
}

static void print_table(const shimmy_model_list *r) {
    const size_t count = shimmy_model_list_count(r);
    if (count == 0) {
        fprintf(stderr, "no models found; put .gguf files in ./models or ~/models, pass "
                        "--model-dirs, or set SHIMMY_MODEL_PATHS (`shimmy discover` shows "
                        "where it looked)\n");
        return;
    }
    int w = 4;
    for (size_t i = 0; i < count; i++) {
        int n = (int)strlen(shimmy_model_list_name(r, i));
        if (n > w) w = n;
    }
    printf("%-*s  %-10s %7s  %-8s %7s  %-10s %10s  %-8s %s\n", w, "NAME", "ARCH", "PARAMS", "QUANT",
           "CTX", "TEMPLATE", "SIZE", "SOURCE", "ADAPTERS");
    shimmy_model_entry e;
    shimmy_adapter_info a;
    for (size_t i = 0; shimmy_model_list_entry(r, i, &e); i++) {
        char size[32];
        human_size(e.size, size, sizeof size);
        printf("%-*s  %-10s %7s  %-8s %7u  %-10s %10s  %-*s", w, e.name,
               *e.architecture ? e.architecture : "?", e.size_label, e.quant, e.ctx_len,
               e.template_family, size, e.n_adapters ? 8 : 0, e.source);
        for (size_t k = 0; k < e.n_adapters; k++)
            if (shimmy_model_list_adapter(r, shimmy_model_list_paired(r, i, k), &a))
                printf("%s%s", k ? "," : " ", a.name);
        printf("\n");
    }
}

int cli_cmd_list(int argc, char **argv) {
    bool json;
    shimmy_model_list *r = NULL;
    int rc;
    if (!cli_scan("list", usage, argc, argv, &json, &r, &rc)) return rc;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (json) {
        json_t *models = json_array();
        for (size_t i = 0; i < shimmy_model_list_count(r); i++)
            json_array_append_new(models, entry_json(r, i));
        /* A paired adapter is a model of its own (its base's facts, its name, "parent"), as the
         * server lists it: a request naming it gets the base with the adapter applied. */
        shimmy_adapter_info a;
        for (size_t i = 0; shimmy_model_list_adapter(r, i, &a); i++) {
            size_t base;
            if (!a.base || shimmy_model_list_find(r, a.name, NULL) ||
                !shimmy_model_list_find(r, a.base, &base))
                continue;
            json_t *v = entry_json(r, base);
            if (!v) continue;
            json_object_set_new(v, "name", cli_json_text(a.name));
            json_object_set_new(v, "path", cli_json_text(a.path));
            json_object_set_new(v, "parent", cli_json_text(a.base));
            json_object_set_new(v, "adapters", json_array());
            json_array_append_new(models, v);
        }
        json_t *doc = json_pack("{s:o}", "models", models);
        char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        json_decref(doc);
        shimmy_model_list_free(r);
        if (!text) {
            shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "no memory to print the model list");
            return cli_fail(&err);
        }
        puts(text);
        free(text);
        return 0;
    }
    print_table(r);
    shimmy_model_list_free(r);
    return 0;
}
