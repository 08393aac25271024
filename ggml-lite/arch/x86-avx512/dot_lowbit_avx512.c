// One-token kernels for IQ2_XXS, IQ2_S, IQ3_XXS, IQ3_S and IQ1_M against Q8_K rows, with
// AVX512-VNNI on 256-bit registers, bitwise the AVX2 set's (llama.cpp's AVX2 arithmetic).
//
// A super-block decodes to grid magnitudes and sign bits (lowbit_decode_avx512.h); the
// activations are negated where the weights are (a masked subtract, as vpsignb would), and
// vpmaddubsw + vpdpwssd (the pairs times the 16-bit scales, added into the lanes) per 32-element
// block give the integer lanes of the AVX2 kernel's vpmaddubsw + vpmaddwd + vpaddd exactly, and so are the float steps after them
// (per super-block one FMA with d_w * d_y, the lanes added as llama.cpp adds them). IQ1_M
// keeps the shifts in lanes of their own, as there. The batched entry runs the one-row kernel
// per activation row, so it is bitwise the one-token kernel too.
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

// Scales of block k's 8 lanes: lanes 0..3 are its elements 0..15, lanes 4..7 elements 16..31.
INL __m256i lane_scales(const int32_t sc[16], int k, bool sub16) {
    return sub16 ? _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)sc[2 * k])),
                                           _mm_set1_epi16((short)sc[2 * k + 1]), 1)
                 : _mm256_set1_epi16((short)sc[k]);
}

// q8 negated where bit j of m is set (as vpsignb does: -128 stays -128).
INL __m256i negate_where(__m256i q8, uint32_t m) { return _mm256_mask_sub_epi8(q8, (__mmask32)m, _mm256_setzero_si256(), q8); }

INL float dot_row(enum gl_type t, int n, const void *x, const void *vy) {
    const block_q8_K *y = (const block_q8_K *)vy;
    const bool sub16 = n_sub(t) == 16, iq1 = t == GL_TYPE_IQ1_M;
    __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        lowbit_parts p;
        decode_parts(t, (const char *)x, i, &p);
        __m256i lanes = _mm256_setzero_si256(), lanes_m = _mm256_setzero_si256();
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * k));
            const __m256i s = lane_scales(p.sc, k, sub16);
            if (iq1) { // the grid -1, 0, 1 as magnitudes and signs; the shifts +-1 in lanes of their own
                const __m256i g = p.g[k];
                const __m256i dg = _mm256_maddubs_epi16(_mm256_abs_epi8(g), negate_where(q8, (uint32_t)_mm256_movepi8_mask(g)));
                const __m256i ds = _mm256_maddubs_epi16(_mm256_set1_epi8(1), negate_where(q8, p.sg[k]));
                lanes = _mm256_dpwssd_epi32(lanes, dg, s);
                lanes_m = _mm256_dpwssd_epi32(lanes_m, ds, s);
            } else {
                lanes = _mm256_dpwssd_epi32(lanes, _mm256_maddubs_epi16(p.g[k], negate_where(q8, p.sg[k])), s);
            }
        }
        const float d = y[i].d * p.d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc);
        if (iq1) acc_m = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes_m), acc_m);
    }
    switch (t) {
    case GL_TYPE_IQ1_M: return hsum8(acc) + 0.125f * hsum8(acc_m);
    case GL_TYPE_IQ3_S: return hsum8(acc);
    case GL_TYPE_IQ3_XXS: return 0.25f * hsum8(acc);
    default: return 0.125f * hsum8(acc);
    }
}

#ifdef __AVX512VBMI__ // (built a second time with VBMI by dot_lowbit_vbmi_avx512.c)
#define LOWBIT_DOT_AVX512(T, TYPE)                                                                              \
    void gl_dot_##T##_vbmi_avx512(int n, float *s, const void *x, const void *y) { *s = dot_row(TYPE, n, x, y); } \
    void gl_dot_##T##_nr_vbmi_avx512(int n, float *s, size_t bs, const void *x, const void *y, size_t by, int nr) { \
        for (int j = 0; j < nr; j++) s[(size_t)j * bs] = dot_row(TYPE, n, x, (const char *)y + (size_t)j * by); \
    }
#else
// The set's entries: the VBMI build where the CPU has it (the same numbers, faster grid lookups).
#define LOWBIT_DOT_AVX512(T, TYPE)                                                                              \
    void gl_dot_##T##_avx512(int n, float *s, const void *x, const void *y) {                                   \
        if (gl_lowbit_vbmi()) gl_dot_##T##_vbmi_avx512(n, s, x, y);                                             \
        else *s = dot_row(TYPE, n, x, y);                                                                       \
    }                                                                                                           \
    void gl_dot_##T##_nr_avx512(int n, float *s, size_t bs, const void *x, const void *y, size_t by, int nr) { \
        if (gl_lowbit_vbmi()) gl_dot_##T##_nr_vbmi_avx512(n, s, bs, x, y, by, nr);                              \
        else                                                                                                    \
            for (int j = 0; j < nr; j++) s[(size_t)j * bs] = dot_row(TYPE, n, x, (const char *)y + (size_t)j * by); \
    }
#endif
LOWBIT_DOT_AVX512(iq2_xxs, GL_TYPE_IQ2_XXS)
LOWBIT_DOT_AVX512(iq2_s, GL_TYPE_IQ2_S)
LOWBIT_DOT_AVX512(iq3_xxs, GL_TYPE_IQ3_XXS)
LOWBIT_DOT_AVX512(iq3_s, GL_TYPE_IQ3_S)
LOWBIT_DOT_AVX512(iq1_m, GL_TYPE_IQ1_M)
