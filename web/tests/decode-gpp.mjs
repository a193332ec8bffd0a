#!/usr/bin/env node
// Decodes a GPP string with IAB's reference library (@iabgpp/cmpapi) and prints JSON:
//   {"sectionIds":[7], "usnat":{"SaleOptOut":1, ..., "Gpc":true}, "canonical":"DBABLA~..."}
// `canonical` is what the reference encoder makes of the decoded fields: equal to the input
// when the input was encoded exactly as the spec says (no stray padding or bits).
// The browser tests call this so banner.js is judged by IAB's code, not by strings computed
// by hand. Usage: node decode-gpp.mjs 'DBABLA~...'
import { GppModel } from "@iabgpp/cmpapi";

const encoded = process.argv[2];
if (!encoded) {
  console.error("usage: node decode-gpp.mjs <gpp-string>");
  process.exit(2);
}
let decoded;
try {
  decoded = new GppModel(encoded);
} catch (error) {
  console.error(`not a valid GPP string: ${error.message}`);
  process.exit(1);
}
const out = { sectionIds: decoded.getSectionIds() };
const fresh = new GppModel();
for (const name of ["usnat"]) {
  if (!decoded.hasSection(name)) continue;
  out[name] = decoded.getSection(name);
  for (const [field, value] of Object.entries(out[name])) fresh.setFieldValue(name, field, value);
  // getSection leaves out whether the GPC subsection was present: read it from the string.
  const section = encoded.split("~")[1 + decoded.getSectionIds().indexOf(7)] || "";
  fresh.setFieldValue(name, "GpcSegmentIncluded", section.includes("."));
}
out.canonical = fresh.encode();
console.log(JSON.stringify(out));
