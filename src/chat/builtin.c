/* Built-in chat template families, for GGUF files that carry no template: each family is one
 * row (name, Jinja source, end-of-turn token, markers that identify it), rendered by the same
 * interpreter as a model's own template. Where a publisher's template exists, the source follows
 * its output exactly for plain conversations (no tools); fallbacks are lenient (no role
 * alternation errors) and accept content given as a list of text parts. */
#include "jinja.h"

#include <string.h>

/* Message content as text: a string as is, a list of {"type": "text", "text": ...} parts
 * joined, anything else empty. */
#define TEXT_MACRO                                                                                 \
    "{%- macro text(c) -%}{%- if c is string -%}{{ c }}{%- elif c is iterable and c is not "       \
    "mapping -%}{%- for p in c -%}{%- if p is mapping and p.type == 'text' -%}{{ p.text }}"        \
    "{%- endif -%}{%- endfor -%}{%- endif -%}{%- endmacro -%}"

static const char chatml_src[] = TEXT_MACRO
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + text(message['content']) + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

/* Llama-2-chat: system folded into the first user turn, BOS before each [INST]. */
static const char llama2_src[] = TEXT_MACRO
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set loop_messages = messages[1:] -%}{%- set system_message = text(messages[0]['content']) "
    "-%}"
    "{%- else -%}{%- set loop_messages = messages -%}{%- set system_message = false -%}{%- endif "
    "-%}"
    "{%- for message in loop_messages -%}"
    "{%- if loop.index0 == 0 and system_message != false -%}"
    "{%- set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
    "text(message['content']) -%}"
    "{%- else -%}{%- set content = text(message['content']) -%}{%- endif -%}"
    "{%- if message['role'] == 'user' -%}{{- bos_token + '[INST] ' + content.strip() + ' [/INST]' "
    "-}}"
    "{%- elif message['role'] == 'assistant' -%}{{- ' ' + content.strip() + ' ' + eos_token -}}"
    "{%- endif -%}{%- endfor -%}";

/* Meta-Llama-3-Instruct. */
static const char llama3_src[] = TEXT_MACRO
    "{%- for message in messages -%}"
    "{%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "text(message['content']) | trim + '<|eot_id|>' -%}"
    "{%- if loop.index0 == 0 -%}{%- set content = bos_token + content -%}{%- endif -%}"
    "{{- content -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    "{%- endif -%}";

/* Mistral (v3 / Nemo): the system message goes into the last user turn. */
static const char mistral_src[] = TEXT_MACRO
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system_message = text(messages[0]['content']) -%}{%- set loop_messages = messages[1:] "
    "-%}"
    "{%- else -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{{- bos_token -}}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{%- if loop.last and system_message is defined -%}"
    "{{- '[INST]' + system_message + '\\n\\n' + text(message['content']) + '[/INST]' -}}"
    "{%- else -%}{{- '[INST]' + text(message['content']) + '[/INST]' -}}{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}{{- text(message['content']) + eos_token -}}"
    "{%- endif -%}{%- endfor -%}";

/* Phi-3 / Phi-3.5. */
static const char phi3_src[] = TEXT_MACRO
    "{%- for message in messages -%}{%- set content = text(message['content']) -%}"
    "{%- if message['role'] == 'system' and content -%}{{- '<|system|>\\n' + content + "
    "'<|end|>\\n' -}}"
    "{%- elif message['role'] == 'user' -%}{{- '<|user|>\\n' + content + '<|end|>\\n' -}}"
    "{%- elif message['role'] == 'assistant' -%}{{- '<|assistant|>\\n' + content + '<|end|>\\n' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- else -%}{{- eos_token -}}"
    "{%- endif -%}";

/* Gemma: no system role, so a system message prefixes the first user turn. */
static const char gemma_src[] = TEXT_MACRO
    "{{- bos_token -}}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set first_prefix = text(messages[0]['content']) + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<start_of_turn>' + role + '\\n' + (first_prefix if loop.first else '') + "
    "text(message['content']) | trim + '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}";

static const char zephyr_src[] = TEXT_MACRO
    "{%- for message in messages -%}"
    "{{- '<|' + message['role'] + '|>\\n' + text(message['content']) + eos_token + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}";

static const char vicuna_src[] = TEXT_MACRO
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{- text(message['content']) + '\\n\\n' -}}"
    "{%- elif message['role'] == 'user' -%}{{- 'USER: ' + text(message['content']) + '\\n' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- 'ASSISTANT: ' + text(message['content']) + eos_token + '\\n' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}";

