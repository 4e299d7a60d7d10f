/* A mapped GGUF file that is truncated, rewritten or replaced on disk: reading tensor data past
 * the new end must not raise SIGBUS in the process (core_mapguard), gguf_damaged and
 * gguf_check_unchanged must say what happened, and a SIGBUS outside any guarded mapping must
 * still end the process (the guard passes it on to the handler installed before it). */
#include "fixture.h"
#include "gguf/gguf.h"
#include "test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool copy_file(const char *from, const char *to) {
    size_t n = 0;
    char *b = test_read_file(from, &n);
    FILE *f = b ? fopen(to, "wb") : NULL;
    bool ok = f && fwrite(b, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    free(b);
    return ok;
}

/* Sums every byte of every tensor: touches every data page of the mapping. */
static unsigned sum_tensors(const gguf_file *f) {
    volatile unsigned s = 0;
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const unsigned char *p = t->data;
        for (uint64_t k = 0; k < t->nbytes; k++) s += p[k];
    }
    return s;
}

static void test_truncated(const char *path) {
    gguf_file *f = NULL;
    shimmy_error err;
    CHECK(gguf_open(path, &f, &err) == SHIMMY_OK);
    if (!f) return;
    unsigned before = sum_tensors(f);
    CHECK(!gguf_damaged(f));
    CHECK(gguf_check_unchanged(f, &err) == SHIMMY_OK);
    /* Keep the header and the first page of data: the rest of the mapping is past the end. */
    CHECK(truncate(path, (off_t)(gguf_data_offset(f) + 4096)) == 0);
    unsigned after = sum_tensors(f); /* would be SIGBUS without the guard */
    CHECK(gguf_damaged(f));
    CHECK(before != after); /* the pages past the end read as zeros */
    CHECK(gguf_check_unchanged(f, &err) == SHIMMY_ERR_IO);
    CHECK(strstr(err.message, "truncated") != NULL);
    CHECK(err.where[0] != '\0');
    gguf_close(f);
    /* A new open of the short file is a clean format error. */
    CHECK(gguf_open(path, &f, &err) == SHIMMY_ERR_FORMAT);
}

static void test_replaced(const char *dir, const char *orig) {
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);
    CHECK(copy_file(orig, a) && copy_file(orig, b));
    gguf_file *f = NULL;
    shimmy_error err;
    CHECK(gguf_open(a, &f, &err) == SHIMMY_OK);
    if (!f) return;
    /* Replaced by rename: the old mapping stays readable, the path holds another file. */
    CHECK(rename(b, a) == 0);
    sum_tensors(f);
    CHECK(!gguf_damaged(f));
    CHECK(gguf_check_unchanged(f, &err) == SHIMMY_ERR_IO);
    CHECK(strstr(err.message, "replaced") != NULL);
    gguf_close(f);
    /* Rewritten in place with the same size: the modification time tells. */
    CHECK(gguf_open(a, &f, &err) == SHIMMY_OK);
    if (!f) return;
    struct timespec ts[2] = {{0, UTIME_OMIT}, {12345, 0}};
    CHECK(utimensat(AT_FDCWD, a, ts, 0) == 0);
    CHECK(gguf_check_unchanged(f, &err) == SHIMMY_ERR_IO);
    CHECK(strstr(err.message, "rewritten") != NULL);
    gguf_close(f);
    /* Removed. */
    CHECK(gguf_open(a, &f, &err) == SHIMMY_OK);
    CHECK(unlink(a) == 0);
    CHECK(gguf_check_unchanged(f, &err) == SHIMMY_ERR_IO);
    gguf_close(f);
    /* A buffer in memory never changes. */
    size_t n = 0;
    char *buf = test_read_file(orig, &n);
    CHECK(buf && gguf_open_memory(buf, n, "mem", &f, &err) == SHIMMY_OK);
    CHECK(gguf_check_unchanged(f, &err) == SHIMMY_OK && !gguf_damaged(f));
    gguf_close(f);
    free(buf);
}

/* A SIGBUS in a mapping nobody guards still ends the process (in a child). */
static void test_unguarded(const char *dir, const char *orig) {
    char p[700];
    snprintf(p, sizeof p, "%s/raw.bin", dir);
    CHECK(copy_file(orig, p));
    gguf_file *f = NULL;
    shimmy_error err;
    CHECK(gguf_open(orig, &f, &err) == SHIMMY_OK); /* the guard's handler is installed */
    gguf_close(f);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY); /* ASan's report of the SIGBUS is expected */
        if (devnull >= 0) dup2(devnull, 2);
        int fd = open(p, O_RDWR);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0) _exit(3);
        volatile const unsigned char *m =
            mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED || ftruncate(fd, 0) != 0) _exit(3);
        unsigned s = m[sb.st_size - 1];
        _exit(s == 12345 ? 4 : 0); /* reaching here means the SIGBUS was swallowed */
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    /* Killed by SIGBUS, or (under ASan) its report and a failure exit. */
    CHECK_MSG(WIFSIGNALED(status) ||
                  (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3),
              "child status %d", status);
}

int main(void) {
    char dir[512], path[700], copy[800];
    fixture_write_default(dir, sizeof dir, path, sizeof path);
    snprintf(copy, sizeof copy, "%s/copy.gguf", dir);
    CHECK(copy_file(path, copy));
    test_truncated(copy);
    test_replaced(dir, path);
    test_unguarded(dir, path);
    test_rm_rf(dir);
    return test_finish("gguf/truncated");
}
