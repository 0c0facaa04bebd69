// The npm package as a front-end project uses it: packed, installed,
// imported by name from a page that Vite and webpack each build; then the
// whole corpus runs in headless Chromium (Debian's chromium, driven by
// playwright-core) against each build, byte for byte as in Node.
//
//   node --test tests/bundlers/        (after scripts/build-wasm.sh)
//   BUNDLERS=vite node --test tests/bundlers/   (one of vite, webpack)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { launchChromium, serveFiles } from "../node/browser.mjs";
import { checkerSuites, parseCorpus, suites } from "../node/suites.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const corpus = join(root, "tests", "corpus");
const chosen = (process.env.BUNDLERS ?? "vite,webpack").split(",").map((s) => s.trim());
const scratch = mkdtempSync(join(tmpdir(), "mangaassist-bundlers-"));
let browser;

before(async () => {
  // The tarball a user would install, not the build directory.
  const tarball = execFileSync("npm", ["pack", "--silent", "--pack-destination", scratch], {
    cwd: join(root, "wasm", "pkg"),
    encoding: "utf8",
  }).trim();
  execFileSync("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--silent", join(scratch, tarball)], {
    cwd: here,
    stdio: "inherit",
  });
  browser = await launchChromium(chromium);
});

after(async () => {
  await browser?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const builders = {
  async vite(out) {
    const { build } = await import("vite");
    await build({
      configFile: false,
      root: join(here, "page"),
      base: "./",
      logLevel: "warn",
      // Top-level await (init) needs ES2022 output.
      build: { outDir: out, emptyOutDir: true, target: "es2022" },
      // The dev server must not pre-bundle the package (its .wasm URL would break).
      optimizeDeps: { exclude: ["mangaassist"] },
    });
  },
  async webpack(out) {
    const { default: webpack } = await import("webpack");
    const stats = await new Promise((resolve, reject) =>
      webpack(
        {
          mode: "production",
          context: here,
          entry: "./page/main.js",
          output: { path: out, filename: "main.js", publicPath: "auto", clean: true },
          experiments: { topLevelAwait: true },
          performance: { hints: false },
        },
        (err, result) => (err ? reject(err) : resolve(result)),
      ),
    );
    if (stats.hasErrors()) throw new Error(stats.toString("errors-only"));
    writeFileSync(join(out, "index.html"), '<!doctype html><meta charset="utf-8"><script src="main.js"></script>\n');
  },
};

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };

/** Serves `dir` on a loopback port (the .wasm as application/wasm, for streaming compilation). */
function serve(dir) {
  return serveFiles((pathname) => {
    const path = normalize(join(dir, pathname));
    const file = path.endsWith("/") ? join(path, "index.html") : path;
    if (!file.startsWith(dir)) return null;
    try {
      return [TYPES[extname(file)] ?? "application/octet-stream", readFileSync(file)];
    } catch {
      return null;
    }
  });
}

for (const name of chosen) {
  test(`the whole corpus in Chromium through a ${name} build`, async () => {
    assert.ok(builders[name], `unknown bundler ${name}: expected vite or webpack`);
    const out = join(scratch, `dist-${name}`);
    await builders[name](out);
    // The .wasm is emitted once, as an asset of its own.
    const wasm = readdirSync(out, { recursive: true }).filter((f) => String(f).endsWith(".wasm"));
    assert.equal(wasm.length, 1, `${name} emitted ${wasm.length} .wasm files`);
    const server = await serve(out);
    try {
      const page = await browser.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${server.address().port}/`);
      await page.waitForFunction(() => window.__ready === true, null, { timeout: 20_000 });
      let vectors = 0;
      const failed = [];
      for (const suite of Object.keys(suites)) {
        const cases = parseCorpus(readFileSync(join(corpus, `${suite}.jsonl`), "utf8"));
        vectors += cases.length;
        const out = await page.evaluate(([s, vs]) => window.__failures(s, vs), [suite, cases]);
        failed.push(...out.map((f) => `${suite}/${f}`));
      }
      // And through Checker handles, as the widget uses the package.
      for (const suite of Object.keys(checkerSuites)) {
        const cases = parseCorpus(readFileSync(join(corpus, `${suite}.jsonl`), "utf8"));
        const out = await page.evaluate(([s, vs]) => window.__checkerFailures(s, vs), [suite, cases]);
        failed.push(...out.map((f) => `${suite} through a Checker/${f}`));
      }
      assert.equal(failed.length, 0, failed.slice(0, 10).join("\n"));
      assert.ok(vectors > 1000, `only ${vectors} vectors`);
      assert.deepEqual(errors, []);
      await page.close();
    } finally {
      server.close();
    }
  });
}
