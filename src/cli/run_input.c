/* shimmy run's interactive input on libedit: line editing, a history kept across sessions
 * ($XDG_STATE_HOME/shimmy/history, else ~/.local/state/shimmy/history), messages of several
 * lines between """ marks or continued with a trailing backslash, Ctrl-C clearing the line and
 * Ctrl-D leaving. */
#include "term.h"

#include <errno.h>
#include <histedit.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct run_state run_state;
bool cli_run_line(run_state *s, char *text, size_t len, bool multi);
int cli_run_interactive(run_state *s, volatile sig_atomic_t *interrupted);

static bool continuing;
static const char *prompt(EditLine *e) {
    (void)e;
    return continuing ? "... " : ">>> ";
}

static void history_path(char *buf, size_t cap) {
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    buf[0] = '\0';
    if (state && *state)
        snprintf(buf, cap, "%s/shimmy", state);
    else if (home && *home)
        snprintf(buf, cap, "%s/.local/state/shimmy", home);
    else
        return;
    /* the parent folders may not exist yet: make them, quietly (history is a nicety) */
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0700);
            *p = '/';
        }
    mkdir(buf, 0700);
    strncat(buf, "/history", cap - strlen(buf) - 1);
}

static bool ends_with_quotes(const char *s, size_t n) {
    return n >= 3 && memcmp(s + n - 3, "\"\"\"", 3) == 0;
}

int cli_run_interactive(run_state *s, volatile sig_atomic_t *interrupted) {
    setlocale(LC_CTYPE, ""); /* libedit edits UTF-8 as characters only in a UTF-8 locale */
    EditLine *el = el_init("shimmy", stdin, stdout, stderr);
    History *h = history_init();
    if (!el || !h) {
        if (el) el_end(el);
        if (h) history_end(h);
        fprintf(stderr, "shimmy: run: cannot start line editing\n");
        return 1;
    }
    HistEvent ev;
    char hist[4096];
    history_path(hist, sizeof hist);
    history(h, &ev, H_SETSIZE, 1000);
    history(h, &ev, H_SETUNIQUE, 1);
    if (hist[0]) history(h, &ev, H_LOAD, hist);
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_PROMPT, prompt);
    el_set(el, EL_HIST, history, h);
    el_source(el, NULL); /* the user's ~/.editrc */
    cli_buf msg = {0};
    bool multi = false, go = true;
    while (go) {
        continuing = msg.len > 0 || multi;
        *interrupted = 0;
        int count = 0;
        const char *line = el_gets(el, &count);
        if (!line) {
            if (count < 0 && (*interrupted || errno == EINTR)) { /* Ctrl-C: drop what was typed */
                const LineInfo *li = el_line(el);
                const bool typed = li && li->lastchar > li->buffer;
                fputs("\n", stdout);
                if (!typed && !msg.len && !multi) fputs("(Ctrl-D or /bye to leave)\n", stderr);
                msg.len = 0;
                multi = false;
                el_reset(el);
                continue;
            }
            fputs("\n", stdout); /* Ctrl-D */
            break;
        }
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n) {
            char *entry = strndup(line, n);
            if (entry) history(h, &ev, H_ENTER, entry);
            free(entry);
        }
        size_t lead = strspn(line, " \t");
        if (!multi && n - lead >= 3 && memcmp(line + lead, "\"\"\"", 3) == 0) {
            /* """ opens a message of several lines; """ at the end of a line closes it */
            const char *rest = line + lead + 3;
            size_t rn = n - lead - 3;
            if (ends_with_quotes(rest, rn)) {
                cli_buf_add(&msg, rest, rn - 3);
            } else {
                cli_buf_add(&msg, rest, rn);
                if (rn) cli_buf_add(&msg, "\n", 1);
                multi = true;
                continue;
            }
        } else if (multi) {
            if (ends_with_quotes(line, n)) {
                cli_buf_add(&msg, line, n - 3);
                multi = false;
            } else {
                cli_buf_add(&msg, line, n);
                cli_buf_add(&msg, "\n", 1);
                continue;
            }
        } else if (n && line[n - 1] == '\\') {
            cli_buf_add(&msg, line, n - 1);
            cli_buf_add(&msg, "\n", 1);
            continue;
        } else {
            const bool was_multi = msg.len > 0;
            cli_buf_add(&msg, line, n);
            if (!was_multi) {
                go = cli_run_line(s, msg.data ? msg.data : (char *)"", msg.len, false);
                msg.len = 0;
                continue;
            }
        }
        while (msg.len && msg.data[msg.len - 1] == '\n') msg.len--;
        if (msg.data) msg.data[msg.len] = '\0';
        go = cli_run_line(s, msg.data ? msg.data : (char *)"", msg.len, true);
        msg.len = 0;
    }
    if (hist[0]) history(h, &ev, H_SAVE, hist);
    cli_buf_free(&msg);
    history_end(h);
    el_end(el);
    return 0;
}
