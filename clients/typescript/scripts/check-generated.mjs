// Fails when src/generated/openapi.ts is not what the checked-in OpenAPI document generates
// (run `npm run gen` after changing the spec).
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { generate, GENERATED } from "./gen-types.mjs";

const dir = mkdtempSync(path.join(tmpdir(), "ttgw-types-"));
try {
  const fresh = path.join(dir, "openapi.ts");
  generate(fresh);
  if (readFileSync(fresh, "utf8") !== readFileSync(GENERATED, "utf8")) {
    console.error("src/generated/openapi.ts is stale: run `npm run gen` and commit it");
    process.exit(1);
  }
  console.log("generated types are up to date");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
