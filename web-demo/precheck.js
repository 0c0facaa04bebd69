// What the widget shows while the user types: one call into the npm
// package, which runs the same core (and so makes the same decisions, in the
// same order) as the server. Only the cost estimate is a second call.
import { estimateCost, precheck as corePrecheck } from "mangaassist";

/** Largest UTF-8 size of a message (SPEC 3 `too_large`). */
export const MAX_BYTES = 16 * 1024;
/** Largest message in code points (SPEC 2). */
export const MAX_CHARS = 4000;

/**
 * Pre-checks `message` as a sendMessage of `sessionId` with `preference`:
 * counts, estimate, sanitized text, model, its input cost, and the
 * service's first refusal (`{code, detail}`) or null.
 */
export function precheck(message, sessionId, preference) {
  const report = corePrecheck({ message, sessionId, modelPreference: preference });
  return { ...report, cost: estimateCost(report.model.key, report.estimatedTokens, 0) };
}
