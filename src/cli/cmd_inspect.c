/* shimmy inspect FILE [--json] — a GGUF file's header, metadata and tensor table.
 *
 * Reads only the header (shimmy_gguf_open), so inspecting a 70 GB model touches a few megabytes.
 * Long arrays are summarised (element type, count, first few items) in both outputs; the JSON
 * form carries full scalar values and full strings. */
#include "cli.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "shimmy inspect FILE [--json]";

enum { ARRAY_ITEMS = 8, TEXT_ITEMS = 5, TEXT_STR_MAX = 72 };

#define vtype_name shimmy_gguf_type_name

static bool vt_unsigned(shimmy_gguf_type t) {
    return t == SHIMMY_GGUF_U8 || t == SHIMMY_GGUF_U16 || t == SHIMMY_GGUF_U32 ||
           t == SHIMMY_GGUF_U64;
}
static bool vt_float(shimmy_gguf_type t) {
    return t == SHIMMY_GGUF_F32 || t == SHIMMY_GGUF_F64;
}

/* ---- JSON ---- */

/* File strings are arbitrary bytes; JSON needs UTF-8, so invalid sequences become U+FFFD. */
static json_t *json_gstr(const char *s, size_t len) {
    return cli_json_textn(s, len);
}

/* Numbers outside JSON's reach (u64 above INT64_MAX, NaN, infinities) are written as strings. */
static json_t *json_scalar(const shimmy_gguf_value *v) {
    char buf[32];
    if (v->type == SHIMMY_GGUF_BOOL) return json_boolean(v->b);
    if (v->type == SHIMMY_GGUF_STRING) return json_gstr(v->str, v->str_len);
    if (vt_float(v->type)) {
        if (isfinite(v->f64)) return json_real(v->f64);
        snprintf(buf, sizeof buf, "%g", v->f64);
        return json_string(buf);
    }
    if (vt_unsigned(v->type) && v->u64 > (uint64_t)INT64_MAX) {
        snprintf(buf, sizeof buf, "%" PRIu64, v->u64);
        return json_string(buf);
    }
    return json_integer(vt_unsigned(v->type) ? (json_int_t)v->u64 : (json_int_t)v->i64);
}

static json_t *json_value(const shimmy_gguf_value *v) {
    if (v->type != SHIMMY_GGUF_ARRAY) return json_scalar(v);
    json_t *o = json_object(), *items = json_array();
    json_object_set_new(o, "type", json_string("array"));
    json_object_set_new(o, "elem_type", json_string(vtype_name(v->elem_type)));
    json_object_set_new(o, "count", json_integer((json_int_t)v->count));
    shimmy_gguf_value e;
    for (uint64_t i = 0; i < ARRAY_ITEMS && shimmy_gguf_array_at(v, i, &e); i++)
        json_array_append_new(items, json_value(&e));
    json_object_set_new(o, "first", items);
    return o;
}

