#!/usr/bin/env bash
# Packs wasm/pkg with npm, installs the tarball into a scratch project, and
# uses it there with `import` under Node (and `require`, and the types file).
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Exactly these files ship: one .wasm, the two loaders, types, docs, LICENSE.
listed=$(cd wasm/pkg && npm pack --dry-run --json 2>/dev/null | node -e '
  const [p] = JSON.parse(require("fs").readFileSync(0, "utf8"));
  console.log(p.files.map((f) => f.path).sort().join("\n"));')
expected=$(printf '%s\n' LICENSE README.md index.d.cts index.d.ts node/index.mjs node/mangaassist.js node/package.json \
  package.json web/mangaassist.js web/mangaassist_bg.wasm | sort)
if [ "$listed" != "$expected" ]; then
  echo "npm pack lists other files than expected:" >&2
  diff <(echo "$expected") <(echo "$listed") >&2 || true
  exit 1
fi
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
if grep -nw 'any' node_modules/mangaassist/index.d.ts node_modules/mangaassist/index.d.cts; then echo "the types use any" >&2; exit 1; fi
# Tools that ignore "exports" find the entries through main and module.
node -e 'const p = require("./node_modules/mangaassist/package.json");
  const fs = require("fs");
  for (const f of [p.main, p.module, p.types]) if (!fs.existsSync("node_modules/mangaassist/" + f)) throw new Error(f);
  if (!require("./node_modules/mangaassist/" + p.main).check("x").valid) throw new Error("main");'

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
npm install --silent --no-audit --no-fund typescript@5 @arethetypeswrong/cli@0.18.5 >/dev/null
npx tsc --noEmit --strict --module nodenext --moduleResolution nodenext --target es2022 use.mts
# CommonJS typed as CommonJS: require gets no default init.
cat > use.cts <<'TS'
import { check, Checker, type Limits } from "mangaassist";
const l: Limits = new Checker().limits();
console.log(check("x").valid, l.maxMessageChars);
TS
npx tsc --noEmit --strict --module nodenext --moduleResolution nodenext --target es2022 use.cts
# Every resolution mode (node10, node16 CJS and ESM, bundler) finds types
# that match the JavaScript it gets. The .wasm subpath is an asset for
# bundlers (`?url` imports), not a module, so it has no types to check.
npx attw "$tarball" --format ascii --exclude-entrypoints ./mangaassist_bg.wasm
test -s node_modules/mangaassist/index.d.ts
grep -q '"types": "./index.d.cts"' node_modules/mangaassist/package.json
echo "pack ok: $tarball ($(wc -c < "$tarball") bytes) installs and works in a scratch project"
