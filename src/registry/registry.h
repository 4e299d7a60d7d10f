/*
 * registry — finding the models users already have on disk and giving each a stable name.
 *
 * A scan walks a fixed table of roots (explicit files, SHIMMY_BASE_GGUF / SHIMMY_LORA_GGUF,
 * --model-dirs, SHIMMY_MODEL_PATHS, ./models, ~/models, the folder of SHIMMY_BASE_GGUF, the
 * Ollama store, the Hugging Face cache, LM Studio, ~/Downloads), in parallel, reading only GGUF
 * headers (never tensor data). Every root can be turned off by an option bit or by the
 * environment variable SHIMMY_NO_<ROOT>=1 (names listed beside the REGISTRY_NO_* bits).
 *
 * Invariants:
 *  - Names are unique, lowercase and stable: the same tree gives the same names on every scan.
 *    Ollama models are "name:tag" ("llama3.2:3b"; registry.ollama.ai and the "library"
 *    namespace omitted); Hugging Face files are "org/repo:quant" with quant the file's own file
 *    type lowercased ("bartowski/llama-3.2-1b-instruct-gguf:q4_k_m"); everything else is the
 *    file stem lowercased (split suffix removed). Collisions get "-2", "-3", ... in the order of
 *    root priority (the table order above), then path.
 *  - A file reached through several paths (same st_dev/st_ino after following symlinks) is listed
 *    once, under the root of highest priority; the other paths go to the skipped list.
 *  - Split models (NAME-00001-of-0000N.gguf) are one entry: path = first part, size = all parts.
 *  - Vocab-only files, multimodal projectors, non-GGUF and corrupt files are never entries; they
 *    are in the skipped list with the reason (corrupt files are also logged as warnings).
 *  - LoRA adapters (GGUF general.type = "adapter", or PEFT folders with adapter_config.json and
 *    adapter_model.safetensors) are adapters, not models. An adapter is paired with one base
 *    model: explicitly (SHIMMY_LORA_GGUF -> SHIMMY_BASE_GGUF, or an Ollama manifest), when its
 *    metadata names exactly one known model, or when exactly one model of the same architecture
 *    sits in its folder; otherwise it is unpaired and `reason` says why.
 *
 * Ownership: registry_scan creates a registry holding one reference; registry_ref adds one and
 * registry_free drops one (the last drop frees; registry_free(NULL) is a no-op). Every pointer
 * a registry hands out (entries, adapters, skipped items and their strings) is borrowed and
 * valid while the caller holds a reference.
 * Thread-safety: a registry is immutable after registry_scan; any number of threads may read it.
 * A rescan produces a new registry: a server swaps its pointer under its own lock, readers take
 * a reference (registry_ref) before using it and drop it after. registry_ref/registry_free are
 * atomic.
 */
#ifndef SHIMMY_REGISTRY_H
#define SHIMMY_REGISTRY_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where an entry was found (reported as "env", "dir", "hf", "ollama", "lmstudio"). */
typedef enum registry_source {
    REGISTRY_SOURCE_ENV, /* SHIMMY_BASE_GGUF, SHIMMY_LORA_GGUF or an explicit file */
    REGISTRY_SOURCE_DIR, /* a directory: --model-dirs, SHIMMY_MODEL_PATHS, ./models, ... */
    REGISTRY_SOURCE_HF,
    REGISTRY_SOURCE_OLLAMA,
    REGISTRY_SOURCE_LMSTUDIO,
    REGISTRY_SOURCE_COUNT
} registry_source;

const char *registry_source_name(registry_source s);

/* Roots a scan can skip: OR these into registry_options.disable. Each also reads
 * SHIMMY_NO_<NAME>=1 from the environment (unless options.ignore_env). */
enum {
    REGISTRY_NO_ENV = 1u << 0,         /* SHIMMY_NO_ENV: SHIMMY_BASE_GGUF / SHIMMY_LORA_GGUF */
    REGISTRY_NO_MODEL_PATHS = 1u << 1, /* SHIMMY_NO_MODEL_PATHS: $SHIMMY_MODEL_PATHS */
    REGISTRY_NO_LOCAL = 1u << 2,       /* SHIMMY_NO_LOCAL: ./models */
    REGISTRY_NO_HOME = 1u << 3,        /* SHIMMY_NO_HOME: ~/models */
    REGISTRY_NO_BASE_DIR = 1u << 4,    /* SHIMMY_NO_BASE_DIR: the folder of SHIMMY_BASE_GGUF */
    REGISTRY_NO_OLLAMA = 1u << 5,      /* SHIMMY_NO_OLLAMA */
    REGISTRY_NO_HF = 1u << 6,          /* SHIMMY_NO_HF */
    REGISTRY_NO_LMSTUDIO = 1u << 7,    /* SHIMMY_NO_LMSTUDIO */
    REGISTRY_NO_DOWNLOADS = 1u << 8,   /* SHIMMY_NO_DOWNLOADS: ~/Downloads (top level only) */
    REGISTRY_NO_DEFAULTS = 0x1ffu      /* everything except files/dirs given in the options */
};

