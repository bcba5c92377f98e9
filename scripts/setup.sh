#!/usr/bin/env bash
# Everything a fresh Debian bookworm machine without a GPU needs to run clothtag:
# a Vulkan driver for Dawn (Mesa's lavapipe from bookworm-backports; Chromium's SwiftShader as the
# fallback) and the npm packages. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

LVP=/usr/share/vulkan/icd.d/lvp_icd.json
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=$(command -v sudo || true); fi

mesa_ok() {
  [ -f "$LVP" ] || return 1
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  # Dawn needs a recent Vulkan driver: bookworm's own Mesa 22 is too old.
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 24
}

if ! mesa_ok; then
  echo "setup: installing Mesa's lavapipe Vulkan driver from bookworm-backports"
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/clothtag-backports.list >/dev/null
  fi
  $SUDO apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1; then
    echo "setup: lavapipe from backports failed; falling back to Chromium's SwiftShader (about 6x slower)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium libvulkan1
  fi
fi

# Debian's Chromium runs the browser test (WebGPU on SwiftShader); without it that test is skipped.
if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium for the browser test"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium \
    || { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } \
    || echo "setup: chromium could not be installed; the browser test will be skipped"
fi

# better-sqlite3 (the catalog index) is compiled at install (below): node-gyp needs a C++ compiler,
# make and Python.
if ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
  echo "setup: installing g++, make and python3 to build better-sqlite3"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq g++ make python3; } \
    || echo "setup: the compiler could not be installed; npm ci will fail to build better-sqlite3"
fi

if [ ! -d node_modules/webgpu ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  # onnxruntime-node (the ONNX check) would fetch CUDA libraries from outside the registries: skip them.
  # better-sqlite3 (the catalog index) would fetch its prebuilt binary from GitHub: build it from
  # its own sources instead (node-gyp and the C compiler, with Node's headers; about 2 minutes).
  ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm_config_build_from_source=true npm ci --no-audit --no-fund
fi
