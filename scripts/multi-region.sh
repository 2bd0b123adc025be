#!/usr/bin/env bash
# Two regions, east and west, on this machine, in the background: each a 3-node JetStream
# cluster (nats/multi-region/{east,west}-{1,2,3}.conf) joined by gateways into one
# supercluster, with one publisher (--replicas 3) and two frontends per region.
#   scripts/multi-region.sh up       start what is not running (builds the binaries)
#   scripts/multi-region.sh status   what runs where, and whether it is healthy
#   scripts/multi-region.sh down     stop everything (also the edge site, if started)
#   scripts/multi-region.sh leaf     also an edge site: a leaf server joined to east
#                                    (nats/multi-region/leaf-east.conf) + a frontend
# Logs, PIDs and JetStream stores are under .run/multi-region/ (git-ignored).
#
#                 east                         west
#   NATS clients  14222-14224                  24222-24224
#   routes        16222-16224                  26222-26224
#   gateways      17222-17224                  27222-27224
#   leaf nodes    17422-17424                  27422-27424
#   monitoring    18222-18224                  28222-28224
#   publisher     18081                        28081
#   frontends     18080, 18082                 28080, 28082
#   edge (leaf)   NATS 14322, monitoring 18322, frontend 18083 (joined to east)
set -euo pipefail
cd "$(dirname "$0")/.."
# Partitions of each region's write path (one per NATS server of a region).
PARTITIONS="${LIVE_PARTITIONS:-3}"
dir=.run/multi-region
bin=target/release
regions=(east west)
mkdir -p "$dir"

prefix() { [ "$1" = east ] && echo 1 || echo 2; }
nats_urls() { local p; p=$(prefix "$1"); echo "nats://127.0.0.1:${p}4222,nats://127.0.0.1:${p}4223,nats://127.0.0.1:${p}4224"; }

# Passwords of the accounts' users (nats/multi-region/accounts.conf reads them from the
# environment): random, made once, kept in a file only this user can read.
secrets() {
  local f="$dir/passwords.env"
  if [ ! -f "$f" ]; then
    (
      umask 077
      for v in MR_SYS_PASSWORD MR_APP_PASSWORD; do
        echo "export $v=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
      done >"$f"
    )
  fi
  # shellcheck disable=SC1090
  . "$f"
}

