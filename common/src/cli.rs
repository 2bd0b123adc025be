//! The command line of every binary: parsing, validation, and exit code 64 (`EX_USAGE`
//! of sysexits.h) for any bad flag value, before any port is bound. clap's own errors
//! (unknown flag, unparsable value) exit 2 by default; they are mapped to 64 too, so a
//! script or a supervisor sees one code for "fix the configuration".

use std::process::ExitCode;
use std::time::Duration;

/// Exit code for a bad command line or configuration.
pub const EXIT_USAGE: u8 = 64;

/// A flag whose value cannot be used, and why. Displayed as `invalid --flag: why`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(flag: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            flag,
            message: message.into(),
        }
    }
}

/// Parses the process's arguments into `T`: `--help` and `--version` print and exit 0;
/// any other clap error prints clap's message and exits 64.
pub fn parse<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EXIT_USAGE)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Prints a validation error the way clap prints its own, and gives exit code 64.
pub fn usage_error(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_USAGE)
}

/// `value` must be more than zero.
pub fn positive(flag: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::new(flag, "must be more than 0"));
    }
    Ok(())
}

/// `value` must be at least `min`.
pub fn at_least(flag: &'static str, value: Duration, min: Duration) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(flag, format!("must be at least {min:?}")));
    }
    Ok(())
}

/// A rate (events per second): finite and more than zero, and not below one event a
/// day, so a `Retry-After` stays meaningful.
pub fn rate(flag: &'static str, value: f64) -> Result<(), ConfigError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(ConfigError::new(
            flag,
            format!("{value} is not a rate: must be a number more than 0 (per second)"),
        ));
    }
    if value < 1.0 / 86_400.0 {
        return Err(ConfigError::new(flag, "must be at least one a day"));
    }
    Ok(())
}

/// A count that must be at least `min`.
pub fn count_at_least(flag: &'static str, value: i64, min: i64) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(flag, format!("must be at least {min}")));
    }
    Ok(())
}

/// Checks the token options both services share: a long enough `--jwt-secret`, a usable
/// `--jwt-jwks` file, and `--jwt-issuer`/`--jwt-audience` only with a key to check them.
pub fn jwt(options: &crate::jwt::VerifierOptions) -> Result<(), ConfigError> {
    if let Some(secret) = &options.secret
        && secret.len() < crate::jwt::MIN_SECRET_LEN
    {
        return Err(ConfigError::new(
            "jwt-secret",
            format!(
                "{} bytes is too short for HS256: use at least {} random bytes (e.g. openssl rand -base64 48)",
                secret.len(),
                crate::jwt::MIN_SECRET_LEN
            ),
        ));
    }
    if options.secret.is_none() && options.jwks.is_none() {
        if options.issuer.is_some() {
            return Err(ConfigError::new(
                "jwt-issuer",
                "needs --jwt-secret or --jwt-jwks",
            ));
        }
        if options.audience.is_some() {
            return Err(ConfigError::new(
                "jwt-audience",
                "needs --jwt-secret or --jwt-jwks",
            ));
        }
    }
    for (flag, value) in [
        ("jwt-issuer", &options.issuer),
        ("jwt-audience", &options.audience),
    ] {
        if value.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::new(flag, "must not be empty"));
        }
    }
    crate::jwt::Verifier::new(options.clone())
        .map_err(|e| ConfigError::new("jwt-jwks", e.to_string()))?;
    Ok(())
}

/// `--region` must be one of `--regions` (when given), every name a valid id, none twice.
pub fn regions(region: &str, regions: &[String]) -> Result<(), ConfigError> {
    if !regions.is_empty() && !regions.iter().any(|r| r == region) {
        return Err(ConfigError::new(
            "region",
            format!("{region:?} is not one of --regions {}", regions.join(",")),
        ));
    }
    live_proto::Regions::new(region, regions)
        .map(|_| ())
        .map_err(|e| ConfigError::new("regions", e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(positive("x", Duration::ZERO).is_err());
        assert!(positive("x", Duration::from_millis(1)).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-9] {
            assert!(rate("r", bad).is_err(), "{bad}");
        }
        assert!(rate("r", 0.5).is_ok());
        let e = regions("north", &["east".into(), "west".into()]).unwrap_err();
        assert_eq!(e.flag, "region");
        assert!(e.to_string().starts_with("invalid --region: "), "{e}");
        assert!(regions("east", &["east".into(), "west".into()]).is_ok());
        assert!(regions("local", &[]).is_ok());
        let short = crate::jwt::VerifierOptions {
            secret: Some(crate::jwt::Key::new(b"short")),
            ..Default::default()
        };
        assert_eq!(jwt(&short).unwrap_err().flag, "jwt-secret");
        let iss_alone = crate::jwt::VerifierOptions {
            issuer: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(jwt(&iss_alone).unwrap_err().flag, "jwt-issuer");
    }
}
