/* lora: the safetensors reader on valid files and on hostile ones (every rejection is a clear
 * error naming the file and the problem; ASan watches for out-of-bounds reads and leaks). */
#include "lora/lora.h"
#include "test.h"

#include <stdint.h>

/* A file image: 8-byte length (or `hlen_override` when non-zero), header, data. */
static unsigned char *image(const char *header, const void *data, size_t data_len,
                            uint64_t hlen_override, size_t *len) {
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    unsigned char *b = malloc(*len ? *len : 1);
    uint64_t h = hlen_override ? hlen_override : hl;
    memcpy(b, &h, 8);
    memcpy(b + 8, header, hl);
    if (data_len) memcpy(b + 8 + hl, data, data_len);
    return b;
}

/* Opens an image that must be refused with `status` and a message containing `needle`. */
static void expect_bad(const char *label, const char *header, size_t data_len,
                       uint64_t hlen_override, shimmy_status status, const char *needle) {
    unsigned char data[256] = {0};
    size_t len;
    unsigned char *b = image(header, data, data_len, hlen_override, &len);
    lora_st *st = (lora_st *)1;
    shimmy_error err;
    shimmy_error_clear(&err);
    shimmy_status rc = lora_st_open_memory(b, len, label, &st, &err);
    CHECK_MSG(rc == status, "%s: got %s (%s)", label, shimmy_status_name(rc), err.message);
    CHECK_MSG(st == NULL, "%s: output not cleared", label);
    CHECK_MSG(strstr(err.message, needle) != NULL, "%s: message '%s' lacks '%s'", label,
              err.message, needle);
    CHECK_MSG(strstr(err.message, label) != NULL, "%s: message '%s' does not name the file", label,
              err.message);
    free(b);
}

static void test_valid(void) {
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[2] = {0x3c00, 0xc000}; /* F16 1.0, -2.0 */
    unsigned char data[28];
    memcpy(data, h, 4);
    memcpy(data + 4, a, 24);
    /* names out of order, extents in another order, padding spaces after the JSON */
    const char *hdr = "{\"zeta\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[4,28]},"
                      "\"__metadata__\":{\"format\":\"pt\"},"
                      "\"alpha\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}   ";
    size_t len;
    unsigned char *b = image(hdr, data, sizeof data, 0, &len);
    lora_st *st = NULL;
    shimmy_error err;
    CHECK(lora_st_open_memory(b, len, "valid.safetensors", &st, &err) == SHIMMY_OK);
    if (st) {
        CHECK_EQ_INT(lora_st_n_tensors(st), 2);
        CHECK_STR(lora_st_tensor_at(st, 0)->name, "alpha");
        CHECK_STR(lora_st_tensor_at(st, 1)->name, "zeta");
        const lora_st_tensor *z = lora_st_find(st, "zeta");
        CHECK(z && z->type == GGUF_T_F32 && z->n_dims == 2 && z->shape[0] == 2 &&
              z->shape[1] == 3 && z->nbytes == 24);
        if (z) {
            float v[6];
            memcpy(v, z->data, 24);
            CHECK(v[0] == 1 && v[5] == 6);
            CHECK((const unsigned char *)z->data == b + 8 + strlen(hdr) + 4);
        }
        const lora_st_tensor *al = lora_st_find(st, "alpha");
        CHECK(al && al->type == GGUF_T_F16 && al->n_dims == 1);
        if (al) {
            uint16_t hv[2];
            memcpy(hv, al->data, 4);
            CHECK(quant_f16_to_f32(hv[1]) == -2.0f);
        }
        CHECK(lora_st_find(st, "beta") == NULL);
        CHECK_STR(lora_st_metadata(st, "format"), "pt");
        CHECK(lora_st_metadata(st, "nope") == NULL);
        lora_st_close(st);
    }
    free(b);

    /* an empty file body: no tensors at all is legal */
    b = image("{}", NULL, 0, 0, &len);
    CHECK(lora_st_open_memory(b, len, "empty", &st, &err) == SHIMMY_OK);
    if (st) CHECK_EQ_INT(lora_st_n_tensors(st), 0);
    lora_st_close(st);
    free(b);

    /* a zero-element tensor occupies no bytes and may sit anywhere in the order */
    b = image("{\"e\":{\"dtype\":\"BF16\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
              "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
              data, 4, 0, &len);
    CHECK(lora_st_open_memory(b, len, "zero", &st, &err) == SHIMMY_OK);
    lora_st_close(st);
    free(b);
}

