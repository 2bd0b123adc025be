//! The operational endpoints every service serves: `GET /healthz` (200 when the NATS
//! connection is up, 503 when not) and `GET /metrics` (Prometheus text format).

use async_nats::connection::State;
use axum::Router;
use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Routes `/healthz` and `/metrics` for a service connected through `client`.
pub fn router<S: Clone + Send + Sync + 'static>(client: async_nats::Client) -> Router<S> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(client)
}

async fn healthz(AxState(client): AxState<async_nats::Client>) -> impl IntoResponse {
    match client.connection_state() {
        State::Connected => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"nats": "connected"})),
        ),
        state => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"nats": state.to_string()})),
        ),
    }
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::prometheus().render(),
    )
}
