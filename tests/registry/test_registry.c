/*
 * registry: discovery over a realistic home directory built in a temporary folder: plain model
 * folders (nested, split files, adapters, a PEFT folder, vocab-only/corrupt/non-GGUF/projector
 * files, a symlinked duplicate, a name collision), a Hugging Face cache with snapshot symlinks
 * into blobs, an Ollama store with manifests and blobs, LM Studio, ~/Downloads and the
 * SHIMMY_BASE_GGUF / SHIMMY_LORA_GGUF pair. Checks names, metadata, pairing, skips, lookups.
 */
#include "gguf/gguf.h"
#include "registry/registry.h"
#include "test.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

static char home[512];

typedef struct gguf_spec {
    const char *arch;
    const char *type; /* general.type or NULL */
    int file_type;    /* -1: absent */
    const char *tmpl; /* tokenizer.chat_template or NULL */
    int n_tensors;    /* 0: vocab-only */
    const char *name; /* general.name or NULL */
    const char *base; /* general.base_model.0.name or NULL */
    uint32_t ctx;
} gguf_spec;

static const char *at(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *at(const char *fmt, ...) {
    static char bufs[8][1600];
    static int k;
    char rel[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", home, rel);
    return b;
}

static void mkdirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(tmp, 0755);
        *p = '/';
    }
    mkdir(tmp, 0755);
}

static void parent_dirs(const char *path) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    mkdirs(dir);
}

static void put_gguf(const char *path, gguf_spec s) {
    parent_dirs(path);
    gguf_writer *w = NULL;
    shimmy_error err;
    CHECK(gguf_writer_new(&w, &err) == SHIMMY_OK);
    if (s.arch) gguf_writer_set_str(w, "general.architecture", s.arch);
    if (s.type) gguf_writer_set_str(w, "general.type", s.type);
    if (s.name) gguf_writer_set_str(w, "general.name", s.name);
    if (s.base) gguf_writer_set_str(w, "general.base_model.0.name", s.base);
    if (s.file_type >= 0) gguf_writer_set_u32(w, "general.file_type", (uint32_t)s.file_type);
    if (s.tmpl) gguf_writer_set_str(w, "tokenizer.chat_template", s.tmpl);
    if (s.ctx && s.arch) {
        char key[64];
        snprintf(key, sizeof key, "%s.context_length", s.arch);
        gguf_writer_set_u32(w, key, s.ctx);
    }
    float data[64] = {0};
    int64_t ne[2] = {8, 8};
    for (int i = 0; i < s.n_tensors; i++) {
        char name[32];
        snprintf(name, sizeof name, "blk.%d.weight", i);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 2, ne, data);
    }
    CHECK_MSG(gguf_writer_write(w, path, &err) == SHIMMY_OK, "%s", err.message);
    gguf_writer_free(w);
}

static gguf_spec model(const char *arch) {
    return (gguf_spec){.arch = arch, .file_type = 2, .n_tensors = 2, .ctx = 2048};
}

static void put_text(const char *path, const char *text) {
    parent_dirs(path);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static const char *HEX_MODEL = "1111111111111111111111111111111111111111111111111111111111111111";
static const char *HEX_ADAPTER = "2222222222222222222222222222222222222222222222222222222222222222";
static const char *HEX_TEMPLATE =
    "3333333333333333333333333333333333333333333333333333333333333333";

static void put_manifest(const char *path, bool with_adapter) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"schemaVersion\":2,\"layers\":["
             "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"sha256:%s\"},"
             "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\"}"
             "%s%s%s]}",
             HEX_TEMPLATE, HEX_MODEL,
             with_adapter ? ",{\"mediaType\":\"application/vnd.ollama.image.adapter\","
                            "\"digest\":\"sha256:"
                          : "",
             with_adapter ? HEX_ADAPTER : "", with_adapter ? "\"}" : "");
    put_text(path, json);
}

