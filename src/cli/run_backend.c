/*
 * Where `shimmy run`'s answers come from: a model loaded in this process (one shimmy_session
 * for the whole chat, so each turn reuses the KV of the conversation so far and evaluates only
 * the new message), or a running server's /v1/chat/completions stream (--host), which keeps
 * the prefix in its own slots.
 */
#include "server.h" /* the server module's interface: its harmony splitter (reasoning.h, gpt-oss) */
#include "term.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct run_backend {
    /* local */
    shimmy_model *model;
    shimmy_session *session;
    shimmy_adapter *adapters[CLI_MAX_LORA];
    float scales[CLI_MAX_LORA];
    size_t n_adapters;
    /* remote */
    char *base, *name;
};

const char *run_backend_name(const run_backend *b) {
    return b->model ? shimmy_model_name(b->model) : b->name;
}

void run_backend_free(run_backend *b) {
    if (!b) return;
    shimmy_session_free(b->session);
    for (size_t i = 0; i < b->n_adapters; i++) shimmy_adapter_unref(b->adapters[i]);
    shimmy_model_unref(b->model);
    free(b->base);
    free(b->name);
    free(b);
}

/* Progress while a model loads, on a terminal: the library has no load callback, so this
 * thread shows how much of the file is resident (the weights are mapped and paged in as the
 * loader reads them) and the time so far. */
typedef struct load_watch {
    const char *name;
    uint64_t file_bytes, rss0;
    volatile int done;
} load_watch;

static void *show_load(void *arg) {
    load_watch *w = arg;
    const double t0 = cli_time_ms();
    const struct timespec tick = {0, 250 * 1000 * 1000};
    while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE)) {
        nanosleep(&tick, NULL);
        const uint64_t rss = cli_rss_bytes(), got = rss > w->rss0 ? rss - w->rss0 : 0;
        const double s = (cli_time_ms() - t0) / 1000.0;
        if (s < 0.5) continue; /* a small model is loaded before anything needs showing */
        fprintf(stderr, "\r\033[Kloading %s: %.0f of %.0f MB in memory, %.1f s", w->name,
                (double)(got < w->file_bytes ? got : w->file_bytes) / 1e6,
                (double)w->file_bytes / 1e6, s);
        fflush(stderr);
    }
    return NULL;
}

shimmy_status run_backend_local(const char *model, cli_run_opts *ro, bool progress,
                                run_backend **out, shimmy_error *err) {
    *out = NULL;
    char path[4096];
    shimmy_status st = cli_resolve_model(model, path, sizeof path, err);
    if (!st) st = cli_run_resolve_lora(ro, err);
    if (st) return st;
    run_backend *b = calloc(1, sizeof *b);
    if (!b) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    struct stat sb;
    load_watch w = {.name = model,
                    .file_bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0,
                    .rss0 = cli_rss_bytes()};
    pthread_t shower;
    const bool showing = progress && pthread_create(&shower, NULL, show_load, &w) == 0;
    st = cli_load_model(model, path, ro, &b->model, err);
    __atomic_store_n(&w.done, 1, __ATOMIC_RELEASE);
    if (showing) {
        pthread_join(shower, NULL);
        fputs("\r\033[K", stderr);
    }
    for (size_t i = 0; !st && i < ro->n_lora; i++) {
        st = shimmy_adapter_open(b->model, ro->lora[i].path, &b->adapters[i], err);
        if (!st) b->scales[b->n_adapters++] = ro->lora[i].scale;
    }
    shimmy_session_options so = {.ctx_len = (int32_t)ro->ctx, .threads = (int32_t)ro->threads};
    if (!st) st = shimmy_session_new(b->model, &so, &b->session, err);
    if (!st && b->n_adapters)
        st = shimmy_session_set_adapters(b->session, b->adapters, b->scales, b->n_adapters, err);
    if (st) {
        run_backend_free(b);
        return st;
    }
    *out = b;
    return SHIMMY_OK;
}

