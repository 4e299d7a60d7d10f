/*
 * shimmy/tools.h — part of the public C API of libshimmy: tokens, GGUF inspection, chat templates,
 * the scan report and evaluators. Included by shimmy.h (include that); shimmy.h's conventions
 * (errors, ownership, thread-safety) hold here too.
 */
#ifndef SHIMMY_TOOLS_H
#define SHIMMY_TOOLS_H

#ifndef SHIMMY_H
#error "include <shimmy.h>, which includes this part"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Tokens, inspection and evaluation ==== */
/* What tools built on a model need below generation: vocabularies and token ids, a read-only
 * view of a GGUF file, chat template rendering, the registry's full scan report, and an
 * evaluator (a model's forward pass with its own KV cache) for teacher-forced logits,
 * perplexity, benchmarks and generation from token ids. The `shimmy` CLI is built on these. */

/* ---- process: logging, machine facts, library buffers ---------------------------------- */

/* What `threads = 0` means everywhere: the physical cores available to this process. */
int32_t shimmy_default_threads(void);
/* The best instruction set the kernels use here ("avx512-vnni", "avx2", "neon", "scalar"; the
 * SHIMMY_ISA environment variable narrows it). A static string. */
const char *shimmy_cpu_isa(void);
/* Frees a buffer documented "Owned: shimmy_free" (token ids, text). NULL is a no-op. */
void shimmy_free(void *p);

/* ---- structured output: checking grammars and schemas (docs/grammar.md) ------------------ */

/* Converts a JSON Schema (JSON text, at most SHIMMY_MAX_GRAMMAR_LEN bytes) to the GBNF grammar
 * that gen options' json_schema is enforced with (start rule `root`; compact JSON with bounded
 * optional whitespace). *gbnf Owned: shimmy_free. Errors: SHIMMY_ERR_INVALID_JSON (message gives
 * line and column), SHIMMY_ERR_INVALID_ARG for a keyword that cannot be enforced, a bad keyword
 * value, an unsatisfiable schema or a limit: `where` is the JSON pointer of the keyword in the
 * schema ("/properties/age/multipleOf") and the message names it. */
SHIMMY_NODISCARD shimmy_status shimmy_json_schema_to_gbnf(const char *schema, char **gbnf,
                                                          shimmy_error *err);
/* Checks that GBNF text compiles (it is then cached for the generations that use it). Errors:
 * SHIMMY_ERR_INVALID_ARG with the message "line L, column C: ...", SHIMMY_ERR_TOO_LARGE. */
SHIMMY_NODISCARD shimmy_status shimmy_grammar_check(const char *gbnf, shimmy_error *err);

/* ---- vocabularies and tokens ------------------------------------------------------------ */

/* A tokenizer: the vocabulary, merges/scores and special tokens of a model. Immutable, so any
 * number of threads may use one at once. */
typedef struct shimmy_vocab shimmy_vocab;

/* Reads only the tokenizer metadata of a GGUF file (never the weights), so it is cheap on any
 * model size. Owned: shimmy_vocab_free. Errors name the file: SHIMMY_ERR_IO, _FORMAT,
 * _UNSUPPORTED (a tokenizer type shimmy does not implement), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_vocab_open(const char *path, shimmy_vocab **out,
                                                 shimmy_error *err);
/* Frees a vocabulary from shimmy_vocab_open (never one from shimmy_model_vocab). */
void shimmy_vocab_free(shimmy_vocab *v);
/* A loaded model's vocabulary: borrowed until the model's last unref. NULL for NULL. */
const shimmy_vocab *shimmy_model_vocab(const shimmy_model *m);
int32_t shimmy_vocab_size(const shimmy_vocab *v);
/* Special token ids; -1 when the vocabulary has none. */
int32_t shimmy_vocab_bos(const shimmy_vocab *v);
int32_t shimmy_vocab_eos(const shimmy_vocab *v);
int32_t shimmy_vocab_eot(const shimmy_vocab *v); /* end of a chat turn */
/* BERT's [SEP] (WordPiece vocabularies); -1 when the vocabulary has none. */
int32_t shimmy_vocab_sep(const shimmy_vocab *v);
/* True when tokenizing with SHIMMY_TOKENIZE_ADD_SPECIAL puts BOS first (the model asks so). */
bool shimmy_vocab_adds_bos(const shimmy_vocab *v);
/* True when SHIMMY_TOKENIZE_ADD_SPECIAL appends EOS (tokenizer.ggml.add_eos_token: e.g.
 * Qwen3-Embedding, whose LAST pooling reads that token). WordPiece vocabularies append [SEP]
 * instead (after [CLS] first). */
