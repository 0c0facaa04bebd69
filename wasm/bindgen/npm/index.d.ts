/**
 * mangaassist: the chat checks of a manga store's assistant, from the same
 * Rust core the server runs. Browsers: `await init()` once, then call.
 * Node: functions work right after `import` (init is a no-op there).
 */

/** Codes of the message checks (SPEC 3), in the order they run. */
export type CheckCode =
  | "too_large"
  | "null_byte"
  | "disallowed_pattern"
  | "control_chars"
  | "mixed_script";

/** Answer of {@link check}. */
export interface CheckReport {
  /** No check failed. */
  valid: boolean;
  /** The first failing check, or null. */
  code: CheckCode | null;
  /** A plain explanation of the failure, or null. */
  detail: string | null;
  /** The message as it goes into the prompt (zero-width removed, NFC, trimmed). */
  sanitized: string;
  /** Reference token estimate of the message as given. */
  estimatedTokens: number;
}

/** A message policy; every field optional (SPEC defaults). */
export interface PolicyConfig {
  /** Largest UTF-8 length accepted, in bytes (default 16384). */
  maxMessageBytes?: number;
  /** Case-insensitive patterns refused anywhere (regex crate syntax; see docs). */
  disallowedPatterns?: string[];
  /** Refuse when control code points exceed this share (default 0.05). */
  maxControlRatio?: number;
}

/** Codes of request-contract violations (SPEC 2). */
export type ViolationCode =
  | "wrong_type"
  | "required"
  | "unknown_property"
  | "not_in_enum"
  | "too_short"
  | "too_long"
  | "pattern_mismatch";

/** One violation of the chat request contract. */
export interface Violation {
  /** JSON Pointer to the offending (or missing) value. */
  path: string;
  code: ViolationCode;
  message: string;
}

/** The chat request (SPEC 2), as a well-formed client sends it. */
export interface ChatRequest {
  action: "sendMessage" | "getHistory" | "clearSession";
  data: {
    message?: string;
    sessionId?: string;
    preferredLanguage?: "ja" | "en" | "zh";
    modelPreference?: ModelPreference;
  };
  metadata?: { clientVersion?: string; timestamp?: number; [key: string]: unknown };
}

export type ModelPreference = "auto" | "fast" | "quality";

/** JSON as it crosses the boundary. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One conversation turn. */
export interface Turn {
  role: "user" | "assistant";
  content: string;
}

/** Input of {@link buildBody}. */
export interface BodyInput {
  /** The new user message, used as given (sanitize it first). */
  message: string;
  /** Earlier turns, oldest first. */
  history?: Turn[];
  /** System prompt; the store's default when absent. */
  system?: string;
  /** Generation limit; the chosen model's when absent. */
  maxTokens?: number;
  /** 0 to 1; the chosen model's when absent. */
  temperature?: number;
  modelPreference?: ModelPreference;
  /** A catalog preset to select from instead of the SPEC 8 catalog. */
  catalog?: CatalogPreset;
}

/** A Claude Messages body, in Bedrock's own field names. */
export interface ClaudeBody {
  anthropic_version: "bedrock-2023-05-31";
  max_tokens: number;
  temperature: number;
  system: string;
  messages: Turn[];
}

/** A catalog model. */
export interface ModelChoice {
  /** Catalog key, e.g. "haiku". */
  key: string;
  /** Bedrock model id. */
  id: string;
}

/** Answer of {@link buildBody}. */
export interface BodyReport {
  model: ModelChoice;
  body: ClaudeBody;
  /** 16 lowercase hex digits. */
  cacheKey: string;
}

/** Errors thrown by this package are `Error`s with a stable `code`. */
export interface MangaAssistError extends Error {
  code:
    | "invalid_input"
    | "invalid_json"
    | "invalid_body"
    | "invalid_history"
    | "invalid_argument"
    | "invalid_pattern"
    | "invalid_policy"
    | "unknown_model"
    | "internal";
}

/** Input of {@link precheck}: a message as the client is about to send it. */
export interface PrecheckInput {
  message: string;
  sessionId?: string;
  modelPreference?: string;
}

/** Why the service would refuse a message. */
export interface Refusal {
  /** A contract violation code, a check code, or "empty_message". */
  code: ViolationCode | CheckCode | "empty_message";
  /** A plain explanation (English, from the core). */
  detail: string;
}

