// The chat widget end to end: `mangaassist serve` (offline, embedded
// emulator) and the page in real headless Chromium (Debian's chromium,
// driven by playwright-core). Screenshots go to tests/e2e/screenshots/.
//
//   E2E_MANGAASSIST_BIN=path/to/mangaassist node --test tests/e2e/
// (not MANGAASSIST_*: the service reads those as configuration.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const shots = join(here, "screenshots");
mkdirSync(shots, { recursive: true });
const bin = process.env.E2E_MANGAASSIST_BIN;
assert.ok(bin, "set E2E_MANGAASSIST_BIN to the mangaassist binary");

let server;
let address;
let browser;

/** Starts the service on `listen` (with `env` added); resolves with its address. */
function startServer(listen, env = {}) {
  const child = spawn(bin, ["serve", "--listen", listen], {
    cwd: root,
    env: {
      ...process.env,
      MANGA_ENV: "dev",
      MANGAASSIST_EMULATOR_TTFT_MS: "30",
      MANGAASSIST_EMULATOR_PER_TOKEN_MS: "15",
      MANGAASSIST_WEB_ROOT: join(root, "web-demo"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (chunk) => {
    log += chunk;
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      const match = /listening on http:\/\/(\S+?)\/?$/.exec(line);
      if (match) resolve({ child, address: match[1] });
      else reject(new Error(`unexpected first line: ${line}`));
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}: ${log}`)));
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });
}

before(async () => {
  ({ child: server, address } = await startServer("127.0.0.1:0"));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  if (server) await stopServer(server);
});

async function openPage(context, at = address) {
  const page = await (context ?? browser).newPage({ viewport: { width: 900, height: 760 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`http://${at}/`);
  await page.waitForFunction(() => window.__mangaassistReady === true);
  await page.waitForSelector('#status[data-state="open"]');
  await page.waitForSelector('#log[data-loaded="true"]', { state: "attached" });
  page.errors = errors;
  return page;
}

test("typing Japanese updates the counters as the core computes them", async () => {
  const page = await openPage();
  await page.fill("#message", "ワンピースの最新刊はありますか？");
  assert.equal(await page.textContent("#chars"), "16");
  // The limits come from the checker's policy, not from the page.
  assert.equal(await page.textContent("#max-chars"), "4,000");
  assert.equal(await page.textContent("#max-bytes"), "16,384");
  assert.equal(await page.textContent("#bytes"), "48");
  // SPEC 5: 15 code points in U+3000–U+9FFF and the full-width "？"
  // (U+FF1F, outside it): floor(15 × 1.5 + 0.5) = 23.
  assert.equal(await page.textContent("#tokens"), "23");
  assert.equal(await page.textContent("#model"), "haiku");
  assert.equal(await page.textContent("#cost"), "$0.000006");
  assert.equal(await page.isDisabled("#send"), false);
  // Decomposed kana are shown in their sanitized (NFC, trimmed) form.
  await page.fill("#message", "  か\u3099んは\u309aる\u3000");
  assert.equal(await page.isHidden("#sanitized"), false);
  assert.match(await page.textContent("#sanitized"), /がんぱる$/);
  // English toggle.
  await page.click("#lang");
  assert.equal(await page.textContent("#send"), "Send");
  await page.click("#lang");
  assert.equal(await page.textContent("#send"), "送信");
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("with weights published by the server, the estimate shown is the calibrated one", async () => {
  // Weights as `mangaassist calibrate` prints them, given as configuration.
  const calibration = "{kana = 1.0, kanji = 2.0, latinWord = 1.0, other = 0.5, perRequest = 9.0}";
  const { child, address: at } = await startServer("127.0.0.1:0", {
    MANGAASSIST_CALIBRATION: calibration,
    MANGAASSIST_ADMIN_LISTEN: "off", // the first server has the default port
  });
  try {
    const page = await openPage(undefined, at);
    await page.waitForSelector('#tokens[data-estimator="calibrated"]');
    await page.fill("#message", "ワンピースの最新刊はありますか？");
    // 12 kana × 1.0 + 3 kanji × 2.0 + "？" × 0.5 = 18.5, rounded half up.
    assert.equal(await page.textContent("#tokens"), "19");
    assert.equal(await page.getAttribute("#tokens", "data-estimator"), "calibrated");
    // The cost follows the estimate shown: 19 tokens of haiku input.
    assert.equal(await page.textContent("#cost"), "$0.000005");
    // The model rule is SPEC 8's, on the reference estimate, as on the server.
    assert.equal(await page.textContent("#model"), "haiku");
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    await stopServer(child);
  }
});

test("the widget follows a policy the server swaps in at run time", async () => {
  const dist = join(root, "wasm", "component", "dist");
  const file = join(tmpdir(), `mangaassist-e2e-policy-${process.pid}.wasm`);
  copyFileSync(join(dist, "policy.wasm"), file);
  const { child, address: at } = await startServer("127.0.0.1:0", {
    MANGAASSIST_POLICY_WASM: file,
    MANGAASSIST_ADMIN_LISTEN: "off",
  });
  try {
    const page = await openPage(undefined, at);
    await page.waitForFunction(() => document.documentElement.dataset.policy);
    const before = await page.evaluate(() => document.documentElement.dataset.policy);
    await page.fill("#message", "ネタバレなしで教えて");
    assert.equal(await page.isHidden("#refusal"), true);
    // The server swaps in a policy with one more pattern (tests/policies/netabare.json).
    copyFileSync(join(dist, "policy-netabare.wasm"), file);
    await page.waitForFunction((b) => document.documentElement.dataset.policy !== b, before, { timeout: 20_000 });
    assert.equal(await page.getAttribute("#refusal", "data-code"), "disallowed_pattern");
    assert.equal(await page.isDisabled("#send"), true);
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    await stopServer(child);
    rmSync(file, { force: true });
  }
});

test("a disallowed pattern disables send and says why", async () => {
  const page = await openPage();
  await page.fill("#message", "<script>alert(1)</script>");
  assert.equal(await page.isDisabled("#send"), true);
  assert.equal(await page.getAttribute("#refusal", "data-code"), "disallowed_pattern");
  assert.match(await page.textContent("#refusal"), /スクリプト/);
  await page.screenshot({ path: join(shots, "refused.png") });
  await page.fill("#message", "a".repeat(4001));
  assert.equal(await page.getAttribute("#refusal", "data-code"), "too_long");
  assert.match(await page.textContent("#refusal"), /4,000 文字まで/);
  assert.equal(await page.isDisabled("#send"), true);
  await page.fill("#message", "普通の質問です");
  assert.equal(await page.isHidden("#refusal"), true);
  assert.equal(await page.isDisabled("#send"), false);
  await page.close();
});

test("sending streams the reply, reload restores history, clear empties it", async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  await page.fill("#message", "鬼滅の刃の全巻セットはありますか？");
  await page.click("#send");
  // The reply grows piece by piece before its meta line arrives.
  const lengths = new Set();
  const started = Date.now();
  while (Date.now() - started < 10_000) {
    const done = await page.$(".turn.assistant .meta");
    const text = await page.evaluate(() => document.querySelector(".turn.assistant")?.textContent ?? "");
    lengths.add(text.length);
    if (done) break;
    await page.waitForTimeout(20);
  }
  assert.ok(lengths.size > 3, `the reply should stream in (saw lengths ${[...lengths]})`);
  const reply = await page.textContent(".turn.assistant");
  assert.match(reply, /エミュレーター応答/);
  assert.match(reply, /us-east-1/);
  await page.screenshot({ path: join(shots, "chat.png") });

  await page.reload();
  await page.waitForFunction(() => window.__mangaassistReady === true);
  await page.waitForSelector('#log[data-loaded="true"]', { state: "attached" });
  assert.equal(await page.locator(".turn.user").count(), 1);
  assert.match(await page.textContent(".turn.user"), /鬼滅の刃/);

  await page.click("#clear");
  await page.waitForSelector(".empty");
  assert.equal(await page.locator(".turn").count(), 0);
  await page.reload();
  await page.waitForFunction(() => window.__mangaassistReady === true);
  await page.waitForSelector(".empty");
  await context.close();
});

test("Enter sends, Shift+Enter adds a line, Enter inside an IME composition only confirms it", async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  // The model selector has a visible label.
  assert.equal(await page.textContent('label[for="preference"]'), "モデル選択");
  await page.click("#message");
  await page.keyboard.type("一行目");
  await page.keyboard.press("Shift+Enter");
  await page.keyboard.type("二行目");
  assert.equal(await page.inputValue("#message"), "一行目\n二行目");
  // A composition is open (かな being converted): Enter confirms it. The
  // events are the ones Chromium sends: keydown with isComposing inside
  // the composition, and (as Safari does) keyCode 229 for the confirming
  // Enter right after compositionend.
  const prevented = await page.evaluate(() => {
    const box = document.getElementById("message");
    const key = (init) => {
      const e = new KeyboardEvent("keydown", { key: "Enter", code: "Enter", bubbles: true, cancelable: true, ...init });
      box.dispatchEvent(e);
      return e.defaultPrevented;
    };
    box.dispatchEvent(new CompositionEvent("compositionstart", { data: "" }));
    const during = key({ isComposing: true });
    box.dispatchEvent(new CompositionEvent("compositionend", { data: "漢字" }));
    const confirming = key({ keyCode: 229 });
    return { during, confirming };
  });
  assert.deepEqual(prevented, { during: false, confirming: false });
  await page.waitForTimeout(200);
  assert.equal(await page.locator(".turn.user").count(), 0, "Enter in a composition must not send");
  assert.equal(await page.inputValue("#message"), "一行目\n二行目");
  // A plain Enter sends the two lines as one message.
  await page.keyboard.press("Enter");
  await page.waitForSelector(".turn.user");
  assert.match(await page.textContent(".turn.user"), /一行目\n二行目/);
  assert.equal(await page.inputValue("#message"), "");
  await page.waitForSelector(".turn.assistant .meta");
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("the page reconnects to a restarted server", async () => {
  const page = await openPage();
  await stopServer(server);
  server = null;
  await page.waitForSelector('#status[data-state="closed"]');
  await page.fill("#message", "再接続できますか");
  assert.equal(await page.isDisabled("#send"), true);
  ({ child: server } = await startServer(address));
  await page.waitForSelector('#status[data-state="open"]', { timeout: 15_000 });
  await page.waitForSelector('#log[data-loaded="true"]', { state: "attached" });
  assert.equal(await page.isDisabled("#send"), false);
  await page.click("#send");
  await page.waitForSelector(".turn.assistant .meta");
  await page.close();
});

test("the pre-check of a 4,000-character message takes under 1 ms", async () => {
  const page = await openPage();
  const timing = await page.evaluate(async () => {
    const { precheck } = await import("/precheck.js");
    const fragments = ["ワンピースの最新刊", "はありますか？", "Chainsaw Man vol. 12 ", "進撃の巨人、"];
    let message = "";
    for (let i = 0; message.length < 4000; i++) message += fragments[i % fragments.length];
    message = [...message].slice(0, 4000).join("");
    const id = "123e4567-e89b-42d3-a456-426614174000";
    for (let i = 0; i < 50; i++) precheck(message, id, "auto");
    const runs = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      precheck(message, id, "auto");
      runs.push(performance.now() - t);
    }
    runs.sort((a, b) => a - b);
    return { p50: runs[150], p99: runs[296], chars: [...message].length };
  });
  console.log(`pre-check of ${timing.chars} characters in Chromium: p50 ${timing.p50.toFixed(3)} ms, p99 ${timing.p99.toFixed(3)} ms`);
  assert.equal(timing.chars, 4000);
  assert.ok(timing.p50 < 1, `p50 ${timing.p50} ms`);
  await page.close();
});

test("the first page load fits in 300 KB of gzip", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pending = [];
  page.on("requestfinished", (request) => {
    pending.push((async () => {
      const response = await request.response();
      if (!response || response.status() === 101) return null; // the WebSocket upgrade
      const sizes = await request.sizes();
      const body = await response.body();
      return {
        url: request.url(),
        encoding: (await response.headerValue("content-encoding")) ?? "identity",
        raw: body.length,
        wire: sizes.responseBodySize,
      };
    })());
  });
  await page.goto(`http://${address}/`);
  await page.waitForFunction(() => window.__mangaassistReady === true);
  await page.waitForTimeout(200);
  const loads = (await Promise.all(pending)).filter(Boolean);
  const total = loads.reduce((sum, l) => sum + l.wire, 0);
  for (const l of loads) console.log(`${l.url}: ${l.raw} bytes, ${l.wire} on the wire (${l.encoding})`);
  console.log(`first load: ${total} bytes on the wire in ${loads.length} responses`);
  const wasm = loads.find((l) => l.url.endsWith(".wasm"));
  assert.ok(wasm, "the .wasm should be part of the load");
  assert.equal(wasm.encoding, "gzip", "the service should send the .wasm gzip-compressed");
  assert.ok(total <= 300_000, `first load ${total} bytes, budget 300,000`);
  await context.close();
});
