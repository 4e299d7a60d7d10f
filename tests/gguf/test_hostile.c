/* Hostile inputs: a hand-built valid file whose fields are then truncated, corrupted or replaced
 * one at a time. Every such file must be refused with an error that says what is wrong — never a
 * crash, an out-of-bounds read (run under ASan) or an allocation sized by a bogus count. */
#include "gguf/gguf.h"
#include "test.h"

#include <stdint.h>
#include <sys/stat.h>

typedef struct buf {
    unsigned char d[4096];
    size_t n;
} buf;

static size_t put(buf *b, const void *p, size_t n) {
    size_t at = b->n;
    memcpy(b->d + b->n, p, n);
    b->n += n;
    return at;
}
static size_t put_u32(buf *b, uint32_t v) {
    return put(b, &v, 4);
}
static size_t put_u64(buf *b, uint64_t v) {
    return put(b, &v, 8);
}
static size_t put_str(buf *b, const char *s) {
    size_t at = put_u64(b, strlen(s));
    put(b, s, strlen(s));
    return at;
}

/* Where the interesting fields of the canonical file sit. */
typedef struct fields {
    size_t magic, version, n_tensors, n_kv;
    size_t align_type, align_value, str_len, arr_type, arr_elem_type, arr_count, strarr_count,
        strarr_len1;
    size_t key_b, t_b_name;
    size_t t0_n_dims, t0_ne0, t0_ne1, t0_type, t0_offset, t1_offset, t1_type;
} fields;

static void build(buf *b, fields *f) {
    memset(b, 0, sizeof *b);
    f->magic = put_u32(b, GGUF_MAGIC);
    f->version = put_u32(b, 3);
    f->n_tensors = put_u64(b, 2);
    f->n_kv = put_u64(b, 4);
    put_str(b, "general.alignment");
    f->align_type = put_u32(b, GGUF_VT_UINT32);
    f->align_value = put_u32(b, 32);
    put_str(b, "k.a");
    put_u32(b, GGUF_VT_STRING);
    f->str_len = put_str(b, "hello");
    f->key_b = put_str(b, "k.b") + 8;
    f->arr_type = put_u32(b, GGUF_VT_ARRAY);
    f->arr_elem_type = put_u32(b, GGUF_VT_INT32);
    f->arr_count = put_u64(b, 3);
    for (int32_t i = 0; i < 3; i++) put(b, &i, 4);
    put_str(b, "k.c");
    put_u32(b, GGUF_VT_ARRAY);
    put_u32(b, GGUF_VT_STRING);
    f->strarr_count = put_u64(b, 2);
    put_str(b, "x");
    f->strarr_len1 = put_str(b, "yz");
    put_str(b, "t.a");
    f->t0_n_dims = put_u32(b, 2);
    f->t0_ne0 = put_u64(b, 32);
    f->t0_ne1 = put_u64(b, 2);
    f->t0_type = put_u32(b, GGUF_T_F32);
    f->t0_offset = put_u64(b, 0);
    f->t_b_name = put_str(b, "t.b") + 8;
    put_u32(b, 1);
    put_u64(b, 32);
    f->t1_type = put_u32(b, GGUF_T_Q8_0);
    f->t1_offset = put_u64(b, 256);
    while (b->n % 32) b->d[b->n++] = 0;
    for (int i = 0; i < 256 + 34; i++) b->d[b->n++] = (unsigned char)(i * 7);
}

/* Opens an exact-size heap copy so that ASan flags any read past the end. */
static shimmy_status open_copy(const unsigned char *d, size_t n, shimmy_error *err) {
    unsigned char *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, d, n);
    gguf_file *f = NULL;
    shimmy_error_clear(err);
    shimmy_status st = gguf_open_memory(copy, n, "hostile.gguf", &f, err);
    if (st == SHIMMY_OK) {
        /* A file that opens must be fully walkable. */
        for (size_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            const unsigned char *p = t->data;
            volatile unsigned char s = 0;
            for (uint64_t j = 0; j < t->nbytes; j++) s ^= p[j];
            (void)s;
        }
    }
    gguf_close(f);
    free(copy);
    return st;
}

static void patch_u32(buf *b, size_t at, uint32_t v) {
    memcpy(b->d + at, &v, 4);
}
static void patch_u64(buf *b, size_t at, uint64_t v) {
    memcpy(b->d + at, &v, 8);
}

