// Internal to the x86 sets: the 16-row interleaved layouts of repacked weights (repack.h) and
// their packing, shared by the AVX-512 kernels (x86-avx512/repack_*_avx512.c, one 64-byte vector
// per step) and the AVX2 kernels (repack_*_avx2.c, the same vector as two 32-byte halves: rows
// 0-7, rows 8-15). Packing uses SSE4.1 only; each set compiles its own copy with its flags.
//
// Byte 4r+e of a step vector is row r's element e of a 4-element step. The layouts of each
// type are described by the kernel files (repack_k_avx512.c, repack_q8_avx512.c).
#ifndef GGML_LITE_REPACK_LAYOUT_X86_H
#define GGML_LITE_REPACK_LAYOUT_X86_H

#include <assert.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "dot.h"
#include "quants.h"

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

// ---- Q4_K, Q6_K ----------------------------------------------------------------------------

typedef struct {
    uint8_t q[8][4][64]; // sub-block k, vector h
    uint8_t sc[8][16];   // sub-block k: each row's 6-bit scale | the top 2 bits of its 6-bit min << 6
    uint8_t mlo[4][16];  // pair p: each row's low 4 bits of min[2p] | of min[2p + 1] << 4
    gl_fp16 d[16], dmin[16];
} rq4k;

typedef struct {
    uint8_t ql[8][4][64]; // run c, vector h: low 4 bits of elements 32c+4h+e | 32c+16+4h+e << 4
    uint8_t qh[8][2][64]; // run c, vector g: top 2 bits of steps 2g (bits 0-3) and 2g+1 (4-7)
    int8_t sc[16][16];    // sub-block k: each row's scale
    gl_fp16 d[16];
    uint8_t pad[32];
} rq6k;

static_assert(sizeof(rq4k) == 2304 && sizeof(rq6k) == 3392, "repacked block sizes");

static inline void pack_q4_K(const void *src, size_t src_row, int n, void *dst) {
    const __m128i lo4 = _mm_set1_epi8(0x0f), hi4 = _mm_set1_epi8((char)0xf0);
    for (int i = 0; i < n / QK_K; i++) {
        rq4k *o = (rq4k *)dst + i;
        const block_q4_K *b[16];
        for (int r = 0; r < 16; r++) b[r] = (const block_q4_K *)((const char *)src + (size_t)r * src_row) + i;
        // Q4_K's qs[32c + l]: element 64c + l (low nibble), 64c + 32 + l (high nibble).
        for (int c = 0; c < 4; c++) {
            __m128i even[16], odd[16]; // sub-blocks 2c and 2c + 1
            for (int r = 0; r < 16; r++) {
                const __m128i a = _mm_loadu_si128((const __m128i *)(b[r]->qs + 32 * c));
                const __m128i u = _mm_loadu_si128((const __m128i *)(b[r]->qs + 32 * c + 16));
                even[r] = _mm_or_si128(_mm_and_si128(a, lo4), _mm_and_si128(_mm_slli_epi16(u, 4), hi4));
                odd[r] = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), lo4), _mm_and_si128(u, hi4));
            }
            transpose16x4(even, o->q[2 * c]);
            transpose16x4(odd, o->q[2 * c + 1]);
        }
        for (int r = 0; r < 16; r++) {
            uint8_t s8[8], m8[8];
            gl_unpack_scales_k4(b[r]->scales, s8, m8);
            for (int k = 0; k < 8; k++) o->sc[k][r] = (uint8_t)(s8[k] | (m8[k] >> 4) << 6);
            for (int p = 0; p < 4; p++) o->mlo[p][r] = (uint8_t)((m8[2 * p] & 15) | (m8[2 * p + 1] & 15) << 4);
            o->d[r] = b[r]->d, o->dmin[r] = b[r]->dmin;
        }
    }
}

