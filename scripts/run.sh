#!/usr/bin/env bash
# The whole system on one machine, in the foreground: nats-server (nats/local.conf,
# JetStream on) + publisher + frontend. Ctrl-C stops all of it.
#   scripts/run.sh          the system
#   scripts/run.sh --demo   plus a synthetic audience (viewers, likes, comments)
#   scripts/run.sh --auth   tokens required (a random HS256 secret); the live page gets
#                           short-lived tokens from the frontend's --dev-tokens endpoint
# Needs the ports 4222 and 8222 (NATS), 8081 (publisher) and 8080 (frontend) free.
# Ctrl-C stops the services first (the audience, the frontend, the publisher), each within
# a few seconds, then nats-server: everything is gone within 5 s and nothing stays behind.
# LIVE_BIN_DIR: use the binaries there instead of building release ones (the test of this
# script runs it on the test build).
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
if [ -n "${LIVE_BIN_DIR:-}" ]; then
  bin=$LIVE_BIN_DIR
else
  cargo build --release --quiet --bin frontend --bin publisher --bin loadgen
  bin=target/release
fi
mkdir -p .run
export RUST_LOG="${RUST_LOG:-info}"

pids=() names=()
stop() { # pid name: SIGTERM, then SIGKILL if it is still there after 3 s
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 30); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  echo "run.sh: stopped $2"
}
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping…"
  # In reverse order of starting, one at a time: the services finish with NATS still up
  # (a publisher whose NATS went first spent ~17 s retrying), nats-server last.
  for ((i=${#pids[@]}-1; i>=0; i--)); do stop "${pids[$i]}" "${names[$i]}"; done
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

# Each process in a session of its own (setsid): Ctrl-C's SIGINT goes to this script's
# process group only, and the cleanup above stops them in order (before, every process
# got the SIGINT at once and nats-server went first). The log prefixers ignore it too.
setsid "$NATS_SERVER_BIN" -c nats/local.conf >.run/nats-server.log 2>&1 &
pids+=($!) names+=(nats-server)
wait_http http://127.0.0.1:8222/healthz "$!" "nats-server (log: .run/nats-server.log)"

setsid "$bin/publisher" --listen 127.0.0.1:8081 --nats nats://127.0.0.1:4222 "${auth_flags[@]}" \
  > >(trap '' INT; exec sed -u 's/^/[publisher] /') 2>&1 &
pids+=($!) names+=(publisher)
wait_http http://127.0.0.1:8081/healthz "$!" publisher

# --drain 1s: on Ctrl-C the viewers' streams end within a second (a deployment drains
# over its default 5 s so that viewers spread over the other nodes; here there are none).
setsid "$bin/frontend" --listen 127.0.0.1:8080 --nats nats://127.0.0.1:4222 --drain 1s \
  --publisher-url http://127.0.0.1:8081 "${auth_flags[@]}" "${frontend_auth[@]}" \
  > >(trap '' INT; exec sed -u 's/^/[frontend] /') 2>&1 &
pids+=($!) names+=(frontend)
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
  # loop, while run.sh lives; the trap stops the running one with the loop. (A
  # background subshell ignores Ctrl-C's SIGINT, and loadgen, which does not, used to
  # die of it and be started again: the loop now also ends when run.sh is gone.)
  parent=$$
  (
    trap 'kill -TERM "${lg:-}" 2>/dev/null; wait 2>/dev/null; exit 0' TERM
    while kill -0 "$parent" 2>/dev/null; do
      setsid "$bin/loadgen" run --video-ids demo \
        --viewers 300 --connect-rate 100 --warmup 1s --duration 24h --drain 0s \
        --likes-per-sec 300 --comments-per-sec 0.7 --users 600 --user-prefix fan \
        --text-len 12 --frontend http://127.0.0.1:8080 --publisher http://127.0.0.1:8081 \
        >>.run/demo.log 2>&1 &
      lg=$!
      wait "$lg" || sleep 1
    done
  ) &
  pids+=($!) names+=("demo audience")
  echo "  demo audience: 300 viewers, ~300 likes/s, a comment every ~1.5 s (log: .run/demo.log)"
fi
wait
