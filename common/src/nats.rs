//! The NATS connection: command-line options shared by every service (URLs, credentials,
//! TLS) and a connect function with jittered reconnect delays, so a fleet does not
//! reconnect in lockstep.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;

/// `--nats`, `--nats-creds`, `--nats-user`, `--nats-password`, `--nats-tls-ca` (and their
/// env variables).
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URLs, comma separated.
    #[arg(
        long = "nats",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        value_delimiter = ','
    )]
    pub urls: Vec<String>,
    /// A NATS credentials file (JWT + nkey seed).
    #[arg(long = "nats-creds", env = "NATS_CREDS")]
    pub creds: Option<PathBuf>,
    /// NATS user (with --nats-password).
    #[arg(long = "nats-user", env = "NATS_USER")]
    pub user: Option<String>,
    /// NATS password (with --nats-user).
    #[arg(long = "nats-password", env = "NATS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// A PEM file of the CA that signed the NATS servers' certificates; with it the
    /// connection must be TLS and the server is verified against this CA only.
    #[arg(long = "nats-tls-ca", env = "NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

impl NatsArgs {
    /// Options for a local server without auth, e.g. in tests.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            creds: None,
            user: None,
            password: None,
            tls_ca: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid NATS options: {0}")]
    Options(String),
    #[error("cannot connect to NATS at {urls}: {source}")]
    Connect {
        urls: String,
        source: async_nats::ConnectError,
    },
}

/// The reconnect delay after `attempts` failed attempts: exponential up to 2 s, then
/// jittered by ±50 % so a fleet of clients spreads out.
pub fn reconnect_delay(attempts: usize) -> Duration {
    let base_ms = (50u64 << attempts.min(6)).min(2_000);
    let jitter = rand::rng().random_range(0.5..1.5);
    Duration::from_millis((base_ms as f64 * jitter) as u64)
}

/// Connects with the given options; `name` shows up in the server's `/connz`.
///
/// `resets`, if given, is bumped whenever messages may have been missed: on every
/// reconnect and whenever the client dropped messages as a slow consumer. Subscribers
/// that must not miss anything watch it and catch up from JetStream.
pub async fn connect(
    args: &NatsArgs,
    name: &str,
    resets: Option<watch::Sender<u64>>,
) -> Result<async_nats::Client, ConnectError> {
    let resets = resets.map(Arc::new);
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .reconnect_delay_callback(reconnect_delay)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            let resets = resets.clone();
            async move {
                let bump = || {
                    if let Some(r) = &resets {
                        r.send_modify(|n| *n += 1);
                    }
                };
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("NATS connected");
                        bump();
                    }
                    async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                    async_nats::Event::SlowConsumer(sid) => {
                        metrics::counter!("nats_slow_consumer_total").increment(1);
                        tracing::warn!(sid, "NATS slow consumer: messages dropped");
                        bump();
                    }
                    other => tracing::info!(event = %other, "NATS event"),
                }
            }
        });
    if let Some(creds) = &args.creds {
        options = options.credentials_file(creds).await.map_err(|e| {
            ConnectError::Options(format!("credentials file {}: {e}", creds.display()))
        })?;
    }
    match (&args.user, &args.password) {
        (Some(u), Some(p)) => options = options.user_and_password(u.clone(), p.clone()),
        (None, None) => {}
        _ => {
            return Err(ConnectError::Options(
                "--nats-user and --nats-password go together".into(),
            ));
        }
    }
    if let Some(ca) = &args.tls_ca {
        if !ca.is_file() {
            return Err(ConnectError::Options(format!(
                "TLS CA file {} does not exist",
                ca.display()
            )));
        }
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let urls = args.urls.join(",");
    let addrs: Vec<async_nats::ServerAddr> = args
        .urls
        .iter()
        .map(|u| u.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| ConnectError::Options(format!("NATS URL: {e}")))?;
    let client = options
        .connect(addrs.as_slice())
        .await
        .map_err(|source| ConnectError::Connect { urls, source })?;
    Ok(client)
}
