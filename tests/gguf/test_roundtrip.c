/* Writer -> reader round trips: every metadata type, nested and string arrays, alignments,
 * tensors of several types, and the writer's own refusals. */
#include "gguf/gguf.h"
#include "test.h"

#include <stdint.h>

static char dir[512];

static gguf_file *write_and_open(gguf_writer *w, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    shimmy_error err = {0};
    shimmy_status st = gguf_writer_write(w, path, &err);
    CHECK_MSG(st == SHIMMY_OK, "write %s: %s", path, err.message);
    if (st) return NULL;
    gguf_file *f = NULL;
    st = gguf_open(path, &f, &err);
    CHECK_MSG(st == SHIMMY_OK, "open %s: %s", path, err.message);
    return f;
}

static void test_scalars(void) {
    gguf_writer *w;
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    gguf_writer_set_u32(w, "a.u32", 4000000000u);
    gguf_writer_set_i32(w, "a.i32", -123456);
    gguf_writer_set_u64(w, "a.u64", 0xFEDCBA9876543210ull);
    gguf_writer_set_f32(w, "a.f32", 1.5e-5f);
    gguf_writer_set_bool(w, "a.bool", true);
    gguf_writer_set_str(w, "a.str", "h\xc3\xa9llo");
    gguf_writer_set_str(w, "a.empty", "");
    /* The remaining scalar widths only exist through gguf_writer_set_value. */
    gguf_value v = {.type = GGUF_VT_UINT8, .v.u64 = 250};
    gguf_writer_set_value(w, "b.u8", &v);
    v = (gguf_value){.type = GGUF_VT_INT8, .v.i64 = -100};
    gguf_writer_set_value(w, "b.i8", &v);
    v = (gguf_value){.type = GGUF_VT_UINT16, .v.u64 = 65000};
    gguf_writer_set_value(w, "b.u16", &v);
    v = (gguf_value){.type = GGUF_VT_INT16, .v.i64 = -32000};
    gguf_writer_set_value(w, "b.i16", &v);
    v = (gguf_value){.type = GGUF_VT_INT64, .v.i64 = INT64_MIN + 7};
    gguf_writer_set_value(w, "b.i64", &v);
    v = (gguf_value){.type = GGUF_VT_FLOAT64, .v.f64 = 3.141592653589793};
    gguf_writer_set_value(w, "b.f64", &v);
    gguf_writer_set_u32(w, "a.replaced", 1);
    gguf_writer_set_u32(w, "a.replaced", 2);
    gguf_file *f = write_and_open(w, "scalars.gguf");
    gguf_writer_free(w);
    if (!f) return;
    CHECK_EQ_INT(gguf_version(f), 3);
    CHECK_EQ_INT(gguf_n_kv(f), 14);
    CHECK_EQ_INT(gguf_n_tensors(f), 0);
    uint32_t u32 = 0;
    uint64_t u64 = 0;
    int64_t i64 = 0;
    float f32 = 0;
    bool b = false;
    gguf_str s;
    CHECK(gguf_get_u32(f, "a.u32", &u32) && u32 == 4000000000u);
    CHECK(gguf_get_i64(f, "a.i32", &i64) && i64 == -123456);
    CHECK(!gguf_get_u32(f, "a.i32", &u32)); /* negative does not fit unsigned */
    CHECK(gguf_get_u64(f, "a.u64", &u64) && u64 == 0xFEDCBA9876543210ull);
    CHECK(!gguf_get_i64(f, "a.u64", &i64)); /* above INT64_MAX */
    CHECK(!gguf_get_u32(f, "a.u64", &u32));
    CHECK(gguf_get_f32(f, "a.f32", &f32) && f32 == 1.5e-5f);
    CHECK(gguf_get_bool(f, "a.bool", &b) && b);
    CHECK(!gguf_get_bool(f, "a.u32", &b));
    CHECK(gguf_get_str(f, "a.str", &s) && gguf_str_eq(s, "h\xc3\xa9llo"));
    CHECK(gguf_get_str(f, "a.empty", &s) && s.len == 0 && gguf_str_eq(s, ""));
    CHECK(!gguf_get_str(f, "a.u32", &s));
    CHECK(gguf_get_u32(f, "b.u8", &u32) && u32 == 250);
    CHECK(gguf_get_i64(f, "b.i8", &i64) && i64 == -100);
    CHECK(gguf_get_u32(f, "b.u16", &u32) && u32 == 65000);
    CHECK(gguf_get_i64(f, "b.i16", &i64) && i64 == -32000);
    CHECK(gguf_get_i64(f, "b.i64", &i64) && i64 == INT64_MIN + 7);
    CHECK(gguf_get(f, "b.f64") && gguf_get(f, "b.f64")->v.f64 == 3.141592653589793);
    CHECK(gguf_get_f32(f, "b.u16", &f32) && f32 == 65000.0f);
    CHECK(gguf_get_u32(f, "a.replaced", &u32) && u32 == 2);
    CHECK(gguf_get(f, "missing") == NULL);
    CHECK(!gguf_get_u32(f, "missing", &u32));
    /* Insertion order is kept, and a replaced key keeps its first position. */
    CHECK(gguf_str_eq(gguf_kv_at(f, 0)->key, "a.u32"));
    CHECK(gguf_str_eq(gguf_kv_at(f, 13)->key, "a.replaced"));
    CHECK(gguf_kv_at(f, 14) == NULL);
    char buf[4];
    CHECK_STR(gguf_str_copy(gguf_kv_at(f, 0)->key, buf, sizeof buf), "a.u");
    gguf_close(f);
}