static inline void pack_q6_K(const void *src, size_t src_row, int n, void *dst) {
    const __m128i lo4 = _mm_set1_epi8(0x0f), three = _mm_set1_epi8(3);
    for (int i = 0; i < n / QK_K; i++) {
        rq6k *o = (rq6k *)dst + i;
        memset(o->pad, 0, sizeof o->pad);
        for (int c = 0; c < 8; c++) {
            __m128i low[16];
            uint32_t top[16][2];
            for (int r = 0; r < 16; r++) {
                const block_q6_K *b = (const block_q6_K *)((const char *)src + (size_t)r * src_row) + i;
                // Levels 32c..32c+31: half c / 4 of the block, quarter c % 4 of it (ggml's order).
                const int h = c / 4, part = c % 4;
                const uint8_t *ql = b->ql + 64 * h + (part & 1) * 32, *qh = b->qh + 32 * h;
                __m128i lv[2];
                for (int s = 0; s < 2; s++) {
                    const __m128i l = _mm_loadu_si128((const __m128i *)(ql + 16 * s));
                    const __m128i t = _mm_loadu_si128((const __m128i *)(qh + 16 * s));
                    const __m128i l4 = part < 2 ? _mm_and_si128(l, lo4) : _mm_and_si128(_mm_srli_epi16(l, 4), lo4);
                    const __m128i t2 = _mm_and_si128(_mm_srli_epi16(t, 2 * part), three);
                    lv[s] = _mm_or_si128(l4, _mm_slli_epi16(t2, 4)); // (t2 < 4: no carry across bytes)
                }
                low[r] = _mm_or_si128(_mm_and_si128(lv[0], lo4), _mm_slli_epi16(_mm_and_si128(lv[1], lo4), 4));
                // top bits, per byte (step h, element e): lower run's | upper run's << 2
                const __m128i hb = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(lv[0], 4), three),
                                                _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(lv[1], 4), three), 2));
                const __m128i x = _mm_or_si128(hb, _mm_slli_epi32(_mm_bsrli_si128(hb, 4), 4));
                top[r][0] = (uint32_t)_mm_cvtsi128_si32(x);
                top[r][1] = (uint32_t)_mm_extract_epi32(x, 2);
            }
            transpose16x4(low, o->ql[c]);
            for (int g = 0; g < 2; g++)
                for (int r = 0; r < 16; r++) memcpy(o->qh[c][g] + 4 * r, &top[r][g], 4);
        }
        for (int r = 0; r < 16; r++) {
            const block_q6_K *b = (const block_q6_K *)((const char *)src + (size_t)r * src_row) + i;
            for (int k = 0; k < 16; k++) o->sc[k][r] = b->scales[k];
            o->d[r] = b->d;
        }
    }
}

// ---- Q8_0, Q4_0 ----------------------------------------------------------------------------

typedef struct {
    uint8_t q[8][64]; // step s: elements 4s..4s+3 of rows 0..15, + 128
    gl_fp16 d[16];
} rq8_0;

typedef struct {
    uint8_t q[4][64]; // vector h: elements 4h+e (low nibble) and 16+4h+e (high nibble)
    gl_fp16 d[16];
} rq4_0;

static_assert(sizeof(rq8_0) == 16 * sizeof(block_q8_0) && sizeof(rq4_0) == 16 * sizeof(block_q4_0),
              "repacked blocks as large as the plain ones");

static inline void pack_q8_0(const void *src, size_t src_row, int n, void *dst) {
    const __m128i flip = _mm_set1_epi8((char)0x80);
    for (int b = 0; b < n / QK8_0; b++) {
        rq8_0 *o = (rq8_0 *)dst + b;
        __m128i lo[16], hi[16];
        for (int r = 0; r < 16; r++) {
            const block_q8_0 *x = (const block_q8_0 *)((const char *)src + (size_t)r * src_row) + b;
            lo[r] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)x->qs), flip);
            hi[r] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(x->qs + 16)), flip);
            o->d[r] = x->d;
        }
        transpose16x4(lo, o->q);
        transpose16x4(hi, o->q + 4);
    }
}

static inline void pack_q4_0(const void *src, size_t src_row, int n, void *dst) {
    for (int b = 0; b < n / QK4_0; b++) {
        rq4_0 *o = (rq4_0 *)dst + b;
        __m128i v[16];
        for (int r = 0; r < 16; r++) {
            const block_q4_0 *x = (const block_q4_0 *)((const char *)src + (size_t)r * src_row) + b;
            v[r] = _mm_loadu_si128((const __m128i *)x->qs);
            o->d[r] = x->d;
        }
        transpose16x4(v, o->q);
    }
}

#endif
