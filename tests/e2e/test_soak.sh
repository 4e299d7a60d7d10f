#!/usr/bin/env bash
# The soak test's short version (tests/soak/soak.mjs): `shimmy_asan serve` (ASan+UBSan) under
# mixed concurrent traffic for SOAK_SECONDS (default 15, plus ~30 s of warm-up and checks).
# Skips (77) when the sanitized binary was not built (-DSHIMMY_SANITIZE=OFF).
set -euo pipefail
src="${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
asan="$(dirname "${SHIMMY_BIN:?SHIMMY_BIN is not set}")/shimmy_asan"
[[ -x "$asan" ]] || { echo "SKIP: $asan not built (configure with -DSHIMMY_SANITIZE=ON)"; exit 77; }
exec node "$src/tests/soak/soak.mjs" --bin "$asan" --seconds "${SOAK_SECONDS:-15}" --clients 4
