/* Generated pieces on their way from a slot's session to the job's formatter: the thinking of a
 * chat answer split from the answer (reasoning.h), token records (logprobs) kept with the
 * answer text they complete, echo with the prompt's records; and the request fields that ask
 * for these (logprobs, top_logprobs, reasoning_format, chat_template_kwargs). */
#include "server.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- request fields ---- */

static shimmy_status top_count(const char *name, const json_t *v, int32_t *out, shimmy_error *err) {
    double d = json_is_number(v) ? json_number_value(v) : -1;
    if (!json_is_number(v) || d != floor(d) || d < 0 || d > SHIMMY_MAX_TOP_LOGPROBS)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                "'%s' must be an integer between 0 and %d", name,
                                SHIMMY_MAX_TOP_LOGPROBS);
    *out = (int32_t)d;
    return SHIMMY_OK;
}

shimmy_status server_request_output_field(server_request *r, const char *name, const json_t *v,
                                          shimmy_error *err) {
    if (strcmp(name, "logprobs") == 0 && r->api == SERVER_API_COMPLETIONS) {
        /* legacy completions: the number of alternatives per token */
        shimmy_status st = top_count(name, v, &r->top_logprobs, err);
        if (!st) r->logprobs = true;
        return st;
    }
    if (strcmp(name, "logprobs") == 0) {
        if (!json_is_boolean(v))
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                    "'logprobs' must be true or false");
        r->logprobs = json_is_true(v);
        return SHIMMY_OK;
    }
    if (strcmp(name, "top_logprobs") == 0) return top_count(name, v, &r->top_logprobs, err);
    if (strcmp(name, "reasoning_format") == 0) {
        if (!json_is_string(v) ||
            !server_reasoning_format_parse(json_string_value(v), &r->reasoning_format))
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                    "'reasoning_format' must be one of \"auto\", \"deepseek\", "
                                    "\"deepseek-legacy\" or \"none\"");
        return SHIMMY_OK;
    }
    if (strcmp(name, "chat_template_kwargs") == 0) {
        if (!json_is_object(v))
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, name,
                                    "'chat_template_kwargs' must be an object of template "
                                    "variables (e.g. {\"enable_thinking\": false})");
        json_decref(r->template_vars);
        r->template_vars = json_deep_copy(v);
        return r->template_vars ? SHIMMY_OK
                                : shimmy_error_set(err, SHIMMY_ERR_NOMEM, name, "out of memory");
    }
    return shimmy_error_set(err, SHIMMY_ERR_INTERNAL, name, "no parser for '%s'", name);
}

shimmy_status server_request_output_check(server_request *r, shimmy_error *err) {
    if (r->api == SERVER_API_CHAT && r->top_logprobs > 0 && !r->logprobs)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "top_logprobs",
                                "'top_logprobs' needs 'logprobs': true");
    return SHIMMY_OK;
}

/* ---- token records kept while it is not known whether their text is thinking ---- */

typedef struct stash_rec {
    shimmy_token_info info;
    shimmy_logprob top[SHIMMY_MAX_TOP_LOGPROBS];
    char *bytes; /* owned */
} stash_rec;

struct server_lp_stash {
    stash_rec *r;
    shimmy_token_info *view; /* (cap) what a hand-over points at */
    size_t n, cap;
};

void server_lp_stash_free(struct server_lp_stash *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->r[i].bytes);
    free(s->r);
    free(s->view);
    free(s);
}

static void stash_clear(struct server_lp_stash *s) {
    for (size_t i = 0; s && i < s->n; i++) free(s->r[i].bytes);
    if (s) s->n = 0;
}

static void stash_add(server_job *j, const shimmy_token_info *t, size_t n) {
    if (!j->lp_stash && !(j->lp_stash = calloc(1, sizeof *j->lp_stash))) return;
    struct server_lp_stash *s = j->lp_stash;
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 16;
        while (cap < s->n + n) cap *= 2;
        stash_rec *r = realloc(s->r, sizeof *r * cap);
        if (r) s->r = r;
        shimmy_token_info *view = r ? realloc(s->view, sizeof *view * cap) : NULL;
        if (!view) return; /* out of memory: records are lost, text is not */
        s->view = view;
        s->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        stash_rec *e = &s->r[s->n];
        e->bytes = malloc(t[i].n_bytes ? t[i].n_bytes : 1);
        if (!e->bytes) return;
        memcpy(e->bytes, t[i].bytes, t[i].n_bytes);
        e->info = t[i];
        e->info.bytes = e->bytes;
        size_t k = t[i].n_top < SHIMMY_MAX_TOP_LOGPROBS ? t[i].n_top : SHIMMY_MAX_TOP_LOGPROBS;
        if (k) memcpy(e->top, t[i].top, sizeof *e->top * k);
        e->info.top = e->top;
        e->info.n_top = k;
        s->n++;
    }
}

/* ---- hand-over to the formatter ---- */

static void deliver(server_job *j, size_t choice, const char *text, size_t len,
                    const shimmy_token_info *t, size_t n) {
    if (len == 0 && (n == 0 || !j->req.logprobs)) return;
    j->lp = t;
    j->n_lp = n;
    j->fmt->text(j, choice, text, len);
    j->lp = NULL;
    j->n_lp = 0;
}

