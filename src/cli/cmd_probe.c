/* shimmy probe MODEL [--json] [--lora A] [--lora-scaled A S] — load a model the way the server
 * does (registry entry, manager, engine loader), optionally attach LoRA adapters (files, PEFT
 * folders or registry adapter names), run one generated token, and report what the model is and
 * what it costs: architecture, parameters, quant, context, template, adapters, load time,
 * memory, first-token time. */
#include "cli.h"
#include "engine/engine.h"
#include "lora/lora.h"
#include "manager/manager.h"
#include "registry/registry.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "shimmy probe MODEL [--json] [--lora FILE|DIR|NAME] [--lora-scaled FILE|DIR|NAME SCALE]";

/* The one-token run needs only a small context: its KV cache is what probe allocates. */
#define PROBE_CTX 128

typedef struct probe_out {
    char text[256];
    size_t len;
    int32_t token;
} probe_out;

static bool probe_sink(void *user, const char *text, size_t len, int32_t token) {
    probe_out *o = user;
    size_t room = sizeof o->text - 1 - o->len;
    if (len > room) len = room;
    memcpy(o->text + o->len, text, len);
    o->len += len;
    o->text[o->len] = '\0';
    if (token >= 0) o->token = token;
    return true;
}

typedef struct probe_result {
    double load_ms, first_token_ms;
    uint64_t rss_before, rss_after, weight_bytes;
    int32_t n_prompt;
    probe_out out;
} probe_result;

/* Registry entry of one file, so a path and a name report the same metadata. */
static shimmy_status scan_one(const char *path, registry **out, shimmy_error *err) {
    const char *files[1] = {path};
    registry_options o = {0};
    o.files = files;
    o.n_files = 1;
    o.ignore_env = true;
    o.disable = REGISTRY_NO_DEFAULTS;
    shimmy_status st = registry_scan(&o, out, err);
    if (st) return st;
    if (registry_count(*out) == 1) return SHIMMY_OK;
    const registry_skip *why = registry_skipped_count(*out) ? registry_skipped_at(*out, 0) : NULL;
    st = core_error(err, SHIMMY_ERR_FORMAT, path, "%s is not a model: %s", path,
                    why                            ? why->reason
                    : registry_adapter_count(*out) ? "it is a LoRA adapter (use --lora)"
                                                   : "unknown reason");
    registry_free(*out);
    *out = NULL;
    return st;
}

static shimmy_status run_probe(manager *m, const char *name, const cli_run_opts *lo,
                               probe_result *res, shimmy_error *err) {
    res->rss_before = core_rss_bytes();
    manager_handle *h = NULL;
    shimmy_status st = manager_acquire(m, name, &h, err);
    if (st) return st;
    engine_model *em = manager_handle_model(h);
    res->load_ms = manager_handle_load_ms(h);
    res->weight_bytes = engine_model_get_info(em)->weight_bytes;
    engine_session_params sp = {0};
    sp.n_ctx = lo->ctx ? (int32_t)lo->ctx : PROBE_CTX;
    sp.n_threads = (int32_t)lo->threads;
    sp.kv_type = lo->kv;
    engine_session *s = NULL;
    lora_set *set = NULL;
    tok_buf prompt = {0};
    const tok_vocab *v = engine_model_vocab(em);
    tok_encode_opts eo = {.add_special = true};
    if (!(st = engine_session_new(em, &sp, &s, err)) &&
        !(st = lo->n_lora ? engine_lora_open(em, lo->lora, lo->n_lora, &set, err) : SHIMMY_OK) &&
        !(st = lo->n_lora ? engine_session_set_lora(s, set, err) : SHIMMY_OK) &&
        !(st = tok_encode(v, "Hello", 5, &eo, &prompt, err))) {
        engine_gen_params gp;
        engine_gen_params_default(&gp);
        gp.max_tokens = 1;
        gp.sampling.temperature = 0; /* greedy: the same token every run */
        gp.ignore_eos = true;
        engine_result er;
        res->out.token = -1;
        res->n_prompt = (int32_t)prompt.n;
        double t0 = core_time_ms();
        st = engine_generate(s, prompt.ids, prompt.n, &gp, probe_sink, &res->out, &er, err);
        res->first_token_ms = core_time_ms() - t0;
    }
    res->rss_after = core_rss_bytes();
    tok_buf_free(&prompt);
    engine_session_free(s);
    lora_set_free(set); /* after the session that borrowed it */
    manager_release(h);
    return st;
}

/* The token's text with control characters made visible ("\n"), for a one-line report. */
static void visible(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    for (; *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            n += (size_t)snprintf(buf + n, cap - n, "\\n");
        else if (c < 0x20 || c == 0x7f)
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
        else
            buf[n++] = (char)c;
    }
    buf[n] = '\0';
}

