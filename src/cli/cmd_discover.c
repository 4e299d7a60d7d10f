/* shimmy discover [--json] [--model-dirs D1:D2] — rescan and explain: the roots searched, where
 * each model and adapter came from (and how adapters were paired), and every file that was seen
 * but not listed, with the reason. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "shimmy discover [--json] [--model-dirs D1:D2]";

static json_t *discover_json(const shimmy_model_list *r) {
    json_t *roots = json_array(), *models = json_array(), *adapters = json_array(),
           *skipped = json_array();
    for (size_t i = 0; i < shimmy_model_list_root_count(r); i++)
        json_array_append_new(roots, cli_json_text(shimmy_model_list_root(r, i)));
    shimmy_model_entry e;
    for (size_t i = 0; shimmy_model_list_entry(r, i, &e); i++)
        json_array_append_new(models,
                              json_pack("{s:o,s:o,s:s,s:o,s:i}", "name", cli_json_text(e.name),
                                        "path", cli_json_text(e.path), "source", e.source, "origin",
                                        cli_json_text(e.origin), "parts", (int)e.parts));
    shimmy_adapter_info a;
    for (size_t i = 0; shimmy_model_list_adapter(r, i, &a); i++)
        json_array_append_new(
            adapters, json_pack("{s:o,s:o,s:s,s:s,s:o,s:o}", "name", cli_json_text(a.name), "path",
                                cli_json_text(a.path), "format", a.format, "source", a.source,
                                "base", a.base ? cli_json_text(a.base) : json_null(), "reason",
                                cli_json_text(a.reason)));
    for (size_t i = 0; i < shimmy_model_list_skipped_count(r); i++)
        json_array_append_new(
            skipped,
            json_pack("{s:o,s:o}", "path", cli_json_text(shimmy_model_list_skipped_path(r, i)),
                      "reason", cli_json_text(shimmy_model_list_skipped_reason(r, i))));
    return json_pack("{s:o,s:o,s:o,s:o,s:f,s:I}", "roots", roots, "models", models, "adapters",
                     adapters, "skipped", skipped, "scan_ms", shimmy_model_list_scan_ms(r), "files",
                     (json_int_t)shimmy_model_list_files_read(r));
}

static void discover_human(const shimmy_model_list *r) {
    const size_t n_roots = shimmy_model_list_root_count(r), n = shimmy_model_list_count(r),
                 n_ad = shimmy_model_list_adapter_count(r),
                 n_skip = shimmy_model_list_skipped_count(r),
                 n_files = shimmy_model_list_files_read(r);
    printf("searched %zu place%s:\n", n_roots, n_roots == 1 ? "" : "s");
    for (size_t i = 0; i < n_roots; i++) printf("  %s\n", shimmy_model_list_root(r, i));
    printf("\n%zu model%s:\n", n, n == 1 ? "" : "s");
    shimmy_model_entry e;
    for (size_t i = 0; shimmy_model_list_entry(r, i, &e); i++) {
        printf("  %s\n      %s", e.name, e.path);
        if (e.parts > 1) printf(" (+%d more parts)", (int)e.parts - 1);
        printf("\n      from %s [%s]\n", e.origin, e.source);
    }
    if (n_ad) {
        printf("\n%zu LoRA adapter%s:\n", n_ad, n_ad == 1 ? "" : "s");
        shimmy_adapter_info a;
        for (size_t i = 0; shimmy_model_list_adapter(r, i, &a); i++) {
            printf("  %s (%s)\n      %s\n      ", a.name, a.format, a.path);
            if (a.base) printf("paired with %s: ", a.base);
            printf("%s\n", a.reason);
        }
    }
    if (n_skip) {
        printf("\nskipped %zu file%s:\n", n_skip, n_skip == 1 ? "" : "s");
        for (size_t i = 0; i < n_skip; i++)
            printf("  %s\n      %s\n", shimmy_model_list_skipped_path(r, i),
                   shimmy_model_list_skipped_reason(r, i));
    }
    printf("\n%zu file%s read in %.1f ms\n", n_files, n_files == 1 ? "" : "s",
           shimmy_model_list_scan_ms(r));
}

int cli_cmd_discover(int argc, char **argv) {
    bool json;
    shimmy_model_list *r = NULL;
    int rc;
    if (!cli_scan("discover", usage, argc, argv, &json, &r, &rc)) return rc;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (!json) {
        discover_human(r);
        shimmy_model_list_free(r);
        return 0;
    }
    json_t *doc = discover_json(r);
    shimmy_model_list_free(r);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    json_decref(doc);
    if (!text) {
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "no memory to print the discovery report");
        return cli_fail(&err);
    }
    puts(text);
    free(text);
    return 0;
}
