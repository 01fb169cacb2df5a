#!/usr/bin/env bash
# Sets up everything llm-desktop needs on Debian/Ubuntu: system packages (when missing),
# a virtual environment in .venv, and the pinned Python dependencies. Safe to re-run: each
# step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# Build tools for llama-cpp-python (compiled from source), Qt/WebEngine runtime libraries,
# and Xvfb for real windows and screenshots on machines without a display.
SYSTEM_PACKAGES=(
  python3 python3-venv python3-dev build-essential cmake git
  libegl1 libgl1 libgbm1 libx11-6 libxcomposite1 libxdamage1 libxext6 libxfixes3 libxrandr2
  libxtst6 libxkbfile1 libxcb1 libxcb-dri3-0 libxkbcommon0 libasound2 libbrotli1 libdbus-1-3
  libfontconfig1 libfreetype6 libglib2.0-0 libnss3 libnspr4
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-render0
  libxcb-shape0 libxcb-util1 libxcb-xkb1 libxkbcommon-x11-0
  xvfb fonts-dejavu-core
)

install_system_packages() {
  command -v dpkg-query >/dev/null || { echo "setup: not a Debian system; install the equivalents of: ${SYSTEM_PACKAGES[*]}"; return 0; }
  local missing=()
  for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_packages() {
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local stamp="$VENV/.llm-desktop-setup"
  local wanted
  wanted=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    return 0
  fi
  echo "setup: installing Python dependencies into $VENV (the first time compiles llama.cpp: a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # A portable llama.cpp build: the native one segfaults on some CPUs (see shared findings),
  # and a packaged app must not be tied to the build machine's CPU.
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
  echo "$wanted" > "$stamp"
}

install_system_packages
install_python_packages