bool shimmy_vocab_adds_eos(const shimmy_vocab *v);
/* The stored text of token id as the file spells it (e.g. "▁the"), *len bytes, not
 * NUL-terminated, borrowed like v; NULL (and *len 0) out of range. len may be NULL. */
const char *shimmy_vocab_token_text(const shimmy_vocab *v, int32_t id, size_t *len);
/* The bytes token id decodes to, written to buf (at most cap bytes, no NUL added). Returns the
 * piece's full length: more than cap means buf was too small (call again with a larger one).
 * special: control tokens (BOS, <|im_end|>) give their text instead of nothing. 0 out of range.
 * A piece may be part of a UTF-8 character (byte tokens). */
size_t shimmy_token_piece(const shimmy_vocab *v, int32_t id, bool special, char *buf, size_t cap);

/* shimmy_tokenize flags */
#define SHIMMY_TOKENIZE_ADD_SPECIAL   1u /* BOS/EOS as the model's metadata asks */
#define SHIMMY_TOKENIZE_PARSE_SPECIAL 2u /* special-token text ("<|im_end|>") becomes its id */

/* Tokenizes text[0..len) (bytes; invalid UTF-8 is tokenized as bytes). *ids (Owned:
 * shimmy_free; NULL when *n is 0) receives *n ids. Errors: SHIMMY_ERR_INVALID_ARG (NULL
 * pointers), _TOO_LARGE (over 1 GiB of text), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_tokenize(const shimmy_vocab *v, const char *text, size_t len,
                                               unsigned flags, int32_t **ids, size_t *n,
                                               shimmy_error *err);

/* shimmy_tokenize_pair flags: SHIMMY_TOKENIZE_PARSE_SPECIAL and */
#define SHIMMY_TOKENIZE_PAIR_LLAMA_SERVER 4u /* llama-server's /v1/rerank form (below) */

/* Two texts as one sequence for a cross-encoder (reranker): a query and a document. By default
 * Hugging Face's BERT pair form, [BOS] a END b END (END = SEP, else EOS): for BERT
 * [CLS] a [SEP] b [SEP], which is what llama-embedding scores. With
 * SHIMMY_TOKENIZE_PAIR_LLAMA_SERVER, llama-server's: [BOS] a [EOS if add_eos] [SEP if add_sep]
 * b [EOS if add_eos], for BERT [CLS] a [SEP] b (no final [SEP]). Ownership and errors as
 * shimmy_tokenize. */
SHIMMY_NODISCARD shimmy_status shimmy_tokenize_pair(const shimmy_vocab *v, const char *a,
                                                    size_t a_len, const char *b, size_t b_len,
                                                    unsigned flags, int32_t **ids, size_t *n,
                                                    shimmy_error *err);

/* shimmy_detokenize flags */
#define SHIMMY_DETOKENIZE_SPECIAL    1u /* control tokens are shown as their text */
#define SHIMMY_DETOKENIZE_VALID_UTF8 2u /* invalid sequences (a character cut off) -> U+FFFD */

