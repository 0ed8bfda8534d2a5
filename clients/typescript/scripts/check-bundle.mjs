// Fails when the bundle checked in at src/api/dashboard/client.js (served by the gateway) is
// not what a fresh build of the sources gives (run `npm run build` and commit it).
import { existsSync, readFileSync } from "node:fs";
import { bundleText, SERVED_BUNDLE } from "./bundle.mjs";

const fresh = await bundleText();
if (!existsSync(SERVED_BUNDLE) || readFileSync(SERVED_BUNDLE, "utf8") !== fresh) {
  console.error("src/api/dashboard/client.js is stale: run `npm run build` and commit it");
  process.exit(1);
}
console.log("the served bundle is up to date");