static void build_tree(void) {
    /* ~/models: plain folder */
    put_gguf(at("models/llama-a-Q4_0.gguf"), (gguf_spec){.arch = "llama",
                                                         .file_type = 2,
                                                         .n_tensors = 3,
                                                         .ctx = 4096,
                                                         .tmpl = "{{ '<|im_start|>' + m }}",
                                                         .name = "Llama A"});
    put_gguf(at("models/dup/llama-a-Q4_0.gguf"), model("llama")); /* same stem, other file */
    put_gguf(at("models/sub/deep/x.gguf"), model("qwen2"));
    put_gguf(at("models/1/2/3/4/5/6/7/too-deep.gguf"), model("llama"));
    put_gguf(at("models/big-model-00001-of-00002.gguf"), model("llama"));
    put_gguf(at("models/big-model-00002-of-00002.gguf"),
             (gguf_spec){.file_type = -1, .n_tensors = 4});
    put_gguf(at("models/orphan-00002-of-00003.gguf"), (gguf_spec){.file_type = -1, .n_tensors = 1});
    put_gguf(at("models/vocab.gguf"), (gguf_spec){.arch = "llama", .file_type = -1});
    put_gguf(at("models/mmproj-vision.gguf"),
             (gguf_spec){.arch = "clip", .type = "mmproj", .file_type = -1, .n_tensors = 1});
    put_text(at("models/broken.gguf"), "GGUF\x03\0\0\0\xff\xff\xff\xff\xff\xff\xff\x7f"
                                       "\0\0\0\0\0\0\0\0 padding padding ...");
    put_text(at("models/notes.gguf"), "these are not weights\n");
    put_text(at("models/readme.txt"), "hello\n");
    /* hostile shapes: a FIFO named like a model, a PEFT folder whose config is a FIFO, a
     * symlink loop; none may hang or crash the scan */
    CHECK(mkfifo(at("models/fifo.gguf"), 0644) == 0);
    mkdirs(at("models/peft-fifo"));
    CHECK(mkfifo(at("models/peft-fifo/adapter_config.json"), 0644) == 0);
    put_text(at("models/peft-fifo/adapter_model.safetensors"), "x");
    mkdirs(at("models/loop"));
    CHECK(symlink("..", at("models/loop/up")) == 0);
    /* pairing: one llama base in its folder, plus a qwen2 model that must not confuse it */
    put_gguf(at("models/pair/base.gguf"), model("llama"));
    put_gguf(at("models/pair/other.gguf"), model("qwen2"));
    put_gguf(at("models/pair/ad.gguf"),
             (gguf_spec){.arch = "llama", .type = "adapter", .file_type = -1, .n_tensors = 2});
    /* an adapter next to two llama models: ambiguous */
    put_gguf(at("models/two/m1.gguf"), model("llama"));
    put_gguf(at("models/two/m2.gguf"), model("llama"));
    put_gguf(at("models/two/lonely.gguf"),
             (gguf_spec){.arch = "llama", .type = "adapter", .file_type = -1, .n_tensors = 2});
    /* a PEFT folder naming its base */
    put_text(at("models/peft-x/adapter_config.json"),
             "{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":8.0,"
             "\"base_model_name_or_path\":\"someorg/X-Base\"}");
    put_text(at("models/peft-x/adapter_model.safetensors"), "not read by discovery");
    put_gguf(at("models/xb/xbase.gguf"),
             (gguf_spec){.arch = "llama", .file_type = 7, .n_tensors = 1, .name = "x-base"});
    /* a later root reaching llama-a through a symlink: a duplicate */
    mkdirs(at("Downloads"));
    CHECK(symlink(at("models/llama-a-Q4_0.gguf"), at("Downloads/alias.gguf")) == 0);
    put_gguf(at("extra/extra-model.gguf"), model("llama"));

    /* Hugging Face cache */
    const char *repo = ".cache/huggingface/hub/models--Bartowski--Llama-3.2-1B-Instruct-GGUF";
    put_gguf(at("%s/blobs/aaaa", repo),
             (gguf_spec){.arch = "llama",
                         .file_type = 15,
                         .n_tensors = 2,
                         .ctx = 131072,
                         .tmpl = "<|start_header_id|>user<|end_header_id|>"});
    mkdirs(at("%s/snapshots/rev1", repo));
    CHECK(symlink("../../blobs/aaaa",
                  at("%s/snapshots/rev1/Llama-3.2-1B-Instruct-Q4_K_M.gguf", repo)) == 0);
    put_text(at("%s/refs/main", repo), "rev1\n");
    /* an older revision with another blob under the same file name (sorts before rev1) */
    put_gguf(at("%s/blobs/bbbb", repo),
             (gguf_spec){.arch = "llama", .file_type = 15, .n_tensors = 1});
    mkdirs(at("%s/snapshots/0old", repo));
    CHECK(symlink("../../blobs/bbbb",
                  at("%s/snapshots/0old/Llama-3.2-1B-Instruct-Q4_K_M.gguf", repo)) == 0);

    /* Ollama store: two tags sharing a blob, a namespaced model, a bad manifest */
    put_gguf(at(".ollama/models/blobs/sha256-%s", HEX_MODEL), model("llama"));
    put_gguf(at(".ollama/models/blobs/sha256-%s", HEX_ADAPTER),
             (gguf_spec){.arch = "llama", .type = "adapter", .file_type = -1, .n_tensors = 2});
    put_text(at(".ollama/models/blobs/sha256-%s", HEX_TEMPLATE),
             "{{ if .System }}<|start_header_id|>system<|end_header_id|>{{ end }}");
    put_manifest(at(".ollama/models/manifests/registry.ollama.ai/library/llama3.2/3b"), true);
    put_manifest(at(".ollama/models/manifests/registry.ollama.ai/library/llama3.2/latest"), true);
    put_gguf(at(".ollama/models/blobs/sha256-%064d", 4), model("qwen2"));
    char json[512];
    snprintf(json, sizeof json,
             "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
             "\"digest\":\"sha256:%064d\"}]}",
             4);
    put_text(at(".ollama/models/manifests/registry.ollama.ai/someone/tool/v1"), json);
    put_text(at(".ollama/models/manifests/registry.ollama.ai/library/bad/1"), "{not json");
    /* hostile manifests: a digest that tries to leave blobs/, layers of the wrong type */
    put_text(at(".ollama/models/manifests/registry.ollama.ai/library/evil/1"),
             "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\","
             "\"digest\":\"sha256:../../../../models/llama-a-Q4_0.gguf\"}]}");
    put_text(at(".ollama/models/manifests/registry.ollama.ai/library/evil/2"),
             "{\"layers\":{\"mediaType\":1}}");
    put_text(at(".ollama/models/manifests/registry.ollama.ai/library/evil/3"),
             "{\"layers\":[1,\"x\",null,{\"mediaType\":\"application/vnd.ollama.image.model\","
             "\"digest\":7}]}");

    /* LM Studio and Downloads */
    put_gguf(at(".lmstudio/models/lmstudio-community/Qwen-GGUF/qwen-x-Q8_0.gguf"), model("qwen2"));
    put_gguf(at("Downloads/dl.gguf"), model("llama"));
    put_gguf(at("Downloads/nested/ignored.gguf"), model("llama"));

    /* SHIMMY_BASE_GGUF / SHIMMY_LORA_GGUF */
    put_gguf(at("envdir/envbase.gguf"), model("qwen2"));
    put_gguf(at("envlora/envlora.gguf"),
             (gguf_spec){.arch = "qwen2", .type = "adapter", .file_type = -1, .n_tensors = 2});
}

