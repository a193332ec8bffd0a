#!/usr/bin/env node
// Checks a JSON value against a model of Segment's own Public API SDK
// (@segment/public-api-sdk-typescript) and prints JSON: {"sdk": "<version>", "problems": [...]}.
// Each problem is [kind, path, detail]: "unknown" (a field the model does not have),
// "type" (a value of the wrong type), "enum" (a value outside the model's enum),
// "missing" (a field the model's declaration does not mark optional).
// The SDK's serializer checks nothing (it drops unknown fields and passes any enum value), so
// this walks the models' own attributeTypeMap and enums instead: the schema is Segment's,
// never copied by hand. The Segment connector's tests call it (tests/unit/connectors).
// Usage: node check-segment-api.mjs MODEL < value.json   (e.g. CreateWorkspaceRegulationV1Input)
//        node check-segment-api.mjs --batch < [[MODEL, value], ...]  -> {"sdk", "results": [problems]}
//        node check-segment-api.mjs --enum Regulation.OverallStatusEnum
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const PACKAGE = "@segment/public-api-sdk-typescript";
const models = require(`${PACKAGE}/dist/model/models.js`);
const root = path.dirname(require.resolve(`${PACKAGE}/package.json`));
const version = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).version;
const NUMBERS = new Set(["double", "integer", "long", "float", "number"]);
const MAP = /^\{ \[key: string\]: (.+); \}$/;

function enumOf(type) {
  const [owner, name, ...rest] = type.split(".");
  const found = rest.length === 0 && models[owner] ? models[owner][name] : undefined;
  // A TypeScript string enum compiles to {X: "X"}: its keys are the values sent on the wire.
  return found && typeof found === "object" ? Object.keys(found) : undefined;
}

// Fields the model's own declaration (dist/model/<name>.d.ts) does not mark optional (`?:`).
function required(model) {
  const file = path.join(root, "dist", "model", model[0].toLowerCase() + model.slice(1) + ".d.ts");
  const text = readFileSync(file, "utf8");
  const body = text.slice(text.indexOf(`export declare class ${model} {`)).split("\n}")[0];
  return [...body.matchAll(/^ {4}'(\w+)': /gm)].map((m) => m[1]);
}

function check(value, type, where, problems) {
  if (value === undefined || value === null) return;
  if (type === "any" || type === "object") return;
  if (type === "string" || type === "Date") {
    if (typeof value !== "string") problems.push(["type", where, `not a string (${type})`]);
    return;
  }
  if (type === "boolean") {
    if (typeof value !== "boolean") problems.push(["type", where, "not a boolean"]);
    return;
  }
  if (NUMBERS.has(type)) {
    if (typeof value !== "number") problems.push(["type", where, `not a number (${type})`]);
    return;
  }
  if (type.startsWith("Array<")) {
    if (!Array.isArray(value)) return problems.push(["type", where, `not an array (${type})`]);
    const item = type.slice("Array<".length, -1);
    value.forEach((v, i) => check(v, item, `${where}[${i}]`, problems));
    return;
  }
  const map = MAP.exec(type);
  if (map) {
    if (typeof value !== "object" || Array.isArray(value)) {
      return problems.push(["type", where, "not an object"]);
    }
    for (const [k, v] of Object.entries(value)) check(v, map[1], `${where}.${k}`, problems);
    return;
  }
  const values = enumOf(type);
  if (values) {
    if (!values.includes(value)) problems.push(["enum", where, `${value} is not in ${type}`]);
    return;
  }
  const model = models[type];
  if (!model || typeof model.getAttributeTypeMap !== "function") {
    throw new Error(`the SDK has no model or type ${type}`);
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    return problems.push(["type", where, `not an object (${type})`]);
  }
  const attributes = model.getAttributeTypeMap();
  const known = new Set(attributes.map((a) => a.baseName));
  for (const key of Object.keys(value)) {
    if (!known.has(key)) problems.push(["unknown", `${where}.${key}`, `not a field of ${type}`]);
  }
  const names = new Map(attributes.map((a) => [a.name, a.baseName]));
  for (const name of required(type)) {
    const wire = names.get(name) ?? name;
    if (value[wire] === undefined) problems.push(["missing", `${where}.${wire}`, `${type}`]);
  }
  for (const a of attributes) check(value[a.baseName], a.type, `${where}.${a.baseName}`, problems);
}

const [first, second] = process.argv.slice(2);
if (!first) {
  console.error("usage: node check-segment-api.mjs MODEL | --batch | --enum OWNER.ENUM");
  process.exit(2);
}
if (first === "--enum") {
  const values = second ? enumOf(second) : undefined;
  if (!values) {
    console.error(`the SDK has no enum ${second}`);
    process.exit(2);
  }
  console.log(JSON.stringify({ sdk: version, values }));
} else if (first === "--batch") {
  const results = JSON.parse(readFileSync(0, "utf8")).map(([model, value]) => {
    const problems = [];
    check(value, model, "$", problems);
    return problems;
  });
  console.log(JSON.stringify({ sdk: version, results }));
} else {
  const problems = [];
  check(JSON.parse(readFileSync(0, "utf8")), first, "$", problems);
  console.log(JSON.stringify({ sdk: version, problems }));
}
