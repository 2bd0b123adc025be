//! What every service of the platform shares.
//!
//! # Layout
//! - [`cli`]: parsing and validating flags; a bad value exits 64 naming the flag.
//! - [`conn`]: connection limits for the HTTP servers (cap, head and body timeout) and
//!   [`conn::RequestBody`], the one way handlers read a request body.
//! - [`cors`]: `--cors-origin` lists: the axum layer and the fast path's headers.
//! - [`direct`]: batched JetStream direct gets (reads without a consumer).
//! - [`duration`]: parsing of durations given as flags ("5ms", "24h").
//! - [`nats`]: command-line options for the NATS connection (URLs, credentials) and a
//!   connect function with jittered reconnects.
//! - [`telemetry`]: tracing setup and the process-wide Prometheus recorder.
//! - [`ops`]: the `GET /healthz` and `GET /metrics` routes.
//! - [`error`]: [`ApiError`], the one HTTP error type, answered as `{"error": "…"}`.
//! - [`shutdown`]: the SIGINT/SIGTERM future the binaries hand to `run`.
//! - [`jwt`]: JSON Web Tokens (`--jwt-secret` HS256, `--jwt-jwks` RS256/ES256/EdDSA by
//!   `kid` with reloads, issuer and audience), verified with `jsonwebtoken`.

pub mod cli;
pub mod conn;
pub mod cors;
pub mod direct;
pub mod duration;
pub mod error;
pub mod jwt;
pub mod nats;
pub mod ops;
pub mod shutdown;
pub mod telemetry;

pub use error::ApiError;
