#!/usr/bin/env node
// Builds what a site embeds: web/dist/banner.min.js (terser) and, beside it,
// banner.min.js.sri with its Subresource Integrity hash (sha384). Prints the sizes and fails
// when the minified file gzipped exceeds the budget (8470 bytes; BUDGET=... to change it).
// Run by `make banner` (and so by `make run` and `make test`); terser comes from
// web/tests/package.json (`npm ci`), so the build is the same on every machine.
// `--check` only measures the shipped file, as the build does, against the budget (the test
// of the shipped file runs it: Python's gzip makes a smaller file of the same input).
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";

const root = new URL("../", import.meta.url);
const budget = Number(process.env.BUDGET || 8470);
const gzipped = (code) => gzipSync(code, { level: 9 }).length;
if (process.argv[2] === "--check") {
  const size = gzipped(readFileSync(new URL("web/dist/banner.min.js", root)));
  console.log(JSON.stringify({ gzipped: size, budget }));
  process.exit(size > budget ? 1 : 0);
}
const require = createRequire(new URL("web/tests/package.json", root));
let terser;
try {
  terser = require("terser");
} catch {
  console.error("terser missing: run `make banner` (it installs web/tests's npm packages)");
  process.exit(2);
}

const source = readFileSync(new URL("web/banner.js", root), "utf8");
// hoist_funs moves the one function declaration (gtag) to the top of its scope, where JavaScript
// hoists it anyway; ascii_only writes "…", "·" and "§" as \u escapes, the same strings: 16 bytes
// gzipped, no change of behaviour (browser37). Left out: module (drops "use strict"), unsafe
// (String(x) turns x + "", which throws for a Symbol a __gpp caller may pass) and unsafe_comps
// (folds !(a < b) into a >= b, wrong for NaN).
const { code } = await terser.minify(source, {
  ecma: 2020,
  compress: { passes: 3, unsafe_arrows: true, hoist_funs: true },
  mangle: true,
  format: { comments: /^!/, ascii_only: true }, // keeps the licence line
});
const out = new URL("web/dist/", root);
mkdirSync(out, { recursive: true });
writeFileSync(new URL("banner.min.js", out), code);
const sri = `sha384-${createHash("sha384").update(code).digest("base64")}`;
writeFileSync(new URL("banner.min.js.sri", out), `${sri}\n`);

const size = gzipped(code);
console.log(
  `web/dist/banner.min.js: ${source.length} B source, ${code.length} B minified, ` +
    `${size} B gzipped (budget ${budget} B); integrity ${sri}`,
);
if (size > budget) {
  console.error("over budget");
  process.exit(1);
}
