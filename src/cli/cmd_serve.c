/* shimmy serve — the HTTP server (src/server) with signal handling and the listening line. */
#include "cli.h"
#include "server.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char serve_usage[] =
    "shimmy serve [--bind HOST:PORT|auto] [--model-dirs D1:D2] [--model FILE]... [--threads N]\n"
    "             [--ctx-size N] [--parallel N] [--api-key KEY] [--cors ORIGIN]\n"
    "             [--max-body BYTES] [--max-tokens-cap N] [--max-connections N] [--timeout S]\n"
    "             [--queue N] [--lora FILE|DIR]... [--lora-scaled FILE|DIR SCALE]...\n"
    "             [--max-loaded BYTES] [--keep-alive S] [--ollama] [--no-batching]\n"
    "             [--cache-ram MIB]\n"
    "             " CLI_DEVICE_USAGE;

#define SERVE_MAX_MODELS 64

typedef struct serve_opts {
    server_config cfg;
    char host[64];
    char extra_host[64]; /* a second --bind, or --ollama */
    bool bound;
    const char *models[SERVE_MAX_MODELS];
    server_lora_arg loras[SERVE_MAX_MODELS];
    long gpu_layers; /* --gpu-layers as given (-1 = all) */
} serve_opts;

typedef bool (*opt_fn)(serve_opts *o, const char *v);

/* The first --bind is the main address; a second one is served too (tools that hard-code
 * another port, e.g. Ollama's 11434). */
static bool set_bind(serve_opts *o, const char *v) {
    bool extra = o->bound;
    char *host = extra ? o->extra_host : o->host;
    int *port_out = extra ? &o->cfg.extra_port : &o->cfg.port;
    if (extra && o->cfg.extra_host) return false; /* at most two addresses */
    o->bound = true;
    if (strcmp(v, "auto") == 0) { /* any free port, on the main address's host */
        if (extra) snprintf(o->extra_host, sizeof o->extra_host, "%s", o->host);
        *port_out = 0;
    } else {
        const char *colon = strrchr(v, ':');
        long port;
        if (!colon || (size_t)(colon - v) >= sizeof o->host ||
            !cli_parse_long(colon + 1, 0, 65535, &port))
            return false;
        memcpy(host, v, (size_t)(colon - v));
        host[colon - v] = '\0';
        if (!host[0]) snprintf(host, sizeof o->host, "127.0.0.1");
        *port_out = (int)port;
    }
    if (extra) o->cfg.extra_host = o->extra_host;
    return true;
}

static bool set_model(serve_opts *o, const char *v) {
    if (o->cfg.n_models == SERVE_MAX_MODELS) return false;
    o->models[o->cfg.n_models++] = v;
    return true;
}

static bool set_lora(serve_opts *o, const char *v) {
    if (o->cfg.n_loras == SERVE_MAX_MODELS) return false;
    o->loras[o->cfg.n_loras++] = (server_lora_arg){.path = v, .scale = 1.0f};
    return true;
}

#define INT_OPT(fn, field, lo, hi)                                                                 \
    static bool fn(serve_opts *o, const char *v) {                                                 \
        long x;                                                                                    \
        if (!cli_parse_long(v, lo, hi, &x)) return false;                                          \
        o->cfg.field = (int)x;                                                                     \
        return true;                                                                               \
    }
INT_OPT(set_threads, n_threads, 0, 1024)
INT_OPT(set_ctx, ctx_size, 0, 1 << 20)
INT_OPT(set_parallel, parallel, 1, 256)
INT_OPT(set_cap, max_tokens_cap, 1, 1 << 20)
INT_OPT(set_conns, max_connections, 1, 100000)
INT_OPT(set_timeout, timeout_s, 1, 86400)
INT_OPT(set_queue, queue_cap, 0, 100000)

static bool set_body(serve_opts *o, const char *v) {
    long x;
    if (!cli_parse_long(v, 64, 1L << 30, &x)) return false;
    o->cfg.max_body = (size_t)x;
    return true;
}
/* The manager's memory budget (models beyond it evict the least recently used idle one). */
static bool set_max_loaded(serve_opts *o, const char *v) {
    long x;
    if (!cli_parse_long(v, 1, LONG_MAX, &x)) return false;
    o->cfg.max_loaded_bytes = (uint64_t)x;
    return true;
}
static bool set_keep_alive(serve_opts *o, const char *v) {
    return cli_parse_double(v, -1, 1e9, &o->cfg.keep_alive_s) && o->cfg.keep_alive_s != 0;
}
INT_OPT(set_cache_ram, cache_ram_mib, 0, 1048576)
static bool set_device(serve_opts *o, const char *v) {
    return (o->cfg.device = v) != NULL;
}
/* As for the other commands: 0 = none (the CPU), -1 or all = every layer. */
static bool set_gpu_layers(serve_opts *o, const char *v) {
    o->gpu_layers = -1;
    return strcmp(v, "all") == 0 || cli_parse_long(v, -1, 1 << 20, &o->gpu_layers);
}
static bool set_dirs(serve_opts *o, const char *v) {
    return (o->cfg.model_dirs = v) != NULL;
}
static bool set_key(serve_opts *o, const char *v) {
    return (o->cfg.api_key = v) != NULL;
}
static bool set_cors(serve_opts *o, const char *v) {
    return (o->cfg.cors_origin = v) != NULL;
}

