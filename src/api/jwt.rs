//! Tokens a browser may hold: short-lived JSON Web Tokens minted by the application's own
//! backend and verified here, HS256 with `--jwt-secret` or RS256/ES256 (and the rest of
//! their families) with the keys of `--jwt-jwks`. `auth` hands over a presented credential
//! that is no API key and has a JWT's shape; what comes back is the token's scope (its
//! `accounts` claim) and its expiry, which streams then honour (`expiry`). The accepted
//! algorithms are configured, never read from the token; refusals say what kind of problem
//! it was, never which key or secret, nor anything of the token.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::auth::Scope;
use super::jwks::{Jwks, JwksError, JwksSource};

/// How tokens are checked, as configured (`--jwt-*`).
#[derive(Clone, Debug)]
pub struct JwtSettings {
    pub secret: Option<SecretString>,
    pub jwks: Option<JwksSource>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    /// The cookie a browser's token may come in.
    pub cookie: String,
    pub jwks_refresh: Duration,
    pub jwks_min_refetch: Duration,
    /// How long before a WebSocket's token expires it is told so.
    pub expiry_notice: Duration,
}

/// Why a token was refused; each is one stable code. Deliberately coarse: a bad signature,
/// an unknown key id and a malformed token are all `token_invalid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired; get a fresh one")]
    Expired,
    #[error("the token is not valid yet (nbf or iat is in the future)")]
    NotYetValid,
    #[error("the token's algorithm is not accepted here")]
    AlgorithmRefused,
    #[error("the token is not meant for this gateway (aud)")]
    AudienceRefused,
    #[error("the token's issuer is not accepted here (iss)")]
    IssuerRefused,
    #[error("the token is not valid")]
    Invalid,
}

impl TokenError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::AlgorithmRefused => "token_algorithm_refused",
            Self::AudienceRefused => "token_audience_refused",
            Self::IssuerRefused => "token_issuer_refused",
            Self::Invalid => "token_invalid",
        }
    }
}

/// What a valid token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
    /// The token's `exp`, in seconds since the epoch.
    pub expires_at: u64,
    /// Whom the per-client stream limit counts: `jwt:` and a digest of `sub`.
    pub client: String,
}

/// The claims read; `exp` may be fractional (RFC 7519 NumericDate).
#[derive(Deserialize)]
struct Claims {
    exp: f64,
    iat: Option<f64>,
    sub: Option<String>,
    accounts: Option<Vec<String>>,
}

/// The header fields read before any key is chosen.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

/// Checks tokens. Holds the HMAC secret as a key only: no `Debug` that could print it.
pub struct Verifier {
    hmac: Option<DecodingKey>,
    jwks: Option<Arc<Jwks>>,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    audience: Option<String>,
    issuer: Option<String>,
    pub cookie: String,
    pub expiry_notice: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.algorithms)
            .field("hmac", &self.hmac.as_ref().map(|_| "[secret]"))
            .field("jwks", &self.jwks.is_some())
            .finish()
    }
}

impl Verifier {
    /// Reads the key set (if any) and keeps it fresh until shutdown.
    pub async fn start(
        settings: &JwtSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, JwksError> {
        let jwks = match &settings.jwks {
            Some(source) => {
                // No redirects: one could lead from the configured https URL to plain http,
                // or to a host nobody configured.
                let http = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| JwksError::Read("client".into(), e.to_string()))?;
                let jwks = Jwks::load(source.clone(), http, settings.jwks_min_refetch).await?;
                jwks.keep_fresh(settings.jwks_refresh, shutdown);
                Some(jwks)
            }
            None => None,
        };
        Ok(Arc::new(Self::new(settings, jwks)))
    }

    fn new(settings: &JwtSettings, jwks: Option<Arc<Jwks>>) -> Self {
        let hmac = settings
            .secret
            .as_ref()
            .and_then(|s| DecodingKey::from_secret(s.expose_secret().as_bytes()).ok());
        Self {
            hmac,
            jwks,
            algorithms: settings.algorithms.clone(),
            leeway: settings.leeway.as_secs(),
            audience: settings.audience.clone(),
            issuer: settings.issuer.clone(),
            cookie: settings.cookie.clone(),
            expiry_notice: settings.expiry_notice,
        }
    }

