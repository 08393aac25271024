#!/usr/bin/env bash
# Keeps the ARM NEON kernels correct on an x86 machine: cross-compiles the ggml-lite unit tests
# for aarch64 (dotprod + fp16) and runs them under qemu-user. Skips (77) without the tools
# (scripts/setup.sh installs gcc-aarch64-linux-gnu and qemu-user).
set -u
cc=aarch64-linux-gnu-gcc
command -v $cc >/dev/null && command -v qemu-aarch64 >/dev/null || { echo "skipped: needs $cc and qemu-aarch64"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
for t in test_dot test_matmul test_quants test_ops test_threadpool; do
    if ! $cc -std=c11 -O2 -D_GNU_SOURCE -march=armv8.2-a+dotprod+fp16 -Wall -Wextra -Wno-unused-parameter \
            -Werror -I. -Iggml-lite -DGL_ISA_ARM_NEON=1 ggml-lite/*.c ggml-lite/arch/scalar/*.c ggml-lite/arch/arm-neon/*.c tests/$t.c -lm -lpthread -static -o "$out/$t"; then
        echo "FAIL: $t does not build for aarch64"; fail=1; continue
    fi
    if ! timeout 600 qemu-aarch64 "$out/$t" >"$out/$t.log" 2>&1; then
        echo "FAIL: $t under qemu-aarch64"; tail -20 "$out/$t.log"; fail=1; continue
    fi
    grep -q 'kernels: neon' "$out/$t.log" || [ "$t" != test_dot ] || { echo "FAIL: test_dot did not use NEON"; fail=1; }
    echo "ok: $t (aarch64)"
done
exit $fail
