/* shimmy tokenize MODEL (--text TEXT | --file PATH) [--no-bos] [--no-special] [--json]
 *
 * Prints the ids the model's tokenizer gives a text, the way a prompt is tokenized: BOS/EOS as
 * the model asks and special-token text parsed, unless switched off. Only the tokenizer
 * metadata of the file is read. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "shimmy tokenize MODEL (--text TEXT | --file PATH|-) [--no-bos] [--no-special] [--json]";

static void help(void) {
    printf("usage: %s\n\n"
           "  --text TEXT    the text to tokenize\n"
           "  --file PATH    read the text from a file ('-' = standard input), bytes as is\n"
           "  --no-bos       do not add BOS/EOS even when the model asks for them\n"
           "  --no-special   treat special-token text (<|im_end|>, </s>...) as plain text\n"
           "  --json         print {\"tokens\":[...],\"pieces\":[...]}\n",
           usage);
}

#define MAX_TEXT ((size_t)1 << 30) /* what the tokenizer accepts at once */

/* A piece that is not valid UTF-8 (a byte token, part of a character) cannot be a JSON string:
 * it is written as the array of its byte values. */
static json_t *piece_json(const shimmy_vocab *v, int32_t id, char **buf, size_t *cap) {
    size_t n = shimmy_token_piece(v, id, true, *buf, *cap);
    if (n > *cap) {
        char *b = realloc(*buf, n);
        if (!b) return NULL;
        *buf = b;
        *cap = n;
        n = shimmy_token_piece(v, id, true, *buf, *cap);
    }
    if (cli_utf8_valid(*buf, n)) return json_stringn(*buf, n);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer((unsigned char)(*buf)[i]));
    return a;
}

static int print_json(const shimmy_vocab *v, const int32_t *ids, size_t n) {
    json_t *root = json_object(), *jids = json_array(), *pieces = json_array();
    size_t cap = 256;
    char *buf = malloc(cap);
    if (!root || !jids || !pieces || !buf) {
        free(buf);
        json_decref(root);
        json_decref(jids);
        json_decref(pieces);
        fprintf(stderr, "shimmy: error: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(jids, json_integer(ids[i]));
        json_array_append_new(pieces, piece_json(v, ids[i], &buf, &cap));
    }
    free(buf);
    json_object_set_new(root, "tokens", jids);
    json_object_set_new(root, "pieces", pieces);
    json_dumpf(root, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(root);
    return 0;
}

int cli_cmd_tokenize(int argc, char **argv) {
    const char *model_arg = NULL, *text = NULL, *file = NULL;
    bool add_special = true, parse_special = true, as_json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return 0;
        } else if (strcmp(a, "--text") == 0 || strcmp(a, "--file") == 0) {
            if (i + 1 >= argc) return cli_usage_error("tokenize", usage, "%s needs a value", a);
            if (text || file)
                return cli_usage_error("tokenize", usage, "give one --text or one --file");
            if (a[2] == 't')
                text = argv[++i];
            else
                file = argv[++i];
        } else if (strcmp(a, "--no-bos") == 0)
            add_special = false;
        else if (strcmp(a, "--no-special") == 0)
            parse_special = false;
        else if (strcmp(a, "--json") == 0)
            as_json = true;
        else if (a[0] == '-' && a[1])
            return cli_usage_error("tokenize", usage, "unknown option %s", a);
        else if (!model_arg)
            model_arg = a;
        else
            return cli_usage_error("tokenize", usage, "unexpected argument '%s'", a);
    }
    if (!model_arg)
        return cli_usage_error("tokenize", usage, "which model? (a .gguf path or a name)");
    if (!text && !file)
        return cli_usage_error("tokenize", usage, "give --text TEXT or --file PATH");

    shimmy_error err;
    shimmy_error_clear(&err);
    char path[4096];
    shimmy_vocab *v = NULL;
    if (cli_resolve_model(model_arg, path, sizeof path, &err) || shimmy_vocab_open(path, &v, &err))
        return cli_fail(&err);
    size_t len = 0;
    char *owned = NULL;
    if (file) {
        owned = cli_read_file(file, true, MAX_TEXT, &len, &err);
        if (!owned) {
            shimmy_vocab_free(v);
            return cli_fail(&err);
        }
        text = owned;
    } else
        len = strlen(text);

    int32_t *ids = NULL;
    size_t n = 0;
    unsigned flags = (add_special ? SHIMMY_TOKENIZE_ADD_SPECIAL : 0) |
                     (parse_special ? SHIMMY_TOKENIZE_PARSE_SPECIAL : 0);
    int rc = 0;
    if (shimmy_tokenize(v, text, len, flags, &ids, &n, &err))
        rc = cli_fail(&err);
    else if (as_json)
        rc = print_json(v, ids, n);
    else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        fputc('\n', stdout);
    }
    if (fflush(stdout) != 0 && rc == 0) rc = 1;
    shimmy_free(ids);
    free(owned);
    shimmy_vocab_free(v);
    return rc;
}
