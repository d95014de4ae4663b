#!/bin/sh
# What the test run needs beyond Python packages: PostgreSQL (the hub's postgres sink is tested
# against a throwaway cluster the tests start with initdb/pg_ctl) and Chromium (the inbox page
# is tested in a real headless browser driven by Playwright). Debian packages; idempotent:
# installs only what is missing, so `make test` can call it every time.
set -eu

missing=""
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
[ -x /usr/bin/chromium ] || missing="$missing chromium"

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-test-deps: need root (or sudo) to install:$missing" >&2
    exit 1
fi

echo "install-test-deps: installing$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

# The Debian package starts a cluster of its own; the tests never use it, so stop it if it runs.
if command -v pg_lsclusters >/dev/null 2>&1 && pg_lsclusters -h 2>/dev/null | grep -q online; then
    pg_lsclusters -h | while read -r version cluster _; do
        $SUDO pg_ctlcluster "$version" "$cluster" stop || true
    done
fi