/** Answer of {@link precheck}. */
export interface PrecheckReport {
  /** Unicode code points. */
  chars: number;
  /** UTF-8 bytes (the check limit is 16384). */
  bytes: number;
  /** Reference token estimate of the message as given. */
  estimatedTokens: number;
  /** The message as it goes into the prompt. */
  sanitized: string;
  /** The model the service would choose. */
  model: ModelChoice;
  /** The service's first refusal (contract, then checks, then empty), or null. */
  refusal: Refusal | null;
}

/**
 * Everything a chat widget shows while the user types, in one call: counts,
 * estimate, sanitized text, the model the service would pick, and the
 * service's first refusal of a sendMessage of this message.
 */
export function precheck(input: PrecheckInput): PrecheckReport;

/** A request the service takes, typed: see {@link screen}. */
export interface ScreenedRequest {
  outcome: "accepted";
  action: "sendMessage" | "getHistory" | "clearSession";
  sessionId: string | null;
  /** The sanitized message (never empty for sendMessage; empty otherwise). */
  message: string;
  modelPreference: ModelPreference;
  /** Reference estimate of the sanitized message. */
  estimatedTokens: number;
}

/** The service's decision on a request, in its order. */
export type Screening =
  | { outcome: "invalid"; code: "invalid_json" | "invalid_request"; message: string }
  | { outcome: "contract"; violations: Violation[] }
  | ({ outcome: "refused" } & Refusal)
  | ScreenedRequest;

/**
 * What the service does with a chat request given as JSON text: unreadable
 * (400), every contract violation (400), the message refused (422), or
 * accepted with its sanitized message. The same core call the server's
 * policy component makes.
 */
export function screen(requestJson: string): Screening;

/** Checks, sanitizes and estimates a message; a policy object overrides SPEC's. */
export function check(message: string, policy?: PolicyConfig | null): CheckReport;
/** Every violation of the request contract; empty when the request is valid. */
export function validateRequest(request: unknown): Violation[];
/** The prompt form of a message. */
export function sanitize(message: string): string;
/** The reference token estimate (floor of 1.5·jp + 0.75·words + 0.5·other). */
export function estimateTokens(message: string): number;
/** Model, Claude body and cache key. Throws {@link MangaAssistError}. */
export function buildBody(input: BodyInput): BodyReport;
/** A batch job's task. */
export type JobTask = "synopsis" | "enrich";
/** One catalog item of a batch job. */
export interface JobItem {
  id: string;
  title: string;
  author?: string | null;
  description?: string | null;
}
/** Input of {@link jobBody}. */
export interface JobItemInput {
  task: JobTask;
  language?: "ja" | "en" | "zh" | null;
  item: JobItem;
}
/** Every violation of the batch job contract; empty when valid. */
export function validateJob(job: unknown): Violation[];
/** Model, Claude body and cache key of one item of a batch job. */
export function jobBody(input: JobItemInput): BodyReport;
/** Per-script weights of the calibrated estimator, as `GET /v1/estimator` publishes them. */
export interface Calibration {
  kana: number;
  kanji: number;
  latinWord: number;
  other: number;
  perRequest: number;
}
/** Code points of a text by script (Latin counted in words). */
export interface ScriptCounts {
  kana: number;
  kanji: number;
  latinWords: number;
  other: number;
}
/** The calibrated estimate of a text. Throws {@link MangaAssistError} (`invalid_argument`) for negative or non-finite weights. */
export function estimateTokensCalibrated(input: { text: string; calibration: Calibration }): {
  estimatedTokens: number;
  script: "kana" | "kanji" | "latin" | "other";
  counts: ScriptCounts;
};
/** Input of {@link continuationBody}: a body whose streamed answer was cut after `sent`. */
export interface ContinuationInput {
  body: ClaudeBody;
  sent: string;
  /** Whether the model accepts an assistant prefill. */
  prefill: boolean;
}
/** The body asking for the rest of a cut answer: an assistant prefill, or a final user turn for models refusing prefill. */
export function continuationBody(input: ContinuationInput): { body: ClaudeBody };
/** Input of {@link seam}: the start of a continuation after the text already sent. */
export interface SeamInput {
  sent: string;
  continuation: string;
  /** Whether the continuation has ended. */
  complete: boolean;
  /** Whether it was asked for with a prefill (then only whitespace repeats). */
  prefill: boolean;
}
/** Wait for more text, or the repeated start of a continuation and the rest to pass on. */
export function seam(input: SeamInput): { wait: true } | { repeat: string; rest: string };
/** The cache key of a body, given as an object or as JSON text. Throws {@link MangaAssistError}. */
export function cacheKey(body: { [key: string]: Json } | string): string;
/** The model chosen for a preference and message. */
export function selectModel(preference: ModelPreference, message: string): ModelChoice;
/** Dollar cost of a call to a catalog model (e.g. "haiku"). Throws {@link MangaAssistError}. */
export function estimateCost(model: string, inputTokens: number, outputTokens: number): number;
/** The draft-04 JSON Schema of a chat request. */
export function schema(): { [key: string]: Json };
/** The package version. */
export function version(): string;

