#!/usr/bin/env bash
# Sets up everything llm-desktop needs on Debian/Ubuntu: system packages (when missing),
# a virtual environment in .venv, and the pinned Python dependencies. Safe to re-run: each
# step is skipped when already done.
#
# LLM_DESKTOP_CUDA chooses how llama.cpp is built: 1 with CUDA (NVIDIA GPUs; needs the CUDA
# toolkit's nvcc), 0 for the CPU only, auto (the default) with CUDA when both nvcc (on PATH or
# in $CUDA_HOME, default /usr/local/cuda) and an NVIDIA driver (nvidia-smi or libnvidia-ml) are
# found: a toolkit alone, as on a build machine without a GPU, keeps the CPU build.
# Changing the answer rebuilds llama.cpp.
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

find_nvcc() {
  command -v nvcc 2>/dev/null && return 0
  local candidate="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc"
  [ -x "$candidate" ] && echo "$candidate"
}

has_nvidia_driver() {
  command -v nvidia-smi >/dev/null 2>&1 && return 0
  # grep reads to the end (no -q): an early exit would fail the pipe under pipefail.
  { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep 'libnvidia-ml\.so\.1' >/dev/null
}

# "cpu" or "cuda": the llama.cpp build LLM_DESKTOP_CUDA asks for.
llama_build() {
  case "${LLM_DESKTOP_CUDA:-auto}" in
    1 | on | yes | true) echo cuda ;;
    0 | off | no | false) echo cpu ;;
    auto) if find_nvcc >/dev/null && has_nvidia_driver; then echo cuda; else echo cpu; fi ;;
    *) echo "setup: LLM_DESKTOP_CUDA must be 1, 0 or auto, not '$LLM_DESKTOP_CUDA'" >&2; return 1 ;;
  esac
}

install_python_packages() {
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local stamp="$VENV/.llm-desktop-setup"
  # Which llama.cpp the venv holds when it is not the CPU build (no file: the CPU build), with
  # its pinned version, so that a new pin is compiled here too rather than by the main install.
  local built_file="$VENV/.llm-desktop-llama-build"
  local build want_built built wanted
  build=$(llama_build)
  want_built=$build
  [ "$build" = cpu ] || want_built="$build $(grep -iE '^llama[-_]cpp[-_]python' constraints.txt || true)"
  built=$(cat "$built_file" 2>/dev/null || echo cpu)
  # The CPU build keeps the stamp it always had; any other adds its name, so switching rebuilds.
  wanted=$({ cat pyproject.toml constraints.txt; [ "$build" = cpu ] || echo "llama.cpp: $build"; } | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && [ "$built" = "$want_built" ]; then
    return 0
  fi
  # A portable llama.cpp build: the native one segfaults on some CPUs (see shared findings),
  # and a packaged app must not be tied to the build machine's CPU.
  local cmake_args="-DGGML_NATIVE=OFF"
  if [ "$build" = cuda ]; then
    local nvcc
    nvcc=$(find_nvcc) || { echo "setup: LLM_DESKTOP_CUDA=1 needs the CUDA toolkit (nvcc), not found on PATH or in ${CUDA_HOME:-/usr/local/cuda}" >&2; return 1; }
    cmake_args="$cmake_args -DGGML_CUDA=on"
    export CUDACXX="$nvcc"
  fi
  echo "setup: installing Python dependencies into $VENV (the first time compiles llama.cpp: a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if [ "$built" != "$want_built" ]; then
    # pip keeps an installed llama-cpp-python, and takes a cached wheel whatever CMAKE_ARGS
    # say, so a change of build compiles it again here. A CUDA wheel stays out of pip's cache
    # (--no-cache-dir), so the cache only ever holds the CPU build.
    local no_cache=()
    if [ "$build" = cuda ]; then
      no_cache=(--no-cache-dir)
      echo "setup: building llama.cpp with CUDA ($CUDACXX; LLM_DESKTOP_CUDA=0 builds it for the CPU only): tens of minutes"
    fi
    CMAKE_ARGS="$cmake_args" "$VENV/bin/python" -m pip install -q -c constraints.txt \
      --force-reinstall --no-deps --no-binary llama-cpp-python ${no_cache[@]+"${no_cache[@]}"} llama-cpp-python
  fi
  CMAKE_ARGS="$cmake_args" "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
  if [ "$build" = cpu ]; then rm -f "$built_file"; else echo "$want_built" > "$built_file"; fi
  echo "$wanted" > "$stamp"
}

# Node.js and npm (Debian's packages, when missing) for the page's lint and unit tests, then
# node_modules from package-lock.json: again when the lock file changes.
install_node_packages() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    command -v apt-get >/dev/null || { echo "setup: install Node.js (18.18 or newer) and npm" >&2; return 1; }
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing Node.js and npm (Debian packages)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  local stamp="node_modules/.llm-desktop-setup"
  local wanted
  wanted=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    return 0
  fi
  echo "setup: installing the page's lint and test tools (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$wanted" > "$stamp"
}

install_system_packages
install_python_packages
install_node_packages
