//! The likes/comments backend: accepts likes and comments over HTTP and NATS, validates
//! them, stores them durably in JetStream and publishes them to the frontends; and the
//! write side of conversations (typing indicators, read receipts).
//!
//! # Layout
//! - [`config`]: flags and environment.
//! - [`streams`]: the COMMENTS and LIKES JetStream streams, created or updated at start.
//! - [`comments`]: storing a comment (its id is its stream sequence).
//! - [`likes`]: group commit of likes into the LIKES counter stream.
//! - [`auth`]: who a request acts as (`--jwt-secret`: the token's `sub`).
//! - [`ratelimit`]: rate limits per user and per video (`governor`).
//! - [`moderation`]: deleting comments (tombstones), bans and slow mode.
//! - [`conversations`]: typing indicators (coalesced, not stored) and read receipts
//!   (stored in the `RECEIPTS_{region}` bucket, then published).
//! - [`placement`]: keeps the partitions' stream leaders spread over the servers.
//! - [`retry`]: retries of JetStream writes with the same message id, to a deadline.
//! - [`store_full`]: a write the store refuses as full — answered at once, not retried;
//!   `/healthz` says 503 while it lasts.
//! - [`service`]: the two operations both edges call.
//! - [`http`]: the HTTP edge (`POST /v1/videos/{video}/likes|comments`,
//!   `POST /v1/conversations/{id}/typing|read`).
//! - [`counts`]: what the region's publishers sum from the frontends' reports — viewer
//!   counts (each video's total published by the publisher owning its shard) and
//!   members online (asked when a frontend starts watching a member).
//! - [`ingest`]: the NATS edge (`ingest.v1.{video}.like|comment`,
//!   `ingest.conv.v1.{id}.typing|read`, request-reply).

pub mod auth;
pub mod comments;
pub mod config;
pub mod conversations;
pub mod counts;
pub mod http;
pub mod ingest;
pub mod likes;
pub mod moderation;
pub mod placement;
pub mod ratelimit;
pub mod retry;
pub mod service;
pub mod store_full;
pub mod streams;

use std::future::Future;
use std::sync::Arc;

