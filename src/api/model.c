/* Loaded models: an engine_model (owned, or borrowed from a manager handle), the spec's
 * adapters opened against it, and one idle session kept so that consecutive generations reuse
 * their KV cache prefix. */
#include "api.h"

#include "lora/lora.h"

#include <stdlib.h>
#include <string.h>

/* The context a generation gets: the spec's, else the trained one capped at 4096 (the engine's
 * own default, so a 128k-context model does not allocate a 128k cache by surprise). */
static int32_t context_of(const shimmy_spec *spec, const engine_model *em) {
    if (spec->f.ctx_len > 0) return spec->f.ctx_len;
    int32_t train = engine_model_get_info(em)->n_ctx_train;
    return train > 0 && train < 4096 ? train : 4096;
}

static void model_destroy(shimmy_model *m) {
    api_session_free(m->idle);
    engine_embed_free(m->embedder);
    pthread_mutex_destroy(&m->embed_lock);
    pthread_cond_destroy(&m->embed_cv);
    lora_set_free(m->lora);
    if (m->handle)
        manager_release(m->handle);
    else
        engine_model_close(m->em);
    pthread_mutex_destroy(&m->lock);
    api_fields_free(&m->spec.f);
    free(m);
}

shimmy_status api_model_new(const shimmy_spec *spec, engine_model *em, manager_handle *handle,
                            shimmy_model **out, shimmy_error *err) {
    *out = NULL;
    shimmy_model *m = core_calloc(1, sizeof *m);
    if (!m || !api_fields_copy(&m->spec.f, &spec->f)) {
        free(m);
        if (handle)
            manager_release(handle);
        else
            engine_model_close(em);
        return core_error(err, SHIMMY_ERR_NOMEM, spec->f.name, "out of memory");
    }
    m->refs = 1;
    m->handle = handle;
    m->em = handle ? manager_handle_model(handle) : em;
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->embed_lock, NULL);
    pthread_cond_init(&m->embed_cv, NULL);
    m->n_ctx = context_of(spec, m->em);
    if (!engine_model_vocab(m->em)) {
        model_destroy(m);
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, spec->f.base_path,
                          "model '%s' has no tokenizer and cannot generate text", spec->f.name);
    }
    if (spec->f.n_lora) {
        engine_adapter_spec as[API_MAX_LORA];
        for (size_t i = 0; i < spec->f.n_lora; i++)
            as[i] = (engine_adapter_spec){spec->f.lora[i].path, spec->f.lora[i].scale};
        shimmy_status st = engine_lora_open(m->em, as, spec->f.n_lora, &m->lora, err);
        if (st) {
            model_destroy(m);
            return st;
        }
    }
    *out = m;
    return SHIMMY_OK;
}

shimmy_status shimmy_model_load(const shimmy_spec *spec, shimmy_model **out, shimmy_error *err) {
    if (!out) return core_error(err, SHIMMY_ERR_INVALID_ARG, "out", "out is NULL");
    *out = NULL;
    if (!spec) return core_error(err, SHIMMY_ERR_INVALID_ARG, "spec", "the spec is NULL");
    engine_model *em = NULL;
    engine_model_params mp;
    shimmy_status st = api_model_params(spec->f.device, spec->f.gpu_layers, false, &mp, err);
    if (!st) st = engine_model_open(spec->f.base_path, &mp, &em, err);
    if (st) return st;
    return api_model_new(spec, em, NULL, out, err);
}

shimmy_model *shimmy_model_ref(shimmy_model *m) {
    if (m) __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

void shimmy_model_unref(shimmy_model *m) {
    if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) model_destroy(m);
}

const char *shimmy_model_name(const shimmy_model *m) {
    return m ? m->spec.f.name : NULL;
}
const char *shimmy_model_architecture(const shimmy_model *m) {
    return m ? engine_model_get_info(m->em)->architecture : NULL;
}
int32_t shimmy_model_ctx_len(const shimmy_model *m) {
    return m ? m->n_ctx : 0;
}
int32_t shimmy_model_vocab_size(const shimmy_model *m) {
    return m ? tok_n_vocab(engine_model_vocab(m->em)) : 0;
}

void api_session_free(api_session *s) {
    if (!s) return;
    engine_session_free(s->s);
    lora_set_free(s->lora);
    free(s);
}

/* A lora_set is used by one thread at a time, so each session gets its own set holding
 * references to the model's (shared, read-only) adapters. */
static shimmy_status session_lora(shimmy_model *m, api_session *s, shimmy_error *err) {
    shimmy_status st = lora_set_new(&s->lora, err);
    for (size_t i = 0; !st && i < lora_set_count(m->lora); i++)
        st = lora_set_add(s->lora, lora_set_adapter(m->lora, i), lora_set_user_scale(m->lora, i),
                          err);
    return st ? st : engine_session_set_lora(s->s, s->lora, err);
}

shimmy_status api_session_take(shimmy_model *m, api_session **out, shimmy_error *err) {
    pthread_mutex_lock(&m->lock);
    api_session *s = m->idle;
    m->idle = NULL;
    pthread_mutex_unlock(&m->lock);
    if (s) {
        *out = s;
        return SHIMMY_OK;
    }
    if (!(s = core_calloc(1, sizeof *s)))
        return core_error(err, SHIMMY_ERR_NOMEM, m->spec.f.name, "out of memory");
    engine_session_params sp = {.n_ctx = m->n_ctx, .n_threads = m->spec.f.threads};
    shimmy_status st = engine_session_new(m->em, &sp, &s->s, err);
    if (!st && m->lora) st = session_lora(m, s, err);
    if (st) {
        api_session_free(s);
        return st;
    }
    *out = s;
    return SHIMMY_OK;
}

void api_session_give(shimmy_model *m, api_session *s) {
    pthread_mutex_lock(&m->lock);
    if (!m->idle) {
        m->idle = s;
        s = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    api_session_free(s);
}
