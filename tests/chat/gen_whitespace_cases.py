#!/usr/bin/env python3
# Random templates mixing text, whitespace and tags with every whitespace-control marker
# ({%- -%} {%+ +%} {{- -}} {#- -#}, raw, macros, loops), rendered by Jinja2 in the environment of
# templates/expected.json (trim_blocks, lstrip_blocks). Writes the cases test_jinja replays:
#   python3 tests/chat/gen_whitespace_cases.py SEED COUNT tests/chat/whitespace_cases.json
import json, random, sys
from jinja2.sandbox import SandboxedEnvironment
from jinja2 import ext

env = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
R = random.Random(int(sys.argv[1]))

def text():
    return "".join(R.choice(["a", "b", " ", "  ", "\t", "\n", "\n  ", " \n", "\r\n", "x y", ""])
                   for _ in range(R.randrange(4)))
def tag(body):
    return "{%" + R.choice(["", "", "-", "+"]) + " " + body + " " + R.choice(["", "", "-", "+"]) + "%}"
def var(e):
    return "{{" + R.choice(["", "-"]) + " " + e + " " + R.choice(["", "-"]) + "}}"
def comment():
    return "{#" + R.choice(["", "-"]) + " c " + R.choice(["", "-"]) + "#}"
def block(d=0):
    parts = []
    for _ in range(R.randrange(1, 5)):
        k = R.randrange(8 if d < 2 else 4)
        if k == 0: parts.append(text())
        elif k == 1: parts.append(var(R.choice(["'v'", "i", "1", "' w '"])))
        elif k == 2: parts.append(comment())
        elif k == 3: parts.append(tag("set q = 1"))
        elif k == 4:
            parts.append(tag("if " + R.choice(["true", "false"])) + block(d + 1) +
                         R.choice(["", tag("else") + block(d + 1)]) + tag("endif"))
        elif k == 5: parts.append(tag("for i in [1, 2]") + block(d + 1) + tag("endfor"))
        elif k == 6: parts.append(tag("raw") + R.choice(["{{ x }}", " r \n", "\n"]) + tag("endraw"))
        else: parts.append(tag("macro m()") + block(d + 1) + tag("endmacro") + text() + var("m()"))
        parts.append(text())
    return "".join(parts)

cases = []
for _ in range(int(sys.argv[2])):
    t = text() + block() + text()
    try:
        cases.append({"template": t, "vars": {"i": 7}, "expect": env.from_string(t).render(i=7)})
    except Exception:
        cases.append({"template": t, "vars": {"i": 7}, "error": True})
json.dump(cases, open(sys.argv[3], "w"), indent=0, ensure_ascii=False)
print(len(cases), "cases,", sum("error" in c for c in cases), "refused")
