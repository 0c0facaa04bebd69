// The chat widget: pre-checks as you type (precheck.js, the npm package) and
// talks to `mangaassist serve` over its WebSocket (/v1/ws).
import init from "mangaassist";
import { STRINGS } from "./i18n.js";
import { configure, limits, precheck } from "./precheck.js";

const $ = (id) => document.getElementById(id);
const ui = {
  log: $("log"), status: $("status"), message: $("message"), send: $("send"),
  clear: $("clear"), lang: $("lang"), preference: $("preference"),
  chars: $("chars"), bytes: $("bytes"), tokens: $("tokens"), cost: $("cost"),
  maxChars: $("max-chars"), maxBytes: $("max-bytes"),
  model: $("model"), refusal: $("refusal"), sanitized: $("sanitized"),
};

let lang = localStorage.getItem("mangaassist.lang") === "en" ? "en" : "ja";
let text = STRINGS[lang];
const SESSION_KEY = "mangaassist.sessionId";
// The server issues session ids (it refuses ids a client makes up): none
// until the first answer, then kept across reloads.
let sessionId = localStorage.getItem(SESSION_KEY);
let inflight = null; // the action awaiting its response
let socket = null;
let connected = false;
let historyLoaded = false; // sending waits for it: a late history would wipe the new turn
let busy = false;
let current = null; // the last pre-check
let pending = null; // the assistant bubble being streamed into
let retry = 0;

/** Keeps (or, with null, forgets) the server-issued session id. */
function keepSession(id) {
  sessionId = id;
  if (id) localStorage.setItem(SESSION_KEY, id);
  else localStorage.removeItem(SESSION_KEY);
}

function applyLanguage() {
  text = STRINGS[lang];
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-text]")) el.textContent = text[el.dataset.text];
  ui.message.placeholder = text.placeholder;
  ui.message.setAttribute("aria-keyshortcuts", "Enter");
  ui.lang.textContent = lang === "ja" ? "English" : "日本語";
  for (const option of ui.preference.options) option.textContent = text.preference[option.value];
  showStatus();
  update();
}

function showStatus() {
  ui.status.dataset.state = connected ? "open" : retry > 0 ? "closed" : "connecting";
  ui.status.textContent = connected ? text.connected : retry > 0 ? text.reconnecting : text.connecting;
}

/** Re-runs the pre-check and redraws counters, refusal and send state. */
function update() {
  const started = performance.now();
  current = precheck(ui.message.value, sessionId ?? undefined, ui.preference.value);
  window.__lastPrecheckMs = performance.now() - started;
  const c = current;
  ui.chars.textContent = c.chars.toLocaleString("en");
  const limit = limits();
  ui.maxChars.textContent = limit.maxMessageChars.toLocaleString("en");
  ui.maxBytes.textContent = limit.maxMessageBytes.toLocaleString("en");
  ui.chars.classList.toggle("over", c.chars > limit.maxMessageChars);
  ui.bytes.textContent = c.bytes.toLocaleString("en");
  ui.bytes.classList.toggle("over", c.bytes > limit.maxMessageBytes);
  ui.tokens.textContent = c.estimatedTokens.toLocaleString("en");
  ui.tokens.dataset.estimator = c.estimator;
  ui.tokens.title = text.estimator[c.estimator];
  ui.cost.textContent = `$${c.cost.toFixed(6)}`;
  ui.model.textContent = c.model.key;
  const typed = ui.message.value.length > 0;
  const refusal = typed ? c.refusal : null;
  ui.refusal.hidden = !refusal;
  ui.message.setAttribute("aria-invalid", refusal ? "true" : "false");
  if (refusal) {
    const explain = text.refused[refusal.code] ?? text.refused.other;
    const plain = typeof explain === "function" ? explain(limit) : explain;
    ui.refusal.innerHTML = "";
    const code = document.createElement("code");
    code.textContent = refusal.code;
    ui.refusal.append(code, " ", plain);
    ui.refusal.dataset.code = refusal.code;
  }
  const differs = typed && !refusal && c.sanitized !== ui.message.value;
  ui.sanitized.hidden = !differs;
  if (differs) ui.sanitized.textContent = `${text.sanitized} ${c.sanitized}`;
  ui.send.disabled = !typed || refusal !== null || !connected || !historyLoaded || busy;
}

function bubble(role, content) {
  ui.log.querySelector(".empty")?.remove();
  const div = document.createElement("div");
  div.className = `turn ${role}`;
  div.textContent = content;
  ui.log.append(div);
  ui.log.scrollTop = ui.log.scrollHeight;
  return div;
}

function meta(div, body) {
  const span = document.createElement("span");
  span.className = "meta";
  span.textContent = `${body.modelId} · ${body.region} · $${body.costUsd.toFixed(6)}`;
  if (body.cached) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = text.cached;
    span.append(badge);
  }
  div.append(span);
}

function showHistory(turns) {
  ui.log.innerHTML = "";
  if (turns.length === 0) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = text.empty;
    ui.log.append(p);
  }
  for (const t of turns) bubble(t.role, t.content);
  historyLoaded = true;
  ui.log.dataset.loaded = "true";
}

