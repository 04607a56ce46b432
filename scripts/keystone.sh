#!/usr/bin/env bash
# Runs a real OpenStack Keystone (Debian's keystone package, served by uwsgi) on
# loopback with sqlite and fernet tokens. Used by the quick start and by the tests.
#
#   scripts/keystone.sh [up|down|status|purge]        (default: up)
#
# Environment:
#   KS_DIR=/var/lib/keyport/keystone   state: sqlite db, fernet keys, logs, pid
#   KS_HOST=127.0.0.1 KS_PORT=5000     listen address
#   KS_ADMIN_PASSWORD=adminpass        password of the bootstrap admin user
#   KS_SERVICE_PASSWORD=keyportpass    password of the 'keyport' service account
#   KS_DEMO_USERS=0                    1: also create alice and bob (quick start)
#   KS_ALICE_PASSWORD=alicepass KS_BOB_PASSWORD=bobpass   their passwords
#   KS_LOCKOUT_ATTEMPTS=5              keystone's own lockout ([security_compliance]; 0 = off)
#   KS_HASH_ROUNDS=4                   bcrypt rounds for new passwords (fast for tests)
#   KS_TOKEN_EXPIRATION=3600           lifetime of keystone tokens in seconds
#   KS_HTTPS_PORT= KS_TLS_CERT= KS_TLS_KEY=   also serve HTTPS on that port (same Keystone)
#   KS_SWIFT_URL=                      object-store endpoint to put in the catalog; when set, also
#                                      Swift's service user 'swift' and an EC2 (S3) credential
#                                      for 'keyport' on project 'service'
#   KS_SWIFT_PASSWORD=swiftpass        password of Swift's service user
#   KS_EC2_ACCESS=keyport-ec2-access KS_EC2_SECRET=keyport-ec2-secret   that EC2 credential
# `up` is idempotent. On success it prints "keystone: READY <url>" and writes
# $KS_DIR/fixtures.json with the ids of what it created.
set -euo pipefail
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"

CMD=${1:-up}
KS_DIR=${KS_DIR:-/var/lib/keyport/keystone}
KS_HOST=${KS_HOST:-127.0.0.1}
KS_PORT=${KS_PORT:-5000}
KS_ADMIN_PASSWORD=${KS_ADMIN_PASSWORD:-adminpass}
KS_SERVICE_PASSWORD=${KS_SERVICE_PASSWORD:-keyportpass}
KS_DEMO_USERS=${KS_DEMO_USERS:-0}
KS_ALICE_PASSWORD=${KS_ALICE_PASSWORD:-alicepass}
KS_BOB_PASSWORD=${KS_BOB_PASSWORD:-bobpass}
KS_LOCKOUT_ATTEMPTS=${KS_LOCKOUT_ATTEMPTS:-5}
KS_LOCKOUT_DURATION=${KS_LOCKOUT_DURATION:-60}
KS_HASH_ROUNDS=${KS_HASH_ROUNDS:-4}
KS_TOKEN_EXPIRATION=${KS_TOKEN_EXPIRATION:-3600}
KS_SWIFT_URL=${KS_SWIFT_URL:-}
KS_SWIFT_PREFIX=${KS_SWIFT_PREFIX:-KEY_}
KS_HTTPS_PORT=${KS_HTTPS_PORT:-}
KS_TLS_CERT=${KS_TLS_CERT:-}
KS_TLS_KEY=${KS_TLS_KEY:-}
KS_SWIFT_PASSWORD=${KS_SWIFT_PASSWORD:-swiftpass}
KS_EC2_ACCESS=${KS_EC2_ACCESS:-keyport-ec2-access}
KS_EC2_SECRET=${KS_EC2_SECRET:-keyport-ec2-secret}
URL="http://$KS_HOST:$KS_PORT"
PY=/usr/bin/python3   # Debian's python: keystone's modules live there
PIDFILE="$KS_DIR/uwsgi.pid"

log() { echo "keystone: $*"; }
die() { echo "keystone: ERROR: $*" >&2; exit 1; }
running() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
pid_alive() { [ -s "$PIDFILE" ] && running "$(cat "$PIDFILE")"; }
api_up() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$URL/v3")" = 200 ]; }

stop() {
  if pid_alive; then
    local pid; pid=$(cat "$PIDFILE")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -KILL "$pid" 2>/dev/null || true
    log "stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
}

write_conf() {
  cat > "$KS_DIR/keystone.conf" <<CONF
[DEFAULT]
log_file = $KS_DIR/keystone.log
debug = false
[database]
connection = sqlite:///$KS_DIR/keystone.db
[token]
provider = fernet
expiration = $KS_TOKEN_EXPIRATION
[fernet_tokens]
key_repository = $KS_DIR/fernet-keys
[fernet_receipts]
key_repository = $KS_DIR/fernet-keys
[credential]
key_repository = $KS_DIR/credential-keys
[identity]
password_hash_rounds = $KS_HASH_ROUNDS
$( [ "$KS_LOCKOUT_ATTEMPTS" -gt 0 ] && printf '[security_compliance]\nlockout_failure_attempts = %s\nlockout_duration = %s\n' "$KS_LOCKOUT_ATTEMPTS" "$KS_LOCKOUT_DURATION" )
[cache]
enabled = true
# memory_pickle: the plain memory backend hands out shared dicts keystone mutates,
# which breaks the second EC2/S3 credential check.
backend = dogpile.cache.memory_pickle
CONF
}

