// `npm run build`: dist/ (ESM + .d.ts, by tsc) and the browser bundle (dist/client.js and the
// gateway's src/api/dashboard/client.js).
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { bundleText, DIST_BUNDLE, SERVED_BUNDLE } from "./bundle.mjs";

const require = createRequire(import.meta.url);
const root = path.dirname(DIST_BUNDLE).replace(/dist$/, "");
rmSync(path.join(root, "dist"), { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", path.join(root, "tsconfig.json")], {
  stdio: "inherit",
});
const text = await bundleText();
for (const file of [DIST_BUNDLE, SERVED_BUNDLE]) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}
console.log(`bundle: ${text.length} bytes -> dist/client.js, src/api/dashboard/client.js`);
