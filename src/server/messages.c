/* Chat messages of a request -> the normalised array the chat template reads: roles checked,
 * content parts joined into one string, the other keys (tool_calls, name, ...) kept. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const roles[] = {"system", "user", "assistant", "tool", "developer"};

static shimmy_status message_content(const json_t *content, const char *role, size_t idx,
                                     json_t **out, shimmy_error *err) {
    char where[64];
    snprintf(where, sizeof where, "messages[%zu].content", idx);
    if (json_is_string(content)) {
        *out = json_incref((json_t *)content);
        return SHIMMY_OK;
    }
    /* An assistant turn that only called tools has content null. */
    if (!content || json_is_null(content)) {
        if (strcmp(role, "assistant") == 0 || strcmp(role, "tool") == 0) {
            *out = json_string("");
            return *out ? SHIMMY_OK
                        : shimmy_error_set(err, SHIMMY_ERR_NOMEM, where, "out of memory");
        }
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where, "'%s' is required", where);
    }
    if (!json_is_array(content))
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where,
                                "'%s' must be a string or an array of content parts", where);
    /* Text parts are joined as OpenAI does for text-only models: with newlines between. */
    size_t total = 0, i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        const json_t *text = json_object_get(part, "text");
        if (!json_is_object(part) || !type || strcmp(type, "text") != 0 || !json_is_string(text)) {
            char pw[96];
            snprintf(pw, sizeof pw, "%s[%zu]", where, i);
            return shimmy_error_set(
                err, SHIMMY_ERR_INVALID_ARG, pw,
                "'%s' must be {\"type\":\"text\",\"text\":string}; only text content "
                "is supported",
                pw);
        }
        total += json_string_length(text) + 1;
    }
    char *buf = malloc(total + 1), *p = buf;
    if (!buf) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, where, "out of memory");
    json_array_foreach(content, i, part) {
        const json_t *text = json_object_get(part, "text");
        if (i) *p++ = '\n';
        memcpy(p, json_string_value(text), json_string_length(text));
        p += json_string_length(text);
    }
    *out = json_stringn_nocheck(buf, (size_t)(p - buf));
    free(buf);
    return *out ? SHIMMY_OK : shimmy_error_set(err, SHIMMY_ERR_NOMEM, where, "out of memory");
}

shimmy_status server_messages_normalise(const json_t *msgs, json_t **out, shimmy_error *err) {
    if (!json_is_array(msgs))
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "messages",
                                "'messages' must be an array");
    if (json_array_size(msgs) == 0)
        return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, "messages",
                                "'messages' must not be empty");
    json_t *arr = json_array();
    if (!arr) return shimmy_error_set(err, SHIMMY_ERR_NOMEM, "messages", "out of memory");
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m) {
        char where[64];
        snprintf(where, sizeof where, "messages[%zu]", i);
        if (!json_is_object(m)) {
            json_decref(arr);
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where, "'%s' must be an object",
                                    where);
        }
        const char *role = json_string_value(json_object_get(m, "role"));
        bool known = false;
        for (size_t k = 0; role && k < sizeof roles / sizeof roles[0]; k++)
            known = known || strcmp(role, roles[k]) == 0;
        if (!known) {
            json_decref(arr);
            snprintf(where, sizeof where, "messages[%zu].role", i);
            return shimmy_error_set(err, SHIMMY_ERR_INVALID_ARG, where,
                                    "'%s' must be one of system, user, assistant, tool", where);
        }
        json_t *content = NULL;
        shimmy_status st = message_content(json_object_get(m, "content"), role, i, &content, err);
        if (st) {
            json_decref(arr);
            return st;
        }
        /* Keep the other keys (name, tool_calls, ...) for templates that use them. */
        json_t *copy = json_copy((json_t *)m);
        if (!copy) {
            json_decref(content);
            json_decref(arr);
            return shimmy_error_set(err, SHIMMY_ERR_NOMEM, where, "out of memory");
        }
        json_object_set_new(copy, "content", content);
        st = server_tools_message(copy, i, err);
        if (st) {
            json_decref(copy);
            json_decref(arr);
            return st;
        }
        /* Templates know "system"; OpenAI's newer "developer" role means the same. */
        if (strcmp(role, "developer") == 0)
            json_object_set_new(copy, "role", json_string("system"));
        json_array_append_new(arr, copy);
    }
    *out = arr;
    return SHIMMY_OK;
}
