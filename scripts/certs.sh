#!/usr/bin/env bash
# Makes a private CA and a server certificate for nats-server's TLS, with openssl:
#
#   scripts/certs.sh [DIR]        (default: .run/certs, git-ignored)
#
# Writes DIR/ca.pem (clients trust it: --nats-tls-ca DIR/ca.pem), DIR/ca-key.pem,
# DIR/server.pem and DIR/server-key.pem (nats-server's tls block, see nats/auth/tls.conf).
# The server certificate names localhost, 127.0.0.1 and ::1, plus the hosts in
# $CERT_HOSTS (space separated DNS names or IP addresses); it is valid for $CERT_DAYS
# days (default 30). For tests and local runs: in production use your own PKI.
set -euo pipefail

dir="${1:-.run/certs}"
days="${CERT_DAYS:-30}"
command -v openssl >/dev/null || { echo "certs.sh: openssl is required" >&2; exit 1; }

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for host in ${CERT_HOSTS:-}; do
  if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then san+=",IP:$host"; else san+=",DNS:$host"; fi
done

mkdir -p "$dir"
cd "$dir"
umask 077
curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

openssl req -x509 "${curve[@]}" -keyout ca-key.pem -out ca.pem -days "$days" \
  -subj "/CN=live-video NATS test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req "${curve[@]}" -keyout server-key.pem -out server.csr \
  -subj "/CN=nats-server" 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem \
  -set_serial "0x$(openssl rand -hex 16)" -days "$days" -out server.pem \
  -extfile <(printf '%s\n' \
    "subjectAltName=$san" \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth") 2>/dev/null
rm -f server.csr
chmod 644 ca.pem server.pem

echo "certs.sh: wrote $(pwd)/{ca.pem,ca-key.pem,server.pem,server-key.pem} for $san"
