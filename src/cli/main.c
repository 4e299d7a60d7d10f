/* shimmy entry point: dispatches to the subcommand table. */
#include "term.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const cli_command commands[] = {
    {"serve", cli_cmd_serve, "serve models over an OpenAI-compatible HTTP API"},
    {"run", cli_cmd_run, "chat with a model in the terminal (or answer piped input once)"},
    {"pull", cli_cmd_pull, "download a GGUF model from the Hugging Face Hub"},
    {"ps", cli_cmd_ps, "show the models a running server has loaded"},
    {"stop", cli_cmd_stop, "unload a model from a running server"},
    {"list", cli_cmd_list, "list the models the registry knows"},
    {"discover", cli_cmd_discover, "rescan and show where each model came from"},
    {"probe", cli_cmd_probe, "load a model, run one token, report what it is"},
    {"bench", cli_cmd_bench, "prompt and generation tokens/s"},
    {"generate", cli_cmd_generate, "generate text from a prompt"},
    {"tokenize", cli_cmd_tokenize, "print the token ids of a text"},
    {"detokenize", cli_cmd_detokenize, "print the text of token ids"},
    {"embed", cli_cmd_embed, "print embeddings of texts (or rerank scores)"},
    {"logits", cli_cmd_logits, "print top-k logits (reference checking)"},
    {"perplexity", cli_cmd_perplexity, "perplexity of a model on a text file"},
    {"template", cli_cmd_template, "render a chat with a model's template"},
    {"inspect", cli_cmd_inspect, "print GGUF metadata and tensor table"},
};

static void usage(FILE *out) {
    fprintf(out, "shimmy %s — local LLM inference server\n\nusage: shimmy <command> [options]\n\n",
            SHIMMY_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nshimmy <command> --help shows a command's options.\n");
}

int cli_not_built(const char *cmd) {
    fprintf(stderr, "shimmy: %s: not built yet\n", cmd);
    return 2;
}

int cli_fail(const shimmy_error *err) {
    if (err->where[0])
        fprintf(stderr, "shimmy: error: %s (%s)\n", err->message, err->where);
    else
        fprintf(stderr, "shimmy: error: %s\n", err->message);
    return 1;
}

int cli_usage_error(const char *cmd, const char *usage_line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "shimmy: %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n", usage_line);
    return 2;
}

int cli_model_arg(const char *cmd, const char *usage, const char *arg, const char **model) {
    if (arg[0] == '-' && arg[1] != '\0')
        return cli_usage_error(cmd, usage, "unknown option %s", arg);
    if (*model) return cli_usage_error(cmd, usage, "unexpected argument '%s'", arg);
    *model = arg;
    return 0;
}

bool cli_parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

/* The library never prints; its log lines come here. */
static void log_stderr(shimmy_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *const names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "shimmy: %s: %s\n", (unsigned)level < 4 ? names[level] : "log", msg);
}

int main(int argc, char **argv) {
    const char *lvl = getenv("SHIMMY_LOG");
    shimmy_log_level min = SHIMMY_LOG_INFO;
    if (lvl && strcmp(lvl, "debug") == 0) min = SHIMMY_LOG_DEBUG;
    if (lvl && strcmp(lvl, "warn") == 0) min = SHIMMY_LOG_WARN;
    shimmy_log_set_handler(log_stderr, NULL, min);
    const size_t n_commands = sizeof commands / sizeof commands[0];
    if (argc >= 3 && strcmp(argv[1], "help") == 0) { /* the generated docs; or a command's help */
        if (strcmp(argv[2], "--man") == 0) return cli_print_man(commands, n_commands);
        if (strcmp(argv[2], "--completion") == 0)
            return cli_print_completion(argc > 3 ? argv[3] : NULL, commands, n_commands);
        for (size_t i = 0; i < n_commands; i++)
            if (strcmp(argv[2], commands[i].name) == 0) {
                char help[] = "--help";
                char *sub[] = {argv[2], help, NULL};
                return commands[i].fn(2, sub);
            }
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("shimmy %s\n", SHIMMY_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "shimmy: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
