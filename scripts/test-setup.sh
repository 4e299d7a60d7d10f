#!/usr/bin/env bash
# Prepares what the end-to-end tests need beyond the build: the `openai` npm client.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f tests/e2e/node/package.json ]] && command -v npm >/dev/null; then
  if [[ ! -d tests/e2e/node/node_modules/openai || ! -d tests/e2e/node/node_modules/ollama ||
        ! -d tests/e2e/node/node_modules/@anthropic-ai/sdk ||
        ! -d tests/e2e/node/node_modules/ajv-formats ||
        ! -d tests/e2e/node/node_modules/ajv-draft-04 ||
        ! -d tests/e2e/node/node_modules/json-schema-test-suite ]]; then
    (cd tests/e2e/node && npm install --no-audit --no-fund --loglevel=error) ||
      echo "test-setup: npm install failed; node end-to-end tests will skip" >&2
  fi
fi
