//! JSON Web Tokens (RFC 7519), verified with the `jsonwebtoken` crate: a [`Verifier`]
//! built from `--jwt-secret` (HS256, a [`Key`]), `--jwt-jwks FILE` (a JWK set of public
//! keys, RS256 / ES256 / EdDSA, the header's `kid` picks one), or both, and optionally
//! `--jwt-issuer` / `--jwt-audience`.
//!
//! What is refused, in this order, so nothing an attacker sends is trusted before the
//! signature is checked: a token over [`MAX_TOKEN_LEN`] bytes; anything but three
//! base64url parts (padding, stray bits and garbage are malformed); a header whose `alg`
//! is not the one of the key it asks for (`none`, `HS512`, HS256 without a secret, RS256
//! against the HMAC secret: "key confusion"), an unknown `kid`, or a `crit` extension;
//! a bad signature; then the claims: `exp` is required and must not be past (no leeway:
//! keep clocks in sync), `nbf` must not be in the future, `iss` and `aud` must match when
//! configured. A JWKS file is re-read on SIGHUP and whenever its content changes
//! ([`Verifier::watch`]), so an identity provider's keys rotate without a restart; a file
//! that does not parse keeps the keys in force and is logged.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Deserializer, Serialize};

/// Longest token accepted; anything longer is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Shortest `--jwt-secret` the services start with: RFC 7518 §3.2 requires an HS256 key
/// of at least the hash's size, 256 bits.
pub const MIN_SECRET_LEN: usize = 32;

/// Largest JWKS file read.
const MAX_JWKS_LEN: u64 = 1024 * 1024;

/// Smallest RSA modulus accepted in a JWKS (bytes): 2048 bits.
const MIN_RSA_MODULUS: usize = 256;

/// How often [`Verifier::watch`] looks at the JWKS file for a change.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Why a token was refused. The messages are safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token algorithm is not accepted")]
    Algorithm,
    #[error("token key id (kid) is missing or unknown")]
    UnknownKey,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has no exp claim")]
    NoExpiry,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    Issuer,
    #[error("token audience is not accepted")]
    Audience,
}

/// The claims the services read; others are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user the token speaks for (publisher; the member on `/v1/stream`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, seconds since the UNIX epoch; required. A viewer's stream ends then.
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
    /// The caller's role: `"moderator"` may moderate (publisher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Conversations the user is a member of: the publisher takes their typing and read
    /// receipts only in these (`"*"` is not special: each is listed by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<Vec<String>>,
}

impl Claims {
    /// True if the `videos` claim lists `video` or `"*"`.
    pub fn allows_video(&self, video: &str) -> bool {
        self.videos.iter().flatten().any(|v| v == "*" || v == video)
    }

    /// True if the token's `role` is `"moderator"`.
    pub fn is_moderator(&self) -> bool {
        self.role.as_deref() == Some("moderator")
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

/// The shared secret of HS256 (`--jwt-secret`); `Debug` never shows it.
#[derive(Clone)]
pub struct Key(Arc<[u8]>);

impl Key {
    pub fn new(secret: &[u8]) -> Self {
        Key(secret.into())
    }

    /// Length of the secret in bytes (at least [`MIN_SECRET_LEN`] on the command line).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Signs `claims` as an HS256 token (tests, `--dev-tokens`).
    pub fn sign(&self, claims: &Claims) -> String {
        EncodingKey::from_secret(&self.0)
            .and_then(|k| jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &k))
            .expect("HS256 signs with any non-empty key and claims serialize")
    }

    /// Verifies an HS256 `token` with this secret alone (no issuer or audience).
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        Verifier::from_secret(self.clone()).verify(token)
    }

    fn decoding_key(&self) -> Option<DecodingKey> {
        DecodingKey::from_secret(&self.0).ok()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} bytes, redacted>)", self.0.len())
    }
}

/// Parses a secret given on the command line; an empty secret is refused (the length
/// is checked with the rest of the configuration, see [`MIN_SECRET_LEN`]).
impl FromStr for Key {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("the JWT secret must not be empty".into());
        }
        Ok(Key::new(s.as_bytes()))
    }
}

/// Why a JWKS file cannot be used. Said at start (exit 64) or logged on a reload.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is larger than 1 MiB", .0.display())]
    TooLarge(PathBuf),
    #[error("{} is not a JWK set: {reason}", path.display())]
    Json { path: PathBuf, reason: String },
    #[error("{} has no keys", .0.display())]
    Empty(PathBuf),
    #[error("{}: key {index}: {reason}", path.display())]
    Key {
        path: PathBuf,
        index: usize,
        reason: String,
    },
}

/// The keys of a JWKS file, by `kid`, each with the one algorithm it verifies.
struct KeySet {
    by_kid: HashMap<String, (Algorithm, DecodingKey)>,
}

