/* shimmy template — render a conversation with a model's chat template, exactly.
 *
 * The template comes from the GGUF (tokenizer.chat_template, or tokenizer.chat_template.NAME
 * with --template NAME), a Jinja file (--jinja), or a built-in family (--template NAME, or when
 * the model has none: chosen from its vocabulary and architecture). BOS/EOS texts come from the
 * model's vocabulary unless --bos/--eos say otherwise. The prompt is printed as is, with no
 * newline added; --json wraps it with the content spans and the family. --vars passes further
 * template variables (enable_thinking, ...). Only the GGUF header is read. */
#include "cli.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "shimmy template (MODEL | --jinja FILE [--bos TEXT] [--eos TEXT]) --messages JSON|@FILE\n"
    "                [--tools JSON|@FILE] [--no-generation-prompt] [--template NAME]\n"
    "                [--vars JSON|@FILE] [--trim-bos-eos] [--date YYYY-MM-DD] [--json]";

typedef struct opts {
    const char *model, *jinja, *bos, *eos, *messages, *tools, *vars, *name, *date;
    bool no_gen, trim, json;
} opts;

#define MAX_FILE ((size_t)64 << 20)

/* JSON given inline or as @FILE: checked here so the message names the option, then handed to
 * the library as text (*text: the argument itself, or *owned when read from a file). */
static shimmy_status load_json(const char *arg, const char *what, const char **text, char **owned,
                               shimmy_error *err) {
    size_t len;
    *text = arg;
    if (arg[0] == '@') {
        if (!(*owned = cli_read_file(arg + 1, false, MAX_FILE, &len, err))) return err->status;
        *text = *owned;
    }
    json_error_t je;
    json_t *j = json_loads(*text, JSON_DECODE_ANY, &je);
    if (!j)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, what,
                                "%s is not valid JSON: %s (line %d)", what, je.text, je.line);
    json_decref(j);
    return SHIMMY_OK;
}

/* Options: a value option fills a string slot, a switch sets a flag. */
static const struct {
    const char *flag;
    size_t value_at;  /* offsetof the const char * slot, or SIZE_MAX for a switch */
    size_t switch_at; /* offsetof the bool a switch sets */
} options[] = {
    {"--jinja", offsetof(opts, jinja), 0},
    {"--bos", offsetof(opts, bos), 0},
    {"--eos", offsetof(opts, eos), 0},
    {"--messages", offsetof(opts, messages), 0},
    {"--tools", offsetof(opts, tools), 0},
    {"--vars", offsetof(opts, vars), 0},
    {"--template", offsetof(opts, name), 0},
    {"--date", offsetof(opts, date), 0},
    {"--no-generation-prompt", SIZE_MAX, offsetof(opts, no_gen)},
    {"--trim-bos-eos", SIZE_MAX, offsetof(opts, trim)},
    {"--json", SIZE_MAX, offsetof(opts, json)},
};

static int parse_opts(int argc, char **argv, opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", usage);
            return 0;
        }
        size_t k = 0, n = sizeof options / sizeof options[0];
        while (k < n && strcmp(a, options[k].flag) != 0) k++;
        if (k < n && options[k].value_at == SIZE_MAX) {
            *(bool *)((char *)o + options[k].switch_at) = true;
        } else if (k < n) {
            if (++i >= argc) return cli_usage_error("template", usage, "%s needs a value", a);
            *(const char **)((char *)o + options[k].value_at) = argv[i];
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("template", usage, "unknown option '%s'", a);
        } else if (o->model) {
            return cli_usage_error("template", usage, "more than one MODEL");
        } else {
            o->model = a;
        }
    }
    if (!o->messages) return cli_usage_error("template", usage, "--messages is required");
    if (!!o->model + !!o->jinja != 1 && !(o->name && !o->model && !o->jinja))
        return cli_usage_error("template", usage, "give either MODEL or --jinja FILE");
    return -1;
}

static int print_result(const opts *o, const shimmy_rendered *out, const shimmy_template *t) {
    if (!o->json) {
        fwrite(out->text, 1, out->len, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    json_t *j = json_object(), *spans = json_array();
    json_object_set_new(j, "prompt", json_stringn(out->text, out->len));
    for (size_t i = 0; i < out->n_spans; i++)
        json_array_append_new(spans, json_pack("[II]", (json_int_t)out->spans[i].begin,
                                               (json_int_t)out->spans[i].end));
    json_object_set_new(j, "content_spans", spans);
    json_object_set_new(j, "family", json_string(shimmy_template_family(t)));
    const char *eot = shimmy_template_end_of_turn(t);
    json_object_set_new(j, "end_of_turn", eot ? json_string(eot) : json_null());
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(j);
    if (!s) return 1;
    printf("%s\n", s);
    free(s);
    return 0;
}

int cli_cmd_template(int argc, char **argv) {
    opts o = {0};
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0) return rc;
    shimmy_error err;
    shimmy_error_clear(&err);
    char path[4096], *src = NULL, *own[3] = {NULL, NULL, NULL};
    size_t len;
    shimmy_template *t = NULL;
    shimmy_rendered out = {0};
    shimmy_render_options ro = {.no_generation_prompt = o.no_gen,
                                .bos = o.bos,
                                .eos = o.eos,
                                .trim_bos_eos = o.trim,
                                .date = o.date};
    shimmy_status st;
    rc = 1;
    if (o.model) {
        if (cli_resolve_model(o.model, path, sizeof path, &err)) goto done;
        st = shimmy_template_from_gguf(path, o.name, &t, &err);
    } else if (o.jinja) {
        if (!(src = cli_read_file(o.jinja, false, MAX_FILE, &len, &err))) goto done;
        st = shimmy_template_new(src, &t, &err);
    } else {
        st = shimmy_template_builtin(o.name, &t, &err);
    }
    if (st == SHIMMY_ERR_NOT_FOUND && strcmp(err.where, "template") == 0) {
        rc = cli_usage_error("template", usage, "%s", err.message);
        goto done;
    }
    if (st) goto done;
    if (load_json(o.messages, "--messages", &ro.messages_json, &own[0], &err)) goto done;
    if (o.tools && load_json(o.tools, "--tools", &ro.tools_json, &own[1], &err)) goto done;
    if (o.vars && load_json(o.vars, "--vars", &ro.vars_json, &own[2], &err)) goto done;
    if (shimmy_template_render(t, &ro, &out, &err)) goto done;
    rc = print_result(&o, &out, t);
done:
    if (rc == 1 && err.status != SHIMMY_OK) cli_fail(&err);
    shimmy_rendered_free(&out);
    shimmy_template_free(t);
    for (int i = 0; i < 3; i++) free(own[i]);
    free(src);
    return rc;
}
