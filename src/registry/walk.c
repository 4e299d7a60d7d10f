/*
 * The root table and the walkers for plain files, directory trees, the Hugging Face cache and
 * LM Studio. Walkers only collect candidate paths (names ending in .gguf, PEFT folders); they
 * never open a file, so a huge ~/Downloads costs one readdir.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define REG_DEFAULT_DEPTH 6
#define REG_PATH_MAX      4096

/* ---- small string helpers shared by the registry ---- */

char *reg_strdup(const char *s) {
    return s ? strdup(s) : NULL;
}

char *reg_strndup(const char *s, size_t n) {
    return s ? strndup(s, n) : NULL;
}

char *reg_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

bool reg_ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

void reg_name_clean(char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            *s = (char)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("._:/+-", c)))
            *s = '-';
    }
}

/* ---- candidates ---- */

reg_cand *reg_root_add(reg_root *root, const char *path, reg_naming naming, const char *hint) {
    if (root->n == root->cap) {
        size_t cap = root->cap ? root->cap * 2 : 64;
        reg_cand **v = realloc(root->cands, cap * sizeof *v);
        if (!v) {
            root->nomem = true;
            return NULL;
        }
        root->cands = v;
        root->cap = cap;
    }
    reg_cand *c = calloc(1, sizeof *c);
    if (c) {
        c->path = reg_strdup(path);
        c->hint = reg_strdup(hint);
    }
    if (!c || !c->path || (hint && !c->hint)) {
        reg_cand_free(c);
        root->nomem = true;
        return NULL;
    }
    c->root = root->index;
    c->source = root->source;
    c->naming = naming;
    root->cands[root->n++] = c;
    reg_progress_tick(root->prog, REG_TICK_FOUND);
    return c;
}

/* ---- directory trees ---- */

typedef struct walk_ctx {
    reg_root *root;
    reg_naming naming;
    const char *hint;
    int max_depth;
    /* directories entered (open addressing on st_dev/st_ino), to survive symlink loops and not
     * walk a folder twice; ino 0 marks an empty slot */
    struct {
        dev_t dev;
        ino_t ino;
    } * seen;
    size_t n_seen, cap_seen; /* cap is a power of two, kept at most half full */
} walk_ctx;

static size_t seen_slot(const walk_ctx *w, dev_t dev, ino_t ino) {
    uint64_t h = ((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ino * 0xc2b2ae3d27d4eb4full);
    size_t i = (size_t)(h ^ (h >> 29)) & (w->cap_seen - 1);
    while (w->seen[i].ino && !(w->seen[i].dev == dev && w->seen[i].ino == ino))
        i = (i + 1) & (w->cap_seen - 1);
    return i;
}

/* False when the directory was seen before (or memory ran out: then it is not entered). */
static bool walk_mark_seen(walk_ctx *w, const struct stat *st) {
    if ((w->n_seen + 1) * 2 > w->cap_seen) {
        walk_ctx bigger = *w;
        bigger.cap_seen = w->cap_seen ? w->cap_seen * 2 : 64;
        bigger.seen = calloc(bigger.cap_seen, sizeof *bigger.seen);
        if (!bigger.seen) return false;
        for (size_t i = 0; i < w->cap_seen; i++)
            if (w->seen[i].ino)
                bigger.seen[seen_slot(&bigger, w->seen[i].dev, w->seen[i].ino)] = w->seen[i];
        free(w->seen);
        w->seen = bigger.seen;
        w->cap_seen = bigger.cap_seen;
    }
    /* st_ino 0 does not occur for real directories; treat it as always new */
    if (!st->st_ino) return true;
    size_t i = seen_slot(w, st->st_dev, st->st_ino);
    if (w->seen[i].ino) return false;
    w->seen[i].dev = st->st_dev;
    w->seen[i].ino = st->st_ino;
    w->n_seen++;
    return true;
}

/* path holds the directory (length len, buffer REG_PATH_MAX); dfd is open on it. */
static void walk_dir(walk_ctx *w, int dfd, char *path, size_t len, int depth) {
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    bool peft_cfg = false;
    reg_progress_tick(w->root->prog, REG_TICK_FOLDER);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.') continue; /* ., .., and hidden folders (.git, .cache, ...) */
        size_t nlen = strlen(name);
        if (len + 1 + nlen + 1 > REG_PATH_MAX) continue;
        bool is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_LNK || de->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(dirfd(d), name, &st, 0) == 0 && S_ISDIR(st.st_mode);
        }
        if (is_dir) {
            if (depth >= w->max_depth) continue;
            int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub < 0) continue;
            struct stat st;
            if (fstat(sub, &st) != 0 || !walk_mark_seen(w, &st)) {
                close(sub);
                continue;
            }
            path[len] = '/';
            memcpy(path + len + 1, name, nlen + 1);
            walk_dir(w, sub, path, len + 1 + nlen, depth + 1);
            path[len] = '\0';
        } else if (reg_ends_with_ci(name, ".gguf")) {
            path[len] = '/';
            memcpy(path + len + 1, name, nlen + 1);
            reg_root_add(w->root, path, w->naming, w->hint);
            path[len] = '\0';
        } else if (strcmp(name, "adapter_config.json") == 0) {
            peft_cfg = true;
        }
    }
    closedir(d);
    if (peft_cfg) {
        reg_cand *c = reg_root_add(w->root, path, REG_NAME_STEM, NULL);
        if (c) c->is_peft = true;
    }
}

