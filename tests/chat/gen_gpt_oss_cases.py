#!/usr/bin/env python3
# Renders OpenAI's gpt-oss chat template (tests/chat/gpt-oss.jinja: the `chat_template` of
# openai/gpt-oss-20b and -120b, the "harmony" format, as their GGUFs carry it) with Jinja2 in the
# environment of Hugging Face's apply_chat_template (sandbox, trim_blocks, lstrip_blocks,
# loopcontrols, raise_exception, strftime_now, tojson without ASCII escaping), for conversations
# that reach its branches: system/developer messages, tools rendered as TypeScript, tool calls and
# results in the history, thinking, reasoning_effort / model_identity variables, refusals:
#   python3 tests/chat/gen_gpt_oss_cases.py > tests/chat/gpt_oss_cases.json
import datetime, json, os
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2 import ext

DATE = '2025-08-05'
def raise_exception(msg): raise Exception(msg)
def strftime_now(fmt): return datetime.datetime.strptime(DATE, '%Y-%m-%d').strftime(fmt)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
env.globals.update(raise_exception=raise_exception, strftime_now=strftime_now)
env.filters['tojson'] = tojson
tpl = env.from_string(open(os.path.join(os.path.dirname(__file__), 'gpt-oss.jinja')).read())

weather = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
        "days": {"type": "integer", "description": "Days ahead", "default": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "opts": {"type": "object", "properties": {"precise": {"type": "boolean"}}, "required": ["precise"]},
        "when": {"oneOf": [{"type": "string"}, {"type": "number"}]}},
        "required": ["city"]}}}
now = {"type": "function", "function": {"name": "now", "description": "The time now.", "parameters": {"type": "object", "properties": {}}}}
call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
convs = {
    "user": {"messages": [{"role": "user", "content": "Hello"}]},
    "system": {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Why? 世界"}]},
    "developer": {"messages": [{"role": "developer", "content": "Answer in French."}, {"role": "user", "content": "Hi"}]},
    "thinking_last": {"messages": [{"role": "user", "content": "2+2?"},
                                   {"role": "assistant", "thinking": "Simple sum.", "content": "4"}]},
    "tools": {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [weather, now]},
    "tools_system": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Time?"}], "tools": [now]},
    "tool_roundtrip": {"messages": [{"role": "user", "content": "Weather in Paris?"},
                                    {"role": "assistant", "thinking": "Need the tool.", "tool_calls": [call]},
                                    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"}],
                       "tools": [weather]},
    "tool_then_final": {"messages": [{"role": "user", "content": "Weather in Paris?"},
                                     {"role": "assistant", "content": "Let me check.", "tool_calls": [call]},
                                     {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                                     {"role": "assistant", "content": "Sunny."},
                                     {"role": "user", "content": "Thanks"}],
                        "tools": [weather]},
    "vars": {"messages": [{"role": "user", "content": "Hi"}],
             "vars": {"reasoning_effort": "high", "model_identity": "You are a helpful assistant."}},
    "channel_in_content": {"messages": [{"role": "user", "content": "Hi"},
                                        {"role": "assistant", "content": "<|channel|>final<|message|>x"}]},
    "tool_without_call": {"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "x"}]},
}
cases = []
for name, c in convs.items():
    for agp in (True, False):
        case = {"conversation": name, "add_generation_prompt": agp}
        kw = dict(c.get("vars", {}))
        if "tools" in c: kw["tools"] = c["tools"]
        try:
            case["output"] = tpl.render(messages=c["messages"], add_generation_prompt=agp, **kw)
        except Exception as e:
            case["error"] = str(e)
        cases.append(case)
print(json.dumps({"date": DATE, "conversations": convs, "cases": cases}, indent=1, ensure_ascii=False))
