// The chat widget: pre-checks as you type (precheck.js, the npm package) and
// talks to `mangaassist serve` over its WebSocket (/v1/ws).
import init from "mangaassist";
import { STRINGS } from "./i18n.js";
import { MAX_BYTES, MAX_CHARS, precheck } from "./precheck.js";

const $ = (id) => document.getElementById(id);
const ui = {
  log: $("log"), status: $("status"), message: $("message"), send: $("send"),
  clear: $("clear"), lang: $("lang"), preference: $("preference"),
  chars: $("chars"), bytes: $("bytes"), tokens: $("tokens"), cost: $("cost"),
  model: $("model"), refusal: $("refusal"), sanitized: $("sanitized"),
};

let lang = localStorage.getItem("mangaassist.lang") === "en" ? "en" : "ja";
let text = STRINGS[lang];
const sessionId = loadSessionId();
let socket = null;
let connected = false;
let historyLoaded = false; // sending waits for it: a late history would wipe the new turn
let busy = false;
let current = null; // the last pre-check
let pending = null; // the assistant bubble being streamed into
let retry = 0;

/** A UUID v4, lowercase, kept across reloads. */
function loadSessionId() {
  const key = "mangaassist.sessionId";
  const pattern = /^[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$/;
  const kept = localStorage.getItem(key);
  if (kept && pattern.test(kept)) return kept;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  localStorage.setItem(key, id);
  return id;
}

function applyLanguage() {
  text = STRINGS[lang];
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-text]")) el.textContent = text[el.dataset.text];
  ui.message.placeholder = text.placeholder;
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
  current = precheck(ui.message.value, sessionId, ui.preference.value);
  window.__lastPrecheckMs = performance.now() - started;
  const c = current;
  ui.chars.textContent = c.chars.toLocaleString("en");
  ui.chars.classList.toggle("over", c.chars > MAX_CHARS);
  ui.bytes.textContent = c.bytes.toLocaleString("en");
  ui.bytes.classList.toggle("over", c.bytes > MAX_BYTES);
  ui.tokens.textContent = c.estimatedTokens.toLocaleString("en");
  ui.cost.textContent = `$${c.cost.toFixed(6)}`;
  ui.model.textContent = c.model.key;
  const typed = ui.message.value.length > 0;
  const refusal = typed ? c.refusal : null;
  ui.refusal.hidden = !refusal;
  ui.message.setAttribute("aria-invalid", refusal ? "true" : "false");
  if (refusal) {
    const plain = text.refused[refusal.code] ?? text.refused.other;
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
  socket.send(JSON.stringify({ action, data: { sessionId, ...data } }));
}

function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
  socket = new WebSocket(url);
  socket.addEventListener("open", () => {
    connected = true;
    retry = 0;
    showStatus();
    request("getHistory");
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
  if (status !== 200) {
    pending?.remove();
    bubble("error", `${text.error} ${status} ${body.error.code}: ${text.refused[body.error.code] ?? body.error.message}`);
  } else if ("turns" in body) {
    showHistory(body.turns);
  } else if ("cleared" in body) {
    showHistory([]);
  } else if ("reply" in body) {
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
ui.clear.addEventListener("click", () => connected && request("clearSession"));
ui.message.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) ui.send.click();
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
window.__mangaassistReady = true;
