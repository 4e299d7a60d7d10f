/* Fixture writers shared by the lora tests: small GGUF adapters (through the gguf writer), PEFT
 * folders (a config derived from the shared test data plus a hand-written safetensors file), and
 * deterministic matrix contents. Header-only because each test_*.c is its own program. */
#ifndef LORA_FIXTURES_H
#define LORA_FIXTURES_H

#include "gguf/gguf.h"
#include "lora/lora.h"
#include "quant/quant.h"
#include "test.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#define FX_LLAMA "models/tiny-llama-spm-F32.gguf"
#define FX_QWEN2 "models/tiny-qwen2-Q4_0.gguf"
#define FX_PEFT  "base_model.model.model.layers."

/* Value k of fixture matrix `seed`: small, varied, exactly representable in F16/BF16 only by
 * accident (so the roundings under test actually round). */
static inline float fx_value(unsigned seed, int64_t k) {
    uint64_t h = (uint64_t)seed * 0x9E3779B97F4A7C15ull + (uint64_t)k * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    return (float)((double)(h >> 11) / 9007199254740992.0 - 0.5) * 0.6f;
}

/* Bytes of `rows` rows of `cols` values of `type` built from fx_value(seed); caller frees. */
static inline void *fx_matrix(uint32_t type, int64_t cols, int64_t rows, unsigned seed,
                              size_t *nbytes) {
    uint64_t rb = 0;
    if (type == 27 /* I64, for refusal tests */)
        rb = (uint64_t)cols * 8;
    else if (!gguf_row_bytes(type, cols, &rb))
        return NULL;
    *nbytes = (size_t)(rb * (uint64_t)rows);
    unsigned char *out = calloc(*nbytes ? *nbytes : 1, 1);
    float *row = malloc((size_t)cols * sizeof(float));
    const quant_traits *qt = quant_get(type);
    for (int64_t r = 0; r < rows && type != 27; r++) {
        for (int64_t c = 0; c < cols; c++) row[c] = fx_value(seed, r * cols + c);
        qt->quantize(row, out + (size_t)(r * (int64_t)rb), cols);
    }
    free(row);
    return out;
}

/* ---- GGUF adapters ---- */

typedef struct fx_tensor {
    const char *name;
    uint32_t type;
    int64_t ne0, ne1; /* ne1 == 0: a 1-D tensor */
} fx_tensor;

typedef struct fx_gguf {
    const char *arch, *gtype, *atype; /* NULL = key omitted */
    bool has_alpha;
    float alpha;
} fx_gguf;

static inline bool fx_write_gguf(const char *path, const fx_gguf *m, const fx_tensor *ts,
                                 size_t n) {
    gguf_writer *w;
    if (gguf_writer_new(&w, NULL) != SHIMMY_OK) return false;
    if (m->arch) gguf_writer_set_str(w, "general.architecture", m->arch);
    if (m->gtype) gguf_writer_set_str(w, "general.type", m->gtype);
    if (m->atype) gguf_writer_set_str(w, "adapter.type", m->atype);
    if (m->has_alpha) gguf_writer_set_f32(w, "adapter.lora.alpha", m->alpha);
    for (size_t i = 0; i < n; i++) {
        size_t nb;
        int64_t ne[2] = {ts[i].ne0, ts[i].ne1 ? ts[i].ne1 : 1};
        void *d = fx_matrix(ts[i].type, ne[0], ne[1], (unsigned)i + 1, &nb);
        gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].ne1 ? 2 : 1, ne, d);
        free(d);
    }
    shimmy_error err;
    bool ok = gguf_writer_write(w, path, &err) == SHIMMY_OK;
    if (!ok) fprintf(stderr, "fixture %s: %s\n", path, err.message);
    gguf_writer_free(w);
    return ok;
}

/* ---- PEFT folders ---- */

typedef struct fx_st {
    const char *name;
    const char *dtype; /* "F32", "F16", "BF16", "I64" */
    int64_t rows, cols;
    const float *values; /* NULL = fx_value(seed) */
} fx_st;

static inline uint32_t fx_dtype(const char *d) {
    return !strcmp(d, "F16")    ? GGUF_T_F16
           : !strcmp(d, "BF16") ? GGUF_T_BF16
           : !strcmp(d, "I64")  ? 27
                                : GGUF_T_F32;
}

