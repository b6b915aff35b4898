#!/usr/bin/env bash
# The browser test opens the built book in Debian's headless Chromium.
# Install it when missing (a fresh CI machine has none); never fail the
# test command here: the browser test itself skips with a reason if the
# install was impossible.
set -u
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "ensure-chromium: could not install chromium; the browser test will be skipped" >&2
else
  echo "ensure-chromium: chromium not found and cannot apt-get install it; the browser test will be skipped" >&2
fi
exit 0
