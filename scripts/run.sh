#!/usr/bin/env bash
# Builds and runs the main job on a fresh Debian bookworm machine, as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)"
exec build/release/mapctl --help
