/*
 * libFuzzer target: a whole Hugging Face PEFT adapter (adapter_config.json + the safetensors
 * file) opened against a real base model, as `shimmy serve --lora` or a request's "lora" does
 * with a folder someone downloaded: the config parser, the safetensors reader, the tensor-name
 * mapping (layers, modules, lora_A/lora_B) and the validation against the base.
 *
 * Input: byte 0 picks the base (even: tiny-llama-spm-F32, odd: tiny-qwen2-Q4_0), then the
 * config JSON, then the separator "\n@@safetensors@@\n", then the safetensors bytes (no
 * separator: the safetensors file is empty). Both files are written to a private temporary
 * folder, since the adapter reader takes a path.
 *
 * Checked: refused with a message and nothing returned, or an adapter whose pairs match the
 * base weights' shapes, with a rank within the config's r, alpha as configured and tensor bytes
 * that are all readable.
 */
#include "gguf/gguf.h"
#include "lora/lora.h"

#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gguf_file *bases[2];
static char dir[4096], cfg_path[4200], st_path[4200];
static volatile uint64_t sink;

static void cleanup(void) {
    unlink(cfg_path);
    unlink(st_path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *root = getenv("SHIMMY_TESTDATA") ? getenv("SHIMMY_TESTDATA") : SHIMMY_FUZZ_TESTDATA;
    static const char *const files[2] = {"tiny-llama-spm-F32.gguf", "tiny-qwen2-Q4_0.gguf"};
    for (int i = 0; i < 2; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/models/%s", root, files[i]);
        shimmy_error err;
        if (gguf_open(path, &bases[i], &err) != SHIMMY_OK) {
            fprintf(stderr, "fuzz_lora_peft: %s (set SHIMMY_TESTDATA)\n", err.message);
            exit(77);
        }
    }
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/shimmy-fuzz-peft-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("fuzz_lora_peft: mkdtemp");
        exit(1);
    }
    snprintf(cfg_path, sizeof cfg_path, "%s/adapter_config.json", dir);
    snprintf(st_path, sizeof st_path, "%s/adapter_model.safetensors", dir);
    atexit(cleanup);
    return 0;
}

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror("fuzz_lora_peft: write");
        abort();
    }
}

static const char SEP[] = "\n@@safetensors@@\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const gguf_file *base = bases[data[0] & 1];
    const uint8_t *cfg = data + 1, *st = NULL;
    size_t cfg_len = size - 1, st_len = 0;
    const uint8_t *sep = memmem(cfg, cfg_len, SEP, sizeof SEP - 1);
    if (sep) {
        st = sep + sizeof SEP - 1;
        st_len = (size_t)(data + size - st);
        cfg_len = (size_t)(sep - cfg);
    }
    write_file(cfg_path, cfg, cfg_len);
    write_file(st_path, st, st_len);

    lora_adapter *a = NULL;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (lora_adapter_open(dir, base, &a, &err) != SHIMMY_OK) {
        FUZZ_REQUIRE(!a && err.message[0]);
        return 0;
    }
    FUZZ_REQUIRE(lora_adapter_format(a) == LORA_FORMAT_PEFT);
    for (size_t i = 0; i < lora_adapter_n_pairs(a); i++) {
        const lora_pair *p = lora_adapter_pair_at(a, i);
        const gguf_tensor *w = gguf_find_tensor(base, p->weight);
        FUZZ_REQUIRE(w && w->ne[0] == p->n_in && w->ne[1] == p->n_out && p->rank > 0);
        FUZZ_REQUIRE(i == 0 || strcmp(lora_adapter_pair_at(a, i - 1)->weight, p->weight) < 0);
        const uint8_t *pa = p->a, *pb = p->b;
        uint64_t h = 0;
        for (size_t k = 0; k < (size_t)p->rank * p->a_row_bytes; k++) h = h * 31 + pa[k];
        for (size_t k = 0; k < (size_t)p->n_out * p->b_row_bytes; k++) h = h * 31 + pb[k];
        sink += h;
    }
    lora_adapter_unref(a);
    return 0;
}