use axum::http::{HeaderName, Method, header};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Connect(#[from] live_common::nats::ConnectError),
    #[error(transparent)]
    Streams(#[from] streams::StreamSetupError),
    #[error("cannot subscribe to the ingest subjects: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error(transparent)]
    Config(#[from] live_common::cli::ConfigError),
    #[error("invalid --region/--regions: {0}")]
    Regions(live_proto::InvalidInput),
    #[error("invalid --jwt-jwks: {0}")]
    Jwks(#[from] live_common::jwt::JwksError),
    #[error("HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the publisher on `listener` until `shutdown` resolves; then stops taking new
/// requests, answers those in flight and flushes pending likes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.validate()?;
    live_common::telemetry::prometheus();
    let regions =
        live_proto::Regions::new(&config.region, &config.regions).map_err(Error::Regions)?;
    let name = format!("publisher-{}-{}", config.region, std::process::id());
    let client = live_common::nats::connect(&config.nats, &name, None).await?;
    let js = retry::context(client.clone());
    // Stops the background tasks; `tasks` tracks them (mirrors, placement, ingest, the
    // moderation feed, the comment writers and likes batchers), so shutdown waits for them.
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    let partitions = config.partitions;
    let buckets = streams::ensure(&js, &config, &regions, partitions, stop.clone(), &tasks).await?;
    let moderation = moderation::Moderation::new(
        js.clone(),
        client.clone(),
        regions.clone(),
        partitions,
        buckets.moderation,
    );
    // Every region's bans and slow modes are known before the first request.
    moderation.reload().await;

    let limiter = |action, user: f64, user_burst: f64, video: f64| {
        (!config.no_rate_limit).then(|| {
            ratelimit::RateLimiter::new(
                action,
                ratelimit::Rate {
                    per_sec: user,
                    burst: user * user_burst,
                },
                ratelimit::Rate {
                    per_sec: video,
                    burst: video * 2.0,
                },
            )
        })
    };
    let per_user = |action, rate: f64| {
        (!config.no_rate_limit).then(|| {
            ratelimit::RateLimiter::per_user(
                action,
                ratelimit::Rate {
                    per_sec: rate,
                    burst: rate * 2.0,
                },
            )
        })
    };
    let verifier = live_common::jwt::Verifier::new(config.verifier_options())?;
    match &verifier {
        None => tracing::warn!(
            "no --jwt-secret or --jwt-jwks: likes and comments are NOT authenticated"
        ),
        Some(v) => v.watch(),
    }
    if config.jwt_secret.as_ref().is_some_and(|k| k.len() < 32) {
        tracing::warn!("--jwt-secret is shorter than 32 bytes; use a long random secret");
    }
    // Whether the store refuses writes as full: set and cleared by every write (and the
    // probe), read by `/healthz`.
    let store_health = Arc::new(store_full::StoreHealth::default());
    let service = Arc::new(service::Service {
        auth: auth::Auth::with_verifier(verifier),
        comments: comments::CommentStore::new(
            js.clone(),
            regions.clone(),
            partitions,
            store_health.clone(),
            &tasks,
        ),
        like_keys: buckets.like_keys,
        likes: likes::LikeBatcher::spawn(
            client.clone(),
            regions.own().clone(),
            partitions,
            config.like_window,
            store_health.clone(),
            &tasks,
        ),
        like_limit: limiter(
            "likes",
            config.likes_per_sec,
            2.0,
            config.video_likes_per_sec,
        ),
        comment_limit: limiter(
            "comments",
            config.comments_per_sec,
            5.0,
            config.video_comments_per_sec,
        ),
        moderation,
        conversations: conversations::Conversations::new(
            client.clone(),
            regions.own().clone(),
            buckets.receipts,
            config.typing_ttl,
            conversations::Limits {
                typing: per_user("typing", config.typing_per_sec),
                typing_events: (!config.no_rate_limit).then(|| {
                    ratelimit::RateLimiter::per_target(
                        "typing_events",
                        ratelimit::Rate {
                            per_sec: config.conversation_typing_per_sec,
                            burst: config.conversation_typing_per_sec * 2.0,
                        },
                    )
                }),
                reads: per_user("reads", config.reads_per_sec),
            },
            store_health.clone(),
        ),
        store_health: store_health.clone(),
    });

    tasks.spawn(store_full::probe(
        store_health.clone(),
        service.like_keys.clone(),
        // Unique per instance, like the counts' name below.
        format!("{name}-{:06x}", rand::random_range(0..0xff_ffffu32)),
        stop.clone(),
    ));

    let audience = counts::viewers::subscribe(&client, regions.own()).await?;
    tasks.spawn(counts::viewers::run(
        client.clone(),
        regions.own().clone(),
        // Unique per instance: tests run several publishers in one process.
        format!("{name}-{:06x}", rand::random_range(0..0xff_ffffu32)),
        audience,
        stop.clone(),
    ));
    let members = counts::members::subscribe(&client, regions.own()).await?;
    tasks.spawn(counts::members::run(
        client.clone(),
        regions.own().clone(),
        members,
        stop.clone(),
    ));
    let subscriptions = ingest::subscribe(&client).await?;
    let ingest = tasks.spawn(ingest::serve(
        client.clone(),
        service.clone(),
        subscriptions,
        stop.clone().cancelled_owned(),
    ));
    if config.replicas > 1 {
        tasks.spawn(placement::keep_spread(
            js.clone(),
            regions.clone(),
            partitions,
            config.rebalance_interval,
            stop.clone(),
        ));
    }
    let following = {
        let (service, stop) = (service.clone(), stop.clone());
        tasks.spawn(async move { service.moderation.follow(stop.cancelled_owned()).await })
    };

    let health_check = {
        let store_health = store_health.clone();
        move || store_health.cause()
    };
    let app = http::router(service)
        .merge(live_common::ops::router_with_check(
            client.clone(),
            health_check,
        ))
        .layer(axum::middleware::map_response(
            live_common::error::json_rejections,
        ));
    let app = cors(&config.cors()?, app).layer(tower_http::catch_panic::CatchPanicLayer::new());
    tracing::info!(addr = %listener.local_addr()?, region = %config.region, "publisher listening");
    serve(listener, app, &config, shutdown).await;
    stop.cancel();
    match ingest.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => tracing::error!(error = %e, "ingest task failed"),
    }
    let _ = following.await;
    // Every handle of the comment writers and likes batchers is gone with the service:
    // they write what they hold and end. Bounded, like the flush below.
    tasks.close();
    if tokio::time::timeout(std::time::Duration::from_secs(10), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not finish within 10 s");
    }
    // Bounded: with NATS gone too (Ctrl-C stops everything at once) a flush never ends.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), client.flush()).await;
    tracing::info!("publisher stopped");
    Ok(())
}

/// Serves HTTP on `listener` until `shutdown` resolves, then answers the requests in
/// flight and returns once every connection has closed. Connections are capped
/// (`--max-connections`) and must send a whole request, head and body, within
/// `--head-timeout` (see [`live_common::conn`]).
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) {
    let gate = live_common::conn::Gate::new(config.max_connections);
    let http = live_common::conn::http1(config.head_timeout);
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    metrics::counter!("publisher_accept_errors_total").increment(1);
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some((tcp, place)) = gate.admit(tcp) else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let conn = http.serve_connection(
            hyper_util::rt::TokioIo::new(tcp),
            live_common::conn::Service::new(
                app.clone(),
                tokio::time::Instant::now(),
                config.head_timeout,
            ),
        );
        let stopping = stopping.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            let done = tokio::select! {
                r = conn.as_mut() => r,
                _ = stopping.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                tracing::debug!(error = %e, "connection ended");
            }
            drop(place);
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
}

/// CORS for the browser calls: likes, comments, moderation.
fn cors(origins: &live_common::cors::Origins, app: axum::Router) -> axum::Router {
    origins.apply(
        app,
        &[Method::POST, Method::PUT, Method::DELETE],
        &[
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("idempotency-key"),
        ],
    )
}
