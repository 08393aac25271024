// Small AVX-512-set helpers shared by the tile kernels (compiled with this folder's flags only).
#ifndef LLAMALITE_SIMD_AVX512_H
#define LLAMALITE_SIMD_AVX512_H

#include <immintrin.h>

// 8 rows' 32-byte level vectors to 8 steps: step s holds 4-byte group s of every row.
static inline void transpose8(const __m256i v[8], __m256i q[8]) {
    __m256i u[8];
    for (int h = 0; h < 8; h += 4) { // rows h..h+3: u[h + i] holds group i (low lane) and i + 4 (high)
        const __m256i t0 = _mm256_unpacklo_epi32(v[h], v[h + 1]), t1 = _mm256_unpackhi_epi32(v[h], v[h + 1]);
        const __m256i t2 = _mm256_unpacklo_epi32(v[h + 2], v[h + 3]), t3 = _mm256_unpackhi_epi32(v[h + 2], v[h + 3]);
        u[h] = _mm256_unpacklo_epi64(t0, t2);
        u[h + 1] = _mm256_unpackhi_epi64(t0, t2);
        u[h + 2] = _mm256_unpacklo_epi64(t1, t3);
        u[h + 3] = _mm256_unpackhi_epi64(t1, t3);
    }
    for (int i = 0; i < 4; i++) {
        q[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
        q[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
    }
}

#endif
