// check() throughput of the npm package in Node over the bench corpus, by the
// method of bench/src/bin/throughput.rs (best of N passes), to compare.
// Usage: node bench/node_throughput.mjs   (after scripts/build-wasm.sh and bench/make_corpus.py)
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { check } from "../wasm/pkg/node/index.mjs";

const messages = readFileSync(new URL("./data/chat-corpus.jsonl", import.meta.url), "utf8")
  .split("\n")
  .filter((l) => l)
  .map((l) => JSON.parse(l).message);
const bytes = messages.reduce((n, m) => n + Buffer.byteLength(m), 0);
let best = Infinity;
for (let pass = 0; pass < 30; pass++) {
  const start = performance.now();
  for (const m of messages) check(m);
  best = Math.min(best, (performance.now() - start) / 1000);
}
console.log(`node ${process.version}: ${messages.length} messages, ${bytes} bytes`);
console.log(
  `best of 30: ${(best * 1e3).toFixed(2)} ms = ${Math.round(messages.length / best)} messages/s, ` +
    `${((best / messages.length) * 1e6).toFixed(2)} us/message, ${(bytes / best / 1e6).toFixed(1)} MB/s`,
);
