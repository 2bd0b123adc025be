#!/usr/bin/env bash
# The whole system on one machine, in the foreground: nats-server (nats/local.conf,
# JetStream on) + publisher + frontend. Ctrl-C stops all of it.
#   scripts/run.sh          the system
#   scripts/run.sh --demo   plus a synthetic audience (viewers, likes, comments)
set -euo pipefail
cd "$(dirname "$0")/.."

demo=false
for arg in "$@"; do
  case "$arg" in
    --demo) demo=true ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 64 ;;
  esac
done

NATS_SERVER_BIN="$(scripts/lib/nats-server.sh)"
cargo build --release --quiet --bin frontend --bin publisher --bin loadgen
bin=target/release
mkdir -p .run
export RUST_LOG="${RUST_LOG:-info}"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping…"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

wait_http() { # url
  for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

"$NATS_SERVER_BIN" -c nats/local.conf >.run/nats-server.log 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:8222/healthz

"$bin/publisher" --listen 127.0.0.1:8081 --nats nats://127.0.0.1:4222 2>&1 | sed -u 's/^/[publisher] /' &
pids+=($!)
wait_http http://127.0.0.1:8081/healthz

"$bin/frontend" --listen 127.0.0.1:8080 --nats nats://127.0.0.1:4222 \
  --publisher-url http://127.0.0.1:8081 2>&1 | sed -u 's/^/[frontend] /' &
pids+=($!)
wait_http http://127.0.0.1:8080/healthz

cat <<TXT

  live page     http://127.0.0.1:8080/?video=demo
  viewer (SSE)  curl -N http://127.0.0.1:8080/v1/videos/demo/events
  comment       curl -X POST -H 'Content-Type: application/json' \\
                  -d '{"user":"alice","text":"hello"}' http://127.0.0.1:8081/v1/videos/demo/comments
  like          curl -X POST -H 'Content-Type: application/json' \\
                  -d '{"user":"alice"}' http://127.0.0.1:8081/v1/videos/demo/likes
  metrics       http://127.0.0.1:8080/metrics  http://127.0.0.1:8081/metrics
  NATS          nats://127.0.0.1:4222 (monitoring http://127.0.0.1:8222)

Ctrl-C stops everything.
TXT

if $demo; then
  DEMO_CMD
fi
wait
