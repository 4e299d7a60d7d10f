#!/usr/bin/env python3
# Random expressions over literals, variables, operators, filters, tests, methods, slices and
# loops, rendered by Jinja2 in the environment of templates/expected.json. Cases whose Jinja2
# result is a Python artefact rather than template semantics are left out by rule: lazy
# generators (select/map/unique/reverse/items return generators), reprs of bound methods, and
# dotted filter names. Writes the cases test_jinja replays:
#   python3 tests/chat/gen_expression_cases.py SEED COUNT tests/chat/expression_cases.json
import copy, json, random, sys
from jinja2.sandbox import SandboxedEnvironment
from jinja2 import ext

def raise_exception(msg): raise Exception(msg)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
env.globals.update(raise_exception=raise_exception)
env.filters['tojson'] = tojson
R = random.Random(int(sys.argv[1]))
VARS = {"x": {"a": 1, "b": "two", "c": [1, 2.5, None], "items": 3}, "l": [3, 1, 2, "z", "A"], "s": "  Hello, Wörld  ", "n": 7, "f": 2.5, "e": [], "t": True, "z": None,
        "ms": [{"role": "user", "content": "hi", "k": 1}, {"role": "assistant", "content": "yo"}, {"role": "tool"}]}
def lit():
    return R.choice(["1", "0", "-3", "2.5", "0.1", "1e3", "'ab'", "''", "\"q'\"", "true", "false", "none", "[1, 2]", "[]", "{'k': 1}", "(1, 'a')", "'A b c'", "'3'", "'4.5'"])
def var():
    return R.choice(["x", "l", "s", "n", "f", "e", "t", "z", "ms", "x.a", "x.b", "x['c']", "x.c[1]", "l[0]", "l[-1]", "ms[0].role", "ms[2].content", "x.missing", "undefined_v", "x.items", "s[1:4]", "l[::-1]", "l[1:]", "ms|length"])
FILTERS = ["length", "upper", "lower", "trim", "first", "last", "list", "string", "int", "float", "abs", "round", "tojson", "sort", "unique", "reverse", "title", "capitalize", "join", "join(', ')", "default('d')", "default('d', true)", "replace('l', 'L')", "items", "selectattr('role')", "map(attribute='role')", "map('upper')", "select('odd')", "sum", "min", "max", "count", "indent(2)", "e", "safe", "dictsort", "tojson(indent=2)", "wordcount", "format(1)"]
TESTS = ["defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number", "integer", "float", "boolean", "true", "false", "odd", "even", "divisibleby 2", "equalto 1", "in [1, 'ab']", "lower", "upper"]
METHODS = [".upper()", ".lower()", ".strip()", ".split()", ".split(',')", ".startswith('He')", ".endswith('d')", ".replace('l', 'x')", ".title()", ".get('a')", ".get('q', 5)", ".items()|list", ".keys()|list", ".values()|list", ".find('l')", ".count('l')", ".lstrip()", ".rstrip()"]
def expr(d=0):
    if d > 2: return R.choice([lit, var])()
    k = R.randrange(12)
    if k == 0: return lit()
    if k == 1: return var()
    if k == 2: return f"({expr(d+1)} {R.choice(['+','-','*','/','//','%','~','**'])} {expr(d+1)})"
    if k == 3: return f"({expr(d+1)} {R.choice(['==','!=','<','>','<=','>=','in','not in'])} {expr(d+1)})"
    if k == 4: return f"({expr(d+1)} {R.choice(['and','or'])} {expr(d+1)})"
    if k == 5: return f"(not {expr(d+1)})"
    if k == 6: return f"({expr(d+1)} if {expr(d+1)} else {expr(d+1)})"
    if k == 7: return f"({expr(d+1)}|{R.choice(FILTERS)})"
    if k == 8: return f"({expr(d+1)} is {R.choice(['', 'not '])}{R.choice(TESTS)})"
    if k == 9: return f"{var()}{R.choice(METHODS)}"
    if k == 10: return f"[{expr(d+1)}, {expr(d+1)}]"
    idx = R.choice(['0','1','-1','1:','::-1','"a"','2:5'])
    return f"{var()}[{idx}]"
def stmt():
    k = R.randrange(6)
    if k == 0: return "{{ " + expr() + " }}"
    if k == 1: return "{% for i in " + expr() + " %}[{{ i }}{{ loop.index }}]{% else %}E{% endfor %}"
    if k == 2: return "{% if " + expr() + " %}Y{% else %}N{% endif %}"
    if k == 3: return "{% set v = " + expr() + " %}{{ v }}"
    if k == 4: return "{% for a, b in " + R.choice(["x|items", "x.items()", "[[1,2],[3,4]]", "ms|dictsort"]) + " %}{{ a }}={{ b }};{% endfor %}"
    return "{{ " + expr() + " }}|{{ " + expr() + " }}"
ARTEFACTS = ("select", "map(", "unique", "reverse", "items", "length.", "x.items")
cases = []
while len(cases) < int(sys.argv[2]):
    t = stmt()
    if any(a in t for a in ARTEFACTS): continue
    try:
        out = env.from_string(t).render(**copy.deepcopy(VARS))
    except Exception:
        # random expressions fail often; keep refusals to a quarter of the cases
        if sum("error" in c for c in cases) < int(sys.argv[2]) // 4:
            cases.append({"template": t, "vars": VARS, "error": True})
        continue
    if "object at 0x" in out or "<built-in" in out: continue
    cases.append({"template": t, "vars": VARS, "expect": out})
json.dump(cases, open(sys.argv[3], "w"), indent=0, ensure_ascii=False)
print(len(cases), "cases,", sum("error" in c for c in cases), "refused")
