#!/usr/bin/env bash
# Installs what the end-to-end tests need: Debian's chromium and playwright-core from npm.
# Both are cached after the first run (apt: installed package; npm: tests/browser/node_modules).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "setup_browser: chromium missing and not root; browser tests will be skipped" >&2
    fi
fi
if ! command -v node >/dev/null 2>&1; then
    echo "setup_browser: node missing; Node and browser tests will be skipped" >&2
    exit 0
fi
if [ ! -d "$here/browser/node_modules/playwright-core" ]; then
    (cd "$here/browser" && npm install --no-audit --no-fund --silent)
fi
echo "setup_browser: chromium $(command -v chromium || echo missing), node $(node --version)"
