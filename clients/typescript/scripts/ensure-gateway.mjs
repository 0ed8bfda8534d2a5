// Makes sure the tests have a current gateway binary: $TTGW_BIN when set (it must exist),
// else ../../target/debug/tastytrade-gateway, brought up to date with `cargo build --locked
// --bin tastytrade-gateway` from the repository root (a no-op when it is current; under
// `flock /tmp/ttgw-build.lock` when flock exists, so parallel builds on one machine take
// turns). A stale binary would test the client against yesterday's gateway.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

if (process.env.TTGW_BIN) {
  if (!existsSync(process.env.TTGW_BIN)) {
    console.error(`TTGW_BIN=${process.env.TTGW_BIN} does not exist`);
    process.exit(1);
  }
  process.exit(0);
}
const cargo = ["cargo", "build", "--locked", "--bin", "tastytrade-gateway"];
const hasFlock = spawnSync("flock", ["--version"], { stdio: "ignore" }).status === 0;
const [command, ...args] = hasFlock ? ["flock", "/tmp/ttgw-build.lock", ...cargo] : cargo;
console.log(`building the gateway: ${[command, ...args].join(" ")}`);
execFileSync(command, args, { cwd: root, stdio: "inherit" });
