/*
 * shimmy run: a chat with a model in the terminal. Interactive on a terminal (libedit line
 * editing and history, multi-line input, slash commands, Ctrl-C stops an answer, Ctrl-D
 * leaves); with a piped standard input, or a PROMPT argument, it answers once and exits.
 */
#include "term.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const USAGE =
    "shimmy run MODEL [PROMPT] [--system TEXT] [--host URL] [--temp T] [--top-k K]\n"
    "       [--top-p P] [--min-p P] [--repeat-penalty R] [--repeat-last-n N]\n"
    "       [--presence-penalty X] [--frequency-penalty X] [--seed S] [-n N] [--stop TEXT]...\n"
    "       [--ctx-size N] [--threads N] [--lora FILE]\n"
    "       [--lora-scaled FILE S] [--hide-thinking] [--ignore-eos] [--verbose]\n"
    "       " CLI_DEVICE_USAGE;

static const char *const HELP =
    "Commands:\n"
    "  /set NAME VALUE   a sampling option: temperature, top_k, top_p, min_p,\n"
    "                    repeat_penalty, repeat_last_n, presence_penalty,\n"
    "                    frequency_penalty, seed, num_predict; /set stop TEXT adds a stop\n"
    "                    string (/set stop alone clears them); /set verbose, /set quiet\n"
    "  /show             the options in effect, the system prompt, the conversation size\n"
    "  /system [TEXT]    set the system prompt (no TEXT: remove it)\n"
    "  /clear            forget the conversation (the system prompt stays)\n"
    "  /save FILE        write the conversation (and options) as JSON\n"
    "  /load FILE        continue a saved conversation\n"
    "  /bye              leave (Ctrl-D too)\n"
    "Type \"\"\" to start and end a message of several lines; a line ending in \\ continues.\n"
    "Ctrl-C stops an answer; on an empty line it clears the line.\n";

#define RUN_MAX_STOP 16

#define P(n, a, f, k, lo, hi, field)                                                               \
    { n, a, f, k, lo, hi, offsetof(shimmy_gen_options, field) }
const run_param run_params[] = {
    P("temperature", "temp", "--temp", 'f', 0, 10, temperature),
    P("top_k", NULL, "--top-k", 'i', 0, 1 << 30, top_k),
    P("top_p", NULL, "--top-p", 'f', 0, 1, top_p),
    P("min_p", NULL, "--min-p", 'f', 0, 1, min_p),
    P("repeat_penalty", NULL, "--repeat-penalty", 'f', 0, 10, repeat_penalty),
    P("repeat_last_n", NULL, "--repeat-last-n", 'i', 0, 1 << 20, repeat_last_n),
    P("presence_penalty", NULL, "--presence-penalty", 'f', -2, 2, presence_penalty),
    P("frequency_penalty", NULL, "--frequency-penalty", 'f', -2, 2, frequency_penalty),
    P("seed", NULL, "--seed", 'u', 0, 4294967295.0, seed),
    P("num_predict", "max_tokens", "-n", 'i', 0, SHIMMY_MAX_TOKENS_LIMIT, max_tokens),
};
#undef P
const size_t run_n_params = sizeof run_params / sizeof run_params[0];

typedef struct run_state {
    const char *model, *host, *prompt_arg;
    shimmy_gen_options g;
    unsigned set; /* bit i: run_params[i] given by the user */
    char *stop[RUN_MAX_STOP];
    size_t n_stop;
    bool verbose;
    cli_run_opts ro;
    run_conv conv;
    run_out out;
    run_backend *be;
} run_state;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static const run_param *find_param(const char *name) {
    for (size_t i = 0; i < run_n_params; i++)
        if (strcmp(name, run_params[i].name) == 0 ||
            (run_params[i].alias && strcmp(name, run_params[i].alias) == 0) ||
            strcmp(name, run_params[i].flag) == 0)
            return &run_params[i];
    return NULL;
}

/* Sets one option from text; false with a message in msg when the value is bad. */
static bool set_param(run_state *s, const run_param *p, const char *val, char *msg, size_t cap) {
    double d;
    if (!cli_parse_double(val, p->lo, p->hi, &d) || (p->kind != 'f' && d != (double)(long long)d)) {
        snprintf(msg, cap, "%s must be %s in [%g, %g], not '%s'", p->name,
                 p->kind == 'f' ? "a number" : "a whole number", p->lo, p->hi, val);
        return false;
    }
    char *base = (char *)&s->g + p->offset;
    if (p->kind == 'f')
        *(float *)(void *)base = (float)d;
    else if (p->kind == 'i')
        *(int32_t *)(void *)base = (int32_t)d;
    else
        *(uint32_t *)(void *)base = (uint32_t)d;
    s->set |= 1u << (size_t)(p - run_params);
    return true;
}

