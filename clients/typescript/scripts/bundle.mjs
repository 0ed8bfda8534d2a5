// The single-file browser bundle (ESM) of the client, built with esbuild. The same bytes are
// written to dist/client.js and to the gateway's src/api/dashboard/client.js, which the Rust
// binary embeds and serves (so `cargo run` needs no Node).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const ENTRY = path.join(root, "src", "index.ts");
export const SERVED_BUNDLE = path.join(root, "..", "..", "src", "api", "dashboard", "client.js");
export const DIST_BUNDLE = path.join(root, "dist", "client.js");

const BANNER =
  "// @tastytrade-gateway/client: browser bundle built from clients/typescript by `npm run build`.\n" +
  "// Do not edit: `npm test` fails when it differs from a fresh build.";

/** The bundle's text. */
export async function bundleText() {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: false,
    legalComments: "none",
    charset: "utf8",
    banner: { js: BANNER },
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}
