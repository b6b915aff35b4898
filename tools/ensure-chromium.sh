#!/usr/bin/env bash
# The browser test (tests/test_book.py) opens the built book in a headless
# Chromium through playwright, never a browser that playwright downloads.
# It uses $PDSTUDY_CHROMIUM when set (e.g. Google Chrome on a GitHub runner),
# else Debian's /usr/bin/chromium, which this script installs when missing
# (a fresh CI container has none). It never fails the test command: the
# browser test itself skips with a reason if no browser could be had.
set -u
if [ -n "${PDSTUDY_CHROMIUM:-}" ] && [ -x "${PDSTUDY_CHROMIUM}" ]; then exit 0; fi
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "ensure-chromium: could not install chromium; the browser test will be skipped" >&2
else
  echo "ensure-chromium: /usr/bin/chromium not found and cannot apt-get install it" \
       "(set PDSTUDY_CHROMIUM to a Chromium or Chrome binary); the browser test will be skipped" >&2
fi
exit 0
