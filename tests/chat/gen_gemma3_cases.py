#!/usr/bin/env python3
# Renders Gemma 3's chat template (tests/chat/gemma3.jinja, the `chat_template` of Google's
# gemma-3-*-it models, as a GGUF carries it in tokenizer.chat_template) with Jinja2 in the
# environment Hugging Face's apply_chat_template uses (sandbox, trim_blocks, lstrip_blocks,
# loopcontrols, raise_exception), for conversations that reach every branch of the template:
#   python3 tests/chat/gen_gemma3_cases.py > tests/chat/gemma3_cases.json
import json, os
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2 import ext

def raise_exception(msg):
    raise Exception(msg)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[ext.loopcontrols])
env.globals['raise_exception'] = raise_exception
src = open(os.path.join(os.path.dirname(__file__), 'gemma3.jinja')).read()
tpl = env.from_string(src)
BOS = '<bos>'
convs = [
    [{'role': 'user', 'content': 'Hello'}],
    [{'role': 'system', 'content': 'You are terse.'}, {'role': 'user', 'content': '  Hi there \n'},
     {'role': 'assistant', 'content': 'Hello.'}, {'role': 'user', 'content': 'And now?'}],
    [{'role': 'system', 'content': [{'type': 'text', 'text': 'Be kind.'}]},
     {'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': ' Describe it. '}]}],
    [{'role': 'user', 'content': 'Grüße, 世界 <end_of_turn> literal'},
     {'role': 'assistant', 'content': '\n\nok\n'}],
    [{'role': 'user', 'content': 'a'}, {'role': 'user', 'content': 'b'}],
    [{'role': 'assistant', 'content': 'first'}],
    [{'role': 'user', 'content': 5}],
]
cases = []
for msgs in convs:
    for agp in (True, False):
        c = {'messages': msgs, 'add_generation_prompt': agp}
        try:
            c['expect'] = tpl.render(messages=msgs, add_generation_prompt=agp, bos_token=BOS)
        except Exception as e:
            c['error'] = str(e)
        cases.append(c)
print(json.dumps({'bos_token': BOS, 'cases': cases}, indent=1, ensure_ascii=False))
