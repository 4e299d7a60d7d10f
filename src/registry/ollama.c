/*
 * The Ollama store: manifests/<registry>/<namespace>/<model>/<tag> are JSON documents whose
 * layers point by digest at blobs/sha256-<hex>. The model layer is a GGUF file; adapter layers
 * are LoRA GGUF files paired with that model by the manifest itself; the template layer is a Go
 * template, kept to classify the chat format when the GGUF carries none.
 */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OLLAMA_MANIFEST_MAX     (1u << 20) /* real manifests are well under 4 KiB */
#define OLLAMA_TEMPLATE_MAX     (64u << 10)
#define OLLAMA_DEFAULT_REGISTRY "registry.ollama.ai"

static void add_skip(reg_root *root, const char *path, const char *fmt, const char *detail) {
    reg_cand *c = reg_root_add(root, path, REG_NAME_STEM, NULL);
    if (!c) return;
    c->kind = REG_KIND_SKIP;
    c->reason = reg_printf(fmt, detail);
}

/* Reads at most max bytes of a small file; NULL when absent, too large or unreadable. */
static char *read_small(const char *path, size_t max, size_t *len) {
    /* O_NONBLOCK: a FIFO planted in the store must not hang the scan */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= max) {
        buf = malloc((size_t)st.st_size + 1);
        ssize_t n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
        if (n < 0) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            *len = (size_t)n;
        }
    }
    close(fd);
    return buf;
}

/* "sha256:<64 hex>" -> "<root>/blobs/sha256-<hex>"; NULL for anything else (no path tricks). */
static char *blob_path(const reg_root *root, const char *digest) {
    if (!digest || strncmp(digest, "sha256:", 7) != 0) return NULL;
    const char *hex = digest + 7;
    if (strlen(hex) != 64) return NULL;
    for (const char *p = hex; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return NULL;
    return reg_printf("%s/blobs/sha256-%s", root->path, hex);
}

static const char *layer_kind(const char *media_type) {
    static const struct {
        const char *media, *kind;
    } kinds[] = {
        {"application/vnd.ollama.image.model", "model"},
        {"application/vnd.ollama.image.adapter", "adapter"},
        {"application/vnd.ollama.image.template", "template"},
    };
    for (size_t i = 0; media_type && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(media_type, kinds[i].media) == 0) return kinds[i].kind;
    return NULL;
}

/* parts = registry, namespace, model, tag. */
static char *ollama_name(char *const parts[4]) {
    char *name;
    if (strcmp(parts[0], OLLAMA_DEFAULT_REGISTRY) != 0)
        name = reg_printf("%s/%s/%s:%s", parts[0], parts[1], parts[2], parts[3]);
    else if (strcmp(parts[1], "library") != 0)
        name = reg_printf("%s/%s:%s", parts[1], parts[2], parts[3]);
    else
        name = reg_printf("%s:%s", parts[2], parts[3]);
    if (name) reg_name_clean(name);
    return name;
}

static void read_manifest(reg_root *root, const char *path, char *const parts[4]) {
    size_t len = 0;
    char *text = read_small(path, OLLAMA_MANIFEST_MAX, &len);
    if (!text) {
        add_skip(root, path, "%s", "Ollama manifest unreadable or larger than 1 MiB");
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    free(text);
    json_t *layers = doc ? json_object_get(doc, "layers") : NULL;
    if (!json_is_array(layers)) {
        add_skip(root, path, "Ollama manifest is not valid: %s",
                 doc ? "no \"layers\" array" : jerr.text);
        json_decref(doc);
        return;
    }
    char *name = ollama_name(parts);
    reg_cand *model = NULL;
    const char *tmpl_blob = NULL;
    size_t i;
    json_t *layer;
    /* The model layer first, so adapters can point at it whatever the layer order. */
    json_array_foreach(layers, i, layer) {
        const char *kind = layer_kind(json_string_value(json_object_get(layer, "mediaType")));
        if (!kind || strcmp(kind, "model") != 0 || model) continue;
        char *blob = blob_path(root, json_string_value(json_object_get(layer, "digest")));
        if (blob && name) model = reg_root_add(root, blob, REG_NAME_FIXED, name);
        free(blob);
    }
    if (!model) {
        add_skip(root, path, "Ollama manifest %s", "has no usable model layer (sha256 digest)");
    } else if (!(model->origin = reg_printf("ollama manifest %s", path))) {
        root->nomem = true;
    }
    json_array_foreach(layers, i, layer) {
        const char *kind = layer_kind(json_string_value(json_object_get(layer, "mediaType")));
        const char *digest = json_string_value(json_object_get(layer, "digest"));
        if (!kind || !model) continue;
        if (strcmp(kind, "template") == 0) {
            tmpl_blob = digest;
        } else if (strcmp(kind, "adapter") == 0) {
            char *blob = blob_path(root, digest);
            reg_cand *a = blob ? reg_root_add(root, blob, REG_NAME_ADAPTER, name) : NULL;
            if (a) a->pair_model = model;
            free(blob);
        }
    }
    if (model && tmpl_blob) {
        char *blob = blob_path(root, tmpl_blob);
        size_t tlen = 0;
        if (blob) model->template_text = read_small(blob, OLLAMA_TEMPLATE_MAX, &tlen);
        free(blob);
    }
    free(name);
    json_decref(doc);
}

/* Manifests sit exactly four levels down: registry/namespace/model/tag. */
static void walk_manifests(reg_root *root, const char *dir, char *parts[4], int depth) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char *sub = reg_printf("%s/%s", dir, de->d_name);
        if (!sub) {
            root->nomem = true;
            break;
        }
        struct stat st;
        if (stat(sub, &st) == 0) {
            parts[depth] = de->d_name;
            if (depth < 3 && S_ISDIR(st.st_mode))
                walk_manifests(root, sub, parts, depth + 1);
            else if (depth == 3 && S_ISREG(st.st_mode))
                read_manifest(root, sub, parts);
        }
        free(sub);
    }
    closedir(d);
}

void reg_walk_ollama(reg_root *root) {
    char *dir = reg_printf("%s/manifests", root->path);
    if (!dir) {
        root->nomem = true;
        return;
    }
    char *parts[4] = {0};
    walk_manifests(root, dir, parts, 0);
    free(dir);
}
