//! A stand-in identity provider for tests: signing keys made by `openssl` (RS256, ES256,
//! EdDSA), the JWK set of their public halves written to a file the services read with
//! `--jwt-jwks`, and tokens signed with any of them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tempfile::TempDir;

pub struct IdpKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub public: Jwk,
    /// The private key as PEM (what openssl wrote).
    pub pem: Vec<u8>,
}

/// Keys and a JWKS file in a temporary folder.
pub struct Idp {
    dir: TempDir,
    pub keys: Vec<IdpKey>,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Default for Idp {
    fn default() -> Self {
        Self::new()
    }
}

impl Idp {
    pub fn new() -> Idp {
        Idp {
            dir: tempfile::tempdir().expect("tempdir"),
            keys: Vec::new(),
        }
    }

    /// Makes a new signing key with openssl.
    pub fn add(&mut self, kid: &str, alg: Algorithm) -> &IdpKey {
        let pem_path = self.dir.path().join(format!("{kid}.pem"));
        let spec: &[&str] = match alg {
            Algorithm::RS256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Algorithm::ES256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Algorithm::EdDSA => &["-algorithm", "ed25519"],
            other => panic!("no openssl recipe for {other:?}"),
        };
        let out = Command::new("openssl")
            .arg("genpkey")
            .args(spec)
            .arg("-out")
            .arg(&pem_path)
            .output()
            .expect("run openssl (install it: apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl genpkey: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = std::fs::read(&pem_path).unwrap();
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .expect("openssl's PEM loads");
        let mut public = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
        public.common.key_id = Some(kid.into());
        self.keys.push(IdpKey {
            kid: kid.into(),
            alg,
            encoding,
            public,
            pem,
        });
        self.keys.last().unwrap()
    }

    pub fn key(&self, kid: &str) -> &IdpKey {
        self.keys
            .iter()
            .find(|k| k.kid == kid)
            .unwrap_or_else(|| panic!("no key {kid}"))
    }

    pub fn jwks_path(&self) -> PathBuf {
        self.dir.path().join("jwks.json")
    }

    /// Writes the public keys `kids` to the JWKS file, replacing it atomically (a new file
    /// renamed over the old one, as secret managers and `kubectl` do).
    pub fn publish(&self, kids: &[&str]) -> PathBuf {
        let set = JwkSet {
            keys: kids.iter().map(|k| self.key(k).public.clone()).collect(),
        };
        let path = self.jwks_path();
        write_atomically(&path, &serde_json::to_vec_pretty(&set).unwrap());
        path
    }

    /// A token signed with `kid`, its header naming `kid`, with these claims.
    pub fn token(&self, kid: &str, claims: &serde_json::Value) -> String {
        let key = self.key(kid);
        let mut header = Header::new(key.alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
    }
}

pub fn write_atomically(path: &Path, content: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
