//! The attack table of the hand-written verifier this module replaced, now against
//! `jsonwebtoken`, plus issuer, audience and JWKS parsing. Asymmetric keys, rotation and
//! the services' answers are tested end to end in `e2e/tests/suite/identity.rs`.

use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn key() -> Key {
    Key::new(b"0123456789abcdef0123456789abcdef")
}

fn claims(sub: &str, exp: u64) -> Claims {
    Claims {
        sub: Some(sub.into()),
        exp: Some(exp),
        ..Default::default()
    }
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// Signs an arbitrary payload with HS256 and `key()`, header as given.
fn sign_raw(header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let secret = jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &secret.unwrap(), Algorithm::HS256);
    format!("{input}.{}", signature.unwrap())
}

#[test]
fn a_signed_token_verifies() {
    let c = Claims {
        role: Some("moderator".into()),
        videos: Some(vec!["v".into()]),
        ..claims("alice", now() + 60)
    };
    let got = key().verify(&key().sign(&c)).unwrap();
    assert_eq!(got, c);
    assert!(got.is_moderator() && got.allows_video("v"));
    assert_eq!(
        key()
            .verify(&key().sign(&claims("a", u64::MAX / 2)))
            .unwrap()
            .sub
            .as_deref(),
        Some("a")
    );
}

