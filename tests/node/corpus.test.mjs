// The shared conformance corpus through one engine, chosen by CORPUS_ENGINE
// (the layout of lightningcss's node/test): `node` (default: the npm
// package in Node), `chromium` (the package's browser build, unbundled, in
// headless Chromium), `native` (the mangaassist command line, for the
// suites it answers; CORPUS_BIN names the binary). Answers are compared as
// JSON text: JSON.stringify(answer) must equal the expected text
// re-serialized by JSON.stringify (JS has one number type, so `1.0` and `1`
// are the same value here; see tests/README.md). Bundled builds: tests/bundlers/.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { launchChromium, serveFiles } from "./browser.mjs";
import { checkerFailures, checkerSuites, compare, failures, parseCorpus, suites } from "./suites.mjs";

const engine = process.env.CORPUS_ENGINE ?? "node";
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, "..", "..");
const corpus = path.join(here, "..", "corpus");
const pkg = process.env.MANGAASSIST_PKG ?? "../../wasm/pkg/node/index.mjs";
const m = await import(pkg);

function load(suite) {
  return parseCorpus(readFileSync(path.join(corpus, `${suite}.jsonl`), "utf8"));
}

/** The command line as an engine: one process per suite, JSON Lines in and out. */
function nativeEngine() {
  const bin = process.env.CORPUS_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(process.env.HOME, ".cache/mangaassist/target"), "debug", "mangaassist");
  const scratch = mkdtempSync(path.join(tmpdir(), "mangaassist-corpus-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  const run = (args, lines) =>
    execFileSync(bin, args, { input: lines.map((l) => l + "\n").join(""), encoding: "utf8", maxBuffer: 1 << 28 })
      .split("\n")
      .filter((l) => l !== "");
  const subcommands = {
    check: (vs) => run(["check"], vs.map((v) => JSON.stringify({ message: v.input.message }))),
    cache_key: (vs) => run(["cache-key"], vs.map((v) => v.rawInput)),
    body: (vs) => run(["body"], vs.map((v) => v.rawInput)),
    policy: (vs) =>
      vs.map((v, i) => {
        const file = path.join(scratch, `policy-${i}.json`);
        writeFileSync(file, JSON.stringify(v.input.policy));
        try {
          return run(["check", "--policy", file], [JSON.stringify({ message: v.input.message })])[0];
        } catch (e) {
          // A policy that does not build stops the command before any line:
          // `mangaassist: policy file PATH: CODE: MESSAGE`, the error the
          // other engines answer.
          const reason = String(e.stderr).trimEnd().replace(`mangaassist: policy file ${file}: `, "");
          const cut = reason.indexOf(": ");
          return JSON.stringify({ error: { code: reason.slice(0, cut), message: reason.slice(cut + 2) } });
        }
      }),
  };
  return {
    suites: Object.keys(subcommands),
    failures: async (suite, vectors) => {
      const lines = subcommands[suite](vectors);
      const answers = new Map(vectors.map((v, i) => [v, JSON.parse(lines[i] ?? "null")]));
      return compare(vectors, (v) => answers.get(v));
    },
  };
}

/** The browser build (`web/`, as published) in headless Chromium, no bundler. */
async function chromiumEngine() {
  const { chromium } = await import(path.join(root, "tests", "e2e", "node_modules", "playwright-core", "index.mjs"));
  const files = {
    "/": ["text/html", '<!doctype html><meta charset="utf-8"><script type="module">' +
      'import init, * as m from "/pkg/web/mangaassist.js"; import { failures, checkerFailures } from "/suites.mjs";' +
      "await init(); window.__failures = (s, vs) => failures(m, s, vs);" +
      "window.__checkerFailures = (s, vs) => checkerFailures(m, s, vs); window.__ready = true;</script>"],
    "/suites.mjs": ["text/javascript", readFileSync(path.join(here, "suites.mjs"))],
  };
  const server = await serveFiles((url) => {
    if (files[url]) return files[url];
    const m = /^\/pkg\/web\/(mangaassist\.js|mangaassist_bg\.wasm)$/.exec(url);
    if (!m) return null;
    const type = m[1].endsWith(".wasm") ? "application/wasm" : "text/javascript";
    return [type, readFileSync(path.join(root, "wasm", "pkg", "web", m[1]))];
  });
  const browser = await launchChromium(chromium);
  after(async () => {
    await browser.close();
    server.close();
  });
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => window.__ready === true);
  return {
    suites: Object.keys(suites),
    failures: (suite, vectors) => page.evaluate(([s, vs]) => window.__failures(s, vs), [suite, vectors]),
    checkerFailures: (suite, vectors) =>
      page.evaluate(([s, vs]) => window.__checkerFailures(s, vs), [suite, vectors]),
  };
}