static void test_arrays(void) {
    gguf_writer *w;
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    const int32_t i32s[] = {-1, 0, 7, INT32_MAX, INT32_MIN};
    const float f32s[] = {0.5f, -2.0f, 1e30f};
    const uint8_t bools[] = {1, 0, 1};
    const uint64_t u64s[] = {UINT64_MAX, 1};
    const double f64s[] = {-1e300, 2.5};
    gguf_writer_set_arr(w, "arr.i32", GGUF_VT_INT32, i32s, 5);
    gguf_writer_set_arr(w, "arr.f32", GGUF_VT_FLOAT32, f32s, 3);
    gguf_writer_set_arr(w, "arr.bool", GGUF_VT_BOOL, bools, 3);
    gguf_writer_set_arr(w, "arr.u64", GGUF_VT_UINT64, u64s, 2);
    gguf_writer_set_arr(w, "arr.f64", GGUF_VT_FLOAT64, f64s, 2);
    gguf_writer_set_arr(w, "arr.empty", GGUF_VT_INT32, NULL, 0);
    const char *strs[] = {"<unk>", "", "\xe2\x96\x81the", "x"};
    gguf_writer_set_arr_str(w, "arr.str", strs, 4);
    /* [[1, 2, 3], ["a", "b"], [[], [9]]] — arrays of arrays of differing element types */
    const uint16_t u16s[] = {1, 2, 3};
    const int64_t nine = 9;
    gguf_str ab[] = {{1, "a"}, {1, "b"}};
    gguf_value inner2[2] = {{.type = GGUF_VT_ARRAY}, {.type = GGUF_VT_ARRAY}};
    inner2[0].v.arr.elem_type = GGUF_VT_INT64;
    inner2[1].v.arr.elem_type = GGUF_VT_INT64;
    inner2[1].v.arr.count = 1;
    inner2[1].v.arr.data = &nine;
    gguf_value outer_items[3] = {
        {.type = GGUF_VT_ARRAY}, {.type = GGUF_VT_ARRAY}, {.type = GGUF_VT_ARRAY}};
    outer_items[0].v.arr.elem_type = GGUF_VT_UINT16;
    outer_items[0].v.arr.count = 3;
    outer_items[0].v.arr.data = u16s;
    outer_items[1].v.arr.elem_type = GGUF_VT_STRING;
    outer_items[1].v.arr.count = 2;
    outer_items[1].v.arr.strs = ab;
    outer_items[2].v.arr.elem_type = GGUF_VT_ARRAY;
    outer_items[2].v.arr.count = 2;
    outer_items[2].v.arr.arrays = inner2;
    gguf_value outer = {.type = GGUF_VT_ARRAY};
    outer.v.arr.elem_type = GGUF_VT_ARRAY;
    outer.v.arr.count = 3;
    outer.v.arr.arrays = outer_items;
    gguf_writer_set_value(w, "arr.nested", &outer);
    gguf_file *f = write_and_open(w, "arrays.gguf");
    gguf_writer_free(w);
    if (!f) return;
    const gguf_value *a = gguf_get_arr(f, "arr.i32", GGUF_VT_INT32);
    CHECK(a && a->v.arr.count == 5);
    if (a) {
        for (int i = 0; i < 5; i++) CHECK_EQ_INT(gguf_arr_i64(a, (uint64_t)i), i32s[i]);
        CHECK_NEAR(gguf_arr_f64(a, 3), (double)INT32_MAX, 0);
    }
    CHECK(gguf_get_arr(f, "arr.i32", GGUF_VT_FLOAT32) == NULL);
    CHECK(gguf_get_arr(f, "arr.i32", GGUF_VT_COUNT) == a);
    CHECK(gguf_get_arr(f, "arr.nope", GGUF_VT_COUNT) == NULL);
    a = gguf_get_arr(f, "arr.f32", GGUF_VT_FLOAT32);
    CHECK(a && a->v.arr.count == 3);
    if (a) {
        for (int i = 0; i < 3; i++) CHECK(gguf_arr_f64(a, (uint64_t)i) == (double)f32s[i]);
        CHECK_EQ_INT(gguf_arr_i64(a, 1), -2);
        CHECK(gguf_arr_i64(a, 2) == INT64_MAX); /* 1e30 clamps instead of overflowing */
    }
    a = gguf_get_arr(f, "arr.bool", GGUF_VT_BOOL);
    CHECK(a && a->v.arr.count == 3 && gguf_arr_i64(a, 0) == 1 && gguf_arr_i64(a, 1) == 0);
    a = gguf_get_arr(f, "arr.u64", GGUF_VT_UINT64);
    CHECK(a && gguf_arr_i64(a, 0) == INT64_MAX && gguf_arr_i64(a, 1) == 1);
    a = gguf_get_arr(f, "arr.f64", GGUF_VT_FLOAT64);
    CHECK(a && gguf_arr_f64(a, 0) == -1e300 && gguf_arr_f64(a, 1) == 2.5);
    a = gguf_get_arr(f, "arr.empty", GGUF_VT_INT32);
    CHECK(a && a->v.arr.count == 0);
    a = gguf_get_arr(f, "arr.str", GGUF_VT_STRING);
    CHECK(a && a->v.arr.count == 4);
    if (a && a->v.arr.count == 4)
        for (int i = 0; i < 4; i++) CHECK(gguf_str_eq(a->v.arr.strs[i], strs[i]));
    a = gguf_get_arr(f, "arr.nested", GGUF_VT_ARRAY);
    CHECK(a && a->v.arr.count == 3);
    if (a && a->v.arr.count == 3) {
        const gguf_value *x = &a->v.arr.arrays[0];
        CHECK(x->type == GGUF_VT_ARRAY && x->v.arr.elem_type == GGUF_VT_UINT16 &&
              x->v.arr.count == 3 && gguf_arr_i64(x, 2) == 3);
        x = &a->v.arr.arrays[1];
        CHECK(x->v.arr.elem_type == GGUF_VT_STRING && x->v.arr.count == 2 &&
              gguf_str_eq(x->v.arr.strs[1], "b"));
        x = &a->v.arr.arrays[2];
        CHECK(x->v.arr.elem_type == GGUF_VT_ARRAY && x->v.arr.count == 2);
        if (x->v.arr.count == 2) {
            CHECK(x->v.arr.arrays[0].v.arr.count == 0);
            CHECK(x->v.arr.arrays[1].v.arr.count == 1 && gguf_arr_i64(&x->v.arr.arrays[1], 0) == 9);
        }
    }
    /* copy_kv carries every value over unchanged, nested arrays included. */
    gguf_writer *w2;
    CHECK(gguf_writer_new(&w2, NULL) == SHIMMY_OK);
    gguf_writer_copy_kv(w2, f, "arr.n");
    gguf_writer_copy_kv(w2, f, "arr.str");
    gguf_file *g = write_and_open(w2, "copied.gguf");
    gguf_writer_free(w2);
    gguf_close(f);
    if (!g) return;
    CHECK_EQ_INT(gguf_n_kv(g), 2);
    a = gguf_get_arr(g, "arr.nested", GGUF_VT_ARRAY);
    CHECK(a && a->v.arr.count == 3 && a->v.arr.arrays[2].v.arr.arrays[1].v.arr.count == 1);
    a = gguf_get_arr(g, "arr.str", GGUF_VT_STRING);
    CHECK(a && a->v.arr.count == 4 && gguf_str_eq(a->v.arr.strs[2], "\xe2\x96\x81the"));
    gguf_close(g);
}

