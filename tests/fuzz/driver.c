/*
 * driver.c — a small stand-in for libFuzzer's main, so every fuzz target also runs in `make test`
 * with gcc and the ASan+UBSan library copy (no clang, no second instrumented build).
 *
 *   fuzzsmoke_<name> [-dict=FILE] [-seconds=N] [-seed=N] [-max_len=N] PATH...
 *
 * Replays every file under the PATHs (folders are read one level deep, in name order: seeds and
 * regression inputs), then feeds random mutations of them (bit flips, byte edits, inserted and
 * deleted ranges, splices, dictionary words) to the target for N seconds (FUZZ_SMOKE_SECONDS,
 * default 3). There is no coverage feedback: this is a smoke run that catches regressions and
 * shallow bugs cheaply; real fuzzing is `make fuzz` (libFuzzer). The seed is fixed by default so
 * a CI failure reproduces; the input that failed (a sanitizer report, an abort, a hang past
 * FUZZ_SMOKE_TIMEOUT seconds) is written to ./fuzz-crash-<pid> with its path printed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

typedef struct blobs {
    blob *v;
    size_t n, cap;
} blobs;

static const uint8_t *cur_data;
static size_t cur_size;
static char crash_path[64];

static void push(blobs *b, uint8_t *p, size_t n) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->v = realloc(b->v, b->cap * sizeof *b->v);
        if (!b->v) abort();
    }
    b->v[b->n++] = (blob){p, n};
}

/* Only async-signal-safe calls: this runs from a signal handler or a sanitizer's death path. */
static void save_input(void) {
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    for (size_t o = 0; o < cur_size;) {
        ssize_t w = write(fd, cur_data + o, cur_size - o);
        if (w <= 0) break;
        o += (size_t)w;
    }
    close(fd);
    static const char msg[] = "\nfuzz driver: the failing input is in ./";
    if (write(2, msg, sizeof msg - 1) < 0 || write(2, crash_path, strlen(crash_path)) < 0 ||
        write(2, "\n", 1) < 0)
        return;
}

static void on_signal(int sig) {
    if (sig == SIGALRM) {
        static const char msg[] = "fuzz driver: one input ran past FUZZ_SMOKE_TIMEOUT (a hang)\n";
        if (write(2, msg, sizeof msg - 1) < 0) _exit(1);
    }
    save_input();
    signal(sig, SIG_DFL);
    raise(sig == SIGALRM ? SIGABRT : sig);
}

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    uint8_t *p = malloc(cap);
    for (size_t r; p && (r = fread(p + len, 1, cap - len, f)) > 0;) {
        len += r;
        if (len == cap) p = realloc(p, cap *= 2);
    }
    fclose(f);
    *n = len;
    return p;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_path(const char *path, blobs *corpus) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "fuzz driver: cannot read %s\n", path);
        exit(1);
    }
    if (!S_ISDIR(sb.st_mode)) {
        size_t n;
        uint8_t *p = read_file(path, &n);
        if (!p) exit(1);
        push(corpus, p, n);
        return;
    }
    DIR *d = opendir(path);
    if (!d) exit(1);
    char **names = NULL;
    size_t nn = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (nn + 1) * sizeof *names);
        names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_str);
    for (size_t i = 0; i < nn; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        size_t n;
        uint8_t *p = stat(full, &sb) == 0 && S_ISREG(sb.st_mode) ? read_file(full, &n) : NULL;
        if (p) push(corpus, p, n);
        free(names[i]);
    }
    free(names);
}

static bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* libFuzzer dictionary: lines `name="value"` or `"value"`, with the escapes libFuzzer knows
 * (\\, \" and \xNN) and no others, so a dictionary libFuzzer would refuse fails here too. */
static void load_dict(const char *path, blobs *dict) {
    size_t n;
    char *text = (char *)read_file(path, &n);
    if (!text) {
        fprintf(stderr, "fuzz driver: cannot read dictionary %s\n", path);
        exit(1);
    }
    int line = 0;
    for (size_t i = 0; i < n; line++) {
        size_t end = i;
        while (end < n && text[end] != '\n') end++;
        char *q = memchr(text + i, '"', end - i), *stop = text + end;
        if (text[i] != '#' && q) {
            uint8_t *w = malloc(end - i + 1);
            size_t len = 0;
            char *c = q + 1;
            for (; c < stop && *c != '"'; c++) {
                if (*c != '\\') {
                    w[len++] = (uint8_t)*c;
                } else if (c + 1 < stop && (c[1] == '\\' || c[1] == '"')) {
                    w[len++] = (uint8_t) * ++c;
                } else if (c + 3 < stop && c[1] == 'x' && is_hex(c[2]) && is_hex(c[3])) {
                    char hex[3] = {c[2], c[3], 0};
                    w[len++] = (uint8_t)strtoul(hex, NULL, 16);
                    c += 3;
                } else {
                    fprintf(stderr,
                            "fuzz driver: %s line %d: libFuzzer knows only the escapes "
                            "\\\\, \\\" and \\xNN\n",
                            path, line + 1);
                    exit(2);
                }
            }
            if (c >= stop) {
                fprintf(stderr, "fuzz driver: %s line %d: unterminated string\n", path, line + 1);
                exit(2);
            }
            push(dict, w, len);
        }
        i = end + 1;
    }
    free(text);
}

static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static size_t below(size_t n) {
    return n ? (size_t)(rnd() % n) : 0;
}

/* Inserts src[0..len) at pos of buf (n bytes, capacity cap); returns the new length. */
static size_t insert(uint8_t *buf, size_t n, size_t cap, size_t pos, const uint8_t *src,
                     size_t len) {
    if (n + len > cap) len = cap - n;
    memmove(buf + pos + len, buf + pos, n - pos);
    memcpy(buf + pos, src, len);
    return n + len;
}

static size_t mutate(uint8_t *buf, size_t n, size_t cap, const blobs *corpus, const blobs *dict) {
    static const uint8_t interesting[] = {0,   1,   0x7f, 0x80, 0xff, '"', '{',  '}', '[',  ']',
                                          ',', ':', '\\', '<',  '>',  '%', '\n', ' ', 0xc3, 0xe2};
    int rounds = 1 + (int)below(4);
    for (int r = 0; r < rounds; r++) {
        switch (below(8)) {
        case 0: /* flip a bit */
            if (n) buf[below(n)] ^= (uint8_t)(1u << below(8));
            break;
        case 1: /* set a byte */
            if (n)
                buf[below(n)] = below(2) ? (uint8_t)rnd() : interesting[below(sizeof interesting)];
            break;
        case 2: { /* delete a range */
            if (!n) break;
            size_t at = below(n), len = 1 + below(n - at < 16 ? n - at : 16);
            memmove(buf + at, buf + at + len, n - at - len);
            n -= len;
            break;
        }
        case 3: { /* insert random bytes */
            uint8_t tmp[8];
            size_t len = 1 + below(sizeof tmp);
            for (size_t i = 0; i < len; i++) tmp[i] = (uint8_t)rnd();
            n = insert(buf, n, cap, below(n + 1), tmp, len);
            break;
        }
        case 4: { /* duplicate a range of itself */
            if (!n) break;
            size_t at = below(n), len = 1 + below(n - at < 64 ? n - at : 64);
            uint8_t tmp[64];
            memcpy(tmp, buf + at, len);
            n = insert(buf, n, cap, below(n + 1), tmp, len);
            break;
        }
        case 5: { /* splice: a piece of another corpus entry */
            const blob *o = &corpus->v[below(corpus->n)];
            if (!o->n) break;
            size_t at = below(o->n), len = 1 + below(o->n - at < 256 ? o->n - at : 256);
            n = insert(buf, n, cap, below(n + 1), o->p + at, len);
            break;
        }
        case 6: /* a dictionary word */
            if (dict->n) {
                const blob *w = &dict->v[below(dict->n)];
                n = insert(buf, n, cap, below(n + 1), w->p, w->n);
            }
            break;
        default: /* truncate */
            if (n) n = below(n + 1);
            break;
        }
    }
    return n;
}

static void run_one(const uint8_t *p, size_t n, unsigned timeout) {
    /* A private copy of exactly n bytes, so ASan flags any read past the input. */
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, p, n);
    cur_data = copy;
    cur_size = n;
    alarm(timeout);
    LLVMFuzzerTestOneInput(copy, n);
    alarm(0);
    free(copy);
}

int main(int argc, char **argv) {
    double seconds = getenv("FUZZ_SMOKE_SECONDS") ? atof(getenv("FUZZ_SMOKE_SECONDS")) : 3;
    unsigned timeout =
        getenv("FUZZ_SMOKE_TIMEOUT") ? (unsigned)atoi(getenv("FUZZ_SMOKE_TIMEOUT")) : 30;
    uint64_t seed = 0x5eed;
    size_t max_len = 1 << 16;
    blobs corpus = {0}, dict = {0};
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-dict=", 6) == 0)
            load_dict(argv[i] + 6, &dict);
        else if (strncmp(argv[i], "-seconds=", 9) == 0)
            seconds = atof(argv[i] + 9);
        else if (strncmp(argv[i], "-seed=", 6) == 0)
            seed = strtoull(argv[i] + 6, NULL, 0);
        else if (strncmp(argv[i], "-max_len=", 9) == 0)
            max_len = strtoull(argv[i] + 9, NULL, 0);
        else if (argv[i][0] == '-') {
            fprintf(stderr, "fuzz driver: unknown option %s\n", argv[i]);
            return 2;
        } else
            load_path(argv[i], &corpus);
    }
    snprintf(crash_path, sizeof crash_path, "fuzz-crash-%d", (int)getpid());
    signal(SIGABRT, on_signal);
    signal(SIGSEGV, on_signal);
    signal(SIGALRM, on_signal);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(save_input);

    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < corpus.n; i++) run_one(corpus.v[i].p, corpus.v[i].n, timeout);
    if (corpus.n == 0) push(&corpus, calloc(1, 1), 0);

    rng_state = seed;
    uint8_t *buf = malloc(max_len);
    size_t execs = 0;
    double elapsed = 0;
    while (elapsed < seconds) {
        for (int k = 0; k < 16; k++, execs++) {
            const blob *b = &corpus.v[below(corpus.n)];
            size_t n = b->n < max_len ? b->n : max_len;
            memcpy(buf, b->p, n);
            n = mutate(buf, n, max_len, &corpus, &dict);
            run_one(buf, n, timeout);
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        elapsed = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
    }
    printf("fuzz driver: %zu corpus inputs replayed, %zu mutated inputs in %.1f s (seed %llu), no "
           "finding\n",
           corpus.n, execs, elapsed, (unsigned long long)seed);
    for (size_t i = 0; i < corpus.n; i++) free(corpus.v[i].p);
    for (size_t i = 0; i < dict.n; i++) free(dict.v[i].p);
    free(corpus.v);
    free(dict.v);
    free(buf);
    return 0;
}
