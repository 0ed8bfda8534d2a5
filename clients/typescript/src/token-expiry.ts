// When a token (JWT) expires, read from the token itself: its payload's `exp`, decoded from
// base64url without verifying (the gateway verifies; the client only needs to know when to
// fetch a fresh one). A credential that is not a JWT (an API key) has no expiry. Also when to
// replace a token before its `exp`: a margin of 30 s or 10% of its remaining life, whichever
// is smaller, at least 1 s (or the margin the caller chose).

/** The default lead, before `exp`, of a planned token refresh. */
export const MAX_DEFAULT_MARGIN_MS = 30_000;
export const MIN_MARGIN_MS = 1_000;

function base64UrlDecode(text: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  try {
    const binary = atob(base64);
    return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

/** The token's `exp` (epoch seconds), if it is a JWT with a numeric `exp`; else undefined. */
export function tokenExpiry(token: string | undefined): number | undefined {
  if (token === undefined) return undefined;
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const payload = base64UrlDecode(parts[1] as string);
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(payload) as unknown;
    if (typeof claims !== "object" || claims === null) return undefined;
    const exp = (claims as Record<string, unknown>)["exp"];
    return typeof exp === "number" && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long from `now` (ms) to replace a token expiring at `exp` (epoch s): `marginMs` (default
 * min(30 s, 10% of the remaining life), at least 1 s) before `exp`. Undefined when that moment
 * has already passed (a token too short-lived to refresh ahead: the stream's end is the cue).
 */
export function refreshDelay(exp: number, now: number, marginMs?: number): number | undefined {
  const left = exp * 1000 - now;
  const margin = marginMs ?? Math.max(MIN_MARGIN_MS, Math.min(MAX_DEFAULT_MARGIN_MS, left / 10));
  const delay = left - margin;
  return delay > 0 ? delay : undefined;
}