static void test_hostile(void) {
    const shimmy_status F = SHIMMY_ERR_FORMAT;
    /* too short for the length field */
    lora_st *st;
    shimmy_error err;
    CHECK(lora_st_open_memory("abc", 3, "short", &st, &err) == F && !st);
    CHECK(strstr(err.message, "too short") != NULL);
    expect_bad("liar-len", "{}", 0, 1000, F, "runs past the end");
    expect_bad("huge-len", "{}", 0, UINT64_MAX - 3, F, "runs past the end");
    expect_bad("not-object", "[1,2]", 0, 0, F, "does not start with a JSON object");
    expect_bad("bad-json", "{\"a\":{\"dtype\":\"F32\",", 0, 0, F, "not valid JSON");
    expect_bad("trailing-garbage", "{} x", 0, 0, F, "not valid JSON");
    expect_bad("dup",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, 0, F, "duplicate");
    expect_bad("dtype", "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, 0,
               SHIMMY_ERR_UNSUPPORTED, "dtype 'I64'");
    expect_bad("dtype-type", "{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,8]}}", 8, 0, F,
               "needs \"dtype\"");
    expect_bad("size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, F,
               "dtype and shape give");
    expect_bad("f16-size", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
               16, 0, F, "dtype and shape give");
    expect_bad("past-end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
               0, F, "past the data section");
    expect_bad("overlap",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, 0, F, "overlap");
    expect_bad("hole",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, 0, F, "hole");
    expect_bad("trailing", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
               0, F, "follow the last tensor");
    expect_bad("neg-shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               0, F, "non-negative");
    expect_bad("neg-offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
               0, F, "non-negative");
    expect_bad("reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, 0,
               F, "end before they begin");
    expect_bad("three-offsets",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}", 4, 0, F,
               "[begin, end]");
    expect_bad("overflow",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
               "\"data_offsets\":[0,4]}}",
               4, 0, F, "overflows");
    expect_bad("bytes-overflow",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
               "\"data_offsets\":[0,4]}}",
               4, 0, F, "overflows");
    expect_bad("dims",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
               "\"data_offsets\":[0,4]}}",
               4, 0, F, "more than 8 dimensions");
    expect_bad("meta", "{\"__metadata__\":{\"k\":1}}", 0, 0, F, "not a string");
    expect_bad("entry", "{\"a\":[1]}", 0, 0, F, "not a JSON object");
}

static void test_file(void) {
    char dir[512], path[600];
    if (!test_tmpdir(dir, sizeof dir)) {
        CHECK(!"tmpdir");
        return;
    }
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    float v = 3.5f;
    size_t len;
    unsigned char *b =
        image("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &v, 4, 0, &len);
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(b, 1, len, fp) == len);
    if (fp) fclose(fp);
    lora_st *st = NULL;
    shimmy_error err;
    CHECK(lora_st_open(path, &st, &err) == SHIMMY_OK);
    const lora_st_tensor *t = st ? lora_st_find(st, "t") : NULL;
    float got = 0;
    if (t) memcpy(&got, t->data, 4);
    CHECK(got == 3.5f);
    lora_st_close(st);
    /* the same file cut short in the data */
    fp = fopen(path, "wb");
    CHECK(fp && fwrite(b, 1, len - 2, fp) == len - 2);
    if (fp) fclose(fp);
    CHECK(lora_st_open(path, &st, &err) == SHIMMY_ERR_FORMAT && !st);
    CHECK(strstr(err.message, "truncated") != NULL);
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    CHECK(lora_st_open(path, &st, &err) == SHIMMY_ERR_IO);
    CHECK(lora_st_open(dir, &st, &err) == SHIMMY_ERR_IO);
    free(b);
    test_rm_rf(dir);
}

/* Random corruption of a real adapter file: every outcome is a clean accept or refusal (ASan and
 * UBSan watch the reads), and an accepted file still has every tensor inside the buffer. */
static void test_mutations(void) {
    char path[600];
    if (!test_data_path("lora/peft-tiny-llama-spm-r8-attn/adapter_model.safetensors", path,
                        sizeof path))
        return;
    size_t len = 0;
    char *orig = test_read_file(path, &len);
    CHECK(orig && len > 64);
    if (!orig) return;
    unsigned char *buf = malloc(len);
    test_rng rng;
    test_rng_seed(&rng, 1234);
    static const char json_bytes[] = "0123456789{}[],:\"-e\\ ";
    int accepted = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, orig, len);
        size_t n = len;
        int kind = (int)(test_rng_u64(&rng) % 4);
        /* mostly hit the header, where the structure is */
        uint64_t hlen;
        memcpy(&hlen, orig, 8);
        size_t span = (size_t)(kind == 3 ? len : 8 + hlen);
        for (int k = 0; k < 1 + (int)(test_rng_u64(&rng) % 4); k++) {
            size_t at = (size_t)(test_rng_u64(&rng) % span);
            buf[at] = kind == 0
                          ? (unsigned char)(buf[at] ^ (1u << (test_rng_u64(&rng) % 8)))
                          : (unsigned char)json_bytes[test_rng_u64(&rng) % (sizeof json_bytes - 1)];
        }
        if (kind == 2) n = (size_t)(test_rng_u64(&rng) % len);
        lora_st *st = NULL;
        shimmy_error err;
        shimmy_status rc = lora_st_open_memory(buf, n, "mutant", &st, &err);
        CHECK_MSG(rc == SHIMMY_OK || rc == SHIMMY_ERR_FORMAT || rc == SHIMMY_ERR_UNSUPPORTED,
                  "mutation %d: %s", it, shimmy_status_name(rc));
        CHECK(rc == SHIMMY_OK ? st != NULL : st == NULL);
        for (size_t i = 0; st && i < lora_st_n_tensors(st); i++) {
            const lora_st_tensor *t = lora_st_tensor_at(st, i);
            const unsigned char *d = t->data;
            CHECK(d >= buf && d + t->nbytes <= buf + n);
        }
        accepted += rc == SHIMMY_OK;
        lora_st_close(st);
    }
    CHECK(accepted > 0 && accepted < 3000);
    free(buf);
    free(orig);
}

int main(void) {
    test_valid();
    test_hostile();
    test_file();
    test_mutations();
    return test_finish("lora/safetensors");
}
