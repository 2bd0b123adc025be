#!/usr/bin/env bash
# Mints an HS256 JWT for trying the services with --jwt-secret on (development and
# operations; real tokens come from your login service). The secret is read from
# $JWT_SECRET (the same variable the services read).
#
#   JWT_SECRET=... scripts/jwt.sh --sub alice                 # a poster's token
#   JWT_SECRET=... scripts/jwt.sh --videos launch,keynote     # a viewer's token
#   JWT_SECRET=... scripts/jwt.sh --sub alice --videos '*' --ttl 600
#   JWT_SECRET=... scripts/jwt.sh --sub mod --role moderator   # a moderator's token
#   JWT_SECRET=... scripts/jwt.sh --sub ann --videos demo --conversations c1  # /v1/stream
#
# --sub, --role, each video and each conversation must be ids (^[A-Za-z0-9_-]{1,64}$; a
# video may be "*"); the token expires after --ttl seconds (default 3600). Prints it.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
: "${JWT_SECRET:?set JWT_SECRET to the services\' --jwt-secret}"
command -v openssl >/dev/null || { echo "jwt.sh: openssl is required" >&2; exit 1; }

sub="" videos="" conversations="" role="" ttl=3600
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sub) sub="${2:-}"; shift 2 ;;
    --videos) videos="${2:-}"; shift 2 ;;
    --conversations) conversations="${2:-}"; shift 2 ;;
    --ttl) ttl="${2:-}"; shift 2 ;;
    --role) role="${2:-}"; shift 2 ;;
    *) usage ;;
  esac
done
id='^[A-Za-z0-9_-]{1,64}$'
[[ -z "$sub" || "$sub" =~ $id ]] || { echo "jwt.sh: invalid --sub" >&2; exit 64; }
[[ -z "$role" || "$role" =~ $id ]] || { echo "jwt.sh: invalid --role" >&2; exit 64; }
[[ "$ttl" =~ ^[0-9]+$ ]] || { echo "jwt.sh: --ttl must be seconds" >&2; exit 64; }
[[ -n "$sub" || -n "$videos" ]] || usage

payload="{\"exp\":$(( $(date +%s) + ttl ))"
[[ -n "$sub" ]] && payload+=",\"sub\":\"$sub\""
[[ -n "$role" ]] && payload+=",\"role\":\"$role\""
if [[ -n "$videos" ]]; then
  list=""
  IFS=',' read -ra vs <<<"$videos"
  for v in "${vs[@]}"; do
    [[ "$v" == "*" || "$v" =~ $id ]] || { echo "jwt.sh: invalid video $v" >&2; exit 64; }
    list+="${list:+,}\"$v\""
  done
  payload+=",\"videos\":[$list]"
fi
if [[ -n "$conversations" ]]; then
  list=""
  IFS=',' read -ra cs <<<"$conversations"
  for c in "${cs[@]}"; do
    [[ "$c" =~ $id ]] || { echo "jwt.sh: invalid conversation $c" >&2; exit 64; }
    list+="${list:+,}\"$c\""
  done
  payload+=",\"conversations\":[$list]"
fi
payload+="}"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
header="$(printf '%s' '{"alg":"HS256","typ":"JWT"}' | b64url)"
body="$(printf '%s' "$payload" | b64url)"
signature="$(printf '%s' "$header.$body" | openssl dgst -sha256 -hmac "$JWT_SECRET" -binary | b64url)"
echo "$header.$body.$signature"
