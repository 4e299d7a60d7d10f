/*
 * The Hugging Face Hub client of `shimmy pull`: list a repository, pick GGUF files by quant
 * (as llama.cpp's -hf does), download into the Hugging Face cache layout that
 * huggingface_hub, llama.cpp and shimmy's discovery all read:
 *   <cache>/models--ORG--NAME/blobs/<sha256>          the bytes
 *   <cache>/models--ORG--NAME/snapshots/<commit>/<path> -> ../../blobs/<sha256>
 *   <cache>/models--ORG--NAME/refs/<revision>         the commit
 * A file becomes visible (its snapshot link) only once all of it is there and its SHA-256 is
 * the one the Hub published, so an interrupted or corrupt download never looks like a model.
 */
#include "term.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char *endpoint(void) {
    const char *e = getenv("HF_ENDPOINT");
    return e && *e ? e : "https://huggingface.co";
}

static const char *token(void) {
    const char *t = getenv("HF_TOKEN");
    if (!t || !*t) t = getenv("HUGGING_FACE_HUB_TOKEN");
    return t && *t ? t : NULL;
}

char *hub_cache_dir(void) {
    const char *hub = getenv("HF_HUB_CACHE"), *home = getenv("HF_HOME");
    char *out = malloc(4096);
    if (!out) return NULL;
    if (hub && *hub)
        snprintf(out, 4096, "%s", hub);
    else if (home && *home)
        snprintf(out, 4096, "%s/hub", home);
    else
        snprintf(out, 4096, "%s/.cache/huggingface/hub", getenv("HOME") ? getenv("HOME") : ".");
    return out;
}

/* A failed Hub answer, explained. The Hub says which case it is in X-Error-Code; without a
 * token it answers 401 for a repository that does not exist (it will not tell private ones
 * apart), so that case mentions both. */
static shimmy_status hub_error(long status, const cli_buf *hdr, const cli_buf *body,
                               const char *repo, const char *what, shimmy_error *err) {
    char code[64] = "", msg[320];
    cli_http_header(hdr, "X-Error-Code", code, sizeof code);
    cli_http_error_text(body->data, msg, sizeof msg);
    if (strcmp(code, "GatedRepo") == 0 || (status == 403 && token()))
        return shimmy_error_set(err, SHIMMY_ERR_UNAUTHORIZED, repo,
                                "%s is gated: accept its terms at %s/%s, then set HF_TOKEN to a "
                                "token of that account (%s)",
                                repo, endpoint(), repo, msg);
    if (strcmp(code, "RevisionNotFound") == 0)
        return shimmy_error_set(err, SHIMMY_ERR_NOT_FOUND, repo, "%s has no revision '%s'", repo,
                                what);
    if (status == 404 || strcmp(code, "RepoNotFound") == 0)
        return shimmy_error_set(err, SHIMMY_ERR_NOT_FOUND, repo,
                                "no repository %s on %s%s (check the spelling: ORG/NAME)", repo,
                                endpoint(),
                                token() ? "" : ", or it is private: set HF_TOKEN to see it");
    if (status == 401 || status == 403)
        return shimmy_error_set(err, SHIMMY_ERR_UNAUTHORIZED, repo,
                                "%s needs authorization (HTTP %ld: %s): %s", repo, status, msg,
                                token() ? "HF_TOKEN was refused; check that it is valid and "
                                          "has access to the repository"
                                        : "set HF_TOKEN to an access token");
    return shimmy_error_set(err, SHIMMY_ERR_IO, repo, "the Hub answered HTTP %ld for %s: %s",
                            status, repo, msg);
}

/* The URL of a Link header's rel="next" (the Hub pages long listings), "" when none. */
static void next_link(const cli_buf *hdr, char *next, size_t cap) {
    char link[4096];
    next[0] = '\0';
    if (!cli_http_header(hdr, "Link", link, sizeof link)) return;
    for (char *p = link; (p = strchr(p, '<')) != NULL;) { /* <url>; rel="next", <url>; ... */
        char *end = strchr(p, '>');
        if (!end) return;
        char *params = end + 1, *stop = params + strcspn(params, ",");
        const char saved = *stop;
        *stop = '\0';
        const bool is_next = strstr(params, "rel=\"next\"") != NULL;
        *stop = saved;
        if (is_next) {
            snprintf(next, cap, "%.*s", (int)(end - p - 1), p + 1);
            return;
        }
        p = stop;
    }
}

