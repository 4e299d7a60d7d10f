/*
 * registry internals shared by the scan phases (not part of the public API).
 *
 * A scan runs in four steps: (1) build the root table from options and environment, (2) walk
 * the roots in parallel, each producing candidates (paths plus what the root knows about them:
 * an Ollama name, a Hugging Face repo, an explicit adapter pairing), (3) inspect every candidate
 * in parallel (stat, magic, GGUF header or PEFT config), (4) serially group split files, drop
 * duplicates, name and pair. Candidates are owned by the registry and freed with it; entries
 * point at their strings.
 */
#ifndef SHIMMY_REGISTRY_INTERNAL_H
#define SHIMMY_REGISTRY_INTERNAL_H

#include "registry/registry.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* How a candidate's name is derived. */
typedef enum reg_naming {
    REG_NAME_STEM,   /* file stem lowercased */
    REG_NAME_FIXED,  /* hint is the full name (Ollama "llama3.2:3b") */
    REG_NAME_REPO,   /* hint is "org/repo": name = hint + ":" + quant */
    REG_NAME_ADAPTER /* Ollama adapter: name of its model + "-adapter" */
} reg_naming;

typedef enum reg_kind {
    REG_KIND_PENDING, /* not inspected yet */
    REG_KIND_MODEL,
    REG_KIND_ADAPTER,
    REG_KIND_PART, /* part 2..N of a split model */
    REG_KIND_SKIP
} reg_kind;

typedef struct reg_cand {
    /* set by the walker */
    char *path;
    int root; /* index in the root table = priority (lower wins) */
    registry_source source;
    reg_naming naming;
    char *hint;   /* see reg_naming; NULL for STEM */
    bool is_peft; /* path is a PEFT folder */
    int order;    /* sorts before the path within a root (0 first): a Hugging Face repo's current
                     revision (refs/main) before older snapshots */
    struct reg_cand *pair_model; /* adapters: the model an Ollama manifest pairs it with */
    bool pair_env_base;  /* adapters: SHIMMY_LORA_GGUF, pairs with the SHIMMY_BASE_GGUF model */
    bool env_base;       /* this is SHIMMY_BASE_GGUF */
    bool pair_cli;       /* adapters: named with serve --lora (registry_options.adapter_files) */
    bool explicit_file;  /* models: named in registry_options.files */
    char *template_text; /* Ollama template layer, used when the GGUF has no chat template */
    char *origin;        /* where it was named, when more precise than the root (a manifest) */

    /* set by inspect */
    reg_kind kind;
    char *reason; /* REG_KIND_SKIP: why */
    dev_t dev;
    ino_t ino;
    uint64_t size;
    char *arch, *quant, *size_label, *display, *family, *base_hint;
    uint64_t n_params;
    uint32_t ctx;
    float alpha;
    int rank;
    int split_no, split_count; /* 0/0 when not a split file */
    size_t split_prefix_len;   /* path bytes before "-00001-of-0000N.gguf" */

    /* set by build */
    int n_parts;
    struct reg_cand *dup_of; /* the first candidate naming the same file */
    char *name;              /* models and adapters */
    char *pair_reason;       /* adapters */
    long entry;              /* models: index in registry.entries, else -1 */
    size_t dir_len;          /* bytes of path before its last '/' */
    uint64_t dir_hash;       /* hash of those bytes: cheap same-folder tests when pairing */
} reg_cand;

typedef struct reg_root reg_root;
typedef void (*reg_walk_fn)(reg_root *root);

/* A scan's progress counters (atomics), shared by its roots' walkers and the inspection. */
typedef struct reg_progress {
    registry_progress_fn fn; /* NULL: counting is off */
    void *user;
    uint64_t folders, found, read;
    double next_ms; /* when the next report is due */
    int reporting;  /* a report is being made */
} reg_progress;
enum { REG_TICK_FOLDER, REG_TICK_FOUND, REG_TICK_READ };
/* Counts one event and reports when one is due (or, with done, the final state). */
void reg_progress_tick(reg_progress *p, int what);
void reg_progress_done(reg_progress *p);

struct reg_root {
    reg_walk_fn walk;
    registry_source source;
    char *path;
    char *label; /* "--model-dirs /x", "ollama ~/.ollama/models", ... */
    int max_depth;
    int index;
    bool env_lora;      /* the file is SHIMMY_LORA_GGUF */
    bool env_base;      /* the file is SHIMMY_BASE_GGUF */
    bool cli_lora;      /* the file is an explicit adapter (registry_options.adapter_files) */
    bool explicit_file; /* the file is an explicit model (registry_options.files) */
    reg_progress *prog; /* the scan's counters; NULL when nobody asked */
    /* output */
    reg_cand **cands;
    size_t n, cap;
    bool nomem;
};

struct registry {
    int refs;         /* atomic */
    reg_cand **cands; /* owned, in priority order (root, then path) */
    size_t n_cands;
    registry_entry *entries; /* sorted by name */
    reg_cand **entry_cands;  /* entry i came from entry_cands[i] */
    size_t n_entries;
    registry_adapter *adapters; /* sorted by name */
    reg_cand **adapter_cands;
    size_t n_adapters;
    const registry_adapter **adapter_refs; /* storage of the entries' adapter lists */
    registry_skip *skipped;
    size_t n_skipped;
    char **roots;
    size_t n_roots;
    char **alias_names; /* other names of an entry (an Ollama tag sharing a blob), sorted */
    size_t *alias_entry;
    size_t n_aliases;
    double scan_ms;
    size_t files_read;
};

/* build.c: groups, dedupes, names and pairs r->cands into the public tables. */
shimmy_status reg_build(registry *r, shimmy_error *err);

/* walk.c: the root table and the walkers of files, directories, HF and LM Studio. */
typedef struct reg_roots {
    reg_root *v;
    size_t n, cap;
} reg_roots;

shimmy_status reg_roots_build(const registry_options *o, reg_roots *out, shimmy_error *err);
void reg_roots_free(reg_roots *r);
/* Appends a candidate to root (copies path/hint); NULL on NOMEM (root->nomem set). */
reg_cand *reg_root_add(reg_root *root, const char *path, reg_naming naming, const char *hint);

/* ollama.c */
void reg_walk_ollama(reg_root *root);

/* inspect.c: fills the "set by inspect" fields; never fails (problems become REG_KIND_SKIP). */
void reg_inspect(reg_cand *c);
void reg_cand_free(reg_cand *c);
/* Chat template family of a template text ("none" for NULL/empty). Static string. */
const char *reg_template_family(const char *text, size_t len);
/* "30.5M", "1.2B": a parameter count the way model cards write it. */
char *reg_size_label(uint64_t n);
/* Split suffix "-NNNNN-of-MMMMM.gguf" at the end of path: part number, count, prefix length. */
bool reg_split_parse(const char *path, int *no, int *count, size_t *prefix_len);

/* Lowercases s in place and replaces characters outside [a-z0-9._:/+-] by '-'. */
void reg_name_clean(char *s);
char *reg_strdup(const char *s);
char *reg_strndup(const char *s, size_t n);
char *reg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool reg_ends_with_ci(const char *s, const char *suffix);

#endif