static int print_json(const shimmy_gguf *f) {
    shimmy_gguf_info in;
    shimmy_gguf_get_info(f, &in);
    json_t *root = json_object(), *meta = json_object(), *tensors = json_array();
    json_object_set_new(root, "file", json_string(in.path));
    json_object_set_new(root, "version", json_integer(in.version));
    json_object_set_new(root, "alignment", json_integer(in.alignment));
    json_object_set_new(root, "file_size", json_integer((json_int_t)in.file_size));
    json_object_set_new(root, "data_offset", json_integer((json_int_t)in.data_offset));
    json_object_set_new(root, "n_kv", json_integer((json_int_t)in.n_kv));
    json_object_set_new(root, "n_tensors", json_integer((json_int_t)in.n_tensors));
    const char *k;
    size_t klen;
    shimmy_gguf_value v;
    for (size_t i = 0; shimmy_gguf_kv_at(f, i, &k, &klen, &v); i++) {
        json_t *key = json_gstr(k, klen);
        json_object_set_new(meta, key ? json_string_value(key) : "?", json_value(&v));
        json_decref(key);
    }
    json_object_set_new(root, "metadata", meta);
    shimmy_gguf_tensor t;
    for (size_t i = 0; shimmy_gguf_tensor_at(f, i, &t); i++) {
        json_t *o = json_object(), *shape = json_array();
        for (uint32_t d = 0; d < t.n_dims; d++)
            json_array_append_new(shape, json_integer((json_int_t)t.shape[d]));
        json_object_set_new(o, "name", json_gstr(t.name, t.name_len));
        json_object_set_new(o, "type", json_string(t.type_name));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "offset", json_integer((json_int_t)t.offset));
        json_object_set_new(o, "bytes", json_integer((json_int_t)t.bytes));
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
static void put_quoted(const char *s, size_t len, size_t max) {
    putchar('"');
    for (size_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
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
    if (len > max) printf("... (%zu bytes)", len);
}

static void put_value(const shimmy_gguf_value *v) {
    switch (v->type) {
    case SHIMMY_GGUF_STRING: put_quoted(v->str, v->str_len, TEXT_STR_MAX); break;
    case SHIMMY_GGUF_BOOL: fputs(v->b ? "true" : "false", stdout); break;
    case SHIMMY_GGUF_F32:
    case SHIMMY_GGUF_F64: printf("%g", v->f64); break;
    case SHIMMY_GGUF_ARRAY: {
        printf("[%s x %" PRIu64 "]", vtype_name(v->elem_type), v->count);
        shimmy_gguf_value e;
        for (uint64_t i = 0; i < TEXT_ITEMS && shimmy_gguf_array_at(v, i, &e); i++) {
            fputs(i ? ", " : " ", stdout);
            if (e.type == SHIMMY_GGUF_STRING)
                put_quoted(e.str, e.str_len, 24);
            else
                put_value(&e);
        }
        if (v->count > TEXT_ITEMS) fputs(", ...", stdout);
        break;
    }
    default:
        if (vt_unsigned(v->type))
            printf("%" PRIu64, v->u64);
        else
            printf("%" PRId64, v->i64);
    }
}

/* The first cap-1 bytes of a name as a C string (for column output). */
static const char *clip(const char *s, size_t len, char *buf, size_t cap) {
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

enum { TYPE_SLOTS = 256 };

static int print_text(const shimmy_gguf *f) {
    shimmy_gguf_info in;
    shimmy_gguf_get_info(f, &in);
    printf("%s\n  GGUF v%u, alignment %u, %" PRIu64 " bytes, tensor data at %" PRIu64 "\n\n",
           in.path, in.version, in.alignment, in.file_size, in.data_offset);
    printf("metadata (%zu keys)\n", in.n_kv);
    const char *k;
    size_t klen;
    shimmy_gguf_value v;
    for (size_t i = 0; shimmy_gguf_kv_at(f, i, &k, &klen, &v); i++) {
        char key[128];
        printf("  %-44s %-7s ", clip(k, klen, key, sizeof key), vtype_name(v.type));
        put_value(&v);
        putchar('\n');
    }
    uint64_t total = 0;
    int per_type[TYPE_SLOTS] = {0};
    const char *type_names[TYPE_SLOTS] = {0};
    printf("\ntensors (%zu)\n", in.n_tensors);
    if (in.n_tensors)
        printf("  %5s  %-36s %-7s %-24s %12s %12s\n", "#", "name", "type", "shape", "offset",
               "bytes");
    shimmy_gguf_tensor t;
    for (size_t i = 0; shimmy_gguf_tensor_at(f, i, &t); i++) {
        char name[128], shape[96];
        int n = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t.n_dims; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%" PRId64, d ? ", " : "",
                          t.shape[d]);
        snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %5zu  %-36s %-7s %-24s %12" PRIu64 " %12" PRIu64 "\n", i,
               clip(t.name, t.name_len, name, sizeof name), t.type_name, shape, t.offset, t.bytes);
        total += t.bytes;
        if (t.type < TYPE_SLOTS) {
            per_type[t.type]++;
            type_names[t.type] = t.type_name;
        }
    }
    if (in.n_tensors) {
        printf("\n  %" PRIu64 " bytes of tensor data; types:", total);
        const char *sep = " ";
        for (uint32_t ty = 0; ty < TYPE_SLOTS; ty++)
            if (per_type[ty]) {
                printf("%s%s x %d", sep, type_names[ty], per_type[ty]);
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
    shimmy_gguf *f = NULL;
    shimmy_error err;
    shimmy_error_clear(&err);
    if (shimmy_gguf_open(path, &f, &err) != SHIMMY_OK) return cli_fail(&err);
    int rc = json ? print_json(f) : print_text(f);
    shimmy_gguf_free(f);
    return rc;
}
