// HS256 JSON Web Tokens minted in the test with node:crypto (no dependency), for a gateway
// started with `--jwt-secret`: a random secret and a signer of claims.
import { createHmac, randomBytes } from "node:crypto";

/** A fresh random secret (48 bytes, hex: above the gateway's 32-byte minimum). */
export function jwtSecret() {
  return randomBytes(48).toString("hex");
}

const b64url = (value) => Buffer.from(value).toString("base64url");

/** `claims` signed with `secret` as an HS256 JWT. */
export function signJwt(secret, claims) {
  const head = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

/** A token for every account that expires `seconds` from now. */
export function tokenFor(secret, seconds, claims = {}) {
  return signJwt(secret, { sub: "client-tests", accounts: ["*"], exp: Math.floor(Date.now() / 1000) + seconds, ...claims });
}