/* Builds the canonical file, applies one patch and expects a refusal mentioning `needle`. */
#define EXPECT_REFUSED(patch, status, needle)                                                      \
    do {                                                                                           \
        buf b_;                                                                                    \
        fields f_;                                                                                 \
        build(&b_, &f_);                                                                           \
        buf *b = &b_;                                                                              \
        fields *f = &f_;                                                                           \
        (void)f;                                                                                   \
        patch;                                                                                     \
        shimmy_error e_;                                                                           \
        shimmy_status st_ = open_copy(b->d, b->n, &e_);                                            \
        CHECK_MSG(st_ == (status), "%s: got %s (%s)", #patch, shimmy_status_name(st_),             \
                  e_.message);                                                                     \
        CHECK_MSG(strstr(e_.message, (needle)) != NULL, "%s: message '%s' lacks '%s'", #patch,     \
                  e_.message, (needle));                                                           \
        CHECK_MSG(strstr(e_.message, "hostile.gguf") != NULL, "message names no file: %s",         \
                  e_.message);                                                                     \
    } while (0)

static void test_canonical_and_truncations(void) {
    buf b;
    fields f;
    build(&b, &f);
    shimmy_error err;
    CHECK_MSG(open_copy(b.d, b.n, &err) == SHIMMY_OK, "canonical file: %s", err.message);
    /* The last tensor ends exactly at the end of the file: every shorter prefix is invalid. */
    int refused = 0;
    for (size_t n = 0; n < b.n; n++) refused += open_copy(b.d, n, &err) == SHIMMY_ERR_FORMAT;
    CHECK_EQ_INT(refused, b.n);
    /* A v2 file has the same layout and is read. */
    patch_u32(&b, f.version, 2);
    CHECK(open_copy(b.d, b.n, &err) == SHIMMY_OK);
}

static void test_header(void) {
    EXPECT_REFUSED(b->d[0] = 'X', SHIMMY_ERR_FORMAT, "not a GGUF file");
    EXPECT_REFUSED(patch_u32(b, f->version, 1), SHIMMY_ERR_UNSUPPORTED, "version 1");
    EXPECT_REFUSED(patch_u32(b, f->version, 4), SHIMMY_ERR_UNSUPPORTED, "version 4");
    EXPECT_REFUSED(patch_u32(b, f->version, 0x03000000u), SHIMMY_ERR_UNSUPPORTED, "big-endian");
    EXPECT_REFUSED(patch_u64(b, f->n_kv, UINT64_MAX), SHIMMY_ERR_FORMAT, "metadata entries");
    EXPECT_REFUSED(patch_u64(b, f->n_kv, 1ull << 40), SHIMMY_ERR_FORMAT, "metadata entries");
    EXPECT_REFUSED(patch_u64(b, f->n_tensors, UINT64_MAX), SHIMMY_ERR_FORMAT, "tensors");
    EXPECT_REFUSED(patch_u64(b, f->n_tensors, 1ull << 33), SHIMMY_ERR_FORMAT, "tensors");
    /* One tensor more than the directory holds: the reader runs into the data section and must
     * stop at the end of the file. */
    EXPECT_REFUSED(patch_u64(b, f->n_tensors, 3), SHIMMY_ERR_FORMAT, "");
}