static const struct {
    const char *name;
    opt_fn set;
    const char *expect;
} serve_options[] = {
    {"--bind", set_bind, "HOST:PORT or auto (at most twice: a second address is served too)"},
    {"--model-dirs", set_dirs, "a colon-separated list of directories"},
    {"--model", set_model, "a .gguf file (at most 64)"},
    {"--lora", set_lora, "a LoRA adapter file or PEFT folder (at most 64)"},
    {"--threads", set_threads, "an integer 0..1024"},
    {"--ctx-size", set_ctx, "an integer 0..1048576"},
    {"--parallel", set_parallel, "an integer 1..256"},
    {"--api-key", set_key, "a key"},
    {"--cors", set_cors, "an origin or *"},
    {"--max-body", set_body, "bytes, 64..1073741824"},
    {"--max-tokens-cap", set_cap, "an integer >= 1"},
    {"--max-connections", set_conns, "an integer >= 1"},
    {"--timeout", set_timeout, "seconds, 1..86400"},
    {"--queue", set_queue, "an integer >= 0"},
    {"--max-loaded", set_max_loaded, "bytes of loaded models, >= 1"},
    {"--keep-alive", set_keep_alive, "idle seconds before unloading (-1 = never), not 0"},
    {"--cache-ram", set_cache_ram, "MiB of prompt cache kept after requests end, 0..1048576"},
    {"--device", set_device, "cpu, auto, gpu, vulkan, vulkan:N or cuda"},
    {"--gpu-layers", set_gpu_layers, "a layer count (0 = none: the CPU; -1 or all = every layer)"},
    {"-ngl", set_gpu_layers, "a layer count (0 = none: the CPU; -1 or all = every layer)"},
};

int cli_cmd_serve(int argc, char **argv) {
    serve_opts o = {.gpu_layers = -1};
    server_config_defaults(&o.cfg);
    snprintf(o.host, sizeof o.host, "%s", o.cfg.host);
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n", serve_usage);
            return 0;
        }
        if (strcmp(argv[i], "--ollama") == 0) { /* Ollama's address, as its clients default to */
            if (o.cfg.extra_host)
                return cli_usage_error("serve", serve_usage,
                                       "--ollama and a second --bind both add an address");
            snprintf(o.extra_host, sizeof o.extra_host, "127.0.0.1");
            o.cfg.extra_host = o.extra_host;
            o.cfg.extra_port = 11434;
            i--; /* takes no value */
            continue;
        }
        if (strcmp(argv[i], "--no-batching") == 0) { /* slots take turns per forward step */
            o.cfg.no_batching = true;
            i--;
            continue;
        }
        if (strcmp(argv[i], "--lora-scaled") == 0) {
            double scale;
            if (i + 2 >= argc || o.cfg.n_loras == SERVE_MAX_MODELS ||
                !cli_parse_double(argv[i + 2], -1e6, 1e6, &scale))
                return cli_usage_error("serve", serve_usage,
                                       "--lora-scaled expects an adapter and a finite scale");
            o.loras[o.cfg.n_loras++] =
                (server_lora_arg){.path = argv[i + 1], .scale = (float)scale};
            i++;
            continue;
        }
        size_t k = 0, n = sizeof serve_options / sizeof serve_options[0];
        while (k < n && strcmp(argv[i], serve_options[k].name) != 0) k++;
        if (k == n) return cli_usage_error("serve", serve_usage, "unknown option '%s'", argv[i]);
        if (i + 1 >= argc)
            return cli_usage_error("serve", serve_usage, "%s needs %s", argv[i],
                                   serve_options[k].expect);
        if (!serve_options[k].set(&o, argv[i + 1]))
            return cli_usage_error("serve", serve_usage, "%s expects %s (got '%s')", argv[i],
                                   serve_options[k].expect, argv[i + 1]);
    }
    o.cfg.gpu_layers = o.gpu_layers > 0 ? (int)o.gpu_layers : 0;
    if (o.gpu_layers == 0) o.cfg.device = "cpu";
    o.cfg.host = o.host;
    o.cfg.models = o.models;
    o.cfg.loras = o.loras;

    /* Every thread the server starts inherits this mask, so the signals arrive here only. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    server *s = NULL;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (server_new(&o.cfg, &s, &err) || server_start(s, &err)) {
        server_free(s);
        return cli_fail(&err);
    }
    printf("shimmy: listening on %s\n", server_url(s));
    if (server_extra_url(s)) printf("shimmy: also listening on %s\n", server_extra_url(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    shimmy_log(SHIMMY_LOG_INFO, "server: %s received, shutting down",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_stop(s);
    server_free(s);
    return 0;
}
