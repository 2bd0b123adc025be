//! The frontend's configuration: command-line flags and their environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use live_common::cli::{self, ConfigError};
use live_common::cors::Origins;
use live_common::duration::parse as parse_duration;
use live_common::nats::NatsArgs;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "frontend",
    version,
    allow_negative_numbers = true,
    about = "Holds viewers' SSE connections; subscribes to NATS once per live video"
)]
pub struct Config {
    /// Address to listen on for HTTP.
    #[arg(long, env = "FRONTEND_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub nats: NatsArgs,

    /// Region name (shown in presence messages and logs).
    #[arg(long, env = "REGION", default_value = "local")]
    pub region: String,

    /// Every region of the deployment, in the same order for every service (comma
    /// separated, e.g. "east,west"); empty means just --region. Viewers get comments
    /// and likes of all of them.
    #[arg(long, env = "REGIONS", value_delimiter = ',')]
    pub regions: Vec<String>,

    /// Partitions of the region's write path: comments and likes are stored in this many
    /// JetStream streams, a video always in the same one (`proto/README.md`). The same
    /// value on every service of a region.
    #[arg(long, env = "LIVE_PARTITIONS", default_value = "1")]
    pub partitions: live_proto::Partitions,

    /// JetStream domain to read history from (e.g. "hub"): needed on a leaf server, whose
    /// connection to the region does not carry the plain JetStream API. Unset: the
    /// JetStream of the servers this node connects to.
    #[arg(long, env = "NATS_JS_DOMAIN")]
    pub js_domain: Option<String>,

    /// At most one `likes` event per video per this interval.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub like_interval: Duration,

    /// Heartbeat comment interval (at most 15 s, so proxies keep the stream open).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,

    /// How long a video's subscription outlives its last viewer on this node.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub room_grace: Duration,

    /// On shutdown, viewers' streams are closed spread over this window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,

    /// `retry:` sent to viewers is drawn uniformly from [--retry-min, --retry-max], so
    /// the viewers of a node that dies come back to the others spread over the window:
    /// V viewers over W = max - min seconds arrive at about V/W connects per second
    /// (`frontend/src/retry.rs`). `--retry` is the old name of this flag.
    #[arg(long = "retry-min", alias = "retry", default_value = "2s", value_parser = parse_duration)]
    pub retry: Duration,

    /// The upper end of the `retry:` window (see --retry-min); at least --retry-min, at
    /// most 10 minutes.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub retry_max: Duration,

    /// Comments (and other shared frames) a viewer may fall behind before it is
    /// disconnected (it resumes with Last-Event-ID and loses nothing).
    #[arg(long, default_value_t = 512)]
    pub viewer_queue: usize,

    /// A viewer's socket that accepts no bytes for this long is closed (dead peers,
    /// half-open connections, clients that never read).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// Kernel send buffer per viewer socket in bytes (0: the kernel's autotuning, which
    /// lets one stuck viewer hold megabytes).
    #[arg(long, default_value_t = 256 * 1024)]
    pub send_buffer: usize,

    /// Recent comments kept in memory per video for resuming viewers.
    #[arg(long, default_value_t = 256)]
    pub replay_buffer: usize,

    /// Most comments replayed to one resuming viewer.
    #[arg(long, default_value_t = 10_000)]
    pub max_replay: usize,

    /// Concurrent viewers on this node; beyond it, 503 with Retry-After (0 = no cap).
    #[arg(long, default_value_t = 0)]
    pub max_viewers: usize,

    /// Topics (videos, conversations, watched members) this node holds a room and a
    /// NATS subscription for, of each kind; a stream asking for one more gets 503 with
    /// Retry-After (0 = no cap).
    #[arg(long, default_value_t = 100_000)]
    pub max_rooms: usize,

    /// Require viewers to show `?token=<JWT>` (HS256, signed with this secret) whose
    /// `videos` claim lists the video or "*". Unset: anyone may watch any video.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<live_common::jwt::Key>,

    /// Also accept tokens of an identity provider: a JWK set of public keys (RS256,
    /// ES256, EdDSA); the token header's `kid` picks the key. Re-read on SIGHUP and
    /// whenever the file changes, so keys rotate without a restart.
    #[arg(long, env = "JWT_JWKS")]
    pub jwt_jwks: Option<std::path::PathBuf>,

    /// Tokens must carry this `iss` claim (with --jwt-secret or --jwt-jwks).
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Tokens must carry this `aud` claim (with --jwt-secret or --jwt-jwks).
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// How long the members this node says are online count at the other nodes without
    /// a refresh (refreshed every third of it): a node that dies drops out after this.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub presence_ttl: Duration,

    /// How long the region's publishers count this node's viewers without a refresh
    /// (all of its counts go out every third of it): a node killed with -9 leaves the
    /// totals after this.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub viewers_ttl: Duration,

    /// A member whose last connection closed is announced offline only after this with
    /// none (a reconnect within it shows nothing).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub presence_grace: Duration,

