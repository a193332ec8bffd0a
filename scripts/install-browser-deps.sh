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
# Not through a symlinked node_modules (a worktree linked to another checkout's): `npm ci`
# would empty that checkout's copy (its files are older than a fresh checkout's lock file).
if [ -L web/tests/node_modules ]; then
  echo "web/tests/node_modules is a symlink: run 'npm ci' where it points, or touch web/tests/node_modules/.package-lock.json" >&2
  exit 1
fi
if [ -f web/tests/package.json ] && { [ ! -d web/tests/node_modules ] ||
   [ web/tests/package-lock.json -nt web/tests/node_modules/.package-lock.json ]; }; then
  (cd web/tests && npm ci --silent --no-audit --no-fund)
fi
