// Internal to arch/x86-avx512: helpers of the repacked layouts (repack_*_avx512.c).
#ifndef GGML_LITE_REPACK_AVX512_H
#define GGML_LITE_REPACK_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define INL static inline __attribute__((always_inline))

// 16 rows' 16-byte vectors (four 4-byte words each) to four 64-byte vectors: vector h holds
// word h of every row, row r at bytes 4r..4r+3.
static inline void transpose16x4(const __m128i w[16], uint8_t out[4][64]) {
    for (int q = 0; q < 4; q++) {
        const __m128i *v = w + 4 * q;
        const __m128i t0 = _mm_unpacklo_epi32(v[0], v[1]), t1 = _mm_unpackhi_epi32(v[0], v[1]);
        const __m128i t2 = _mm_unpacklo_epi32(v[2], v[3]), t3 = _mm_unpackhi_epi32(v[2], v[3]);
        _mm_storeu_si128((__m128i *)(out[0] + 16 * q), _mm_unpacklo_epi64(t0, t2));
        _mm_storeu_si128((__m128i *)(out[1] + 16 * q), _mm_unpackhi_epi64(t0, t2));
        _mm_storeu_si128((__m128i *)(out[2] + 16 * q), _mm_unpacklo_epi64(t1, t3));
        _mm_storeu_si128((__m128i *)(out[3] + 16 * q), _mm_unpackhi_epi64(t1, t3));
    }
}

INL __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

#endif