static bool add_stop(run_state *s, const char *text) {
    if (s->n_stop == RUN_MAX_STOP || !*text) return false;
    if (!(s->stop[s->n_stop] = strdup(text))) return false;
    s->n_stop++;
    s->g.stop = (const char *const *)s->stop;
    s->g.n_stop = s->n_stop;
    return true;
}

static void clear_stops(run_state *s) {
    for (size_t i = 0; i < s->n_stop; i++) free(s->stop[i]);
    s->n_stop = 0;
    s->g.n_stop = 0;
}

/* The options as JSON, for /save and /show. */
static char *options_json(const run_state *s) {
    json_t *o = json_object();
    for (size_t i = 0; i < run_n_params; i++) {
        const run_param *p = &run_params[i];
        const char *base = (const char *)&s->g + p->offset;
        json_object_set_new(o, p->name,
                            p->kind == 'f'   ? json_real(*(const float *)(const void *)base)
                            : p->kind == 'i' ? json_integer(*(const int32_t *)(const void *)base)
                                             : json_integer(*(const uint32_t *)(const void *)base));
    }
    json_t *stop = json_array();
    for (size_t i = 0; i < s->n_stop; i++) json_array_append_new(stop, json_string(s->stop[i]));
    json_object_set_new(o, "stop", stop);
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    return text;
}

static void apply_options(run_state *s, const char *json) {
    json_t *o = json ? json_loads(json, 0, NULL) : NULL;
    const char *key;
    json_t *v;
    char num[64], msg[256];
    json_object_foreach(o, key, v) {
        const run_param *p = find_param(key);
        if (p && json_is_number(v)) {
            snprintf(num, sizeof num, "%.17g", json_number_value(v));
            if (!set_param(s, p, num, msg, sizeof msg)) fprintf(stderr, "%s\n", msg);
        } else if (strcmp(key, "stop") == 0 && json_is_array(v)) {
            clear_stops(s);
            for (size_t i = 0; i < json_array_size(v); i++)
                if (json_is_string(json_array_get(v, i)))
                    add_stop(s, json_string_value(json_array_get(v, i)));
        }
    }
    json_decref(o);
}

/* ---- slash commands; returns false to leave ---- */

static void show(run_state *s) {
    char *o = options_json(s);
    printf("model: %s%s%s\n", run_backend_name(s->be), s->host ? " on " : "",
           s->host ? s->host : "");
    printf("options: %s\n", o ? o : "{}");
    printf("system: %s\n", s->conv.system ? s->conv.system : "(none)");
    printf("conversation: %zu messages\n", s->conv.n);
    free(o);
}