running() { # name
  [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null
}

start() { # name command...
  local name=$1; shift
  if running "$name"; then
    echo "$name already running (pid $(cat "$dir/$name.pid"))"
    return 0
  fi
  "$@" >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

wait_http() { # url what seconds
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    curl -fs -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$2 did not become healthy ($1); see $dir/" >&2
  return 1
}

build() {
  NATS_SERVER_BIN="$(scripts/lib/nats-server.sh)"
  export NATS_SERVER_BIN
  cargo build --release --quiet --bin publisher --bin frontend
}

up() {
  build
  secrets
  export RUST_LOG="${RUST_LOG:-info}"
  local r i p
  for r in "${regions[@]}"; do
    for i in 1 2 3; do
      start "$r-$i" "$NATS_SERVER_BIN" -c "nats/multi-region/$r-$i.conf"
    done
  done
  # /healthz is ok once JetStream is: the meta group spans both regions, so this waits
  # until a majority of all six servers is up and connected.
  for r in "${regions[@]}"; do
    p=$(prefix "$r")
    for i in 1 2 3; do
      wait_http "http://127.0.0.1:${p}822$((1 + i))/healthz" "nats-server $r-$i" 60
    done
  done
  for r in "${regions[@]}"; do
    p=$(prefix "$r")
    start "publisher-$r" "$bin/publisher" --listen "127.0.0.1:${p}8081" --nats "$(nats_urls "$r")" \
      --replicas 3 --partitions "$PARTITIONS" --region "$r" --regions east,west
  done
  for r in "${regions[@]}"; do
    p=$(prefix "$r")
    wait_http "http://127.0.0.1:${p}8081/healthz" "publisher-$r" 60
    for port in "${p}8080" "${p}8082"; do
      start "frontend-$r-$port" "$bin/frontend" --listen "127.0.0.1:$port" --nats "$(nats_urls "$r")" \
        --partitions "$PARTITIONS" --region "$r" --regions east,west --publisher-url "http://127.0.0.1:${p}8081"
    done
  done
  for r in "${regions[@]}"; do
    p=$(prefix "$r")
    for port in "${p}8080" "${p}8082"; do
      wait_http "http://127.0.0.1:$port/healthz" "frontend-$r-$port" 30
    done
  done
  status
  cat <<TXT

  live page (west)  http://127.0.0.1:28080/?video=demo
  post in east      curl -X POST -H 'Content-Type: application/json' \\
                      -d '{"user":"alice","text":"hello from east"}' http://127.0.0.1:18081/v1/videos/demo/comments
  watch in west     curl -N http://127.0.0.1:28080/v1/videos/demo/events
TXT
}

leaf() {
  if ! running east-1 && ! running east-2 && ! running east-3; then
    echo "east is not running: scripts/multi-region.sh up first" >&2
    exit 1
  fi
  build
  secrets
  export RUST_LOG="${RUST_LOG:-info}"
  start edge-east "$NATS_SERVER_BIN" -c nats/multi-region/leaf-east.conf
  wait_http http://127.0.0.1:18322/healthz "nats-server edge-east" 30
  start frontend-edge-18083 "$bin/frontend" --listen 127.0.0.1:18083 --nats nats://127.0.0.1:14322 --js-domain hub \
    --partitions "$PARTITIONS" --region east --regions east,west --publisher-url http://127.0.0.1:18081
  wait_http http://127.0.0.1:18083/healthz frontend-edge-18083 30
  status
}

stop() { # name
  local name=$1 pid i
  [ -f "$dir/$name.pid" ] || return 0
  pid=$(cat "$dir/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name did not stop within 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/$name.pid"
}

down() {
  local r i p
  # Viewers' nodes first (they drain), then the publishers, then NATS.
  stop frontend-edge-18083
  for r in "${regions[@]}"; do
    p=$(prefix "$r")
    stop "frontend-$r-${p}8080" &
    stop "frontend-$r-${p}8082" &
  done
  wait
  for r in "${regions[@]}"; do stop "publisher-$r"; done
  stop edge-east
  for r in "${regions[@]}"; do
    for i in 1 2 3; do stop "$r-$i" & done
  done
  wait
  echo "multi-region stopped (stores and logs kept in $dir/)"
}

# One line per process: name, address, pid, health.
line() { # name address health-url [extra]
  local state="down"
  if running "$1"; then
    state="pid $(cat "$dir/$1.pid")"
    if body=$(curl -fs --max-time 2 "$3" 2>/dev/null); then
      state="$state, healthy${4:+, $4}"
    else
      state="$state, NOT healthy"
    fi
  fi
  printf '  %-20s %-24s %s\n' "$1" "$2" "$state"
}

# Routes, gateways and leaf nodes of a nats-server, from its /varz.
links() { # monitor port
  curl -fs --max-time 2 "http://127.0.0.1:$1/varz" 2>/dev/null | python3 -c '
import json, sys
v = json.load(sys.stdin)
print("routes %s, leafs %s, cluster %s" % (v.get("routes", 0), v.get("leafnodes", 0),
      v.get("cluster", {}).get("name", "-")))' 2>/dev/null || true
}

gateways() { # monitor port
  curl -fs --max-time 2 "http://127.0.0.1:$1/gatewayz" 2>/dev/null | python3 -c '
import json, sys
g = json.load(sys.stdin)
out = sorted((g.get("outbound_gateways") or {}).keys())
print("gateways to " + (",".join(out) if out else "none"))' 2>/dev/null || true
}

status() {
  local r i p port
  for r in "${regions[@]}"; do
    p=$(prefix "$r")
    echo "region $r"
    for i in 1 2 3; do
      local m="${p}822$((1 + i))"
      line "$r-$i" "nats://127.0.0.1:${p}422$((1 + i))" "http://127.0.0.1:$m/healthz" \
        "$(links "$m"), $(gateways "$m")"
    done
    line "publisher-$r" "http://127.0.0.1:${p}8081" "http://127.0.0.1:${p}8081/healthz"
    for port in "${p}8080" "${p}8082"; do
      line "frontend-$r-$port" "http://127.0.0.1:$port" "http://127.0.0.1:$port/healthz"
    done
  done
  if running edge-east || running frontend-edge-18083; then
    echo "edge site (leaf node of east)"
    line edge-east nats://127.0.0.1:14322 http://127.0.0.1:18322/healthz
    line frontend-edge-18083 http://127.0.0.1:18083 http://127.0.0.1:18083/healthz
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  leaf) leaf ;;
  *) sed -n '2,9p' "$0" >&2; exit 64 ;;
esac
