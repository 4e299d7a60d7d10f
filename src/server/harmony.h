/*
 * harmony — the splitter behind reasoning.h's calls for OpenAI's harmony format (gpt-oss); the
 * rules are stated there (server_reasoning_init_harmony). Internal to reasoning.c/harmony.c.
 */
#ifndef SHIMMY_SERVER_HARMONY_H
#define SHIMMY_SERVER_HARMONY_H

#include "reasoning.h"

void server_harmony_push(server_reasoning *r, const char *text, size_t len, server_reasoning_fn out,
                         void *user);
void server_harmony_flush(server_reasoning *r, server_reasoning_fn out, void *user);
bool server_harmony_thinking(const server_reasoning *r);

#endif