    /// Most topics one `/v1/stream` connection may watch.
    #[arg(long, default_value_t = live_proto::topics::DEFAULT_MAX_TOPICS)]
    pub max_topics: usize,

    /// Origins of pages that may open streams and call this frontend from a browser
    /// (CORS), comma separated (`https://www.example.com,https://app.example.com`:
    /// echoed, credentials allowed); "*" for any origin (no credentials). Unset: none.
    #[arg(long, env = "CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,

    /// Public URL of the publisher, used by the demo page to post likes and comments.
    #[arg(long, env = "PUBLISHER_URL", default_value = "http://127.0.0.1:8081")]
    pub publisher_url: String,

    /// Open connections at most (below the process's open-files limit); beyond it a
    /// connection is answered 503 with Retry-After and closed.
    #[arg(long, default_value_t = live_common::conn::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Time a client has to send a whole request head (also the longest idle time of a
    /// keep-alive connection between requests). For tests; the default is the contract.
    #[arg(long, default_value = "10s", value_parser = parse_duration, hide = true)]
    pub head_timeout: Duration,

    /// Development only: serve `GET /v1/dev/token?video=V&user=U`, which mints a viewer
    /// and poster token (`sub` U, `videos` [V], no role) signed with --jwt-secret, so the
    /// live page can renew its token when a stream expires. Anyone who can reach the
    /// endpoint gets a token: refused unless --listen is a loopback address.
    #[arg(long)]
    pub dev_tokens: bool,

    /// Lifetime of a token minted by --dev-tokens.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub dev_token_ttl: Duration,
}

impl Config {
    /// Where tokens are verified from: `--jwt-secret`, `--jwt-jwks`, issuer, audience.
    pub fn verifier_options(&self) -> live_common::jwt::VerifierOptions {
        live_common::jwt::VerifierOptions {
            secret: self.jwt_secret.clone(),
            jwks: self.jwt_jwks.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
        }
    }

    /// Checks every value before anything starts (a bad one exits 64 naming its flag).
    pub fn validate(&self) -> Result<(), ConfigError> {
        cli::regions(&self.region, &self.regions)?;
        cli::jwt(&self.verifier_options())?;
        cli::positive("like-interval", self.like_interval)?;
        cli::positive("heartbeat", self.heartbeat)?;
        self.retry_window()?;
        cli::positive("write-timeout", self.write_timeout)?;
        cli::at_least("presence-ttl", self.presence_ttl, Duration::from_secs(1))?;
        cli::at_least("viewers-ttl", self.viewers_ttl, Duration::from_secs(3))?;
        if self.viewer_queue == 0 {
            return Err(ConfigError::new("viewer-queue", "must be at least 1"));
        }
        if self.max_topics == 0 {
            return Err(ConfigError::new("max-topics", "must be at least 1"));
        }
        if self.max_replay == 0 {
            return Err(ConfigError::new("max-replay", "must be at least 1"));
        }
        if self.js_domain.as_deref().is_some_and(|d| {
            d.is_empty()
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }) {
            return Err(ConfigError::new(
                "js-domain",
                "must be a name of [A-Za-z0-9_-]",
            ));
        }
        // Pasted into the page's script: an http(s) URL with nothing that ends a string.
        let url = &self.publisher_url;
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || url.contains(['\'', '"', '\\', '<', '>', ' ', '\n'])
            || url.parse::<axum::http::Uri>().is_err()
        {
            return Err(ConfigError::new(
                "publisher-url",
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        if self.dev_tokens {
            if self.jwt_secret.is_none() {
                return Err(ConfigError::new(
                    "dev-tokens",
                    "needs --jwt-secret (the tokens are signed with it)",
                ));
            }
            if !self.listen.ip().is_loopback() {
                return Err(ConfigError::new(
                    "dev-tokens",
                    format!(
                        "anyone reaching {} could mint tokens: only with a loopback --listen",
                        self.listen
                    ),
                ));
            }
            cli::positive("dev-token-ttl", self.dev_token_ttl)?;
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new("max-connections", "must be at least 1"));
        }
        cli::positive("head-timeout", self.head_timeout)?;
        self.cors()?;
        Ok(())
    }

    /// The `retry:` window, `--retry-min` to `--retry-max`, checked.
    pub fn retry_window(&self) -> Result<crate::retry::RetryWindow, ConfigError> {
        crate::retry::RetryWindow::new(self.retry, self.retry_max)
    }

    /// The parsed `--cors-origin`.
    pub fn cors(&self) -> Result<Origins, ConfigError> {
        Origins::parse(&self.cors_origin).map_err(|e| ConfigError::new("cors-origin", e))
    }

    /// A configuration for tests: the given NATS URL, defaults elsewhere.
    pub fn for_nats(url: &str) -> Self {
        use clap::Parser;
        Config::parse_from(["frontend", "--nats", url])
    }
}
