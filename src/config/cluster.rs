//! The scale-out settings (`--nats-*`, `--lease-ttl-secs`, `--node-id`) checked into
//! [`ClusterSettings`]: URLs NATS understands, names safe in subjects and buckets, limits in
//! range. URLs may carry a password, so errors never echo them.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::{ConfigError, ServeArgs, bad, within};
use crate::cluster::ClusterSettings;

/// The cluster's settings, or `None` without --nats-url.
pub fn settings(args: &ServeArgs) -> Result<Option<ClusterSettings>, ConfigError> {
    let urls: Vec<String> = args
        .nats_url
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Ok(None);
    }
    if let Some(position) = urls.iter().position(|u| !valid_url(u)) {
        return Err(bad(
            "nats-url",
            format!(
                "URL {} must be nats://host:port or tls://host:port",
                position + 1
            ),
        ));
    }
    within(&[
        ("nats-replicas", args.nats_replicas, 1, 5),
        (
            "nats-history-events",
            args.nats_history_events,
            100,
            100_000_000,
        ),
        (
            "nats-history-secs",
            args.nats_history_secs,
            60,
            365 * 86_400,
        ),
        ("lease-ttl-secs", args.lease_ttl_secs, 2, 300),
    ])?;
    if !valid_name(&args.nats_prefix, 32) {
        return Err(bad("nats-prefix", "must be 1-32 of a-z, A-Z, 0-9, - and _"));
    }
    let node_id = match &args.node_id {
        Some(id) if valid_name(id, 64) => id.clone(),
        Some(_) => return Err(bad("node-id", "must be 1-64 of a-z, A-Z, 0-9, - and _")),
        None => default_node_id(),
    };
    if args.nats_user.is_some() != args.nats_password.is_some() {
        return Err(bad(
            "nats-user",
            "--nats-user and --nats-password go together",
        ));
    }
    // Credentials in a URL move to the settings (kept secret), so no URL the client logs or
    // an error shows carries them.
    let (urls, in_url) = split_credentials(urls);
    let (mut user, mut password) = (args.nats_user.clone(), args.nats_password.clone());
    let mut token = args
        .nats_token
        .clone()
        .filter(|t| !t.expose_secret().is_empty());
    match in_url {
        Some(UrlCredentials::UserPassword(u, p)) if user.is_none() => {
            (user, password) = (Some(u), Some(p));
        }
        Some(UrlCredentials::Token(t)) if token.is_none() => token = Some(t),
        _ => {}
    }
    Ok(Some(ClusterSettings {
        urls,
        user,
        password,
        token,
        tls_ca: args.nats_tls_ca.clone(),
        prefix: args.nats_prefix.clone(),
        replicas: args.nats_replicas as usize,
        lease_ttl: Duration::from_secs(args.lease_ttl_secs),
        node_id,
        history_events: args.nats_history_events as i64,
        history_age: Duration::from_secs(args.nats_history_secs),
    }))
}

/// Credentials written into a NATS URL.
enum UrlCredentials {
    UserPassword(String, secrecy::SecretString),
    Token(secrecy::SecretString),
}

/// The URLs without their `user:password@` or `token@`, and the first credentials found.
fn split_credentials(urls: Vec<String>) -> (Vec<String>, Option<UrlCredentials>) {
    let mut found = None;
    let urls = urls
        .into_iter()
        .map(|url| {
            let Some((scheme, rest)) = url.split_once("://") else {
                return url;
            };
            let Some((userinfo, host)) = rest.rsplit_once('@') else {
                return url;
            };
            if found.is_none() {
                found = Some(match userinfo.split_once(':') {
                    Some((u, p)) => {
                        UrlCredentials::UserPassword(u.to_string(), p.to_string().into())
                    }
                    None => UrlCredentials::Token(userinfo.to_string().into()),
                });
            }
            format!("{scheme}://{host}")
        })
        .collect();
    (urls, found)
}

fn valid_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    matches!(scheme, "nats" | "tls") && !rest.is_empty() && !rest.contains(['/', ' '])
}

fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The host name (as far as it is a valid name) and a random suffix.
fn default_node_id() -> String {
    let host: String = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    let host = if host.is_empty() { "node".into() } else { host };
    format!("{host}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names_are_checked() {
        assert!(valid_url("nats://127.0.0.1:4222"));
        assert!(valid_url("tls://user:pass@nats.internal:4222"));
        assert!(!valid_url("http://127.0.0.1:4222"));
        assert!(!valid_url("127.0.0.1:4222"));
        assert!(valid_name("ttgw", 32));
        assert!(!valid_name("tt.gw", 32), "a dot would split subjects");
        assert!(!valid_name("", 32));
        let id = default_node_id();
        assert!(valid_name(&id, 64), "{id}");
    }

    #[test]
    fn credentials_leave_the_urls() {
        let (urls, found) = split_credentials(vec![
            "nats://gw:s3cret@n1:4222".into(),
            "tls://n2:4222".into(),
        ]);
        assert_eq!(urls, vec!["nats://n1:4222", "tls://n2:4222"]);
        let Some(UrlCredentials::UserPassword(user, password)) = found else {
            panic!("user and password");
        };
        assert_eq!((user.as_str(), password.expose_secret()), ("gw", "s3cret"));
        let (_, found) = split_credentials(vec!["nats://t0ken@n1:4222".into()]);
        assert!(matches!(found, Some(UrlCredentials::Token(t)) if t.expose_secret() == "t0ken"));
    }
}
