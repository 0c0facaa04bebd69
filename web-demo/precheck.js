// What the widget shows while the user types, computed by the npm package:
// the same core (and so the same decisions) as the server's policy.
import { check, estimateCost, selectModel, validateRequest } from "mangaassist";

/** Largest UTF-8 size of a message (SPEC 3 `too_large`). */
export const MAX_BYTES = 16 * 1024;
/** Largest message in code points (SPEC 2). */
export const MAX_CHARS = 4000;

const encoder = new TextEncoder();

/**
 * Pre-checks `message` as a sendMessage of `sessionId` with `preference`.
 * `refusal` is null when the server would accept it, else `{code, detail}`:
 * contract violations first (as the server runs them), then message checks.
 */
export function precheck(message, sessionId, preference) {
  const report = check(message);
  const violations = validateRequest({
    action: "sendMessage",
    data: { message, sessionId, modelPreference: preference },
  });
  let chars = 0;
  for (const _ of message) chars++;
  const model = selectModel(preference, report.sanitized);
  let refusal = null;
  const contract = violations.find((v) => v.path === "/data/message") ?? violations[0];
  if (contract) refusal = { code: contract.code, detail: contract.message };
  else if (!report.valid) refusal = { code: report.code, detail: report.detail };
  else if (report.sanitized === "") refusal = { code: "empty_message", detail: null };
  return {
    chars,
    bytes: encoder.encode(message).length,
    tokens: report.estimatedTokens,
    model,
    cost: estimateCost(model.key, report.estimatedTokens, 0),
    sanitized: report.sanitized,
    refusal,
  };
}