static registry *scan(uint32_t disable) {
    registry_options o = {0};
    o.home = home;
    o.cwd = "/nonexistent";
    o.dirs = at("extra");
    o.disable = disable;
    registry *r = NULL;
    shimmy_error err;
    CHECK_MSG(registry_scan(&o, &r, &err) == SHIMMY_OK, "%s", err.message);
    return r;
}

static const char *skip_reason(const registry *r, const char *path) {
    for (size_t i = 0; i < registry_skipped_count(r); i++)
        if (strcmp(registry_skipped_at(r, i)->path, path) == 0)
            return registry_skipped_at(r, i)->reason;
    return NULL;
}

static const registry_adapter *adapter_at_path(const registry *r, const char *path) {
    return registry_find_adapter(r, path);
}

static char warnings[4096];
static void capture(core_log_level level, const char *msg, void *user) {
    (void)user;
    if (level >= CORE_LOG_WARN) strncat(warnings, msg, sizeof warnings - strlen(warnings) - 1);
}

static void check_models(registry *r) {
    const registry_entry *e = registry_find(r, "llama-a-q4_0");
    CHECK(e != NULL);
    /* the file in models/dup sorts first by path within the same root: it keeps the plain
     * name; the other gets -2 */
    CHECK(e && strstr(e->path, "/models/dup/llama-a-Q4_0.gguf"));
    e = registry_find(r, "llama-a-q4_0-2");
    CHECK(e && strstr(e->path, "/models/llama-a-Q4_0.gguf"));
    if (e) {
        CHECK_STR(e->architecture, "llama");
        CHECK_STR(e->quant, "Q4_0");
        CHECK_EQ_INT(e->context_length, 4096);
        CHECK_STR(e->template, "chatml");
        CHECK_EQ_INT(e->n_params, 3 * 64);
        CHECK_STR(e->size_label, "192");
        CHECK_STR(e->display, "Llama A");
        CHECK_EQ_INT(e->source, REGISTRY_SOURCE_DIR);
    }
    CHECK(registry_find(r, "LLAMA-A-Q4_0") == registry_find(r, "llama-a-q4_0"));
    CHECK(registry_find(r, "alias") == NULL);       /* a duplicate has no name of its own */
    CHECK(registry_find(r, "x") != NULL);           /* nested two folders down */
    CHECK(registry_find(r, "too-deep") == NULL);    /* beyond the depth limit */
    CHECK(registry_find(r, "extra-model") != NULL); /* --model-dirs */
    e = registry_find(r, "big-model");
    CHECK(e != NULL);
    if (e) {
        struct stat a, b;
        stat(at("models/big-model-00001-of-00002.gguf"), &a);
        stat(at("models/big-model-00002-of-00002.gguf"), &b);
        CHECK_EQ_INT(e->n_parts, 2);
        CHECK_EQ_INT(e->size, (uint64_t)a.st_size + (uint64_t)b.st_size);
        CHECK(strstr(e->path, "-00001-of-00002.gguf") != NULL);
        CHECK_EQ_INT(e->n_params, 2 * 64 + 4 * 64);
    }
    e = registry_find(r, "bartowski/llama-3.2-1b-instruct-gguf:q4_k_m");
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ_INT(e->source, REGISTRY_SOURCE_HF);
        CHECK(strstr(e->path, "/snapshots/rev1/Llama-3.2-1B-Instruct-Q4_K_M.gguf") != NULL);
        CHECK_STR(e->template, "llama3");
        CHECK_STR(e->quant, "Q4_K_M");
        CHECK_EQ_INT(e->context_length, 131072);
        /* the current revision (refs/main) keeps the plain name, the old one gets -2 */
        const registry_entry *old =
            registry_find(r, "bartowski/llama-3.2-1b-instruct-gguf:q4_k_m-2");
        CHECK(old && strstr(old->path, "/snapshots/0old/"));
        /* the blob is the same file as the snapshot link */
        CHECK(registry_find(r, at(".cache/huggingface/hub/models--Bartowski--Llama-3.2-1B-"
                                  "Instruct-GGUF/blobs/aaaa")) == e);
    }
    e = registry_find(r, "llama3.2:3b");
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ_INT(e->source, REGISTRY_SOURCE_OLLAMA);
        CHECK_STR(e->template, "llama3"); /* from the template layer: the GGUF has none */
        CHECK(registry_find(r, "llama3.2:latest") == e); /* another tag of the same blob */
        CHECK(registry_find(r, "llama3.2") == e);        /* no tag means :latest */
        CHECK_EQ_INT(e->n_adapters, 1);
        if (e->n_adapters) CHECK_STR(e->adapters[0]->name, "llama3.2:3b-adapter");
    }
    CHECK(registry_find(r, "someone/tool:v1") != NULL);
    e = registry_find(r, "qwen-x-q8_0");
    CHECK(e && e->source == REGISTRY_SOURCE_LMSTUDIO);
    CHECK(registry_find(r, "dl") != NULL);
    CHECK(registry_find(r, "ignored") == NULL); /* ~/Downloads is top level only */
    e = registry_find(r, "envbase");
    CHECK(e && e->source == REGISTRY_SOURCE_ENV);
    CHECK(registry_find(r, "no-such-model") == NULL);
    /* sorted by name, all unique and lowercase */
    for (size_t i = 0; i < registry_count(r); i++) {
        const char *n = registry_entry_at(r, i)->name;
        if (i) CHECK(strcmp(registry_entry_at(r, i - 1)->name, n) < 0);
        for (const char *p = n; *p; p++) CHECK(!(*p >= 'A' && *p <= 'Z'));
    }
    const char *close[3];
    size_t n = registry_suggest(r, "llama3.2:3", close, 3);
    CHECK(n >= 1 && strcmp(close[0], "llama3.2:3b") == 0);
}