shimmy_status run_backend_remote(const char *base, const char *model, run_backend **out,
                                 shimmy_error *err) {
    run_backend *b = calloc(1, sizeof *b);
    if (b) b->base = cli_server_url(base);
    if (b) b->name = strdup(model);
    if (!b || !b->base || !b->name) {
        run_backend_free(b);
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    }
    *out = b;
    return SHIMMY_OK;
}

/* ---- local ---- */

typedef struct local_call {
    run_out *out;
    volatile sig_atomic_t *interrupted;
    shimmy_session *session;
    volatile int done;
    bool harmony; /* gpt-oss: the answer's channels are split (reasoning.h) */
    server_reasoning split;
} local_call;

/* A harmony answer's analysis is shown as thinking; only the final text joins the history (the
 * gpt-oss template refuses channel markup in an earlier answer's content). */
static void harmony_run(void *user, bool thinking, const char *text, size_t len) {
    if (thinking)
        run_out_reasoning(user, text, len);
    else
        run_out_text(user, text, len);
}

static shimmy_next on_token(const char *piece, size_t len, void *user) {
    local_call *c = user;
    if (c->harmony)
        server_reasoning_push(&c->split, piece, len, harmony_run, c->out);
    else
        run_out_text(c->out, piece, len);
    return *c->interrupted ? SHIMMY_STOP : SHIMMY_CONTINUE;
}

/* shimmy_session_cancel takes a lock, so it is not called from the signal handler: this thread
 * watches the flag the handler sets (a long prompt evaluation calls no token callback). */
static void *watch(void *arg) {
    local_call *c = arg;
    const struct timespec tick = {0, 20 * 1000 * 1000};
    while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
        if (*c->interrupted) {
            shimmy_session_cancel(c->session);
            break;
        }
        nanosleep(&tick, NULL);
    }
    return NULL;
}

static shimmy_status make_prompt(run_backend *b, const run_conv *c, shimmy_prompt **p,
                                 shimmy_error *err) {
    const size_t n = c->n + (c->system != NULL);
    shimmy_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    if (!msgs) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    size_t k = 0;
    if (c->system) msgs[k++] = (shimmy_message){"system", c->system};
    for (size_t i = 0; i < c->n; i++) msgs[k++] = (shimmy_message){c->m[i].role, c->m[i].content};
    shimmy_status st = shimmy_prompt_from_chat(b->model, msgs, n, p, err);
    free(msgs);
    return st;
}

/* Whether the rendered prompt ends with <think> (and blanks): templates of reasoning models
 * that force the thinking open it themselves. *harmony: it ends with gpt-oss's
 * "<|start|>assistant" (16 tokens: a vocabulary without harmony's tokens spells it in pieces). */
static bool prompt_opens_thinking(const run_backend *b, const shimmy_prompt *p, bool *harmony) {
    const size_t n = shimmy_prompt_token_count(p), k = n < 16 ? n : 16;
    char *text = NULL;
    size_t len = 0;
    shimmy_error err;
    *harmony = false;
    if (!k || shimmy_detokenize(shimmy_model_vocab(b->model), shimmy_prompt_tokens(p) + n - k, k,
                                SHIMMY_DETOKENIZE_SPECIAL, &text, &len, &err))
        return false;
    *harmony = server_reasoning_prompt_harmony(text, len);
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r')) len--;
    const bool open = len >= 7 && memcmp(text + len - 7, "<think>", 7) == 0;
    shimmy_free(text);
    return open;
}