/* The text of ids (the inverse of shimmy_tokenize: pieces joined, the leading-space rule of
 * the model applied). *text is Owned (shimmy_free), NUL-terminated after *len bytes; without
 * SHIMMY_DETOKENIZE_VALID_UTF8 it is the exact bytes, which may be invalid UTF-8.
 * Errors: SHIMMY_ERR_INVALID_ARG naming the first id outside the vocabulary (`where` "ids"),
 * _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_detokenize(const shimmy_vocab *v, const int32_t *ids,
                                                 size_t n, unsigned flags, char **text, size_t *len,
                                                 shimmy_error *err);

/* ---- GGUF files: a read-only view of the header ----------------------------------------- */

/* A GGUF file's header, metadata and tensor table, read without the tensor data (inspecting a
 * 70 GB model reads a few megabytes). Immutable; every pointer it hands out is borrowed until
 * shimmy_gguf_free. */
typedef struct shimmy_gguf shimmy_gguf;

/* Metadata value types, numbered as in the GGUF format. */
typedef enum shimmy_gguf_type {
    SHIMMY_GGUF_U8 = 0,
    SHIMMY_GGUF_I8 = 1,
    SHIMMY_GGUF_U16 = 2,
    SHIMMY_GGUF_I16 = 3,
    SHIMMY_GGUF_U32 = 4,
    SHIMMY_GGUF_I32 = 5,
    SHIMMY_GGUF_F32 = 6,
    SHIMMY_GGUF_BOOL = 7,
    SHIMMY_GGUF_STRING = 8,
    SHIMMY_GGUF_ARRAY = 9,
    SHIMMY_GGUF_U64 = 10,
    SHIMMY_GGUF_I64 = 11,
    SHIMMY_GGUF_F64 = 12
} shimmy_gguf_type;

/* "u8", "i32", "f32", "bool", "string", "array", ...; "?" outside the enum. */
const char *shimmy_gguf_type_name(shimmy_gguf_type t);

/* One metadata value. Numbers are widened: unsigned types in u64, signed in i64, floats in
 * f64; the other fields are zero. Strings are bytes (not NUL-terminated, maybe not UTF-8). */
typedef struct shimmy_gguf_value {
    shimmy_gguf_type type;
    uint64_t u64;
    int64_t i64;
    double f64;
    bool b;
    const char *str; /* SHIMMY_GGUF_STRING: str_len bytes */
    size_t str_len;
    shimmy_gguf_type elem_type; /* SHIMMY_GGUF_ARRAY: element type and count */
    uint64_t count;
    const void *array_; /* internal: what shimmy_gguf_array_at reads */
} shimmy_gguf_value;

typedef struct shimmy_gguf_info {
    const char *path; /* as given to shimmy_gguf_open */
    uint32_t version;
    uint32_t alignment;
    uint64_t file_size;
    uint64_t data_offset; /* start of the tensor data section */
    size_t n_kv;
    size_t n_tensors;
} shimmy_gguf_info;

typedef struct shimmy_gguf_tensor {
    const char *name; /* name_len bytes, not NUL-terminated */
    size_t name_len;
    uint32_t type;         /* the GGML type number */
    const char *type_name; /* "F32", "Q4_K", ... ("unknown" for a number shimmy does not know) */
    uint32_t n_dims;
    int64_t shape[4]; /* elements per dimension, shape[0] the row length; unused ones are 1 */
    uint64_t offset;  /* relative to data_offset */
    uint64_t bytes;
} shimmy_gguf_tensor;

/* Reads and checks the header (every key, value and tensor record, bounds included). Owned:
 * shimmy_gguf_free. Errors name the file: SHIMMY_ERR_IO, _FORMAT (what is malformed), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_gguf_open(const char *path, shimmy_gguf **out,
                                                shimmy_error *err);
void shimmy_gguf_free(shimmy_gguf *g);
/* Fills *out (zeroed for a NULL g). */
void shimmy_gguf_get_info(const shimmy_gguf *g, shimmy_gguf_info *out);
/* The i-th metadata pair, in file order: key (key_len bytes, not NUL-terminated) and value.
 * false (and nothing written) when i >= n_kv. */
bool shimmy_gguf_kv_at(const shimmy_gguf *g, size_t i, const char **key, size_t *key_len,
                       shimmy_gguf_value *value);