static void test_metadata(void) {
    EXPECT_REFUSED(patch_u64(b, f->str_len, UINT64_MAX), SHIMMY_ERR_FORMAT, "claims");
    EXPECT_REFUSED(patch_u64(b, f->str_len, 1ull << 62), SHIMMY_ERR_FORMAT, "claims");
    EXPECT_REFUSED(patch_u64(b, f->arr_count, UINT64_MAX), SHIMMY_ERR_FORMAT, "k.b");
    EXPECT_REFUSED(patch_u64(b, f->arr_count, 1ull << 61), SHIMMY_ERR_FORMAT, "cannot fit");
    EXPECT_REFUSED(patch_u64(b, f->strarr_count, 1ull << 60), SHIMMY_ERR_FORMAT, "k.c");
    EXPECT_REFUSED(patch_u64(b, f->strarr_len1, 5000), SHIMMY_ERR_FORMAT, "claims");
    EXPECT_REFUSED(patch_u32(b, f->arr_type, 13), SHIMMY_ERR_FORMAT, "value type 13");
    EXPECT_REFUSED(patch_u32(b, f->arr_elem_type, 99), SHIMMY_ERR_FORMAT, "element type 99");
    EXPECT_REFUSED(b->d[f->key_b + 2] = 'a', SHIMMY_ERR_FORMAT, "'k.a' appears twice");
    EXPECT_REFUSED(b->d[f->key_b + 1] = '\0', SHIMMY_ERR_FORMAT, "metadata key at offset");
    EXPECT_REFUSED(b->d[f->key_b] = '\0', SHIMMY_ERR_FORMAT, "contains a NUL byte");
    EXPECT_REFUSED(patch_u32(b, f->align_value, 0), SHIMMY_ERR_FORMAT, "general.alignment");
    EXPECT_REFUSED(patch_u32(b, f->align_value, 48), SHIMMY_ERR_FORMAT, "power of two");
    EXPECT_REFUSED(patch_u32(b, f->align_type, GGUF_VT_FLOAT32), SHIMMY_ERR_FORMAT,
                   "general.alignment");
}

static void test_tensor_directory(void) {
    EXPECT_REFUSED(patch_u32(b, f->t0_n_dims, 5), SHIMMY_ERR_FORMAT, "5 dimensions");
    EXPECT_REFUSED(patch_u32(b, f->t0_n_dims, UINT32_MAX), SHIMMY_ERR_FORMAT, "dimensions");
    EXPECT_REFUSED((patch_u64(b, f->t0_ne0, 1ull << 40), patch_u64(b, f->t0_ne1, 1ull << 40)),
                   SHIMMY_ERR_FORMAT, "shape overflows");
    EXPECT_REFUSED(patch_u64(b, f->t0_ne0, UINT64_MAX), SHIMMY_ERR_FORMAT, "'t.a'");
    /* Elements fit in int64 but the bytes (x4 for F32) do not. */
    EXPECT_REFUSED((patch_u64(b, f->t0_ne0, 1ull << 31), patch_u64(b, f->t0_ne1, 1ull << 31)),
                   SHIMMY_ERR_FORMAT, "'t.a'");
    EXPECT_REFUSED(patch_u32(b, f->t0_type, 4), SHIMMY_ERR_UNSUPPORTED, "unknown type id 4");
    EXPECT_REFUSED(patch_u32(b, f->t0_type, 1000), SHIMMY_ERR_UNSUPPORTED,
                   "tensor 't.a' has unknown type id 1000");
    /* A Q4_0 row must be whole blocks of 32: 32 is, but ne0 = 48 is not. */
    EXPECT_REFUSED((patch_u32(b, f->t0_type, GGUF_T_Q4_0), patch_u64(b, f->t0_ne0, 48)),
                   SHIMMY_ERR_FORMAT, "block size");
    EXPECT_REFUSED(patch_u64(b, f->t0_offset, 1), SHIMMY_ERR_FORMAT, "not a multiple");
    EXPECT_REFUSED(patch_u64(b, f->t1_offset, 288), SHIMMY_ERR_FORMAT, "extends past end");
    EXPECT_REFUSED(patch_u64(b, f->t1_offset, UINT64_MAX - 31), SHIMMY_ERR_FORMAT,
                   "extends past end");
    EXPECT_REFUSED(patch_u32(b, f->t1_type, GGUF_T_F32), SHIMMY_ERR_FORMAT, "'t.b': data");
    EXPECT_REFUSED(b->d[f->t_b_name + 2] = 'a', SHIMMY_ERR_FORMAT, "'t.a' appears twice");
    EXPECT_REFUSED(b->d[f->t_b_name + 2] = '\0', SHIMMY_ERR_FORMAT, "tensor name at offset");
}

/* Arrays nested far deeper than any real file: refused, without deep recursion. */
static void test_deep_nesting(void) {
    buf b = {0};
    put_u32(&b, GGUF_MAGIC);
    put_u32(&b, 3);
    put_u64(&b, 0);
    put_u64(&b, 1);
    put_str(&b, "deep");
    put_u32(&b, GGUF_VT_ARRAY);
    for (int i = 0; i < 300; i++) {
        put_u32(&b, GGUF_VT_ARRAY);
        put_u64(&b, 1);
    }
    put_u32(&b, GGUF_VT_INT32);
    put_u64(&b, 0);
    shimmy_error err;
    CHECK(open_copy(b.d, b.n, &err) == SHIMMY_ERR_FORMAT);
    CHECK(strstr(err.message, "nested") != NULL);
}

