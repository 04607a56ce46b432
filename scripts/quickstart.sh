#!/usr/bin/env bash
# Quick start: everything Keyport needs on one Debian machine, in one command.
#   sudo scripts/quickstart.sh
# Installs Debian's Keystone when missing, runs it on loopback with demo users
# (alice/alicepass, bob/bobpass, admin/adminpass), builds Keyport when its sources are
# newer than dist/, generates certificates and runs the token server (9002) and the
# registry (9001) in the foreground. Ctrl-C stops Keyport and the demo Keystone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE=${KEYPORT_QUICKSTART_DIR:-$ROOT/.keyport}
HOST=${KEYPORT_PUBLIC_HOST:-$(hostname)}
REG_PORT=${KEYPORT_REGISTRY_PORT:-9001}
TOKEN_PORT=${KEYPORT_TOKEN_PORT:-9002}

if [ "$(id -u)" != 0 ] && ! command -v keystone-manage >/dev/null; then
  echo "quickstart: Keystone is not installed; run as root (sudo $0) so it can be installed" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then scripts/deps.sh runtime; fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi
# Build only when a source is newer than the build (a fresh clone has none): rebuilding
# rewrites dist/ under any Keyport already running from this checkout.
if [ ! -f dist/cli.js ] || [ -n "$(find src tsconfig.json package.json -newer dist/cli.js -print -quit)" ]; then
  npm run --silent build
fi

mkdir -p "$STATE"
export KS_DIR="$STATE/keystone" KS_PORT=${KS_PORT:-5000} KS_DEMO_USERS=1 KS_LOCKOUT_ATTEMPTS=5
scripts/keystone.sh up
trap 'scripts/keystone.sh down >/dev/null 2>&1 || true' EXIT

export KEYPORT_KEYSTONE_URL="http://127.0.0.1:$KS_PORT/v3"
export KEYPORT_KEYSTONE_SERVICE_USER=keyport KEYPORT_KEYSTONE_SERVICE_PASSWORD=${KS_SERVICE_PASSWORD:-keyportpass}
export KEYPORT_KEYSTONE_SERVICE_PROJECT=service
export KEYPORT_PUBLIC_HOST="$HOST"
export KEYPORT_SERVICE="${KEYPORT_SERVICE:-$HOST:$REG_PORT}"
export KEYPORT_CERTS_DIR="${KEYPORT_CERTS_DIR:-$STATE/certs}" KEYPORT_STORAGE_ROOT="${KEYPORT_STORAGE_ROOT:-$STATE/data}"
node dist/cli.js certs >/dev/null

cat <<MSG

Keyport is starting: registry https://$HOST:$REG_PORT, token server https://$HOST:$TOKEN_PORT
Demo Keystone users: alice/alicepass (member of project demo), bob/bobpass (reader of demo), admin/adminpass.

Trust the CA once (docker; podman and skopeo use /etc/containers/certs.d/ the same way):
  sudo mkdir -p /etc/docker/certs.d/$HOST:$REG_PORT && sudo cp $KEYPORT_CERTS_DIR/ca.crt /etc/docker/certs.d/$HOST:$REG_PORT/ca.crt

Then log in and push:
  docker login $HOST:$REG_PORT -u alice -p alicepass
  docker tag busybox $HOST:$REG_PORT/alice/busybox:1 && docker push $HOST:$REG_PORT/alice/busybox:1

MSG
node dist/cli.js start
