#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/e2e/test_browser_embed.py) and PDF report exports
# (Playwright for Python drives /usr/bin/chromium; no test tool may download a browser here), and
# poppler-utils' pdftotext, which the report tests read PDFs with. Idempotent.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y "${missing[@]}"
fi
test -x /usr/bin/chromium
command -v pdftotext >/dev/null
