#!/usr/bin/env bash
# Packs wasm/pkg with npm, installs the tarball into a scratch project, and
# uses it there with `import` under Node (and `require`, and the types file).
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
tarball=$(cd wasm/pkg && npm pack --silent --pack-destination "$scratch")
cd "$scratch"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "./$tarball"
cat > use.mjs <<'JS'
import init, { check, buildBody, cacheKey, validateRequest, version } from "mangaassist";
await init();
const r = check("  か\u3099んは\u309aる  ");
if (r.sanitized !== "がんぱる" || !r.valid) throw new Error("check: " + JSON.stringify(r));
if (check("<script>").code !== "disallowed_pattern") throw new Error("pattern");
const b = buildBody({ message: "おすすめは？" });
if (b.model.key !== "haiku" || b.cacheKey !== cacheKey(b.body)) throw new Error("body");
if (validateRequest({ action: "x" }).length !== 2) throw new Error("contract");
console.log("import ok: mangaassist " + version());
JS
cat > use.cjs <<'JS'
const { check, Checker } = require("mangaassist");
if (!check("こんにちは").valid) throw new Error("require");
if (new Checker({ catalog: "current-eu" }).limits().maxMessageChars !== 4000) throw new Error("require Checker");
console.log("require ok");
JS
node use.mjs
node use.cjs
# The types: a strict TypeScript compile of typed usage, and no `any` in them.
if grep -nw 'any' node_modules/mangaassist/index.d.ts; then echo "index.d.ts uses any" >&2; exit 1; fi
cat > use.mts <<'TS'
import init, { check, buildBody, Checker, type CheckReport, type BodyReport, type Limits, type Violation, validateRequest } from "mangaassist";
await init();
const r: CheckReport = check("x", { maxControlRatio: 0.1 });
const code: "too_large" | "null_byte" | "disallowed_pattern" | "control_chars" | "mixed_script" | null = r.code;
const b: BodyReport = buildBody({ message: "hi", history: [{ role: "user", content: "a" }], modelPreference: "fast" });
const v: Violation[] = validateRequest({});
const c = new Checker({ policy: { maxMessageBytes: 64 }, catalog: "current-us" });
const l: Limits = c.limits();
const n: number = c.estimateTokens("漫画");
c.free();
console.log(code, b.body.messages.length, v.length, l.maxMessageBytes, n);
TS
npm install --silent --no-audit --no-fund typescript@5 >/dev/null
npx tsc --noEmit --strict --module nodenext --moduleResolution nodenext --target es2022 use.mts
test -s node_modules/mangaassist/index.d.ts
grep -q '"types": "./index.d.ts"' node_modules/mangaassist/package.json
echo "pack ok: $tarball ($(wc -c < "$tarball") bytes) installs and works in a scratch project"