/* Tensors of several types and shapes; data must come back byte for byte, aligned. */
static void test_tensors(uint32_t align) {
    gguf_writer *w;
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    if (align) gguf_writer_set_u32(w, "general.alignment", align);
    gguf_writer_set_str(w, "general.architecture", "test");
    struct {
        const char *name;
        uint32_t type, n_dims;
        int64_t ne[4];
    } specs[] = {
        {"f32.vec", GGUF_T_F32, 1, {7, 1, 1, 1}},     {"f16.mat", GGUF_T_F16, 2, {5, 3, 1, 1}},
        {"q8_0.mat", GGUF_T_Q8_0, 2, {64, 3, 1, 1}},  {"q4_k.mat", GGUF_T_Q4_K, 2, {256, 2, 1, 1}},
        {"q6_k.4d", GGUF_T_Q6_K, 4, {256, 1, 2, 2}},  {"i32.3d", GGUF_T_I32, 3, {3, 2, 2, 1}},
        {"bf16.empty", GGUF_T_BF16, 2, {0, 4, 1, 1}},
    };
    size_t n = sizeof specs / sizeof specs[0];
    test_rng rng;
    test_rng_seed(&rng, 42);
    unsigned char *bufs[8] = {0};
    uint64_t sizes[8] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t row = 0;
        CHECK(gguf_row_bytes(specs[i].type, specs[i].ne[0], &row));
        sizes[i] = row * (uint64_t)(specs[i].ne[1] * specs[i].ne[2] * specs[i].ne[3]);
        bufs[i] = malloc(sizes[i] + 1);
        for (uint64_t j = 0; j < sizes[i]; j++) bufs[i][j] = (unsigned char)test_rng_u64(&rng);
        gguf_writer_add_tensor(w, specs[i].name, specs[i].type, specs[i].n_dims, specs[i].ne,
                               bufs[i]);
    }
    char name[64];
    snprintf(name, sizeof name, "tensors-%u.gguf", align);
    gguf_file *f = write_and_open(w, name);
    gguf_writer_free(w);
    if (f) {
        uint32_t a = align ? align : GGUF_DEFAULT_ALIGNMENT;
        CHECK_EQ_INT(gguf_alignment(f), a);
        CHECK_EQ_INT(gguf_data_offset(f) % a, 0);
        CHECK_EQ_INT(gguf_n_tensors(f), n);
        for (size_t i = 0; i < n; i++) {
            const gguf_tensor *t = gguf_find_tensor(f, specs[i].name);
            CHECK_MSG(t != NULL, "tensor %s", specs[i].name);
            if (!t) continue;
            CHECK(t == gguf_tensor_at(f, i));
            CHECK_EQ_INT(t->type, specs[i].type);
            CHECK_EQ_INT(t->n_dims, specs[i].n_dims);
            for (int d = 0; d < 4; d++) CHECK_EQ_INT(t->ne[d], specs[i].ne[d]);
            CHECK_EQ_INT(t->nbytes, sizes[i]);
            CHECK_EQ_INT(t->offset % a, 0);
            CHECK(t->data != NULL &&
                  ((uintptr_t)t->data - (uintptr_t)gguf_tensor_at(f, 0)->data) % a == 0);
            CHECK(sizes[i] == 0 || memcmp(t->data, bufs[i], sizes[i]) == 0);
        }
        CHECK(gguf_find_tensor(f, "f32.ve") == NULL);
        CHECK(gguf_find_tensor(f, "nope") == NULL);
        /* The padding between tensors is zeroed. */
        const gguf_tensor *t0 = gguf_tensor_at(f, 0), *t1 = gguf_tensor_at(f, 1);
        const unsigned char *p = t0->data;
        bool zero = true;
        for (uint64_t j = t0->nbytes; j < t1->offset - t0->offset; j++) zero = zero && p[j] == 0;
        CHECK(zero);
        gguf_close(f);
        /* header-only opening sees the same directory but no data */
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        shimmy_error err;
        CHECK(gguf_open_header(path, &f, &err) == SHIMMY_OK);
        if (f) {
            CHECK_EQ_INT(gguf_n_tensors(f), n);
            CHECK(gguf_find_tensor(f, "q4_k.mat") && !gguf_find_tensor(f, "q4_k.mat")->data);
            gguf_close(f);
        }
    }
    for (size_t i = 0; i < n; i++) free(bufs[i]);
}

