/*
 * bench_discover [N_FILES] [REPEATS] — discovery speed of the registry.
 *
 * Builds a tree of N_FILES small GGUF model headers (default 10,000) spread over nested folders
 * (four levels, 100 files a folder), plus one non-GGUF file per ten models, one LoRA adapter per
 * hundred models, and a few corrupt files, in a temporary directory; then times registry_scan
 * over it REPEATS times (default 5) with the default thread count and with one thread, and prints
 * the best and median wall times and the median CPU time (user + system, all threads: the figure
 * that does not depend on how busy the machine is). The page cache is warm (the tree was just
 * written), which is the normal case for a server rescanning a model folder.
 */
#include "gguf/gguf.h"
#include "registry/registry.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static unsigned char *make_gguf(const char *tmp, const char *arch, const char *type, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/template.gguf", tmp);
    gguf_writer *w = NULL;
    if (gguf_writer_new(&w, NULL)) return NULL;
    gguf_writer_set_str(w, "general.architecture", arch);
    if (type) gguf_writer_set_str(w, "general.type", type);
    gguf_writer_set_str(w, "general.name", "bench model");
    gguf_writer_set_u32(w, "general.file_type", 2);
    gguf_writer_set_u32(w, "llama.context_length", 4096);
    gguf_writer_set_str(w, "tokenizer.chat_template", "{{ '<|im_start|>' }}");
    float data[64] = {0};
    int64_t ne[2] = {8, 8};
    gguf_writer_add_tensor(w, "token_embd.weight", GGUF_T_F32, 2, ne, data);
    gguf_writer_add_tensor(w, "output.weight", GGUF_T_F32, 2, ne, data);
    shimmy_status st = gguf_writer_write(w, path, NULL);
    gguf_writer_free(w);
    if (st) return NULL;
    unsigned char *bytes = (unsigned char *)test_read_file(path, len);
    remove(path);
    return bytes;
}

static int write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* CPU time of the whole process (all threads), so a loaded machine does not hide the cost. */
static double cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void time_scans(const char *root, int threads, int repeats, size_t expect) {
    double ms[64], cpu[64];
    size_t models = 0, adapters = 0, skipped = 0;
    for (int r = 0; r < repeats; r++) {
        registry_options o = {0};
        o.dirs = root;
        o.ignore_env = true;
        o.disable = REGISTRY_NO_DEFAULTS;
        o.n_threads = threads;
        registry *reg = NULL;
        shimmy_error err;
        double t0 = core_time_ms(), c0 = cpu_ms();
        if (registry_scan(&o, &reg, &err)) {
            fprintf(stderr, "scan failed: %s\n", err.message);
            return;
        }
        ms[r] = core_time_ms() - t0;
        cpu[r] = cpu_ms() - c0;
        models = registry_count(reg);
        adapters = registry_adapter_count(reg);
        skipped = registry_skipped_count(reg);
        registry_free(reg);
    }
    qsort(ms, (size_t)repeats, sizeof ms[0], cmp_double);
    qsort(cpu, (size_t)repeats, sizeof cpu[0], cmp_double);
    printf("threads %-7s models %zu (expected %zu), adapters %zu, skipped %zu: wall best %.1f ms, "
           "median %.1f ms; cpu median %.1f ms\n",
           threads ? "1" : "default", models, expect, adapters, skipped, ms[0], ms[repeats / 2],
           cpu[repeats / 2]);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    int repeats = argc > 2 ? atoi(argv[2]) : 5;
    if (n < 1 || n > 1000000 || repeats < 1 || repeats > 64) {
        fprintf(stderr, "usage: bench_discover [N_FILES 1..1000000] [REPEATS 1..64]\n");
        return 2;
    }
    char tmp[512];
    if (!test_tmpdir(tmp, sizeof tmp)) {
        fprintf(stderr, "no temporary directory\n");
        return 1;
    }
    size_t mlen = 0, alen = 0;
    unsigned char *model = make_gguf(tmp, "llama", NULL, &mlen);
    unsigned char *adapter = make_gguf(tmp, "qwen2", "adapter", &alen);
    if (!model || !adapter) {
        fprintf(stderr, "cannot write the template GGUF files\n");
        return 1;
    }
    double t0 = core_time_ms();
    char path[1024];
    size_t files = 0, n_models = 0;
    for (long i = 0; i < n; i++) {
        /* folders a/b/c/d, 100 files each: 10,000 files sit in 100 leaf folders */
        long d = i / 100;
        snprintf(path, sizeof path, "%s/t%ld", tmp, d / 1000);
        mkdir(path, 0755);
        snprintf(path + strlen(path), sizeof path - strlen(path), "/u%ld", (d / 100) % 10);
        mkdir(path, 0755);
        snprintf(path + strlen(path), sizeof path - strlen(path), "/v%ld", (d / 10) % 10);
        mkdir(path, 0755);
        snprintf(path + strlen(path), sizeof path - strlen(path), "/w%ld", d % 10);
        mkdir(path, 0755);
        size_t dl = strlen(path);
        snprintf(path + dl, sizeof path - dl, "/model-%06ld-Q4_0.gguf", i);
        if (write_bytes(path, model, mlen)) break;
        files++;
        n_models++;
        if (i % 10 == 0) {
            snprintf(path + dl, sizeof path - dl, "/readme-%06ld.txt", i);
            files += write_bytes(path, "not a model\n", 12) == 0;
        }
        if (i % 100 == 0) {
            snprintf(path + dl, sizeof path - dl, "/lora-%06ld.gguf", i);
            files += write_bytes(path, adapter, alen) == 0;
        }
        if (i % 1000 == 0) {
            snprintf(path + dl, sizeof path - dl, "/broken-%06ld.gguf", i);
            files += write_bytes(path, "GGUF\3\0\0\0garbage", 15) == 0;
        }
    }
    printf("tree: %zu files (%zu GGUF models of %zu bytes) written in %.0f ms under %s\n", files,
           n_models, mlen, core_time_ms() - t0, tmp);
    printf("cores: %d\n", core_physical_cores());
    time_scans(tmp, 0, repeats, n_models);
    time_scans(tmp, 1, repeats, n_models);
    free(model);
    free(adapter);
    test_rm_rf(tmp);
    return 0;
}
