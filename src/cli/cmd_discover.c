/* shimmy discover [--json] [--model-dirs D1:D2] — rescan and explain: the roots searched, where
 * each model and adapter came from (and how adapters were paired), and every file that was seen
 * but not listed, with the reason. */
#include "cli.h"
#include "registry/registry.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "shimmy discover [--json] [--model-dirs D1:D2]";

static const char *format_name(registry_adapter_format f) {
    return f == REGISTRY_ADAPTER_PEFT ? "peft" : "gguf";
}

static json_t *discover_json(const registry *r) {
    json_t *roots = json_array(), *models = json_array(), *adapters = json_array(),
           *skipped = json_array();
    for (size_t i = 0; i < registry_root_count(r); i++)
        json_array_append_new(roots, cli_json_text(registry_root_at(r, i)));
    for (size_t i = 0; i < registry_count(r); i++) {
        const registry_entry *e = registry_entry_at(r, i);
        json_array_append_new(
            models, json_pack("{s:o,s:o,s:s,s:o,s:i}", "name", cli_json_text(e->name), "path",
                              cli_json_text(e->path), "source", registry_source_name(e->source),
                              "origin", cli_json_text(e->origin), "parts", e->n_parts));
    }
    for (size_t i = 0; i < registry_adapter_count(r); i++) {
        const registry_adapter *a = registry_adapter_at(r, i);
        json_array_append_new(
            adapters, json_pack("{s:o,s:o,s:s,s:s,s:o,s:o}", "name", cli_json_text(a->name), "path",
                                cli_json_text(a->path), "format", format_name(a->format), "source",
                                registry_source_name(a->source), "base",
                                a->base ? cli_json_text(a->base->name) : json_null(), "reason",
                                cli_json_text(a->reason)));
    }
    for (size_t i = 0; i < registry_skipped_count(r); i++) {
        const registry_skip *s = registry_skipped_at(r, i);
        json_array_append_new(skipped, json_pack("{s:o,s:o}", "path", cli_json_text(s->path),
                                                 "reason", cli_json_text(s->reason)));
    }
    return json_pack("{s:o,s:o,s:o,s:o,s:f,s:I}", "roots", roots, "models", models, "adapters",
                     adapters, "skipped", skipped, "scan_ms", registry_scan_ms(r), "files",
                     (json_int_t)registry_files_read(r));
}

static void discover_human(const registry *r) {
    printf("searched %zu place%s:\n", registry_root_count(r),
           registry_root_count(r) == 1 ? "" : "s");
    for (size_t i = 0; i < registry_root_count(r); i++) printf("  %s\n", registry_root_at(r, i));
    printf("\n%zu model%s:\n", registry_count(r), registry_count(r) == 1 ? "" : "s");
    for (size_t i = 0; i < registry_count(r); i++) {
        const registry_entry *e = registry_entry_at(r, i);
        printf("  %s\n      %s", e->name, e->path);
        if (e->n_parts > 1) printf(" (+%d more parts)", e->n_parts - 1);
        printf("\n      from %s [%s]\n", e->origin, registry_source_name(e->source));
    }
    if (registry_adapter_count(r)) {
        printf("\n%zu LoRA adapter%s:\n", registry_adapter_count(r),
               registry_adapter_count(r) == 1 ? "" : "s");
        for (size_t i = 0; i < registry_adapter_count(r); i++) {
            const registry_adapter *a = registry_adapter_at(r, i);
            printf("  %s (%s)\n      %s\n      ", a->name, format_name(a->format), a->path);
            if (a->base) printf("paired with %s: ", a->base->name);
            printf("%s\n", a->reason);
        }
    }
    if (registry_skipped_count(r)) {
        printf("\nskipped %zu file%s:\n", registry_skipped_count(r),
               registry_skipped_count(r) == 1 ? "" : "s");
        for (size_t i = 0; i < registry_skipped_count(r); i++)
            printf("  %s\n      %s\n", registry_skipped_at(r, i)->path,
                   registry_skipped_at(r, i)->reason);
    }
    printf("\n%zu file%s read in %.1f ms\n", registry_files_read(r),
           registry_files_read(r) == 1 ? "" : "s", registry_scan_ms(r));
}

int cli_cmd_discover(int argc, char **argv) {
    bool json;
    registry *r = NULL;
    int rc;
    if (!cli_scan("discover", usage, argc, argv, &json, &r, &rc)) return rc;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (!json) {
        discover_human(r);
        registry_free(r);
        return 0;
    }
    json_t *doc = discover_json(r);
    registry_free(r);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    json_decref(doc);
    if (!text) {
        core_error(&err, SHIMMY_ERR_NOMEM, NULL, "no memory to print the discovery report");
        return cli_fail(&err);
    }
    puts(text);
    free(text);
    return 0;
}
