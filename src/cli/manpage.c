/*
 * shimmy(1) and the bash/zsh completions, printed from the command table of main.c and each
 * command's own `--help` text (run in a child process, so a command that exits after its help
 * is fine). Nothing is written twice: a new command or option shows up in both on the next
 * build.
 */
#include "term.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The `--help` text of a command (owned), "" when it printed none. */
static char *help_of(const cli_command *c) {
    int fd[2];
    cli_buf b = {0};
    cli_buf_add(&b, "", 0);
    if (pipe(fd) != 0) return b.data;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDOUT_FILENO);
        char name[64], help[] = "--help";
        snprintf(name, sizeof name, "%s", c->name);
        char *argv[] = {name, help, NULL};
        int rc = c->fn(2, argv);
        fflush(stdout);
        _exit(rc);
    }
    close(fd[1]);
    char buf[4096];
    ssize_t n;
    while (pid > 0 && (n = read(fd[0], buf, sizeof buf)) > 0) cli_buf_add(&b, buf, (size_t)n);
    close(fd[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    return b.data;
}

/* Every option spelling in a help text ("-n", "--top-k"), space-separated, into b. */
static void options_of(const char *help, cli_buf *b) {
    for (const char *p = help; *p; p++) {
        if (*p != '-' || (p > help && !strchr(" [|(\n", p[-1]))) continue;
        const char *q = p + 1 + (p[1] == '-');
        if (!isalpha((unsigned char)*q)) continue;
        while (isalnum((unsigned char)*q) || *q == '-') q++;
        char opt[64];
        snprintf(opt, sizeof opt, " %.*s ", (int)(q - p), p);
        cli_buf probe = {0};
        cli_buf_add(&probe, " ", 1);
        cli_buf_add(&probe, b->data ? b->data : "", b->len);
        cli_buf_add(&probe, " ", 1);
        if (!strstr(probe.data, opt)) {
            if (b->len) cli_buf_add(b, " ", 1);
            cli_buf_add(b, opt + 1, strlen(opt) - 2);
        }
        cli_buf_free(&probe);
        p = q - 1;
    }
    if (!b->data) cli_buf_add(b, "", 0);
}

static void roff(const char *s) {
    bool bol = true;
    for (; *s; s++) {
        if (bol && (*s == '.' || *s == '\'')) fputs("\\&", stdout);
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            putchar(*s);
        bol = *s == '\n';
    }
}

int cli_print_man(const cli_command *cmds, size_t n) {
    printf(".TH SHIMMY 1 \"\" \"shimmy %s\" \"User Commands\"\n", SHIMMY_VERSION);
    printf(".SH NAME\nshimmy \\- local LLM inference server with an OpenAI-compatible API\n");
    printf(".SH SYNOPSIS\n.B shimmy\n.I command\n[\\fIoptions\\fR]\n");
    printf(".SH DESCRIPTION\nshimmy finds the GGUF models on the disk (./models, ~/models, the "
           "Hugging Face cache, the Ollama store, LM Studio), runs them on the CPU or a GPU "
           "(Vulkan; \\fB\\-\\-device\\fR, \\fBshimmy probe \\-\\-devices\\fR) and serves "
           "them over an OpenAI-compatible HTTP API. It also chats in the terminal "
           "(\\fBshimmy run\\fR) and downloads models from the Hugging Face Hub "
           "(\\fBshimmy pull\\fR).\n");
    printf(".SH COMMANDS\n");
    for (size_t i = 0; i < n; i++) {
        char *help = help_of(&cmds[i]);
        const char *u = strncmp(help, "usage: ", 7) == 0 ? help + 7 : help;
        printf(".SS %s\n", cmds[i].name);
        roff(cmds[i].summary);
        printf(".\n.PP\n.nf\n");
        roff(u);
        if (*u && u[strlen(u) - 1] != '\n') putchar('\n');
        printf(".fi\n");
        free(help);
    }
    printf(".SH ENVIRONMENT\n"
           ".TP\n.B HF_TOKEN\nAccess token for gated or private Hugging Face repositories "
           "(pull).\n"
           ".TP\n.B HF_ENDPOINT\nThe Hub to download from (default https://huggingface.co).\n"
           ".TP\n.B HF_HOME\\fR, \\fBHF_HUB_CACHE\nWhere the Hugging Face cache is (pull "
           "writes there, discovery reads there).\n"
           ".TP\n.B SHIMMY_HOST\nThe server that run \\-\\-host, ps and stop talk to "
           "(default http://127.0.0.1:11435).\n"
           ".TP\n.B SHIMMY_API_KEY\nSent as a bearer token by run \\-\\-host, ps and stop.\n"
           ".TP\n.B SHIMMY_DEVICE\nThe device of commands and models given no \\-\\-device: "
           "cpu, auto (the default: a hardware GPU when there is one), gpu, vulkan, vulkan:N or "
           "cuda.\n"
           ".TP\n.B SHIMMY_LOG\n\\fBdebug\\fR or \\fBwarn\\fR: how much the library logs.\n"
           ".TP\n.B NO_COLOR\nNo ANSI colours or dimming in run.\n");
    printf(".SH FILES\n.TP\n.I ~/.cache/huggingface/hub\nModels pulled from the Hub.\n"
           ".TP\n.I ~/.local/state/shimmy/history\nThe line history of \\fBshimmy run\\fR.\n");
    printf(".SH EXIT STATUS\n0 success, 1 the operation failed (the error is on standard "
           "error), 2 a usage error, 130 interrupted.\n");
    return 0;
}

/* Commands whose first argument is a model name get the names `shimmy list` prints. */
static bool takes_model(const char *help) {
    const char *u = strncmp(help, "usage: ", 7) == 0 ? help + 7 : help; /* shimmy CMD MODEL */
    const char *sp = strchr(u, ' ');
    sp = sp ? strchr(sp + 1, ' ') : NULL;
    return sp && (strncmp(sp + 1, "MODEL", 5) == 0 || strncmp(sp + 1, "(MODEL", 6) == 0);
}

/* A summary inside zsh's '...' quotes, as a _describe entry (':' separates its fields). */
static void zsh_quoted(const char *s) {
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", stdout);
        else if (*s == ':')
            fputs("\\:", stdout);
        else
            putchar(*s);
    }
}

