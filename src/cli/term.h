/*
 * The terminal commands' shared parts (run, pull, ps, stop): an HTTP client on libcurl, the
 * Hugging Face Hub client, `shimmy run`'s conversation and its two backends (a model loaded in
 * this process, or a running server). Internal to the CLI: libcurl, libedit and libcrypto are
 * linked into the shimmy program only, never into libshimmy.
 */
#ifndef SHIMMY_CLI_TERM_H
#define SHIMMY_CLI_TERM_H

#include "cli.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable byte buffers (always NUL-terminated after len) ---- */

typedef struct cli_buf {
    char *data;
    size_t len, cap;
} cli_buf;

bool cli_buf_add(cli_buf *b, const char *s, size_t n); /* false when out of memory */
void cli_buf_free(cli_buf *b);

/* ---- HTTP (http.c) ---- */

/* The server `run --host`, ps and stop talk to: the argument, else $SHIMMY_HOST, else
 * http://127.0.0.1:11435. A bare HOST:PORT gets http:// in front. Owned by the caller. */
char *cli_server_url(const char *arg);

/* Receives body bytes as they arrive; false aborts the transfer. */
typedef bool (*cli_http_data_fn)(const char *data, size_t len, void *user);

typedef struct cli_http_request {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *body;         /* POST body (JSON), NULL for none */
    const char *bearer;       /* Authorization: Bearer, NULL for none */
    cli_http_data_fn on_data; /* NULL: the body goes to `out` */
    void *user;
    volatile sig_atomic_t *interrupted; /* when set (Ctrl-C), the transfer stops */
    long timeout_s;                     /* whole transfer; 0 = none */
    const char *range;                  /* "N-" asks for the bytes from N on; NULL for all */
    cli_buf *headers;                   /* NULL, or receives the response's header lines */
    bool stall_abort;                   /* give up after 60 s without a byte (downloads) */
} cli_http_request;

/* The value of header `name` (case-insensitive) in header lines from cli_http, into buf (the
 * last response's, after redirects); false when absent. */
bool cli_http_header(const cli_buf *headers, const char *name, char *buf, size_t cap);

/* Performs the request. SHIMMY_OK with *status the HTTP status (any: the caller judges it), the
 * body in out (when on_data is NULL). Errors: SHIMMY_ERR_IO (cannot connect: the message names
 * the URL and says what to check), SHIMMY_ERR_CANCELLED (interrupted or on_data said stop). */
shimmy_status cli_http(const cli_http_request *rq, long *status, cli_buf *out, shimmy_error *err);
/* The "error.message" (OpenAI and shimmy shape) or "error" (Ollama) of an error body, else the
 * body itself, cut to fit; into buf. */
void cli_http_error_text(const char *body, char *buf, size_t cap);

/* ---- SHA-256 of files (sha.c, libcrypto) ---- */

/* Hex digest (65 bytes with the NUL) of a whole file. SHIMMY_ERR_IO names the path. */
shimmy_status cli_sha256_file(const char *path, char hex[65], shimmy_error *err);
/* Incremental: a context for a download that hashes as it writes. */
typedef struct cli_sha256 cli_sha256;
cli_sha256 *cli_sha256_new(void); /* NULL when out of memory */
/* The same context computing git's blob id (SHA-1 of "blob SIZE\0" and the content): the id
 * the Hub lists for a file not in LFS. Its final digest is 40 hex digits. */
cli_sha256 *cli_git_blob_hash_new(uint64_t size);
void cli_sha256_update(cli_sha256 *h, const void *data, size_t n);
void cli_sha256_final(cli_sha256 *h, char hex[65]); /* and frees h */
void cli_sha256_free(cli_sha256 *h);

/* ---- the Hugging Face Hub (hub.c) ---- */

typedef struct hub_file {
    char *path;       /* in the repository: "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf" */
    uint64_t size;    /* bytes (the LFS object's for LFS files) */
    char sha256[65];  /* the LFS oid, "" for a file not in LFS */
    char git_oid[41]; /* the git blob id: the cache names a file not in LFS by it */
} hub_file;

typedef struct hub_tree {
    char *repo;
    char *ref;      /* the revision asked for ("main", a branch, a tag or a commit) */
    char *revision; /* the commit it resolved to */
    hub_file *files;
    size_t n;
} hub_tree;

/* Lists every file of repo at revision (HF_ENDPOINT, HF_TOKEN from the environment).
 * Errors with a message a user can act on: SHIMMY_ERR_NOT_FOUND (no such repository or
 * revision), SHIMMY_ERR_UNAUTHORIZED (gated or private: set HF_TOKEN), SHIMMY_ERR_IO (network). */
shimmy_status hub_list(const char *repo, const char *revision, hub_tree *out, shimmy_error *err);
void hub_tree_free(hub_tree *t);

/* Picks the GGUF files for `want` (NULL: a default quant; a quant tag such as "Q4_K_M",
 * matched case-insensitively in the file names; or a file path in the repository). A split
 * model gives every part. Fills idx (cap entries) and returns how many; 0 with err filled when
 * nothing matches (the message lists the quants the repository has). */
size_t hub_select(const hub_tree *t, const char *want, size_t *idx, size_t cap, shimmy_error *err);
/* The quant tag in a GGUF file name ("Q4_K_M", "IQ2_XXS", "BF16"), into buf; false if none. */
bool hub_quant_of(const char *name, char *buf, size_t cap);