impl KeySet {
    fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.by_kid.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

/// Parses a JWK set of public keys. Refused: symmetric (`oct`) keys (that is what
/// `--jwt-secret` is for), encryption keys (`"use": "enc"`), keys without a `kid` or with
/// a duplicate one, RSA keys under 2048 bits, curves other than P-256/P-384/Ed25519, and
/// keys that do not decode.
fn parse_jwks(path: &Path, bytes: &[u8]) -> Result<KeySet, JwksError> {
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| JwksError::Json {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if set.keys.is_empty() {
        return Err(JwksError::Empty(path.into()));
    }
    let mut by_kid = HashMap::new();
    for (index, jwk) in set.keys.iter().enumerate() {
        let bad = |reason: &str| JwksError::Key {
            path: path.into(),
            index,
            reason: reason.into(),
        };
        let kid = jwk
            .common
            .key_id
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| bad("no kid"))?;
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err(bad("an encryption key (\"use\": \"enc\")"));
        }
        let inferred = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err(bad("EC keys must be on P-256 or P-384")),
            },
            AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                EllipticCurve::Ed25519 => Algorithm::EdDSA,
                _ => return Err(bad("OKP keys must be Ed25519")),
            },
            AlgorithmParameters::OctetKey(_) => {
                return Err(bad(
                    "a symmetric (oct) key: a JWKS holds public keys; use --jwt-secret for HS256",
                ));
            }
            _ => return Err(bad("unsupported key type")),
        };
        let alg = match jwk.common.key_algorithm {
            None => inferred,
            Some(declared) => {
                let alg = key_algorithm(declared).ok_or_else(|| bad("unsupported alg"))?;
                if alg.family() != inferred.family()
                    || (inferred.family() == jsonwebtoken::AlgorithmFamily::Ec && alg != inferred)
                {
                    return Err(bad("alg does not match the key type"));
                }
                alg
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(&e.to_string()))?;
        if let jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. } = key.kind() {
            let bits = n.iter().skip_while(|b| **b == 0).count();
            if bits < MIN_RSA_MODULUS {
                return Err(bad("RSA keys must be at least 2048 bits"));
            }
        }
        // Builds the verifier once, which decodes the key (EC points, Ed25519 keys).
        jsonwebtoken::crypto::verify("AA", b"probe", &key, alg)
            .map_err(|_| bad("the key does not decode"))?;
        if by_kid.insert(kid, (alg, key)).is_some() {
            return Err(bad("duplicate kid"));
        }
    }
    Ok(KeySet { by_kid })
}

/// The asymmetric algorithms a JWKS key may declare.
fn key_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

fn read_jwks(path: &Path) -> Result<Vec<u8>, JwksError> {
    let read = |source| JwksError::Read {
        path: path.into(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_JWKS_LEN {
        return Err(JwksError::TooLarge(path.into()));
    }
    std::fs::read(path).map_err(read)
}

/// A JWKS file and the keys last read from it.
struct Jwks {
    path: PathBuf,
    // std locks: held for a clone of an `Arc` or a byte comparison, never across `.await`.
    keys: RwLock<Arc<KeySet>>,
    content: std::sync::Mutex<Vec<u8>>,
}

/// Where the keys come from and what the claims must say; see the module doc.
#[derive(Debug, Clone, Default)]
pub struct VerifierOptions {
    pub secret: Option<Key>,
    pub jwks: Option<PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Verifies tokens; cheap to clone (the keys are shared, and rotate in place).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &self.inner.secret.as_ref().map(|_| "<redacted>"))
            .field("jwks", &self.inner.jwks.as_ref().map(|j| &j.path))
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish()
    }
}

impl Verifier {
    /// The verifier of these options, `None` if neither a secret nor a JWKS is given
    /// (auth off). Reads the JWKS file once; see [`Verifier::watch`] for reloads.
    pub fn new(options: VerifierOptions) -> Result<Option<Verifier>, JwksError> {
        if options.secret.is_none() && options.jwks.is_none() {
            return Ok(None);
        }
        let jwks = match options.jwks {
            Some(path) => {
                let content = read_jwks(&path)?;
                let keys = parse_jwks(&path, &content)?;
                Some(Jwks {
                    path,
                    keys: RwLock::new(Arc::new(keys)),
                    content: std::sync::Mutex::new(content),
                })
            }
            None => None,
        };
        Ok(Some(Verifier {
            inner: Arc::new(Inner {
                secret: options.secret.as_ref().and_then(Key::decoding_key),
                jwks,
                issuer: options.issuer,
                audience: options.audience,
            }),
        }))
    }

    /// HS256 with `secret`, nothing else checked beyond the token itself.
    pub fn from_secret(secret: Key) -> Verifier {
        Verifier::new(VerifierOptions {
            secret: Some(secret),
            ..Default::default()
        })
        .expect("no file to read")
        .expect("a secret is given")
    }

    /// The `kid`s of the JWKS keys in force (sorted), empty without `--jwt-jwks`.
    pub fn kids(&self) -> Vec<String> {
        match &self.inner.jwks {
            Some(j) => {
                let keys = read_lock(&j.keys);
                keys.kids().into_iter().map(Into::into).collect()
            }
            None => Vec::new(),
        }
    }

