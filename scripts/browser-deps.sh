#!/usr/bin/env bash
# Installs what the browser test (host/cli/tests/browser.rs) needs: headless Chromium and
# chromedriver from Debian (packages `chromium` and `chromium-driver`). No-op when both are on
# PATH (or WEFT_CHROMIUM / WEFT_CHROMEDRIVER name them).
set -euo pipefail
say() { printf 'browser-deps: %s\n' "$*" >&2; }

have() { [ -n "${1:-}" ] && [ -x "$1" ] || command -v "$2" >/dev/null 2>&1; }
if have "${WEFT_CHROMIUM:-}" chromium && have "${WEFT_CHROMEDRIVER:-}" chromedriver; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "error: chromium and chromedriver are missing and this is not a Debian-like system;"
  say "install them, or point WEFT_CHROMIUM / WEFT_CHROMEDRIVER at them"
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    say "error: need root (or sudo) to apt-get install chromium chromium-driver"; exit 1; fi
fi
say "installing headless Chromium for the browser test: apt-get install chromium chromium-driver"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  chromium chromium-driver >&2
for t in chromium chromedriver; do
  command -v "$t" >/dev/null 2>&1 || { say "error: $t still missing after apt-get install"; exit 1; }
done