// <esm-only> (index.d.cts, the CommonJS entry's types, is this file without
// this block: require("mangaassist") has no init)
/** Sources {@link init} and {@link initSync} accept in browsers. */
export type InitInput =
  | RequestInfo
  | URL
  | Response
  | BufferSource
  | WebAssembly.Module;

/** Browsers: loads the .wasm (default: next to the module). Node: no-op. */
export default function init(
  input?: { module_or_path?: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<unknown>;
/** Browsers: instantiates from bytes or a compiled module. Node: no-op. */
export function initSync(module?: { module: BufferSource | WebAssembly.Module } | BufferSource | WebAssembly.Module): unknown;
// </esm-only>

/** One catalog model (SPEC 8 fields, camelCase; capabilities optional). */
export interface ModelSpec {
  modelId: string;
  maxTokens: number;
  temperature: number;
  inputPricePer1k: number;
  outputPricePer1k: number;
  timeoutMs: number;
  prefill?: boolean;
  countTokens?: boolean;
  contextWindow?: number;
  maxOutputTokens?: number;
}
/** A model catalog and its selection rule. */
export interface Catalog {
  models: { [key: string]: ModelSpec };
  selection: { fast: string; quality: string; autoFastMaxTokens: number };
}
/** The catalog presets. */
export type CatalogPreset = "spec" | "current-global" | "current-us" | "current-eu" | "current-jp";
/** What a {@link Checker} is built from; every part optional (SPEC defaults). */
export interface CheckerOptions {
  policy?: PolicyConfig | null;
  catalog?: Catalog | CatalogPreset | null;
  calibration?: Calibration | null;
}
/** The limits a page shows and enforces as the user types. */
export interface Limits {
  /** Largest UTF-8 size of a message (`too_large`). */
  maxMessageBytes: number;
  /** Fewest code points (`too_short`). */
  minMessageChars: number;
  /** Most code points (`too_long`). */
  maxMessageChars: number;
  /** Largest share of control code points (`control_chars`). */
  maxControlRatio: number;
}
/**
 * A policy, catalog and calibrated estimator compiled once, answering as a
 * service configured with them would. Throws {@link MangaAssistError}
 * (`invalid_pattern`, `invalid_policy`, `invalid_catalog`,
 * `invalid_argument`, `invalid_input`) when the options are wrong.
 */
export class Checker {
  constructor(options?: CheckerOptions | null);
  check(message: string): CheckReport;
  /** As {@link precheck}; `estimatedTokens` is the calibrated estimate when the checker has weights. */
  precheck(input: PrecheckInput): PrecheckReport;
  screen(requestJson: string): Screening;
  validateRequest(request: unknown): Violation[];
  buildBody(input: BodyInput): BodyReport;
  cacheKey(body: { [key: string]: Json } | string): string;
  selectModel(preference: ModelPreference, message: string): ModelChoice;
  estimateCost(model: string, inputTokens: number, outputTokens: number): number;
  /** Calibrated with the checker's weights, else SPEC 5's reference. */
  estimateTokens(text: string): number;
  limits(): Limits;
  /** Frees the compiled policy now rather than at garbage collection. */
  free(): void;
}
/** SPEC's limits (those of a default {@link Checker}). */
export function limits(): Limits;
