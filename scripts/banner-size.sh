#!/usr/bin/env bash
# Prints the size of web/banner.js as shipped: raw, minified (terser) and minified+gzipped.
# Fails when the minified+gzipped size exceeds the budget (default 6144 bytes, BUDGET=...).
# Needs the npm packages of web/tests (make e2e-deps installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${BUDGET:-6144}"
terser="web/tests/node_modules/.bin/terser"
[ -x "$terser" ] || { echo "terser missing: run 'make e2e-deps' first" >&2; exit 2; }
min="$(mktemp)"
trap 'rm -f "$min"' EXIT
"$terser" web/banner.js --compress --mangle --comments '/^!/' --ecma 2020 -o "$min"
raw=$(wc -c <web/banner.js)
minified=$(wc -c <"$min")
gzipped=$(gzip -9 -c "$min" | wc -c)
echo "banner.js: ${raw} B raw, ${minified} B minified, ${gzipped} B minified+gzipped (budget ${budget} B)"
[ "$gzipped" -le "$budget" ] || { echo "over budget" >&2; exit 1; }
