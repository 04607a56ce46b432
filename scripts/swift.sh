#!/usr/bin/env bash
# Runs a real single-node OpenStack Swift (Debian's swift-proxy/-object/-container/
# -account packages, one replica, devices as plain directories) on loopback, for the
# storage drivers' tests and for trying Keyport against Swift on one machine.
#
#   scripts/swift.sh [up|down|status|purge]      (default: up)
#
# Proxy pipeline: tempurl, slo, dlo, bulk, copy, s3api and tempauth (account AUTH_test,
# user test:tester / testing); with SW_KEYSTONE_URL also authtoken, s3token and
# keystoneauth against that Keystone (accounts KEY_<project id>, S3 with EC2 credentials).
#
# Environment:
#   SW_DIR=/var/lib/keyport/swift    state: configs, rings, devices, logs, pids
#   SW_HOST=127.0.0.1 SW_PORT=8080   proxy listen address
#   SW_OBJ_PORT=6200 SW_CONT_PORT=6201 SW_ACCT_PORT=6202 SW_MEMCACHE_PORT=11211
#   SW_KEYSTONE_URL=                 Keystone base URL, e.g. http://127.0.0.1:5000 ('' = tempauth only)
#   SW_KS_USER=swift SW_KS_PASSWORD=swiftpass SW_KS_PROJECT=service   Swift's own service user
#   SW_KS_PREFIX=KEY_                keystoneauth reseller prefix (must match the catalog endpoint)
#   SW_KS_TOKEN_CACHE_TIME=60        seconds authtoken trusts a validated token (revocations lag this long)
#   SW_TEMPAUTH_TOKEN_LIFE=86400     lifetime of tempauth tokens in seconds
# `up` is idempotent and restarts what runs with a changed configuration. On success it
# prints "swift: READY <proxy url>".
#   scripts/swift.sh proxy-up PORT | proxy-down PORT
# run or stop one more proxy server on PORT over the same store: the tests take it away
# and bring it back to simulate an outage without disturbing anything else.
#
# /etc/swift/swift.conf (hash path prefix/suffix, storage policy 0) is the one file outside
# SW_DIR that Swift reads from a fixed place; it is created only when missing.
set -euo pipefail
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

CMD=${1:-up}
SW_DIR=${SW_DIR:-/var/lib/keyport/swift}
SW_HOST=${SW_HOST:-127.0.0.1}
SW_PORT=${SW_PORT:-8080}
SW_OBJ_PORT=${SW_OBJ_PORT:-6200}; SW_CONT_PORT=${SW_CONT_PORT:-6201}; SW_ACCT_PORT=${SW_ACCT_PORT:-6202}
SW_MEMCACHE_PORT=${SW_MEMCACHE_PORT:-11211}
SW_KEYSTONE_URL=${SW_KEYSTONE_URL:-}
SW_KS_USER=${SW_KS_USER:-swift}; SW_KS_PASSWORD=${SW_KS_PASSWORD:-swiftpass}
SW_KS_PROJECT=${SW_KS_PROJECT:-service}; SW_KS_PREFIX=${SW_KS_PREFIX:-KEY_}
SW_KS_TOKEN_CACHE_TIME=${SW_KS_TOKEN_CACHE_TIME:-60}
SW_TEMPAUTH_TOKEN_LIFE=${SW_TEMPAUTH_TOKEN_LIFE:-86400}
PY=/usr/bin/python3   # Debian's python: swift's modules live there
E=$SW_DIR/etc; RUN=$SW_DIR/run; LOG=$SW_DIR/log; SRV=$SW_DIR/srv
PROXY="http://$SW_HOST:$SW_PORT"
SERVERS="object container account proxy"

log() { echo "swift: $*"; }
die() { echo "swift: ERROR: $*" >&2; exit 1; }
port_of() { case $1 in object) echo "$SW_OBJ_PORT";; container) echo "$SW_CONT_PORT";;
                       account) echo "$SW_ACCT_PORT";; proxy) echo "$SW_PORT";; proxy-*) echo "${1#proxy-}";; esac; }
