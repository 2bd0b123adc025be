//! The end-to-end suite as one test binary: every module starts its own nats-server and
//! parts, so they share nothing but the process. One binary links the dependencies once
//! where one per file linked them 21 times (over 1 GB of a CI machine's disk).

mod bad_input;
mod browser;
mod config;
mod conversations;
mod cors;
mod expiry;
mod failures;
mod flood;
mod idempotency;
mod identity;
mod moderation;
mod multi_region;
mod partitions;
mod rate_limits;
mod resume;
mod run_script;
mod security;
mod shutdown;
mod slow_bodies;
mod slow_viewers;
mod spine;
mod store_full;
mod storm;
mod stream;
mod viewer_counts;
