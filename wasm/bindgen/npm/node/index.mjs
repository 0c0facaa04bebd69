// Node entry for `import`: the wasm-bindgen nodejs build loads synchronously;
// init() and initSync() exist so code written for browsers runs unchanged.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const wasm = require("./mangaassist.js");

export const {
  Checker,
  limits,
  check,
  precheck,
  screen,
  validateRequest,
  sanitize,
  estimateTokens,
  estimateTokensCalibrated,
  buildBody,
  validateJob,
  jobBody,
  continuationBody,
  seam,
  cacheKey,
  selectModel,
  estimateCost,
  schema,
  version,
} = wasm;

export default async function init() {
  return wasm;
}

export function initSync() {
  return wasm;
}