static void walk_tree(reg_root *root, const char *dir, int max_depth, reg_naming naming,
                      const char *hint) {
    char path[REG_PATH_MAX];
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    if (len + 1 > sizeof path) return;
    memcpy(path, dir, len);
    path[len] = '\0';
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return;
    walk_ctx w = {.root = root, .naming = naming, .hint = hint, .max_depth = max_depth};
    struct stat st;
    if (fstat(dfd, &st) == 0) walk_mark_seen(&w, &st);
    walk_dir(&w, dfd, path, len, 0);
    free(w.seen);
}

static void walk_plain_dir(reg_root *root) {
    walk_tree(root, root->path, root->max_depth, REG_NAME_STEM, NULL);
}

static void walk_file(reg_root *root) {
    reg_cand *c = reg_root_add(root, root->path, REG_NAME_STEM, NULL);
    if (c) {
        c->pair_env_base = root->env_lora;
        c->env_base = root->env_base;
        c->pair_cli = root->cli_lora;
        c->explicit_file = root->explicit_file;
    }
    if (c && (root->env_lora || root->cli_lora)) {
        struct stat st;
        /* SHIMMY_LORA_GGUF may name a PEFT folder as well as a .gguf file. */
        if (stat(root->path, &st) == 0 && S_ISDIR(st.st_mode)) c->is_peft = true;
    }
}

/* Files outside the revision refs/main names sort after it, so when two revisions hold the
 * same file name the current one gets the plain name (and is the one kept for a shared blob). */
static void rank_revisions(reg_root *root, size_t from, const char *hub, const char *repo_dir) {
    char *ref = reg_printf("%s/%s/refs/main", hub, repo_dir);
    FILE *f = ref ? fopen(ref, "r") : NULL;
    free(ref);
    if (!f) return;
    char rev[128] = "";
    bool ok = fgets(rev, sizeof rev, f) != NULL;
    fclose(f);
    rev[strcspn(rev, "\r\n")] = '\0';
    if (!ok || !*rev || strchr(rev, '/')) return;
    char *marker = reg_printf("/snapshots/%s/", rev);
    if (!marker) return;
    for (size_t i = from; i < root->n; i++)
        root->cands[i]->order = strstr(root->cands[i]->path, marker) ? 0 : 1;
    free(marker);
}

/* hub/models--ORG--NAME/snapshots/REV/... ; the repo id comes from the folder name. */
static void walk_hf(reg_root *root) {
    DIR *d = opendir(root->path);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "models--", 8) != 0) continue;
        const char *id = de->d_name + 8;
        const char *sep = strstr(id, "--");
        char *repo = sep ? reg_printf("%.*s/%s", (int)(sep - id), id, sep + 2) : reg_strdup(id);
        char *snap = reg_printf("%s/%s/snapshots", root->path, de->d_name);
        if (!repo || !snap) {
            root->nomem = true;
        } else {
            reg_name_clean(repo);
            size_t before = root->n;
            walk_tree(root, snap, 3, REG_NAME_REPO, repo);
            rank_revisions(root, before, root->path, de->d_name);
        }
        free(repo);
        free(snap);
    }
    closedir(d);
}

/* ---- the root table ---- */

typedef struct roots_ctx {
    const registry_options *o;
    reg_roots *roots;
    const char *home;
    const char *cwd;
    bool nomem;
} roots_ctx;

static const char *env_get(const registry_options *o, const char *key) {
    if (o->ignore_env) return NULL;
    const char *v = getenv(key);
    return v && *v ? v : NULL;
}