static bool command(run_state *s, char *line) {
    char *arg = line + strcspn(line, " \t");
    if (*arg) *arg++ = '\0';
    arg += strspn(arg, " \t");
    shimmy_error err;
    shimmy_error_clear(&err);
    if (strcmp(line, "/bye") == 0 || strcmp(line, "/exit") == 0 || strcmp(line, "/quit") == 0)
        return false;
    if (strcmp(line, "/?") == 0 || strcmp(line, "/help") == 0) {
        fputs(HELP, stdout);
    } else if (strcmp(line, "/clear") == 0) {
        run_conv_clear(&s->conv);
        printf("Cleared the conversation.\n");
    } else if (strcmp(line, "/system") == 0 ||
               (strcmp(line, "/set") == 0 && strncmp(arg, "system", 6) == 0 &&
                (arg[6] == ' ' || !arg[6]))) {
        const char *text = strcmp(line, "/set") == 0 ? arg + 6 + strspn(arg + 6, " ") : arg;
        run_conv_set_system(&s->conv, text);
        printf(*text ? "Set the system prompt.\n" : "Removed the system prompt.\n");
    } else if (strcmp(line, "/show") == 0) {
        show(s);
    } else if (strcmp(line, "/set") == 0) {
        char *name = arg, *val = arg + strcspn(arg, " \t");
        if (*val) *val++ = '\0';
        val += strspn(val, " \t");
        if (strcmp(name, "parameter") == 0) { /* Ollama's spelling: /set parameter NAME V */
            name = val;
            val = val + strcspn(val, " \t");
            if (*val) *val++ = '\0';
            val += strspn(val, " \t");
        }
        const run_param *p = find_param(name);
        char msg[256];
        if (strcmp(name, "verbose") == 0 || strcmp(name, "quiet") == 0) {
            s->verbose = name[0] == 'v';
            printf("Set %s mode.\n", name);
        } else if (strcmp(name, "stop") == 0) {
            if (!*val) {
                clear_stops(s);
                printf("Cleared the stop strings.\n");
            } else if (add_stop(s, val)) {
                printf("Added the stop string '%s'.\n", val);
            } else {
                printf("At most %d stop strings.\n", RUN_MAX_STOP);
            }
        } else if (!p) {
            printf("Unknown option '%s'. /? lists the options.\n", name);
        } else if (!*val) {
            printf("/set %s needs a value.\n", p->name);
        } else if (!set_param(s, p, val, msg, sizeof msg)) {
            printf("%s\n", msg);
        } else {
            printf("Set %s to %s.\n", p->name, val);
        }
    } else if (strcmp(line, "/save") == 0 || strcmp(line, "/load") == 0) {
        char *opts = NULL;
        if (!*arg) {
            printf("%s needs a FILE.\n", line);
        } else if (line[1] == 's') {
            opts = options_json(s);
            if (run_conv_save(&s->conv, opts, arg, &err))
                printf("%s\n", err.message);
            else
                printf("Saved the conversation to %s.\n", arg);
        } else if (run_conv_load(&s->conv, arg, &opts, &err)) {
            printf("%s\n", err.message);
        } else {
            apply_options(s, opts);
            printf("Loaded %zu messages from %s.\n", s->conv.n, arg);
        }
        free(opts);
    } else {
        printf("Unknown command '%s'. Type /? for help.\n", line);
    }
    return true;
}

/* ---- one turn ---- */

static int turn(run_state *s, const char *text, size_t len) {
    shimmy_error err;
    shimmy_error_clear(&err);
    run_stats rs;
    if (!run_conv_add(&s->conv, "user", text, len)) {
        shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        return cli_fail(&err);
    }
    interrupted = 0;
    shimmy_status st =
        run_backend_reply(s->be, &s->conv, &s->g, s->set, &s->out, &interrupted, &rs, &err);
    interrupted = 0;
    if (s->out.any) fputc('\n', stdout);
    fflush(stdout);
    if (rs.dropped_turns)
        fprintf(stderr, "(the conversation outgrew the context: forgot the oldest %d turn%s)\n",
                rs.dropped_turns, rs.dropped_turns == 1 ? "" : "s");
    if (st) {
        /* the question stays unanswered: drop it so the next turn starts clean */
        if (s->conv.n && strcmp(s->conv.m[s->conv.n - 1].role, "user") == 0) {
            free(s->conv.m[s->conv.n - 1].role);
            free(s->conv.m[s->conv.n - 1].content);
            s->conv.n--;
        }
        return cli_fail(&err);
    }
    if (rs.cancelled && s->out.ansi) fprintf(stderr, "(stopped)\n");
    if (s->verbose) {
        char reused[64] = "";
        if (rs.cached_known)
            snprintf(reused, sizeof reused, " (%d reused from the last turn)", rs.cached_tokens);
        fprintf(stderr,
                "prompt: %d tokens%s; answer: %d tokens, first after %.0f ms, %.1f tokens/s\n",
                rs.prompt_tokens, reused, rs.completion_tokens, rs.ttft_ms,
                rs.gen_ms > 0 && rs.completion_tokens > 1
                    ? (rs.completion_tokens - 1) * 1000.0 / rs.gen_ms
                    : 0.0);
    }
    return 0;
}

/* ---- arguments ---- */

