#!/usr/bin/env bash
# Build the one-folder bundle (build.spec), then a portable .tar.gz and a .deb from it.
# Output: dist/llm-desktop/ (the bundle), dist/llm-desktop-VERSION-linux-x86_64.tar.gz,
#         dist/llm-desktop_VERSION_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

started=$(date +%s)
"$VENV/bin/pyinstaller" build.spec --noconfirm --log-level WARN
version=$(cat build/VERSION)
bundle=dist/llm-desktop
echo "package: bundle $(du -sh "$bundle" | cut -f1) in $(( $(date +%s) - started )) s"

arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
tar -C dist -czf "dist/llm-desktop-${version}-linux-$(uname -m).tar.gz" llm-desktop

# The .deb: the bundle under /opt, a command on the PATH, a menu entry with its icon.
root=build/deb
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$root/usr/share/applications" \
  "$root/usr/share/icons/hicolor/256x256/apps"
cp -a "$bundle" "$root/opt/llm-desktop"
# Chromium makes this (empty) folder on first start; shipping it lets dpkg remove it again.
mkdir -p "$root/opt/llm-desktop/_internal/PySide6/Qt/resources/locales"
ln -s /opt/llm-desktop/llm-desktop "$root/usr/bin/llm-desktop"
install -m 644 resources/linux/llm-desktop.desktop "$root/usr/share/applications/"
install -m 644 resources/icons/llm-desktop.png "$root/usr/share/icons/hicolor/256x256/apps/"
size_kb=$(du -sk "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: llm-desktop
Version: ${version}
Architecture: ${arch}
Maintainer: llm-desktop developers <dev@llm-desktop.invalid>
Installed-Size: ${size_kb}
Section: utils
Priority: optional
Depends: libc6, libegl1, libgl1, libgbm1, libx11-6, libxcomposite1, libxdamage1, libxext6, libxfixes3, libxrandr2, libxtst6, libxkbfile1, libxcb1, libxcb-dri3-0, libxkbcommon0, libasound2, libdbus-1-3, libfontconfig1, libfreetype6, libglib2.0-0, libnss3, libnspr4, libxcb-cursor0, libxcb-icccm4, libxcb-image0, libxcb-keysyms1, libxcb-render-util0, libxcb-render0, libxcb-shape0, libxcb-util1, libxcb-xkb1, libxkbcommon-x11-0
Description: Manage local GGUF models and watch them load
 A desktop app for local LLM model files run by llama.cpp: real staged load
 progress, cancel, unload, clear errors, GPU and RAM awareness, and the same
 progress streamed to a web page over Server-Sent Events.
CONTROL
cat > "$root/DEBIAN/postinst" <<'HOOK'
#!/bin/sh
set -e
command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q /usr/share/icons/hicolor || true
HOOK
cp "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
cat >> "$root/DEBIAN/postrm" <<'HOOK'
# Anything the app's engine wrote next to itself at run time goes with it.
case "$1" in remove|purge) rm -rf /opt/llm-desktop ;; esac
HOOK
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
# gzip -1: xz would take minutes on two cores for a few hundred MB of mostly binaries.
dpkg-deb --root-owner-group -Zgzip -z1 --build "$root" "dist/llm-desktop_${version}_${arch}.deb" >/dev/null
echo "package: $(ls -sh dist/*.deb dist/*.tar.gz | awk '{print $2" ("$1")"}' | tr '\n' ' ')"
echo "package: done in $(( $(date +%s) - started )) s"