static const char openchat_src[] = TEXT_MACRO
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{- text(message['content']) + '<|end_of_turn|>' -}}"
    "{%- else -%}"
    "{{- ('GPT4 Correct User: ' if message['role'] == 'user' else 'GPT4 Correct Assistant: ') + "
    "text(message['content']) + '<|end_of_turn|>' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'GPT4 Correct Assistant:' -}}{%- endif -%}";

/* DeepSeek-R1 (and its distills): the last system message leads, reasoning is dropped from
 * earlier assistant turns. */
static const char deepseek_src[] = TEXT_MACRO
    "{%- set ns = namespace(system_prompt='') -%}"
    "{%- for message in messages -%}{%- if message['role'] == 'system' -%}"
    "{%- set ns.system_prompt = text(message['content']) -%}{%- endif -%}{%- endfor -%}"
    "{{- bos_token -}}{{- ns.system_prompt -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{- '<｜User｜>' + text(message['content']) -}}"
    "{%- elif message['role'] == 'assistant' -%}{%- set content = text(message['content']) -%}"
    "{%- if '</think>' in content -%}{%- set content = content.split('</think>')[-1] -%}{%- endif "
    "-%}"
    "{{- '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<｜Assistant｜><think>\\n' -}}{%- endif -%}";

/* Command-R (the default, tool-less template). */
static const char command_r_src[] = TEXT_MACRO
    "{{- bos_token -}}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set loop_messages = messages[1:] -%}{%- set system_message = text(messages[0]['content']) "
    "-%}"
    "{{- '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' -}}"
    "{%- else -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}{%- set content = text(message['content']) -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' -}}"
    "{%- elif message['role'] == 'system' -%}"
    "{{- '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' -}}{%- endif "
    "-%}";

/* OpenAI harmony (gpt-oss): a system message of the model's standing (identity, knowledge
 * cutoff, date, reasoning effort: the variables model_identity and reasoning_effort as the
 * publisher's template reads them), the caller's system or developer message as the developer's
 * instructions, every message on its channel; earlier answers' thinking is dropped, as there. */
static const char harmony_src[] = TEXT_MACRO
    "{%- if model_identity is not defined -%}"
    "{%- set model_identity = 'You are ChatGPT, a large language model trained by OpenAI.' -%}"
    "{%- endif -%}"
    "{%- if reasoning_effort is not defined -%}{%- set reasoning_effort = 'medium' -%}{%- endif -%}"
    "{{- '<|start|>system<|message|>' + model_identity + '\\nKnowledge cutoff: 2024-06\\nCurrent "
    "date: ' + strftime_now('%Y-%m-%d') + '\\n\\nReasoning: ' + reasoning_effort + '\\n\\n# Valid "
    "channels: analysis, commentary, final. Channel must be included for every message.<|end|>' "
    "-}}"
    "{%- if messages and messages[0]['role'] in ['system', 'developer'] -%}"
    "{%- set developer = text(messages[0]['content']) -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set developer = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- if developer -%}"
    "{{- '<|start|>developer<|message|># Instructions\\n\\n' + developer + '\\n\\n<|end|>' -}}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'assistant' and loop.last and not add_generation_prompt -%}"
    "{%- if message['thinking'] is string -%}"
    "{{- '<|start|>assistant<|channel|>analysis<|message|>' + message['thinking'] + '<|end|>' -}}"
    "{%- endif -%}"
    "{{- '<|start|>assistant<|channel|>final<|message|>' + text(message['content']) + "
    "'<|return|>' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<|start|>assistant<|channel|>final<|message|>' + text(message['content']) + '<|end|>' "
    "-}}"
    "{%- elif message['role'] == 'user' -%}"
    "{{- '<|start|>user<|message|>' + text(message['content']) + '<|end|>' -}}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start|>assistant' -}}{%- endif -%}";