#[test]
fn every_kind_of_bad_token_is_refused() {
    let later = now() + 60;
    let good = key().sign(&claims("alice", later));
    let (_, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let none = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
    let none_signed = format!("{}.{payload}.{signature}", b64(r#"{"alg":"none"}"#));
    let hs512 = format!("{}.{payload}.{signature}", b64(r#"{"alg":"HS512"}"#));
    let rs256 = format!("{}.{payload}.{signature}", b64(r#"{"alg":"RS256"}"#));
    let lower = format!("{}.{payload}.{signature}", b64(r#"{"alg":"hs256"}"#));
    let forged_payload = format!(
        "{}.{}.{signature}",
        good.split('.').next().unwrap(),
        b64(&format!(r#"{{"sub":"mallory","exp":{later}}}"#))
    );
    let other_key = Key::new(b"another secret").sign(&claims("alice", later));
    let expired = key().sign(&claims("alice", now() - 1));
    let expires_now = key().sign(&claims("alice", now()));
    let no_exp = key().sign(&Claims {
        sub: Some("alice".into()),
        ..Default::default()
    });
    let not_yet = key().sign(&Claims {
        nbf: Some(now() + 10),
        ..claims("alice", later)
    });
    let crit = sign_raw(
        r#"{"alg":"HS256","crit":["exp-ext"],"exp-ext":1}"#,
        &format!(r#"{{"exp":{later}}}"#),
    );
    let padded = format!("{good}=");
    let cases: Vec<(&str, String, JwtError)> = vec![
        ("empty", String::new(), JwtError::Malformed("")),
        ("one part", "abc".into(), JwtError::Malformed("")),
        ("garbage parts", "a.b.c".into(), JwtError::Malformed("")),
        ("four parts", format!("{good}.x"), JwtError::Malformed("")),
        ("alg none", none, JwtError::Algorithm),
        (
            "alg none with a signature",
            none_signed,
            JwtError::Algorithm,
        ),
        ("alg HS512", hs512, JwtError::Algorithm),
        ("alg RS256 without a JWKS", rs256, JwtError::Algorithm),
        ("alg hs256", lower, JwtError::Algorithm),
        ("payload swapped", forged_payload, JwtError::Signature),
        ("wrong key", other_key, JwtError::Signature),
        ("expired", expired, JwtError::Expired),
        ("exp is now", expires_now, JwtError::Expired),
        ("no exp", no_exp, JwtError::NoExpiry),
        ("nbf in the future", not_yet, JwtError::NotYetValid),
        ("crit extension", crit, JwtError::Malformed("")),
        ("padding", padded, JwtError::Malformed("")),
        ("too long", "a".repeat(MAX_TOKEN_LEN + 1), JwtError::TooLong),
    ];
    for (what, token, want) in cases {
        let got = key().verify(&token).expect_err(what);
        assert_eq!(
            std::mem::discriminant(&got),
            std::mem::discriminant(&want),
            "{what}: {got}"
        );
    }
}

#[test]
fn dates_must_be_numbers() {
    let frac = sign_raw(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"exp":{}.5}}"#, now() + 5),
    );
    assert_eq!(key().verify(&frac).unwrap().exp, Some(now() + 5));
    for payload in [r#"{"exp":-5}"#, r#"{"exp":"soon"}"#, r#"{"exp":null}"#] {
        assert!(
            key()
                .verify(&sign_raw(r#"{"alg":"HS256"}"#, payload))
                .is_err(),
            "{payload}"
        );
    }
    let bad_nbf = sign_raw(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"exp":{},"nbf":"x"}}"#, now() + 5),
    );
    assert!(key().verify(&bad_nbf).is_err());
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let verifier = Verifier::new(VerifierOptions {
        secret: Some(key()),
        issuer: Some("https://id.example.com/".into()),
        audience: Some("livewire".into()),
        ..Default::default()
    })
    .unwrap()
    .unwrap();
    let with = |iss: Option<&str>, aud: Option<serde_json::Value>| {
        let mut payload = serde_json::json!({ "sub": "alice", "exp": now() + 60 });
        if let Some(iss) = iss {
            payload["iss"] = iss.into();
        }
        if let Some(aud) = aud {
            payload["aud"] = aud;
        }
        verifier.verify(&sign_raw(r#"{"alg":"HS256"}"#, &payload.to_string()))
    };
    let iss = Some("https://id.example.com/");
    assert!(with(iss, Some("livewire".into())).is_ok());
    assert!(with(iss, Some(serde_json::json!(["other", "livewire"]))).is_ok());
    assert_eq!(
        with(Some("https://evil.example.com/"), Some("livewire".into())),
        Err(JwtError::Issuer)
    );
    assert_eq!(with(None, Some("livewire".into())), Err(JwtError::Issuer));
    assert_eq!(with(iss, Some("other".into())), Err(JwtError::Audience));
    assert_eq!(with(iss, None), Err(JwtError::Audience));
    // Without --jwt-audience a token's aud is not a reason to refuse it.
    let plain = key().verify(&sign_raw(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"exp":{},"aud":"anyone","iss":"x"}}"#, now() + 60),
    ));
    assert!(plain.is_ok(), "{plain:?}");
}

#[test]
fn videos_claim() {
    let mut c = claims("v", now() + 1);
    assert!(!c.allows_video("a"));
    c.videos = Some(vec!["a".into(), "b".into()]);
    assert!(c.allows_video("b") && !c.allows_video("c"));
    c.videos = Some(vec!["*".into()]);
    assert!(c.allows_video("anything"));
    assert!(!c.is_moderator());
}

#[test]
fn debug_hides_the_secret() {
    assert!(!format!("{:?}", key()).contains("0123"));
    assert!(!format!("{:?}", Verifier::from_secret(key())).contains("0123"));
    assert!("".parse::<Key>().is_err());
}

#[test]
fn bad_jwks_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    // A real Ed25519 public key (RFC 8037 A.2).
    let ed = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed"}"#;
    let cases = [
        ("not json", "{".to_owned(), "not a JWK set"),
        ("no keys", r#"{"keys":[]}"#.to_owned(), "no keys"),
        (
            "a symmetric key",
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#.to_owned(),
            "symmetric",
        ),
        (
            "no kid",
            format!(r#"{{"keys":[{}]}}"#, ed.replace(r#","kid":"ed""#, "")),
            "no kid",
        ),
        (
            "duplicate kid",
            format!(r#"{{"keys":[{ed},{ed}]}}"#),
            "duplicate kid",
        ),
        (
            "a small RSA key",
            r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r"}]}"#.to_owned(),
            "2048",
        ),
        (
            "alg of another family",
            format!(
                r#"{{"keys":[{}]}}"#,
                ed.replace(r#""kid""#, r#""alg":"RS256","kid""#)
            ),
            "does not match",
        ),
        (
            "an encryption key",
            format!(
                r#"{{"keys":[{}]}}"#,
                ed.replace(r#""kid""#, r#""use":"enc","kid""#)
            ),
            "encryption",
        ),
        (
            "a point not on the curve",
            r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"e"}]}"#.to_owned(),
            "does not decode",
        ),
    ];
    for (what, content, want) in cases {
        std::fs::write(&path, content).unwrap();
        let e = Verifier::new(VerifierOptions {
            jwks: Some(path.clone()),
            ..Default::default()
        })
        .err()
        .unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(e.to_string().contains(want), "{what}: {e}");
    }
    let missing = Verifier::new(VerifierOptions {
        jwks: Some(dir.path().join("missing.json")),
        ..Default::default()
    });
    assert!(matches!(missing, Err(JwksError::Read { .. })));

    std::fs::write(&path, format!(r#"{{"keys":[{ed}]}}"#)).unwrap();
    let v = Verifier::new(VerifierOptions {
        jwks: Some(path.clone()),
        ..Default::default()
    })
    .unwrap()
    .unwrap();
    assert_eq!(v.kids(), ["ed"]);
    // Without a secret, HS256 is refused: no key confusion with the public keys.
    assert_eq!(
        v.verify(&key().sign(&claims("a", now() + 60))),
        Err(JwtError::Algorithm)
    );
    // A reload of a broken file keeps the keys in force.
    std::fs::write(&path, "{").unwrap();
    assert!(v.reload().is_err());
    assert_eq!(v.kids(), ["ed"]);
    assert!(
        !v.reload().unwrap(),
        "the same broken content is reported once"
    );
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(token in ".{0,300}") {
        let _ = key().verify(&token);
    }

    #[test]
    fn arbitrary_three_part_tokens_never_panic(
        a in "[A-Za-z0-9_=+/-]{0,80}",
        b in "[A-Za-z0-9_=+/-]{0,80}",
        c in "[A-Za-z0-9_=+/-]{0,80}",
    ) {
        let _ = key().verify(&format!("{a}.{b}.{c}"));
    }

    #[test]
    fn any_changed_byte_is_refused(
        sub in "[A-Za-z0-9_-]{1,64}",
        at in any::<prop::sample::Index>(),
        with in any::<u8>(),
    ) {
        let token = key().sign(&claims(&sub, now() + 60));
        let mut bytes = token.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != with);
        bytes[i] = with;
        let tampered = String::from_utf8_lossy(&bytes);
        // The last character of a base64url part carries bits that decoders ignore; the
        // crate's decoder refuses non-zero ones, so every change is still refused.
        prop_assert!(key().verify(&tampered).is_err(), "{tampered}");
    }

    #[test]
    fn signed_claims_round_trip(
        sub in proptest::option::of(".{0,40}"),
        exp in now() + 60..u64::MAX / 2,
        videos in proptest::option::of(proptest::collection::vec(".{0,10}", 0..4)),
        role in proptest::option::of("[a-z]{0,10}"),
    ) {
        let c = Claims { sub, exp: Some(exp), videos, role, ..Default::default() };
        prop_assert_eq!(key().verify(&key().sign(&c)), Ok(c));
    }
}