typedef struct route_ctx {
    server_job *j;
    size_t choice;
} route_ctx;

static void route(void *user, bool thinking, const char *text, size_t len) {
    route_ctx *rc = user;
    server_job *j = rc->j;
    struct server_lp_stash *s = j->lp_stash;
    if (thinking) {
        /* Records go with the answer only: the thinking's are dropped. */
        stash_clear(s);
        if (j->fmt->reasoning) j->fmt->reasoning(j, rc->choice, text, len);
        return;
    }
    size_t n = s ? s->n : 0;
    for (size_t i = 0; i < n; i++) s->view[i] = s->r[i].info;
    deliver(j, rc->choice, text, len, n ? s->view : NULL, n);
    stash_clear(s);
}

/* Echo with logprobs: the prompt's text with its records (BOS, which the text does not hold,
 * left out). */
static void echo(server_job *j, size_t choice, const shimmy_token_info *t, size_t n) {
    const char *text = j->req.prompts[choice];
    int32_t bos = shimmy_vocab_bos(shimmy_model_vocab(j->model));
    if (n && t[0].token == bos &&
        (t[0].n_bytes == 0 || strncmp(text, t[0].bytes, t[0].n_bytes) != 0)) {
        t++;
        n--;
    }
    deliver(j, choice, text, strlen(text), t, n);
}

shimmy_next server_job_piece(server_job *j, size_t choice, const char *text, size_t len,
                             const shimmy_token_info *t, size_t n) {
    if (n && t[0].prompt) {
        if (j->req.echo && choice < j->req.n_prompts) echo(j, choice, t, n);
        return SHIMMY_CONTINUE;
    }
    if (!j->thinks) {
        deliver(j, choice, text, len, t, n);
        return SHIMMY_CONTINUE;
    }
    if (n && j->req.logprobs) stash_add(j, t, n);
    route_ctx rc = {j, choice};
    server_reasoning_push(&j->think, text, len, route, &rc);
    /* Records of text the splitter holds stay stashed; those of a tag or of whitespace that
     * was dropped go. */
    if (!server_reasoning_thinking(&j->think) && j->lp_stash && j->lp_stash->n) {
        if (len == 0)
            route(&rc, false, "", 0); /* text-less records after the answer began */
        else
            stash_clear(j->lp_stash);
    }
    return SHIMMY_CONTINUE;
}

/* The last bytes of a prompt as text, control tokens spelled out (up to cap - 1 bytes). */
static size_t prompt_tail(const server_job *j, size_t choice, char *buf, size_t cap) {
    const shimmy_prompt *p = j->prompt[choice];
    /* 16 tokens: a vocabulary without harmony's tokens spells "<|start|>assistant" in pieces */
    size_t n = shimmy_prompt_token_count(p), k = n < 16 ? n : 16;
    char *text = NULL;
    size_t len = 0;
    if (k == 0 || shimmy_detokenize(shimmy_model_vocab(j->model), shimmy_prompt_tokens(p) + n - k,
                                    k, SHIMMY_DETOKENIZE_SPECIAL, &text, &len, NULL))
        return 0;
    size_t from = len > cap - 1 ? len - (cap - 1) : 0;
    memcpy(buf, text + from, len - from);
    buf[len - from] = '\0';
    shimmy_free(text);
    return len - from;
}

void server_job_think_append(server_job *j, const char *text, size_t len) {
    if (j->think_len + len + 1 > j->think_cap) {
        size_t cap = j->think_cap ? j->think_cap : 256;
        while (cap < j->think_len + len + 1) cap *= 2;
        char *p = realloc(j->think_acc, cap);
        if (!p) return;
        j->think_acc = p;
        j->think_cap = cap;
    }
    memcpy(j->think_acc + j->think_len, text, len);
    j->think_len += len;
    j->think_acc[j->think_len] = '\0';
}

void server_job_choice_begin(server_job *j, size_t choice) {
    j->lp_offset = 0;
    j->think_len = 0;
    json_decref(j->lp_acc);
    j->lp_acc = NULL;
    stash_clear(j->lp_stash);
    /* Only a chat template's answer can think; "none" keeps the raw text, and so does a format
     * with nowhere to put thinking (the native WebSocket: nothing is lost). */
    j->thinks =
        j->req.messages && j->req.reasoning_format != SERVER_REASONING_NONE && j->fmt->reasoning;
    if (!j->thinks) return;
    char tail[128];
    size_t n = prompt_tail(j, choice, tail, sizeof tail);
    if (server_reasoning_prompt_harmony(tail, n))
        server_reasoning_init_harmony(&j->think, j->req.tools.tools != NULL);
    else
        server_reasoning_init(&j->think, server_reasoning_prompt_opens(tail, n));
}

void server_job_choice_end(server_job *j, size_t choice) {
    if (!j->thinks) return;
    route_ctx rc = {j, choice};
    server_reasoning_flush(&j->think, route, &rc);
    stash_clear(j->lp_stash);
}