# Alive = exists and is not a zombie (PID 1 of a container may reap orphans late).
running() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
alive() { [ -s "$RUN/$1.pid" ] && running "$(cat "$RUN/$1.pid")"; }
healthy() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$SW_HOST:$(port_of "$1")/healthcheck")" = 200 ]; }
mc_ok() { [ "$(printf 'version\r\n' | timeout 2 bash -c "exec 3<>/dev/tcp/$SW_HOST/$SW_MEMCACHE_PORT && cat >&3 && head -c 7 <&3" 2>/dev/null)" = VERSION ]; }

stop_many() {
  # SIGTERM everything first, then wait: each server takes a second or two to exit.
  local n p pids="" names=""
  for n in "$@"; do alive "$n" && { pids="$pids $(cat "$RUN/$n.pid")"; names="$names $n"; }; done
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 100); do local any=0; for p in $pids; do running "$p" && any=1; done
      [ $any = 0 ] && break; sleep 0.1; done
    for p in $pids; do running "$p" && kill -KILL "$p" 2>/dev/null || true; done
    log "stopped$names"
  fi
  for n in "$@"; do rm -f "$RUN/$n.pid"; done
}
extra_proxies() { local f; for f in "$RUN"/proxy-*.pid; do [ -e "$f" ] && basename "$f" .pid; done; return 0; }
stop() { stop_many proxy $(extra_proxies) object container account memcache; }

ensure_swift_conf() {
  if ! grep -qs '^swift_hash_path_\(suffix\|prefix\)' /etc/swift/swift.conf; then
    log "creating /etc/swift/swift.conf"
    mkdir -p /etc/swift
    printf '[swift-hash]\nswift_hash_path_suffix = keyport-test\nswift_hash_path_prefix = keyport-test\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' > /etc/swift/swift.conf
  fi
}

check_xattr() {
  # Swift keeps object metadata in user xattrs; tmpfs and some overlay setups lack them.
  $PY - "$SRV" <<'PYEOF' || die "$SRV does not support user xattrs, which Swift needs; choose SW_DIR on ext4 or xfs"
import os, sys, tempfile
fd, p = tempfile.mkstemp(dir=sys.argv[1])
try:
    os.setxattr(p, 'user.swift.metadata', b'x'); assert os.getxattr(p, 'user.swift.metadata') == b'x'
finally:
    os.close(fd); os.unlink(p)
PYEOF
}

build_rings() {
  local stamp="$SW_HOST/$SW_OBJ_PORT/$SW_CONT_PORT/$SW_ACCT_PORT"
  [ -f "$E/.rings" ] && [ "$(cat "$E/.rings")" = "$stamp" ] && return
  # Same as `swift-ring-builder X.builder create 8 1 1` + add + rebalance, in under a second.
  $PY - "$E" "$SW_HOST" "$SW_OBJ_PORT" "$SW_CONT_PORT" "$SW_ACCT_PORT" <<'PYEOF'
import sys
from swift.common.ring import RingBuilder
d, ip = sys.argv[1], sys.argv[2]
for name, port in zip(('object', 'container', 'account'), map(int, sys.argv[3:6])):
    b = RingBuilder(8, 1, 1)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': ip, 'port': port, 'device': 'sdb1',
               'weight': 1.0, 'replication_ip': ip, 'replication_port': port, 'meta': ''})
    b.rebalance(); b.save('%s/%s.builder' % (d, name)); b.get_ring().save('%s/%s.ring.gz' % (d, name))
PYEOF
  echo "$stamp" > "$E/.rings"
}

