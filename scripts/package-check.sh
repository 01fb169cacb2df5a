#!/usr/bin/env bash
# CI's packaging check: build the bundle and the .deb, install the .deb, run the installed
# app's self-test, remove the package, and make sure nothing is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/package.sh
deb=$(ls dist/llm-desktop_*.deb | head -1)
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get install -y -qq "./$deb" >/dev/null
echo "package-check: installed $(dpkg-query -W -f='${Package} ${Version}' llm-desktop)"
test -x /usr/bin/llm-desktop
test -f /usr/share/applications/llm-desktop.desktop
started=$(date +%s%N)
env -u DISPLAY QT_QPA_PLATFORM=offscreen /usr/bin/llm-desktop --self-test
echo "package-check: installed self-test took $(( ($(date +%s%N) - started) / 1000000 )) ms"
$sudo apt-get remove -y -qq llm-desktop >/dev/null
if [ -e /opt/llm-desktop ] || [ -e /usr/bin/llm-desktop ]; then
  echo "package-check: files left after removal" >&2
  exit 1
fi
echo "package-check: removed cleanly"
