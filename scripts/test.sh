#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" 2>&1 | grep -E 'error|warning: unused' || true
cmake --build build -j"$(nproc)" >/dev/null
cd build && ctest --output-on-failure -j"$(nproc)"