static inline bool fx_write_st(const char *path, const fx_st *ts, size_t n) {
    json_t *hdr = json_object();
    size_t off = 0, total = 0;
    void **blobs = calloc(n ? n : 1, sizeof *blobs);
    size_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    for (size_t i = 0; i < n; i++) {
        uint32_t type = fx_dtype(ts[i].dtype);
        if (ts[i].values) {
            sizes[i] = (size_t)(ts[i].rows * ts[i].cols) * (type == GGUF_T_F32 ? 4 : 2);
            blobs[i] = malloc(sizes[i] ? sizes[i] : 1);
            const quant_traits *qt = quant_get(type);
            for (int64_t r = 0; r < ts[i].rows; r++)
                qt->quantize(ts[i].values + r * ts[i].cols,
                             (char *)blobs[i] + (size_t)r * (sizes[i] / (size_t)ts[i].rows),
                             ts[i].cols);
        } else {
            blobs[i] = fx_matrix(type, ts[i].cols, ts[i].rows, (unsigned)i + 7, &sizes[i]);
        }
        json_object_set_new(hdr, ts[i].name,
                            json_pack("{s:s, s:[I,I], s:[I,I]}", "dtype", ts[i].dtype, "shape",
                                      (json_int_t)ts[i].rows, (json_int_t)ts[i].cols,
                                      "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + sizes[i])));
        off += sizes[i];
    }
    total = off;
    char *json = json_dumps(hdr, JSON_COMPACT);
    /* trailing spaces (legal) put the data at 2 mod 4: kernels must cope with unaligned rows,
     * as they meet in real files, and UBSan checks that they do */
    size_t jl = strlen(json), pad = (4 + 2 - (8 + jl) % 4) % 4;
    char *text = malloc(jl + pad + 1);
    memcpy(text, json, jl);
    memset(text + jl, ' ', pad);
    text[jl + pad] = '\0';
    free(json);
    uint64_t hl = jl + pad;
    FILE *fp = fopen(path, "wb");
    bool ok = fp && fwrite(&hl, 8, 1, fp) == 1 && fwrite(text, 1, hl, fp) == hl;
    for (size_t i = 0; ok && i < n; i++) ok = fwrite(blobs[i], 1, sizes[i], fp) == sizes[i];
    if (fp) ok = (fclose(fp) == 0) && ok;
    (void)total;
    for (size_t i = 0; i < n; i++) free(blobs[i]);
    free(blobs);
    free(sizes);
    free(text);
    json_decref(hdr);
    return ok;
}

/* Writes dir/adapter_config.json: the shared r4 llama config with `overrides` merged in (a JSON
 * object text; "" = none), or `raw` verbatim when non-NULL. */
static inline bool fx_write_config(const char *dir, const char *overrides, const char *raw) {
    char path[1024], src[600];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    if (raw) {
        FILE *fp = fopen(path, "wb");
        bool ok = fp && fputs(raw, fp) >= 0;
        if (fp) fclose(fp);
        return ok;
    }
    test_require_data("lora/peft-tiny-llama-spm-r4/adapter_config.json", src, sizeof src);
    json_t *cfg = json_load_file(src, 0, NULL);
    json_t *ov = overrides[0] ? json_loads(overrides, 0, NULL) : json_object();
    if (!cfg || !ov) {
        json_decref(cfg);
        json_decref(ov);
        return false;
    }
    json_object_update(cfg, ov);
    bool ok = json_dump_file(cfg, path, JSON_INDENT(2)) == 0;
    json_decref(cfg);
    json_decref(ov);
    return ok;
}

/* A PEFT folder dir/<name>/ with a config and tensors; returns its path in buf. */
static inline const char *fx_peft(const char *dir, const char *name, const char *overrides,
                                  const fx_st *ts, size_t n, char *buf, size_t cap) {
    char st[1100];
    snprintf(buf, cap, "%s/%s", dir, name);
    if (mkdir(buf, 0755) != 0) return NULL;
    snprintf(st, sizeof st, "%s/adapter_model.safetensors", buf);
    if (!fx_write_config(buf, overrides, NULL) || !fx_write_st(st, ts, n)) return NULL;
    return buf;
}

/* Opens a base model from the shared test data (skips the test when it is absent). */
static inline gguf_file *fx_base(const char *rel) {
    char path[600];
    test_require_data(rel, path, sizeof path);
    gguf_file *f = NULL;
    shimmy_error err;
    if (gguf_open(path, &f, &err) != SHIMMY_OK) fprintf(stderr, "%s\n", err.message);
    return f;
}

#endif
