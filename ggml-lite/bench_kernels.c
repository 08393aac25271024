// Kernel micro-benchmark (`llamalite bench --kernels`): how fast the matmul streams weights for
// one activation row (generation), next to this machine's memory read bandwidth, and how many
// weight rows x tokens per second the batched path does (prompt processing).
//
// Weights are 4096 wide; generation runs over ~128 MiB of rows (several 4096x4096 matrices, as
// a model's layers would be) so the numbers are DRAM, not cache, bound.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "matmul.h"

int gl_bench_kernels(int n_threads, FILE *out);

enum { N_IN = 4096, STREAM_BYTES = 128 << 20, PP_TOKENS = 64, PP_ROWS = 4096 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---- memory read bandwidth ------------------------------------------------------------------

typedef struct {
    const uint64_t *buf;
    size_t n; // uint64 words
    uint64_t sink[64];
} read_task;

static void read_run(void *p, int ith, int nth) {
    read_task *t = (read_task *)p;
    const size_t per = t->n / (size_t)nth / 64 * 64;
    const uint64_t *b = t->buf + per * (size_t)ith;
    uint64_t acc = 0;
    // four independent chains, so the loads are not serialized behind one xor (vectorized by
    // the compiler with whatever the base build allows; DRAM is the limit either way)
    uint64_t x0 = 0, x1 = 0, x2 = 0, x3 = 0;
    for (size_t i = 0; i < per; i += 4) {
        x0 ^= b[i];
        x1 ^= b[i + 1];
        x2 ^= b[i + 2];
        x3 ^= b[i + 3];
    }
    acc = x0 ^ x1 ^ x2 ^ x3;
    t->sink[ith % 64] = acc;
}

static double read_bandwidth(gl_threadpool *tp) {
    const size_t bytes = 256u << 20;
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, 64, bytes) != 0) return 0;
    memset(buf, 1, bytes);
    read_task t = {buf, bytes / 8, {0}};
    double best = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        const double t0 = now_s();
        gl_threadpool_run(tp, read_run, &t);
        const double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    free(buf);
    return bytes / best / 1e9;
}

// ---- matmul ----------------------------------------------------------------------------------

static void fill_random(void *p, size_t n, uint32_t seed) {
    uint8_t *b = (uint8_t *)p;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (uint8_t)(seed >> 24);
    }
}

// Random quant bytes do for timing (the kernels have no data-dependent paths); float types get
// finite values.
static void fill_weights(enum gl_type type, void *w, size_t bytes) {
    fill_random(w, bytes, 12345);
    if (type == GL_TYPE_F32) {
        float *f = (float *)w;
        for (size_t i = 0; i < bytes / 4; i++) f[i] = (float)(i % 17) * 0.01f;
    } else if (type == GL_TYPE_F16 || type == GL_TYPE_BF16) {
        uint16_t *h = (uint16_t *)w;
        for (size_t i = 0; i < bytes / 2; i++) h[i] = (uint16_t)(type == GL_TYPE_F16 ? 0x2c00 + (i & 0xff) : 0x3c00 + (i & 0x7f));
    }
}

int gl_bench_kernels(int n_threads, FILE *out) {
    if (n_threads < 1) n_threads = 1;
    gl_threadpool *tp = gl_threadpool_create(n_threads);
    if (!tp) return 1;
    fprintf(out, "kernels: %s, %d thread%s\n", gl_simd_name(), n_threads, n_threads > 1 ? "s" : "");
    const double bw = read_bandwidth(tp);
    fprintf(out, "memory read bandwidth: %.1f GB/s\n", bw);
    fprintf(out, "gen: one token against %d MiB of %d-wide rows; cache: the same over 64 rows that\n"
                 "stay in L2 (the kernel's compute ceiling per thread); pp: %d tokens x %dx%d\n",
            STREAM_BYTES >> 20, N_IN, PP_TOKENS, PP_ROWS, N_IN);
    fprintf(out, "%-7s %9s %8s %11s %16s\n", "type", "gen GB/s", "% of bw", "cache GB/s", "pp rows*tok/s");

    static const enum gl_type types[] = {
        GL_TYPE_Q4_0, GL_TYPE_Q8_0, GL_TYPE_Q4_K, GL_TYPE_Q6_K, GL_TYPE_Q4_1, GL_TYPE_Q5_0,
        GL_TYPE_Q5_1, GL_TYPE_Q2_K, GL_TYPE_Q3_K, GL_TYPE_Q5_K, GL_TYPE_IQ4_NL, GL_TYPE_IQ4_XS,
        GL_TYPE_F16, GL_TYPE_BF16, GL_TYPE_F32,
    };
    float *x = malloc(sizeof(float) * N_IN * PP_TOKENS);
    float *o = malloc(sizeof(float) * PP_ROWS * PP_TOKENS);
    int rc = 0;
    if (!x || !o) rc = 1;
    for (int i = 0; !rc && i < N_IN * PP_TOKENS; i++) x[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (size_t k = 0; !rc && k < sizeof types / sizeof types[0]; k++) {
        const enum gl_type type = types[k];
        const gl_type_traits *tr = gl_get_type_traits(type);
        const size_t row = gl_row_size(type, N_IN);
        const int64_t n_rows = (int64_t)(STREAM_BYTES / row);
        void *w = NULL;
        if (posix_memalign(&w, 64, row * (size_t)n_rows) != 0) { rc = 1; break; }
        fill_weights(type, w, row * (size_t)n_rows);
        float *o1 = malloc(sizeof(float) * (size_t)n_rows);
        gl_act a = {0};
        if (!o1 || !gl_act_prepare(&a, tp, x, 1, N_IN, tr->vec_dot_type)) {
            free(o1);
            free(w);
            rc = 1;
            break;
        }
        // Generation: one row against the whole stream, best of a few passes.
        gl_matmul(tp, w, type, n_rows, &a, o1); // warm up (page faults, thread wake-up)
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            const double t0 = now_s();
            gl_matmul(tp, w, type, n_rows, &a, o1);
            const double dt = now_s() - t0;
            if (dt < best) best = dt;
        }
        const double gbs = (double)row * n_rows / best / 1e9;
        // Compute ceiling: 64 rows (in L2) on the calling thread only.
        double bc = 1e30;
        for (int rep = 0; rep < 20; rep++) {
            const double t0 = now_s();
            gl_matmul(NULL, w, type, 64, &a, o1);
            const double dt = now_s() - t0;
            if (dt < bc) bc = dt;
        }
        const double cache = (double)row * 64 / bc / 1e9;
        // Prompt: PP_TOKENS rows against a 4096x4096 matrix.
        double pp = 0;
        if (gl_act_prepare(&a, tp, x, PP_TOKENS, N_IN, tr->vec_dot_type)) {
            gl_matmul(tp, w, type, PP_ROWS, &a, o);
            double bp = 1e30;
            for (int rep = 0; rep < 2; rep++) {
                const double t0 = now_s();
                gl_matmul(tp, w, type, PP_ROWS, &a, o);
                const double dt = now_s() - t0;
                if (dt < bp) bp = dt;
            }
            pp = (double)PP_ROWS * PP_TOKENS / bp;
        }
        fprintf(out, "%-7s %9.1f %7.0f%% %11.1f %16.3g\n", tr->name, gbs, bw > 0 ? 100 * gbs / bw : 0, cache, pp);
        gl_act_free(&a);
        free(o1);
        free(w);
    }
    free(x);
    free(o);
    gl_threadpool_free(tp);
    return rc;
}
