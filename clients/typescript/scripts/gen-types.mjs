// Generates src/generated/openapi.ts (or the path given as the first argument) from the
// gateway's checked-in OpenAPI document, with openapi-typescript.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const SPEC = path.join(root, "..", "..", "openapi", "openapi.json");
export const GENERATED = path.join(root, "src", "generated", "openapi.ts");

/** Writes the types generated from the spec to `output`. */
export function generate(output) {
  const cli = path.join(root, "node_modules", "openapi-typescript", "bin", "cli.js");
  execFileSync(process.execPath, [cli, SPEC, "--empty-objects-unknown", "--output", output], {
    stdio: ["ignore", "ignore", "inherit"],
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  generate(process.argv[2] ?? GENERATED);
}