static void check_adapters(registry *r) {
    const registry_adapter *a = adapter_at_path(r, at("models/pair/ad.gguf"));
    CHECK(a && a->base && strcmp(a->base->name, "base") == 0);
    if (a) CHECK(strstr(a->reason, "only llama model in its folder") != NULL);
    const registry_entry *base = registry_find(r, "base");
    CHECK(base && base->n_adapters == 1 && base->adapters[0] == a);
    a = adapter_at_path(r, at("models/two/lonely.gguf"));
    CHECK(a && a->base == NULL);
    if (a) CHECK_MSG(strstr(a->reason, "2 llama models") != NULL, "%s", a->reason);
    a = adapter_at_path(r, at("models/peft-x"));
    CHECK(a && a->format == REGISTRY_ADAPTER_PEFT);
    if (a) {
        CHECK_EQ_INT(a->rank, 4);
        CHECK_NEAR(a->alpha, 8.0, 1e-6);
        CHECK(a->base && strcmp(a->base->name, "xbase") == 0); /* general.name "x-base" */
    }
    a = registry_find_adapter(r, "envlora");
    CHECK(a && a->base && strcmp(a->base->name, "envbase") == 0);
    if (a) CHECK(strstr(a->reason, "SHIMMY_LORA_GGUF") != NULL);
    a = registry_find_adapter(r, "llama3.2:3b-adapter");
    CHECK(a && a->base && strcmp(a->base->name, "llama3.2:3b") == 0);
}

