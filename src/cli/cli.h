/*
 * cli — the `shimmy` program: the only place that parses argv, prints for humans and calls
 * exit(). Each subcommand lives in cmd_<name>.c and is one row of the table in main.c.
 *
 * Exit codes: 0 success, 1 the operation failed (the error is printed on stderr), 2 usage error
 * or a command not built yet.
 */
#ifndef SHIMMY_CLI_H
#define SHIMMY_CLI_H

#include "core/core.h"

#include <stdbool.h>
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
int cli_cmd_logits(int argc, char **argv);
int cli_cmd_perplexity(int argc, char **argv);
int cli_cmd_template(int argc, char **argv);
int cli_cmd_inspect(int argc, char **argv);

/* Prints "shimmy: <cmd>: not built yet" and returns 2. */
int cli_not_built(const char *cmd);
/* Prints "shimmy: <message> (<where>)" on stderr and returns 1. */
int cli_fail(const shimmy_error *err);
/* Prints "shimmy: <cmd>: <message>" and the usage line on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Strict number parsing: the whole string, within [lo, hi]. */
bool cli_parse_long(const char *s, long lo, long hi, long *out);
bool cli_parse_double(const char *s, double lo, double hi, double *out);

/* Resolves a MODEL argument (a registry name or a path to a .gguf) to a file path in buf. */
shimmy_status cli_resolve_model(const char *arg, char *buf, size_t cap, shimmy_error *err);

#endif