/* The value of key ("general.architecture", "llama.context_length"); false when absent. */
bool shimmy_gguf_find(const shimmy_gguf *g, const char *key, shimmy_gguf_value *value);
/* Element i of an array value (arrays nest); false when arr is no array or i >= count. */
bool shimmy_gguf_array_at(const shimmy_gguf_value *arr, uint64_t i, shimmy_gguf_value *out);
/* The i-th tensor record, in file order; false when i >= n_tensors. */
bool shimmy_gguf_tensor_at(const shimmy_gguf *g, size_t i, shimmy_gguf_tensor *out);

/* ---- chat templates ---------------------------------------------------------------------- */

/* A compiled chat template (Jinja) with the BOS/EOS texts of its model. Immutable. */
typedef struct shimmy_template shimmy_template;

/* Compiles Jinja source (copied). Errors: SHIMMY_ERR_TEMPLATE (line and what is wrong). */
SHIMMY_NODISCARD shimmy_status shimmy_template_new(const char *source, shimmy_template **out,
                                                   shimmy_error *err);
/* A built-in family: "chatml", "llama2", "llama3", "mistral", "phi3", "gemma", "zephyr",
 * "vicuna", "openchat", "deepseek", "command-r". Unknown: SHIMMY_ERR_NOT_FOUND, `where`
 * "template", the message lists the families. */
SHIMMY_NODISCARD shimmy_status shimmy_template_builtin(const char *family, shimmy_template **out,
                                                       shimmy_error *err);
/* The template of a GGUF file (header only): tokenizer.chat_template, or with name non-NULL
 * tokenizer.chat_template.<name>; when the file has none, the built-in family `name`, or for
 * name NULL the family its vocabulary and architecture suggest. BOS/EOS texts come from the
 * file's vocabulary. Errors: those of shimmy_gguf_open, SHIMMY_ERR_NOT_FOUND (`where`
 * "template": no such template in the file nor among the built-ins), _TEMPLATE. */
SHIMMY_NODISCARD shimmy_status shimmy_template_from_gguf(const char *path, const char *name,
                                                         shimmy_template **out, shimmy_error *err);
void shimmy_template_free(shimmy_template *t);
/* Borrowed until shimmy_template_free: the Jinja source; the family it belongs to (a built-in
 * name, or "unknown"); the text that ends a model turn in that family (NULL when unknown); the
 * model's BOS and EOS token texts ("" when not from a model or absent). */
const char *shimmy_template_source(const shimmy_template *t);
const char *shimmy_template_family(const shimmy_template *t);
const char *shimmy_template_end_of_turn(const shimmy_template *t);
const char *shimmy_template_bos(const shimmy_template *t);
const char *shimmy_template_eos(const shimmy_template *t);

typedef struct shimmy_render_options {
    const char *messages_json; /* required: a JSON array of {role, content, tool_calls, ...} */
    const char *tools_json;    /* NULL, or a JSON array: the template's `tools` */
    const char *vars_json;     /* NULL, or a JSON object of more variables (enable_thinking) */
    bool no_generation_prompt; /* false: end with the assistant's turn opened */
    const char *bos, *eos;     /* NULL = the template's own texts */
    bool trim_bos_eos;         /* drop one leading BOS and one trailing EOS text */
    const char *date;          /* "YYYY-MM-DD" for strftime_now (reproducible); NULL = today */
} shimmy_render_options;

typedef struct shimmy_span {
    size_t begin, end; /* byte range [begin, end) */
} shimmy_span;

/* A rendering: text (NUL-terminated after len bytes) and the spans of it that came from
 * message content (sorted, disjoint). Free with shimmy_rendered_free. */
typedef struct shimmy_rendered {
    char *text;
    size_t len;
    shimmy_span *spans;
    size_t n_spans;
} shimmy_rendered;

