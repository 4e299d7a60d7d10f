/*
 * cli — the `shimmy` program: the only place that parses argv, prints for humans and calls
 * exit(). Each subcommand lives in cmd_<name>.c and is one row of the table in main.c.
 *
 * Layering: the CLI is a user of libshimmy like any other program. It includes shimmy.h and
 * system headers only (cmd_serve.c also the server module's header), which the build enforces:
 * the executable's include path has no src/.
 *
 * Exit codes: 0 success, 1 the operation failed (the error is printed on stderr), 2 usage error
 * or a command not built yet.
 */
#ifndef SHIMMY_CLI_H
#define SHIMMY_CLI_H

#include "shimmy.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef int (*cli_cmd_fn)(int argc, char **argv); /* argv[0] is the subcommand name */

int cli_cmd_serve(int argc, char **argv);
int cli_cmd_list(int argc, char **argv);
int cli_cmd_discover(int argc, char **argv);
int cli_cmd_probe(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_generate(int argc, char **argv);
int cli_cmd_tokenize(int argc, char **argv);
int cli_cmd_detokenize(int argc, char **argv);
int cli_cmd_embed(int argc, char **argv);
int cli_cmd_logits(int argc, char **argv);
int cli_cmd_perplexity(int argc, char **argv);
int cli_cmd_template(int argc, char **argv);
int cli_cmd_inspect(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);  /* cmd_run.c, run_*.c */
int cli_cmd_pull(int argc, char **argv); /* cmd_pull.c, hub*.c */
int cli_cmd_ps(int argc, char **argv);   /* cmd_ps.c */
int cli_cmd_stop(int argc, char **argv); /* cmd_ps.c */

/* Prints "shimmy: <cmd>: not built yet" and returns 2. */
int cli_not_built(const char *cmd);
/* Prints "shimmy: <message> (<where>)" on stderr and returns 1. */
int cli_fail(const shimmy_error *err);
/* Prints "shimmy: <cmd>: <message>" and the usage line on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The end of an option loop for a command taking one MODEL: an unknown option or a second
 * positional argument is a usage error (its exit code is returned); otherwise *model = arg, 0. */
int cli_model_arg(const char *cmd, const char *usage, const char *arg, const char **model);

/* Strict number parsing: the whole string, within [lo, hi]. */
bool cli_parse_long(const char *s, long lo, long hi, long *out);
bool cli_parse_double(const char *s, double lo, double hi, double *out);

/* ---- small system helpers (util.c) ---- */

double cli_time_ms(void);     /* monotonic clock */
uint64_t cli_rss_bytes(void); /* resident memory of this process; 0 when unknown */
/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates, code points > U+10FFFF). */
bool cli_utf8_valid(const char *s, size_t n);
/* A whole file ("-" = standard input when allow_stdin) into memory, NUL-terminated after *len
 * bytes; at most max bytes (SHIMMY_ERR_TOO_LARGE beyond). NULL with err filled on failure;
 * the caller frees the result. */
char *cli_read_file(const char *path, bool allow_stdin, size_t max, size_t *len, shimmy_error *err);

/* ---- options shared by every command that runs a model ---- */

#define CLI_MAX_LORA 8

typedef struct cli_run_opts {
    long threads;                   /* --threads/-t; 0 = physical cores */
    long ctx;                       /* --ctx-size/-c; 0 = the command's default */
    shimmy_kv_type kv;              /* --kv f16|f32 (default f16) */
    shimmy_lora lora[CLI_MAX_LORA]; /* --lora A (scale 1), --lora-scaled A S */
    size_t n_lora;
    const char *lora_arg[CLI_MAX_LORA]; /* as given: a file, a PEFT folder or a registry name */
    char lora_path[CLI_MAX_LORA][4096]; /* filled by cli_run_resolve_lora */
    const char *device;                 /* --device D; NULL = SHIMMY_DEVICE, else auto */
    long gpu_layers;                    /* --gpu-layers/-ngl N; -1 (the default) = all */
} cli_run_opts;

/* The usage text of the two device options, for each command's usage line. */
#define CLI_DEVICE_USAGE "[--device cpu|auto|gpu|vulkan[:N]|cuda] [--gpu-layers N]"

void cli_run_opts_init(cli_run_opts *o);
/* When argv[*i] is one of the shared options, consumes it and its values (leaving *i on the
 * last one, as a for loop's i++ expects) and returns 1; returns 0 when it is not one of them;
 * prints a usage error and returns -1 on a bad value (the command then exits 2). */
int cli_run_opt(const char *cmd, const char *usage, int argc, char **argv, int *i, cli_run_opts *o);
/* The same for --device and --gpu-layers/-ngl alone (commands without the other options). */
int cli_device_opt(const char *cmd, const char *usage, int argc, char **argv, int *i,
                   cli_run_opts *o);
/* Turns each --lora argument that is not an existing path into the path of the registry adapter
 * of that name (`shimmy discover` lists them); o->lora[k].path then points into o. */
shimmy_status cli_run_resolve_lora(cli_run_opts *o, shimmy_error *err);

/* Loads the model file at path (resolved by cli_resolve_model) under the name `name`, the way
 * every model command does, on o's device (o may be NULL: the default); *out is one reference. */
shimmy_status cli_load_model(const char *name, const char *path, const cli_run_opts *o,
                             shimmy_model **out, shimmy_error *err);
/* Sets spec fields from --device and --gpu-layers (--gpu-layers 0: the CPU, as llama.cpp's -ngl
 * 0 means). */
void cli_device_config(const cli_run_opts *o, const char **device, int32_t *gpu_layers);

/* For the commands that only scan (list, discover): parses [--json] [--model-dirs D1:D2]
 * [--help] and scans. Returns true with *out (caller frees with shimmy_model_list_free); false
 * when the command should exit now with *rc (help, usage error or a failed scan, printed). */
bool cli_scan(const char *cmd, const char *usage, int argc, char **argv, bool *json,
              shimmy_model_list **out, int *rc);

/* A JSON string of s (file paths, reasons): paths are bytes, JSON wants UTF-8, so invalid
 * sequences become U+FFFD. New reference, or NULL when out of memory. */
struct json_t;
struct json_t *cli_json_text(const char *s);
struct json_t *cli_json_textn(const char *s, size_t len); /* s need not be NUL-terminated */

/* Resolves a MODEL argument (a registry name or a path to a .gguf) to a file path in buf. */
shimmy_status cli_resolve_model(const char *arg, char *buf, size_t cap, shimmy_error *err);

#endif
