// The matmul paths against the per-row kernels:
//  - one token (generation kernels, Q8_0-family gen): bitwise vec_dot, row by row;
//  - gl_matmul_rowwise (speculative verification): bitwise vec_dot for every token, so that
//    verifying a draft gives exactly what one-token decoding gives;
//  - a batch (prompt tiles, which may come from another kernel set and sum in their own order):
//    the batched entry vec_dot_nr within float rounding of the products' magnitudes.
// With the x86 tiles' AVX2 path and, where the CPU has it, their VNNI path. Every kernel set
// keeps these identities (the scalar set trivially: it has only the per-row kernels).
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/dot.h"
#include "ggml-lite/matmul.h"
#include "tests/test_util.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float gauss(void) { return test_gauss(&rng); }

static const enum gl_type types[] = {TEST_WEIGHT_TYPES};

static int first_diff(const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
    return -1;
}

// The first output further from the per-row kernel's than float rounding of the products
// allows (a few ulps of their magnitude sum), or -1.
static int first_far(const float *a, const float *b, const double *mag, int n) {
    for (int i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= 1e-5 * mag[i])) return i;
    return -1;
}

static void check(gl_threadpool *tp, enum gl_type type, int n_in, int n_out, int n_tok) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const size_t wrow = gl_row_size(type, n_in);
    float *wf = malloc(sizeof(float) * n_in), *x = malloc(sizeof(float) * n_in * n_tok);
    float *out = malloc(sizeof(float) * n_out * n_tok), *want = malloc(sizeof(float) * n_out * n_tok);
    uint8_t *w = malloc(wrow * n_out);
    // Row scales spread over a wide range, so every rounding shows.
    for (int r = 0; r < n_out; r++) {
        const float scale = powf(2.0f, (float)(r % 9) - 4.0f);
        for (int i = 0; i < n_in; i++) wf[i] = gauss() * scale;
        tr->from_float_ref(wf, w + (size_t)r * wrow, n_in);
    }
    for (int i = 0; i < n_in * n_tok; i++) x[i] = gauss();
    gl_act act = {0};
    CHECK(gl_act_prepare(&act, tp, x, n_tok, n_in, tr->vec_dot_type), "act_prepare");
    const gl_vec_dot_nr_fn nrf = gl_get_vec_dot_nr(type);
    // sum |w_i y_i| per (token, row): the scale of a batch path's rounding
    const gl_type_traits *vt = gl_get_type_traits(tr->vec_dot_type);
    float *wd = malloc(sizeof(float) * n_in), *yd = malloc(sizeof(float) * n_in);
    double *mag = malloc(sizeof(double) * n_out * n_tok);
    for (int t = 0; t < n_tok; t++) {
        vt->to_float((const char *)act.data + (size_t)t * act.row_bytes, yd, n_in);
        for (int r = 0; r < n_out; r++) {
            tr->to_float(w + (size_t)r * wrow, wd, n_in);
            double m = 1e-30;
            for (int i = 0; i < n_in; i++) m += fabs((double)wd[i] * yd[i]);
            mag[(size_t)t * n_out + r] = m;
        }
    }
    // The per-row references: vec_dot for one token, vec_dot_nr (one row at a time) for a batch.
    for (int t = 0; t < n_tok; t++)
        for (int r = 0; r < n_out; r++) {
            const void *wr = w + (size_t)r * wrow, *yt = (const char *)act.data + (size_t)t * act.row_bytes;
            float *o = &want[(size_t)t * n_out + r];
            if (n_tok == 1 || !nrf) tr->vec_dot(n_in, o, wr, yt);
            else nrf(n_in, o, (size_t)n_out, wr, yt, act.row_bytes, 1);
        }
    gl_matmul(tp, w, type, n_out, &act, out);
    int d = n_tok == 1 ? first_diff(out, want, n_out) : first_far(out, want, mag, n_out * n_tok);
    CHECK(d < 0, "%s n_in=%d n_out=%d n_tok=%d threads=%d vnni=%d: gl_matmul out[%d][%d] = %a, per-row kernel %a",
          tr->name, n_in, n_out, n_tok, gl_threadpool_n_threads(tp), gl_tile8_vnni, d < 0 ? 0 : d / n_out,
          d < 0 ? 0 : d % n_out, d < 0 ? 0.0 : out[d], d < 0 ? 0.0 : want[d]);
    if (n_tok > 1) {
        for (int t = 0; t < n_tok; t++)
            for (int r = 0; r < n_out; r++)
                tr->vec_dot(n_in, &want[(size_t)t * n_out + r], w + (size_t)r * wrow,
                            (const char *)act.data + (size_t)t * act.row_bytes);
        gl_matmul_rowwise(tp, w, type, n_out, &act, out);
        d = first_diff(out, want, n_out * n_tok);
        CHECK(d < 0, "%s n_in=%d n_out=%d n_tok=%d vnni=%d: rowwise out[%d][%d] = %a, vec_dot %a", tr->name, n_in,
              n_out, n_tok, gl_tile8_vnni, d < 0 ? 0 : d / n_out, d < 0 ? 0 : d % n_out, d < 0 ? 0.0 : out[d],
              d < 0 ? 0.0 : want[d]);
    }
    gl_act_free(&act);
    free(wf); free(x); free(out); free(want); free(w); free(wd); free(yd); free(mag);
}

static void run_all(gl_threadpool *tp) {
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const bool kq = gl_get_type_traits(types[k])->blck_size == QK_K;
        // Widths with and without a ragged tail of blocks (and odd block counts for IQ4_NL's pairs;
        // 1120: a verification kernel's last block segment part full).
        const int widths_32[] = {32, 96, 256, 288, 1120, 2048}, widths_k[] = {256, 768, 2048};
        const int *widths = kq ? widths_k : widths_32;
        const int n_w = kq ? 3 : 6;
        for (int wi = 0; wi < n_w; wi++)
            for (int n_tok = 1; n_tok <= 13; n_tok += n_tok < 7 ? 1 : 3) check(tp, types[k], widths[wi], 21, n_tok);
    }
    check(tp, GL_TYPE_Q8_0, 4096, 67, 1);
    check(tp, GL_TYPE_Q4_0, 5632, 40, 7);
    check(tp, GL_TYPE_Q8_0, 5632, 45, 17); // a 16-token draft's verification
}

int main(void) {
    // LLAMALITE_ISA=avx2 (ctest's *_avx2 runs) on a CPU without it: nothing to test.
    const char *isa = getenv("LLAMALITE_ISA");
    if (isa && strcmp(isa, "avx2") == 0 && !gl_cpu_has_avx2()) return TEST_SKIP;
    printf("kernels: %s\n", gl_simd_name());
    for (int nt = 1; nt <= 2; nt++) {
        gl_threadpool *tp = gl_threadpool_create(nt);
        CHECK(tp != NULL, "pool");
        if (!tp) continue;
        gl_tile8_vnni = 0;
        run_all(tp);
        if (gl_cpu_has_avx512vnni()) {
            gl_tile8_vnni = 1;
            run_all(tp);
        }
        gl_threadpool_free(tp);
    }
    return test_result("test_kernel_order");
}