static void test_writer_refusals(void) {
    char path[700];
    snprintf(path, sizeof path, "%s/refused.gguf", dir);
    float x[32] = {0};
    int64_t ne[2] = {33, 1};
    gguf_writer *w;
    shimmy_error err;
    /* a Q8_0 row of 33 elements is not whole blocks */
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    gguf_writer_add_tensor(w, "bad", GGUF_T_Q8_0, 2, ne, x);
    CHECK(gguf_writer_write(w, path, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "bad") != NULL);
    gguf_writer_free(w);
    /* unknown type, duplicate name, bad alignment */
    ne[0] = 4;
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    gguf_writer_add_tensor(w, "t", 4, 1, ne, x);
    CHECK(gguf_writer_write(w, path, &err) == SHIMMY_ERR_INVALID_ARG);
    gguf_writer_free(w);
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    gguf_writer_add_tensor(w, "t", GGUF_T_F32, 1, ne, x);
    gguf_writer_add_tensor(w, "t", GGUF_T_F32, 1, ne, x);
    CHECK(gguf_writer_write(w, path, &err) == SHIMMY_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "twice") != NULL);
    gguf_writer_free(w);
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    gguf_writer_set_u32(w, "general.alignment", 24);
    CHECK(gguf_writer_write(w, path, &err) == SHIMMY_ERR_INVALID_ARG);
    gguf_writer_free(w);
    /* the writer takes the alignment in any integer type, as the reader does */
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    gguf_writer_set_u64(w, "general.alignment", 64);
    gguf_writer_add_tensor(w, "t", GGUF_T_F32, 1, ne, x);
    gguf_writer_add_tensor(w, "u", GGUF_T_F32, 1, ne, x);
    CHECK(gguf_writer_write(w, path, &err) == SHIMMY_OK);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    CHECK(f && gguf_alignment(f) == 64 && gguf_find_tensor(f, "u")->offset == 64);
    gguf_close(f);
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    gguf_writer_set_i32(w, "general.alignment", -32);
    CHECK(gguf_writer_write(w, path, &err) == SHIMMY_ERR_INVALID_ARG);
    gguf_writer_free(w);
    /* an unwritable path is an IO error, not a crash */
    CHECK(gguf_writer_new(&w, NULL) == SHIMMY_OK);
    CHECK(gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err) == SHIMMY_ERR_IO);
    gguf_writer_free(w);
    gguf_writer_free(NULL);
    gguf_close(NULL);
}