write_confs() {
  local n
  for n in object container account; do
    cat > "$E/$n-server.conf" <<EOF
[DEFAULT]
bind_ip = $SW_HOST
bind_port = $(port_of $n)
workers = 0
user = $(id -un)
devices = $SRV
mount_check = false
disable_fallocate = true
swift_dir = $E
log_name = $n-server
log_level = WARNING

[pipeline:main]
pipeline = healthcheck $n-server

[app:$n-server]
use = egg:swift#$n

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done
  local auth="s3api tempauth" ks=""
  if [ -n "$SW_KEYSTONE_URL" ]; then
    # Order matters: authtoken before s3api (else it strips what s3token set and S3
    # requests turn anonymous), and keystoneauth before tempauth (keystoneauth always
    # claims swift.authorize; tempauth then handles only its own AUTH_ tokens).
    auth="authtoken s3api s3token keystoneauth tempauth"
    ks="
[filter:s3token]
use = egg:swift#s3token
auth_uri = ${SW_KEYSTONE_URL%/}/v3
reseller_prefix = $SW_KS_PREFIX
delay_auth_decision = true
http_timeout = 10.0
# Keystone answers /v3/s3tokens only to admin or service callers: s3token logs in itself.
auth_type = password
auth_url = ${SW_KEYSTONE_URL%/}
username = $SW_KS_USER
password = $SW_KS_PASSWORD
project_name = $SW_KS_PROJECT
user_domain_id = default
project_domain_id = default
secret_cache_duration = 60

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = ${SW_KEYSTONE_URL%/}/v3
auth_url = ${SW_KEYSTONE_URL%/}
auth_type = password
interface = public
username = $SW_KS_USER
password = $SW_KS_PASSWORD
project_name = $SW_KS_PROJECT
user_domain_id = default
project_domain_id = default
delay_auth_decision = true
cache = swift.cache
token_cache_time = $SW_KS_TOKEN_CACHE_TIME
include_service_catalog = false

[filter:keystoneauth]
use = egg:swift#keystoneauth
reseller_prefix = $SW_KS_PREFIX
operator_roles = admin, member, swiftoperator
project_reader_roles = reader
reseller_admin_role = ResellerAdmin
"
  fi
  cat > "$E/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = $SW_HOST
bind_port = $SW_PORT
workers = 0
user = $(id -un)
swift_dir = $E
log_name = proxy-server
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl $auth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
reseller_prefix = AUTH
token_life = $SW_TEMPAUTH_TOKEN_LIFE
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
$ks
[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:cache]
use = egg:swift#memcache
memcache_servers = $SW_HOST:$SW_MEMCACHE_PORT

[filter:tempurl]
use = egg:swift#tempurl
methods = GET HEAD PUT POST DELETE

[filter:healthcheck]
use = egg:swift#healthcheck
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF
}

start_memcache() {
  # tempauth keeps its tokens in memcache: without it /auth/v1.0 answers 503.
  alive memcache && mc_ok && return
  mc_ok && die "port $SW_MEMCACHE_PORT answers memcache but is not ours; choose another SW_MEMCACHE_PORT"
  command -v memcached >/dev/null || die "memcached is not installed (scripts/deps.sh)"
  setsid nohup memcached -u "$(id -un)" -l "$SW_HOST" -p "$SW_MEMCACHE_PORT" -U 0 -m 64 \
    >"$LOG/memcache.log" 2>&1 </dev/null &
  echo $! > "$RUN/memcache.pid"
  for _ in $(seq 1 50); do mc_ok && return; sleep 0.1; done
  die "memcached did not start; see $LOG/memcache.log"
}

start_one() {
  local n=$1
  alive "$n" && healthy "$n" && return
  stop_many "$n"
  if curl -s -o /dev/null -m 1 "http://$SW_HOST:$(port_of "$n")/"; then
    die "port $(port_of "$n") is taken by another program; choose another for the $n server"
  fi
  local server=${n%%-*} conf="$E/$n-server.conf"
  if [ "$n" != "$server" ]; then   # an extra proxy: the main proxy's config on another port
    sed "s/^bind_port = .*/bind_port = $(port_of "$n")/" "$E/proxy-server.conf" > "$conf"
  fi
  # -v logs to stdout too: there is no syslog here.
  setsid nohup "swift-$server-server" "$conf" -v >>"$LOG/$n.log" 2>&1 </dev/null &
  echo $! > "$RUN/$n.pid"
}

