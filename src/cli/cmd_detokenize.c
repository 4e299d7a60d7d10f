/* shimmy detokenize MODEL --tokens 1,2,3 [--no-special] [--json]
 *
 * Prints the text of token ids (the inverse of `shimmy tokenize`): pieces concatenated with the
 * model's leading-space rule; special tokens are shown unless --no-special. Plain output is the
 * exact bytes followed by a newline; --json gives {"text": ...} with invalid UTF-8 (a character
 * cut off by the ids given) replaced by U+FFFD. */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "shimmy detokenize MODEL --tokens ID,ID,... [--no-special] [--json]";

static void help(void) {
    printf("usage: %s\n\n"
           "  --tokens LIST  token ids separated by commas or spaces (\"[1, 2]\" works too)\n"
           "  --no-special   hide control tokens (BOS, <|im_end|>...) instead of printing them\n"
           "  --json         print {\"text\": ...}\n",
           usage);
}

/* Parses the id list; false (with *bad pointing at the offending text) on a malformed id. */
typedef struct id_list {
    int32_t *ids;
    size_t n, cap;
} id_list;

static bool push(id_list *b, int32_t id) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        int32_t *p = realloc(b->ids, cap * sizeof *p);
        if (!p) return false;
        b->ids = p;
        b->cap = cap;
    }
    b->ids[b->n++] = id;
    return true;
}

static bool parse_ids(const char *s, id_list *b, const char **bad) {
    const char *p = s;
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '[' || *p == ']') p++;
        if (!*p) return true;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        bool sep_ok = *end == '\0' || *end == ',' || *end == ' ' || *end == '\t' || *end == '\n' ||
                      *end == ']';
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || !sep_ok) {
            *bad = p;
            return false;
        }
        if (!push(b, (int32_t)v)) {
            *bad = "(out of memory)";
            return false;
        }
        p = end;
    }
}

int cli_cmd_detokenize(int argc, char **argv) {
    const char *model_arg = NULL, *list = NULL;
    bool special = true, as_json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return 0;
        } else if (strcmp(a, "--tokens") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("detokenize", usage, "--tokens needs a value");
            list = argv[++i];
        } else if (strcmp(a, "--no-special") == 0)
            special = false;
        else if (strcmp(a, "--json") == 0)
            as_json = true;
        else if (a[0] == '-' && a[1])
            return cli_usage_error("detokenize", usage, "unknown option %s", a);
        else if (!model_arg)
            model_arg = a;
        else
            return cli_usage_error("detokenize", usage, "unexpected argument '%s'", a);
    }
    if (!model_arg)
        return cli_usage_error("detokenize", usage, "which model? (a .gguf path or a name)");
    if (!list) return cli_usage_error("detokenize", usage, "give --tokens ID,ID,...");
    id_list b = {0};
    const char *bad = NULL;
    if (!parse_ids(list, &b, &bad)) {
        free(b.ids);
        return cli_usage_error("detokenize", usage, "--tokens: '%.20s' is not a token id", bad);
    }

    shimmy_error err;
    shimmy_error_clear(&err);
    char path[4096];
    shimmy_vocab *v = NULL;
    if (cli_resolve_model(model_arg, path, sizeof path, &err) ||
        shimmy_vocab_open(path, &v, &err)) {
        free(b.ids);
        return cli_fail(&err);
    }
    int rc = 0;
    char *text = NULL;
    size_t len = 0;
    unsigned flags =
        (special ? SHIMMY_DETOKENIZE_SPECIAL : 0) | (as_json ? SHIMMY_DETOKENIZE_VALID_UTF8 : 0);
    if (shimmy_detokenize(v, b.ids, b.n, flags, &text, &len, &err))
        rc = cli_fail(&err);
    else if (as_json) {
        json_t *root = json_pack("{s:o}", "text", json_stringn(text, len));
        if (!root || json_dumpf(root, stdout, JSON_COMPACT) != 0) rc = 1;
        fputc('\n', stdout);
        json_decref(root);
    } else {
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
    }
    if (fflush(stdout) != 0 && rc == 0) rc = 1;
    shimmy_free(text);
    free(b.ids);
    shimmy_vocab_free(v);
    return rc;
}
