/* Two models registered with one manager, each streamed by its own thread with the pull API.
 * usage: example_two_models MODEL_A.gguf MODEL_B.gguf */
#include <pthread.h>
#include <shimmy.h>
#include <stdio.h>
#include <string.h>

typedef struct worker {
    shimmy_manager *mgr;
    const char *name;
    char text[4096];
    shimmy_status status;
    shimmy_error err;
} worker;

static void *run(void *arg) {
    worker *w = arg;
    shimmy_model *m = NULL;
    shimmy_stream *s = NULL;
    shimmy_gen_options opts = SHIMMY_GEN_OPTIONS_MAX(24, .queue_len = 4);
    if ((w->status = shimmy_manager_get(w->mgr, w->name, &m, &w->err))) return NULL;
    w->status = shimmy_stream_open(m, "The capital of France is", &opts, &s, &w->err);
    shimmy_model_unref(m); /* the stream holds its own reference */
    if (w->status) return NULL;
    const char *piece;
    size_t len, used = 0;
    while (shimmy_stream_next(s, &piece, &len) == SHIMMY_OK && piece) {
        if (used + len < sizeof w->text) memcpy(w->text + used, piece, len), used += len;
    }
    w->text[used] = '\0';
    w->status = shimmy_stream_result(s, NULL, &w->err);
    shimmy_stream_free(s);
    return NULL;
}

static shimmy_status add(shimmy_manager *mgr, const char *name, const char *path,
                         shimmy_error *err) {
    shimmy_spec *spec = NULL;
    shimmy_model_config cfg = SHIMMY_MODEL_CONFIG(.name = name, .base_path = path, .threads = 1);
    shimmy_status st = shimmy_spec_from_config(&cfg, &spec, err);
    if (!st) st = shimmy_manager_add(mgr, spec, err);
    shimmy_spec_free(spec);
    return st;
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: %s MODEL_A.gguf MODEL_B.gguf\n", argv[0]), 2;
    shimmy_error err;
    shimmy_manager *mgr = NULL;
    if (shimmy_manager_new(NULL, &mgr, &err) || add(mgr, "a", argv[1], &err) ||
        add(mgr, "b", argv[2], &err)) {
        fprintf(stderr, "error: %s (%s)\n", err.message, err.where);
        return shimmy_manager_free(mgr), 1;
    }
    worker w[2] = {{.mgr = mgr, .name = "a"}, {.mgr = mgr, .name = "b"}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, run, &w[i]);
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        if (w[i].status)
            fprintf(stderr, "%s: error: %s (%s)\n", w[i].name, w[i].err.message, w[i].err.where),
                rc = 1;
        else
            printf("%s: %s\n", w[i].name, w[i].text);
    }
    shimmy_manager_free(mgr);
    return rc;
}