static void check_skipped(registry *r) {
    const char *why;
    CHECK((why = skip_reason(r, at("models/vocab.gguf"))) && strstr(why, "vocab-only"));
    CHECK((why = skip_reason(r, at("models/mmproj-vision.gguf"))) && strstr(why, "projector"));
    CHECK((why = skip_reason(r, at("models/broken.gguf"))) && strstr(why, "corrupt"));
    CHECK((why = skip_reason(r, at("models/notes.gguf"))) && strstr(why, "not a GGUF"));
    CHECK((why = skip_reason(r, at("models/orphan-00002-of-00003.gguf"))) &&
          strstr(why, "first part is missing"));
    CHECK((why = skip_reason(r, at("Downloads/alias.gguf"))) && strstr(why, "same file as"));
    CHECK((why = skip_reason(r, at(".ollama/models/manifests/registry.ollama.ai/library/bad/1"))) &&
          strstr(why, "not valid"));
    CHECK(skip_reason(r, at("models/readme.txt")) == NULL); /* not a candidate at all */
    const char *evil = ".ollama/models/manifests/registry.ollama.ai/library/evil";
    CHECK((why = skip_reason(r, at("%s/1", evil))) && strstr(why, "no usable model layer"));
    CHECK((why = skip_reason(r, at("%s/2", evil))) && strstr(why, "not valid"));
    CHECK((why = skip_reason(r, at("%s/3", evil))) && strstr(why, "no usable model layer"));
    CHECK(registry_find(r, "evil:1") == NULL);
    CHECK((why = skip_reason(r, at("models/fifo.gguf"))) && strstr(why, "not a regular file"));
    CHECK((why = skip_reason(r, at("models/peft-fifo"))) && strstr(why, "adapter_config.json"));
    CHECK(strstr(warnings, "broken.gguf") != NULL); /* corrupt files are warned about */
}

