//! Tokens of an identity provider (`--jwt-jwks`, `--jwt-issuer`, `--jwt-audience`) on the
//! real services: RS256, ES256 and EdDSA keys made by openssl, chosen by `kid`; the
//! forgeries an attacker tries against a JWKS (key confusion, a stranger's key under a
//! published kid, unknown or missing kid, wrong issuer or audience) refused with 401; and
//! keys that rotate while the services run, by a file change and by SIGHUP.

use std::time::Duration;

use e2e::idp::{Idp, now, write_atomically};
use e2e::{SseClient, frontend, frontend_process, publisher};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use testkit::NatsServer;

const T: Duration = Duration::from_secs(10);
const ISS: &str = "https://id.example.com/";
const AUD: &str = "livewire";

/// Claims a well-behaved identity provider issues, good for ten minutes.
fn claims(sub: &str) -> serde_json::Value {
    json!({ "sub": sub, "exp": now() + 600, "iss": ISS, "aud": AUD, "videos": ["launch"] })
}

async fn post_comment(publisher: &e2e::Service, token: &str, text: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/v1/videos/launch/comments", publisher.url))
        .bearer_auth(token)
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16()
}

async fn watch_status(frontend: &e2e::Service, token: &str) -> u16 {
    let url = format!("{}/v1/videos/launch/events?token={token}", frontend.url);
    SseClient::connect(&url, None)
        .await
        .expect("connect")
        .status
        .as_u16()
}

/// The public key of `pem` as PEM, what an attacker downloads to use as an HMAC secret.
fn public_pem(pem: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    std::fs::write(&path, pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&path)
        .output()
        .expect("openssl");
    assert!(out.status.success());
    out.stdout
}