function request(action, data = {}) {
  inflight = action;
  socket.send(JSON.stringify({ action, data: sessionId ? { sessionId, ...data } : data }));
}

/**
 * Takes the server's calibrated estimator weights, if it publishes any, so
 * the estimate shown is the one the server would make (read again at every
 * connection, so it follows the server's fit).
 */
async function loadEstimator() {
  try {
    const response = await fetch("/v1/estimator");
    if (!response.ok) return;
    const published = await response.json();
    if (configure({ calibration: published.calibration ?? null })) update();
  } catch {
    // Unreachable: the estimate stays as it was.
  }
}

/** The ETag of the published policy the checker was built from (null: SPEC's). */
let policyTag = null;
/** Numbers each policy request, so a late answer never undoes a newer one. */
let policyAsked = 0;
/** How often the page asks whether the server swapped its policy. */
const POLICY_POLL_MS = 5000;

/**
 * Builds the checker from what the server runs (GET /v1/policy: its policy
 * and catalog), so the page refuses exactly what the server refuses; asked
 * at every connection and every few seconds (304 while nothing changed),
 * so a swapped policy is followed.
 */
async function loadPolicy() {
  const asked = ++policyAsked;
  try {
    const response = await fetch("/v1/policy", {
      headers: policyTag ? { "If-None-Match": policyTag } : {},
    });
    if (response.status !== 200 || asked !== policyAsked) return;
    const published = await response.json();
    if (asked !== policyAsked) return;
    if (!configure({ policy: published.policy, catalog: published.catalog })) return;
    policyTag = response.headers.get("ETag");
    document.documentElement.dataset.policy = published.sha256;
    update();
  } catch {
    // Unreachable: the checker keeps what it had.
  }
}

function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
  socket = new WebSocket(url);
  socket.addEventListener("open", () => {
    connected = true;
    retry = 0;
    loadPolicy();
    loadEstimator();
    showStatus();
    if (sessionId) request("getHistory");
    else showHistory([]);
    update();
  });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", () => {
    connected = false;
    historyLoaded = false;
    delete ui.log.dataset.loaded;
    if (pending) {
      pending.classList.replace("assistant", "error");
      pending = null;
    }
    busy = false;
    retry += 1;
    showStatus();
    update();
    // Back off to at most 5 s between attempts.
    setTimeout(connect, Math.min(250 * 2 ** Math.min(retry, 5), 5000));
  });
}

function receive(frame) {
  if (frame.type === "delta") {
    pending ??= bubble("assistant", "");
    pending.textContent += frame.text;
    ui.log.scrollTop = ui.log.scrollHeight;
    return;
  }
  const { status, body } = frame;
  const action = inflight;
  inflight = null;
  if (status === 404 && body.error.code === "session_not_found") {
    // Expired (or never ours): start afresh.
    keepSession(null);
    if (action === "sendMessage") {
      pending?.remove();
      bubble("error", `${text.error} ${text.refused.session_not_found}`);
    } else {
      showHistory([]);
    }
  } else if (status !== 200) {
    pending?.remove();
    const explain = text.refused[body.error.code];
    const plain = typeof explain === "function" ? explain(limits()) : explain;
    bubble("error", `${text.error} ${status} ${body.error.code}: ${plain ?? body.error.message}`);
  } else if ("turns" in body) {
    showHistory(body.turns);
  } else if ("cleared" in body) {
    keepSession(null);
    showHistory([]);
  } else if ("reply" in body) {
    keepSession(body.sessionId);
    pending ??= bubble("assistant", body.reply);
    pending.textContent = body.reply;
    meta(pending, body);
  }
  pending = null;
  busy = false;
  update();
}

ui.message.addEventListener("input", update);
ui.preference.addEventListener("change", update);
ui.lang.addEventListener("click", () => {
  lang = lang === "ja" ? "en" : "ja";
  localStorage.setItem("mangaassist.lang", lang);
  applyLanguage();
});
ui.clear.addEventListener("click", () => {
  if (!connected) return;
  if (sessionId) request("clearSession");
  else showHistory([]);
});
// Enter sends and Shift+Enter adds a line, except while an IME composition
// is open: there Enter confirms the conversion (e.g. かな to 漢字) and must not
// send. `isComposing` covers the composition itself; keyCode 229 is the
// keydown some browsers (Safari) send for the confirming Enter just after it.
ui.message.addEventListener("keydown", (e) => {
  if (e.key !== "Enter" || e.shiftKey || e.isComposing || e.keyCode === 229) return;
  e.preventDefault();
  ui.send.click();
});
$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  if (ui.send.disabled) return;
  const message = ui.message.value;
  bubble("user", current.sanitized);
  busy = true;
  pending = null;
  request("sendMessage", {
    message,
    preferredLanguage: lang,
    modelPreference: ui.preference.value,
  });
  ui.message.value = "";
  update();
});

await init();
applyLanguage();
connect();
setInterval(loadPolicy, POLICY_POLL_MS);
window.__mangaassistReady = true;
