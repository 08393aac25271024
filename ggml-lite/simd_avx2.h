// Internal: building blocks shared by the AVX2 matmul kernel files (tile_q8_avx2.c,
// tile_k_avx2.c, gen_avx2.c). Only included where GL_HAVE_AVX2_KERNELS is defined.
#ifndef GGML_LITE_SIMD_AVX2_H
#define GGML_LITE_SIMD_AVX2_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define INL static inline __attribute__((always_inline))
#define FOR_J _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)
#define UNROLL _Pragma("GCC unroll 8")

// Horizontal sum in the reference's order: (lo128 + hi128), then movehl, then movehdup.
INL float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// acc + per-lane sums of 4 (unsigned u) x (signed v) bytes: AVX512-VNNI's vpdpbusd on 256-bit
// registers, as inline assembly so the files still build with plain -mavx2 (it only runs after
// the CPU check, gl_use_vnni).
INL __m256i dpbusd(__m256i acc, __m256i u, __m256i v) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(v));
    return acc;
}

// 4 activation bytes broadcast to every 32-bit lane.
INL __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// The first nrows (1..8) lanes of v to out.
INL void store_rows(float *out, __m256 v, int nrows) {
    if (nrows == 8) {
        _mm256_storeu_ps(out, v);
    } else {
        float tmp[8];
        _mm256_storeu_ps(tmp, v);
        memcpy(out, tmp, sizeof(float) * nrows);
    }
}

#endif
