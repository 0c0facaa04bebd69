// What the widget shows while the user types: one call into the npm
// package, which runs the same core (and so makes the same decisions, in the
// same order) as the server. Only the cost estimate is a second call.
import { estimateCost, estimateTokensCalibrated, precheck as corePrecheck } from "mangaassist";

/** Largest UTF-8 size of a message (SPEC 3 `too_large`). */
export const MAX_BYTES = 16 * 1024;
/** Largest message in code points (SPEC 2). */
export const MAX_CHARS = 4000;

/** The weights the server publishes at /v1/estimator, once it has any. */
let calibration = null;

/** Estimates with the server's calibrated weights from now on (null: SPEC 5's reference). */
export function useCalibration(weights) {
  calibration = weights ?? null;
}

/**
 * Pre-checks `message` as a sendMessage of `sessionId` with `preference`:
 * counts, estimate (calibrated when the server publishes weights; which
 * one in `estimator`), sanitized text, model, its input cost, and the
 * service's first refusal (`{code, detail}`) or null.
 */
export function precheck(message, sessionId, preference) {
  const report = corePrecheck({ message, sessionId, modelPreference: preference });
  const estimator = calibration ? "calibrated" : "reference";
  const estimatedTokens = calibration
    ? estimateTokensCalibrated({ text: message, calibration }).estimatedTokens
    : report.estimatedTokens;
  return { ...report, estimatedTokens, estimator, cost: estimateCost(report.model.key, estimatedTokens, 0) };
}