wait_healthy() {
  local n
  for n in "$@"; do
    for _ in $(seq 1 300); do healthy "$n" && break; alive "$n" || break; sleep 0.1; done
    healthy "$n" || die "$n-server is not healthy on port $(port_of "$n"); see $LOG/$n.log"
  done
}

smoke() {
  local tok st
  tok=$(curl -s -i -m 10 "$PROXY/auth/v1.0" -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' \
        | awk 'tolower($1)=="x-auth-token:"{print $2}' | tr -d '\r')
  [ -n "$tok" ] || die "tempauth login failed; see $LOG/proxy.log"
  st=$(curl -s -o /dev/null -m 10 -w '%{http_code}' -I "$PROXY/v1/AUTH_test" -H "X-Auth-Token: $tok")
  [[ "$st" == 2?? ]] || die "HEAD /v1/AUTH_test answered $st"
  if [ -n "$SW_KEYSTONE_URL" ]; then
    local out
    out=$(curl -s -i -m 10 -X POST "${SW_KEYSTONE_URL%/}/v3/auth/tokens?nocatalog" -H 'Content-Type: application/json' \
      -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"$SW_KS_USER\",\"domain\":{\"id\":\"default\"},\"password\":\"$SW_KS_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"$SW_KS_PROJECT\",\"domain\":{\"id\":\"default\"}}}}}")
    tok=$(printf '%s' "$out" | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\r')
    local pid; pid=$(printf '%s' "$out" | sed -n '/^{/p' | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"]["project"]["id"])' 2>/dev/null || true)
    [ -n "$tok" ] && [ -n "$pid" ] || die "Keystone login of $SW_KS_USER failed"
    st=$(curl -s -o /dev/null -m 10 -w '%{http_code}' -I "$PROXY/v1/$SW_KS_PREFIX$pid" -H "X-Auth-Token: $tok")
    [[ "$st" == 2?? ]] || die "HEAD /v1/$SW_KS_PREFIX$pid with a Keystone token answered $st; see $LOG/proxy.log"
  fi
}

status() {
  local n rc=0
  for n in memcache $SERVERS; do
    if alive "$n" && { [ "$n" = memcache ] && mc_ok || healthy "$n"; }; then
      echo "swift $n: UP (pid $(cat "$RUN/$n.pid"))"
    else echo "swift $n: DOWN"; rc=1; fi
  done
  return $rc
}

case "$CMD" in
  up)
    for b in swift-proxy-server swift-object-server swift-container-server swift-account-server; do
      command -v $b >/dev/null || die "$b is not installed (scripts/deps.sh)"
    done
    mkdir -p "$E" "$RUN" "$LOG" "$SRV/sdb1"
    ensure_swift_conf; check_xattr; build_rings
    confs() { cat "$E"/{object,container,account,proxy}-server.conf 2>/dev/null | md5sum || true; }
    old=$(confs); write_confs
    [ "$old" != "$(confs)" ] && stop_many proxy $(extra_proxies) object container account
    start_memcache
    for n in object container account; do start_one $n; done
    wait_healthy object container account
    start_one proxy; wait_healthy proxy
    smoke
    log "READY $PROXY" ;;
  proxy-up)
    [ -n "${2:-}" ] || die "usage: $0 proxy-up PORT"
    start_one "proxy-$2"; wait_healthy "proxy-$2"; log "proxy up on http://$SW_HOST:$2" ;;
  proxy-down)
    [ -n "${2:-}" ] || die "usage: $0 proxy-down PORT"
    stop_many "proxy-$2" ;;
  down) stop ;;
  status) status ;;
  purge) stop; rm -rf "$SW_DIR"; log "purged $SW_DIR" ;;
  *) die "usage: $0 [up|down|status|purge|proxy-up PORT|proxy-down PORT]" ;;
esac
