// One-token kernels for IQ2_XXS, IQ2_S, IQ3_XXS, IQ3_S and IQ1_M against Q8_K rows, with
// AVX512-VNNI, bitwise the AVX2 set's (llama.cpp's AVX2 arithmetic).
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

// The 16 lanes of a block pair as the 8 of one block (exact: integers).
INL __m256i fold(__m512i v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }

INL float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// Scales of blocks 2h and 2h + 1 (sc16: the 16 scales as int16) for their 16 lanes: lanes
// 4q..4q+3 hold elements 16q..16q+15 of the pair.
INL __m512i lane_scales(__m512i sc16, int h, bool sub16) {
    // word w of the result: scale 4h + w / 8 (16 sub-blocks), or 2h + w / 16 (8)
    const __m512i w = _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
                                       10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i idx = sub16 ? _mm512_add_epi16(_mm512_srli_epi16(w, 3), _mm512_set1_epi16((short)(4 * h)))
                              : _mm512_add_epi16(_mm512_srli_epi16(w, 4), _mm512_set1_epi16((short)(2 * h)));
    return _mm512_permutexvar_epi16(idx, sc16);
}

// q8 negated where bit j of m is set (as vpsignb does: -128 stays -128).
INL __m512i negate_where(__m512i q8, uint64_t m) { return _mm512_mask_sub_epi8(q8, (__mmask64)m, _mm512_setzero_si512(), q8); }

// Two blocks per 512-bit vector; the 16 lanes of a pair are added into the 8 of the AVX2
// kernel's block at the end, in integers, so the sums are the same.
INL float dot_row(enum gl_type t, int n, const void *x, const void *vy) {
    const block_q8_K *y = (const block_q8_K *)vy;
    const bool sub16 = n_sub(t) == 16, iq1 = t == GL_TYPE_IQ1_M;
    __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        lowbit_parts p;
        decode_parts(t, (const char *)x, i, &p);
        const __m512i sc16 = _mm512_castsi256_si512(_mm512_cvtepi32_epi16(_mm512_loadu_si512(p.sc)));
        // two accumulators per kind, so the pairs' vpdpwssd do not wait for each other
        __m512i lanes2[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()}, lanes_m2[2] = {lanes2[0], lanes2[0]};
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
            __m512i *lanes = &lanes2[h & 1], *lanes_m = &lanes_m2[h & 1];
            const __m512i q8 = _mm512_loadu_si512(y[i].qs + 64 * h);
            const __m512i s = lane_scales(sc16, h, sub16);
            uint64_t sg;
            memcpy(&sg, p.sg + 2 * h, 8);
            if (iq1) { // the grid -1, 0, 1 as magnitudes and signs; the shifts +-1 in lanes of their own
                const __m512i g = p.g[h];
                const __m512i dg = _mm512_maddubs_epi16(_mm512_abs_epi8(g), negate_where(q8, _mm512_movepi8_mask(g)));
                const __m512i ds = _mm512_maddubs_epi16(_mm512_set1_epi8(1), negate_where(q8, sg));
                *lanes = _mm512_dpwssd_epi32(*lanes, dg, s);
                *lanes_m = _mm512_dpwssd_epi32(*lanes_m, ds, s);
            } else {
                *lanes = _mm512_dpwssd_epi32(*lanes, _mm512_maddubs_epi16(p.g[h], negate_where(q8, sg)), s);
            }
        }
        const __m256 d = _mm256_set1_ps(y[i].d * p.d);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(fold(_mm512_add_epi32(lanes2[0], lanes2[1]))), acc);
        if (iq1) acc_m = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(fold(_mm512_add_epi32(lanes_m2[0], lanes_m2[1]))), acc_m);
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
