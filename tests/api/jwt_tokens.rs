//! Tokens a browser may hold (JWT), over REST: a token's `accounts` claim scopes it exactly
//! as an API key's ids do (out of scope answers like unknown), by header, `access_token=`
//! or cookie, beside API keys; expired, not yet valid, badly signed, unsigned (`alg:
//! none`), algorithm-confused and wrongly addressed tokens get 401 with a clear code and
//! nothing of the token; the key set rotates without a restart (file and URL), and random
//! key ids cannot make the gateway hammer the key server; bad settings stop the start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::gateway::TestGateway;
use crate::helpers::streams::{LeakScan, split_combined};
use crate::helpers::tokens::{
    AUDIENCE, Carrier, SECRET, call, claims, ec, fixture, hmac, hs256, jwks, mint, now, rsa,
    temp_dir, unsigned, visible,
};
use crate::helpers::{FIVE_SECONDS, wait_until};

/// The refusal of `token`: 401, `code`, a Bearer `invalid_token` challenge, and nothing of
/// the token nor of the keys in the answer.
async fn refused(gw: &TestGateway, scan: &LeakScan, token: &str, code: &str, what: &str) {
    let (status, headers, body) = call(
        gw,
        scan,
        "/v1/accounts/individual/balance",
        Carrier::Bearer(token),
    )
    .await;
    assert_eq!(status, 401, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert_eq!(
        headers["www-authenticate"], "Bearer error=\"invalid_token\"",
        "{what}"
    );
    let text = body.to_string().to_lowercase();
    for segment in token.split('.').filter(|s| s.len() > 4) {
        assert!(
            !body.to_string().contains(segment),
            "{what}: echoes the token"
        );
    }
    for hint in [
        "secret",
        "kid",
        "rsa",
        "hs256",
        "rs256",
        "key id",
        "signature",
    ] {
        assert!(
            !text.contains(hint),
            "{what}: the message names {hint}: {text}"
        );
    }
}

#[tokio::test]
async fn tokens_see_what_their_claim_names_and_bad_ones_get_clear_refusals() {
    let dir = temp_dir("scope");
    let key_set = dir.join("jwks.json");
    let (rs256, es256) = (Algorithm::RS256, Algorithm::ES256);
    std::fs::write(
        &key_set,
        jwks(&[(&rsa(1), rs256, "rsa-1"), (&ec(), es256, "ec-1")]),
    )
    .unwrap();
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-secret",
        SECRET,
        "--jwt-jwks",
        key_set.to_str().unwrap(),
        "--jwt-audience",
        AUDIENCE,
        "--jwt-leeway-secs",
        "0",
        "--jwt-jwks-min-refetch-secs",
        "1",
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    let individual = hs256(&claims(&["individual"], 300));
    let all = mint(rs256, &rsa(1), Some("rsa-1"), &claims(&["*"], 300));
    let roth = mint(es256, &ec(), Some("ec-1"), &claims(&["roth-ira"], 300));
    let mut needles = vec![
        SECRET.to_string(),
        individual.clone(),
        all.clone(),
        roth.clone(),
    ];
    let bad = bad_tokens();
    needles.extend(bad.iter().map(|(_, token, _)| token.clone()));
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    let scan = LeakScan::new(&needles);

    // In scope, by each carrier: 200.
    for carrier in [
        Carrier::Bearer(&individual),
        Carrier::Query(&individual),
        Carrier::Cookie(&individual),
    ] {
        let (status, _, body) = call(&gw, &scan, "/v1/accounts/individual/balance", carrier).await;
        assert_eq!(status, 200, "{carrier:?}: {body}");
    }
    // Out of scope answers exactly like an unknown id, on a part and on the snapshot.
    for part in ["balance", "snapshot", "events"] {
        let outside = call(
            &gw,
            &scan,
            &format!("/v1/accounts/roth-ira/{part}"),
            Carrier::Bearer(&individual),
        )
        .await;
        let unknown = call(
            &gw,
            &scan,
            &format!("/v1/accounts/no-such-account/{part}"),
            Carrier::Bearer(&individual),
        )
        .await;
        assert_eq!(outside.0, 404, "{part}");
        assert_eq!((outside.0, &outside.2), (unknown.0, &unknown.2), "{part}");
    }
    assert_eq!(visible(&gw, &scan, &individual).await, ["individual"]);
    assert_eq!(visible(&gw, &scan, &roth).await, ["roth-ira"]);
    let every = visible(&gw, &scan, &all).await;
    assert!(every.contains(&"individual".to_string()) && every.contains(&"roth-ira".to_string()));
    // /v1/events carries only the token's accounts.
    let mut sse = crate::helpers::gateway::SseClient::connect_with(
        &gw.http,
        &format!("{}/v1/events", gw.url),
        &[("cookie", &format!("ttgw_token={individual}"))],
        gw.received.clone(),
    )
    .await;
    assert_eq!(sse.status, 200);
    let first = sse.next(FIVE_SECONDS).await;
    assert_eq!(
        (first.event.as_str(), &first.data["account"]),
        ("snapshot", &json!("individual"))
    );
    let ids: Vec<String> = split_combined(&first.id)
        .1
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["individual"]);
    drop(sse);
    // API keys keep working beside tokens.
    assert_eq!(gw.get("/v1/accounts/roth-ira/balance").await.0, 200);

    for (what, token, code) in &bad {
        refused(&gw, &scan, token, code, what).await;
    }
    let (status, _, body) = call(&gw, &scan, "/v1/accounts", Carrier::Bearer("not-a-key")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized"))
    );

    // Rotation: a token of a new key is refused, then accepted once the set holds the key.
    let rotated = mint(rs256, &rsa(2), Some("rsa-2"), &claims(&["*"], 300));
    refused(
        &gw,
        &scan,
        &rotated,
        "token_invalid",
        "a key not in the set yet",
    )
    .await;
    std::fs::write(
        &key_set,
        jwks(&[
            (&rsa(1), rs256, "rsa-1"),
            (&ec(), es256, "ec-1"),
            (&rsa(2), rs256, "rsa-2"),
        ]),
    )
    .unwrap();
    wait_until("the rotated key is accepted", FIVE_SECONDS, || async {
        call(&gw, &scan, "/v1/accounts", Carrier::Bearer(&rotated))
            .await
            .0
            == 200
    })
    .await;

    scan.assert_clean(2_000);
    let scan_received = LeakScan::new(&needles);
    scan_received.scan("the SSE stream", &gw.received.lock().unwrap());
    scan_received.assert_clean(100);
    gw.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Tokens that must be refused, what is wrong with each, and the code.
fn bad_tokens() -> Vec<(&'static str, String, &'static str)> {
    let mut not_yet = claims(&["*"], 300);
    not_yet["nbf"] = json!(now() + 120);
    let mut issued_later = claims(&["*"], 300);
    issued_later["iat"] = json!(now() + 120);
    let mut elsewhere = claims(&["*"], 300);
    elsewhere["aud"] = json!("someone-else");
    let mut no_exp = claims(&["*"], 300);
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut no_accounts = claims(&["*"], 300);
    no_accounts.as_object_mut().unwrap().remove("accounts");
    let narrow = hs256(&claims(&["individual"], 300));
    let widened = hs256(&claims(&["*"], 300));
    let (head, _) = narrow.split_once('.').unwrap();
    let (_, tail) = widened.split_once('.').unwrap();
    let (payload, _) = tail.split_once('.').unwrap();
    let signature = narrow.rsplit_once('.').unwrap().1;
    let tampered = format!("{head}.{payload}.{signature}");
    vec![
        ("expired", hs256(&claims(&["*"], -5)), "token_expired"),
        ("nbf ahead", hs256(&not_yet), "token_not_yet_valid"),
        ("iat ahead", hs256(&issued_later), "token_not_yet_valid"),
        (
            "signed with another secret",
            mint(
                Algorithm::HS256,
                &hmac("another-secret-also-32-bytes-long!!"),
                None,
                &claims(&["*"], 300),
            ),
            "token_invalid",
        ),
        (
            "another key under a known kid",
            mint(
                Algorithm::RS256,
                &rsa(2),
                Some("rsa-1"),
                &claims(&["*"], 300),
            ),
            "token_invalid",
        ),
        (
            "an unknown kid",
            mint(
                Algorithm::RS256,
                &rsa(2),
                Some("rsa-9"),
                &claims(&["*"], 300),
            ),
            "token_invalid",
        ),
        ("claims widened after signing", tampered, "token_invalid"),
        (
            "alg none",
            unsigned(&claims(&["*"], 300)),
            "token_algorithm_refused",
        ),
        (
            "an algorithm not configured",
            mint(Algorithm::HS384, &hmac(SECRET), None, &claims(&["*"], 300)),
            "token_algorithm_refused",
        ),
        ("wrong aud", hs256(&elsewhere), "token_audience_refused"),
        ("no exp", hs256(&no_exp), "token_invalid"),
        ("no accounts", hs256(&no_accounts), "token_invalid"),
        (
            "garbage in JWT shape",
            "eyJ4.eyJ5.c2ln".to_string(),
            "token_invalid",
        ),
    ]
}

#[tokio::test]
async fn a_configured_audience_and_issuer_are_required_not_only_checked_when_present() {
    const ISSUER: &str = "https://id.example";
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-secret",
        SECRET,
        "--jwt-audience",
        AUDIENCE,
        "--jwt-issuer",
        ISSUER,
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    let mut good = claims(&["*"], 300);
    good["iss"] = json!(ISSUER);
    let without = |claim: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(claim);
        hs256(&c)
    };
    let mut elsewhere = good.clone();
    elsewhere["iss"] = json!("https://evil.example");
    let mut aud_not_a_string = good.clone();
    aud_not_a_string["aud"] = json!(7);
    let valid = hs256(&good);
    let bad = [
        ("no aud", without("aud"), "token_audience_refused"),
        (
            "aud of the wrong type",
            hs256(&aud_not_a_string),
            "token_audience_refused",
        ),
        ("no iss", without("iss"), "token_issuer_refused"),
        ("wrong iss", hs256(&elsewhere), "token_issuer_refused"),
    ];
    let mut needles = vec![valid.as_str(), SECRET];
    needles.extend(bad.iter().map(|(_, token, _)| token.as_str()));
    let scan = LeakScan::new(&needles);
    assert_eq!(
        call(&gw, &scan, "/v1/accounts", Carrier::Bearer(&valid))
            .await
            .0,
        200
    );
    for (what, token, code) in &bad {
        refused(&gw, &scan, token, code, what).await;
    }
    scan.assert_clean(100);
    gw.stop().await;
}