kmanage() { keystone-manage --config-file "$KS_DIR/keystone.conf" "$@" 2>>"$KS_DIR/manage.err"; }

init_once() {
  [ -f "$KS_DIR/.initialized" ] && return
  rm -rf "$KS_DIR/keystone.db" "$KS_DIR/fernet-keys" "$KS_DIR/credential-keys"
  local u; u=$(id -un); local g; g=$(id -gn)
  kmanage fernet_setup --keystone-user "$u" --keystone-group "$g" & local p1=$!
  kmanage credential_setup --keystone-user "$u" --keystone-group "$g" & local p2=$!
  kmanage db_sync & local p3=$!
  wait $p1 && wait $p2 && wait $p3 || die "keystone-manage failed; see $KS_DIR/manage.err"
  # WAL mode: without it concurrent requests fail with "database is locked" (HTTP 500).
  $PY -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode=WAL')" "$KS_DIR/keystone.db"
  kmanage bootstrap --bootstrap-password "$KS_ADMIN_PASSWORD" --bootstrap-region-id RegionOne \
    --bootstrap-public-url "$URL/v3" --bootstrap-internal-url "$URL/v3" --bootstrap-admin-url "$URL/v3" \
    || die "bootstrap failed; see $KS_DIR/manage.err"
  touch "$KS_DIR/.initialized"
}

start() {
  if pid_alive && api_up; then return; fi
  pid_alive && stop
  if curl -s -o /dev/null -m 2 "$URL/"; then die "port $KS_PORT is taken by another program"; fi
  # --http: uwsgi's keep-alive aware router; one worker, one thread (sqlite).
  local https=()
  [ -n "$KS_HTTPS_PORT" ] && https=(--https "$KS_HOST:$KS_HTTPS_PORT,$KS_TLS_CERT,$KS_TLS_KEY")
  OS_KEYSTONE_CONFIG_FILES="$KS_DIR/keystone.conf" setsid nohup uwsgi \
    --plugin python3,http --http "$KS_HOST:$KS_PORT" "${https[@]}" --http-keepalive --http-timeout 120 \
    --socket "$KS_DIR/uwsgi.sock" --wsgi-file /usr/bin/keystone-wsgi-public \
    --master --processes 1 --threads 1 --die-on-term --no-orphans \
    --buffer-size 65535 --pidfile "$PIDFILE" --logto "$KS_DIR/uwsgi.log" \
    >/dev/null 2>&1 </dev/null &
  for _ in $(seq 1 600); do api_up && break; sleep 0.1; done
  api_up || die "keystone did not answer on $URL/v3 within 60 s; see $KS_DIR/uwsgi.log and keystone.log"
}

