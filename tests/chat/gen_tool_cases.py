#!/usr/bin/env python3
# Renders the templates of testdata/templates with tool-bearing conversations through Jinja2
# (the environment of expected.json) and writes the outputs as a test fixture:
#   python3 tests/chat/gen_tool_cases.py $SHIMMY_TESTDATA tests/chat/tool_cases.json
import json, sys, os
from jinja2.sandbox import SandboxedEnvironment
from jinja2 import ext
def raise_exception(msg): raise Exception(msg)
def strftime_now(fmt):
    import datetime
    return datetime.datetime(2024, 7, 26).strftime(fmt)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
env.globals.update(raise_exception=raise_exception, strftime_now=strftime_now)
env.filters['tojson'] = tojson
data = sys.argv[1]
exp = json.load(open(os.path.join(data, 'templates/expected.json')))
weather = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit", "default": "celsius"},
        "days": {"type": "integer", "description": "Days ahead", "minimum": 0, "maximum": 7},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags"},
        "opts": {"type": "object", "properties": {"precise": {"type": "boolean"}}, "required": ["precise"], "description": "Options"}},
        "required": ["city"]}}}
search = {"type": "function", "function": {"name": "search", "description": "Search the web",
    "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": "Query <with> \"quotes\" & ünïcode"}}, "required": ["q"]}}}
call = {"id": "call12345", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}
call_str = {"id": "call67890", "type": "function", "function": {"name": "search", "arguments": "{\"q\": \"x\"}"}}
convs = {
    "tools_single": {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [weather, search]},
    "tools_system": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}], "tools": [weather]},
    "tool_roundtrip": {"messages": [{"role": "user", "content": "Weather in Paris?"},
                                     {"role": "assistant", "content": None, "tool_calls": [call]},
                                     {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temp\": 21}"},
                                     {"role": "assistant", "content": "It is 21 degrees."},
                                     {"role": "user", "content": "Thanks </think> ok"}], "tools": [weather]},
    "string_args": {"messages": [{"role": "user", "content": "Search x"},
                                  {"role": "assistant", "content": "", "tool_calls": [call_str]},
                                  {"role": "tool", "tool_call_id": "call67890", "content": "results"}], "tools": [search]},
    "no_tools_parts": {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>hmm</think>Hello"}, {"role": "user", "content": "Bye"}]},
}
out = {"conversations": convs, "templates": []}
for t in exp["templates"]:
    src = open(os.path.join(data, "templates", t["file"])).read()
    tmpl = env.from_string(src)
    cases = []
    for name, conv in convs.items():
        for agp in (True, False):
            try:
                text = tmpl.render(messages=conv["messages"], tools=conv.get("tools"), add_generation_prompt=agp,
                                   bos_token=t["bos_token"], eos_token=t["eos_token"]) if "tools" in conv else \
                       tmpl.render(messages=conv["messages"], add_generation_prompt=agp,
                                   bos_token=t["bos_token"], eos_token=t["eos_token"])
                cases.append({"conversation": name, "add_generation_prompt": agp, "output": text})
            except Exception as e:
                if "generator" in str(e):
                    continue  # a Python artefact (map() is lazy in Jinja2), not template semantics
                cases.append({"conversation": name, "add_generation_prompt": agp, "error": f"{type(e).__name__}: {e}"})
    out["templates"].append({"file": t["file"], "bos_token": t["bos_token"], "eos_token": t["eos_token"], "cases": cases})
json.dump(out, open(sys.argv[2], "w"), indent=1, ensure_ascii=False)
print(sum(len(t["cases"]) for t in out["templates"]), "cases,", sum(1 for t in out["templates"] for c in t["cases"] if "error" in c), "errors")
for t in out["templates"]:
    for c in t["cases"]:
        if "error" in c: print(t["file"], c["conversation"], c["add_generation_prompt"], c["error"][:100])
