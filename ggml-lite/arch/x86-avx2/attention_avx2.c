// The AVX2 set's loops of the fused attention kernel (gl_attn_ops in dot.h): eight keys' dots at
// once (keys transposed, one register of scores per query), 32 output elements kept in registers across a tile of values.
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "dot.h"
#include "ops_ref.h"
#include "quants.h"

// Eight keys transposed (element d of key j at kt[d * 8 + j], keys from n on zeros), then up to
// four queries broadcast element by element against them: eight scores per register, each one
// fused chain over d as the scalar set's.
static void dots_8(const float *q, int n_q, const float *k, int n, int hd, float *s, int ld, float *kt) {
    for (int d = 0; d < hd; d++)
        for (int j = 0; j < 8; j++) kt[d * 8 + j] = j < n ? k[(size_t)j * hd + d] : 0.0f;
    float out[8];
    for (int i = 0; i < n_q; i += 4) {
        const int nq = n_q - i < 4 ? n_q - i : 4;
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int d = 0; d < hd; d++) {
            const __m256 kv = _mm256_loadu_ps(kt + d * 8);
            for (int r = 0; r < nq; r++) a[r] = _mm256_fmadd_ps(_mm256_set1_ps(q[(size_t)(i + r) * hd + d]), kv, a[r]);
        }
        for (int r = 0; r < nq; r++) {
            _mm256_storeu_ps(out, a[r]);
            memcpy(s + (size_t)(i + r) * ld, out, (size_t)n * sizeof(float));
        }
    }
}

static void accumulate_one(float *acc, const float *v, const float *w, const float *rescale, uint32_t grows, int n,
                           int hd) {
    int d = 0;
    for (; d + 32 <= hd; d += 32) { // 32 outputs in registers across the tile
        __m256 a0 = _mm256_loadu_ps(acc + d), a1 = _mm256_loadu_ps(acc + d + 8);
        __m256 a2 = _mm256_loadu_ps(acc + d + 16), a3 = _mm256_loadu_ps(acc + d + 24);
        for (int j = 0; j < n; j++) {
            if (grows >> j & 1) {
                const __m256 f = _mm256_set1_ps(rescale[j]);
                a0 = _mm256_mul_ps(a0, f), a1 = _mm256_mul_ps(a1, f);
                a2 = _mm256_mul_ps(a2, f), a3 = _mm256_mul_ps(a3, f);
            }
            const __m256 wj = _mm256_set1_ps(w[j]);
            const float *vj = v + (size_t)j * hd + d;
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(vj), wj, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(vj + 8), wj, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(vj + 16), wj, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(vj + 24), wj, a3);
        }
        _mm256_storeu_ps(acc + d, a0), _mm256_storeu_ps(acc + d + 8, a1);
        _mm256_storeu_ps(acc + d + 16, a2), _mm256_storeu_ps(acc + d + 24, a3);
    }
    for (int j = 0; j < n; j++) {
        if (grows >> j & 1)
            for (int e = d; e < hd; e++) acc[e] *= rescale[j];
        for (int e = d; e < hd; e++) acc[e] = fmaf(v[(size_t)j * hd + e], w[j], acc[e]);
    }
}

static void dots(const float *q, int n_q, const float *k, int n, int hd, float *s, int ld, float *scratch) {
    for (int j = 0; j < n; j += 8) dots_8(q, n_q, k + (size_t)j * hd, n - j < 8 ? n - j : 8, hd, s + j, ld, scratch);
}

static void accumulate(float *acc, int n_q, const float *v, int n, int hd, const float *w, const float *rescale,
                       int ld, const uint32_t *grows) {
    for (int i = 0; i < n_q; i++)
        accumulate_one(acc + (size_t)i * hd, v, w + (size_t)i * ld, rescale + (size_t)i * ld, grows[i], n, hd);
}

// One Q8_0 block pair's whole int32 sum: |q| x (k with q's sign), pairs, then the 8 lanes.
static inline int32_t block_sum(const int8_t *q, const int8_t *k) {
    const __m256i qv = _mm256_loadu_si256((const __m256i *)q), kv = _mm256_loadu_si256((const __m256i *)k);
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qv, qv), _mm256_sign_epi8(kv, qv));
    const __m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(p32), _mm256_extracti128_si256(p32, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return _mm_cvtsi128_si32(t);
}

static void dots_q8_0(const char *q, size_t q_stride, int n_q, const char *k, size_t k_stride, int n, int hd,
                      float *s, int ld, float *scratch) {
    (void)scratch;
    for (int i = 0; i < n_q; i++) {
        const block_q8_0 *qb = (const block_q8_0 *)(q + (size_t)i * q_stride);
        for (int j = 0; j < n; j++) {
            const block_q8_0 *kb = (const block_q8_0 *)(k + (size_t)j * k_stride);
            float x = 0;
            for (int b = 0; b < hd / QK8_0; b++)
                x = fmaf((float)block_sum(qb[b].qs, kb[b].qs), gl_fp16_to_fp32(kb[b].d) * gl_fp16_to_fp32(qb[b].d), x);
            s[(size_t)i * ld + j] = x;
        }
    }
}

// The scalar set's lanes: the last group loaded as if padded with zeros.
static float sum(const float *x, int n) {
    int j = 0;
    __m256 a = _mm256_setzero_ps();
    for (; j + 8 <= n; j += 8) a = _mm256_add_ps(a, _mm256_loadu_ps(x + j));
    if (j < n) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - j), lane);
        a = _mm256_add_ps(a, _mm256_maskload_ps(x + j, keep));
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

static void q8_0_to_f32(const void *vx, float *y, int n) {
    const block_q8_0 *x = (const block_q8_0 *)vx;
    for (int b = 0; b < n / QK8_0; b++) {
        const __m256 d = _mm256_set1_ps(gl_fp16_to_fp32(x[b].d));
        for (int k = 0; k < QK8_0; k += 8) {
            const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].qs + k)));
            _mm256_storeu_ps(y + b * QK8_0 + k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
        }
    }
}

const gl_attn_ops gl_attn_ops_avx2 = {
    .dots = dots, .dots_q8_0 = dots_q8_0, .accumulate = accumulate, .sum = sum, .q8_0_to_f32 = q8_0_to_f32,
};
