//! The publisher's configuration: command-line flags and their environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use live_common::cli::{self, ConfigError};
use live_common::cors::Origins;
use live_common::duration::parse as parse_duration;
use live_common::jwt::Key;
use live_common::nats::NatsArgs;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "publisher",
    version,
    allow_negative_numbers = true,
    about = "Likes/comments backend: validates, stores durably in JetStream, publishes"
)]
pub struct Config {
    /// Address to listen on for HTTP.
    #[arg(long, env = "PUBLISHER_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub nats: NatsArgs,

    /// Region name, stamped on every accepted like and comment. With several regions it
    /// must equal the region's NATS cluster name (streams are placed there).
    #[arg(long, env = "REGION", default_value = "local")]
    pub region: String,

    /// Every region of the deployment, in the same order for every service (comma
    /// separated, e.g. "east,west"); empty means just --region. The publisher keeps a
    /// mirror of the other regions' streams in its own region.
    #[arg(long, env = "REGIONS", value_delimiter = ',')]
    pub regions: Vec<String>,

    /// Partitions of the region's write path: comments and likes are stored in this many
    /// JetStream streams, a video always in the same one (`proto/README.md`). The same
    /// value on every service of a region.
    #[arg(long, env = "LIVE_PARTITIONS", default_value = "1")]
    pub partitions: live_proto::Partitions,

    /// How often the region's partition stream leaders are evened out over the cluster's
    /// servers (one leader move per round; see `publisher/src/placement.rs`). Only with
    /// `--replicas` above 1 and `--partitions` above 1.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub rebalance_interval: Duration,

    /// JetStream replicas of the COMMENTS and LIKES streams (3 on a 3-node cluster).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,

    /// Group-commit window for likes: likes of one video arriving within it are stored
    /// with one counter write (e.g. "5ms").
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    pub like_window: Duration,

    /// How long comments are kept for replay (`Last-Event-ID`), e.g. "24h".
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub comment_retention: Duration,

    /// How many comments per video are kept for replay.
    #[arg(long, default_value_t = 10_000)]
    pub comments_per_video: i64,

    /// Per-user rate limit on likes: sustained likes per second (burst is 2× this).
    #[arg(long, default_value_t = 20.0)]
    pub likes_per_sec: f64,

    /// Per-user rate limit on comments: sustained comments per second (burst is 5× this).
    #[arg(long, default_value_t = 1.0)]
    pub comments_per_sec: f64,

    /// Per-video rate limit on likes, over all its users: likes per second (burst 2×).
    #[arg(long, default_value_t = 10_000.0)]
    pub video_likes_per_sec: f64,

    /// Per-video rate limit on comments, over all its users: comments per second (burst
    /// 2×). More than a few hundred a second is unreadable in a live chat anyway.
    #[arg(long, default_value_t = 200.0)]
    pub video_comments_per_sec: f64,

    /// How long a typing indicator is live after a `typing` request (`until_ms` = now +
    /// this). A burst of requests is one event: another is published only when the live
    /// indicator has less than half of this left.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub typing_ttl: Duration,

    /// Per-user rate limit on typing requests (every request counts, also the coalesced
    /// ones): requests per second (burst 2×).
    #[arg(long, default_value_t = 10.0)]
    pub typing_per_sec: f64,

    /// Typing indicators published per conversation, whoever types: events per second
    /// (burst 2×); beyond it a typing request gets 429 (a watcher of a crowded
    /// conversation learns "several people are typing" from a few).
    #[arg(long, default_value_t = 20.0)]
    pub conversation_typing_per_sec: f64,

    /// Per-user rate limit on read receipts (each is a durable write): receipts per
    /// second (burst 2×).
    #[arg(long, default_value_t = 10.0)]
    pub reads_per_sec: f64,

    /// Require a JWT (HS256, signed with this secret) on every like and comment: the
    /// `Authorization: Bearer` header over HTTP, the `token` field over NATS ingest. Its
    /// `sub` is the user. Unset: no auth (development only).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Key>,

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

    /// Turn the rate limits (per user and per video) off (benchmarks).
    #[arg(long)]
    pub no_rate_limit: bool,

    /// Origins of pages that may call the publisher from a browser (CORS), comma
    /// separated (`https://www.example.com,https://app.example.com`: echoed, credentials
    /// allowed); "*" for any origin (no credentials); empty for none.
    #[arg(long, env = "CORS_ORIGIN", value_delimiter = ',', default_value = "*")]
    pub cors_origin: Vec<String>,

    /// Open connections at most (below the process's open-files limit); beyond it a
    /// connection is answered 503 with Retry-After and closed.
    #[arg(long, default_value_t = live_common::conn::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Time a client has to send a whole request head (also the longest idle time of a
    /// keep-alive connection between requests). For tests; the default is the contract.
    #[arg(long, default_value = "10s", value_parser = parse_duration, hide = true)]
    pub head_timeout: Duration,
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
        cli::positive("comment-retention", self.comment_retention)?;
        cli::count_at_least("comments-per-video", self.comments_per_video, 1)?;
        cli::rate("likes-per-sec", self.likes_per_sec)?;
        cli::rate("comments-per-sec", self.comments_per_sec)?;
        cli::rate("video-likes-per-sec", self.video_likes_per_sec)?;
        cli::rate("video-comments-per-sec", self.video_comments_per_sec)?;
        cli::rate("typing-per-sec", self.typing_per_sec)?;
        cli::rate(
            "conversation-typing-per-sec",
            self.conversation_typing_per_sec,
        )?;
        cli::rate("reads-per-sec", self.reads_per_sec)?;
        cli::positive("typing-ttl", self.typing_ttl)?;
        if self.typing_ttl > Duration::from_secs(60) {
            return Err(ConfigError::new("typing-ttl", "must be at most 60s"));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new("max-connections", "must be at least 1"));
        }
        cli::positive("head-timeout", self.head_timeout)?;
        self.cors()?;
        Ok(())
    }

    /// The parsed `--cors-origin`.
    pub fn cors(&self) -> Result<Origins, ConfigError> {
        Origins::parse(&self.cors_origin).map_err(|e| ConfigError::new("cors-origin", e))
    }

    /// A configuration for tests: the given NATS URL, defaults elsewhere.
    pub fn for_nats(url: &str) -> Self {
        use clap::Parser;
        Config::parse_from(["publisher", "--nats", url])
    }
}
