//! The frontend's configuration: command-line flags and their environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use live_common::duration::parse as parse_duration;
use live_common::nats::NatsArgs;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "frontend",
    version,
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

    /// `retry:` sent to viewers: a random value between this and twice this.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub retry: Duration,

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

    /// How long this node's viewer counts count at the other nodes without a refresh
    /// (refreshed every third of it): a node that dies drops out of the sum after this.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub presence_ttl: Duration,

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

    /// A configuration for tests: the given NATS URL, defaults elsewhere.
    pub fn for_nats(url: &str) -> Self {
        use clap::Parser;
        Config::parse_from(["frontend", "--nats", url])
    }
}
