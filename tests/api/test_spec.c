/* Specs and options: every bad field is named at once, defaults are zero, the declarative form
 * validates like the builder, and odd paths (missing, directory, FIFO, not GGUF) fail cleanly. */
#include "fixture.h"
#include "shimmy.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static char dir[256], model[512], text_file[512], fifo[512];

/* True when `field` is one of the comma-separated names of where. */
static bool names(const char *where, const char *field) {
    size_t n = strlen(field);
    for (const char *p = where; (p = strstr(p, field)); p += n)
        if ((p == where || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

static void test_builder_names_every_bad_field(void) {
    shimmy_spec_builder *b = shimmy_spec_new();
    CHECK(b != NULL);
    shimmy_spec_set_base_path(b, "/nonexistent/model.gguf");
    shimmy_spec_add_lora(b, "/nonexistent/adapter.gguf", 1.0f);
    shimmy_spec_set_template(b, "no-such-family");
    shimmy_spec_set_ctx_len(b, -1);
    shimmy_spec_set_threads(b, 100000);
    shimmy_spec_set_device(b, "tpu");
    shimmy_gen_options g = {.temperature = 50.0f, .top_p = 1.5f};
    shimmy_spec_set_generation(b, &g);
    shimmy_spec *spec = (shimmy_spec *)1;
    shimmy_error err;
    shimmy_status st = shimmy_spec_build(b, &spec, &err);
    CHECK_EQ_INT(st, SHIMMY_ERR_INVALID_ARG); /* mixed causes */
    CHECK(spec == NULL);
    const char *want[] = {"name",
                          "base_path",
                          "lora[0]",
                          "template",
                          "ctx_len",
                          "threads",
                          "device",
                          "generation.temperature",
                          "generation.top_p"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(names(err.where, want[i]), "'%s' not named in where '%s'", want[i], err.where);
    CHECK(strstr(err.message, "9 problems") != NULL);
    CHECK(strstr(err.message, "/nonexistent/model.gguf") != NULL);

    /* the builder is kept: fix the fields one by one */
    shimmy_spec_set_name(b, "prod");
    shimmy_spec_set_base_path(b, model);
    shimmy_spec_set_template(b, "chatml");
    shimmy_spec_set_ctx_len(b, 128);
    shimmy_spec_set_threads(b, 1);
    shimmy_spec_set_generation(b, &(shimmy_gen_options){.temperature = 0.7f, .top_p = 0.9f});
    st = shimmy_spec_build(b, &spec, &err);
    CHECK_EQ_INT(st, SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "lora[0],device");
    shimmy_spec_builder_free(b);

    b = shimmy_spec_new();
    shimmy_spec_set_name(b, "prod");
    shimmy_spec_set_base_path(b, model);
    shimmy_spec_set_device(b, "cpu");
    shimmy_spec_set_ctx_len(b, 128);
    st = shimmy_spec_build(b, &spec, &err);
    CHECK_EQ_INT(st, SHIMMY_OK);
    shimmy_spec_builder_free(b); /* the spec owns its copies */
    CHECK_STR(shimmy_spec_name(spec), "prod");
    CHECK_STR(shimmy_spec_base_path(spec), model);
    CHECK_EQ_INT(shimmy_spec_ctx_len(spec), 128);
    CHECK_EQ_INT(shimmy_spec_lora_count(spec), 0);
    CHECK(shimmy_spec_lora_path(spec, 0) == NULL);
    shimmy_spec_free(spec);
}

static shimmy_status build_one(const char *base, const char *device, shimmy_error *err) {
    shimmy_spec_builder *b = shimmy_spec_new();
    shimmy_spec_set_name(b, "m");
    shimmy_spec_set_base_path(b, base);
    shimmy_spec_set_device(b, device);
    shimmy_spec *spec = NULL;
    shimmy_status st = shimmy_spec_build(b, &spec, err);
    shimmy_spec_builder_free(b);
    shimmy_spec_free(spec);
    return st;
}

static void test_single_causes(void) {
    shimmy_error err;
    /* every device string the loader accepts; the device itself is looked for at load */
    const char *good[] = {"cpu", "auto", "gpu", "vulkan", "vulkan:0", "vulkan:63", "cuda"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_MSG(build_one(model, good[i], &err) == SHIMMY_OK, "device '%s': %s", good[i],
                  err.message);
    const char *bad[] = {"tpu", "vulkan:x", "vulkan:", "vulkan:64", "vulkan:-1", "GPU", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!*bad[i]) continue; /* "" is "not set" (SHIMMY_DEVICE, else auto) */
        CHECK_MSG(build_one(model, bad[i], &err) == SHIMMY_ERR_INVALID_ARG, "device '%s'", bad[i]);
        CHECK_STR(err.where, "device");
        CHECK_MSG(strstr(err.message, bad[i]) && strstr(err.message, "cpu") &&
                      strstr(err.message, "auto") && strstr(err.message, "vulkan:N") &&
                      strstr(err.message, "cuda"),
                  "%s", err.message);
    }
    CHECK_EQ_INT(build_one(model, "", &err), SHIMMY_OK);
    CHECK_EQ_INT(build_one("/nonexistent/x.gguf", NULL, &err), SHIMMY_ERR_NOT_FOUND);
    CHECK_STR(err.where, "base_path");
    CHECK_EQ_INT(build_one(text_file, NULL, &err), SHIMMY_ERR_FORMAT);
    CHECK_STR(err.where, "base_path");
    CHECK(strstr(err.message, "not a GGUF") != NULL);
    CHECK_EQ_INT(build_one(dir, NULL, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "not a regular file") != NULL);
    CHECK_EQ_INT(build_one(fifo, NULL, &err), SHIMMY_ERR_INVALID_ARG); /* and does not hang */
    CHECK_EQ_INT(build_one(NULL, NULL, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "base_path");
    shimmy_spec *spec = (shimmy_spec *)1;
    CHECK_EQ_INT(shimmy_spec_build(NULL, &spec, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK(spec == NULL);
    CHECK_EQ_INT(shimmy_spec_from_config(NULL, &spec, &err), SHIMMY_ERR_INVALID_ARG);
}

/* gpu_layers: 0 = all, N > 0 the first N, negative refused; in both forms */
static void test_gpu_layers(void) {
    shimmy_error err;
    shimmy_spec *spec = NULL;
    shimmy_spec_builder *b = shimmy_spec_new();
    shimmy_spec_set_name(b, "m");
    shimmy_spec_set_base_path(b, model);
    shimmy_spec_set_device(b, "gpu");
    shimmy_spec_set_gpu_layers(b, 12);
    CHECK_EQ_INT(shimmy_spec_build(b, &spec, &err), SHIMMY_OK);
    shimmy_spec_free(spec);
    shimmy_spec_set_gpu_layers(b, -1);
    CHECK_EQ_INT(shimmy_spec_build(b, &spec, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "gpu_layers");
    CHECK(strstr(err.message, "-1") && strstr(err.message, "0 = all"));
    shimmy_spec_builder_free(b);
    shimmy_model_config c = SHIMMY_MODEL_CONFIG(.name = "m", .base_path = model,
                                                .device = "vulkan:x", .gpu_layers = -2);
    CHECK_EQ_INT(shimmy_spec_from_config(&c, &spec, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "device,gpu_layers");
    c.device = "vulkan:1";
    c.gpu_layers = 0;
    CHECK_EQ_INT(shimmy_spec_from_config(&c, &spec, &err), SHIMMY_OK);
    shimmy_spec_free(spec);
}

static void test_config_form(void) {
    shimmy_spec *spec = NULL;
    shimmy_error err;
    shimmy_model_config ok =
        SHIMMY_MODEL_CONFIG(.name = "prod", .base_path = model, .template = "chatml",
                            .ctx_len = 200,
                            .generation = {
                                .max_tokens = 64, .temperature = 0.7f, .top_p = 0.9f, .top_k = 40});
    CHECK_EQ_INT(shimmy_spec_from_config(&ok, &spec, &err), SHIMMY_OK);
    CHECK_STR(shimmy_spec_name(spec), "prod");
    shimmy_spec_free(spec);

    shimmy_model_config bad =
        SHIMMY_MODEL_CONFIG(.name = "prod", .base_path = model,
                            .lora_path = "/nonexistent/lora.gguf", .ctx_len = 100,
                            .generation = {.max_tokens = 100, .top_k = -1});
    CHECK(shimmy_spec_from_config(&bad, &spec, &err) != SHIMMY_OK);
    CHECK(spec == NULL);
    CHECK(names(err.where, "lora[0]"));
    CHECK(names(err.where, "generation.top_k"));
    CHECK(names(err.where, "generation.max_tokens")); /* leaves no room in ctx_len */
    CHECK(!names(err.where, "name") && !names(err.where, "base_path"));

    /* stop strings are copied, so the caller's array may go away */
    char stop0[] = "END";
    const char *stops[] = {stop0};
    shimmy_model_config st = SHIMMY_MODEL_CONFIG(.name = "s", .base_path = model,
                                                 .generation = {.stop = stops, .n_stop = 1});
    CHECK_EQ_INT(shimmy_spec_from_config(&st, &spec, &err), SHIMMY_OK);
    stop0[0] = 'X';
    shimmy_spec_free(spec);
}

typedef struct option_case {
    const char *field;
    shimmy_gen_options o;
} option_case;

static void test_options(void) {
    static const char *empty_stop[] = {""};
    static const char *null_stop[] = {NULL};
    char long_stop[SHIMMY_MAX_STOP_LEN + 2];
    memset(long_stop, 'x', sizeof long_stop - 1);
    long_stop[sizeof long_stop - 1] = '\0';
    const char *long_stops[] = {long_stop};
    const option_case cases[] = {
        {"max_tokens", {.max_tokens = -1}},
        {"max_tokens", {.max_tokens = SHIMMY_MAX_TOKENS_LIMIT + 1}},
        {"temperature", {.temperature = -0.1f}},
        {"temperature", {.temperature = NAN}},
        {"temperature", {.temperature = INFINITY}},
        {"top_k", {.top_k = -5}},
        {"top_p", {.top_p = 1.01f}},
        {"min_p", {.min_p = -1.0f}},
        {"repeat_penalty", {.repeat_penalty = 11.0f}},
        {"frequency_penalty", {.frequency_penalty = 2.5f}},
        {"presence_penalty", {.presence_penalty = -3.0f}},
        {"repeat_last_n", {.repeat_last_n = -2}},
        {"queue_len", {.queue_len = 5000}},
        {"stop", {.stop = empty_stop, .n_stop = 1}},
        {"stop", {.stop = null_stop, .n_stop = 1}},
        {"stop", {.stop = NULL, .n_stop = 2}},
        {"stop", {.stop = long_stops, .n_stop = 1}},
        {"stop", {.stop = empty_stop, .n_stop = SHIMMY_MAX_STOP + 1}},
    };
    shimmy_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        shimmy_status st = shimmy_gen_options_check(&cases[i].o, &err);
        CHECK_MSG(st == SHIMMY_ERR_INVALID_ARG, "case %zu (%s): status %s", i, cases[i].field,
                  shimmy_status_name(st));
        CHECK_MSG(strcmp(err.where, cases[i].field) == 0, "case %zu: where '%s', want '%s'", i,
                  err.where, cases[i].field);
        CHECK_MSG(strstr(err.message, cases[i].field) != NULL, "case %zu: message '%s'", i,
                  err.message);
    }
    /* zero is valid everywhere, as are the limits themselves */
    CHECK_EQ_INT(shimmy_gen_options_check(&(shimmy_gen_options){0}, &err), SHIMMY_OK);
    shimmy_gen_options edge = {.max_tokens = SHIMMY_MAX_TOKENS_LIMIT,
                               .temperature = 10.0f,
                               .top_p = 1.0f,
                               .min_p = 1.0f,
                               .frequency_penalty = -2.0f,
                               .seed = SHIMMY_SEED_RANDOM,
                               .queue_len = 4096};
    CHECK_EQ_INT(shimmy_gen_options_check(&edge, &err), SHIMMY_OK);
    CHECK_EQ_INT(shimmy_gen_options_check(NULL, &err), SHIMMY_ERR_INVALID_ARG);

    /* several bad fields are all reported */
    shimmy_gen_options two = {.temperature = -1.0f, .top_k = -1};
    CHECK_EQ_INT(shimmy_gen_options_check(&two, &err), SHIMMY_ERR_INVALID_ARG);
    CHECK_STR(err.where, "temperature,top_k");

    shimmy_gen_options m = SHIMMY_GEN_OPTIONS_MAX(256, .temperature = 0.5f, .top_k = 7);
    CHECK_EQ_INT(m.max_tokens, 256);
    CHECK_NEAR(m.temperature, 0.5, 0);
    CHECK_EQ_INT(m.top_k, 7);
    shimmy_gen_options only = SHIMMY_GEN_OPTIONS_MAX(SHIMMY_MAX_TOKENS_LIMIT);
    CHECK_EQ_INT(only.max_tokens, SHIMMY_MAX_TOKENS_LIMIT);
    CHECK_NEAR(only.temperature, 0, 0);
    shimmy_gen_options d = SHIMMY_GEN_OPTIONS(.top_p = 0.5f);
    CHECK_NEAR(d.top_p, 0.5, 0);
    CHECK_EQ_INT(d.max_tokens, 0);
}

static void test_errors(void) {
    shimmy_error err;
    CHECK_EQ_INT(shimmy_error_set(&err, SHIMMY_ERR_MODEL_NOT_FOUND, "prod", "no model %s", "x"),
                 SHIMMY_ERR_MODEL_NOT_FOUND);
    CHECK_STR(err.message, "no model x");
    CHECK_STR(err.where, "prod");
    CHECK_EQ_INT(shimmy_error_set(NULL, SHIMMY_ERR_IO, NULL, "x"), SHIMMY_ERR_IO);
    CHECK_STR(shimmy_finish_name(SHIMMY_FINISH_CANCELLED), "cancelled");
    CHECK_STR(shimmy_finish_name((shimmy_finish)42), "unknown");
}

int main(void) {
    if (!test_tmpdir(dir, sizeof dir)) test_skip("no temporary directory");
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    snprintf(text_file, sizeof text_file, "%s/notes.gguf", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.gguf", dir);
    fixture_params p = fixture_params_default();
    shimmy_error err;
    if (fixture_write_llama(model, &p, &err)) test_skip(err.message);
    FILE *f = fopen(text_file, "w");
    if (f) fputs("just text\n", f), fclose(f);
    CHECK(mkfifo(fifo, 0600) == 0);

    test_builder_names_every_bad_field();
    test_single_causes();
    test_gpu_layers();
    test_config_form();
    test_options();
    test_errors();
    test_rm_rf(dir);
    return test_finish("api/spec");
}