static shimmy_status hub_get_json(const char *url, const char *repo, const char *what, json_t **out,
                                  char *next, size_t next_cap, shimmy_error *err) {
    cli_buf body = {0}, hdr = {0};
    long status = 0;
    cli_http_request rq = {
        .method = "GET", .url = url, .bearer = token(), .headers = &hdr, .timeout_s = 120};
    shimmy_status st = cli_http(&rq, &status, &body, err);
    if (!st && status != 200) st = hub_error(status, &hdr, &body, repo, what, err);
    if (next) next_link(&hdr, next, next_cap);
    if (!st) {
        json_error_t je;
        *out = json_loads(body.data ? body.data : "", 0, &je);
        if (!*out)
            st = shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, url,
                                  "the Hub's answer from %s is not JSON (%s); is HF_ENDPOINT "
                                  "a Hugging Face Hub?",
                                  url, je.text);
    }
    cli_buf_free(&body);
    cli_buf_free(&hdr);
    return st;
}

static bool valid_repo(const char *r) {
    const char *slash = strchr(r, '/');
    if (!slash || slash == r || !slash[1] || strchr(slash + 1, '/')) return false;
    for (const char *p = r; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_./", *p)) return false;
    return !strstr(r, "..") && !strstr(r, "--");
}

shimmy_status hub_list(const char *repo, const char *revision, hub_tree *out, shimmy_error *err) {
    memset(out, 0, sizeof *out);
    if (!valid_repo(repo))
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, repo,
                                "'%s' is not a repository name: ORG/NAME, e.g. "
                                "bartowski/Qwen2.5-0.5B-Instruct-GGUF",
                                repo);
    char *url = malloc(8192);
    if (!url) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    json_t *info = NULL, *tree = NULL;
    /* the revision's commit first: it also tells a missing or gated repository apart */
    snprintf(url, 8192, "%s/api/models/%s/revision/%s", endpoint(), repo, revision);
    shimmy_status st = hub_get_json(url, repo, revision, &info, NULL, 0, err);
    if (!st) {
        snprintf(url, 8192, "%s/api/models/%s/tree/%s?recursive=true", endpoint(), repo, revision);
        char *next = malloc(8192);
        if (!next) st = shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
        /* a long listing comes in pages, each naming the next in its Link header */
        for (int page = 0; !st && url[0] && page < 1000; page++) {
            json_t *part = NULL;
            st = hub_get_json(url, repo, revision, &part, next, 8192, err);
            if (!st && !tree)
                tree = part;
            else if (!st && json_array_extend(tree, part) != 0)
                st = shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, repo,
                                      "the Hub's listing of %s has an unexpected shape", repo);
            if (tree != part) json_decref(part);
            if (!st) snprintf(url, 8192, "%s", next);
        }
        free(next);
    }
    const char *sha = json_string_value(json_object_get(info, "sha"));
    if (!st && (!json_is_array(tree) || !sha || !*sha || strchr(sha, '/')))
        st = shimmy_error_set(err, SHIMMY_ERR_INVALID_JSON, repo,
                              "the Hub's listing of %s has an unexpected shape", repo);
    out->repo = strdup(repo);
    out->ref = strdup(revision);
    out->revision = strdup(sha ? sha : "");
    out->files = calloc(json_array_size(tree) + 1, sizeof *out->files);
    if (!st && (!out->repo || !out->ref || !out->revision || !out->files))
        st = shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; !st && i < json_array_size(tree); i++) {
        json_t *e = json_array_get(tree, i), *lfs = json_object_get(e, "lfs");
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *path = json_string_value(json_object_get(e, "path"));
        if (!type || strcmp(type, "file") != 0 || !path || !*path || path[0] == '/' ||
            strstr(path, "..") || strchr(path, '\\'))
            continue; /* folders, and names that could leave the snapshot folder */
        hub_file *f = &out->files[out->n];
        json_t *sz = json_object_get(lfs ? lfs : e, "size");
        const char *oid = json_string_value(json_object_get(lfs, "oid"));
        f->size = json_is_integer(sz) && json_integer_value(sz) > 0
                      ? (uint64_t)json_integer_value(sz)
                      : 0;
        if (oid && strlen(oid) == 64 && strspn(oid, "0123456789abcdef") == 64)
            memcpy(f->sha256, oid, 65);
        const char *git = json_string_value(json_object_get(e, "oid"));
        if (git && strlen(git) == 40 && strspn(git, "0123456789abcdef") == 40)
            memcpy(f->git_oid, git, 41);
        if (!(f->path = strdup(path))) st = shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "oom");
        out->n++;
    }
    json_decref(info);
    json_decref(tree);
    free(url);
    if (st) hub_tree_free(out);
    return st;
}

