// One-token kernels for MXFP4 (gpt-oss's experts) against Q8_0 rows, with AVX512-VNNI, bitwise
// the AVX2 set's (llama.cpp's AVX2 arithmetic).
//
// Two blocks of 32 per 512-bit vector: the weights' nibbles looked up as magnitudes |level|
// (gl_mxfp4_values, doubled E2M1) and the activations negated where the level is negative, so
// one vpdpbusd gives each block's 8 integer lanes of the AVX2 kernel (lane l: elements 4l..4l+3).
// Then, as there, per block one FMA into 8 float lanes with the scale product 2^(e - 128) * d_y,
// block after block, and the lanes added in its order. That chain of FMAs is the one-row
// kernel's limit; the gen kernel runs four rows at a time over the same activation loads, so
// four chains overlap, each row still with exactly the one-row arithmetic.
#include <immintrin.h>
#include <stdbool.h>

#include "dot.h"
#include "kernels_avx512_lowbit.h"
#include "quants.h"
#include "quants_lowbit.h"

#define INL static inline __attribute__((always_inline))

enum { GEN_ROWS = 4 }; // rows per pass of the gen kernel

// Activation blocks i and i + 1 (only i when !two): their 64 bytes and scales.
typedef struct {
    __m512i q;
    float d0, d1;
} act_pair;

INL float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

INL act_pair load_act(const block_q8_0 *y, int i, bool two) {
    act_pair a;
    const __m256i lo = _mm256_loadu_si256((const __m256i *)y[i].qs);
    const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)y[i + 1].qs) : _mm256_setzero_si256();
    a.q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    a.d0 = half_to_float(y[i].d);
    a.d1 = two ? half_to_float(y[i + 1].d) : 0.0f;
    return a;
}

INL float hsum8(__m256 v) { // (the AVX2 kernel's order)
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// acc += blocks i, i + 1 (only i when !two) of row x against a, block after block.
INL void row_pair(const block_mxfp4 *x, int i, bool two, const act_pair *a, __m256 *acc) {
    const __m128i lut = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, 1, 2, 3, 4, 6, 8, 12); // |gl_mxfp4_values|
    const __m128i qa = _mm_loadu_si128((const __m128i *)x[i].qs);
    const __m128i qb = two ? _mm_loadu_si128((const __m128i *)x[i + 1].qs) : _mm_setzero_si128();
    // nibbles in element order: block i's low nibbles (elements 0..15), its high ones, then block i + 1's
    const __m256i ab = _mm256_inserti128_si256(_mm256_castsi128_si256(qa), qb, 1);
    __m512i nib = _mm512_inserti64x4(_mm512_castsi256_si512(ab), _mm256_srli_epi16(ab, 4), 1);
    nib = _mm512_and_si512(_mm512_shuffle_i64x2(nib, nib, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(0xf));
    const __m512i mag = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(lut), nib);
    const __mmask64 neg = _mm512_test_epi8_mask(nib, _mm512_set1_epi8(8)); // codes 8..15: level <= 0
    const __m512i yq = _mm512_mask_sub_epi8(a->q, neg, _mm512_setzero_si512(), a->q);
    const __m512 sum = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), mag, yq));
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(gl_e8m0_half(x[i].e) * a->d0), _mm512_castps512_ps256(sum), *acc);
    if (two)
        *acc = _mm256_fmadd_ps(_mm256_set1_ps(gl_e8m0_half(x[i + 1].e) * a->d1),
                               _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sum), 1)), *acc);
}

// out[r] = row r . y for R rows (R <= GEN_ROWS) w_row bytes apart.
INL void dot_rows(int n, const char *w, size_t w_row, const int R, const void *vy, float *out) {
    const block_q8_0 *y = (const block_q8_0 *)vy;
    const int nb = n / QK_MXFP4;
    __m256 acc[GEN_ROWS];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i += 2) {
        const bool two = i + 1 < nb;
        const act_pair a = load_act(y, i, two);
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)
            row_pair((const block_mxfp4 *)(w + (size_t)r * w_row), i, two, &a, &acc[r]);
    }
    for (int r = 0; r < R; r++) out[r] = hsum8(acc[r]);
}

void gl_dot_mxfp4_avx512(int n, float *s, const void *x, const void *y) { dot_rows(n, (const char *)x, 0, 1, y, s); }

void gl_dot_mxfp4_nr_avx512(int n, float *s, size_t bs, const void *x, const void *y, size_t by, int nr) {
    for (int j = 0; j < nr; j++) dot_rows(n, (const char *)x, 0, 1, (const char *)y + (size_t)j * by, s + (size_t)j * bs);
}

void gl_gen_mxfp4_avx512(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                         const float *dy, const int32_t *ys, float *out) {
    (void)type, (void)dy, (void)ys; // the activation scales are read from y's blocks (exact either way)
    const char *wr = (const char *)w;
    int r = 0;
    for (; r + GEN_ROWS <= n_rows; r += GEN_ROWS) dot_rows(n, wr + (size_t)r * w_row, w_row, GEN_ROWS, y, out + r);
    for (; r < n_rows; r++) dot_rows(n, wr + (size_t)r * w_row, w_row, 1, y, out + r);
}
