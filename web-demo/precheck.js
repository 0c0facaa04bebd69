// What the widget shows while the user types: a Checker from the npm
// package, which runs the same core (and so makes the same decisions, in the
// same order) as the server. The page hard-codes no limit: they come from
// the checker's policy.
import { Checker } from "mangaassist";

/** The checker in use; built on first use (after the package's init()). */
let checker = null;
/** What the server runs (GET /v1/policy): its policy and catalog, or null for SPEC's. */
let served = { policy: null, catalog: null };
/** The server's calibrated estimator weights, once it publishes any. */
let calibration = null;

function current() {
  checker ??= new Checker({ policy: served.policy, catalog: served.catalog, calibration });
  return checker;
}

function rebuild() {
  checker?.free();
  checker = null;
}

/** Checks with the policy and catalog the server publishes from now on. */
export function usePolicy(policy, catalog) {
  served = { policy: policy ?? null, catalog: catalog ?? null };
  rebuild();
}

/** Estimates with the server's calibrated weights from now on (null: SPEC 5's reference). */
export function useCalibration(weights) {
  calibration = weights ?? null;
  rebuild();
}

/** The policy's and contract's limits: `{maxMessageBytes, maxMessageChars, ...}`. */
export function limits() {
  return current().limits();
}

/**
 * Pre-checks `message` as a sendMessage of `sessionId` with `preference`:
 * counts, estimate (calibrated when the server publishes weights; which
 * one in `estimator`), sanitized text, model, its input cost, and the
 * service's first refusal (`{code, detail}`) or null.
 */
export function precheck(message, sessionId, preference) {
  const c = current();
  const report = c.precheck({ message, sessionId, modelPreference: preference });
  const estimatedTokens = c.estimateTokens(message);
  const estimator = calibration ? "calibrated" : "reference";
  return { ...report, estimatedTokens, estimator, cost: c.estimateCost(report.model.key, estimatedTokens, 0) };
}
