#!/usr/bin/env bash
# Every tracked C source and header is formatted as the repository's .clang-format says
# (`make format` fixes it), so style never drifts between the engineers' modules.
set -u
SRC=${SHIMMY_SRC:?SHIMMY_SRC not set}
command -v clang-format >/dev/null || { echo "SKIP: clang-format not installed"; exit 77; }
cd "$SRC" || exit 1
git rev-parse --git-dir >/dev/null 2>&1 || { echo "SKIP: not a git checkout"; exit 77; }
bad=0
while IFS= read -r -d '' f; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f"; bad=$((bad + 1)); }
done < <(git ls-files -z '*.c' '*.h')
echo "format: $bad file(s) need clang-format"
[ "$bad" -eq 0 ]
