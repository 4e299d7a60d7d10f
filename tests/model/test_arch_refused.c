/*
 * Known but unsupported architectures (gemma3n, gemma4) are refused at load with an error that
 * says what they need, and an unknown one with the list of supported names. The files are
 * written here: metadata only, since the architecture is checked before any tensor.
 */
#include "gguf/gguf.h"
#include "model/model.h"
#include "test.h"

static void check_refusal(const char *dir, const char *arch, const char *needle) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, arch);
    gguf_writer *w = NULL;
    shimmy_error err;
    CHECK(gguf_writer_new(&w, &err) == SHIMMY_OK);
    if (!w) return;
    gguf_writer_set_str(w, "general.architecture", arch);
    char key[128];
    snprintf(key, sizeof key, "%s.block_count", arch);
    gguf_writer_set_u32(w, key, 2);
    CHECK_MSG(gguf_writer_write(w, path, &err) == SHIMMY_OK, "%s", err.message);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    model *m = NULL;
    CHECK_MSG(gguf_open(path, &f, &err) == SHIMMY_OK, "%s", err.message);
    if (!f) return;
    const shimmy_status st = model_load(f, &m, &err);
    CHECK_EQ_INT(st, SHIMMY_ERR_UNSUPPORTED);
    CHECK_MSG(m == NULL, "%s loaded", arch);
    if (st != SHIMMY_OK) {
        printf("%s: %s\n", arch, err.message);
        CHECK_MSG(strstr(err.message, arch) && strstr(err.message, needle),
                  "%s: the error should name the architecture and '%s': %s", arch, needle,
                  err.message);
    }
    model_free(m);
    gguf_close(f);
}

int main(void) {
    char dir[1024];
    if (!test_tmpdir(dir, sizeof dir)) test_skip("no temporary directory");
    check_refusal(dir, "gemma3n", "AltUp");
    check_refusal(dir, "gemma4", "shared_kv_layers");
    check_refusal(dir, "gemma4-assistant", "gemma4 block");
    /* an architecture nobody knows: the supported list, gemma2 and gemma3 on it */
    check_refusal(dir, "nosucharch", "gemma3");
    check_refusal(dir, "nosucharch2", "gemma2");
    test_rm_rf(dir);
    return test_finish("model/arch_refused");
}
