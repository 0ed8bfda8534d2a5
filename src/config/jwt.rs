//! The token settings (`--jwt-*`) checked into [`JwtSettings`]: a secret long enough for
//! HS256, a key set that is a readable file or an https URL (http from loopback only), algorithms that each have
//! their key (HS* the secret, the others the key set) and never `none`, a cookie name a
//! browser can send, and every limit within its range. The secret is never echoed.

use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use secrecy::ExposeSecret;

use super::{ConfigError, ServeArgs, bad, within};
use crate::api::jwks::JwksSource;
use crate::api::jwt::JwtSettings;

/// RFC 7518 3.2: an HS256 key at least as long as its hash.
const MIN_SECRET_BYTES: usize = 32;

/// The token settings, or `None` when neither a secret nor a key set is given.
pub fn settings(args: &ServeArgs) -> Result<Option<JwtSettings>, ConfigError> {
    let secret = args
        .jwt_secret
        .clone()
        .filter(|s| !s.expose_secret().is_empty());
    let jwks = args
        .jwt_jwks
        .as_deref()
        .map(str::trim)
        .filter(|j| !j.is_empty())
        .map(jwks_source)
        .transpose()?;
    if secret.is_none() && jwks.is_none() {
        return Ok(None);
    }
    if let Some(secret) = &secret
        && secret.expose_secret().len() < MIN_SECRET_BYTES
    {
        return Err(bad(
            "jwt-secret",
            format!("must be at least {MIN_SECRET_BYTES} bytes (HS256)"),
        ));
    }
    within(&[
        ("jwt-leeway-secs", args.jwt_leeway_secs, 0, 300),
        (
            "jwt-jwks-refresh-secs",
            args.jwt_jwks_refresh_secs,
            1,
            86_400,
        ),
        (
            "jwt-jwks-min-refetch-secs",
            args.jwt_jwks_min_refetch_secs,
            1,
            3600,
        ),
        (
            "jwt-expiry-notice-secs",
            args.jwt_expiry_notice_secs,
            0,
            3600,
        ),
    ])?;
    let algorithms = algorithms(&args.jwt_algorithms, secret.is_some(), jwks.is_some())?;
    Ok(Some(JwtSettings {
        secret,
        jwks,
        algorithms,
        leeway: Duration::from_secs(args.jwt_leeway_secs),
        audience: nonempty(&args.jwt_audience),
        issuer: nonempty(&args.jwt_issuer),
        cookie: cookie_name(&args.jwt_cookie)?,
        jwks_refresh: Duration::from_secs(args.jwt_jwks_refresh_secs),
        jwks_min_refetch: Duration::from_secs(args.jwt_jwks_min_refetch_secs),
        expiry_notice: Duration::from_secs(args.jwt_expiry_notice_secs),
    }))
}

fn nonempty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A URL, or a file that can be read now (it is parsed at start).
fn jwks_source(text: &str) -> Result<JwksSource, ConfigError> {
    let source = JwksSource::parse(text).map_err(|e| bad("jwt-jwks", e))?;
    if let JwksSource::File(path) = &source
        && let Err(error) = std::fs::File::open(path)
    {
        return Err(bad(
            "jwt-jwks",
            format!("cannot read {}: {error}", path.display()),
        ));
    }
    Ok(source)
}

/// The configured algorithms, or the defaults of the keys given; each must have its key.
fn algorithms(names: &[String], secret: bool, jwks: bool) -> Result<Vec<Algorithm>, ConfigError> {
    let names: Vec<&str> = names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        let mut defaults = Vec::new();
        if secret {
            defaults.push(Algorithm::HS256);
        }
        if jwks {
            defaults.extend([Algorithm::RS256, Algorithm::ES256]);
        }
        return Ok(defaults);
    }
    let mut algorithms = Vec::new();
    for name in names {
        let algorithm = Algorithm::from_str(name).map_err(|_| {
            bad(
                "jwt-algorithms",
                format!("`{name}` is not one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"),
            )
        })?;
        let hmac = algorithm.family() == AlgorithmFamily::Hmac;
        if hmac && !secret {
            return Err(bad("jwt-algorithms", format!("{name} needs --jwt-secret")));
        }
        if !hmac && !jwks {
            return Err(bad("jwt-algorithms", format!("{name} needs --jwt-jwks")));
        }
        algorithms.push(algorithm);
    }
    Ok(algorithms)
}

/// RFC 6265 cookie-name characters (an HTTP token).
fn cookie_name(name: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(bad(
            "jwt-cookie",
            "must be 1-64 of letters, digits and !#$%&'*+-.^_`|~",
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_default_from_the_keys_and_need_their_key() {
        assert_eq!(
            algorithms(&[], true, true).unwrap(),
            vec![Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]
        );
        assert_eq!(algorithms(&[], false, true).unwrap().len(), 2);
        let error = algorithms(&["HS256".into()], false, true).unwrap_err();
        assert_eq!(
            error.to_string(),
            "jwt-algorithms: HS256 needs --jwt-secret"
        );
        assert!(algorithms(&["none".into()], true, true).is_err());
        assert!(algorithms(&["RS256".into()], true, false).is_err());
    }

    #[test]
    fn cookie_names_are_tokens() {
        assert!(cookie_name("ttgw_token").is_ok());
        assert!(cookie_name("a b").is_err());
        assert!(cookie_name("a;b").is_err());
        assert!(cookie_name("").is_err());
    }
}