const engines = {
  node: () => ({
    suites: Object.keys(suites),
    failures: async (suite, vectors) => failures(m, suite, vectors),
    checkerFailures: async (suite, vectors) => checkerFailures(m, suite, vectors),
  }),
  native: nativeEngine,
  chromium: chromiumEngine,
};
assert.ok(engines[engine], `CORPUS_ENGINE=${engine}: expected node, chromium or native`);
const answering = await engines[engine]();
// The same suites through Checker handles, where the engine has them.
for (const suite of Object.keys(checkerSuites)) {
  const skip = answering.checkerFailures ? false : `${engine} has no Checker`;
  test(`corpus/${suite} through a Checker (${engine})`, { skip }, async () => {
    const failed = await answering.checkerFailures(suite, load(suite));
    assert.equal(failed.length, 0, failed.slice(0, 10).join("\n"));
  });
}

/** The tests below are about the npm package in Node, whatever the engine. */
const nodeOnly = engine === "node" ? false : "about the npm package in Node: runs with CORPUS_ENGINE=node";

for (const suite of Object.keys(suites)) {
  const skip = answering.suites.includes(suite) ? false : `${engine} has no ${suite} answer`;
  test(`corpus/${suite} (${engine})`, { skip }, async () => {
    const vectors = load(suite);
    assert.ok(vectors.length > 0);
    const failed = await answering.failures(suite, vectors);
    assert.equal(failed.length, 0, failed.slice(0, 10).join("\n"));
  });
}

test("a Checker carries its policy's limits, its catalog and its weights", { skip: nodeOnly }, () => {
  assert.deepEqual(m.limits(), { maxMessageBytes: 16384, minMessageChars: 1, maxMessageChars: 4000, maxControlRatio: 0.05 });
  const calibration = { kana: 1.0, kanji: 2.0, latinWord: 1.0, other: 0.5, perRequest: 9.0 };
  const c = new m.Checker({ policy: { maxMessageBytes: 64, disallowedPatterns: ["spoiler"] }, catalog: "current-jp", calibration });
  assert.equal(c.limits().maxMessageBytes, 64);
  assert.equal(c.check("no spoiler").code, "disallowed_pattern");
  assert.equal(c.check("<script>").valid, true, "only its own patterns");
  assert.equal(c.buildBody({ message: "hi", modelPreference: "quality" }).model.id, "jp.anthropic.claude-sonnet-4-6");
  assert.equal(c.selectModel("fast", "x").id, "global.anthropic.claude-haiku-4-5-20251001-v1:0");
  assert.equal(c.estimateCost("haiku", 1000, 0), 0.001);
  // The calibrated estimate, as estimateTokensCalibrated gives it.
  const text = "ワンピースの最新刊はありますか？";
  assert.equal(c.estimateTokens(text), m.estimateTokensCalibrated({ text, calibration }).estimatedTokens);
  assert.equal(new m.Checker().estimateTokens(text), m.estimateTokens(text));
  c.free();
  for (const [options, code] of [
    [{ policy: { disallowedPatterns: ["("] } }, "invalid_pattern"],
    [{ catalog: "current-mars" }, "invalid_catalog"],
    [{ calibration: { ...calibration, kana: -1 } }, "invalid_argument"],
    [{ polcy: {} }, "invalid_input"],
  ]) {
    assert.throws(() => new m.Checker(options), (e) => e instanceof Error && e.code === code, JSON.stringify(options));
  }
});

