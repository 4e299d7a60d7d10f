/* shimmy probe MODEL [--json] [--lora A] [--lora-scaled A S] [--device D] — load a model the way
 * the server does (registry entry, then the library's loader), optionally attach LoRA adapters
 * (files, PEFT folders or registry adapter names), run one generated token, and report what the
 * model is and what it costs: architecture, parameters, quant, context, template, adapters, the
 * device it runs on, load time, memory, first-token time. shimmy probe --devices lists the
 * Vulkan devices instead. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "shimmy probe MODEL [--json] [--lora FILE|DIR|NAME] [--lora-scaled FILE|DIR|NAME SCALE]\n"
    "       " CLI_DEVICE_USAGE "\n"
    "shimmy probe --devices [--json]   the GPUs (Vulkan devices) a model can run on";

/* The one-token run needs only a small context: its KV cache is what probe allocates. */
#define PROBE_CTX 128

typedef struct probe_out {
    char text[256];
    size_t len;
    int32_t token;
} probe_out;

static shimmy_next probe_sink(const char *text, size_t len, void *user) {
    probe_out *o = user;
    size_t room = sizeof o->text - 1 - o->len;
    if (len > room) len = room;
    memcpy(o->text + o->len, text, len);
    o->len += len;
    o->text[o->len] = '\0';
    return SHIMMY_CONTINUE;
}

typedef struct probe_result {
    double load_ms, first_token_ms;
    uint64_t rss_before, rss_after, weight_bytes;
    int32_t n_prompt;
    probe_out out;
    int32_t embed_dim; /* an embedding model (no generation): floats of its vector, else 0 */
    const char *pooling;
    char device[256]; /* "cpu" or the GPU's name */
    char cpu_kernels[192];
    int32_t gpu_layers;
    uint64_t device_bytes; /* after the first token: weights and KV cache */
} probe_result;

/* Registry entry of one file, so a path and a name report the same metadata. */
static shimmy_status scan_one(const char *path, shimmy_model_list **out, shimmy_error *err) {
    const char *files[1] = {path};
    shimmy_scan_options o = {.files = files, .n_files = 1, .ignore_env = true, .no_defaults = true};
    shimmy_status st = shimmy_scan(&o, out, err);
    if (st) return st;
    if (shimmy_model_list_count(*out) == 1) return SHIMMY_OK;
    const char *why = shimmy_model_list_skipped_count(*out)
                          ? shimmy_model_list_skipped_reason(*out, 0)
                      : shimmy_model_list_adapter_count(*out) ? "it is a LoRA adapter (use --lora)"
                                                              : "unknown reason";
    st = shimmy_error_set(err, SHIMMY_ERR_FORMAT, path, "%s is not a model: %s", path, why);
    shimmy_model_list_free(*out);
    *out = NULL;
    return st;
}