static shimmy_status local_reply(run_backend *b, run_conv *c, const shimmy_gen_options *opts,
                                 run_out *o, volatile sig_atomic_t *interrupted, run_stats *rs,
                                 shimmy_error *err) {
    const int32_t ctx = shimmy_session_ctx_len(b->session);
    shimmy_prompt *p = NULL;
    shimmy_status st;
    /* a conversation longer than the context forgets its oldest turns (the last one stays) */
    for (;;) {
        if ((st = make_prompt(b, c, &p, err))) return st;
        const size_t n = shimmy_prompt_token_count(p);
        if ((int64_t)n + 1 < ctx || c->n <= 1) break;
        shimmy_prompt_free(p);
        run_conv_drop_oldest(c);
        rs->dropped_turns++;
    }
    bool harmony;
    if (prompt_opens_thinking(b, p, &harmony)) run_out_think_opened(o);
    shimmy_gen_options g = *opts;
    const int32_t room = ctx - (int32_t)shimmy_prompt_token_count(p);
    if (g.max_tokens <= 0 || g.max_tokens > room) g.max_tokens = room > 0 ? room : 1;
    shimmy_session_request rq = {.options = &g};
    shimmy_session_result r = {0};
    local_call call = {
        .out = o, .interrupted = interrupted, .session = b->session, .harmony = harmony};
    if (harmony) server_reasoning_init_harmony(&call.split, false);
    pthread_t watcher;
    const bool watching = pthread_create(&watcher, NULL, watch, &call) == 0;
    st = shimmy_session_generate(b->session, p, &rq, on_token, &call, &r, err);
    if (harmony) server_reasoning_flush(&call.split, harmony_run, o);
    __atomic_store_n(&call.done, 1, __ATOMIC_RELEASE);
    if (watching) pthread_join(watcher, NULL);
    shimmy_prompt_free(p);
    rs->prompt_tokens = r.prompt_tokens;
    rs->cached_tokens = r.cached_tokens;
    rs->cached_known = true;
    rs->completion_tokens = r.completion_tokens;
    rs->ttft_ms = r.ttft_ms;
    rs->gen_ms = r.gen_ms;
    rs->cancelled = r.finish == SHIMMY_FINISH_CANCELLED;
    return st;
}

/* ---- remote ---- */

typedef struct sse {
    run_out *out;
    run_stats *rs;
    cli_buf line;
    shimmy_error *err;
    bool failed, started;
    double t0;
} sse;

static void sse_event(sse *s, const char *data) {
    if (strcmp(data, "[DONE]") == 0) return;
    json_t *v = json_loads(data, 0, NULL);
    json_t *e = json_object_get(v, "error");
    if (e) {
        char msg[320];
        cli_http_error_text(data, msg, sizeof msg);
        shimmy_error_set(s->err, SHIMMY_ERR_GENERATION, "server", "the server: %s", msg);
        s->failed = true;
    }
    json_t *ch = json_array_get(json_object_get(v, "choices"), 0);
    json_t *d = json_object_get(ch, "delta");
    const char *fin = json_string_value(json_object_get(ch, "finish_reason"));
    json_t *u = json_object_get(v, "usage");
    for (int k = 0; k < 3; k++) { /* the names servers use for reasoning sent apart */
        static const char *const names[] = {"reasoning_content", "reasoning", "thinking"};
        json_t *r = json_object_get(d, names[k]);
        if (json_is_string(r) && json_string_length(r)) {
            run_out_reasoning(s->out, json_string_value(r), json_string_length(r));
            break;
        }
    }
    json_t *t = json_object_get(d, "content");
    if (json_is_string(t) && json_string_length(t)) {
        if (!s->started) s->rs->ttft_ms = cli_time_ms() - s->t0;
        s->started = true;
        run_out_text(s->out, json_string_value(t), json_string_length(t));
    }
    if (fin && strcmp(fin, "cancelled") == 0) s->rs->cancelled = true;
    if (json_is_object(u)) {
        s->rs->prompt_tokens = (int32_t)json_integer_value(json_object_get(u, "prompt_tokens"));
        s->rs->completion_tokens =
            (int32_t)json_integer_value(json_object_get(u, "completion_tokens"));
        json_t *det = json_object_get(u, "prompt_tokens_details");
        json_t *cached = json_object_get(det, "cached_tokens");
        s->rs->cached_tokens = (int32_t)json_integer_value(cached);
        s->rs->cached_known = json_is_integer(cached);
        s->rs->gen_ms = cli_time_ms() - s->t0 - s->rs->ttft_ms;
    }
    json_decref(v);
}

