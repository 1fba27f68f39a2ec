#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (tests/browser/), if it is not there yet.
# Needs root and apt (as on the CI machine); prints the browser's path on its last line.
set -euo pipefail
for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-chromium: needs root and apt-get; install a Chromium yourself and set PROXYTASK_CHROMIUM" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq chromium >/dev/null
echo /usr/bin/chromium
