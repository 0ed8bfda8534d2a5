//! Tokens (JWT) minted in the tests, as an application's backend would mint them for its
//! browsers: HS256 with a test secret, RS256 and ES256 with the TEST-ONLY keys under
//! `tests/fixtures/jwt-test-only/`, key sets (JWKS) of those keys, an unsigned (`alg: none`)
//! token, and requests that carry a token by header, query or cookie.

use std::path::{Path, PathBuf};

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::gateway::TestGateway;
use super::streams::LeakScan;

/// The HS256 secret the token tests configure (`--jwt-secret`): 32+ bytes.
pub const SECRET: &str = "test-only-hs256-secret-not-for-real-use";
/// The audience the tests' tokens name.
pub const AUDIENCE: &str = "ttgw-tests";

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Seconds since the epoch, with the fraction.
pub fn now_f64() -> f64 {
    super::now_ms() as f64 / 1000.0
}

/// A test-only key file of tests/fixtures/jwt-test-only.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt-test-only")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The TEST-ONLY RSA key `rsa-<n>.pem` (n = 1 or 2).
pub fn rsa(n: u8) -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture(&format!("rsa-{n}.pem"))).expect("RSA test key")
}

/// The TEST-ONLY EC P-256 key.
pub fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture("ec-1.pem")).expect("EC test key")
}

pub fn hmac(secret: &str) -> EncodingKey {
    EncodingKey::from_secret(secret.as_bytes()).expect("HMAC key")
}

/// A signed token.
pub fn mint(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).expect("token signs")
}

/// An HS256 token with `SECRET`.
pub fn hs256(claims: &Value) -> String {
    mint(Algorithm::HS256, &hmac(SECRET), None, claims)
}

/// Claims naming `accounts`, expiring `exp_in` seconds from now (negative: expired).
pub fn claims(accounts: &[&str], exp_in: i64) -> Value {
    claims_until(accounts, now().saturating_add_signed(exp_in))
}

/// Claims naming `accounts`, expiring at `exp`.
pub fn claims_until(accounts: &[&str], exp: u64) -> Value {
    json!({"sub": "browser-user-1", "aud": AUDIENCE, "iat": now(), "exp": exp, "accounts": accounts})
}

/// A token with `alg: none` and no signature.
pub fn unsigned(claims: &Value) -> String {
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims.to_string())
    )
}

/// A key set of the public halves of `keys` (key, algorithm, key id).
pub fn jwks(keys: &[(&EncodingKey, Algorithm, &str)]) -> String {
    let keys = keys
        .iter()
        .map(|(key, alg, kid)| {
            let mut jwk = Jwk::from_encoding_key(key, *alg).expect("public JWK");
            jwk.common.key_id = Some(kid.to_string());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

/// A fresh directory for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ttgw-jwt-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How a request carries its token.
#[derive(Clone, Copy, Debug)]
pub enum Carrier<'a> {
    Bearer(&'a str),
    Query(&'a str),
    Cookie(&'a str),
}

/// GETs `path` with a token; status, headers and JSON body, all scanned for leaks.
pub async fn call(
    gw: &TestGateway,
    scan: &LeakScan,
    path: &str,
    carrier: Carrier<'_>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = format!("{}{path}", gw.url);
    let request = match carrier {
        Carrier::Bearer(token) => gw.http.get(url).bearer_auth(token),
        Carrier::Query(token) => {
            let separator = if path.contains('?') { '&' } else { '?' };
            gw.http.get(format!("{url}{separator}access_token={token}"))
        }
        Carrier::Cookie(token) => gw
            .http
            .get(url)
            .header("cookie", format!("theme=dark; ttgw_token={token}")),
    };
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    scan.scan("response headers", format!("{headers:?}").as_bytes());
    let body = response.bytes().await.expect("body");
    scan.scan("response body", &body);
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// The public ids `GET /v1/accounts` lists for a token.
pub async fn visible(gw: &TestGateway, scan: &LeakScan, token: &str) -> Vec<String> {
    let (status, _, body) = call(gw, scan, "/v1/accounts", Carrier::Bearer(token)).await;
    assert_eq!(status, 200, "{body}");
    body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

/// A balance like the simulator's, with `cash` as its cash balance.
pub async fn balance(gw: &TestGateway, number: &str, cash: &str) -> Value {
    let mut balance = gw.sim_get(&format!("/sim/accounts/{number}/truth")).await["balance"].clone();
    balance["cash-balance"] = json!(cash);
    balance
}
