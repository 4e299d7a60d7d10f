/* shimmy template — render a conversation with a model's chat template, exactly.
 *
 * The template comes from the GGUF (tokenizer.chat_template, or tokenizer.chat_template.NAME
 * with --template NAME), a Jinja file (--jinja), or a built-in family (--template NAME, or when
 * the model has none: chosen from its vocabulary and architecture). BOS/EOS texts come from the
 * model's vocabulary unless --bos/--eos say otherwise. The prompt is printed as is, with no
 * newline added; --json wraps it with the content spans and the family. --vars passes further
 * template variables (enable_thinking, ...). Only the GGUF header is read. */
#include "chat/chat.h"
#include "cli.h"
#include "gguf/gguf.h"

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

static char *read_all(const char *path, shimmy_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        core_error(err, SHIMMY_ERR_IO, path, "cannot open the file");
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *nb = cap > ((size_t)64 << 20) ? NULL : realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        core_error(err, SHIMMY_ERR_IO, path, "cannot read the file (or it is over 64 MB)");
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* JSON given inline or as @FILE. */
static json_t *load_json(const char *arg, const char *what, shimmy_error *err) {
    char *text = NULL;
    if (arg[0] == '@') {
        text = read_all(arg + 1, err);
        if (!text) return NULL;
    }
    json_error_t je;
    json_t *j = json_loads(text ? text : arg, JSON_DECODE_ANY, &je);
    free(text);
    if (!j)
        core_error(err, SHIMMY_ERR_INVALID_JSON, what, "%s is not valid JSON: %s (line %d)", what,
                   je.text, je.line);
    return j;
}

static char *gstr_dup(gguf_str s) {
    char *c = malloc((size_t)s.len + 1);
    if (c) gguf_str_copy(s, c, (size_t)s.len + 1);
    return c;
}

typedef struct model_info {
    char *tmpl, *bos, *eos;
    const char *builtin; /* family picked when the model has no template */
} model_info;

static char *token_text(const gguf_file *f, const char *id_key) {
    uint32_t id;
    const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VT_STRING);
    if (!toks || !gguf_get_u32(f, id_key, &id) || id >= toks->v.arr.count) return NULL;
    return gstr_dup(toks->v.arr.strs[id]);
}

static bool vocab_has(const char *text, void *user) {
    const gguf_value *toks = user;
    for (uint64_t i = 0; i < toks->v.arr.count; i++)
        if (gguf_str_eq(toks->v.arr.strs[i], text)) return true;
    return false;
}

static shimmy_status read_model(const char *arg, const char *name, model_info *mi,
                                shimmy_error *err) {
    char path[4096];
    shimmy_status st = cli_resolve_model(arg, path, sizeof path, err);
    if (st) return st;
    gguf_file *f;
    if ((st = gguf_open_header(path, &f, err))) return st;
    char key[256];
    gguf_str s;
    snprintf(key, sizeof key, "tokenizer.chat_template%s%s", name ? "." : "", name ? name : "");
    if (gguf_get_str(f, key, &s)) mi->tmpl = gstr_dup(s);
    mi->bos = token_text(f, "tokenizer.ggml.bos_token_id");
    mi->eos = token_text(f, "tokenizer.ggml.eos_token_id");
    if (!mi->tmpl && !name) {
        char arch[128] = "";
        if (gguf_get_str(f, "general.architecture", &s)) gguf_str_copy(s, arch, sizeof arch);
        const gguf_value *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VT_STRING);
        mi->builtin =
            chat_builtin_pick(arch[0] ? arch : NULL, toks ? vocab_has : NULL, (void *)toks);
    }
    gguf_close(f);
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

static int print_result(const opts *o, const chat_output *out, const char *family) {
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
    json_object_set_new(j, "family", json_string(family));
    const char *eot = chat_family_eot(family);
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
    model_info mi = {0};
    char *src = NULL;
    json_t *messages = NULL, *tools = NULL, *vars = NULL;
    chat_template *tmpl = NULL;
    chat_output out = {0};
    rc = 1;
    if (o.model && read_model(o.model, o.name, &mi, &err)) goto done;
    if (o.jinja) {
        if (!(src = read_all(o.jinja, &err))) goto done;
    } else if (mi.tmpl) {
        src = mi.tmpl;
        mi.tmpl = NULL;
    } else {
        const char *name = o.name ? o.name : mi.builtin;
        const char *b = chat_builtin_get(name);
        if (!b) {
            rc = cli_usage_error("template", usage,
                                 "no template '%s' in the model or among the built-ins (chatml, "
                                 "llama2, llama3, mistral, phi3, gemma, zephyr, vicuna, openchat, "
                                 "deepseek, command-r)",
                                 name);
            goto done;
        }
        src = strdup(b);
    }
    if (!(messages = load_json(o.messages, "--messages", &err))) goto done;
    if (o.tools && !(tools = load_json(o.tools, "--tools", &err))) goto done;
    if (o.vars && !(vars = load_json(o.vars, "--vars", &err))) goto done;
    if (chat_template_new(src, &tmpl, &err)) goto done;
    chat_render_params p = {
        .messages = messages,
        .tools = tools,
        .extra = vars,
        .add_generation_prompt = !o.no_gen,
        .bos_token = o.bos ? o.bos : mi.bos,
        .eos_token = o.eos ? o.eos : mi.eos,
        .trim_bos_eos = o.trim,
        .fixed_date = o.date,
    };
    if (chat_render(tmpl, &p, &out, &err)) goto done;
    rc = print_result(&o, &out, chat_family_of(src));
done:
    if (rc == 1 && err.status != SHIMMY_OK) cli_fail(&err);
    chat_output_free(&out);
    chat_template_free(tmpl);
    json_decref(messages);
    json_decref(tools);
    json_decref(vars);
    free(src);
    free(mi.tmpl);
    free(mi.bos);
    free(mi.eos);
    return rc;
}