/* An outer array of 100 nested arrays (at least 1200 bytes, and they are there) whose first child
 * claims 50 elements: the bytes would hold those 50 but not also the 99 siblings that must
 * follow, so the child's claim is refused before its table is allocated (memory stays bounded by
 * the file size however the counts are spread over nesting levels). */
static void test_sibling_reserve(void) {
    buf b = {0};
    put_u32(&b, GGUF_MAGIC);
    put_u32(&b, 3);
    put_u64(&b, 0);
    put_u64(&b, 1);
    put_str(&b, "a");
    put_u32(&b, GGUF_VT_ARRAY);
    put_u32(&b, GGUF_VT_ARRAY);
    put_u64(&b, 100);
    put_u32(&b, GGUF_VT_ARRAY);
    put_u64(&b, 50);
    b.n += 50 * 12 + 700; /* zeros: empty u8 arrays; 12 + 1300 >= 1200 but < 12 + 600 + 99 * 12 */
    shimmy_error err;
    CHECK(open_copy(b.d, b.n, &err) == SHIMMY_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, "array of 50 elements") != NULL, "%s", err.message);
    /* With room for every sibling the same file is valid. */
    b.n += 99 * 12 - 700;
    CHECK_MSG(open_copy(b.d, b.n, &err) == SHIMMY_OK, "%s", err.message);
}

/* Every single byte set to a few nasty values: the reader may accept or refuse, but it must never
 * read outside the buffer (ASan) and a refusal must carry a message. */
static void test_byte_flips(void) {
    buf b;
    fields f;
    build(&b, &f);
    static const unsigned char vals[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
    int refused = 0, total = 0;
    for (size_t i = 0; i < b.n; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            buf c = b;
            if (c.d[i] == vals[v]) continue;
            c.d[i] = vals[v];
            shimmy_error err;
            shimmy_status st = open_copy(c.d, c.n, &err);
            total++;
            if (st) {
                refused++;
                CHECK_MSG(err.message[0] != '\0', "byte %zu = %u: empty error", i, vals[v]);
            }
        }
    /* Header corruption must be caught; tensor data bytes are opaque and may take any value. */
    CHECK(refused > 0 && refused < total);
}

static void test_paths(void) {
    char dir[512], path[700];
    gguf_file *f = (gguf_file *)1;
    shimmy_error err;
    CHECK(gguf_open("/nonexistent/model.gguf", &f, &err) == SHIMMY_ERR_NOT_FOUND);
    CHECK(f == NULL);
    CHECK(strstr(err.message, "/nonexistent/model.gguf") != NULL);
    if (!test_tmpdir(dir, sizeof dir)) return;
    CHECK(gguf_open(dir, &f, &err) == SHIMMY_ERR_IO);
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    FILE *fp = fopen(path, "wb");
    if (fp) fclose(fp);
    CHECK(gguf_open(path, &f, &err) == SHIMMY_ERR_FORMAT);
    CHECK(gguf_open_header(path, &f, &err) == SHIMMY_ERR_FORMAT);
    CHECK(strstr(err.message, "empty.gguf") != NULL);
    /* The canonical file through the mapping path too. */
    buf b;
    fields fl;
    build(&b, &fl);
    snprintf(path, sizeof path, "%s/ok.gguf", dir);
    fp = fopen(path, "wb");
    if (fp) {
        fwrite(b.d, 1, b.n, fp);
        fclose(fp);
    }
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (f) {
        CHECK_STR(gguf_path(f), path);
        CHECK_EQ_INT(gguf_file_size(f), b.n);
        CHECK(gguf_find_tensor(f, "t.b") && gguf_find_tensor(f, "t.b")->data);
        gguf_close(f);
    }
    CHECK(gguf_open_memory(NULL, 0, NULL, &f, &err) == SHIMMY_ERR_FORMAT);
    test_rm_rf(dir);
}

int main(void) {
    test_canonical_and_truncations();
    test_header();
    test_metadata();
    test_tensor_directory();
    test_deep_nesting();
    test_sibling_reserve();
    test_byte_flips();
    test_paths();
    return test_finish("gguf_hostile");
}