/* Renders o's conversation. On failure *out is zeroed. Errors: SHIMMY_ERR_INVALID_JSON
 * (`where` "messages", "tools" or "vars"), SHIMMY_ERR_TEMPLATE (what the template raised or
 * where it went wrong), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_template_render(const shimmy_template *t,
                                                      const shimmy_render_options *o,
                                                      shimmy_rendered *out, shimmy_error *err);
/* Frees what a rendering owns and zeroes it; NULL is a no-op. */
void shimmy_rendered_free(shimmy_rendered *r);

/* ---- the registry's full scan report ------------------------------------------------------ */

/* How far a scan has come, for a progress display: folders entered, model files (and adapter
 * folders) found, files read so far; done on the last call. */
typedef struct shimmy_scan_progress {
    uint64_t folders, found, read;
    bool done;
} shimmy_scan_progress;

typedef struct shimmy_scan_options {
    const char *dirs;         /* colon-separated folders scanned as well; NULL = none */
    const char *const *files; /* explicit model files (borrowed for the call) */
    size_t n_files;
    bool no_defaults; /* scan only dirs and files, not the usual places */
    bool ignore_env;  /* read no environment variable (SHIMMY_MODEL_PATHS, HOME, ...) */
    /* Called now and then while the scan runs (at most every 100 ms, from the scan's threads but
     * never two calls at once) and once at the end with done set; NULL = none. p is borrowed for
     * the call. */
    void (*progress)(void *user, const shimmy_scan_progress *p);
    void *progress_user;
} shimmy_scan_options;

/* A scan with options (NULL = the defaults, as shimmy_discover(NULL)). Unreadable places and
 * files are reported (shimmy_model_list_skipped_count), not errors. Owned: shimmy_model_list_free.
 */
SHIMMY_NODISCARD shimmy_status shimmy_scan(const shimmy_scan_options *o, shimmy_model_list **out,
                                           shimmy_error *err);

/* Everything the registry knows of model i; strings borrowed until shimmy_model_list_free. */
typedef struct shimmy_model_entry {
    const char *name, *path;     /* path: the first part of a split model */
    const char *architecture;    /* "" when the file does not say */
    const char *size_label;      /* "30.5M", "7B" */
    const char *quant;           /* "Q4_K_M", "F16", ... */
    const char *template_family; /* "chatml", "llama3", ... or "none" */
    const char *source;          /* where it was found: "dir", "ollama", "hf", ... */
    const char *origin;          /* the folder, manifest or repository it came from */
    uint64_t size;               /* bytes, all parts */
    uint64_t parameters;
    uint32_t ctx_len;  /* trained context, 0 when absent */
    int32_t parts;     /* 1, or N of a split model */
    size_t n_adapters; /* adapters paired with it: shimmy_model_list_paired */
} shimmy_model_entry;

/* false (nothing written) when i is out of range. */
bool shimmy_model_list_entry(const shimmy_model_list *l, size_t i, shimmy_model_entry *out);
/* Index (for shimmy_model_list_adapter) of the k-th adapter paired with model i; SIZE_MAX out
 * of range. */
size_t shimmy_model_list_paired(const shimmy_model_list *l, size_t i, size_t k);
/* Up to max listed names close to name (typos), best first, into out (borrowed strings);
 * returns how many. */
size_t shimmy_model_list_suggestions(const shimmy_model_list *l, const char *name, const char **out,
                                     size_t max);
/* The places searched, in order. */
size_t shimmy_model_list_root_count(const shimmy_model_list *l);
const char *shimmy_model_list_root(const shimmy_model_list *l, size_t i);
/* Files the scan opened. */
size_t shimmy_model_list_files_read(const shimmy_model_list *l);

/* ---- evaluators: a model's forward pass with its own KV cache ------------------------------ */

typedef enum shimmy_kv_type { SHIMMY_KV_F16 = 0, SHIMMY_KV_F32 = 1 } shimmy_kv_type;

/* A LoRA adapter to apply: a GGUF adapter file, a PEFT folder or .safetensors, and its scale. */
typedef struct shimmy_lora {
    const char *path;
    float scale; /* [-100, 100] */
} shimmy_lora;

