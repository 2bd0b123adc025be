//! A frontend node: holds viewers' Server-Sent Events connections and subscribes to NATS
//! once per live video that any of its viewers watches, fanning each event out to them.
//!
//! # Layout
//! - [`config`]: flags and environment.
//! - [`rooms`]: the table video → room and what rooms share (NATS, history, identity).
//! - [`room`]: one video on this node: its subscription, gap detection, likes
//!   coalescing, viewer counts, heartbeats.
//! - [`viewer`]: one viewer's stream: snapshot, replay, live, bounded queue, drain.
//! - [`sequencer`]: pure sequencing of one region's comments in a room: deliver, hold
//!   back, read, retry.
//! - [`coalesce`]: likes coalescing (one `likes` event per interval at most).
//! - [`history`]: reads from JetStream (likes total, stored comments).
//! - [`sse`]: encoding of events, once per node.
//! - [`stats`]: hot-path metric handles, registered once.
//! - [`cursor`]: the `Last-Event-ID` parser.
//! - [`http`]: the routes.
//! - [`server`]: the HTTP server: viewer streams on a fast path, the rest via axum.

pub mod coalesce;
pub mod config;
pub mod cursor;
pub mod history;
pub mod http;
pub mod room;
pub mod rooms;
pub mod sequencer;
pub mod server;
pub mod sse;
pub mod stats;
pub mod viewer;

use std::future::Future;

use axum::http::{HeaderName, Method, header};
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Connect(#[from] live_common::nats::ConnectError),
    #[error("HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid --region/--regions: {0}")]
    Regions(live_proto::InvalidInput),
    #[error("invalid --jwt-jwks: {0}")]
    Jwks(#[from] live_common::jwt::JwksError),
    #[error(transparent)]
    Config(#[from] live_common::cli::ConfigError),
}

/// Runs a frontend on `listener` until `shutdown` resolves; then stops accepting viewers
/// and closes the open streams spread over `--drain`, so they do not all reconnect to
/// the other nodes at once.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.validate()?;
    live_common::telemetry::prometheus();
    let regions =
        live_proto::Regions::new(&config.region, &config.regions).map_err(Error::Regions)?;
    let verifier = live_common::jwt::Verifier::new(config.verifier_options())?;
    if let Some(v) = &verifier {
        v.watch();
    }
    let node_id = format!(
        "{}-{}-{:06x}",
        config.region,
        std::process::id(),
        rand::rng().random_range(0..0xff_ffffu32)
    );
    let (resets_tx, resets) = watch::channel(0u64);
    let client = live_common::nats::connect(
        &config.nats,
        &format!("frontend-{node_id}"),
        Some(resets_tx),
    )
    .await?;
    let (stopping_tx, stopping) = watch::channel(false);
    let stopped = tokio_util::sync::CancellationToken::new();
    let shared = rooms::Shared::new(
        client.clone(),
        config,
        regions,
        node_id.clone(),
        resets,
        stopped.clone(),
    );

    let events = http::Events {
        shared: shared.clone(),
        stopping,
        verifier,
        cors: shared.config.cors()?,
    };
    let app = http::router(events.clone()).merge(live_common::ops::router(client.clone()));
    // The same origins as the fast path, for the page, preflights and every other route.
    let app = events.cors.apply(
        app,
        &[Method::GET, Method::POST, Method::DELETE],
        &[
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("last-event-id"),
        ],
    );
    let addr = listener.local_addr()?;
    tracing::info!(%addr, node = %node_id, "frontend listening");
    let options = server::SocketOptions {
        write_timeout: shared.config.write_timeout,
        send_buffer: shared.config.send_buffer,
        head_timeout: shared.config.head_timeout,
        max_connections: shared.config.max_connections,
    };
    let rooms_tasks = shared.rooms_tasks.clone();
    server::serve(listener, app, events, options, stopping_tx, async move {
        shutdown.await;
        tracing::info!(viewers = shared.viewer_count(), "draining viewers");
    })
    .await?;
    stopped.cancel();
    // Each room tells the other frontends it has no viewers left, then ends.
    rooms_tasks.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), rooms_tasks.wait()).await;
    // Bounded: with NATS gone too (Ctrl-C stops everything at once) a flush never ends.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), client.flush()).await;
    tracing::info!("frontend stopped");
    Ok(())
}
