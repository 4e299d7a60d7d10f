/* shimmy list [--json] [--model-dirs D1:D2] — the models the registry finds, one per line, or as
 * {"models":[...]}: each model with its paired LoRA adapters, and each paired adapter as a
 * model of its own with "parent": the base's name. */
#include "cli.h"
#include "registry/registry.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "shimmy list [--json] [--model-dirs D1:D2]";

static json_t *entry_json(const registry_entry *e) {
    json_t *adapters = json_array();
    for (size_t k = 0; k < e->n_adapters; k++)
        json_array_append_new(adapters, json_pack("{s:o,s:o,s:o}", "name",
                                                  cli_json_text(e->adapters[k]->name), "path",
                                                  cli_json_text(e->adapters[k]->path), "parent",
                                                  cli_json_text(e->name)));
    return json_pack("{s:o,s:o,s:I,s:i,s:o,s:I,s:o,s:s,s:I,s:s,s:s,s:o}", "name",
                     cli_json_text(e->name), "path", cli_json_text(e->path), "size",
                     (json_int_t)e->size, "parts", e->n_parts, "architecture",
                     cli_json_text(e->architecture), "parameters", (json_int_t)e->n_params,
                     "size_label", cli_json_text(e->size_label), "quant", e->quant,
                     "context_length", (json_int_t)e->context_length, "template", e->template,
                     "source", registry_source_name(e->source), "adapters", adapters);
}

static void human_size(uint64_t bytes, char *buf, size_t cap) {
    if (bytes >= (1ull << 30))
        snprintf(buf, cap, "%.1f GiB", (double)bytes / (double)(1ull << 30));
    else if (bytes >= (1ull << 20))
        snprintf(buf, cap, "%.1f MiB", (double)bytes / (double)(1ull << 20));
    else
        snprintf(buf, cap, "%.1f KiB", (double)bytes / 1024.0);
}

static void print_table(const registry *r) {
    if (registry_count(r) == 0) {
        fprintf(stderr, "no models found; put .gguf files in ./models or ~/models, pass "
                        "--model-dirs, or set SHIMMY_MODEL_PATHS (`shimmy discover` shows "
                        "where it looked)\n");
        return;
    }
    int w = 4;
    for (size_t i = 0; i < registry_count(r); i++) {
        int n = (int)strlen(registry_entry_at(r, i)->name);
        if (n > w) w = n;
    }
    printf("%-*s  %-10s %7s  %-8s %7s  %-10s %10s  %-8s %s\n", w, "NAME", "ARCH", "PARAMS", "QUANT",
           "CTX", "TEMPLATE", "SIZE", "SOURCE", "ADAPTERS");
    for (size_t i = 0; i < registry_count(r); i++) {
        const registry_entry *e = registry_entry_at(r, i);
        char size[32];
        human_size(e->size, size, sizeof size);
        printf("%-*s  %-10s %7s  %-8s %7u  %-10s %10s  %-*s", w, e->name,
               *e->architecture ? e->architecture : "?", e->size_label, e->quant, e->context_length,
               e->template, size, e->n_adapters ? 8 : 0, registry_source_name(e->source));
        for (size_t k = 0; k < e->n_adapters; k++)
            printf("%s%s", k ? "," : " ", e->adapters[k]->name);
        printf("\n");
    }
}

int cli_cmd_list(int argc, char **argv) {
    bool json;
    registry *r = NULL;
    int rc;
    if (!cli_scan("list", usage, argc, argv, &json, &r, &rc)) return rc;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (json) {
        json_t *models = json_array();
        for (size_t i = 0; i < registry_count(r); i++)
            json_array_append_new(models, entry_json(registry_entry_at(r, i)));
        /* A paired adapter is a model of its own (its base's facts, its name, "parent"), as the
         * server lists it: a request naming it gets the base with the adapter applied. */
        for (size_t i = 0; i < registry_adapter_count(r); i++) {
            const registry_adapter *a = registry_adapter_at(r, i);
            if (!a->base || registry_find(r, a->name)) continue;
            json_t *v = entry_json(a->base);
            if (!v) continue;
            json_object_set_new(v, "name", cli_json_text(a->name));
            json_object_set_new(v, "path", cli_json_text(a->path));
            json_object_set_new(v, "parent", cli_json_text(a->base->name));
            json_object_set_new(v, "adapters", json_array());
            json_array_append_new(models, v);
        }
        json_t *doc = json_pack("{s:o}", "models", models);
        char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        json_decref(doc);
        registry_free(r);
        if (!text) {
            core_error(&err, SHIMMY_ERR_NOMEM, NULL, "no memory to print the model list");
            return cli_fail(&err);
        }
        puts(text);
        free(text);
        return 0;
    }
    print_table(r);
    registry_free(r);
    return 0;
}
