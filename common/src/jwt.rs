//! HS256 JSON Web Tokens (RFC 7519), the only kind the services accept: a [`Key`] made
//! from `--jwt-secret` signs and verifies them.
//!
//! Verification is strict and runs in this order, so nothing an attacker sends is
//! trusted before the signature is checked: at most [`MAX_TOKEN_LEN`] bytes, exactly
//! three base64url parts (no padding, no stray bits), a header whose `alg` is `HS256`
//! (`none`, other algorithms and `crit` extensions are refused), an HMAC-SHA256
//! signature compared in constant time, then the claims: `exp` is required and must be
//! in the future, `nbf` (if present) in the past.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted; anything longer is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Why a token was refused. The messages are safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token algorithm must be HS256")]
    Algorithm,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has no exp claim")]
    NoExpiry,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
}

/// The claims the services read; others are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user the token speaks for (publisher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, seconds since the UNIX epoch; required.
    #[serde(
        default,
        deserialize_with = "numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub exp: Option<u64>,
    /// Not before, seconds since the UNIX epoch.
    #[serde(
        default,
        deserialize_with = "numeric_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub nbf: Option<u64>,
    /// Videos a viewer may watch (frontend); `"*"` is any video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub videos: Option<Vec<String>>,
    /// The user's role (publisher): `"moderator"` may delete comments, ban users and set
    /// slow mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl Claims {
    /// True if the `videos` claim lists `video` or `"*"`.
    pub fn allows_video(&self, video: &str) -> bool {
        self.videos.iter().flatten().any(|v| v == "*" || v == video)
    }
}

/// A NumericDate: a JSON number of seconds, possibly fractional; negative means 0.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    Ok(Some(match n.as_u64() {
        Some(secs) => secs,
        None => n.as_f64().map_or(0, |f| f.max(0.0).floor() as u64),
    }))
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The shared secret of HS256; `Debug` never shows it.
#[derive(Clone)]
pub struct Key(Arc<[u8]>);

impl Key {
    pub fn new(secret: &[u8]) -> Self {
        Key(secret.into())
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }

    /// Length of the secret in bytes (HS256 wants at least 32).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Signs `claims` as an HS256 token.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Verifies `token` against the current time.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_at(token, now)
    }

    /// Verifies `token` as of `now` (seconds since the UNIX epoch).
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("expected three dot-separated parts"));
        };
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        let header: Header = serde_json::from_slice(&decode(header_b64)?)
            .map_err(|_| JwtError::Malformed("header is not a JSON object with alg"))?;
        if header.alg != "HS256" {
            return Err(JwtError::Algorithm);
        }
        if header.crit.is_some() {
            return Err(JwtError::Malformed("unsupported crit header"));
        }
        let signature = decode(signature_b64)?;
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::Signature)?;
        let claims: Claims = serde_json::from_slice(&decode(payload_b64)?)
            .map_err(|_| JwtError::Malformed("claims are not a valid JSON object"))?;
        let exp = claims.exp.ok_or(JwtError::NoExpiry)?;
        if exp <= now {
            return Err(JwtError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }
}

fn decode(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed("a part is not base64url"))
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} bytes, redacted>)", self.0.len())
    }
}

