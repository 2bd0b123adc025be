//! The operational endpoints every service serves: `GET /healthz` (200 when the NATS
//! connection is up, 503 with `{"error": …}` when not) and `GET /metrics` (Prometheus
//! text format). A service
//! may add its own check ([`router_with_check`]): `/healthz` then also answers 503, with
//! `{"error": …}` naming the cause, while the check reports one.

use std::sync::Arc;

use async_nats::connection::State;
use axum::Router;
use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Why a service cannot do its job, while it cannot (`None`: healthy).
type Check = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Routes `/healthz` and `/metrics` for a service connected through `client`.
pub fn router<S: Clone + Send + Sync + 'static>(client: async_nats::Client) -> Router<S> {
    router_with_check(client, || None)
}

/// Like [`router`], with `check` consulted by `/healthz` while NATS is connected: a cause
/// it returns is answered `503 {"error": cause, "nats": "connected"}`.
pub fn router_with_check<S: Clone + Send + Sync + 'static>(
    client: async_nats::Client,
    check: impl Fn() -> Option<String> + Send + Sync + 'static,
) -> Router<S> {
    let check: Check = Arc::new(check);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state((client, check))
}

async fn healthz(
    AxState((client, check)): AxState<(async_nats::Client, Check)>,
) -> impl IntoResponse {
    match client.connection_state() {
        State::Connected => match check() {
            None => (
                StatusCode::OK,
                axum::Json(serde_json::json!({"nats": "connected"})),
            ),
            Some(cause) => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"error": cause, "nats": "connected"})),
            ),
        },
        state => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": format!("the NATS connection is {state}"),
                "nats": state.to_string(),
            })),
        ),
    }
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
}