void hub_tree_free(hub_tree *t) {
    for (size_t i = 0; i < t->n; i++) free(t->files[i].path);
    free(t->files);
    free(t->repo);
    free(t->ref);
    free(t->revision);
    memset(t, 0, sizeof *t);
}

/* ---- picking files ---- */

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool is_gguf(const char *p) {
    size_t n = strlen(p);
    return n > 5 && strcasecmp(p + n - 5, ".gguf") == 0 && !strcasestr(base_name(p), "mmproj");
}

/* "-00001-of-00003.gguf": the part number and count; the prefix before it in *prefix_len. */
static bool split_of(const char *p, int *no, int *count, size_t *prefix_len) {
    size_t n = strlen(p);
    if (n < 20) return false;
    const char *s = p + n - 20; /* -NNNNN-of-NNNNN.gguf */
    if (s[0] != '-' || strncmp(s + 6, "-of-", 4) != 0 || strcasecmp(s + 15, ".gguf") != 0)
        return false;
    for (int k = 1; k < 15; k++)
        if (k < 6 || k > 9)
            if (!isdigit((unsigned char)s[k])) return false;
    *no = atoi(s + 1);
    *count = atoi(s + 10);
    *prefix_len = (size_t)(s - p);
    return *no >= 1 && *count >= 1 && *no <= *count;
}

bool hub_quant_of(const char *name, char *buf, size_t cap) {
    const char *b = base_name(name);
    size_t n = strlen(b), pl;
    int no, count;
    if (split_of(b, &no, &count, &pl))
        n = pl;
    else if (n > 5 && strcasecmp(b + n - 5, ".gguf") == 0)
        n -= 5;
    bool found = false;
    for (size_t i = 0; i < n;) { /* tokens between '-' and '.'; the last quant-like one wins */
        size_t j = i;
        while (j < n && b[j] != '-' && b[j] != '.') j++;
        const char *t = b + i;
        const size_t tl = j - i;
        bool q = (tl >= 2 && toupper((unsigned char)t[0]) == 'Q' && isdigit((unsigned char)t[1])) ||
                 (tl >= 3 && strncasecmp(t, "IQ", 2) == 0 && isdigit((unsigned char)t[2])) ||
                 (tl >= 4 && strncasecmp(t, "TQ", 2) == 0 && isdigit((unsigned char)t[2])) ||
                 (tl >= 5 && strncasecmp(t, "MXFP4", 5) == 0) ||
                 (tl == 3 && (strncasecmp(t, "F16", 3) == 0 || strncasecmp(t, "F32", 3) == 0)) ||
                 (tl == 4 && strncasecmp(t, "BF16", 4) == 0);
        if (q && tl < cap) {
            for (size_t k = 0; k < tl; k++) buf[k] = (char)toupper((unsigned char)t[k]);
            buf[tl] = '\0';
            found = true;
        }
        i = j + 1;
    }
    return found;
}

/* The tag appears in the base name as a whole word: "Q4_K" is not in "x-Q4_K_M.gguf". */
static bool has_tag(const char *path, const char *tag) {
    const char *b = base_name(path);
    const size_t tl = strlen(tag);
    for (const char *p = b; (p = strcasestr(p, tag)) != NULL; p++) {
        const bool left = p == b || !isalnum((unsigned char)p[-1]);
        const char after = p[tl];
        if (left && !isalnum((unsigned char)after) && after != '_') return true;
    }
    return false;
}

