#!/usr/bin/env python3
# Checks tests/chat/jinja_cases.json against Jinja2 itself (the environment of
# templates/expected.json), so every expectation there comes from the reference renderer:
#   python3 tests/chat/verify_jinja_cases.py tests/chat/jinja_cases.json

import json, sys
from jinja2.sandbox import SandboxedEnvironment
from jinja2 import ext
def raise_exception(msg): raise Exception(msg)
def strftime_now(fmt):
    import datetime
    return datetime.datetime(2024,7,26).strftime(fmt)
env = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
env.globals['raise_exception'] = raise_exception
env.globals['strftime_now'] = strftime_now
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env.filters['tojson'] = tojson
cases = json.load(open(sys.argv[1]))
bad = 0
for i, c in enumerate(cases):
    try:
        out = env.from_string(c['template']).render(**c.get('vars', {}))
        res = ('ok', out)
    except Exception as e:
        res = ('error', str(e))
    if 'expect' in c:
        if res != ('ok', c['expect']):
            bad += 1; print(f"case {i}: {c['template']!r}\n  expect {c['expect']!r}\n  jinja2 {res!r}")
    else:
        if res[0] != 'error':
            bad += 1; print(f"case {i}: {c['template']!r} expected an error, jinja2 gave {res!r}")
print(f"{len(cases)} cases, {bad} disagree with Jinja2")