static bool sse_data(const char *data, size_t len, void *user) {
    sse *s = user;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (!cli_buf_add(&s->line, data + i, 1)) return false;
            continue;
        }
        char *l = s->line.data ? s->line.data : "";
        if (s->line.len && l[s->line.len - 1] == '\r') l[--s->line.len] = '\0';
        if (strncmp(l, "data:", 5) == 0)
            sse_event(s, l + 5 + (l[5] == ' '));
        else if (l[0] == '{')
            sse_event(s, l); /* an error answered as plain JSON */
        s->line.len = 0;
        if (s->line.data) s->line.data[0] = '\0';
    }
    return !s->failed;
}

static void put_option(json_t *req, const run_param *p, const shimmy_gen_options *g) {
    const char *const key = strcmp(p->name, "num_predict") == 0 ? "max_tokens" : p->name;
    const char *base = (const char *)g + p->offset;
    json_t *v = p->kind == 'f'   ? json_real(*(const float *)(const void *)base)
                : p->kind == 'i' ? json_integer(*(const int32_t *)(const void *)base)
                                 : json_integer(*(const uint32_t *)(const void *)base);
    json_object_set_new(req, key, v);
}

static shimmy_status remote_reply(run_backend *b, run_conv *c, const shimmy_gen_options *opts,
                                  unsigned set, run_out *o, volatile sig_atomic_t *interrupted,
                                  run_stats *rs, shimmy_error *err) {
    json_t *req = json_pack("{s:s,s:b,s:{s:b}}", "model", b->name, "stream", 1, "stream_options",
                            "include_usage", 1);
    char *msgs = run_conv_json(c);
    json_t *m = msgs ? json_loads(msgs, 0, NULL) : NULL;
    free(msgs);
    if (!req || !m) {
        json_decref(req);
        json_decref(m);
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    }
    json_object_set_new(req, "messages", m);
    for (size_t i = 0; i < run_n_params; i++)
        if (set & (1u << i)) put_option(req, &run_params[i], opts);
    if (opts->n_stop) {
        json_t *stop = json_array();
        for (size_t i = 0; i < opts->n_stop; i++)
            json_array_append_new(stop, json_string(opts->stop[i]));
        json_object_set_new(req, "stop", stop);
    }
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    char url[4200];
    snprintf(url, sizeof url, "%s/v1/chat/completions", b->base);
    sse s = {.out = o, .rs = rs, .err = err, .t0 = cli_time_ms()};
    cli_buf errbody = {0};
    cli_http_request rq = {.method = "POST",
                           .url = url,
                           .body = body,
                           .bearer = getenv("SHIMMY_API_KEY"),
                           .on_data = sse_data,
                           .user = &s,
                           .interrupted = interrupted};
    long status = 0;
    shimmy_status st = cli_http(&rq, &status, &errbody, err);
    free(body);
    if (s.failed) {
        st = err->status;
    } else if (st == SHIMMY_ERR_CANCELLED && *interrupted) {
        rs->cancelled = true; /* the server notices the closed connection and stops */
        st = SHIMMY_OK;
    } else if (!st && status != 200) {
        char msg[320];
        cli_http_error_text(s.line.data, msg, sizeof msg);
        st = shimmy_error_set(err, status == 404 ? SHIMMY_ERR_MODEL_NOT_FOUND : SHIMMY_ERR_IO,
                              b->name, "%s answered HTTP %ld: %s", b->base, status, msg);
    }
    cli_buf_free(&s.line);
    cli_buf_free(&errbody);
    return st;
}

shimmy_status run_backend_reply(run_backend *b, run_conv *c, const shimmy_gen_options *opts,
                                unsigned opts_set, run_out *o, volatile sig_atomic_t *interrupted,
                                run_stats *rs, shimmy_error *err) {
    memset(rs, 0, sizeof *rs);
    run_out_begin(o);
    shimmy_status st = b->model ? local_reply(b, c, opts, o, interrupted, rs, err)
                                : remote_reply(b, c, opts, opts_set, o, interrupted, rs, err);
    run_out_end(o);
    if (st) return st;
    if (!run_conv_add(c, "assistant", o->text.data ? o->text.data : "", o->text.len))
        return shimmy_error_set(err, SHIMMY_ERR_NOMEM, NULL, "out of memory");
    return SHIMMY_OK;
}