fn sign(header: Header, claims: &serde_json::Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn with_kid(alg: Algorithm, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    h
}

#[tokio::test]
async fn identity_provider_tokens_are_accepted_and_forgeries_refused() {
    let mut idp = Idp::new();
    idp.add("rsa-1", Algorithm::RS256);
    idp.add("ec-1", Algorithm::ES256);
    idp.add("ed-1", Algorithm::EdDSA);
    idp.add("stranger", Algorithm::RS256);
    let jwks = idp.publish(&["rsa-1", "ec-1", "ed-1"]);
    let nats = NatsServer::start();
    let configure_publisher = |c: &mut publisher::Config| {
        c.jwt_jwks = Some(jwks.clone());
        c.jwt_issuer = Some(ISS.into());
        c.jwt_audience = Some(AUD.into());
    };
    let publisher = publisher(&nats, configure_publisher).await;
    let fe = frontend(&nats, |c| {
        c.jwt_jwks = Some(jwks.clone());
        c.jwt_issuer = Some(ISS.into());
        c.jwt_audience = Some(AUD.into());
    })
    .await;

    let watcher_token = idp.token("ed-1", &claims("watcher"));
    let url = format!("{}/v1/videos/launch/events?token={watcher_token}", fe.url);
    let mut watcher = SseClient::connect(&url, None).await.unwrap();
    assert_eq!(watcher.status, 200);
    assert_eq!(watcher.expect(T).await.event, "snapshot");

    for kid in ["rsa-1", "ec-1", "ed-1"] {
        let token = idp.token(kid, &claims("alice"));
        assert_eq!(post_comment(&publisher, &token, kid).await, 202, "{kid}");
        assert_eq!(watch_status(&fe, &token).await, 200, "{kid}");
        let c = watcher.expect_named("comment", T).await.json();
        assert_eq!(
            (c["user"].as_str(), c["text"].as_str()),
            (Some("alice"), Some(kid))
        );
    }

    let rsa = idp.key("rsa-1");
    let stranger = idp.key("stranger");
    let confusion = EncodingKey::from_secret(&public_pem(&rsa.pem)).unwrap();
    let mut no_iss = claims("alice");
    no_iss.as_object_mut().unwrap().remove("iss");
    let attacks: Vec<(&str, String)> = vec![
        (
            "HS256 signed with the RSA public key as secret (key confusion)",
            sign(
                with_kid(Algorithm::HS256, "rsa-1"),
                &claims("alice"),
                &confusion,
            ),
        ),
        (
            "RS256 under the kid of the ES256 key",
            sign(
                with_kid(Algorithm::RS256, "ec-1"),
                &claims("alice"),
                &rsa.encoding,
            ),
        ),
        (
            "a stranger's key under a published kid",
            sign(
                with_kid(Algorithm::RS256, "rsa-1"),
                &claims("alice"),
                &stranger.encoding,
            ),
        ),
        ("an unknown kid", idp.token("stranger", &claims("alice"))),
        (
            "no kid",
            sign(
                Header::new(Algorithm::RS256),
                &claims("alice"),
                &rsa.encoding,
            ),
        ),
        (
            "another issuer",
            idp.token("rsa-1", &{
                let mut c = claims("alice");
                c["iss"] = "https://evil.example.com/".into();
                c
            }),
        ),
        ("no issuer", idp.token("rsa-1", &no_iss)),
        (
            "another audience",
            idp.token("rsa-1", &{
                let mut c = claims("alice");
                c["aud"] = json!(["other-app"]);
                c
            }),
        ),
        (
            "expired",
            idp.token("ec-1", &{
                let mut c = claims("alice");
                c["exp"] = (now() - 5).into();
                c
            }),
        ),
        (
            "nbf in the future",
            idp.token("ed-1", &{
                let mut c = claims("alice");
                c["nbf"] = (now() + 300).into();
                c
            }),
        ),
    ];
    for (what, token) in &attacks {
        assert_eq!(post_comment(&publisher, token, what).await, 401, "{what}");
        assert_eq!(watch_status(&fe, token).await, 401, "{what}");
    }
    // Nothing the forgeries posted reached a viewer: the next comment is a real one.
    let token = idp.token("rsa-1", &claims("alice"));
    assert_eq!(post_comment(&publisher, &token, "after").await, 202);
    let c = watcher.expect_named("comment", T).await.json();
    assert_eq!(c["text"], "after");
}

#[tokio::test]
async fn jwks_keys_rotate_while_the_publisher_runs() {
    let mut idp = Idp::new();
    for kid in ["2025-a", "2025-b", "2026-a"] {
        idp.add(kid, Algorithm::ES256);
    }
    let jwks = idp.publish(&["2025-a", "2025-b"]);
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.jwt_jwks = Some(jwks.clone())).await;
    let old = idp.token("2025-a", &claims("alice"));
    let kept = idp.token("2025-b", &claims("alice"));
    let new = idp.token("2026-a", &claims("alice"));
    assert_eq!(post_comment(&publisher, &old, "old").await, 202);
    assert_eq!(post_comment(&publisher, &new, "new").await, 401);

    // The provider rotates: 2025-a is retired, 2026-a published.
    idp.publish(&["2025-b", "2026-a"]);
    let mut rotated = false;
    for _ in 0..50 {
        if post_comment(&publisher, &new, "new").await == 202 {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "the new key was not picked up within 5 s");
    assert_eq!(post_comment(&publisher, &old, "old").await, 401);
    assert_eq!(post_comment(&publisher, &kept, "kept").await, 202);

    // A broken file keeps the keys in force; fixing it takes effect.
    write_atomically(&jwks, b"{\"keys\": [");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(post_comment(&publisher, &new, "still").await, 202);
    idp.publish(&["2025-a"]);
    let mut back = false;
    for _ in 0..50 {
        if post_comment(&publisher, &old, "back").await == 202 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the fixed file was not picked up");
    assert_eq!(post_comment(&publisher, &new, "gone").await, 401);
}

#[tokio::test]
async fn sighup_rereads_the_jwks_of_a_running_frontend() {
    let mut idp = Idp::new();
    idp.add("k1", Algorithm::EdDSA);
    idp.add("k2", Algorithm::RS256);
    let jwks = idp.publish(&["k1"]);
    let nats = NatsServer::start();
    let (mut process, fe) =
        frontend_process(&nats.url(), &["--jwt-jwks", jwks.to_str().unwrap()]).await;
    let k1 = idp.token("k1", &claims("viewer"));
    let k2 = idp.token("k2", &claims("viewer"));
    assert_eq!(watch_status(&fe, &k1).await, 200);
    assert_eq!(watch_status(&fe, &k2).await, 401);

    let pid = process.pid().unwrap().to_string();
    let hup = || {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    // SIGHUP does not kill it (its default action), and says what it did.
    hup();
    assert!(
        e2e::eventually(T, || process.log().contains("SIGHUP: JWKS unchanged")).await,
        "{}",
        process.log()
    );
    idp.publish(&["k2"]);
    hup();
    let mut rotated = false;
    for _ in 0..50 {
        if watch_status(&fe, &k2).await == 200 {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rotated, "{}", process.log());
    assert_eq!(watch_status(&fe, &k1).await, 401);
    assert!(process.log().contains("JWKS reloaded"));
    assert!(process.terminate(T), "the frontend did not stop on SIGTERM");
}
