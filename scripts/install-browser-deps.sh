#!/usr/bin/env bash
# Installs what the browser tests need: Debian's chromium (never a downloaded browser build)
# and the npm packages in web/tests (IAB's GPP reference decoder). Idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# Re-install when the lock file changed since the last install (npm ci writes node_modules).
if [ -f web/tests/package.json ] && { [ ! -d web/tests/node_modules ] ||
   [ web/tests/package-lock.json -nt web/tests/node_modules/.package-lock.json ]; }; then
  (cd web/tests && npm ci --silent --no-audit --no-fund)
fi