fixtures() {
  KS_URL="$URL" KS_ADMIN_PASSWORD="$KS_ADMIN_PASSWORD" KS_SERVICE_PASSWORD="$KS_SERVICE_PASSWORD" \
  KS_DIR="$KS_DIR" KS_DEMO_USERS="$KS_DEMO_USERS" KS_ALICE_PASSWORD="$KS_ALICE_PASSWORD" KS_BOB_PASSWORD="$KS_BOB_PASSWORD" KS_SWIFT_URL="$KS_SWIFT_URL" KS_SWIFT_PREFIX="$KS_SWIFT_PREFIX" \
  KS_SWIFT_PASSWORD="$KS_SWIFT_PASSWORD" KS_EC2_ACCESS="$KS_EC2_ACCESS" KS_EC2_SECRET="$KS_EC2_SECRET" \
  $PY - <<'PYEOF'
import json, os, urllib.request, urllib.error
E = os.environ
U = E['KS_URL'] + '/v3'
def call(method, path, body=None, token=None):
    req = urllib.request.Request(U + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header('Content-Type', 'application/json')
    if token: req.add_header('X-Auth-Token', token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read(); return r.status, r.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read(); return e.code, e.headers, (json.loads(raw) if raw else None)
def must(res):
    if res[0] not in (200, 201, 204): raise SystemExit('keystone fixture call failed: %r %r' % (res[0], res[2]))
    return res[2]
st, h, b = call('POST', '/auth/tokens?nocatalog', {'auth': {'identity': {'methods': ['password'],
    'password': {'user': {'name': 'admin', 'domain': {'id': 'default'}, 'password': E['KS_ADMIN_PASSWORD']}}},
    'scope': {'project': {'name': 'admin', 'domain': {'id': 'default'}}}}})
if st != 201: raise SystemExit('admin login failed: %s %s' % (st, b))
T = h['X-Subject-Token']
def find(coll, **q):
    qs = '&'.join('%s=%s' % kv for kv in q.items())
    items = must(call('GET', '/%s?%s' % (coll, qs), token=T))[coll]
    return items[0] if items else None
def ensure(coll, key, name, body):
    return find(coll, name=name) or must(call('POST', '/' + coll, {key: body}, T))[key]
roles = {r: ensure('roles', 'role', r, {'name': r})['id'] for r in ('admin', 'member', 'reader', 'service')}
projects = {p: ensure('projects', 'project', p, {'name': p, 'domain_id': 'default'})['id'] for p in ('admin', 'service', 'demo')}
def user(name, pw, ignore_lockout=False):
    u = find('users', name=name, domain_id='default')
    if u: return u['id']
    return must(call('POST', '/users', {'user': {'name': name, 'domain_id': 'default', 'password': pw,
        'options': {'ignore_lockout_failure_attempts': ignore_lockout}}}, T))['user']['id']
users = {'admin': user('admin', E['KS_ADMIN_PASSWORD'], True),
         'keyport': user('keyport', E['KS_SERVICE_PASSWORD'], True)}
grants = [('service', 'keyport', 'admin')]
if E.get('KS_DEMO_USERS') == '1':
    users['alice'] = user('alice', E['KS_ALICE_PASSWORD']); users['bob'] = user('bob', E['KS_BOB_PASSWORD'])
    grants += [('demo', 'alice', 'member'), ('demo', 'bob', 'reader')]
surl = E.get('KS_SWIFT_URL', '')
ec2 = None
if surl:
    # Swift's authtoken and s3token log in as this user; validating tokens and answering
    # /v3/s3tokens needs the service (or admin) role.
    users['swift'] = user('swift', E['KS_SWIFT_PASSWORD'], True)
    grants += [('service', 'swift', 'admin'), ('service', 'swift', 'service')]
for p, u, r in grants:
    must(call('PUT', '/projects/%s/users/%s/roles/%s' % (projects[p], users[u], roles[r]), token=T))
if surl:
    blob = json.dumps({'access': E['KS_EC2_ACCESS'], 'secret': E['KS_EC2_SECRET']})
    have = must(call('GET', '/credentials?type=ec2&user_id=' + users['keyport'], token=T))['credentials']
    if not any(json.loads(c['blob']).get('access') == E['KS_EC2_ACCESS'] for c in have):
        must(call('POST', '/credentials', {'credential': {'type': 'ec2', 'user_id': users['keyport'],
            'project_id': projects['service'], 'blob': blob}}, T))
    ec2 = {'user': 'keyport', 'project': 'service', 'access': E['KS_EC2_ACCESS'], 'secret': E['KS_EC2_SECRET']}
    svc = find('services', type='object-store') or must(call('POST', '/services',
        {'service': {'name': 'swift', 'type': 'object-store', 'enabled': True}}, T))['service']
    want = '%s/v1/%s%%(project_id)s' % (surl.rstrip('/'), E['KS_SWIFT_PREFIX'])
    eps = must(call('GET', '/endpoints?service_id=' + svc['id'], token=T))['endpoints']
    for iface in ('public', 'internal', 'admin'):
        e = [x for x in eps if x['interface'] == iface]
        if e and e[0]['url'] != want: must(call('PATCH', '/endpoints/' + e[0]['id'], {'endpoint': {'url': want}}, T))
        elif not e: must(call('POST', '/endpoints', {'endpoint': {'service_id': svc['id'], 'interface': iface,
                                'url': want, 'region_id': 'RegionOne'}}, T))
json.dump({'url': U, 'projects': projects, 'roles': roles, 'users': users, 'ec2': ec2}, open(os.path.join(E['KS_DIR'], 'fixtures.json'), 'w'), indent=1)
PYEOF
}

status() { if pid_alive && api_up; then echo "keystone: UP $URL/v3 (pid $(cat "$PIDFILE"))"; else echo "keystone: DOWN"; return 1; fi; }

case "$CMD" in
  up)
    command -v keystone-manage >/dev/null || die "keystone is not installed (scripts/deps.sh)"
    [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || die "uwsgi-plugin-python3 is not installed (scripts/deps.sh)"
    mkdir -p "$KS_DIR"; chmod 700 "$KS_DIR"
    old=$(md5sum 2>/dev/null < "$KS_DIR/keystone.conf" || true); write_conf
    [ "$old" != "$(md5sum < "$KS_DIR/keystone.conf")" ] && pid_alive && stop
    init_once; start; fixtures
    log "READY $URL/v3" ;;
  down) stop ;;
  status) status ;;
  purge) stop; rm -rf "$KS_DIR"; log "purged $KS_DIR" ;;
  *) die "usage: $0 [up|down|status|purge]" ;;
esac
