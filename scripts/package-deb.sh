#!/usr/bin/env bash
# Builds the Debian package dist-deb/keyport_<version>_all.deb (npm run package).
#
#   scripts/package-deb.sh [--prebuilt] [--out DIR]
#   scripts/package-deb.sh --units DIR      only writes the units as packaged into DIR
#
# The package installs without network access: it carries the compiled code (dist/)
# and the production npm dependencies under /usr/lib/keyport, and needs only Node.js 20
# or later from the system (Depends: nodejs (>= 20)). The dependencies are this
# checkout's node_modules pruned to the lockfile's production tree, so building needs
# no registry either. --prebuilt uses dist/ as it is instead of running the build
# first; the checkout is otherwise only read, everything is staged in a temporary
# directory.
set -euo pipefail
CALLER=$(pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/dist-deb
PREBUILT=0
UNITS_ONLY=

die() {
  echo "package: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt) PREBUILT=1 ;;
    --out) OUT=$(cd "$CALLER" && realpath -m "${2:?--out needs a directory}"); shift ;;
    --units) UNITS_ONLY=$(cd "$CALLER" && realpath -m "${2:?--units needs a directory}"); shift ;;
    *) die "unknown argument $1 (usage: $0 [--prebuilt] [--out DIR] | --units DIR)" ;;
  esac
  shift
done

# The repository's units describe a copy in /opt/keyport (README: without the
# package); the package puts the code in /usr/lib/keyport and the documentation in
# /usr/share/doc/keyport and the man page.
package_units() {
  local dest=$1 f
  mkdir -p "$dest"
  for f in keyport-token.service keyport-registry.service keyport.target; do
    sed -e 's|^ExecStart=/usr/bin/node /opt/keyport/dist/cli\.js |ExecStart=/usr/bin/node /usr/lib/keyport/dist/cli.js |' \
        -e 's|^WorkingDirectory=/opt/keyport$|WorkingDirectory=/usr/lib/keyport|' \
        -e 's|^Documentation=.*$|Documentation=man:keyport(1) file:///usr/share/doc/keyport/README.md|' \
        "systemd/$f" > "$dest/$f"
    if grep -n '/opt/keyport' "$dest/$f" >&2; then die "systemd/$f: a path the package does not rewrite"; fi
    grep -q '^Documentation=man:keyport(1) ' "$dest/$f" || die "systemd/$f: no Documentation= line"
  done
  grep -q '^ExecStart=/usr/bin/node /usr/lib/keyport/dist/cli.js token$' "$dest/keyport-token.service" || die "keyport-token.service: unexpected ExecStart"
  grep -q '^ExecStart=/usr/bin/node /usr/lib/keyport/dist/cli.js registry$' "$dest/keyport-registry.service" || die "keyport-registry.service: unexpected ExecStart"
}

if [ -n "$UNITS_ONLY" ]; then
  package_units "$UNITS_ONLY"
  exit 0
fi

command -v dpkg-deb >/dev/null || die "dpkg-deb not found (Debian's dpkg package)"
[ -d node_modules ] || die "no node_modules: run npm ci first"
[ "$PREBUILT" = 1 ] || npm run --silent build
[ -f dist/cli.js ] || die "no dist/cli.js: run npm run build (or drop --prebuilt)"

VERSION=$(node -p 'require("./package.json").version')
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "package.json version $VERSION is not a Debian version"
if [ -n "${DEBEMAIL:-}" ]; then
  MAINTAINER="${DEBFULLNAME:-Keyport maintainers} <$DEBEMAIL>"
elif git config user.email >/dev/null 2>&1; then
  MAINTAINER="$(git config user.name || echo 'Keyport maintainers') <$(git config user.email)>"
else
  MAINTAINER="Keyport maintainers <root@localhost>"
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/keyport-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/root
LIB=$PKG/usr/lib/keyport
DOC=$PKG/usr/share/doc/keyport
mkdir -p "$LIB" "$PKG/usr/bin" "$PKG/lib/systemd/system" "$PKG/etc/keyport" "$DOC" "$PKG/usr/share/man/man1" "$PKG/DEBIAN"

cp -r dist config package.json package-lock.json "$LIB/"
rm -f "$LIB/config/keyport.env.example"

# Production dependencies only, offline: the lockfile decides what stays.
cp -a node_modules "$LIB/"
(cd "$LIB" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
(cd "$LIB" && npm ls --omit=dev --all --offline >/dev/null 2>&1) \
  || die "node_modules does not hold the production tree of package-lock.json: run npm ci"
rm -rf "$LIB/node_modules/.bin"
find "$LIB/node_modules" -type d -empty -delete
# Architecture: all holds only while no dependency carries compiled code: a native
# addon (*.node, or a binding.gyp to build one) or any other ELF file.
native=$(cd "$LIB" && node -e '
  const fs = require("node:fs"), path = require("node:path");
  const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(d, e.name);
    if (e.isDirectory()) return walk(p);
    if (!e.isFile()) return [];
    if (e.name.endsWith(".node") || e.name === "binding.gyp") return [p];
    const fd = fs.openSync(p, "r"), b = Buffer.alloc(4), n = fs.readSync(fd, b, 0, 4, 0);
    fs.closeSync(fd);
    return n === 4 && b.toString("latin1") === "\x7fELF" ? [p] : [];
  });
  console.log(walk("node_modules").join("\n"));')
