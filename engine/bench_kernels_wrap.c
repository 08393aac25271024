// ll_bench_kernels: the public face of ggml-lite's kernel micro-benchmark
// (ggml-lite/bench_kernels.c), since the cli may only use llamalite.h.
#include "llamalite.h"

int gl_bench_kernels(int n_threads, FILE *out); // ggml-lite/bench_kernels.c

int ll_bench_kernels(int n_threads, FILE *out) { return gl_bench_kernels(n_threads, out); }
