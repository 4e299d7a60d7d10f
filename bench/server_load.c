/* server_load — N concurrent streaming chat clients against a running `shimmy serve`.
 *
 *   bench_server_load URL MODEL [-c CLIENTS] [-n MAX_TOKENS] [-r ROUNDS] [--prompt TEXT]
 *                     [--ban TOKEN_ID] [--late WORDS [--late-delay MS]]
 *
 * Each client sends POST /v1/chat/completions with stream=true, include_usage and temperature 0
 * (and logit_bias -100 on --ban, e.g. the EOS id so that answers run to MAX_TOKENS) over a
 * plain socket, and records the time to the first
 * content chunk and the completion tokens reported by the usage chunk. Prints per-run median
 * TTFT, per-client tokens/s (first token to last) and aggregate tokens/s (all clients, wall
 * clock), plus the server's resident memory from /metrics. Each client's prompt is the text with
 * its index appended (distinct prompts). With --late, one more client sends a prompt of WORDS
 * words MS (default 500) after the others started (8 tokens asked): its time to first token and the
 * longest gap between two chunks any running stream saw are printed (the stall a long prompt
 * causes).
 */
#include "core/core.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct load_target {
    char host[128];
    int port;
    const char *model;
    const char *prompt;
    int max_tokens;
    int ban; /* a token id given logit bias -100 (the EOS id: answers run to max_tokens), or -1 */
} load_target;

typedef struct load_result {
    double ttft_ms, total_ms;
    double max_gap_ms; /* longest wait between two reads after the first token */
    long tokens;
    bool ok;
} load_result;

typedef struct load_client {
    const load_target *t;
    int index;
    const char *prompt; /* overrides the target's (the late client) */
    double delay_ms;
    double t0;
    load_result r;
    pthread_t th;
} load_client;

static int dial(const load_target *t) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t->port)};
    if (inet_pton(AF_INET, t->host, &a.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Reads the whole response; notes when the first content delta arrives. */
static char *read_stream(int fd, double t0, double *ttft, double *max_gap) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    *ttft = -1;
    *max_gap = 0;
    double last = 0;
    while (buf) {
        if (len + 4096 > cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) break;
            buf = p;
        }
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k <= 0) break;
        len += (size_t)k;
        buf[len] = '\0';
        const double now = core_time_ms();
        if (*ttft >= 0 && now - last > *max_gap) *max_gap = now - last;
        last = now;
        /* the role chunk carries content "": the first token is the first non-empty one */
        for (const char *p = buf; *ttft < 0 && (p = strstr(p, "\"content\":\"")) != NULL; p += 11)
            if (p[11] != '"') *ttft = core_time_ms() - t0;
    }
    return buf;
}