    /// Verifies `token`: its algorithm is one configured, its signature one of our keys',
    /// `exp` present and not past, `nbf`/`iat` not ahead (each with the leeway), `aud` and
    /// `iss` as configured, `accounts` present.
    pub async fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let header = raw_header(token)?;
        let alg = Algorithm::from_str(&header.alg).map_err(|_| TokenError::AlgorithmRefused)?;
        if !self.algorithms.contains(&alg) {
            return Err(TokenError::AlgorithmRefused);
        }
        let keys = self.keys_for(alg, header.kid.as_deref()).await;
        let validation = self.validation(alg);
        let mut outcome = Err(TokenError::Invalid);
        for key in &keys {
            outcome = jsonwebtoken::decode::<Claims>(token, key, &validation)
                .map(|data| data.claims)
                .map_err(refusal);
            if !matches!(
                outcome,
                Err(TokenError::Invalid) | Err(TokenError::AlgorithmRefused)
            ) {
                break;
            }
        }
        self.grant(outcome?)
    }

    /// The keys that may have signed it; an unknown `kid` re-reads the key set (rate-limited).
    async fn keys_for(&self, alg: Algorithm, kid: Option<&str>) -> Vec<DecodingKey> {
        if alg.family() == AlgorithmFamily::Hmac {
            return self.hmac.iter().cloned().collect();
        }
        let Some(jwks) = &self.jwks else {
            return Vec::new();
        };
        let keys = jwks.candidates(alg, kid);
        if keys.is_empty() && kid.is_some() && jwks.refetch_for_unknown_kid().await {
            return jwks.candidates(alg, kid);
        }
        keys
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // jsonwebtoken checks `aud` and `iss` only when the token has them: a configured
        // audience or issuer must also be required, or a token without the claim passes.
        let mut required = vec!["exp"];
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The grant of verified claims: `iat` checked (jsonwebtoken does not), scope read.
    fn grant(&self, claims: Claims) -> Result<Grant, TokenError> {
        let now = now_secs();
        if claims
            .iat
            .is_some_and(|iat| iat > (now + self.leeway) as f64)
        {
            return Err(TokenError::NotYetValid);
        }
        let accounts = claims.accounts.ok_or(TokenError::Invalid)?;
        let scope = if accounts.iter().any(|a| a == "*") {
            Scope::All
        } else {
            Scope::Ids(accounts.into_iter().collect())
        };
        let digest = Sha256::digest(claims.sub.unwrap_or_default().as_bytes());
        let client = digest[..8].iter().fold(String::from("jwt:"), |mut s, b| {
            s.push_str(&format!("{b:02x}"));
            s
        });
        Ok(Grant {
            scope,
            expires_at: claims.exp.max(0.0) as u64,
            client,
        })
    }
}

/// The token's header, read before anything is trusted (its `alg` picks nothing but a
/// refusal: it must be one configured).
fn raw_header(token: &str) -> Result<RawHeader, TokenError> {
    let encoded = token.split('.').next().ok_or(TokenError::Invalid)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| TokenError::Invalid)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)
}

/// jsonwebtoken's error as one of ours.
fn refusal(error: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::AudienceRefused,
        ErrorKind::InvalidIssuer => TokenError::IssuerRefused,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim)
            if claim == "aud" =>
        {
            TokenError::AudienceRefused
        }
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim)
            if claim == "iss" =>
        {
            TokenError::IssuerRefused
        }
        ErrorKind::InvalidAlgorithm => TokenError::AlgorithmRefused,
        _ => TokenError::Invalid,
    }
}

/// Whether `credential` has a JWT's shape: three base64url segments (the last may be empty,
/// as in an `alg: none` token, which is then refused by name).
pub fn looks_like_jwt(credential: &str) -> bool {
    let segments: Vec<&str> = credential.split('.').collect();
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
    };
    segments.len() == 3
        && !segments[0].is_empty()
        && !segments[1].is_empty()
        && segments.iter().all(|s| base64url(s))
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(algorithms: Vec<Algorithm>) -> JwtSettings {
        JwtSettings {
            secret: Some(SecretString::from("0123456789abcdef0123456789abcdef")),
            jwks: None,
            algorithms,
            leeway: Duration::ZERO,
            audience: None,
            issuer: None,
            cookie: "ttgw_token".into(),
            jwks_refresh: Duration::from_secs(300),
            jwks_min_refetch: Duration::from_secs(30),
            expiry_notice: Duration::from_secs(30),
        }
    }

    fn mint(claims: serde_json::Value) -> String {
        let key =
            jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
    }

    #[test]
    fn shapes() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJz."));
        assert!(!looks_like_jwt("s3cret"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c d"));
    }

    #[tokio::test]
    async fn scope_and_expiry_come_from_the_claims() {
        let verifier = Verifier::new(&settings(vec![Algorithm::HS256]), None);
        let exp = now_secs() + 60;
        let grant = verifier
            .verify(&mint(
                serde_json::json!({"exp": exp, "accounts": ["a"], "sub": "u"}),
            ))
            .await
            .unwrap();
        assert_eq!(grant.expires_at, exp);
        assert!(grant.scope.allows("a") && !grant.scope.allows("b"));
        let missing = mint(serde_json::json!({"exp": exp}));
        assert_eq!(verifier.verify(&missing).await, Err(TokenError::Invalid));
        let ahead = mint(serde_json::json!({"exp": exp, "iat": exp, "accounts": ["*"]}));
        assert_eq!(verifier.verify(&ahead).await, Err(TokenError::NotYetValid));
        let refused = Verifier::new(&settings(vec![Algorithm::RS256]), None);
        assert_eq!(
            refused.verify(&mint(serde_json::json!({"exp": exp}))).await,
            Err(TokenError::AlgorithmRefused)
        );
    }
}
