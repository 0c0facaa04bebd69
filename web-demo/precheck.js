// What the widget shows while the user types: a Checker from the npm
// package, which runs the same core (and so makes the same decisions, in the
// same order) as the server. The page hard-codes no limit: they come from
// the checker's policy.
import { Checker } from "mangaassist";

/** The checker in use; SPEC's until the server's is known (built after init()). */
let checker = null;
/** What the checker was built from: the server's policy, catalog and weights. */
let options = { policy: null, catalog: null, calibration: null };

function current() {
  checker ??= new Checker(options);
  return checker;
}

/**
 * Rebuilds the checker with `changes` (any of `policy`, `catalog`,
 * `calibration`). The new one is built before the old one is let go: if
 * what the server publishes does not compile here (a newer server than
 * this package, say), the page keeps deciding as before and this returns
 * false (the server still decides; the page may then differ from it).
 */
export function configure(changes) {
  const next = { ...options, ...changes };
  let built;
  try {
    built = new Checker(next);
  } catch (e) {
    console.warn(`mangaassist: cannot build the server's checker (${e.code ?? e.message}); keeping the current one`);
    return false;
  }
  checker?.free();
  checker = built;
  options = next;
  return true;
}

/** Whether estimates are calibrated (the server published weights). */
export function calibrated() {
  return options.calibration != null;
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
  const estimator = calibrated() ? "calibrated" : "reference";
  return { ...report, estimator, cost: c.estimateCost(report.model.key, report.estimatedTokens, 0) };
}
