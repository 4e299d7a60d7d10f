#!/usr/bin/env bash
# Issue #8: the CLI and the server call nothing a library user cannot. Every file of the given
# folders (default: src/server and src/cli) may include only shimmy.h, headers of its own
# folder, and system or third-party headers; src/cli may also include the server module's own
# interface (server/server.h, or server.h through the shimmy_server target's include path) for
# `serve`. Anything under src/ reached another way fails.
#   test_api_layering.sh [FOLDER...]     folders relative to the source tree
set -u
SRC=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
FOLDERS=("$@")
[ ${#FOLDERS[@]} -gt 0 ] || FOLDERS=(src/server src/cli)

# check_folder ROOT FOLDER: prints each offending include, returns 1 if any.
check_folder() {
    local root=$1 folder=$2 bad=0 f line hdr
    [ -d "$root/$folder" ] || { echo "FAIL: $folder: no such folder"; return 1; }
    for f in "$root/$folder"/*.c "$root/$folder"/*.h; do
        [ -e "$f" ] || continue
        while IFS= read -r line; do
            if [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
                hdr=${BASH_REMATCH[1]}
                [ "$hdr" = shimmy.h ] && continue
                [[ $hdr != */* && -e "$root/$folder/$hdr" ]] && continue
                [ "$folder" = src/cli ] && [[ $hdr = server/server.h || $hdr = server.h ]] && continue
                echo "FAIL: ${f#$root/}: #include \"$hdr\" is not the public API"
                bad=1
            elif [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
                hdr=${BASH_REMATCH[1]}
                if [ -e "$root/src/$hdr" ] || [ -e "$root/src/${hdr#src/}" ]; then
                    echo "FAIL: ${f#$root/}: #include <$hdr> reaches into src/"
                    bad=1
                fi
            fi
        done < "$f"
    done
    return $bad
}

# The checker must catch a violation: a scratch tree with one bad and one good folder.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/src/engine" "$TMP/src/good" "$TMP/src/bad"
touch "$TMP/src/engine/engine.h" "$TMP/src/good/good.h"
printf '#include "shimmy.h"\n#include "good.h"\n#include <stdio.h>\n' > "$TMP/src/good/a.c"
printf '#include "shimmy.h"\n#include "engine/engine.h"\n' > "$TMP/src/bad/a.c"
printf '#include <engine/engine.h>\n' > "$TMP/src/bad/b.c"
if ! check_folder "$TMP" src/good > /dev/null; then echo "FAIL: self-test: a clean folder was refused"; exit 1; fi
n=$(check_folder "$TMP" src/bad | grep -c FAIL)
if [ "$n" -ne 2 ]; then echo "FAIL: self-test: $n of 2 bad includes caught"; exit 1; fi

fail=0
# The build enforces it too: with the server target's own flags (compile_commands.json), an
# internal header does not compile while the public one and the server's own do.
BUILD=$(dirname "${SHIMMY_BIN:-/nonexistent/x}")
if [ -f "$BUILD/compile_commands.json" ]; then
    cmd=$(python3 - "$BUILD/compile_commands.json" "$SRC/src/server/server.c" <<'PY'
import json, shlex, sys
for e in json.load(open(sys.argv[1])):
    if e["file"] == sys.argv[2] and "shimmy_server.dir" in e.get("command", ""):
        args = shlex.split(e["command"])
        keep, skip = [], False
        for a in args[1:]:
            if skip: skip = False; continue
            if a in ("-o", "-c"): skip = a == "-o"; continue
            if a.endswith(".c"): continue
            keep.append(a)
        print(args[0] + " " + " ".join(shlex.quote(a) for a in keep)); break
PY
)
    if [ -z "$cmd" ]; then
        echo "FAIL: no shimmy_server compile command for src/server/server.c"; fail=1
    else
        printf '#include "shimmy.h"\n#include "server.h"\nint probe;\n' > "$TMP/ok.c"
        printf '#include "core/core.h"\nint probe;\n' > "$TMP/bad.c"
        if ! (cd "$BUILD" && eval "$cmd" -c "$TMP/ok.c" -o "$TMP/ok.o"); then
            echo "FAIL: the server's flags do not compile shimmy.h + server.h"; fail=1
        elif (cd "$BUILD" && eval "$cmd" -c "$TMP/bad.c" -o "$TMP/bad.o") 2>/dev/null; then
            echo "FAIL: the server's flags let core/core.h compile"; fail=1
        else
            echo "ok: the shimmy_server target cannot include internal headers"
        fi
    fi
fi
for folder in "${FOLDERS[@]}"; do
    if check_folder "$SRC" "$folder"; then
        echo "ok: $folder includes only the public API"
    else
        fail=1
    fi
done
exit $fail
