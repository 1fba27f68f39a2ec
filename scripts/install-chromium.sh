#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (tests/browser/), if it is not there yet.
# Needs root and apt (as on the CI machine); prints the browser's path on its last line.
# Safe to run several at once (parallel test workers): they take turns on a lock, and the
# later ones find the browser the first installed.
set -euo pipefail
found() {
  for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}
found && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-chromium: needs root and apt-get; install a Chromium yourself and set PROXYTASK_CHROMIUM" >&2
  exit 1
fi
exec 9>"${TMPDIR:-/tmp}/proxytask-install-chromium.lock"
flock -w 900 9
found && exit 0
export DEBIAN_FRONTEND=noninteractive
# apt's own locks may be held by another apt-get on the machine: wait for them too
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
echo /usr/bin/chromium