static reg_root *roots_add(roots_ctx *c, reg_walk_fn walk, registry_source src, const char *path,
                           int depth, const char *label) {
    reg_roots *r = c->roots;
    if (!path || !*path) return NULL;
    /* The same directory reached twice (./models is ~/models when run from $HOME) is walked once;
     * the first (higher priority) root keeps it and is returned, so a caller can still mark it
     * (a --model file that is also SHIMMY_BASE_GGUF stays the base of SHIMMY_LORA_GGUF). */
    struct stat st;
    bool exists = stat(path, &st) == 0;
    /* A missing directory is simply not there; a missing file the user named is reported (the
     * inspect step turns it into a skipped item). */
    if (!exists && walk != walk_file) return NULL;
    for (size_t i = 0; exists && i < r->n; i++) {
        struct stat so;
        if (r->v[i].walk == walk && stat(r->v[i].path, &so) == 0 && so.st_dev == st.st_dev &&
            so.st_ino == st.st_ino && r->v[i].max_depth >= depth)
            return &r->v[i];
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        reg_root *v = realloc(r->v, cap * sizeof *v);
        if (!v) {
            c->nomem = true;
            return NULL;
        }
        r->v = v;
        r->cap = cap;
    }
    reg_root *root = &r->v[r->n];
    memset(root, 0, sizeof *root);
    root->walk = walk;
    root->source = src;
    root->path = reg_strdup(path);
    root->label = reg_printf("%s %s", label, path);
    root->max_depth = depth;
    root->index = (int)r->n;
    if (!root->path || !root->label) {
        free(root->path);
        free(root->label);
        c->nomem = true;
        return NULL;
    }
    r->n++;
    return root;
}

static void add_dir_list(roots_ctx *c, const char *list, const char *label) {
    if (!list) return;
    char *copy = reg_strdup(list);
    if (!copy) {
        c->nomem = true;
        return;
    }
    char *save = NULL;
    for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save))
        roots_add(c, walk_plain_dir, REGISTRY_SOURCE_DIR, p, c->o->max_depth, label);
    free(copy);
}

static void add_under(roots_ctx *c, const char *base, const char *rel, reg_walk_fn walk,
                      registry_source src, int depth, const char *label) {
    if (!base) return;
    char *p = reg_printf("%s/%s", base, rel);
    if (!p) {
        c->nomem = true;
        return;
    }
    roots_add(c, walk, src, p, depth, label);
    free(p);
}

static void roots_explicit(roots_ctx *c) {
    for (size_t i = 0; i < c->o->n_files; i++) {
        reg_root *r = roots_add(c, walk_file, REGISTRY_SOURCE_ENV, c->o->files[i], 0, "file");
        if (r) r->explicit_file = true;
    }
    for (size_t i = 0; i < c->o->n_adapter_files; i++) {
        reg_root *r =
            roots_add(c, walk_file, REGISTRY_SOURCE_ENV, c->o->adapter_files[i], 0, "--lora");
        if (r) r->cli_lora = true;
    }
}
static void roots_env(roots_ctx *c) {
    reg_root *r = roots_add(c, walk_file, REGISTRY_SOURCE_ENV, env_get(c->o, "SHIMMY_BASE_GGUF"), 0,
                            "SHIMMY_BASE_GGUF");
    if (r) r->env_base = true;
    r = roots_add(c, walk_file, REGISTRY_SOURCE_ENV, env_get(c->o, "SHIMMY_LORA_GGUF"), 0,
                  "SHIMMY_LORA_GGUF");
    if (r) r->env_lora = true;
}
static void roots_dirs(roots_ctx *c) {
    add_dir_list(c, c->o->dirs, "--model-dirs");
}
static void roots_model_paths(roots_ctx *c) {
    add_dir_list(c, env_get(c->o, "SHIMMY_MODEL_PATHS"), "SHIMMY_MODEL_PATHS");
}
static void roots_local(roots_ctx *c) {
    add_under(c, c->cwd, "models", walk_plain_dir, REGISTRY_SOURCE_DIR, c->o->max_depth,
              "./models");
}
static void roots_home(roots_ctx *c) {
    add_under(c, c->home, "models", walk_plain_dir, REGISTRY_SOURCE_DIR, c->o->max_depth,
              "~/models");
}
static void roots_base_dir(roots_ctx *c) {
    const char *base = env_get(c->o, "SHIMMY_BASE_GGUF");
    if (!base) return;
    const char *slash = strrchr(base, '/');
    char *dir =
        slash ? reg_strndup(base, slash == base ? 1 : (size_t)(slash - base)) : reg_strdup(".");
    if (!dir) {
        c->nomem = true;
        return;
    }
    roots_add(c, walk_plain_dir, REGISTRY_SOURCE_DIR, dir, 0, "folder of SHIMMY_BASE_GGUF");
    free(dir);
}
static void roots_ollama(roots_ctx *c) {
    const char *env = env_get(c->o, "OLLAMA_MODELS");
    if (env)
        roots_add(c, reg_walk_ollama, REGISTRY_SOURCE_OLLAMA, env, 0, "ollama");
    else
        add_under(c, c->home, ".ollama/models", reg_walk_ollama, REGISTRY_SOURCE_OLLAMA, 0,
                  "ollama");
}
static void roots_hf(roots_ctx *c) {
    const char *hub = env_get(c->o, "HF_HUB_CACHE");
    const char *hf_home = env_get(c->o, "HF_HOME");
    if (hub)
        roots_add(c, walk_hf, REGISTRY_SOURCE_HF, hub, 0, "huggingface");
    else if (hf_home)
        add_under(c, hf_home, "hub", walk_hf, REGISTRY_SOURCE_HF, 0, "huggingface");
    else
        add_under(c, c->home, ".cache/huggingface/hub", walk_hf, REGISTRY_SOURCE_HF, 0,
                  "huggingface");
}
static void roots_lmstudio(roots_ctx *c) {
    add_under(c, c->home, ".lmstudio/models", walk_plain_dir, REGISTRY_SOURCE_LMSTUDIO, 3,
              "lmstudio");
    add_under(c, c->home, ".cache/lm-studio/models", walk_plain_dir, REGISTRY_SOURCE_LMSTUDIO, 3,
              "lmstudio");
}
static void roots_downloads(roots_ctx *c) {
    add_under(c, c->home, "Downloads", walk_plain_dir, REGISTRY_SOURCE_DIR, 0, "~/Downloads");
}

