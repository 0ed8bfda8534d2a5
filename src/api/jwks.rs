//! The public keys RS256/ES256 tokens are checked against: a JSON Web Key Set read from a
//! file or an https URL (`--jwt-jwks`; http only from a loopback host, no redirects). Read at start (a set that cannot be read stops
//! the start), then every `--jwt-jwks-refresh-secs`, and again when a token names a key id
//! the set lacks, at most once per `--jwt-jwks-min-refetch-secs` (1 s or more), so tokens
//! with random ids cannot make the gateway hammer the key server; tokens that arrive during
//! such a re-read wait for it rather than start their own. A failed re-read keeps the keys it
//! had. `jwt` asks this set for the keys of a token; nothing else reads it.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use tokio::sync::watch;
use tokio::time::Instant;

/// The largest key set read: a few keys are a few KiB.
const MAX_BYTES: usize = 256 * 1024;
/// How long one fetch of a key set URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the key set is: an https (or loopback http) URL, else a file path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(reqwest::Url),
}

impl JwksSource {
    /// `http://` and `https://` are URLs; anything else is a path. Keys decide who may read
    /// what, so they come over https only; plain http only from a loopback host (a key
    /// server on the same machine, or a test's).
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
            if url.scheme() == "http" && !loopback(&url) {
                return Err(
                    "a key set URL must be https (http only for a loopback host: 127.0.0.0/8, ::1, localhost)"
                        .into(),
                );
            }
            return Ok(Self::Url(url));
        }
        Ok(Self::File(PathBuf::from(text)))
    }

    /// How errors name it: a path, or a URL without its query (which could hold a secret).
    fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Url(url) => format!("{}{}", url.origin().ascii_serialization(), url.path()),
        }
    }
}

/// Whether the URL's host is this machine: 127.0.0.0/8, ::1 or `localhost`.
fn loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why a key set could not be used. Names the source, never a key.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read the JWKS {0}: {1}")]
    Read(String, String),
    #[error("the JWKS {0} is not a JSON Web Key Set: {1}")]
    Parse(String, String),
    #[error("the JWKS {0} holds no usable RSA, EC or Ed25519 signature key")]
    Empty(String),
    #[error("the JWKS {0} is larger than {MAX_BYTES} bytes")]
    TooBig(String),
}

/// One public key of the set.
struct Key {
    kid: Option<String>,
    family: AlgorithmFamily,
    /// The one algorithm the key is for, when the set says (`alg`).
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// The key set, kept current.
pub struct Jwks {
    source: JwksSource,
    http: reqwest::Client,
    keys: RwLock<Arc<Vec<Key>>>,
    /// When the set was last read (or tried), and the re-read under way, if one is. Held
    /// only to decide, never across a fetch: tokens with an unknown id that arrive while
    /// a re-read runs wait for that one (single flight).
    refetch: Mutex<Refetch>,
    min_refetch: Duration,
}

/// The state of unknown-kid re-reads.
struct Refetch {
    last_read: Instant,
    in_flight: Option<Shared<BoxFuture<'static, bool>>>,
}

impl Jwks {
    /// Reads the set once; an error here stops the start.
    pub async fn load(
        source: JwksSource,
        http: reqwest::Client,
        min_refetch: Duration,
    ) -> Result<Arc<Self>, JwksError> {
        let keys = read(&source, &http).await?;
        Ok(Arc::new(Self {
            source,
            http,
            keys: RwLock::new(Arc::new(keys)),
            refetch: Mutex::new(Refetch {
                last_read: Instant::now(),
                in_flight: None,
            }),
            min_refetch,
        }))
    }

    /// The keys that may have signed a token with `alg` and `kid`: the one with that id, or
    /// with no id in the token, the one key for the algorithm. A token without a `kid`
    /// where the set holds several such keys gets none: it is not tried against each.
    pub fn candidates(&self, alg: Algorithm, kid: Option<&str>) -> Vec<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let fitting: Vec<DecodingKey> = keys
            .iter()
            .filter(|k| k.family == alg.family() && k.alg.is_none_or(|a| a == alg))
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .map(|k| k.key.clone())
            .collect();
        if kid.is_none() && fitting.len() > 1 {
            return Vec::new();
        }
        fitting
    }

    /// Re-reads the set for a token whose key id it lacks, unless it was read less than
    /// `--jwt-jwks-min-refetch-secs` ago; joins a re-read already under way. True when the
    /// set was re-read.
    pub async fn refetch_for_unknown_kid(self: &Arc<Self>) -> bool {
        let flight = {
            let mut state = self.refetch.lock().unwrap_or_else(|p| p.into_inner());
            match &state.in_flight {
                Some(flight) => flight.clone(),
                None if state.last_read.elapsed() < self.min_refetch => return false,
                None => {
                    state.last_read = Instant::now();
                    // Spawned: the fetch completes even if every request waiting on it
                    // goes away, and the next one does not start it again.
                    let jwks = self.clone();
                    let task = tokio::spawn(async move {
                        let read = jwks.reread("a token named a key id the set lacks").await;
                        jwks.refetch
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .in_flight = None;
                        read
                    });
                    let flight = task.map(|done| done.unwrap_or(false)).boxed().shared();
                    state.in_flight = Some(flight.clone());
                    flight
                }
            }
        };
        flight.await
    }

