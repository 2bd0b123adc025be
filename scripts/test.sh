#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (each integration
# test starts its own nats-server on free ports). `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_BIN="$(scripts/lib/nats-server.sh)"
export NATS_SERVER_BIN
echo "using $("$NATS_SERVER_BIN" --version)"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
