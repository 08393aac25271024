// ll_bench_kernels: the public face of ggml-lite's kernel micro-benchmark (the cli may only
// use llamalite.h). The benchmark is optional: without it this reports its absence.
#include "llamalite.h"

int gl_bench_kernels(int n_threads, FILE *out);
#pragma weak gl_bench_kernels

int ll_bench_kernels(int n_threads, FILE *out) {
    if (!gl_bench_kernels) {
        fputs("llamalite: the kernel benchmark is not available in this build\n", stderr);
        return -1;
    }
    return gl_bench_kernels(n_threads, out);
}
