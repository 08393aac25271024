// F32 and F16 weights against activation rows of their own type, several tokens at once (the
// prompt path of a mixture-of-experts router, float output heads and projections).
//
// The batched per-row kernel (dot_avx2.c, the reference's tinyBLAS order) sums each output in
// one 8-lane chain of fused multiply-adds and runs the chains one after another, so it waits on
// the FMA latency at every step. A tile of 4 weight rows x 3 tokens keeps 12 such chains in
// registers and advances them together: each output is still its own chain over the same
// elements in the same order, reduced the same way, so bitwise what the per-row kernel gives.
#include <immintrin.h>

#include "kernels_avx2.h"

#define INL static inline __attribute__((always_inline))
// Loops over the tile's rows and tokens are unrolled so the sums live in registers.
#define UNROLL _Pragma("GCC unroll 4")

enum { TILE_ROWS = 4, TILE_TOK = 3 };

INL __m256 load8(const char *p, int i, const bool f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gl_fp16 *)p + i)))
               : _mm256_loadu_ps((const float *)p + i);
}

// The per-row kernel's reduction: halves added, then (0+2)+(1+3).
INL float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// nr weight rows x nt tokens (compile-time constants after inlining): out[t * bs + r].
INL void tile(int n, const char *w, size_t w_row, const char *y, size_t by, float *out, size_t bs, const int nr,
              const int nt, const bool f16) {
    __m256 acc[TILE_ROWS][TILE_TOK];
    UNROLL for (int r = 0; r < nr; r++)
        UNROLL for (int t = 0; t < nt; t++) acc[r][t] = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 x[TILE_TOK];
        UNROLL for (int t = 0; t < nt; t++) x[t] = load8(y + (size_t)t * by, i, f16);
        UNROLL for (int r = 0; r < nr; r++) {
            const __m256 wv = load8(w + (size_t)r * w_row, i, f16);
            UNROLL for (int t = 0; t < nt; t++) acc[r][t] = _mm256_fmadd_ps(wv, x[t], acc[r][t]);
        }
    }
    UNROLL for (int r = 0; r < nr; r++)
        UNROLL for (int t = 0; t < nt; t++) out[(size_t)t * bs + r] = hsum8(acc[r][t]);
}

// A tile of any size up to 4 x 3, each size its own unrolled copy.
#define TILE_CASE(R, T) \
    case (R) * 4 + (T): tile(n, w, w_row, y, by, out, bs, R, T, f16); break;

INL void tile_any(int n, const char *w, size_t w_row, const char *y, size_t by, float *out, size_t bs, int nr, int nt,
                  const bool f16) {
    switch (nr * 4 + nt) {
        TILE_CASE(4, 3) TILE_CASE(4, 2) TILE_CASE(4, 1)
        TILE_CASE(3, 3) TILE_CASE(3, 2) TILE_CASE(3, 1)
        TILE_CASE(2, 3) TILE_CASE(2, 2) TILE_CASE(2, 1)
        TILE_CASE(1, 3) TILE_CASE(1, 2) TILE_CASE(1, 1)
    }
}

INL void tiles(int n, const char *w, size_t w_row, int n_rows, const char *y, size_t by, int n_tok, float *out,
               size_t bs, const bool f16) {
    for (int t0 = 0; t0 < n_tok; t0 += TILE_TOK) {
        const int nt = n_tok - t0 < TILE_TOK ? n_tok - t0 : TILE_TOK;
        for (int r0 = 0; r0 < n_rows; r0 += TILE_ROWS) {
            const int nr = n_rows - r0 < TILE_ROWS ? n_rows - r0 : TILE_ROWS;
            tile_any(n, w + (size_t)r0 * w_row, w_row, y + (size_t)t0 * by, by, out + (size_t)t0 * bs + r0, bs, nr, nt,
                     f16);
        }
    }
}

bool gl_tile_float_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y, size_t by,
                          const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs) {
    (void)dy, (void)ys;
    // (a width that is not a multiple of 8 is summed in the one-token order: the per-row kernel's)
    if (n % 8 != 0 || (type != GL_TYPE_F32 && type != GL_TYPE_F16)) return false;
    if (type == GL_TYPE_F16) tiles(n, w, w_row, n_rows, y, by, n_tok, out, bs, true);
    else tiles(n, w, w_row, n_rows, y, by, n_tok, out, bs, false);
    return true;
}
