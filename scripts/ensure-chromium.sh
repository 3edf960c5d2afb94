#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/e2e/test_browser_embed.py drives /usr/bin/chromium
# with Playwright for Python; no test tool may download a browser here). Idempotent.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
echo "installing Debian's chromium for the browser tests"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y chromium; then
  $SUDO apt-get update
  $SUDO apt-get install -y chromium
fi
test -x /usr/bin/chromium
