/* Loads a model and streams a completion to stdout with the callback API.
 * usage: example_stream MODEL.gguf [PROMPT] */
#include <shimmy.h>
#include <stdio.h>

static shimmy_next print_piece(const char *piece, size_t len, void *user) {
    (void)user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return SHIMMY_CONTINUE;
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: %s MODEL.gguf [PROMPT]\n", argv[0]), 2;
    shimmy_error err;
    shimmy_spec *spec = NULL;
    shimmy_model *model = NULL;
    shimmy_result res;
    shimmy_model_config cfg = SHIMMY_MODEL_CONFIG(.name = "example", .base_path = argv[1],
                                                  .generation = {.max_tokens = 32});
    if (shimmy_spec_from_config(&cfg, &spec, &err) || shimmy_model_load(spec, &model, &err) ||
        shimmy_generate(model, argc > 2 ? argv[2] : "Once upon a time", NULL, print_piece, NULL,
                        &res, &err)) {
        fprintf(stderr, "\nerror: %s (%s)\n", err.message, err.where);
        return shimmy_model_unref(model), shimmy_spec_free(spec), 1;
    }
    printf("\n[%s, %d prompt + %d generated tokens]\n", shimmy_finish_name(res.finish),
           res.prompt_tokens, res.completion_tokens);
    shimmy_model_unref(model);
    shimmy_spec_free(spec);
    return 0;
}