typedef struct family {
    const char *name;
    const char *source;
    const char *eot;
    /* A template text belongs to the family when it contains every marker (NULLs ignored);
     * the same markers, looked up as tokens, identify a vocabulary. */
    const char *marker[2];
} family;

/* Order matters: more specific markers first (phi3's <|end|> before zephyr's <|assistant|>;
 * harmony's <|channel|> before phi3, whose <|end|> it shares). */
static const family families[] = {
    {"harmony", harmony_src, "<|return|>", {"<|channel|>", NULL}},
    {"chatml", chatml_src, "<|im_end|>", {"<|im_start|>", NULL}},
    {"llama3", llama3_src, "<|eot_id|>", {"<|start_header_id|>", NULL}},
    {"gemma", gemma_src, "<end_of_turn>", {"<start_of_turn>", NULL}},
    {"command-r", command_r_src, "<|END_OF_TURN_TOKEN|>", {"<|START_OF_TURN_TOKEN|>", NULL}},
    {"deepseek", deepseek_src, "<｜end▁of▁sentence｜>", {"<｜Assistant｜>", NULL}},
    {"phi3", phi3_src, "<|end|>", {"<|assistant|>", "<|end|>"}},
    {"openchat", openchat_src, "<|end_of_turn|>", {"<|end_of_turn|>", NULL}},
    {"zephyr", zephyr_src, "</s>", {"<|assistant|>", NULL}},
    {"llama2", llama2_src, "</s>", {"[INST]", "<<SYS>>"}},
    {"mistral", mistral_src, "</s>", {"[INST]", NULL}},
    {"vicuna", vicuna_src, "</s>", {"ASSISTANT:", NULL}},
};
enum { N_FAMILIES = sizeof families / sizeof families[0] };

static const family *family_named(const char *name) {
    for (size_t i = 0; name && i < N_FAMILIES; i++)
        if (strcmp(families[i].name, name) == 0) return &families[i];
    return NULL;
}

const char *chat_builtin_get(const char *name) {
    const family *f = family_named(name);
    return f ? f->source : NULL;
}

size_t chat_builtin_count(void) {
    return N_FAMILIES;
}

const char *chat_builtin_name(size_t i) {
    return i < N_FAMILIES ? families[i].name : NULL;
}

const char *chat_family_eot(const char *family_name) {
    const family *f = family_named(family_name);
    return f ? f->eot : NULL;
}

const char *chat_family_of(const char *source) {
    for (size_t i = 0; source && i < N_FAMILIES; i++) {
        const family *f = &families[i];
        if (strstr(source, f->marker[0]) && (!f->marker[1] || strstr(source, f->marker[1])))
            return f->name;
    }
    return "unknown";
}

/* Architectures whose family cannot be told from the vocabulary alone. */
static const struct {
    const char *arch;
    const char *family;
} arch_families[] = {
    {"llama", "llama2"},        {"mistral", "mistral"},   {"gemma", "gemma"},
    {"gemma2", "gemma"},        {"gemma3", "gemma"},      {"qwen", "chatml"},
    {"qwen2", "chatml"},        {"qwen3", "chatml"},      {"phi3", "phi3"},
    {"command-r", "command-r"}, {"cohere2", "command-r"}, {"deepseek2", "deepseek"},
    {"stablelm", "zephyr"},     {"gpt-oss", "harmony"},
};

const char *chat_builtin_pick(const char *arch, chat_has_token_fn has_token, void *user) {
    for (size_t i = 0; has_token && i < N_FAMILIES; i++) {
        const family *f = &families[i];
        /* only single, special-looking markers identify a vocabulary: a vocab holding "[INST]"
         * as one token is Mistral's (Llama 2 spells it in pieces) */
        if (f->marker[1] && strcmp(f->name, "phi3") != 0) continue;
        if (strcmp(f->name, "vicuna") == 0 || strcmp(f->name, "zephyr") == 0) continue;
        if (!has_token(f->marker[0], user)) continue;
        if (f->marker[1] && !has_token(f->marker[1], user)) continue;
        return f->name;
    }
    for (size_t i = 0; arch && i < sizeof arch_families / sizeof arch_families[0]; i++)
        if (strcmp(arch, arch_families[i].arch) == 0) return arch_families[i].family;
    return "chatml";
}
