// Brings clients and the gateway to rest and checks they agree: pauses the market script,
// waits (with a deadline) until each client's seq equals the gateway snapshot's for every
// account, then requires exact equality (a short diff otherwise). Also used by the Chromium
// test, with the client's state read from the page.
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { stateDiff } from "./compare.mjs";
import { getJson, simControl } from "./gateway.mjs";
import { waitFor } from "./wait.mjs";

export function pauseScript(gateway) {
  return simControl(gateway.sim, "/sim/script", { paused: true });
}

export function resumeScript(gateway) {
  return simControl(gateway.sim, "/sim/script", { paused: false });
}

/** The gateway's snapshot of every account, by public id. */
export async function gatewaySnapshots(gateway, ids) {
  const entries = await Promise.all(ids.map(async (id) => [id, await getJson(gateway.url, `/v1/accounts/${id}/snapshot`)]));
  return new Map(entries);
}

/**
 * Pauses the script and asserts that `readState(id)` (a client's state, possibly async) equals
 * the gateway's snapshot of each of `ids`. `label` names the client in failures.
 */
export async function assertInSync(gateway, label, ids, readState) {
  await pauseScript(gateway);
  let snapshots;
  await waitFor(`${label} to reach the gateway's seq`, 20_000, async () => {
    snapshots = await gatewaySnapshots(gateway, ids);
    for (const id of ids) {
      const state = await readState(id);
      if (state?.epoch !== snapshots.get(id).epoch || state?.seq !== snapshots.get(id).seq) return false;
    }
    return true;
  });
  for (const id of ids) {
    const client = await readState(id);
    const gatewayState = snapshots.get(id);
    const diff = stateDiff(client, gatewayState);
    assert.deepEqual(diff, [], `${label}, account ${id}: client state != GET /snapshot at seq ${gatewayState.seq}:\n  ${diff.join("\n  ")}`);
    for (const list of ["positions", "orders", "complex_orders"]) {
      assert.ok(isDeepStrictEqual(client[list], gatewayState[list]), `${label}, account ${id}: ${list} in another order than the gateway's`);
    }
  }
  return snapshots;
}