[ -z "$native" ] || die "compiled code in the production dependencies (the package would not be Architecture: all):
$native"

install -m 0755 packaging/deb/keyport "$PKG/usr/bin/keyport"
package_units "$PKG/lib/systemd/system"
# A conffile; postinst gives it group keyport. 0640 from the start: it will hold the
# Keystone service password.
install -m 0640 config/keyport.env.example "$PKG/etc/keyport/keyport.env"
install -m 0644 README.md "$DOC/README.md"
install -m 0644 packaging/deb/copyright "$DOC/copyright"

# The man page is the command's own help, so the two cannot disagree.
roff_escape() { sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/' -e 's/-/\\-/g'; }
{
  echo ".TH KEYPORT 1 \"\" \"keyport $VERSION\" \"User Commands\""
  echo '.SH NAME'
  echo 'keyport \- private container registry and Keystone\-backed token server'
  echo '.SH SYNOPSIS'
  echo '.B keyport'
  echo '.I command'
  echo '.RB [ \-\-config'
  echo '.IR FILE ]'
  echo '.SH DESCRIPTION'
  echo 'Keyport is a Docker Registry v2 / OCI Distribution registry whose users log in'
  echo 'with their OpenStack Keystone credentials, and the token server that checks them.'
  echo 'The systemd units keyport\-token.service and keyport\-registry.service run'
  echo '.B keyport token'
  echo 'and'
  echo '.B keyport registry'
  echo 'as user keyport; keyport.target starts both.'
  echo '.PP'
  echo '.nf'
  node dist/cli.js --help | roff_escape
  echo '.fi'
  echo '.SS keyport copy'
  echo '.nf'
  node dist/cli.js copy --help | roff_escape
  echo '.fi'
  echo '.SS keyport gc'
  echo '.nf'
  node dist/cli.js gc --help | roff_escape
  echo '.fi'
  echo '.SS keyport whoami'
  echo '.nf'
  node dist/cli.js whoami --help | roff_escape
  echo '.fi'
  echo '.SH FILES'
  echo '.TP'
  echo '.I /etc/keyport/keyport.env'
  echo 'Settings of both units (EnvironmentFile=); every setting: \fBkeyport env\fR.'
  echo '.TP'
  echo '.I /etc/keyport/certs'
  echo 'TLS certificates and the token\-signing key, generated on first start when missing:'
  echo 'ca.crt is the CA clients must trust, token.crt the certificate registries trust.'
  echo '.TP'
  echo '.I /var/lib/keyport'
  echo 'The filesystem store of the registry.'
  echo '.SH SEE ALSO'
  echo '.I /usr/share/doc/keyport/README.md'
} | gzip -9n > "$PKG/usr/share/man/man1/keyport.1.gz"

# Debian policy: root owns everything (dpkg-deb --root-owner-group); directories and
# executables 0755, other files 0644; only the conffile stays 0640.
# Node loads everything under /usr/lib/keyport as modules: nothing there is executed
# directly, so nothing there needs an executable bit.
find "$PKG" -type d -exec chmod 0755 {} +
find "$PKG" -type f -exec chmod 0644 {} +
chmod 0755 "$PKG/usr/bin/keyport"
chmod 0640 "$PKG/etc/keyport/keyport.env"

for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$PKG/DEBIAN/$s"; done
echo /etc/keyport/keyport.env > "$PKG/DEBIAN/conffiles"
(cd "$PKG" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$PKG/DEBIAN/md5sums"
chmod 0644 "$PKG/DEBIAN/conffiles" "$PKG/DEBIAN/md5sums"
SIZE=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat > "$PKG/DEBIAN/control" <<EOF
Package: keyport
Version: $VERSION
Architecture: all
Maintainer: $MAINTAINER
Installed-Size: $SIZE
Depends: nodejs (>= 20), adduser
Recommends: systemd
Section: net
Priority: optional
Description: private container registry with OpenStack Keystone logins
 Keyport is a Docker Registry v2 / OCI Distribution API registry and a Docker
 token-auth server in one product. Users log in with their OpenStack Keystone
 user name and password (or an application credential) and push and pull with
 docker, podman, skopeo or containerd, each only inside the namespaces the
 policy gives them. Images are stored on the local disk, in OpenStack Swift or
 in S3.
 .
 The token server also works on its own in front of Docker Distribution.
EOF
chmod 0644 "$PKG/DEBIAN/control"

mkdir -p "$OUT"
DEB=$OUT/keyport_${VERSION}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB.tmp" >/dev/null
mv "$DEB.tmp" "$DEB"
echo "$DEB"