    /// Re-reads the set every `every` until shutdown.
    pub fn keep_fresh(self: &Arc<Self>, every: Duration, mut shutdown: watch::Receiver<bool>) {
        let jwks = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = crate::shutdown::signalled(&mut shutdown) => return,
                }
                jwks.refetch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .last_read = Instant::now();
                jwks.reread("periodic refresh").await;
            }
        });
    }

    async fn reread(&self, why: &str) -> bool {
        match read(&self.source, &self.http).await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), why, "JWKS read");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
                true
            }
            Err(error) => {
                tracing::warn!(%error, why, "JWKS re-read failed; keeping the keys it had");
                false
            }
        }
    }
}

/// Reads and parses the set.
async fn read(source: &JwksSource, http: &reqwest::Client) -> Result<Vec<Key>, JwksError> {
    let bytes = match source {
        JwksSource::File(path) => read_file(source, path).await?,
        JwksSource::Url(url) => fetch(source, http, url).await?,
    };
    parse(source, &bytes)
}

async fn read_file(source: &JwksSource, path: &PathBuf) -> Result<Vec<u8>, JwksError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| JwksError::Read(source.describe(), e.to_string()))?;
    if bytes.len() > MAX_BYTES {
        return Err(JwksError::TooBig(source.describe()));
    }
    Ok(bytes)
}

/// GETs the set, reading at most [`MAX_BYTES`].
async fn fetch(
    source: &JwksSource,
    http: &reqwest::Client,
    url: &reqwest::Url,
) -> Result<Vec<u8>, JwksError> {
    let failed =
        |e: reqwest::Error| JwksError::Read(source.describe(), e.without_url().to_string());
    let mut response = http
        .get(url.clone())
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(failed)?;
    if !response.status().is_success() {
        return Err(JwksError::Read(
            source.describe(),
            format!("HTTP {}", response.status().as_u16()),
        ));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if bytes.len() + chunk.len() > MAX_BYTES {
            return Err(JwksError::TooBig(source.describe()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The set's signature keys. Symmetric (`oct`) keys are never taken from a key set: HMAC
/// secrets come only from `--jwt-secret`, so a published set cannot become a secret.
fn parse(source: &JwksSource, bytes: &[u8]) -> Result<Vec<Key>, JwksError> {
    let set: JwkSet = serde_json::from_slice(bytes)
        .map_err(|e| JwksError::Parse(source.describe(), e.to_string()))?;
    let keys: Vec<Key> = set
        .keys
        .iter()
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter_map(|jwk| {
            let family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
                AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
                AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
                _ => return None,
            };
            // A key that names its algorithm is for that one only: an encryption algorithm
            // (`RSA-OAEP`), one unknown, or one of another family makes it no signature key.
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(named) => {
                    let name = serde_json::to_value(named).ok()?;
                    let alg = Algorithm::from_str(name.as_str()?).ok()?;
                    (alg.family() == family).then_some(alg)?;
                    Some(alg)
                }
            };
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some(Key {
                kid: jwk.common.key_id.clone(),
                family,
                alg,
                key,
            })
        })
        .collect();
    if keys.is_empty() {
        return Err(JwksError::Empty(source.describe()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_urls_or_paths_and_errors_drop_the_query() {
        assert_eq!(
            JwksSource::parse("/etc/keys.json").unwrap(),
            JwksSource::File("/etc/keys.json".into())
        );
        let url = JwksSource::parse("https://id.example/keys?sig=abc").unwrap();
        assert_eq!(url.describe(), "https://id.example/keys");
    }

    #[test]
    fn plain_http_only_from_a_loopback_host() {
        for ok in [
            "https://id.example/keys",
            "http://127.0.0.1:8080/keys",
            "http://127.9.9.9/keys",
            "http://[::1]:9/keys",
            "http://LOCALHOST/keys",
        ] {
            assert!(JwksSource::parse(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://id.example/keys",
            "http://10.0.0.1/keys",
            "http://127.0.0.1.id.example/keys",
            "http://localhost.id.example/keys",
            "HTTP://[::ffff:7f00:1]/keys",
        ] {
            let error = JwksSource::parse(refused).unwrap_err();
            assert!(error.contains("must be https"), "{refused}: {error}");
        }
    }

    #[test]
    fn symmetric_keys_in_a_set_are_ignored() {
        let source = JwksSource::File("k.json".into());
        let set = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#;
        assert!(matches!(parse(&source, set), Err(JwksError::Empty(_))));
    }
}