/// Serves a key set over HTTP, counting the fetches.
struct KeyServer {
    url: String,
    set: Arc<Mutex<String>>,
    hits: Arc<AtomicU64>,
    /// How long each answer takes, in milliseconds (a slow key server).
    delay_ms: Arc<AtomicU64>,
}

impl KeyServer {
    async fn start(initial: String) -> Self {
        let set = Arc::new(Mutex::new(initial));
        let hits = Arc::new(AtomicU64::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (served, counted, delay) = (set.clone(), hits.clone(), delay_ms.clone());
        let router = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().unwrap().clone();
                let delay = Duration::from_millis(delay.load(Ordering::SeqCst));
                async move {
                    tokio::time::sleep(delay).await;
                    ([("content-type", "application/json")], body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url,
            set,
            hits,
            delay_ms,
        }
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_key_set_url_rotates_without_restart_and_random_kids_do_not_hammer_it() {
    let rs256 = Algorithm::RS256;
    let server = KeyServer::start(jwks(&[(&rsa(1), rs256, "rsa-1")])).await;
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-jwks",
        &server.url,
        "--jwt-jwks-min-refetch-secs",
        "2",
        "--jwt-leeway-secs",
        "0",
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    assert_eq!(server.hits(), 1, "the set is read once at start");
    let first = mint(rs256, &rsa(1), Some("rsa-1"), &claims(&["*"], 300));
    let rotated = mint(rs256, &rsa(2), Some("rsa-2"), &claims(&["*"], 300));
    let key_set_text = server.set.lock().unwrap().clone();
    // Algorithm confusion: HS256 "signed" with the published key set, against RS256 keys.
    let confused = mint(
        Algorithm::HS256,
        &hmac(&key_set_text),
        Some("rsa-1"),
        &claims(&["*"], 300),
    );
    let scan = LeakScan::new(&[&first, &rotated, &confused]);
    assert_eq!(
        call(&gw, &scan, "/v1/accounts", Carrier::Bearer(&first))
            .await
            .0,
        200
    );
    refused(
        &gw,
        &scan,
        &confused,
        "token_algorithm_refused",
        "HS256 against RS256",
    )
    .await;
    refused(
        &gw,
        &scan,
        &rotated,
        "token_invalid",
        "a key not served yet",
    )
    .await;

    *server.set.lock().unwrap() = jwks(&[(&rsa(1), rs256, "rsa-1"), (&rsa(2), rs256, "rsa-2")]);
    wait_until(
        "the rotated key is accepted",
        Duration::from_secs(10),
        || async {
            call(&gw, &scan, "/v1/accounts", Carrier::Bearer(&rotated))
                .await
                .0
                == 200
        },
    )
    .await;
    assert_eq!(
        call(&gw, &scan, "/v1/accounts", Carrier::Bearer(&first))
            .await
            .0,
        200
    );

    // Forty tokens with random key ids: at most one fetch per --jwt-jwks-min-refetch-secs.
    let before = server.hits();
    let started = tokio::time::Instant::now();
    for i in 0..40 {
        let kid = format!("random-{i}-{}", rand_suffix(i));
        let token = mint(rs256, &rsa(2), Some(&kid), &claims(&["*"], 300));
        refused(&gw, &scan, &token, "token_invalid", "a random kid").await;
    }
    let allowed = 1 + started.elapsed().as_secs() / 2;
    let fetched = server.hits() - before;
    assert!(
        fetched <= allowed,
        "{fetched} fetches for random kids (at most {allowed})"
    );
    scan.assert_clean(1_000);
    gw.stop().await;
}

#[tokio::test]
async fn unknown_kids_at_once_share_one_fetch_and_the_refetch_minimum_is_a_second() {
    let rs256 = Algorithm::RS256;
    let server = KeyServer::start(jwks(&[(&rsa(1), rs256, "rsa-1")])).await;
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-jwks",
        &server.url,
        "--jwt-jwks-min-refetch-secs",
        "1",
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    // Time passing is the thing here: past the minimum since the read at start.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    server.delay_ms.store(1_500, Ordering::SeqCst);
    let tokens: Vec<String> = (0..10)
        .map(|i| {
            let kid = format!("random-{i}-{}", rand_suffix(i));
            mint(rs256, &rsa(2), Some(&kid), &claims(&["*"], 300))
        })
        .collect();
    let needles: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let scan = LeakScan::new(&needles);
    let before = server.hits();
    let started = tokio::time::Instant::now();
    futures::future::join_all(
        tokens
            .iter()
            .map(|token| refused(&gw, &scan, token, "token_invalid", "a random kid")),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(
        server.hits() - before,
        1,
        "one fetch for ten unknown kids at once"
    );
    assert!(
        took < Duration::from_millis(3_500),
        "the requests waited on each other's fetches: {took:?}"
    );
    scan.assert_clean(100);
    gw.stop().await;

    let (code, message) = start_fails(
        &[
            "--jwt-jwks",
            &server.url,
            "--jwt-jwks-min-refetch-secs",
            "0",
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "{message}");
    assert!(
        message.contains("invalid setting jwt-jwks-min-refetch-secs"),
        "{message}"
    );
}

#[tokio::test]
async fn key_sets_come_over_https_or_from_loopback_and_redirects_are_not_followed() {
    let (code, message) = start_fails(&["--jwt-jwks", "http://id.example/jwks.json"], &[]).await;
    assert_eq!(code, Some(2), "{message}");
    assert!(
        message.contains("invalid setting jwt-jwks: a key set URL must be https"),
        "{message}"
    );
    // A key server that redirects (here to itself: a redirect could as well lead from https
    // to http, or to another host): the gateway does not follow, so the set cannot be read.
    let server = KeyServer::start(jwks(&[(&rsa(1), Algorithm::RS256, "rsa-1")])).await;
    let target = server.url.clone();
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let target = target.clone();
            async move { axum::response::Redirect::temporary(&target) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirecting = format!(
        "http://localhost:{}/jwks.json",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (code, message) = start_fails(&["--jwt-jwks", &redirecting], &[]).await;
    assert_eq!(code, Some(1), "{message}");
    assert!(message.contains("HTTP 307"), "{message}");
    assert_eq!(server.hits(), 0, "the redirect was followed");
}

#[tokio::test]
async fn a_key_set_entry_for_encryption_or_an_unknown_algorithm_verifies_nothing() {
    let dir = temp_dir("enc-keys");
    let key_set = dir.join("jwks.json");
    let rs256 = Algorithm::RS256;
    let mut set: serde_json::Value = serde_json::from_str(&jwks(&[
        (&rsa(1), rs256, "enc-1"),
        (&rsa(2), rs256, "odd-2"),
        (&ec(), Algorithm::ES256, "ec-1"),
    ]))
    .unwrap();
    set["keys"][0]["alg"] = json!("RSA-OAEP");
    set["keys"][1]["alg"] = json!("XS999");
    std::fs::write(&key_set, set.to_string()).unwrap();
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-jwks",
        key_set.to_str().unwrap(),
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    let tokens = [
        mint(rs256, &rsa(1), Some("enc-1"), &claims(&["*"], 300)),
        mint(rs256, &rsa(2), Some("odd-2"), &claims(&["*"], 300)),
        mint(rs256, &rsa(1), None, &claims(&["*"], 300)),
    ];
    let valid = mint(Algorithm::ES256, &ec(), Some("ec-1"), &claims(&["*"], 300));
    let mut needles: Vec<&str> = tokens.iter().map(String::as_str).collect();
    needles.push(&valid);
    let scan = LeakScan::new(&needles);
    assert_eq!(
        call(&gw, &scan, "/v1/accounts", Carrier::Bearer(&valid))
            .await
            .0,
        200
    );
    for token in &tokens {
        refused(&gw, &scan, token, "token_invalid", "a key not for signing").await;
    }
    scan.assert_clean(100);
    gw.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn hs256_signed_with_the_published_rsa_key_is_refused_where_both_families_are_accepted() {
    // Algorithm confusion: a gateway that accepts HS256 (its secret) and RS256 (a key set)
    // must never take the RSA public key, which anyone may hold, as an HMAC secret.
    let dir = temp_dir("confusion");
    let key_set = dir.join("jwks.json");
    std::fs::write(&key_set, jwks(&[(&rsa(1), Algorithm::RS256, "rsa-1")])).unwrap();
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-secret",
        SECRET,
        "--jwt-jwks",
        key_set.to_str().unwrap(),
        "--jwt-algorithms",
        "HS256,RS256",
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    let pem = fixture("rsa-1.pub.pem");
    let der = fixture("rsa-1.pub.der");
    let trimmed = String::from_utf8(pem.clone()).unwrap().trim().to_string();
    let mut confused = Vec::new();
    for secret in [pem.as_slice(), trimmed.as_bytes(), der.as_slice()] {
        let key = jsonwebtoken::EncodingKey::from_secret(secret).expect("HMAC key");
        for kid in [Some("rsa-1"), None] {
            confused.push(mint(Algorithm::HS256, &key, kid, &claims(&["*"], 300)));
        }
    }
    let both = [
        hs256(&claims(&["*"], 300)),
        mint(
            Algorithm::RS256,
            &rsa(1),
            Some("rsa-1"),
            &claims(&["*"], 300),
        ),
    ];
    let mut needles: Vec<&str> = confused.iter().chain(&both).map(String::as_str).collect();
    needles.push(SECRET);
    let scan = LeakScan::new(&needles);
    for token in &both {
        assert_eq!(
            call(&gw, &scan, "/v1/accounts", Carrier::Bearer(token))
                .await
                .0,
            200
        );
    }
    for token in &confused {
        refused(
            &gw,
            &scan,
            token,
            "token_invalid",
            "HS256 keyed with the RSA public key",
        )
        .await;
    }
    scan.assert_clean(100);
    gw.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_token_without_kid_needs_a_key_set_with_one_key_for_its_algorithm() {
    let dir = temp_dir("kidless");
    let key_set = dir.join("jwks.json");
    let rs256 = Algorithm::RS256;
    std::fs::write(
        &key_set,
        jwks(&[(&rsa(1), rs256, "rsa-1"), (&ec(), Algorithm::ES256, "ec-1")]),
    )
    .unwrap();
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-jwks",
        key_set.to_str().unwrap(),
        "--jwt-jwks-min-refetch-secs",
        "1",
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    let (one, two) = (
        mint(rs256, &rsa(1), None, &claims(&["*"], 300)),
        mint(rs256, &rsa(2), None, &claims(&["*"], 300)),
    );
    let scan = LeakScan::new(&[&one, &two]);
    // One RSA key: a kid-less RS256 token is checked against it.
    assert_eq!(
        call(&gw, &scan, "/v1/accounts", Carrier::Bearer(&one))
            .await
            .0,
        200
    );
    // Two RSA keys: a kid-less token is not tried against each (valid or not).
    std::fs::write(
        &key_set,
        jwks(&[(&rsa(1), rs256, "rsa-1"), (&rsa(2), rs256, "rsa-2")]),
    )
    .unwrap();
    let with_kid = mint(rs256, &rsa(2), Some("rsa-2"), &claims(&["*"], 300));
    wait_until("the second key is read", FIVE_SECONDS, || async {
        call(&gw, &scan, "/v1/accounts", Carrier::Bearer(&with_kid))
            .await
            .0
            == 200
    })
    .await;
    for token in [&one, &two] {
        refused(&gw, &scan, token, "token_invalid", "no kid among two keys").await;
    }
    scan.assert_clean(100);
    gw.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn rand_suffix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now()
}

/// Runs the binary with `args` and `env`; its exit code and standard error.
async fn start_fails(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tastytrade-gateway"))
        .args(["--listen", "127.0.0.1:0", "--sim-rate", "0"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).trim().to_string(),
    )
}

#[tokio::test]
async fn bad_token_settings_stop_the_start_with_a_clear_error() {
    let dir = temp_dir("settings");
    let short = "short-secret-hunter2";
    let (code, message) = start_fails(&["--jwt-secret", short], &[]).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        message,
        "tastytrade-gateway: invalid setting jwt-secret: must be at least 32 bytes (HS256)"
    );
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, format!("{short}\n")).unwrap();
    let (_, message) = start_fails(
        &[],
        &[("TTGW_JWT_SECRET_FILE", secret_file.to_str().unwrap())],
    )
    .await;
    assert!(
        message.contains("invalid setting jwt-secret"),
        "the _FILE form is read: {message}"
    );
    assert!(!message.contains("hunter2"), "{message}");

    let missing = dir.join("missing.json");
    let (code, message) = start_fails(&["--jwt-jwks", missing.to_str().unwrap()], &[]).await;
    assert_eq!(code, Some(2));
    assert!(
        message.contains("invalid setting jwt-jwks: cannot read"),
        "{message}"
    );
    let (_, message) =
        start_fails(&["--jwt-secret", SECRET, "--jwt-algorithms", "RS256"], &[]).await;
    assert!(
        message.ends_with("jwt-algorithms: RS256 needs --jwt-jwks"),
        "{message}"
    );
    let (_, message) =
        start_fails(&["--jwt-secret", SECRET, "--jwt-algorithms", "none"], &[]).await;
    assert!(
        message.contains("jwt-algorithms: `none` is not one of"),
        "{message}"
    );
    assert!(!message.contains(SECRET), "{message}");

    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{\"keys\": 7}").unwrap();
    let (code, message) = start_fails(&["--jwt-jwks", garbage.to_str().unwrap()], &[]).await;
    assert_eq!(code, Some(1));
    assert!(message.contains("is not a JSON Web Key Set"), "{message}");

    // Settings and their Debug output never hold the secret.
    let config = crate::helpers::gateway::config(&["--jwt-secret", SECRET]);
    assert!(!format!("{config:?}").contains(SECRET));
    let _ = std::fs::remove_dir_all(dir);
}
