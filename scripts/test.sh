#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite through ctest.
# SANITIZE=1: then the suite once more under AddressSanitizer + UndefinedBehaviorSanitizer,
# built in build-san (a build of its own: the sanitized binaries are slower and larger).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null 2>build/build-errors.log || { cat build/build-errors.log; exit 1; }
(cd build && ctest --output-on-failure -j"$(nproc)")
if [ "${SANITIZE:-0}" = 1 ]; then
    cmake -S . -B build-san -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLAMALITE_SANITIZE=ON >/dev/null
    cmake --build build-san -j"$(nproc)" >/dev/null 2>build-san/build-errors.log \
        || { cat build-san/build-errors.log; exit 1; }
    # Any report fails the test that triggered it; leaks count too.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    cd build-san && ctest --output-on-failure -j"$(nproc)"
fi