int cli_print_completion(const char *shell, const cli_command *cmds, size_t n) {
    const bool zsh = shell && strcmp(shell, "zsh") == 0;
    if (!shell || (!zsh && strcmp(shell, "bash") != 0)) {
        fprintf(stderr, "shimmy: help: --completion takes bash or zsh\n");
        return 2;
    }
    cli_buf names = {0}, modelcmds = {0};
    if (zsh)
        printf("#compdef shimmy\n# zsh completion for shimmy (generated by `shimmy help "
               "--completion zsh`)\n_shimmy() {\n  local -a cmds opts\n  cmds=(\n");
    else
        printf("# bash completion for shimmy (generated by `shimmy help --completion bash`)\n"
               "_shimmy_opts() {\n  case \"$1\" in\n");
    for (size_t i = 0; i < n; i++) {
        char *help = help_of(&cmds[i]);
        cli_buf opts = {0};
        options_of(help, &opts);
        if (zsh) {
            printf("    '%s:", cmds[i].name);
            zsh_quoted(cmds[i].summary);
            printf("'\n");
        } else {
            printf("    %s) echo \"%s\" ;;\n", cmds[i].name, opts.data);
        }
        if (names.len) cli_buf_add(&names, " ", 1);
        cli_buf_add(&names, cmds[i].name, strlen(cmds[i].name));
        if (takes_model(help)) {
            cli_buf_add(&modelcmds, modelcmds.len ? "|" : "", modelcmds.len ? 1 : 0);
            cli_buf_add(&modelcmds, cmds[i].name, strlen(cmds[i].name));
        }
        cli_buf_free(&opts);
        free(help);
    }
    const char *mc = modelcmds.data ? modelcmds.data : "none";
    if (zsh) {
        printf("  )\n  if (( CURRENT == 2 )); then _describe 'command' cmds; return; fi\n"
               "  case $words[2] in\n");
        for (size_t i = 0; i < n; i++) {
            char *help = help_of(&cmds[i]);
            cli_buf opts = {0};
            options_of(help, &opts);
            printf("    %s) opts=(%s) ;;\n", cmds[i].name, opts.data);
            cli_buf_free(&opts);
            free(help);
        }
        printf("  esac\n  if [[ $PREFIX == -* ]]; then compadd -- $opts; return; fi\n"
               "  case $words[2] in\n    %s)\n      local -a models\n"
               "      models=(${(f)\"$(shimmy list 2>/dev/null | awk 'NR>1{print $1}')\"})\n"
               "      compadd -- $models ;;\n  esac\n  _files\n}\n_shimmy \"$@\"\n",
               mc);
    } else {
        printf("  esac\n}\n_shimmy() {\n  local cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
               "  if (( COMP_CWORD == 1 )); then\n"
               "    COMPREPLY=($(compgen -W \"%s --help --version\" -- \"$cur\")); return\n"
               "  fi\n  local cmd=\"${COMP_WORDS[1]}\"\n"
               "  if [[ $cur == -* ]]; then\n"
               "    COMPREPLY=($(compgen -W \"$(_shimmy_opts \"$cmd\")\" -- \"$cur\")); return\n"
               "  fi\n  case \"$cmd\" in\n    %s)\n"
               "      if (( COMP_CWORD == 2 )); then\n"
               "        COMPREPLY=($(compgen -W \"$(shimmy list 2>/dev/null | awk "
               "'NR>1{print $1}')\" -- \"$cur\") $(compgen -f -- \"$cur\")); return\n"
               "      fi ;;\n  esac\n  COMPREPLY=($(compgen -f -- \"$cur\"))\n}\n"
               "complete -F _shimmy shimmy\n",
               names.data, mc);
    }
    cli_buf_free(&names);
    cli_buf_free(&modelcmds);
    return 0;
}