/* How far a scan has come: folders entered, model files and adapter folders found, files read
 * (inspected); done on the last call. */
typedef struct registry_progress {
    uint64_t folders, found, read;
    bool done;
} registry_progress;
typedef void (*registry_progress_fn)(void *user, const registry_progress *p);

typedef struct registry_options {
    const char *dirs;         /* colon-separated directories (--model-dirs); NULL = none */
    const char *const *files; /* explicit model files (serve --model), highest priority */
    size_t n_files;
    /* explicit LoRA adapters (serve --lora): .gguf files or PEFT folders. Each is paired with the
     * base its metadata names, else the only architecture-compatible --model file, else the only
     * compatible model listed, else by the usual folder rule. */
    const char *const *adapter_files;
    size_t n_adapter_files;
    const char *home; /* NULL = $HOME */
    const char *cwd;  /* where ./models is looked for; NULL = the current directory */
    uint32_t disable; /* REGISTRY_NO_* bits */
    bool ignore_env;  /* true: read no environment variable at all (tests) */
    int max_depth;    /* directory recursion limit; 0 = 6 */
    int n_threads;    /* 0 = up to 4 */
    /* Called now and then while the scan runs (at most every 100 ms, from the scan's threads but
     * never two calls at once) and once at the end with done set; NULL = none. */
    registry_progress_fn progress;
    void *progress_user;
} registry_options;

typedef struct registry registry;
typedef struct registry_entry registry_entry;

typedef enum registry_adapter_format {
    REGISTRY_ADAPTER_GGUF,
    REGISTRY_ADAPTER_PEFT /* a folder: adapter_config.json + adapter_model.safetensors */
} registry_adapter_format;

typedef struct registry_adapter {
    const char *name; /* unique among adapters, same rules as model names */
    const char *path; /* the .gguf file, or the PEFT folder */
    registry_adapter_format format;
    registry_source source;
    const char *architecture;   /* "" when unknown (PEFT) */
    float alpha;                /* adapter.lora.alpha / lora_alpha; 0 when absent */
    int rank;                   /* PEFT "r"; 0 when unknown */
    const registry_entry *base; /* the paired model, NULL when unpaired */
    const char *reason;         /* how it was paired, or why not */
} registry_adapter;

struct registry_entry {
    const char *name;
    const char *path;         /* the file (first part of a split model) */
    uint64_t size;            /* bytes, all parts */
    int n_parts;              /* 1, or N of a split model */
    const char *architecture; /* general.architecture, "" if absent */
    uint64_t n_params;        /* from tensor shapes (all parts) */
    const char *size_label;   /* general.size_label, else derived from n_params ("30.5M") */
    const char *quant;        /* file type name ("Q4_K_M"), else the majority tensor type */
    uint32_t context_length;  /* <arch>.context_length, 0 if absent */
    const char *template;     /* chat template family ("chatml", "llama3", ...) or "none" */
    registry_source source;
    const char *origin;  /* the root it came from (directory, manifest, repo folder) */
    const char *display; /* general.name, "" if absent */
    size_t n_adapters;
    const registry_adapter *const *adapters; /* adapters paired with this model */
};

typedef struct registry_skip {
    const char *path;
    const char *reason; /* "corrupt: ...", "vocab-only (no tensors)", "duplicate of ...", ... */
} registry_skip;

/* Scans every enabled root. Unreadable roots and bad files never fail a scan (they are skipped
 * or absent); errors are only NOMEM and invalid options. opts NULL = defaults. */
shimmy_status registry_scan(const registry_options *opts, registry **out, shimmy_error *err);
registry *registry_ref(registry *r);
void registry_free(registry *r);

/* Models, sorted by name. */
size_t registry_count(const registry *r);
const registry_entry *registry_entry_at(const registry *r, size_t i);
/* By name (case-insensitive; an Ollama name without a tag means ":latest"; another Ollama tag of
 * the same blob is an alias), or by path: a path equal to an entry's path or naming the same
 * file (same st_dev/st_ino). NULL when unknown. */
const registry_entry *registry_find(const registry *r, const char *name_or_path);

/* Adapters, sorted by name. */
size_t registry_adapter_count(const registry *r);
const registry_adapter *registry_adapter_at(const registry *r, size_t i);
const registry_adapter *registry_find_adapter(const registry *r, const char *name_or_path);

/* What was seen and not listed, in scan order. */
size_t registry_skipped_count(const registry *r);
const registry_skip *registry_skipped_at(const registry *r, size_t i);

/* Roots that were scanned ("ollama ~/.ollama/models", ...), for `shimmy discover`. */
size_t registry_root_count(const registry *r);
const char *registry_root_at(const registry *r, size_t i);

/* Up to max names closest to `name` (edit distance), for "did you mean" messages; returns how
 * many were written to out (borrowed strings). */
size_t registry_suggest(const registry *r, const char *name, const char **out, size_t max);

/* Wall time of the scan in milliseconds and the number of files whose header was read. */
double registry_scan_ms(const registry *r);
size_t registry_files_read(const registry *r);

#endif
