#!/usr/bin/env bash
# Runs Keyport's whole test suite on this machine: installs the Debian packages the
# tests use (as root), the npm packages, builds, starts the real services (Keystone,
# Swift, dockerd) on loopback and runs every test file against them.
#
#   scripts/test.sh [test files or directories...]
#
# CI=1 makes integration tests mandatory: a service that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  scripts/deps.sh test
else
  scripts/deps.sh test || echo "test: some Debian packages are missing; integration tests will skip (or fail under CI)" >&2
fi
# npm ci only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s <(node -e 'const l=require("./package-lock.json");delete l.name;delete l.version;console.log(JSON.stringify(l.packages))') \
     <(node -e 'const l=require("./node_modules/.package-lock.json");console.log(JSON.stringify(Object.assign({"":require("./package-lock.json").packages[""]},l.packages)))'); then
  npm ci --no-audit --no-fund
fi
npm run --silent build
npm run --silent typecheck
exec node --import tsx test/run.ts "$@"
