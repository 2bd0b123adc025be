//! A frontend node: holds viewers' Server-Sent Events connections and subscribes to NATS
//! once per live video that any of its viewers watches, fanning each event out to them.
//!
//! # Layout
//! - [`config`]: flags and environment, validated before any port is bound.
//! - [`node`]: what every room and viewer needs — NATS, history, regions, identity,
//!   timings.
//! - [`registry`]: the tables of rooms (videos, conversations, watched members); it
//!   spawns rooms, rooms never see it.
//! - [`room`]: one video on this node — the handle viewers join, and its task (the
//!   subscription, gap detection, likes, viewer counts, heartbeats); its pure parts:
//!   [`room::sequencer`] (deliver / hold back / read / duplicate, per region),
//!   [`room::coalesce`] (likes), [`room::viewer_counts`] (the regions' viewer totals).
//! - [`audience`]: this node's viewer counts and members, reported to the region's
//!   publishers (which sum them); [`audience::reports`] decides what goes out.
//! - [`store`]: the [`store::History`] of a video (JetStream, and in memory for tests).
//! - [`viewer`]: one viewer's stream — snapshot, replay, live, bounded queue, drain,
//!   expiry; [`viewer::resume`] decides and merges a `Last-Event-ID` replay.
//! - [`http`]: the routes and [`http::Events::open`], the one check of a stream
//!   request; [`http::fast_path`] the server (viewer streams written straight to the
//!   socket, the rest via axum); [`http::response`] renders every answer of both.
//! - [`conversation`]: one conversation on this node — typing passed through, read
//!   receipts (snapshot + live, never backwards); [`presence`]: members online, said
//!   by each node ([`presence::Announcer`]) and followed per watched member
//!   ([`presence::PresenceRoom`]), with their pure parts; [`hub`] and [`occupancy`]:
//!   what every topic's room has.
//! - [`connection`]: one device's `/v1/stream` — many topics on one stream, changed
//!   from any node through [`connection::control`]; its `Last-Event-ID` in
//!   [`connection::cursor`].
//! - [`sse`]: encoding of events, once per node; [`cursor`]: `Last-Event-ID`;
//!   [`stats`]: hot-path metric handles; [`retry`]: the `retry:` window both stream
//!   endpoints draw from.

pub mod audience;
pub mod bell;
pub mod config;
pub mod connection;
pub mod conversation;
pub mod cursor;
pub mod http;
pub mod hub;
pub mod node;
pub mod occupancy;
pub mod presence;
pub mod registry;
pub mod retry;
pub mod room;
pub mod sse;
pub mod stats;
pub mod store;
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
    // The first connection bumps `resets` too, though nothing can have been missed
    // before it: marked seen here, so a room does not take it for a reconnect and read
    // its state from JetStream a second time as it opens (3 reads more per room, each
    // room of a reconnect storm included).
    let mut resets = resets;
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        resets.wait_for(|n| *n > 0),
    )
    .await;
    let (stopping_tx, stopping) = watch::channel(false);
    let history = store::JetStreamHistory::new(
        client.clone(),
        config.js_domain.as_deref(),
        regions.clone(),
        config.partitions,
    );
    let node = node::Node::new(
        client.clone(),
        std::sync::Arc::new(history),
        regions,
        node_id.clone(),
        node::Settings::from(&config),
        resets,
    );
    let registry = registry::Registry::new(node.clone(), config.presence_grace);
    // Viewers per video once a second; members sooner, so a watch that opens elsewhere
    // right after a member's first connection here learns of it from the publishers.
    node.tasks.spawn(audience::run(
        node.clone(),
        live_proto::subjects::Counted::Viewers,
        std::time::Duration::from_secs(1),
        config.viewers_ttl,
        {
            let registry = registry.clone();
            move || registry.video_counts()
        },
    ));
    node.tasks.spawn(audience::run(
        node.clone(),
        live_proto::subjects::Counted::Members,
        std::time::Duration::from_millis(200),
        config.presence_ttl,
        {
            let members = registry.members.clone();
            move || members.counts()
        },
    ));
    // Subscribed before HTTP is served: a connection handed out is reachable from the
    // other nodes at once.
    let connections = connection::control::Connections::new();
    let control = connections.subscribe(&node).await;
    node.tasks
        .spawn(connections.clone().serve(node.clone(), control));

    let events = http::Events {
        registry: registry.clone(),
        connections,
        max_topics: config.max_topics,
        stopping,
        verifier,
        cors: config.cors()?,
    };
    let app = http::router(events.clone(), &config)
        .merge(live_common::ops::router(client.clone()))
        .layer(axum::middleware::map_response(
            live_common::error::json_rejections,
        ));
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
    let options = http::fast_path::SocketOptions {
        write_timeout: config.write_timeout,
        send_buffer: config.send_buffer,
        head_timeout: config.head_timeout,
        max_connections: config.max_connections,
    };
    http::fast_path::serve(listener, app, events, options, stopping_tx, async move {
        shutdown.await;
        tracing::info!(viewers = registry.viewer_count(), "draining viewers");
    })
    .await?;
    node.stopped.cancel();
    // Rooms end; the viewer reporter tells the publishers this node has no viewers left.
    node.tasks.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), node.tasks.wait()).await;
    // Bounded: with NATS gone too (Ctrl-C stops everything at once) a flush never ends.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), client.flush()).await;
    tracing::info!("frontend stopped");
    Ok(())
}
