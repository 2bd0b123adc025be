#!/usr/bin/env bash
# A 3-node JetStream cluster on this machine (nats/cluster/n{1,2,3}.conf), in the
# background: clients on 127.0.0.1:4222-4224, monitoring on 8222-8224.
#   scripts/cluster.sh up | down | status
# Then: publisher --replicas 3 --partitions 3 --nats nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
#       frontend --partitions 3 --nats (the same URLs)
# `status` also shows which server leads each partition stream (from /jsz).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.run/cluster
mkdir -p "$dir"

up() {
  local bin; bin="$(scripts/lib/nats-server.sh)"
  for i in 1 2 3; do
    if [ -f "$dir/n$i.pid" ] && kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null; then
      echo "n$i already running"; continue
    fi
    "$bin" -c "nats/cluster/n$i.conf" >"$dir/n$i.log" 2>&1 &
    echo $! >"$dir/n$i.pid"
  done
  for i in 1 2 3; do
    local port=$((8221 + i))
    for _ in $(seq 1 150); do
      curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
      sleep 0.2
    done
  done
  status
}

down() {
  for i in 1 2 3; do
    if [ -f "$dir/n$i.pid" ]; then
      kill "$(cat "$dir/n$i.pid")" 2>/dev/null || true
      rm -f "$dir/n$i.pid"
    fi
  done
  echo "cluster stopped"
}

status() {
  for i in 1 2 3; do
    local port=$((8221 + i)) state="down"
    if [ -f "$dir/n$i.pid" ] && kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null; then
      state="running (pid $(cat "$dir/n$i.pid"))"
      curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && state="$state, healthy" || state="$state, not ready"
    fi
    echo "n$i  nats://127.0.0.1:$((4221 + i))  monitor http://127.0.0.1:$port  $state"
  done  # Stream leaders, from any healthy node's monitoring endpoint.
  for i in 1 2 3; do
    local port=$((8221 + i)) jsz
    jsz=$(curl -fs "http://127.0.0.1:$port/jsz?accounts=true&streams=true" 2>/dev/null) || continue
    python3 - "$jsz" <<'PY'
import json, sys
data = json.loads(sys.argv[1])
rows = [(s["name"], (s.get("cluster") or {}).get("leader", "?"))
        for a in data.get("account_details", []) for s in a.get("stream_detail", [])]
for name, leader in sorted(rows):
    print(f"  stream {name:<28} leader {leader}")
PY
    break
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
