// Internal: building blocks shared by the AVX2 matmul kernel files (tile_q8_avx2.c,
// tile_k_avx2.c, gen_avx2.c, gen_n_vnni.c; the AVX-512 tiles reuse the block decoders).
#ifndef GGML_LITE_SIMD_AVX2_H
#define GGML_LITE_SIMD_AVX2_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "quants.h"

#define INL static inline __attribute__((always_inline))
#define FOR_J _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)
#define UNROLL _Pragma("GCC unroll 8")

// Bytes per block of Q4_0, Q5_0, Q8_0 or IQ4_NL (a constant where t is).
INL size_t q8_family_block_size(enum gl_type t) {
    return t == GL_TYPE_Q8_0 ? sizeof(block_q8_0) : t == GL_TYPE_Q5_0 ? sizeof(block_q5_0)
                                                  : t == GL_TYPE_Q4_0 ? sizeof(block_q4_0) : sizeof(block_iq4_nl);
}

// The 32 levels of a Q4_0, Q5_0, Q8_0 or IQ4_NL block: unsigned 0..15 for Q4_0, signed bytes
// for the others.
INL __m256i gen_levels(enum gl_type t, const char *blk) {
    if (t == GL_TYPE_Q8_0) return _mm256_loadu_si256((const __m256i *)(blk + 2));
    const uint8_t *qs = (const uint8_t *)blk + (t == GL_TYPE_Q5_0 ? 6 : 2);
    // Both halves get the 16 bytes; the high half shifts them right by 4 (64-bit lanes: the
    // mask removes what crosses byte boundaries).
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    const __m256i u = _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0f));
    if (t == GL_TYPE_Q4_0) return u;
    if (t == GL_TYPE_IQ4_NL) {
        const __m128i l = _mm_loadu_si128((const __m128i *)gl_iq4nl_values);
        return _mm256_shuffle_epi8(_mm256_set_m128i(l, l), u);
    }
    // Q5_0: fifth bits from qh (bytes 2..5); q - 16
    uint32_t h;
    memcpy(&h, blk + 2, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                           0x0101010101010101ll, 0x0000000000000000ll);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf), bit), bit);
    return _mm256_sub_epi8(_mm256_or_si256(u, _mm256_and_si256(hb, _mm256_set1_epi8(0x10))), _mm256_set1_epi8(16));
}

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
