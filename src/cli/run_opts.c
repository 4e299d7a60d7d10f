/*
 * The options every command that runs a model shares (--threads, --ctx-size, --kv, --lora,
 * --lora-scaled, --device, --gpu-layers), parsed in one place so generate, logits, perplexity,
 * bench and probe accept exactly the same spellings, ranges and messages.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_run_opts_init(cli_run_opts *o) {
    memset(o, 0, sizeof *o);
    o->kv = SHIMMY_KV_F16;
    o->gpu_layers = -1;
}

void cli_device_config(const cli_run_opts *o, const char **device, int32_t *gpu_layers) {
    *device = o ? o->device : NULL;
    *gpu_layers = 0; /* all */
    if (o && o->gpu_layers == 0)
        *device = "cpu";
    else if (o && o->gpu_layers > 0)
        *gpu_layers = (int32_t)o->gpu_layers;
}

int cli_device_opt(const char *cmd, const char *usage, int argc, char **argv, int *i,
                   cli_run_opts *o) {
    const char *a = argv[*i];
    const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    bool device = strcmp(a, "--device") == 0;
    bool layers = strcmp(a, "--gpu-layers") == 0 || strcmp(a, "-ngl") == 0;
    if (!device && !layers) return 0;
    if (!val) {
        cli_usage_error(cmd, usage, "option %s needs a value", a);
        return -1;
    }
    if (device) {
        o->device = val; /* checked with the model spec, which lists the accepted forms */
    } else if (strcmp(val, "all") == 0) {
        o->gpu_layers = -1;
    } else if (!cli_parse_long(val, -1, 1 << 20, &o->gpu_layers)) {
        cli_usage_error(cmd, usage,
                        "--gpu-layers must be a layer count (0 = none: the CPU; -1 or all = "
                        "every layer), not '%s'",
                        val);
        return -1;
    }
    (*i)++;
    return 1;
}

int cli_run_opt(const char *cmd, const char *usage, int argc, char **argv, int *i,
                cli_run_opts *o) {
    const char *a = argv[*i];
    const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    bool threads = strcmp(a, "--threads") == 0 || strcmp(a, "-t") == 0;
    bool ctx = strcmp(a, "--ctx-size") == 0 || strcmp(a, "-c") == 0;
    bool kv = strcmp(a, "--kv") == 0;
    bool lora = strcmp(a, "--lora") == 0, scaled = strcmp(a, "--lora-scaled") == 0;
    if (!threads && !ctx && !kv && !lora && !scaled)
        return cli_device_opt(cmd, usage, argc, argv, i, o);
    if (!val) {
        cli_usage_error(cmd, usage, "option %s needs a value", a);
        return -1;
    }
    if (threads) {
        if (!cli_parse_long(val, 1, 512, &o->threads)) {
            cli_usage_error(cmd, usage, "--threads must be in [1, 512]");
            return -1;
        }
    } else if (ctx) {
        if (!cli_parse_long(val, 0, 1 << 24, &o->ctx)) {
            cli_usage_error(cmd, usage, "--ctx-size must be a token count");
            return -1;
        }
    } else if (kv) {
        if (strcmp(val, "f16") != 0 && strcmp(val, "f32") != 0) {
            cli_usage_error(cmd, usage, "--kv must be f16 or f32, not '%s'", val);
            return -1;
        }
        o->kv = strcmp(val, "f32") == 0 ? SHIMMY_KV_F32 : SHIMMY_KV_F16;
    } else {
        double scale = 1.0;
        if (o->n_lora == CLI_MAX_LORA) {
            cli_usage_error(cmd, usage, "at most %d adapters", CLI_MAX_LORA);
            return -1;
        }
        if (scaled && (*i + 2 >= argc || !cli_parse_double(argv[*i + 2], -100, 100, &scale))) {
            cli_usage_error(cmd, usage,
                            "--lora-scaled needs an adapter and a SCALE in [-100, 100]");
            return -1;
        }
        o->lora_arg[o->n_lora] = val;
        o->lora[o->n_lora].path = val;
        o->lora[o->n_lora++].scale = (float)scale;
        if (scaled) (*i)++;
    }
    (*i)++;
    return 1;
}

shimmy_status cli_run_resolve_lora(cli_run_opts *o, shimmy_error *err) {
    shimmy_model_list *reg = NULL; /* scanned once, only when an argument is not a path */
    shimmy_status st = SHIMMY_OK;
    for (size_t k = 0; k < o->n_lora && !st; k++) {
        const char *arg = o->lora_arg[k], *path = arg;
        shimmy_adapter_info a;
        if (access(arg, F_OK) != 0) {
            size_t idx;
            if (!reg && (st = shimmy_scan(NULL, &reg, err))) break;
            if (!shimmy_model_list_find_adapter(reg, arg, &idx) ||
                !shimmy_model_list_adapter(reg, idx, &a)) {
                st = shimmy_error_set(err, SHIMMY_ERR_NOT_FOUND, arg,
                                      "no adapter file, folder or registry name '%s' (`shimmy "
                                      "discover` lists the adapters it found)",
                                      arg);
                break;
            }
            path = a.path;
        }
        if ((size_t)snprintf(o->lora_path[k], sizeof o->lora_path[k], "%s", path) >=
            sizeof o->lora_path[k])
            st = shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, arg, "adapter path is too long");
        o->lora[k].path = o->lora_path[k];
    }
    shimmy_model_list_free(reg);
    return st;
}

/* The model's name is the file's base name: errors about the model then say which file. */
shimmy_status cli_load_model(const char *name, const char *path, const cli_run_opts *o,
                             shimmy_model **out, shimmy_error *err) {
    *out = NULL;
    const char *base = strrchr(name, '/');
    base = base && base[1] ? base + 1 : name;
    char shown[256];
    size_t n = 0;
    for (; base[n] && n + 1 < sizeof shown; n++)
        shown[n] = (unsigned char)base[n] < 0x20 || base[n] == 0x7f ? '?' : base[n];
    shown[n] = '\0';
    shimmy_model_config cfg = {.name = n ? shown : "model", .base_path = path};
    cli_device_config(o, &cfg.device, &cfg.gpu_layers);
    shimmy_spec *spec = NULL;
    shimmy_status st = shimmy_spec_from_config(&cfg, &spec, err);
    if (!st) st = shimmy_model_load(spec, out, err);
    shimmy_spec_free(spec);
    return st;
}
