#!/usr/bin/env bash
# Quick start: everything Keyport needs on one Debian machine, in one command.
#   scripts/quickstart.sh          (as root the first time: it installs Debian's keystone)
# Installs Debian's Keystone when missing, runs it on loopback with demo users alice
# (member of project demo), bob (reader of demo) and admin, whose random passwords it
# makes on first start and keeps in .keyport/demo-users.env; builds Keyport when its
# sources are newer than dist/; generates certificates; makes a tiny demo image offline
# (.keyport/demo-image); and runs the token server (9002) and the registry (9001) in the
# foreground, on 127.0.0.1 unless KEYPORT_BIND says otherwise. Ctrl-C stops Keyport and
# the demo Keystone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE=${KEYPORT_QUICKSTART_DIR:-$ROOT/.keyport}
# Loopback unless told otherwise: the demo users' passwords are printed on the terminal.
export KEYPORT_BIND=${KEYPORT_BIND:-127.0.0.1}
case "$KEYPORT_BIND" in
  127.*|::1|localhost) HOST=${KEYPORT_PUBLIC_HOST:-localhost} ;;
  *) HOST=${KEYPORT_PUBLIC_HOST:-$(hostname)} ;;
esac
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
# Random demo passwords, made once and kept (mode 0600) so later starts reuse them. A
# Keystone state from before the file existed has other passwords: start it afresh.
USERS="$STATE/demo-users.env"
if [ ! -s "$USERS" ]; then
  rm -rf "$STATE/keystone"
  pw() { openssl rand -hex 10; }
  (umask 077; printf 'ALICE_PW=%s\nBOB_PW=%s\nADMIN_PW=%s\nSERVICE_PW=%s\n' "$(pw)" "$(pw)" "$(pw)" "$(pw)" > "$USERS.tmp")
  mv "$USERS.tmp" "$USERS"
fi
# shellcheck disable=SC1090
. "$USERS"
export KS_DIR="$STATE/keystone" KS_PORT=${KS_PORT:-5000} KS_DEMO_USERS=1 KS_LOCKOUT_ATTEMPTS=5
export KS_ADMIN_PASSWORD="$ADMIN_PW" KS_SERVICE_PASSWORD="$SERVICE_PW" KS_ALICE_PASSWORD="$ALICE_PW" KS_BOB_PASSWORD="$BOB_PW"
scripts/keystone.sh up
trap 'scripts/keystone.sh down >/dev/null 2>&1 || true' EXIT

export KEYPORT_KEYSTONE_URL="http://127.0.0.1:$KS_PORT/v3"
export KEYPORT_KEYSTONE_SERVICE_USER=keyport KEYPORT_KEYSTONE_SERVICE_PASSWORD="$SERVICE_PW"
export KEYPORT_KEYSTONE_SERVICE_PROJECT=service
export KEYPORT_PUBLIC_HOST="$HOST"
export KEYPORT_SERVICE="${KEYPORT_SERVICE:-$HOST:$REG_PORT}"
export KEYPORT_CERTS_DIR="${KEYPORT_CERTS_DIR:-$STATE/certs}" KEYPORT_STORAGE_ROOT="${KEYPORT_STORAGE_ROOT:-$STATE/data}"
node dist/cli.js certs >/dev/null
# A directory holding only the CA, for skopeo's and podman's --cert-dir.
mkdir -p "$STATE/trust" && cp "$KEYPORT_CERTS_DIR/ca.crt" "$STATE/trust/ca.crt"
scripts/demo-image.sh "$STATE/demo-image" "$HOST:$REG_PORT/alice/hello:1" >/dev/null
REL=${STATE#"$ROOT"/}

cat <<MSG

Keyport is starting: registry https://$HOST:$REG_PORT, token server https://$HOST:$TOKEN_PORT
Demo Keystone users (passwords also in $REL/demo-users.env):
  alice / $ALICE_PW   member of project demo: pushes to alice/... and demo/...
  bob   / $BOB_PW   reader of project demo
  admin / $ADMIN_PW   admin

In another shell, from $ROOT, push the demo image ($REL/demo-image) with skopeo:
  . $REL/demo-users.env
  skopeo copy --dest-cert-dir $REL/trust --dest-creds alice:"\$ALICE_PW" oci:$REL/demo-image/oci:latest docker://$HOST:$REG_PORT/alice/hello:1

or with docker, after trusting the CA once (podman and skopeo read /etc/containers/certs.d/ the same way):
  mkdir -p /etc/docker/certs.d/$HOST:$REG_PORT && cp $KEYPORT_CERTS_DIR/ca.crt /etc/docker/certs.d/$HOST:$REG_PORT/
  docker load -i $REL/demo-image/image.tar
  echo "\$ALICE_PW" | docker login $HOST:$REG_PORT -u alice --password-stdin
  docker push $HOST:$REG_PORT/alice/hello:1

MSG
node dist/cli.js start
