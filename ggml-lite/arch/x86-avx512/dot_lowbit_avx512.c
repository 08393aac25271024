// One-token kernels for IQ2_XXS, IQ2_S, IQ3_XXS, IQ3_S and IQ1_M against Q8_K rows, with AVX512-VNNI
// on 256-bit registers.
//
// A super-block decodes to signed levels (lowbit_decode_avx512.h), which enter vpdpbusd plus
// LOWBIT_OFFSET, unsigned, against the activations as they are; each 32-element block's 8
// lanes are multiplied by their sub-block scales (vpmulld) and summed, less LOWBIT_OFFSET times
// the scaled activation sums (Q8_K's bsums). The integer sum is exact; per super-block one FMA
// acc += float(sum) * (d / div * d_y), and the 8 float lanes are added at the end. The batched
// entry runs the one-row kernel per activation row, so that it is bitwise the one-token kernel
// (speculative verification and the tests rely on it).
#include <immintrin.h>

#include "dot.h"
#include "kernels_avx512_lowbit.h"
#include "lowbit_decode_avx512.h"

#define INL static inline __attribute__((always_inline))

INL float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// The integer dot of super-block i (its levels lv, scales sc) with activation block y, in 8 lanes.
INL __m256i block_sum(const __m256i lv[8], const int32_t sc[16], const block_q8_K *y, const bool sub16) {
    const __m256i off = _mm256_set1_epi8(LOWBIT_OFFSET);
    __m256i tot = _mm256_setzero_si256();
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
        const __m256i dp = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_add_epi8(lv[k], off),
                                               _mm256_loadu_si256((const __m256i *)(y->qs + 32 * k)));
        // lanes 0..3 are elements 0..15 of the block, lanes 4..7 elements 16..31
        const __m256i s = sub16 ? _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi32(sc[2 * k])),
                                                          _mm_set1_epi32(sc[2 * k + 1]), 1)
                                : _mm256_set1_epi32(sc[k]);
        tot = _mm256_add_epi32(tot, _mm256_mullo_epi32(dp, s));
    }
    // the offset's share: LOWBIT_OFFSET * sum over sub-blocks of scale * activation sum
    const __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
    __m256i corr;
    if (sub16) {
        const __m512i c = _mm512_mullo_epi32(_mm512_cvtepi16_epi32(bs), _mm512_loadu_si512(sc));
        corr = _mm256_add_epi32(_mm512_castsi512_si256(c), _mm512_extracti64x4_epi64(c, 1));
    } else {
        corr = _mm256_mullo_epi32(_mm256_madd_epi16(bs, _mm256_set1_epi16(1)), _mm256_loadu_si256((const __m256i *)sc));
    }
    return _mm256_sub_epi32(tot, _mm256_slli_epi32(corr, 6)); // LOWBIT_OFFSET = 64
}

INL float dot_row(enum gl_type t, int n, const void *x, const void *vy) {
    const block_q8_K *y = (const block_q8_K *)vy;
    const bool sub16 = n_sub(t) == 16;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        __m256i lv[8];
        int32_t sc[16];
        float d;
        decode_row(t, (const char *)x, i, lv, sc, &d);
        const __m256i sum = block_sum(lv, sc, &y[i], sub16);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d * y[i].d), acc);
    }
    return hsum8(acc);
}

_Static_assert(LOWBIT_OFFSET == 64, "block_sum shifts by 6");

#define LOWBIT_DOT_AVX512(T, TYPE)                                                                              \
    void gl_dot_##T##_avx512(int n, float *s, const void *x, const void *y) { *s = dot_row(TYPE, n, x, y); } \
    void gl_dot_##T##_nr_avx512(int n, float *s, size_t bs, const void *x, const void *y, size_t by, int nr) { \
        for (int j = 0; j < nr; j++) s[(size_t)j * bs] = dot_row(TYPE, n, x, (const char *)y + (size_t)j * by); \
    }
LOWBIT_DOT_AVX512(iq2_xxs, GL_TYPE_IQ2_XXS)
LOWBIT_DOT_AVX512(iq2_s, GL_TYPE_IQ2_S)
LOWBIT_DOT_AVX512(iq3_xxs, GL_TYPE_IQ3_XXS)
LOWBIT_DOT_AVX512(iq3_s, GL_TYPE_IQ3_S)
LOWBIT_DOT_AVX512(iq1_m, GL_TYPE_IQ1_M)