/* Progress of one file's download, called at most a few times a second and once at the end. */
typedef void (*hub_progress_fn)(const char *file, uint64_t done, uint64_t total, double rate,
                                bool finished, void *user);

/* Downloads tree's file i into the Hugging Face cache (cache_dir = the hub folder):
 * blobs/<sha256> through a .incomplete file (resumed with a Range request when one exists),
 * its SHA-256 checked before it is renamed into place, then snapshots/<commit>/<path> linked to
 * it and refs/<revision> written. *out_path (owned) is the snapshot path. */
shimmy_status hub_download(const hub_tree *t, size_t i, const char *cache_dir,
                           hub_progress_fn progress, void *user, volatile sig_atomic_t *interrupted,
                           char **out_path, shimmy_error *err);
/* $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (as discovery reads it).
 * Owned by the caller; NULL when out of memory. */
char *hub_cache_dir(void);

/* ---- shimmy run: the conversation (run_chat.c) ---- */

typedef struct run_msg {
    char *role, *content;
} run_msg;

/* The turns so far; the system prompt apart, so /clear keeps it. Strings owned. */
typedef struct run_conv {
    run_msg *m;
    size_t n, cap;
    char *system; /* NULL: none */
} run_conv;

bool run_conv_add(run_conv *c, const char *role, const char *content, size_t len);
bool run_conv_set_system(run_conv *c, const char *text); /* NULL or "" removes it */
void run_conv_drop_oldest(run_conv *c); /* the oldest turn (a user message and its answer) */
void run_conv_clear(run_conv *c);       /* every turn; the system prompt stays */
void run_conv_free(run_conv *c);
/* The whole conversation with the system prompt first, as OpenAI messages JSON (owned). */
char *run_conv_json(const run_conv *c);
/* /save and /load: {"messages": [...], "options": {...}} (OpenAI message shape, so a saved chat
 * can be sent to /v1/chat/completions as it is). load replaces the conversation; options_json
 * (owned, may be NULL) is the saved "options" object for the caller to apply. */
shimmy_status run_conv_save(const run_conv *c, const char *options_json, const char *path,
                            shimmy_error *err);
shimmy_status run_conv_load(run_conv *c, const char *path, char **options_json, shimmy_error *err);

/* The answer as it streams: reasoning (<think>...</think>, or a server's reasoning_content)
 * dimmed on a terminal, dropped with hide_think, passed through as text otherwise. */
typedef struct run_out {
    FILE *f;
    bool ansi, hide_think;
    bool in_think, any;
    bool apart;    /* in_think because of reasoning sent apart, not a tag */
    char pend[16]; /* the start of what may be a tag, held until it is decided */
    size_t n_pend;
    cli_buf text; /* the answer as the model wrote it (tags included): the history's content */
} run_out;

void run_out_begin(run_out *o);
void run_out_text(run_out *o, const char *s, size_t n);      /* the model's text */
void run_out_reasoning(run_out *o, const char *s, size_t n); /* reasoning sent apart */
void run_out_end(run_out *o);
/* The prompt itself opened the reasoning (its template ends with <think>): the answer starts
 * inside it and only </think> will come. */
void run_out_think_opened(run_out *o);

/* ---- shimmy run: where answers come from (run_backend.c) ---- */

typedef struct run_stats {
    int32_t prompt_tokens, cached_tokens, completion_tokens;
    double ttft_ms, gen_ms;
    int dropped_turns; /* turns forgotten because the conversation outgrew the context */
    bool cached_known; /* cached_tokens was reported (a server may not say) */
    bool cancelled;
} run_stats;

typedef struct run_backend run_backend;

/* A model loaded here (model: a registry name or a .gguf path; ro: threads, context, LoRA);
 * progress: show the load's progress on stderr (a terminal). */
shimmy_status run_backend_local(const char *model, cli_run_opts *ro, bool progress,
                                run_backend **out, shimmy_error *err);
/* A running server's /v1/chat/completions (base: its URL). opts_set: which options the user
 * set (a bit per run param); the others are left to the server's defaults. */
shimmy_status run_backend_remote(const char *base, const char *model, run_backend **out,
                                 shimmy_error *err);
/* The assistant's answer to c, streamed into o; appended to c unless it failed. Ctrl-C
 * (*interrupted) stops it within a token: a stopped answer is kept as far as it went. */
shimmy_status run_backend_reply(run_backend *b, run_conv *c, const shimmy_gen_options *opts,
                                unsigned opts_set, run_out *o, volatile sig_atomic_t *interrupted,
                                run_stats *st, shimmy_error *err);
const char *run_backend_name(const run_backend *b);
void run_backend_free(run_backend *b);

/* The sampling options `run` knows, by name (/set NAME VALUE, --NAME VALUE). */
typedef struct run_param {
    const char *name, *alias, *flag; /* flag: the command-line spelling */
    char kind;                       /* 'f' float, 'i' int32, 'u' uint32 */
    double lo, hi;
    size_t offset; /* in shimmy_gen_options */
} run_param;
extern const run_param run_params[];
extern const size_t run_n_params;

/* ---- the man page and completions (manpage.c), printed from main.c's command table ---- */

typedef struct cli_command {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} cli_command;

/* `shimmy help --man` / `shimmy help --completion bash|zsh`: each command's options are taken
 * from its own `--help` text, so the page and the completions list what --help lists. */
int cli_print_man(const cli_command *cmds, size_t n);
int cli_print_completion(const char *shell, const cli_command *cmds, size_t n);

#endif