/// Parses a secret given on the command line; an empty secret is refused.
impl FromStr for Key {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("the JWT secret must not be empty".into());
        }
        Ok(Key::new(s.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_800_000_000;

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

    #[test]
    fn a_signed_token_verifies() {
        let token = key().sign(&claims("alice", NOW + 60));
        assert_eq!(key().verify_at(&token, NOW), Ok(claims("alice", NOW + 60)));
        assert_eq!(
            key()
                .verify(&key().sign(&claims("a", u64::MAX)))
                .unwrap()
                .sub
                .as_deref(),
            Some("a")
        );
    }

    #[test]
    fn every_kind_of_bad_token_is_refused() {
        let good = key().sign(&claims("alice", NOW + 60));
        let (_, rest) = good.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();
        let none = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
        let none_signed = format!("{}.{payload}.{signature}", b64(r#"{"alg":"none"}"#));
        let hs512 = format!("{}.{payload}.{signature}", b64(r#"{"alg":"HS512"}"#));
        let lower = format!("{}.{payload}.{signature}", b64(r#"{"alg":"hs256"}"#));
        let forged_payload = format!(
            "{}.{}.{signature}",
            good.split('.').next().unwrap(),
            b64(&format!(r#"{{"sub":"mallory","exp":{}}}"#, NOW + 60))
        );
        let other_key = Key::new(b"another secret").sign(&claims("alice", NOW + 60));
        let expired = key().sign(&claims("alice", NOW));
        let no_exp = key().sign(&Claims {
            sub: Some("alice".into()),
            ..Default::default()
        });
        let not_yet = key().sign(&Claims {
            nbf: Some(NOW + 10),
            ..claims("alice", NOW + 60)
        });
        let padded = format!("{good}=");
        let cases: Vec<(&str, String, JwtError)> = vec![
            ("empty", String::new(), JwtError::Malformed("")),
            ("one part", "abc".into(), JwtError::Malformed("")),
            ("four parts", format!("{good}.x"), JwtError::Malformed("")),
            ("alg none", none, JwtError::Algorithm),
            (
                "alg none with a signature",
                none_signed,
                JwtError::Algorithm,
            ),
            ("alg HS512", hs512, JwtError::Algorithm),
            ("alg hs256", lower, JwtError::Algorithm),
            ("payload swapped", forged_payload, JwtError::Signature),
            ("wrong key", other_key, JwtError::Signature),
            ("expired", expired, JwtError::Expired),
            ("no exp", no_exp, JwtError::NoExpiry),
            ("nbf in the future", not_yet, JwtError::NotYetValid),
            ("padding", padded, JwtError::Malformed("")),
            ("too long", "a".repeat(MAX_TOKEN_LEN + 1), JwtError::TooLong),
        ];
        for (what, token, want) in cases {
            let got = key().verify_at(&token, NOW).expect_err(what);
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&want),
                "{what}: {got}"
            );
        }
    }

    #[test]
    fn fractional_and_negative_dates_are_read() {
        let sign_raw = |payload: &str| {
            let input = format!("{}.{}", b64(r#"{"alg":"HS256"}"#), b64(payload));
            let mut mac = key().mac();
            mac.update(input.as_bytes());
            format!(
                "{input}.{}",
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            )
        };
        let frac = sign_raw(&format!(r#"{{"exp":{}.5}}"#, NOW + 1));
        assert_eq!(key().verify_at(&frac, NOW).unwrap().exp, Some(NOW + 1));
        let negative = sign_raw(r#"{"exp":-5}"#);
        assert_eq!(key().verify_at(&negative, NOW), Err(JwtError::Expired));
        let string_exp = sign_raw(r#"{"exp":"soon"}"#);
        assert!(matches!(
            key().verify_at(&string_exp, NOW),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn videos_claim() {
        let mut c = claims("v", NOW + 1);
        assert!(!c.allows_video("a"));
        c.videos = Some(vec!["a".into(), "b".into()]);
        assert!(c.allows_video("b") && !c.allows_video("c"));
        c.videos = Some(vec!["*".into()]);
        assert!(c.allows_video("anything"));
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", key()).contains("0123"));
        assert!("".parse::<Key>().is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(token in ".{0,300}") {
            let _ = key().verify_at(&token, NOW);
        }

        #[test]
        fn arbitrary_three_part_tokens_never_panic(
            a in "[A-Za-z0-9_=+/-]{0,80}",
            b in "[A-Za-z0-9_=+/-]{0,80}",
            c in "[A-Za-z0-9_=+/-]{0,80}",
        ) {
            let _ = key().verify_at(&format!("{a}.{b}.{c}"), NOW);
        }

        #[test]
        fn any_changed_byte_is_refused(
            sub in "[A-Za-z0-9_-]{1,64}",
            at in any::<prop::sample::Index>(),
            with in any::<u8>(),
        ) {
            let token = key().sign(&claims(&sub, NOW + 60));
            let mut bytes = token.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != with);
            bytes[i] = with;
            let tampered = String::from_utf8_lossy(&bytes);
            prop_assert!(key().verify_at(&tampered, NOW).is_err(), "{tampered}");
        }

        #[test]
        fn signed_claims_round_trip(
            sub in proptest::option::of(".{0,40}"),
            exp in NOW + 1..u64::MAX,
            videos in proptest::option::of(proptest::collection::vec(".{0,10}", 0..4)),
        ) {
            let c = Claims { sub, exp: Some(exp), nbf: None, videos, role: None };
            prop_assert_eq!(key().verify_at(&key().sign(&c), NOW), Ok(c));
        }
    }
}
