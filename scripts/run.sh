#!/usr/bin/env bash
# The whole system on one machine, in the foreground: nats-server (nats/local.conf,
# JetStream on) + publisher + frontend. Ctrl-C stops all of it.
#   scripts/run.sh          the system
#   scripts/run.sh --demo   plus a synthetic audience (viewers, likes, comments)
#   scripts/run.sh --auth   tokens required (a random HS256 secret); the live page gets
#                           short-lived tokens from the frontend's --dev-tokens endpoint
# Needs the ports 4222 and 8222 (NATS), 8081 (publisher) and 8080 (frontend) free.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=false auth=false
for arg in "$@"; do
  case "$arg" in
    --demo) demo=true ;;
    --auth) auth=true ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 64 ;;
  esac
done
if $demo && $auth; then
  echo "run.sh: --demo and --auth do not go together (the synthetic audience has no tokens)" >&2
  exit 64
fi

# Every port first: a port already taken would leave that part not running while the
# rest starts and the URLs below look fine.
taken=()
for port in 4222 8222 8081 8080; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then taken+=("$port"); fi
done
if [ ${#taken[@]} -gt 0 ]; then
  echo "run.sh: port(s) ${taken[*]} on 127.0.0.1 already in use (another run.sh, or another" >&2
  echo "        program: see 'ss -ltnp'); stop it and try again. Nothing was started." >&2
  exit 1
fi

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

wait_http() { # url pid name
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "$1" && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      echo "run.sh: $3 exited at start (its log is above); stopping" >&2; return 1
    fi
    sleep 0.1
  done
  echo "run.sh: $3 not healthy at $1 after 10 s; stopping" >&2; return 1
}

auth_flags=() frontend_auth=()
if $auth; then
  JWT_SECRET="$(openssl rand -base64 48)"
  auth_flags=(--jwt-secret "$JWT_SECRET")
  frontend_auth=(--dev-tokens)
fi

"$NATS_SERVER_BIN" -c nats/local.conf >.run/nats-server.log 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:8222/healthz "$!" "nats-server (log: .run/nats-server.log)"

"$bin/publisher" --listen 127.0.0.1:8081 --nats nats://127.0.0.1:4222 "${auth_flags[@]}" \
  > >(sed -u 's/^/[publisher] /') 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:8081/healthz "$!" publisher

"$bin/frontend" --listen 127.0.0.1:8080 --nats nats://127.0.0.1:4222 \
  --publisher-url http://127.0.0.1:8081 "${auth_flags[@]}" "${frontend_auth[@]}" \
  > >(sed -u 's/^/[frontend] /') 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:8080/healthz "$!" frontend

video=demo

cat <<TXT

  live page     http://127.0.0.1:8080/?video=$video
  viewer (SSE)  curl -N http://127.0.0.1:8080/v1/videos/$video/events
  comment       curl -X POST -H 'Content-Type: application/json' \\
                  -d '{"user":"alice","text":"hello"}' http://127.0.0.1:8081/v1/videos/$video/comments
  like          curl -X POST -H 'Content-Type: application/json' \\
                  -d '{"user":"alice"}' http://127.0.0.1:8081/v1/videos/$video/likes
  metrics       http://127.0.0.1:8080/metrics  http://127.0.0.1:8081/metrics
  NATS          nats://127.0.0.1:4222 (monitoring http://127.0.0.1:8222)

Ctrl-C stops everything.
TXT
if $auth; then
  cat <<TXT
  auth on: tokens required. The live page renews its own (60 s, from /v1/dev/token);
  for curl:  export JWT_SECRET='$JWT_SECRET'
             TOKEN=\$(scripts/jwt.sh --sub alice --videos $video)
             curl -N "http://127.0.0.1:8080/v1/videos/$video/events?token=\$TOKEN"

TXT
fi

if $demo; then
  # A synthetic audience so the page moves, from `loadgen run` (its output goes to
  # .run/demo.log): 300 viewers of the demo video; ~300 likes/s and a comment every
  # ~1.5 s, rotating over 600 users, so each user stays far below the publisher's
  # per-user limits (likes 20/s, comments 1/s). loadgen runs a day at a time, in a
  # loop, until Ctrl-C; the trap stops the running one with the loop.
  (
    trap 'kill -TERM "${lg:-}" 2>/dev/null; wait 2>/dev/null; exit 0' INT TERM
    while :; do
      "$bin/loadgen" run --video-ids demo \
        --viewers 300 --connect-rate 100 --warmup 1s --duration 24h --drain 0s \
        --likes-per-sec 300 --comments-per-sec 0.7 --users 600 --user-prefix fan \
        --text-len 12 --frontend http://127.0.0.1:8080 --publisher http://127.0.0.1:8081 \
        >>.run/demo.log 2>&1 &
      lg=$!
      wait "$lg" || sleep 1
    done
  ) &
  pids+=($!)
  echo "  demo audience: 300 viewers, ~300 likes/s, a comment every ~1.5 s (log: .run/demo.log)"
fi
wait
