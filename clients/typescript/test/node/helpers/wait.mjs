// Waiting for a condition with a deadline (polled every 25 ms): tests never sleep a fixed time.

/** Resolves once `check()` is truthy; rejects naming `what` after `deadlineMs`. */
export async function waitFor(what, deadlineMs, check) {
  const end = Date.now() + deadlineMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