int main(void) {
    if (!test_tmpdir(home, sizeof home)) test_skip("no temporary directory");
    build_tree();
    setenv("SHIMMY_BASE_GGUF", at("envdir/envbase.gguf"), 1);
    setenv("SHIMMY_LORA_GGUF", at("envlora/envlora.gguf"), 1);
    unsetenv("SHIMMY_MODEL_PATHS");
    unsetenv("HF_HOME");
    unsetenv("HF_HUB_CACHE");
    unsetenv("OLLAMA_MODELS");
    static const char *const offs[] = {"SHIMMY_NO_ENV",       "SHIMMY_NO_OLLAMA",
                                       "SHIMMY_NO_HF",        "SHIMMY_NO_LMSTUDIO",
                                       "SHIMMY_NO_DOWNLOADS", "SHIMMY_NO_HOME"};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) unsetenv(offs[i]);
    core_log_set_sink(capture, NULL, CORE_LOG_WARN);

    registry *r = scan(0);
    check_models(r);
    check_adapters(r);
    check_skipped(r);

    /* the same tree gives the same names */
    registry *again = scan(0);
    CHECK_EQ_INT(registry_count(again), registry_count(r));
    for (size_t i = 0; i < registry_count(r) && i < registry_count(again); i++)
        CHECK_STR(registry_entry_at(again, i)->name, registry_entry_at(r, i)->name);
    registry_free(again);

    /* references keep a registry alive */
    registry *ref = registry_ref(r);
    registry_free(r);
    CHECK(registry_find(ref, "base") != NULL);
    registry_free(ref);

    /* a --model file that is also SHIMMY_BASE_GGUF is listed once and stays the LoRA's base */
    const char *files[1] = {at("envdir/envbase.gguf")};
    registry_options fo = {.files = files, .n_files = 1, .home = home, .cwd = "/nonexistent"};
    CHECK(registry_scan(&fo, &r, NULL) == SHIMMY_OK);
    const registry_adapter *la = registry_find_adapter(r, "envlora");
    CHECK(la && la->base && strcmp(la->base->name, "envbase") == 0);
    CHECK(registry_find(r, "envbase-2") == NULL);
    registry_free(r);

    /* sources can be switched off by option and by environment */
    r = scan(REGISTRY_NO_HF | REGISTRY_NO_HOME);
    CHECK(registry_find(r, "bartowski/llama-3.2-1b-instruct-gguf:q4_k_m") == NULL);
    CHECK(registry_find(r, "base") == NULL);
    CHECK(registry_find(r, "llama3.2:3b") != NULL);
    registry_free(r);
    setenv("SHIMMY_NO_OLLAMA", "1", 1);
    r = scan(0);
    CHECK(registry_find(r, "llama3.2:3b") == NULL);
    CHECK(registry_find(r, "base") != NULL);
    registry_free(r);
    unsetenv("SHIMMY_NO_OLLAMA");

    /* the shared test models, when present, are all found with their real metadata */
    char buf[1024];
    const char *models = test_data_path("models", buf, sizeof buf);
    if (models) {
        registry_options o = {.dirs = models, .ignore_env = true, .disable = REGISTRY_NO_DEFAULTS};
        CHECK(registry_scan(&o, &r, NULL) == SHIMMY_OK);
        const registry_entry *e = registry_find(r, "docs-llama-30m-q4_k_m");
        CHECK(e != NULL);
        if (e) {
            CHECK_STR(e->quant, "Q4_K_M");
            CHECK_EQ_INT(e->context_length, 1024);
            CHECK_STR(e->template, "llama2");
            CHECK_STR(e->size_label, "30.5M"); /* README: 30.5 M parameters */
        }
        e = registry_find(r, "tiny-qwen2-q4_0");
        CHECK(e && strcmp(e->template, "chatml") == 0 && strcmp(e->architecture, "qwen2") == 0);
        registry_free(r);
    }
    test_rm_rf(home);
    return test_finish("registry");
}
