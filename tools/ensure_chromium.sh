#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright (browsers cannot be downloaded here).
# Install it from Debian's packages when it is missing and we are allowed to (root with apt-get).
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
else
  echo "[setup] /usr/bin/chromium is missing: install Debian's 'chromium' package for the browser tests" >&2
fi