static void test_layouts(void) {
    CHECK_STR(gguf_type_name(GGUF_T_Q4_K), "Q4_K");
    CHECK_STR(gguf_type_name(4), "unknown");
    CHECK_STR(gguf_type_name(1000), "unknown");
    CHECK(gguf_type_layout_of(GGUF_T_COUNT).name == NULL);
    uint64_t b;
    CHECK(gguf_row_bytes(GGUF_T_Q4_0, 64, &b) && b == 36);
    CHECK(gguf_row_bytes(GGUF_T_Q6_K, 512, &b) && b == 420);
    CHECK(gguf_row_bytes(GGUF_T_BF16, 3, &b) && b == 6);
    CHECK(!gguf_row_bytes(GGUF_T_Q4_0, 48, &b));
    CHECK(!gguf_row_bytes(GGUF_T_F32, -1, &b));
    CHECK(!gguf_row_bytes(GGUF_T_F64, INT64_MAX, &b)); /* bytes overflow */
    CHECK(!gguf_row_bytes(5, 32, &b));
}

int main(void) {
    if (!test_tmpdir(dir, sizeof dir)) {
        fprintf(stderr, "no temp dir\n");
        return 1;
    }
    test_layouts();
    test_scalars();
    test_arrays();
    test_tensors(0);
    test_tensors(32);
    test_tensors(64);
    test_tensors(4096);
    test_writer_refusals();
    test_rm_rf(dir);
    return test_finish("gguf_roundtrip");
}