/* In priority order: a file reached from several roots belongs to the first. */
static const struct {
    uint32_t flag; /* 0: always on (given explicitly in the options) */
    const char *env_off;
    void (*add)(roots_ctx *c);
} root_table[] = {
    {0, NULL, roots_explicit},
    {REGISTRY_NO_ENV, "SHIMMY_NO_ENV", roots_env},
    {0, NULL, roots_dirs},
    {REGISTRY_NO_MODEL_PATHS, "SHIMMY_NO_MODEL_PATHS", roots_model_paths},
    {REGISTRY_NO_LOCAL, "SHIMMY_NO_LOCAL", roots_local},
    {REGISTRY_NO_HOME, "SHIMMY_NO_HOME", roots_home},
    {REGISTRY_NO_BASE_DIR, "SHIMMY_NO_BASE_DIR", roots_base_dir},
    {REGISTRY_NO_OLLAMA, "SHIMMY_NO_OLLAMA", roots_ollama},
    {REGISTRY_NO_HF, "SHIMMY_NO_HF", roots_hf},
    {REGISTRY_NO_LMSTUDIO, "SHIMMY_NO_LMSTUDIO", roots_lmstudio},
    {REGISTRY_NO_DOWNLOADS, "SHIMMY_NO_DOWNLOADS", roots_downloads},
};

shimmy_status reg_roots_build(const registry_options *o, reg_roots *out, shimmy_error *err) {
    memset(out, 0, sizeof *out);
    if (o->max_depth < 0 || o->max_depth > 64)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "max_depth",
                          "directory depth %d is outside 0..64", o->max_depth);
    registry_options opts = *o;
    if (opts.max_depth == 0) opts.max_depth = REG_DEFAULT_DEPTH;
    char cwd_buf[REG_PATH_MAX];
    roots_ctx c = {.o = &opts, .roots = out};
    c.home = o->home ? o->home : env_get(o, "HOME");
    c.cwd = o->cwd ? o->cwd : getcwd(cwd_buf, sizeof cwd_buf);
    for (size_t i = 0; i < sizeof root_table / sizeof root_table[0]; i++) {
        uint32_t flag = root_table[i].flag;
        if (flag && (o->disable & flag)) continue;
        const char *off = root_table[i].env_off ? env_get(o, root_table[i].env_off) : NULL;
        if (off && strcmp(off, "0") != 0) continue;
        root_table[i].add(&c);
        if (c.nomem) break;
    }
    if (c.nomem) {
        reg_roots_free(out);
        return core_error(err, SHIMMY_ERR_NOMEM, NULL, "no memory for the registry's roots");
    }
    return SHIMMY_OK;
}

void reg_roots_free(reg_roots *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].path);
        free(r->v[i].label);
        free(r->v[i].cands); /* the candidates themselves moved to the registry */
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}
