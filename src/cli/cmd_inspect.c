/* shimmy inspect FILE [--json] — a GGUF file's header, metadata and tensor table.
 *
 * Reads only the header (gguf_open_header), so inspecting a 70 GB model touches a few megabytes.
 * Long arrays are summarised (element type, count, first few items) in both outputs; the JSON
 * form carries full scalar values and full strings. */
#include "cli.h"
#include "gguf/gguf.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "shimmy inspect FILE [--json]";

enum { ARRAY_ITEMS = 8, TEXT_ITEMS = 5, TEXT_STR_MAX = 72 };

static const char *const vtype_names[GGUF_VT_COUNT] = {
    [GGUF_VT_UINT8] = "u8",    [GGUF_VT_INT8] = "i8",    [GGUF_VT_UINT16] = "u16",
    [GGUF_VT_INT16] = "i16",   [GGUF_VT_UINT32] = "u32", [GGUF_VT_INT32] = "i32",
    [GGUF_VT_FLOAT32] = "f32", [GGUF_VT_BOOL] = "bool",  [GGUF_VT_STRING] = "string",
    [GGUF_VT_ARRAY] = "array", [GGUF_VT_UINT64] = "u64", [GGUF_VT_INT64] = "i64",
    [GGUF_VT_FLOAT64] = "f64",
};

static const char *vtype_name(gguf_vtype t) {
    return (unsigned)t < GGUF_VT_COUNT ? vtype_names[t] : "?";
}

static bool vt_unsigned(gguf_vtype t) {
    return t == GGUF_VT_UINT8 || t == GGUF_VT_UINT16 || t == GGUF_VT_UINT32 || t == GGUF_VT_UINT64;
}
static bool vt_float(gguf_vtype t) {
    return t == GGUF_VT_FLOAT32 || t == GGUF_VT_FLOAT64;
}

/* ---- JSON ---- */

/* File strings are arbitrary bytes; JSON needs UTF-8, so invalid sequences become U+FFFD. */
static json_t *json_gstr(gguf_str s) {
    return cli_json_textn(s.data, (size_t)s.len);
}

/* Numbers outside JSON's reach (u64 above INT64_MAX, NaN, infinities) are written as strings. */
static json_t *json_scalar(const gguf_value *v) {
    char buf[32];
    if (v->type == GGUF_VT_BOOL) return json_boolean(v->v.b);
    if (v->type == GGUF_VT_STRING) return json_gstr(v->v.str);
    if (vt_float(v->type)) {
        if (isfinite(v->v.f64)) return json_real(v->v.f64);
        snprintf(buf, sizeof buf, "%g", v->v.f64);
        return json_string(buf);
    }
    if (vt_unsigned(v->type) && v->v.u64 > (uint64_t)INT64_MAX) {
        snprintf(buf, sizeof buf, "%" PRIu64, v->v.u64);
        return json_string(buf);
    }
    return json_integer(vt_unsigned(v->type) ? (json_int_t)v->v.u64 : (json_int_t)v->v.i64);
}

static json_t *json_value(const gguf_value *v) {
    if (v->type != GGUF_VT_ARRAY) return json_scalar(v);
    json_t *o = json_object(), *items = json_array();
    json_object_set_new(o, "type", json_string("array"));
    json_object_set_new(o, "elem_type", json_string(vtype_name(v->v.arr.elem_type)));
    json_object_set_new(o, "count", json_integer((json_int_t)v->v.arr.count));
    for (uint64_t i = 0; i < v->v.arr.count && i < ARRAY_ITEMS; i++) {
        gguf_value e = gguf_arr_elem(v, i);
        json_array_append_new(items, json_value(&e));
    }
    json_object_set_new(o, "first", items);
    return o;
}

static int print_json(const gguf_file *f) {
    json_t *root = json_object(), *meta = json_object(), *tensors = json_array();
    json_object_set_new(root, "file", json_string(gguf_path(f)));
    json_object_set_new(root, "version", json_integer(gguf_version(f)));
    json_object_set_new(root, "alignment", json_integer(gguf_alignment(f)));
    json_object_set_new(root, "file_size", json_integer((json_int_t)gguf_file_size(f)));
    json_object_set_new(root, "data_offset", json_integer((json_int_t)gguf_data_offset(f)));
    json_object_set_new(root, "n_kv", json_integer((json_int_t)gguf_n_kv(f)));
    json_object_set_new(root, "n_tensors", json_integer((json_int_t)gguf_n_tensors(f)));
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        json_t *key = json_gstr(kv->key);
        json_object_set_new(meta, key ? json_string_value(key) : "?", json_value(&kv->value));
        json_decref(key);
    }
    json_object_set_new(root, "metadata", meta);
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        json_t *o = json_object(), *shape = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->ne[d]));
        json_object_set_new(o, "name", json_gstr(t->name));
        json_object_set_new(o, "type", json_string(gguf_type_name(t->type)));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "offset", json_integer((json_int_t)t->offset));
        json_object_set_new(o, "bytes", json_integer((json_int_t)t->nbytes));
        json_array_append_new(tensors, o);
    }
    json_object_set_new(root, "tensors", tensors);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!text) {
        fprintf(stderr, "shimmy: error: out of memory formatting JSON\n");
        return 1;
    }
    puts(text);
    free(text);
    return 0;
}

