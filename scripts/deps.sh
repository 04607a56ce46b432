#!/usr/bin/env bash
# Installs the Debian packages Keyport's quick start, tests and benchmarks use.
#   scripts/deps.sh [runtime|test|all]   (default: all)
# runtime: what the quick start needs (a local Keystone); test: everything the suite uses
# (systemd, man-db and adduser: the Debian package test verifies the installed units and
# man page and runs the maintainer scripts; python3: the test's systemd notification socket).
set -euo pipefail
WHAT=${1:-all}
RUNTIME=(keystone uwsgi uwsgi-plugin-python3 curl openssl ca-certificates)
TEST=(swift swift-proxy swift-object swift-container swift-account python3-swiftclient python3-keystonemiddleware memcached
      docker-registry skopeo podman docker.io umoci busybox-static jq bc wrk apache2-utils
      systemd man-db adduser python3 file)
case "$WHAT" in
  runtime) PKGS=("${RUNTIME[@]}") ;;
  test|all) PKGS=("${RUNTIME[@]}" "${TEST[@]}") ;;
  *) echo "usage: $0 [runtime|test|all]" >&2; exit 2 ;;
esac
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Package scripts try to start services (no systemd here or in CI); policy-rc.d keeps them down.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq "${missing[@]}" >/dev/null
echo "deps: installed"