static void print_human(const registry_entry *e, const cli_run_opts *lo, const probe_result *r) {
    char shown[sizeof r->out.text * 4 + 8];
    visible(r->out.text, shown, sizeof shown);
    printf("model         %s\n", e->name);
    printf("path          %s\n", e->path);
    printf("architecture  %s\n", e->architecture);
    printf("parameters    %s (%llu)\n", e->size_label, (unsigned long long)e->n_params);
    printf("quant         %s\n", e->quant);
    printf("context       %u\n", e->context_length);
    printf("template      %s\n", e->template);
    for (size_t k = 0; k < e->n_adapters; k++)
        printf("paired LoRA   %s (%s)\n", e->adapters[k]->name, e->adapters[k]->path);
    for (size_t k = 0; k < lo->n_lora; k++)
        printf("applied LoRA  %s x%g\n", lo->lora[k].path, (double)lo->lora[k].scale);
    printf("file size     %.1f MiB\n", (double)e->size / (1 << 20));
    printf("load time     %.1f ms\n", r->load_ms);
    printf("weights       %.1f MiB\n", (double)r->weight_bytes / (1 << 20));
    if (r->rss_before && r->rss_after)
        printf(
            "memory        %.1f MiB resident after the first token (+%.1f MiB)\n",
            (double)r->rss_after / (1 << 20),
            (double)(r->rss_after - (r->rss_after > r->rss_before ? r->rss_before : r->rss_after)) /
                (1 << 20));
    printf("first token   %.1f ms for %d prompt tokens -> id %d \"%s\"\n", r->first_token_ms,
           r->n_prompt, r->out.token, shown);
}

static int print_json(const registry_entry *e, const cli_run_opts *lo, const probe_result *r) {
    json_t *paired = json_array(), *applied = json_array();
    for (size_t k = 0; k < e->n_adapters; k++)
        json_array_append_new(paired, json_pack("{s:s,s:s}", "name", e->adapters[k]->name, "path",
                                                e->adapters[k]->path));
    for (size_t k = 0; k < lo->n_lora; k++)
        json_array_append_new(applied, json_pack("{s:s,s:f}", "path", lo->lora[k].path, "scale",
                                                 (double)lo->lora[k].scale));
    json_t *doc = json_pack(
        "{s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:s,s:I,s:f,s:I,s:I,s:I,s:f,s:i,s:i,s:s%,s:o,s:o}", "name",
        e->name, "path", e->path, "architecture", e->architecture, "parameters",
        (json_int_t)e->n_params, "size_label", e->size_label, "quant", e->quant, "context_length",
        (json_int_t)e->context_length, "template", e->template, "size", (json_int_t)e->size,
        "load_ms", r->load_ms, "weight_bytes", (json_int_t)r->weight_bytes, "rss_before",
        (json_int_t)r->rss_before, "rss_after", (json_int_t)r->rss_after, "first_token_ms",
        r->first_token_ms, "prompt_tokens", r->n_prompt, "token", r->out.token, "text", r->out.text,
        r->out.len, "paired_adapters", paired, "adapters", applied);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    json_decref(doc);
    if (!text) {
        fprintf(stderr, "shimmy: error: the probe report could not be encoded as JSON\n");
        return 1;
    }
    puts(text);
    free(text);
    return 0;
}

int cli_cmd_probe(int argc, char **argv) {
    const char *arg = NULL;
    cli_run_opts lo;
    cli_run_opts_init(&lo);
    bool json = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_run_opt("probe", usage, argc, argv, &i, &lo);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n", usage);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1])
            return cli_usage_error("probe", usage, "unknown option %s", argv[i]);
        else if (!arg)
            arg = argv[i];
        else
            return cli_usage_error("probe", usage, "unexpected argument '%s'", argv[i]);
    }
    if (!arg) return cli_usage_error("probe", usage, "which model? (a .gguf path or a name)");
    shimmy_error err;
    shimmy_error_clear(&err);
    char path[4096];
    registry *reg = NULL;
    const registry_entry *e = NULL;
    /* a name keeps its registry entry (an Ollama blob's file name says nothing); a path is
     * described by a registry of that one file */
    if (access(arg, F_OK) != 0 && registry_scan(NULL, &reg, &err) == SHIMMY_OK)
        e = registry_find(reg, arg);
    if (!e) {
        registry_free(reg);
        reg = NULL;
        if (cli_resolve_model(arg, path, sizeof path, &err) || scan_one(path, &reg, &err))
            return cli_fail(&err);
        e = registry_entry_at(reg, 0);
    }
    if (cli_run_resolve_lora(&lo, &err)) {
        registry_free(reg);
        return cli_fail(&err);
    }
    manager_options mo = {0};
    mo.loader = manager_engine_loader();
    mo.keep_alive_s = -1;
    mo.no_reaper = true;
    manager *m = NULL;
    probe_result res = {0};
    shimmy_status st = manager_new(&mo, reg, &m, &err);
    if (!st) st = run_probe(m, e->name, &lo, &res, &err);
    manager_free(m);
    int rc = st ? cli_fail(&err) : json ? print_json(e, &lo, &res) : (print_human(e, &lo, &res), 0);
    registry_free(reg);
    return rc;
}
