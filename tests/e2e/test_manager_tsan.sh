#!/usr/bin/env bash
# ThreadSanitizer run of the manager's concurrency tests (skips with 77 without TSan support).
set -u
SRC=${SHIMMY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
exec bash "$SRC/tests/manager/tsan.sh"
