#!/usr/bin/env bash
# Runs Debian's dockerd privately for the end-to-end tests: its own socket, data root
# and exec root, no iptables, no bridge, vfs storage (works without overlay mounts).
#   scripts/dockerd.sh [up|down|status]     DOCKERD_DIR=/tmp/keyport-test/docker
# Clients: DOCKER_HOST=unix://$DOCKERD_DIR/docker.sock
set -euo pipefail
CMD=${1:-up}
D=${DOCKERD_DIR:-/tmp/keyport-test/docker}
SOCK="$D/docker.sock"
PIDFILE="$D/dockerd.pid"
running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
answers() { DOCKER_HOST="unix://$SOCK" docker version -f '{{.Server.Version}}' >/dev/null 2>&1; }
case "$CMD" in
  up)
    command -v dockerd >/dev/null || { echo "dockerd: not installed (scripts/deps.sh)" >&2; exit 1; }
    mkdir -p "$D/root" "$D/exec" "$D/cli"
    if running && answers; then echo "dockerd: READY unix://$SOCK"; exit 0; fi
    [ -f "$D/daemon.json" ] || echo '{}' > "$D/daemon.json"
    setsid nohup dockerd --config-file "$D/daemon.json" --host "unix://$SOCK" \
      --data-root "$D/root" --exec-root "$D/exec" --pidfile "$PIDFILE" \
      --iptables=false --ip6tables=false --ip-masq=false --bridge=none --storage-driver=vfs \
      >"$D/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 120); do answers && break; sleep 0.5; done
    answers || { echo "dockerd: did not start; see $D/dockerd.log" >&2; tail -20 "$D/dockerd.log" >&2; exit 1; }
    echo "dockerd: READY unix://$SOCK" ;;
  down)
    if running; then
      pid=$(cat "$PIDFILE"); kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"; echo "dockerd: stopped" ;;
  status) running && answers && echo "dockerd: UP unix://$SOCK" || { echo "dockerd: DOWN"; exit 1; } ;;
  *) echo "usage: $0 [up|down|status]" >&2; exit 2 ;;
esac