static shimmy_status run_probe(const shimmy_model_entry *e, const cli_run_opts *lo,
                               probe_result *res, shimmy_error *err) {
    res->rss_before = cli_rss_bytes();
    shimmy_model *m = NULL;
    const double t_load = cli_time_ms();
    shimmy_status st = cli_load_model(e->name, e->path, lo, &m, err);
    if (st) return st;
    res->load_ms = cli_time_ms() - t_load;
    res->weight_bytes = shimmy_model_weight_bytes(m);
    snprintf(res->device, sizeof res->device, "%s", shimmy_model_device(m));
    snprintf(res->cpu_kernels, sizeof res->cpu_kernels, "%s", shimmy_model_cpu_kernels(m));
    res->gpu_layers = shimmy_model_gpu_layers(m);
    shimmy_evaluator_params ep = {.ctx_len = lo->ctx ? (int32_t)lo->ctx : PROBE_CTX,
                                  .kv = lo->kv,
                                  .threads = (int32_t)lo->threads,
                                  .lora = lo->lora,
                                  .n_lora = lo->n_lora};
    shimmy_evaluator *s = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    st = shimmy_evaluator_new(m, &ep, &s, err);
    if (st == SHIMMY_ERR_UNSUPPORTED && strcmp(shimmy_model_pooling(m), "none") != 0) {
        /* an encoder cannot generate: the probe embeds "Hello" instead */
        const shimmy_embed_input in = {.text = "Hello"};
        shimmy_embeddings emb;
        const double t0 = cli_time_ms();
        st = shimmy_embed(m, &in, 1, NULL, &emb, err);
        res->first_token_ms = cli_time_ms() - t0;
        res->n_prompt = st ? 0 : emb.n_tokens[0];
        res->embed_dim = st ? 0 : emb.dim;
        res->pooling = shimmy_model_pooling(m);
        res->out.token = -1;
        shimmy_embeddings_free(&emb);
    } else if (!st &&
               !(st = shimmy_tokenize(shimmy_model_vocab(m), "Hello", 5,
                                      SHIMMY_TOKENIZE_ADD_SPECIAL, &prompt, &n_prompt, err))) {
        /* greedy: the same token every run */
        shimmy_gen_options gp = {.max_tokens = 1, .temperature = 0, .ignore_eos = true};
        int32_t id = -1;
        shimmy_eval_output out = {.ids = &id, .ids_cap = 1};
        res->n_prompt = (int32_t)n_prompt;
        double t0 = cli_time_ms();
        st = shimmy_evaluator_generate(s, prompt, n_prompt, &gp, probe_sink, &res->out, &out, err);
        res->first_token_ms = cli_time_ms() - t0;
        res->out.token = out.result.completion_tokens > 0 ? id : -1;
    }
    res->rss_after = cli_rss_bytes();
    res->device_bytes = shimmy_model_device_bytes(m);
    shimmy_free(prompt);
    shimmy_evaluator_free(s);
    shimmy_model_unref(m);
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

static void print_human(const shimmy_model_list *l, size_t i, const cli_run_opts *lo,
                        const probe_result *r) {
    shimmy_model_entry e;
    shimmy_adapter_info a;
    shimmy_model_list_entry(l, i, &e);
    char shown[sizeof r->out.text * 4 + 8];
    visible(r->out.text, shown, sizeof shown);
    printf("model         %s\n", e.name);
    printf("path          %s\n", e.path);
    printf("architecture  %s\n", e.architecture);
    printf("parameters    %s (%llu)\n", e.size_label, (unsigned long long)e.parameters);
    printf("quant         %s\n", e.quant);
    printf("context       %u\n", e.ctx_len);
    printf("template      %s\n", e.template_family);
    for (size_t k = 0; k < e.n_adapters; k++)
        if (shimmy_model_list_adapter(l, shimmy_model_list_paired(l, i, k), &a))
            printf("paired LoRA   %s (%s)\n", a.name, a.path);
    for (size_t k = 0; k < lo->n_lora; k++)
        printf("applied LoRA  %s x%g\n", lo->lora[k].path, (double)lo->lora[k].scale);
    if (r->gpu_layers > 0)
        printf("device        %s (%d layers, %.1f MiB)\n", r->device, (int)r->gpu_layers,
               (double)r->device_bytes / (1 << 20));
    else
        printf("device        %s\n", r->device);
    printf("cpu kernels   %s\n", r->cpu_kernels);
    printf("file size     %.1f MiB\n", (double)e.size / (1 << 20));
    printf("load time     %.1f ms\n", r->load_ms);
    printf("weights       %.1f MiB\n", (double)r->weight_bytes / (1 << 20));
    if (r->rss_before && r->rss_after)
        printf(
            "memory        %.1f MiB resident after the first token (+%.1f MiB)\n",
            (double)r->rss_after / (1 << 20),
            (double)(r->rss_after - (r->rss_after > r->rss_before ? r->rss_before : r->rss_after)) /
                (1 << 20));
    if (r->embed_dim)
        printf("embedding     %.1f ms for %d tokens -> %d floats (%s pooling)\n", r->first_token_ms,
               r->n_prompt, r->embed_dim, r->pooling);
    else
        printf("first token   %.1f ms for %d prompt tokens -> id %d \"%s\"\n", r->first_token_ms,
               r->n_prompt, r->out.token, shown);
}

static int print_json(const shimmy_model_list *l, size_t i, const cli_run_opts *lo,
                      const probe_result *r) {
    shimmy_model_entry e;
    shimmy_adapter_info a;
    shimmy_model_list_entry(l, i, &e);
    json_t *paired = json_array(), *applied = json_array();
    for (size_t k = 0; k < e.n_adapters; k++)
        if (shimmy_model_list_adapter(l, shimmy_model_list_paired(l, i, k), &a))
            json_array_append_new(paired, json_pack("{s:s,s:s}", "name", a.name, "path", a.path));
    for (size_t k = 0; k < lo->n_lora; k++)
        json_array_append_new(applied, json_pack("{s:s,s:f}", "path", lo->lora[k].path, "scale",
                                                 (double)lo->lora[k].scale));
    json_t *doc = json_pack(
        "{s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:s,s:I,s:f,s:I,s:I,s:I,s:f,s:i,s:i,s:s%,s:o,s:o}", "name",
        e.name, "path", e.path, "architecture", e.architecture, "parameters",
        (json_int_t)e.parameters, "size_label", e.size_label, "quant", e.quant, "context_length",
        (json_int_t)e.ctx_len, "template", e.template_family, "size", (json_int_t)e.size, "load_ms",
        r->load_ms, "weight_bytes", (json_int_t)r->weight_bytes, "rss_before",
        (json_int_t)r->rss_before, "rss_after", (json_int_t)r->rss_after, "first_token_ms",
        r->first_token_ms, "prompt_tokens", r->n_prompt, "token", r->out.token, "text", r->out.text,
        r->out.len, "paired_adapters", paired, "adapters", applied);
    if (doc) {
        json_object_set_new(doc, "device", json_string(r->device));
        json_object_set_new(doc, "gpu_layers", json_integer(r->gpu_layers));
        json_object_set_new(doc, "device_bytes", json_integer((json_int_t)r->device_bytes));
        json_object_set_new(doc, "cpu_kernels", json_string(r->cpu_kernels));
    }
    if (doc && r->embed_dim) {
        json_object_set_new(doc, "embedding_size", json_integer(r->embed_dim));
        json_object_set_new(doc, "pooling", json_string(r->pooling));
    }
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

/* shimmy probe --devices: index, name, type, memory, and whether a model can run there. */
static int list_devices(bool json) {
    shimmy_error err;
    shimmy_error_clear(&err);
    const int32_t n = shimmy_list_devices(NULL, 0, &err);
    shimmy_device_info *d = n > 0 ? calloc((size_t)n, sizeof *d) : NULL;
    const int32_t got = d ? shimmy_list_devices(d, n, &err) : 0;
    const int32_t shown = got < n ? got : n;
    if (json) {
        json_t *arr = json_array();
        for (int32_t i = 0; i < shown; i++)
            json_array_append_new(
                arr,
                json_pack("{s:i,s:s,s:s,s:I,s:s,s:I,s:b,s:b,s:s}", "index", d[i].index, "name",
                          d[i].name, "type", d[i].type, "vendor_id", (json_int_t)d[i].vendor_id,
                          "driver", d[i].driver, "vram_bytes", (json_int_t)d[i].vram_bytes,
                          "software", d[i].software, "usable", d[i].usable, "why", d[i].why));
        json_t *doc = json_pack("{s:o}", "devices", arr);
        if (doc && !shown && err.status)
            json_object_set_new(doc, "error", json_string(err.message));
        char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        json_decref(doc);
        free(d);
        if (!text) {
            fprintf(stderr, "shimmy: error: the device list could not be encoded as JSON\n");
            return 1;
        }
        puts(text);
        free(text);
        return 0;
    }
    if (!shown) {
        printf("no GPU: %s; models run on the CPU\n",
               err.status ? err.message : "the Vulkan loader reports no device");
        free(d);
        return 0;
    }
    for (int32_t i = 0; i < shown; i++) {
        printf("vulkan:%-3d %s\n", (int)d[i].index, d[i].name);
        printf("           %s%s, %.1f GiB, %s\n", d[i].type, d[i].software ? " (software)" : "",
               (double)d[i].vram_bytes / (1 << 30), d[i].driver);
        if (!d[i].usable)
            printf("           not usable: %s\n", d[i].why);
        else if (d[i].software)
            printf("           usable, but auto skips it (name it: --device vulkan:%d)\n",
                   (int)d[i].index);
        else
            printf("           usable\n");
    }
    free(d);
    return 0;
}

int cli_cmd_probe(int argc, char **argv) {
    const char *arg = NULL;
    cli_run_opts lo;
    cli_run_opts_init(&lo);
    bool json = false, devices = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_run_opt("probe", usage, argc, argv, &i, &lo);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--devices") == 0)
            devices = true;
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
    if (devices && arg) return cli_usage_error("probe", usage, "--devices takes no model");
    if (devices) return list_devices(json);
    if (!arg) return cli_usage_error("probe", usage, "which model? (a .gguf path or a name)");
    shimmy_error err;
    shimmy_error_clear(&err);
    char path[4096];
    shimmy_model_list *reg = NULL;
    size_t idx = 0;
    bool found = false;
    /* a name keeps its registry entry (an Ollama blob's file name says nothing); a path is
     * described by a registry of that one file */
    if (access(arg, F_OK) != 0 && shimmy_scan(NULL, &reg, &err) == SHIMMY_OK)
        found = shimmy_model_list_find(reg, arg, &idx);
    if (!found) {
        shimmy_model_list_free(reg);
        reg = NULL;
        idx = 0;
        if (cli_resolve_model(arg, path, sizeof path, &err) || scan_one(path, &reg, &err))
            return cli_fail(&err);
    }
    if (cli_run_resolve_lora(&lo, &err)) {
        shimmy_model_list_free(reg);
        return cli_fail(&err);
    }
    shimmy_model_entry e;
    shimmy_model_list_entry(reg, idx, &e);
    probe_result res = {0};
    shimmy_status st = run_probe(&e, &lo, &res, &err);
    int rc = st     ? cli_fail(&err)
             : json ? print_json(reg, idx, &lo, &res)
                    : (print_human(reg, idx, &lo, &res), 0);
    shimmy_model_list_free(reg);
    return rc;
}