    /// Re-reads the JWKS file: `Ok(true)` if its content changed and the new keys are in
    /// force, `Ok(false)` if unchanged (or no JWKS), `Err` if it cannot be used (the old
    /// keys stay in force).
    pub fn reload(&self) -> Result<bool, JwksError> {
        let Some(jwks) = &self.inner.jwks else {
            return Ok(false);
        };
        let content = read_jwks(&jwks.path)?;
        let mut last = jwks.content.lock().unwrap_or_else(|e| e.into_inner());
        if *last == content {
            return Ok(false);
        }
        let keys = parse_jwks(&jwks.path, &content);
        // Remembered even when it fails, so a bad file is reported once, not every poll.
        *last = content;
        drop(last);
        let keys = keys?;
        *jwks.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(true)
    }

    /// With `--jwt-jwks`: re-reads the file on SIGHUP and whenever its content changes
    /// (looked at every second; polling is portable, works for a file replaced by a
    /// rename as secret managers do, and costs one small read a second). The task ends
    /// when the last clone of this verifier is dropped.
    pub fn watch(&self) {
        if self.inner.jwks.is_none() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let signalled = tokio::select! {
                    _ = tokio::time::sleep(WATCH_INTERVAL) => false,
                    Some(()) = async {
                        match hangup.as_mut() {
                            Some(h) => h.recv().await,
                            None => std::future::pending().await,
                        }
                    } => true,
                };
                let Some(inner) = weak.upgrade() else { break };
                let verifier = Verifier { inner };
                match verifier.reload() {
                    Ok(true) => {
                        metrics::counter!("jwt_jwks_reloads_total").increment(1);
                        tracing::info!(kids = ?verifier.kids(), "JWKS reloaded");
                    }
                    Ok(false) if signalled => {
                        tracing::info!(kids = ?verifier.kids(), "SIGHUP: JWKS unchanged")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        metrics::counter!("jwt_jwks_reload_errors_total").increment(1);
                        tracing::error!(error = %e, "JWKS not reloaded; the previous keys stay in force");
                    }
                }
            }
        });
    }

    /// Verifies `token` against the current time.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLong);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| header_error(token, e))?;
        let inner = &self.inner;
        let (alg, key) = if header.alg == Algorithm::HS256 {
            let key = inner.secret.clone().ok_or(JwtError::Algorithm)?;
            (Algorithm::HS256, key)
        } else {
            let jwks = inner.jwks.as_ref().ok_or(JwtError::Algorithm)?;
            let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
            let keys = read_lock(&jwks.keys);
            let (alg, key) = keys.by_kid.get(kid).ok_or(JwtError::UnknownKey)?;
            if *alg != header.alg {
                return Err(JwtError::Algorithm);
            }
            (*alg, key.clone())
        };
        let mut validation = Validation::new(alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = inner.audience.is_some();
        if let Some(aud) = &inner.audience {
            validation.set_audience(&[aud]);
        }
        if let Some(iss) = &inner.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        if inner.audience.is_some() {
            validation.required_spec_claims.insert("aud".into());
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(claims_error)?
            .claims;
        // RFC 7519 §4.1.4: not accepted *on or after* exp; the crate accepts exp == now.
        if claims
            .exp
            .is_none_or(|exp| exp <= jsonwebtoken::get_current_timestamp())
        {
            return Err(JwtError::Expired);
        }
        Ok(claims)
    }
}

fn read_lock<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A header that does not decode: an unknown `alg` (`none`, `hs256`) is an algorithm
/// refusal, anything else malformed.
fn header_error(token: &str, e: jsonwebtoken::errors::Error) -> JwtError {
    use base64::Engine as _;
    let alg_is_a_string = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .is_some_and(|h| h.get("alg").is_some_and(|a| a.is_string()));
    match e.kind() {
        ErrorKind::Json(_) if alg_is_a_string => JwtError::Algorithm,
        ErrorKind::InvalidToken => JwtError::Malformed("expected three dot-separated parts"),
        ErrorKind::Base64(_) => JwtError::Malformed("a part is not base64url"),
        _ => JwtError::Malformed("header is not a JSON object with a known alg"),
    }
}

fn claims_error(e: jsonwebtoken::errors::Error) -> JwtError {
    match e.kind() {
        ErrorKind::InvalidSignature => JwtError::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => JwtError::Algorithm,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::Issuer,
        ErrorKind::InvalidAudience => JwtError::Audience,
        ErrorKind::MissingRequiredClaim(c) if c == "exp" => JwtError::NoExpiry,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => JwtError::Issuer,
        ErrorKind::MissingRequiredClaim(_) => JwtError::Audience,
        ErrorKind::InvalidToken => JwtError::Malformed("unsupported header (crit, b64)"),
        ErrorKind::Base64(_) => JwtError::Malformed("a part is not base64url"),
        ErrorKind::InvalidClaimFormat(_) => JwtError::Malformed("a date claim is not a number"),
        ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEddsaKey => JwtError::Signature,
        _ => JwtError::Malformed("claims are not a valid JSON object"),
    }
}

#[cfg(test)]
mod tests;
