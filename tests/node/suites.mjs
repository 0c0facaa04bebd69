// How each corpus suite is asked of the npm package: shared by the Node run
// (corpus.test.mjs) and the browser builds (tests/bundlers/), so every engine
// is asked the same way. Plain ESM with no Node imports: bundlers take it.

/** A thrown package error as the answer the corpus expects. */
export function guarded(f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof Error && typeof e.code === "string") {
      return { error: { code: e.code, message: e.message } };
    }
    throw e;
  }
}

/** Suite name → (package, vector) → answer. */
export const suites = {
  check: (m, v) => m.check(v.input.message),
  policy: (m, v) => guarded(() => m.check(v.input.message, v.input.policy)),
  sanitize: (m, v) => m.sanitize(v.input),
  estimate: (m, v) => m.estimateTokens(v.input),
  cache_key: (m, v) => guarded(() => ({ cacheKey: m.cacheKey(v.rawInput) })),
  body: (m, v) => guarded(() => m.buildBody(v.input)),
  contract: (m, v) => m.validateRequest(v.input),
  precheck: (m, v) => guarded(() => m.precheck(v.input)),
  screen: (m, v) => guarded(() => m.screen(v.rawInput)),
  job: (m, v) => m.validateJob(v.input),
  job_body: (m, v) => guarded(() => m.jobBody(v.input)),
  continuation: (m, v) => guarded(() => m.continuationBody(v.input)),
  seam: (m, v) => guarded(() => m.seam(v.input)),
  calibrated: (m, v) => guarded(() => m.estimateTokensCalibrated(v.input)),
};

/**
 * The suites a Checker answers, asked through one: the policy suite with a
 * checker compiled per vector (and freed), the others with `checker`, a
 * default one. Answers must be the free functions' exactly.
 */
export const checkerSuites = {
  policy: (m, v) =>
    guarded(() => {
      const c = new m.Checker({ policy: v.input.policy });
      try {
        return c.check(v.input.message);
      } finally {
        c.free();
      }
    }),
  check: (m, v, c) => c.check(v.input.message),
  body: (m, v, c) => guarded(() => c.buildBody(v.input)),
  precheck: (m, v, c) => guarded(() => c.precheck(v.input)),
  screen: (m, v, c) => guarded(() => c.screen(v.rawInput)),
  contract: (m, v, c) => c.validateRequest(v.input),
  cache_key: (m, v, c) => guarded(() => ({ cacheKey: c.cacheKey(v.rawInput) })),
};

/** As {@link failures}, through a default Checker. */
export function checkerFailures(m, suite, vectors) {
  const checker = new m.Checker();
  try {
    return compare(vectors, (v) => checkerSuites[suite](m, v, checker));
  } finally {
    checker.free();
  }
}

/** Parses a corpus file's text; keeps each input's raw JSON text too. */
export function parseCorpus(text) {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((line) => {
      const v = JSON.parse(line);
      // The raw input text, for APIs that take JSON text (cacheKey, screen).
      const start = line.indexOf('"input":') + '"input":'.length;
      const end = line.lastIndexOf(',"expected":');
      return { ...v, rawInput: line.slice(start, end) };
    });
}

/** Every vector of `vectors` whose answer differs from the expected one. */
export function failures(m, suite, vectors) {
  return compare(vectors, (v) => suites[suite](m, v));
}

/** Every vector whose `answer(vector)` differs from the expected one, described. */
export function compare(vectors, answer) {
  const out = [];
  for (const v of vectors) {
    const actual = JSON.stringify(answer(v));
    const expected = JSON.stringify(v.expected);
    if (actual !== expected) out.push(`${v.name}\n  expected ${expected.slice(0, 300)}\n  actual   ${actual.slice(0, 300)}`);
  }
  return out;
}