/* File i and, when it is part of a split model, every other part (in order). */
static size_t with_parts(const hub_tree *t, size_t i, size_t *idx, size_t cap, shimmy_error *err) {
    int no, count;
    size_t pl;
    if (!split_of(t->files[i].path, &no, &count, &pl)) {
        idx[0] = i;
        return 1;
    }
    if ((size_t)count > cap) {
        shimmy_error_set(err, SHIMMY_ERR_UNSUPPORTED, t->files[i].path,
                         "%s is split into %d parts; at most %zu are supported", t->files[i].path,
                         count, cap);
        return 0;
    }
    for (int part = 1; part <= count; part++) {
        bool found = false;
        for (size_t k = 0; k < t->n && !found; k++) {
            int n2, c2;
            size_t p2;
            if (split_of(t->files[k].path, &n2, &c2, &p2) && n2 == part && c2 == count &&
                p2 == pl && strncmp(t->files[k].path, t->files[i].path, pl) == 0) {
                idx[part - 1] = k;
                found = true;
            }
        }
        if (!found) {
            shimmy_error_set(err, SHIMMY_ERR_NOT_FOUND, t->files[i].path,
                             "part %d of %d of %.*s is missing from %s", part, count, (int)pl,
                             t->files[i].path, t->repo);
            return 0;
        }
    }
    return (size_t)count;
}

size_t hub_select(const hub_tree *t, const char *want, size_t *idx, size_t cap, shimmy_error *err) {
    if (want && *want) { /* an exact file path first */
        for (size_t i = 0; i < t->n; i++)
            if (strcmp(t->files[i].path, want) == 0) return with_parts(t, i, idx, cap, err);
        if (strcasestr(want, ".gguf") || strchr(want, '/')) {
            shimmy_error_set(err, SHIMMY_ERR_NOT_FOUND, want, "%s has no file %s", t->repo, want);
            return 0;
        }
    }
    /* no tag: llama.cpp's default, Q4_K_M, then the smallest common fallbacks */
    static const char *const defaults[] = {"Q4_K_M", "Q4_0", "Q8_0", "Q5_K_M", "Q6_K"};
    const size_t nd = want && *want ? 1 : sizeof defaults / sizeof defaults[0];
    for (size_t d = 0; d < nd; d++) {
        const char *tag = want && *want ? want : defaults[d];
        for (size_t i = 0; i < t->n; i++) {
            int no, count;
            size_t pl;
            const char *p = t->files[i].path;
            if (!is_gguf(p) || !has_tag(p, tag)) continue;
            if (split_of(p, &no, &count, &pl) && no != 1) continue;
            return with_parts(t, i, idx, cap, err);
        }
    }
    char have[400] = "";
    size_t off = 0, n_gguf = 0;
    for (size_t i = 0; i < t->n; i++) {
        char q[32];
        if (!is_gguf(t->files[i].path)) continue;
        n_gguf++;
        if (!hub_quant_of(t->files[i].path, q, sizeof q)) continue;
        char needle[40];
        snprintf(needle, sizeof needle, " %s,", q);
        char probe[404];
        snprintf(probe, sizeof probe, " %s,", have);
        if (strstr(probe, needle) || off + strlen(q) + 3 >= sizeof have) continue;
        off += (size_t)snprintf(have + off, sizeof have - off, "%s%s", off ? ", " : "", q);
    }
    if (!want || !*want) {
        if (n_gguf) { /* no known tag at all: the first GGUF */
            for (size_t i = 0; i < t->n; i++) {
                int no, count;
                size_t pl;
                if (is_gguf(t->files[i].path) &&
                    !(split_of(t->files[i].path, &no, &count, &pl) && no != 1))
                    return with_parts(t, i, idx, cap, err);
            }
        }
        shimmy_error_set(err, SHIMMY_ERR_NOT_FOUND, t->repo,
                         "%s has no GGUF files (shimmy runs GGUF models; look for a "
                         "repository named ...-GGUF)",
                         t->repo);
        return 0;
    }
    if (off)
        shimmy_error_set(err, SHIMMY_ERR_NOT_FOUND, want,
                         "%s has no %s file; its quants are: %s (pull %s:QUANT)", t->repo, want,
                         have, t->repo);
    else
        shimmy_error_set(err, SHIMMY_ERR_NOT_FOUND, want,
                         "%s has no %s file%s (pull %s/FILE names one exactly)", t->repo, want,
                         n_gguf ? "" : " and no GGUF files at all", t->repo);
    return 0;
}