static int parse(int argc, char **argv, run_state *s) {
    cli_run_opts_init(&s->ro);
    /* llama.cpp's sampling defaults, as `generate` takes them */
    s->g = (shimmy_gen_options){.temperature = 0.8f,
                                .top_k = 40,
                                .top_p = 0.95f,
                                .min_p = 0.05f,
                                .repeat_penalty = 1.0f,
                                .seed = SHIMMY_SEED_RANDOM};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        const int r = cli_run_opt("run", USAGE, argc, argv, &i, &s->ro);
        if (r < 0) return 2;
        if (r > 0) continue;
        const run_param *p = a[0] == '-' ? find_param(a) : NULL;
        char msg[256];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n\n%s", USAGE, HELP);
            exit(0);
        } else if (strcmp(a, "--verbose") == 0) {
            s->verbose = true;
        } else if (strcmp(a, "--ignore-eos") == 0) {
            s->g.ignore_eos = true; /* mostly for tests: answers run to -n */
        } else if (strcmp(a, "--hide-thinking") == 0) {
            s->out.hide_think = true;
        } else if (a[0] == '-' && a[1] && !val) {
            return cli_usage_error("run", USAGE, "option %s needs a value", a);
        } else if (p) {
            if (!set_param(s, p, val, msg, sizeof msg))
                return cli_usage_error("run", USAGE, "%s", msg);
            i++;
        } else if (strcmp(a, "--system") == 0) {
            run_conv_set_system(&s->conv, argv[++i]);
        } else if (strcmp(a, "--host") == 0) {
            s->host = argv[++i];
        } else if (strcmp(a, "--stop") == 0) {
            if (!add_stop(s, argv[++i]))
                return cli_usage_error("run", USAGE, "at most %d non-empty --stop strings",
                                       RUN_MAX_STOP);
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("run", USAGE, "unknown option %s", a);
        } else if (!s->model) {
            s->model = a;
        } else if (!s->prompt_arg) {
            s->prompt_arg = a;
        } else {
            return cli_usage_error("run", USAGE, "unexpected argument '%s' (quote the prompt)", a);
        }
    }
    if (!s->model) return cli_usage_error("run", USAGE, "MODEL is missing");
    if (s->ro.kv != SHIMMY_KV_F16)
        return cli_usage_error("run", USAGE, "--kv: run keeps its cache in f16");
    if (s->host && (s->ro.n_lora || s->ro.ctx || s->ro.threads))
        return cli_usage_error("run", USAGE,
                               "--lora, --ctx-size and --threads are the server's with --host");
    return 0;
}

int cli_run_interactive(run_state *s, volatile sig_atomic_t *interrupted); /* run_input.c */

int cli_cmd_run(int argc, char **argv) {
    run_state *s = calloc(1, sizeof *s);
    if (!s) return 1;
    int rc = parse(argc, argv, s);
    shimmy_error err;
    shimmy_error_clear(&err);
    const bool tty_in = isatty(STDIN_FILENO), tty_out = isatty(STDOUT_FILENO);
    s->out.f = stdout;
    s->out.ansi = tty_out && getenv("NO_COLOR") == NULL;
    if (!rc) {
        const bool progress = tty_in && isatty(STDERR_FILENO) && !s->prompt_arg;
        shimmy_status st = s->host ? run_backend_remote(s->host, s->model, &s->be, &err)
                                   : run_backend_local(s->model, &s->ro, progress, &s->be, &err);
        if (st) rc = cli_fail(&err);
        /* from now on Ctrl-C stops an answer instead of the program (during the load it still
         * ends it); no SA_RESTART, so a read waiting for input returns EINTR */
        struct sigaction sa = {.sa_handler = on_sigint};
        sigemptyset(&sa.sa_mask);
        if (!rc) sigaction(SIGINT, &sa, NULL);
    }
    if (!rc && (s->prompt_arg || !tty_in)) {
        /* one question, from the argument or all of standard input; no prompt printed */
        cli_buf in = {0};
        if (s->prompt_arg) {
            cli_buf_add(&in, s->prompt_arg, strlen(s->prompt_arg));
        } else {
            char buf[65536];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) cli_buf_add(&in, buf, n);
        }
        while (in.len && (in.data[in.len - 1] == '\n' || in.data[in.len - 1] == '\r')) in.len--;
        if (!in.len)
            rc = cli_usage_error("run", USAGE, "standard input was empty: nothing to answer");
        else
            rc = turn(s, in.data, in.len);
        cli_buf_free(&in);
    } else if (!rc) {
        fprintf(stderr, "Chatting with %s. /? for help, Ctrl-D or /bye to leave.\n",
                run_backend_name(s->be));
        rc = cli_run_interactive(s, &interrupted);
    }
    run_backend_free(s->be);
    run_conv_free(&s->conv);
    cli_buf_free(&s->out.text);
    clear_stops(s);
    free(s);
    return rc;
}

/* For run_input.c: a line that is a command or a message. Returns false to leave. */
bool cli_run_line(run_state *s, char *text, size_t len, bool multi);
bool cli_run_line(run_state *s, char *text, size_t len, bool multi) {
    if (!multi && text[0] == '/') return command(s, text);
    size_t k = 0;
    while (k < len && (text[k] == ' ' || text[k] == '\t' || text[k] == '\n')) k++;
    if (k == len) return true;
    turn(s, text, len);
    return true;
}