static void *client_main(void *arg) {
    load_client *c = arg;
    const load_target *t = c->t;
    if (c->delay_ms > 0) usleep((useconds_t)(c->delay_ms * 1000));
    char prompt[65536];
    if (c->prompt)
        snprintf(prompt, sizeof prompt, "%s", c->prompt);
    else
        snprintf(prompt, sizeof prompt, "%s (request %d)", t->prompt, c->index);
    json_t *body =
        json_pack("{s:s,s:[{s:s,s:s}],s:i,s:f,s:b,s:{s:b}}", "model", t->model, "messages", "role",
                  "user", "content", prompt, "max_tokens", c->prompt ? 8 : t->max_tokens,
                  "temperature", 0.0, "stream", 1, "stream_options", "include_usage", 1);
    if (t->ban >= 0) {
        char id[16];
        snprintf(id, sizeof id, "%d", t->ban);
        json_object_set_new(body, "logit_bias", json_pack("{s:i}", id, -100));
    }
    char *js = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      t->host, t->port, strlen(js));
    int fd = dial(t);
    c->t0 = core_time_ms();
    if (fd >= 0 && send_all(fd, head, (size_t)hn) && send_all(fd, js, strlen(js))) {
        char *resp = read_stream(fd, c->t0, &c->r.ttft_ms, &c->r.max_gap_ms);
        c->r.total_ms = core_time_ms() - c->t0;
        const char *u = resp ? strstr(resp, "\"completion_tokens\":") : NULL;
        if (u) {
            c->r.tokens = strtol(u + 20, NULL, 10);
            c->r.ok = c->r.ttft_ms >= 0 && strstr(resp, "data: [DONE]") != NULL;
        }
        free(resp);
    }
    if (fd >= 0) close(fd);
    free(js);
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double server_rss_mb(const load_target *t) {
    int fd = dial(t);
    if (fd < 0) return 0;
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", t->host);
    double mb = 0;
    if (send_all(fd, req, (size_t)n)) {
        double ignored, gap;
        char *resp = read_stream(fd, 0, &ignored, &gap);
        const char *p = resp ? strstr(resp, "\nshimmy_resident_memory_bytes ") : NULL;
        if (p) mb = strtod(p + 30, NULL) / (1024.0 * 1024.0);
        free(resp);
    }
    close(fd);
    return mb;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr,
                "usage: %s URL MODEL [-c CLIENTS] [-n MAX_TOKENS] [-r ROUNDS] "
                "[--prompt TEXT] [--ban TOKEN_ID] [--late WORDS [--late-delay MS]]\n",
                argv[0]);
        return 2;
    }
    load_target t = {.model = argv[2],
                     .prompt = "Write a short paragraph about the git command line.",
                     .max_tokens = 128,
                     .ban = -1};
    if (sscanf(argv[1], "http://%127[^:]:%d", t.host, &t.port) != 2) {
        fprintf(stderr, "URL must look like http://127.0.0.1:11435\n");
        return 2;
    }
    int clients = 1, rounds = 3, late_words = 0;
    double late_delay = 500;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-c") == 0)
            clients = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-n") == 0)
            t.max_tokens = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-r") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--prompt") == 0)
            t.prompt = argv[i + 1];
        else if (strcmp(argv[i], "--ban") == 0)
            t.ban = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--late") == 0)
            late_words = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--late-delay") == 0)
            late_delay = atof(argv[i + 1]);
    }
    if (clients < 1 || clients > 1024 || rounds < 1 || t.max_tokens < 1 || late_words < 0 ||
        late_words > 10000) {
        fprintf(stderr, "bad -c, -n or -r\n");
        return 2;
    }
    load_client *cs = calloc((size_t)clients, sizeof *cs);
    double *ttft = calloc((size_t)clients, sizeof *ttft);
    if (!cs || !ttft) return 1;
    printf("clients %d, max_tokens %d, model %s\n", clients, t.max_tokens, t.model);
    char *late_text = NULL;
    if (late_words) {
        late_text = malloc((size_t)late_words * 6 + 1);
        if (!late_text) return 1;
        for (int w = 0; w < late_words; w++)
            memcpy(late_text + w * 6, w % 2 ? "river " : "stone ", 6);
        late_text[late_words * 6] = '\0';
    }
    for (int r = 0; r < rounds; r++) {
        double t0 = core_time_ms();
        for (int i = 0; i < clients; i++) {
            cs[i] = (load_client){.t = &t, .index = i + r * clients};
            pthread_create(&cs[i].th, NULL, client_main, &cs[i]);
        }
        load_client late = {.t = &t, .prompt = late_text, .delay_ms = late_delay};
        if (late_text) pthread_create(&late.th, NULL, client_main, &late);
        long tokens = 0;
        int ok = 0;
        double per_client = 0;
        for (int i = 0; i < clients; i++) {
            pthread_join(cs[i].th, NULL);
            load_result *lr = &cs[i].r;
            ttft[i] = lr->ttft_ms;
            ok += lr->ok;
            tokens += lr->tokens;
            if (lr->tokens > 1 && lr->total_ms > lr->ttft_ms)
                per_client += (double)(lr->tokens - 1) * 1000.0 / (lr->total_ms - lr->ttft_ms);
        }
        double wall = core_time_ms() - t0;
        if (late_text) {
            pthread_join(late.th, NULL);
            double gap = 0;
            for (int i = 0; i < clients; i++)
                if (cs[i].r.max_gap_ms > gap) gap = cs[i].r.max_gap_ms;
            printf("round %d: late prompt of %d words: ttft %.1f ms; longest gap of the running "
                   "streams %.1f ms\n",
                   r + 1, late_words, late.r.ttft_ms, gap);
        }
        qsort(ttft, (size_t)clients, sizeof *ttft, cmp_double);
        printf("round %d: ok %d/%d, ttft median %.1f ms (max %.1f), per-client %.1f tok/s, "
               "aggregate %.1f tok/s (%ld tokens in %.0f ms)\n",
               r + 1, ok, clients, ttft[clients / 2], ttft[clients - 1], per_client / clients,
               (double)tokens * 1000.0 / wall, tokens, wall);
    }
    printf("server resident memory: %.1f MiB\n", server_rss_mb(&t));
    free(cs);
    free(ttft);
    free(late_text);
    return 0;
}
