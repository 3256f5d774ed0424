#!/usr/bin/env bash
# Builds the browser client into web/dist when its sources changed (npm ci is done by setup.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../web"
stamp=dist/.lamina-build
if [ -f "$stamp" ] && [ -z "$(find src static build.mjs package-lock.json tsconfig.json -newer "$stamp" 2>/dev/null | head -1)" ]; then
  exit 0
fi
npm run --silent build
touch "$stamp"