/* Zero is the default of every field. */
typedef struct shimmy_evaluator_params {
    int32_t ctx_len;  /* [0, 16777216] positions; 0 = shimmy_model_ctx_len */
    int32_t batch;    /* tokens per forward step; 0 = 512 (at most ctx_len) */
    int32_t n_logits; /* positions of one shimmy_evaluator_eval whose logits are kept; 0 = 1 */
    shimmy_kv_type kv;
    int32_t threads;         /* [0, 512]; 0 = shimmy_default_threads() */
    const shimmy_lora *lora; /* adapters (at most 8; borrowed for the call); none = the */
    size_t n_lora;           /*  model spec's adapters */
} shimmy_evaluator_params;

/* Not thread-safe: one thread at a time uses an evaluator (any number of evaluators may share
 * a model). */
typedef struct shimmy_evaluator shimmy_evaluator;

/* Allocates the KV cache and scratch for m (a reference is taken) and opens the adapters,
 * each checked against the model. Owned: shimmy_evaluator_free. Errors: SHIMMY_ERR_INVALID_ARG
 * (a field, `where` names it), _ADAPTER/_IO/_FORMAT (`where` the adapter), _NOMEM. */
SHIMMY_NODISCARD shimmy_status shimmy_evaluator_new(shimmy_model *m,
                                                    const shimmy_evaluator_params *p,
                                                    shimmy_evaluator **out, shimmy_error *err);
void shimmy_evaluator_free(shimmy_evaluator *e);
int32_t shimmy_evaluator_ctx_len(const shimmy_evaluator *e);
int32_t shimmy_evaluator_vocab_size(const shimmy_evaluator *e);
/* Evaluates tokens at positions pos .. pos+n-1 after discarding every cached position >= pos
 * (pos 0 starts from an empty cache), in batches. all_logits keeps the logits of every
 * position (n <= n_logits); otherwise only the last one's. Errors: SHIMMY_ERR_INVALID_ARG (an
 * id outside the vocabulary, pos beyond the cache, n > n_logits), _CONTEXT_EXCEEDED. */
SHIMMY_NODISCARD shimmy_status shimmy_evaluator_eval(shimmy_evaluator *e, const int32_t *tokens,
                                                     size_t n, int32_t pos, bool all_logits,
                                                     shimmy_error *err);
/* The vocab_size logits of the i-th position of the last eval (i = 0 when !all_logits), borrowed
 * until the next eval or generate; NULL when there is no such position. */
const float *shimmy_evaluator_logits(const shimmy_evaluator *e, int32_t i);

/* What shimmy_evaluator_generate reports beyond shimmy_result. */
typedef struct shimmy_eval_output {
    int32_t *ids;          /* in: optional buffer receiving the generated ids */
    size_t ids_cap;        /* in: its capacity (ids beyond it are counted, not stored) */
    shimmy_result result;  /* out */
    int32_t cached_tokens; /* out: prompt tokens whose KV was reused from the last call */
    double ttft_ms;        /* out: from the call to the first generated token */
} shimmy_eval_output;

/* Generates a continuation of prompt ids (n_prompt >= 1) with opts (NULL = the model spec's),
 * reusing the cached prefix the prompt shares with what the evaluator holds. Same options,
 * errors and context budget as shimmy_generate against shimmy_evaluator_ctx_len. out may be
 * NULL; on_token may be NULL. */
SHIMMY_NODISCARD shimmy_status shimmy_evaluator_generate(
    shimmy_evaluator *e, const int32_t *prompt, size_t n_prompt, const shimmy_gen_options *opts,
    shimmy_token_fn on_token, void *user, shimmy_eval_output *out, shimmy_error *err);
/* Bytes of weights the model holds in memory (mapped or converted). */
uint64_t shimmy_model_weight_bytes(const shimmy_model *m);

#ifdef __cplusplus
}
#endif
#endif
