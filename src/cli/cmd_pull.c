/* shimmy pull: a GGUF model from the Hugging Face Hub into the Hugging Face cache, where
 * discovery finds it (`shimmy list`, `shimmy run NAME`, the server) with no configuration. */
#include "term.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const USAGE =
    "shimmy pull ORG/REPO[:QUANT|/FILE] [--revision REV] [--quiet]\n"
    "  e.g. shimmy pull bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M\n"
    "  environment: HF_TOKEN (gated or private repositories), HF_ENDPOINT (a mirror),\n"
    "  HF_HOME / HF_HUB_CACHE (where the cache is)";

#define PULL_MAX_PARTS 256

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct progress_state {
    bool tty, quiet;
    int last_decile;
    size_t part, parts;
} progress_state;

static void human(double bytes, char *buf, size_t cap) {
    if (bytes >= 1e9)
        snprintf(buf, cap, "%.2f GB", bytes / 1e9);
    else if (bytes >= 1e6)
        snprintf(buf, cap, "%.1f MB", bytes / 1e6);
    else
        snprintf(buf, cap, "%.0f kB", bytes / 1e3);
}

/* A terminal gets one redrawn line (bar, bytes, rate, ETA); a pipe or log gets a plain line at
 * every tenth, so logs stay readable. */
static void progress(const char *file, uint64_t done, uint64_t total, double rate, bool finished,
                     void *user) {
    progress_state *p = user;
    if (p->quiet) return;
    const double frac = total ? (double)done / (double)total : 1.0;
    char d[32], t[32], r[32], eta[32] = "";
    human((double)done, d, sizeof d);
    human((double)total, t, sizeof t);
    human(rate, r, sizeof r);
    if (rate > 0 && total > done) {
        const long s = (long)((double)(total - done) / rate);
        snprintf(eta, sizeof eta, " ETA %ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    if (p->tty) {
        char bar[31];
        const int fill = (int)(frac * 30);
        for (int k = 0; k < 30; k++) bar[k] = k < fill ? '#' : '-';
        bar[30] = '\0';
        fprintf(stderr, "\r\033[K%.40s [%s] %3d%% %s/%s", base, bar, (int)(frac * 100), d, t);
        if (!finished) fprintf(stderr, " %s/s%s", r, eta);
        if (finished) fprintf(stderr, "\n");
        fflush(stderr);
        return;
    }
    const int decile = (int)(frac * 10);
    if (!finished && decile == p->last_decile) return;
    p->last_decile = finished ? -1 : decile;
    if (finished)
        fprintf(stderr, "pull: %s: done, %s\n", base, t);
    else
        fprintf(stderr, "pull: %s: %d%% %s of %s, %s/s%s\n", base, decile * 10, d, t, r, eta);
}

/* "ORG/REPO", "ORG/REPO:QUANT", "ORG/REPO/FILE" (also after hf.co/ or https://huggingface.co/). */
static bool split_ref(const char *arg, char *repo, size_t cap, const char **want) {
    static const char *const prefixes[] = {"https://huggingface.co/", "http://huggingface.co/",
                                           "huggingface.co/", "hf.co/"};
    for (size_t k = 0; k < sizeof prefixes / sizeof prefixes[0]; k++)
        if (strncmp(arg, prefixes[k], strlen(prefixes[k])) == 0) arg += strlen(prefixes[k]);
    const char *slash = strchr(arg, '/');
    if (!slash) return false;
    const char *end = slash + 1 + strcspn(slash + 1, "/:");
    if ((size_t)(end - arg) >= cap) return false;
    snprintf(repo, cap, "%.*s", (int)(end - arg), arg);
    *want = *end ? end + 1 : NULL;
    return true;
}

/* The registry's name for what was pulled, so the last line says what to run. */
static void print_name(const char *path) {
    shimmy_model_list *l = NULL;
    shimmy_error err;
    size_t idx;
    if (shimmy_scan(NULL, &l, &err) == SHIMMY_OK && shimmy_model_list_find(l, path, &idx))
        printf("%s\n", shimmy_model_list_name(l, idx));
    else
        printf("%s\n", path);
    shimmy_model_list_free(l);
}

int cli_cmd_pull(int argc, char **argv) {
    const char *ref = NULL, *revision = "main";
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n", USAGE);
            return 0;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = true;
        } else if (strcmp(argv[i], "--revision") == 0) {
            if (i + 1 >= argc) return cli_usage_error("pull", USAGE, "--revision needs a value");
            revision = argv[++i];
        } else {
            const int rc = cli_model_arg("pull", USAGE, argv[i], &ref);
            if (rc) return rc;
        }
    }
    if (!ref) return cli_usage_error("pull", USAGE, "which model? ORG/REPO[:QUANT] is missing");
    char repo[256];
    const char *want = NULL;
    if (!split_ref(ref, repo, sizeof repo, &want))
        return cli_usage_error("pull", USAGE, "'%s' is not ORG/REPO[:QUANT|/FILE]", ref);
    if (!*revision || strchr(revision, '/') || strstr(revision, ".."))
        return cli_usage_error("pull", USAGE, "bad --revision '%s'", revision);

    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit is a write error to report, not a crash */

    shimmy_error err;
    shimmy_error_clear(&err);
    hub_tree tree;
    if (hub_list(repo, revision, &tree, &err)) return cli_fail(&err);
    size_t idx[PULL_MAX_PARTS];
    const size_t n = hub_select(&tree, want, idx, PULL_MAX_PARTS, &err);
    char *cache = hub_cache_dir();
    int rc = 0;
    if (!n || !cache) {
        if (!cache) shimmy_error_set(&err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        rc = cli_fail(&err);
        goto done;
    }
    uint64_t total = 0;
    for (size_t k = 0; k < n; k++) total += tree.files[idx[k]].size;
    char tb[32];
    human((double)total, tb, sizeof tb);
    if (!quiet)
        fprintf(stderr, "pull: %s @ %.12s: %zu file%s, %s, into %s\n", repo, tree.revision, n,
                n == 1 ? "" : "s", tb, cache);
    progress_state ps = {
        .tty = isatty(STDERR_FILENO), .quiet = quiet, .last_decile = -1, .parts = n};
    char *first = NULL;
    for (size_t k = 0; k < n && !rc; k++) {
        char *path = NULL;
        ps.part = k;
        ps.last_decile = -1;
        if (hub_download(&tree, idx[k], cache, progress, &ps, &interrupted, &path, &err)) {
            if (ps.tty && !quiet) fprintf(stderr, "\n");
            rc = cli_fail(&err);
        } else if (!first) {
            first = path;
        } else {
            free(path);
        }
    }
    if (!rc) print_name(first);
    free(first);
done:
    free(cache);
    hub_tree_free(&tree);
    return rc == 0 ? 0 : interrupted ? 130 : rc;
}