// The string unions of index.d.ts against what the core answers, so they
// cannot go stale: each union must equal the set the core (its schema, its
// corpus answers, its error messages) uses.
test("the string unions of the types are the core's", { skip: nodeOnly }, () => {
  const dts = readFileSync(new URL("../../wasm/bindgen/npm/index.d.ts", import.meta.url), "utf8");
  const union = (source) => new Set([...source.matchAll(/"([^"]+)"/g)].map((x) => x[1]));
  const declared = (name) => {
    const match = new RegExp(`export type ${name} =([^;]*);`).exec(dts);
    assert.ok(match, `index.d.ts declares ${name}`);
    return union(match[1]);
  };
  const sorted = (set) => [...set].sort();
  const schema = m.schema();
  const data = schema.properties.data.properties;
  assert.deepEqual(sorted(declared("ModelPreference")), sorted(data.modelPreference.enum));
  assert.deepEqual(sorted(union(/action: ([^;]*);/.exec(dts)[1])), sorted(schema.properties.action.enum));
  assert.deepEqual(sorted(union(/preferredLanguage\?: ([^;]*);/.exec(dts)[1])), sorted(data.preferredLanguage.enum));
  const answered = (suite, pick) => new Set(load(suite).map((v) => pick(v.expected)).flat().filter((x) => typeof x === "string"));
  const checkCodes = new Set([...answered("check", (e) => e.code), ...answered("policy", (e) => e.code)]);
  assert.deepEqual(sorted(declared("CheckCode")), sorted(checkCodes));
  assert.deepEqual(sorted(declared("ViolationCode")), sorted(answered("contract", (e) => e.map((v) => v.code))));
  assert.deepEqual(sorted(union(/script: ([^;]*);/.exec(dts)[1])), sorted(answered("calibrated", (e) => e.script)));
  let presets = null;
  try {
    new m.Checker({ catalog: "?" });
  } catch (e) {
    presets = new Set(/the presets are (.*)$/.exec(e.message)[1].split(", "));
  }
  assert.deepEqual(sorted(declared("CatalogPreset")), sorted(presets));
});

test("cacheKey of an object equals the key of its JSON text when JS keeps the numbers", { skip: nodeOnly }, () => {
  let compared = 0;
  for (const v of load("cache_key")) {
    const text = JSON.stringify(v.input);
    if (text !== v.rawInput || v.expected.error) continue;
    assert.equal(m.cacheKey(v.input), v.expected.cacheKey, v.name);
    compared++;
  }
  assert.ok(compared > 30, `only ${compared} vectors compared`);
});

test("errors are Errors with a stable code", { skip: nodeOnly }, () => {
  assert.throws(() => m.cacheKey([1]), (e) => e instanceof Error && e.code === "invalid_body");
  assert.throws(() => m.buildBody({ message: 1 }), (e) => e.code === "invalid_input");
  assert.throws(() => m.estimateCost("opus", 1, 1), (e) => e.code === "unknown_model");
  assert.throws(() => m.estimateCost("haiku", -1, 1), (e) => e.code === "invalid_argument");
  assert.throws(() => m.check("x", { disallowedPatterns: ["a\\sb"] }), (e) => e.code === "invalid_pattern");
});

test("selection, cost, schema and version", { skip: nodeOnly }, () => {
  assert.deepEqual(m.selectModel("fast", "x"), { key: "haiku", id: "anthropic.claude-3-haiku-20240307-v1:0" });
  assert.equal(m.selectModel("auto", "漫画".repeat(200)).key, "sonnet");
  assert.ok(Math.abs(m.estimateCost("sonnet", 1000, 2000) - 0.033) < 1e-12);
  assert.equal(m.schema().$schema, "http://json-schema.org/draft-04/schema#");
  assert.match(m.version(), /^\d+\.\d+\.\d+$/);
});