/* ---- text ---- */

/* A quoted string with control bytes escaped, cut at `max` bytes. */
static void put_quoted(gguf_str s, size_t max) {
    putchar('"');
    for (uint64_t i = 0; i < s.len && i < max; i++) {
        unsigned char c = (unsigned char)s.data[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (s.len > max) printf("... (%" PRIu64 " bytes)", s.len);
}

static void put_value(const gguf_value *v) {
    switch (v->type) {
    case GGUF_VT_STRING: put_quoted(v->v.str, TEXT_STR_MAX); break;
    case GGUF_VT_BOOL: fputs(v->v.b ? "true" : "false", stdout); break;
    case GGUF_VT_FLOAT32:
    case GGUF_VT_FLOAT64: printf("%g", v->v.f64); break;
    case GGUF_VT_ARRAY:
        printf("[%s x %" PRIu64 "]", vtype_name(v->v.arr.elem_type), v->v.arr.count);
        for (uint64_t i = 0; i < v->v.arr.count && i < TEXT_ITEMS; i++) {
            gguf_value e = gguf_arr_elem(v, i);
            fputs(i ? ", " : " ", stdout);
            if (e.type == GGUF_VT_STRING)
                put_quoted(e.v.str, 24);
            else
                put_value(&e);
        }
        if (v->v.arr.count > TEXT_ITEMS) fputs(", ...", stdout);
        break;
    default:
        if (vt_unsigned(v->type))
            printf("%" PRIu64, v->v.u64);
        else
            printf("%" PRId64, v->v.i64);
    }
}

static int print_text(const gguf_file *f) {
    printf("%s\n  GGUF v%u, alignment %u, %" PRIu64 " bytes, tensor data at %" PRIu64 "\n\n",
           gguf_path(f), gguf_version(f), gguf_alignment(f), gguf_file_size(f),
           gguf_data_offset(f));
    printf("metadata (%zu keys)\n", gguf_n_kv(f));
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        char key[128];
        printf("  %-44s %-7s ", gguf_str_copy(kv->key, key, sizeof key),
               vtype_name(kv->value.type));
        put_value(&kv->value);
        putchar('\n');
    }
    uint64_t total = 0;
    int per_type[GGUF_T_COUNT] = {0};
    printf("\ntensors (%zu)\n", gguf_n_tensors(f));
    if (gguf_n_tensors(f))
        printf("  %5s  %-36s %-7s %-24s %12s %12s\n", "#", "name", "type", "shape", "offset",
               "bytes");
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[128], shape[96];
        int n = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%" PRId64, d ? ", " : "",
                          t->ne[d]);
        snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %5zu  %-36s %-7s %-24s %12" PRIu64 " %12" PRIu64 "\n", i,
               gguf_str_copy(t->name, name, sizeof name), gguf_type_name(t->type), shape, t->offset,
               t->nbytes);
        total += t->nbytes;
        per_type[t->type]++;
    }
    if (gguf_n_tensors(f)) {
        printf("\n  %" PRIu64 " bytes of tensor data; types:", total);
        const char *sep = " ";
        for (uint32_t t = 0; t < GGUF_T_COUNT; t++)
            if (per_type[t]) {
                printf("%s%s x %d", sep, gguf_type_name(t), per_type[t]);
                sep = ", ";
            }
        putchar('\n');
    }
    return 0;
}

int cli_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n  Prints a GGUF file's header, metadata (long arrays summarised) "
                   "and tensor table.\n  --json  one JSON object on stdout\n",
                   usage);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("inspect", usage, "unknown option '%s'", argv[i]);
        } else if (path) {
            return cli_usage_error("inspect", usage, "one FILE only");
        } else {
            path = argv[i];
        }
    }
    if (!path) return cli_usage_error("inspect", usage, "FILE is required");
    gguf_file *f = NULL;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (gguf_open_header(path, &f, &err) != SHIMMY_OK) return cli_fail(&err);
    int rc = json ? print_json(f) : print_text(f);
    gguf_close(f);
    return rc;
}
