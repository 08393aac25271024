// Internal to arch/x86-avx512: the low-bit super-blocks decoded into vectors, for the prompt
// tiles (tile_lowbit_avx512.c) and the one-token kernels (dot_lowbit_avx512.c).
//
// decode_tile_row gives super-block i of a row as levels q[256] made unsigned (4 vectors of 64),
// the integer scale of each sub-block and the float factor, x = (d / div) * sc[sub-block] * q
// (quants_lowbit.h), bit for bit what gl_unpack_lowbit gives. IQ2_XXS, IQ2_S, IQ3_XXS, IQ3_S
// and IQ1_M are decoded straight into vectors (grid lookups, sign bits as AVX-512 byte masks)
// by decode_parts, which the one-token kernels read as they are (magnitudes, signs, scales);
// the prompt tiles read IQ1_M and IQ1_S through a grid of their own and IQ2_XS by scalar grid
// lookups; the ternary types go through the scalar unpacker. Built with AVX512-VBMI (the *_vbmi_avx512.c
// files), the grids of IQ2_XXS, IQ2_S, IQ3_XXS and IQ3_S are read through byte permutes (grid codes).
#ifndef GGML_LITE_LOWBIT_DECODE_AVX512_H
#define GGML_LITE_LOWBIT_DECODE_AVX512_H

#include <immintrin.h>
#include <string.h>

#include "iq_grids.h"
#include "quants.h"
#include "quants_lowbit.h"

enum { LOWBIT_OFFSET = 64 }; // the tiles add it to make every level unsigned: |q| <= 62 in all these formats

// 16 rows of 16 dwords to out[s] = dword s of every row (row r at dword r): the step layout of
// the prompt tiles.
static inline __attribute__((always_inline)) void transpose16x16(const __m512i a[16], __m512i out[16]) {
    __m512i x[16], y[16];
    for (int i = 0; i < 8; i++) { // per 128-bit lane: rows 2i, 2i + 1 interleaved
        x[2 * i] = _mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]);
        x[2 * i + 1] = _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { // y[4i + j], lane L: dword 4L + j of rows 4i..4i + 3
        y[4 * i] = _mm512_unpacklo_epi64(x[4 * i], x[4 * i + 2]);
        y[4 * i + 1] = _mm512_unpackhi_epi64(x[4 * i], x[4 * i + 2]);
        y[4 * i + 2] = _mm512_unpacklo_epi64(x[4 * i + 1], x[4 * i + 3]);
        y[4 * i + 3] = _mm512_unpackhi_epi64(x[4 * i + 1], x[4 * i + 3]);
    }
    for (int j = 0; j < 4; j++) { // the 4 x 4 lanes of y[j], y[4 + j], y[8 + j], y[12 + j] transposed
        const __m512i z0 = _mm512_shuffle_i32x4(y[j], y[4 + j], 0x88), z1 = _mm512_shuffle_i32x4(y[j], y[4 + j], 0xdd);
        const __m512i z2 = _mm512_shuffle_i32x4(y[8 + j], y[12 + j], 0x88), z3 = _mm512_shuffle_i32x4(y[8 + j], y[12 + j], 0xdd);
        out[j] = _mm512_shuffle_i32x4(z0, z2, 0x88);
        out[8 + j] = _mm512_shuffle_i32x4(z0, z2, 0xdd);
        out[4 + j] = _mm512_shuffle_i32x4(z1, z3, 0x88);
        out[12 + j] = _mm512_shuffle_i32x4(z1, z3, 0xdd);
    }
}

// Sub-blocks with a scale of their own: 8 of 32 elements, or 16 of 16.
static inline int n_sub(enum gl_type t) {
    return t == GL_TYPE_IQ2_XS || t == GL_TYPE_IQ2_S || t == GL_TYPE_IQ1_M ? 16 : 8;
}

static inline uint32_t rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t rd16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint64_t rd64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }

// Four 7-bit sign fields of an IQ2_XXS/IQ3_XXS word to four full sign bytes: each byte's eighth
// bit makes its count of minus signs even (gl_iq_signs8), its parity folded into bit 0.
static inline uint32_t signs4(uint32_t aux) {
    const uint32_t x = (aux & 0x7f) | (aux << 1 & 0x7f00) | (aux << 2 & 0x7f0000) | (aux << 3 & 0x7f000000);
    uint32_t p = x ^ x >> 4;
    p ^= p >> 2;
    p ^= p >> 1;
    return x | (p & 0x01010101) << 7;
}

// signs4 on 8 words at once.
static inline __m256i signs4_x8(__m256i a) {
    const __m256i m7 = _mm256_set1_epi32(0x7f);
    const __m256i x = _mm256_or_si256(
        _mm256_or_si256(_mm256_and_si256(a, m7), _mm256_and_si256(_mm256_slli_epi32(a, 1), _mm256_slli_epi32(m7, 8))),
        _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi32(a, 2), _mm256_slli_epi32(m7, 16)),
                        _mm256_and_si256(_mm256_slli_epi32(a, 3), _mm256_slli_epi32(m7, 24))));
    __m256i p = _mm256_xor_si256(x, _mm256_srli_epi32(x, 4));
    p = _mm256_xor_si256(p, _mm256_srli_epi32(p, 2));
    p = _mm256_xor_si256(p, _mm256_srli_epi32(p, 1));
    return _mm256_or_si256(x, _mm256_slli_epi32(_mm256_and_si256(p, _mm256_set1_epi32(0x01010101)), 7));
}

// The 4-bit scales in the top of 8 words as 2s + 1.
static inline void scales_x8(__m256i a, int32_t sc[8]) {
    _mm256_storeu_si256((__m256i *)sc, _mm256_or_si256(_mm256_slli_epi32(_mm256_srli_epi32(a, 28), 1), _mm256_set1_epi32(1)));
}

// 16 scales 2v + 1 at once: v = (field k of `words`) = words[idx[k]] >> shift[k] & mask.
static inline void scales_x16(__m512i words, __m512i idx, __m512i shift, int mask, int32_t sc[16]) {
    const __m512i v = _mm512_srlv_epi32(_mm512_permutexvar_epi32(idx, words), shift);
    _mm512_storeu_si512(sc, _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(mask)), 1),
                                            _mm512_set1_epi32(1)));
}

// 16 entries of a 4-byte grid (IQ3) as one vector, entry q[0] lowest.
static inline __m512i grid16_u8(const uint32_t *grid, const uint8_t *q) {
    return _mm512_set_epi32((int)grid[q[15]], (int)grid[q[14]], (int)grid[q[13]], (int)grid[q[12]], (int)grid[q[11]],
                            (int)grid[q[10]], (int)grid[q[9]], (int)grid[q[8]], (int)grid[q[7]], (int)grid[q[6]],
                            (int)grid[q[5]], (int)grid[q[4]], (int)grid[q[3]], (int)grid[q[2]], (int)grid[q[1]],
                            (int)grid[q[0]]);
}
static inline __m512i grid16_u16(const uint32_t *grid, const uint16_t *q) {
    return _mm512_set_epi32((int)grid[q[15]], (int)grid[q[14]], (int)grid[q[13]], (int)grid[q[12]], (int)grid[q[11]],
                            (int)grid[q[10]], (int)grid[q[9]], (int)grid[q[8]], (int)grid[q[7]], (int)grid[q[6]],
                            (int)grid[q[5]], (int)grid[q[4]], (int)grid[q[3]], (int)grid[q[2]], (int)grid[q[1]],
                            (int)grid[q[0]]);
}

static inline float half_to_float(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

// Grid codes (grid_codes_avx512.c): each byte of a grid entry is one of a few levels, so an
// entry is its bytes' level ranks packed into 16 bits (2 bits per element for the IQ2 grids, 3
// for the IQ3 ones), kept as a table of low and one of high bytes. With AVX512-VBMI, byte permutes
// then look up 64 entries at once, and spread each code back into the entry's bytes: a few
// instructions per 64 elements instead of a load and an insert per entry.
typedef struct {
    _Alignas(64) uint8_t lo[1024], hi[1024]; // entry i: lo[i] | hi[i] << 8
    _Alignas(64) uint8_t levels[64];       // rank r (any 6-bit value whose low bits are r) -> level
} gl_grid_codes;
extern gl_grid_codes gl_iq2xxs_codes, gl_iq2s_codes, gl_iq3xxs_codes, gl_iq3s_codes;

// The IQ1_S grid as the prompt tiles store it (for IQ1_S and IQ1_M) (grid_codes_avx512.c): each byte
// 8 * level + 1 + LOWBIT_OFFSET, i.e. the level with a positive shift, made unsigned. A negative
// shift is 2 less in every byte of the entry.
extern uint64_t gl_iq1m_tile_grid[2048];

#ifdef __AVX512VBMI__
// tab[idx] for each of 64 byte indices (tab: 256 bytes).
static inline __m512i lookup256(const uint8_t *tab, __m512i idx) {
    const __m512i *t = (const __m512i *)tab;
    const __m512i lo = _mm512_permutex2var_epi8(_mm512_load_si512(t), idx, _mm512_load_si512(t + 1));
    const __m512i hi = _mm512_permutex2var_epi8(_mm512_load_si512(t + 2), idx, _mm512_load_si512(t + 3));
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi);
}

// The codes of 64 entries of a 256-entry grid (c: its table, lo or hi).
static inline __m512i codes256(const uint8_t *c, __m512i idx) { return lookup256(c, idx); }

// The same for a 512-entry grid: idx the indices' low 8 bits, bit k of nine entry k's ninth.
static inline __m512i codes512(const uint8_t *c, __m512i idx, __mmask64 nine) {
    return _mm512_mask_blend_epi8(nine, lookup256(c, idx), lookup256(c + 256, idx));
}

// The same for a 1024-entry grid: bits 0 and 1 of `high`'s bytes are the indices' ninth and tenth.
static inline __m512i codes1024(const uint8_t *c, __m512i idx, __m512i high) {
    const __mmask64 b8 = _mm512_test_epi8_mask(high, _mm512_set1_epi8(1)), b9 = _mm512_test_epi8_mask(high, _mm512_set1_epi8(2));
    return _mm512_mask_blend_epi8(b9, codes512(c, idx, b8), codes512(c + 512, idx, b8));
}

// IQ2 grids: entries first..first+7 of 64 codes (lo, hi) as their 64 levels (8 per entry).
static inline __m512i expand_iq2(__m512i lo, __m512i hi, int first, const uint8_t *levels) {
    // qword e: the code of entry first + e in its low 16 bits (bytes from lo, then from hi)
    const long long k = 0x0101010101010101ll, h = 0x4000;
    const __m512i place = _mm512_add_epi8(_mm512_set_epi64(7 * k + h, 6 * k + h, 5 * k + h, 4 * k + h, 3 * k + h, 2 * k + h, k + h, h),
                                          _mm512_set1_epi8((char)first));
    const __m512i code = _mm512_permutex2var_epi8(lo, place, hi);
    // byte j of each qword: the code from bit 2j on; its low 2 bits pick the level
    const __m512i rank = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(0x0e0c0a0806040200ll), code);
    return _mm512_permutexvar_epi8(rank, _mm512_load_si512((const __m512i *)levels));
}

// IQ3 grids: entries first..first+15 as their 64 levels (4 per entry).
static inline __m512i expand_iq3(__m512i lo, __m512i hi, int first, const uint8_t *levels) {
    const int k = 0x01010101, h = 0x4000;
    const __m512i place = _mm512_add_epi8(
        _mm512_set_epi32(15 * k + h, 14 * k + h, 13 * k + h, 12 * k + h, 11 * k + h, 10 * k + h, 9 * k + h, 8 * k + h,
                         7 * k + h, 6 * k + h, 5 * k + h, 4 * k + h, 3 * k + h, 2 * k + h, k + h, h),
        _mm512_set1_epi8((char)first));
    const __m512i code = _mm512_permutex2var_epi8(lo, place, hi);
    // two entries per qword: byte j from bit 3j of its entry's dword
    const __m512i rank = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(0x2926232009060300ll), code);
    return _mm512_permutexvar_epi8(rank, _mm512_load_si512((const __m512i *)levels));
}
#endif

// A super-block as the one-token kernels read it: x = d * sc[sub-block] * (s ? -g : g) / div
// with g the grid magnitudes, s bit j of sg[block] for element j of the block (IQ2_XXS, IQ2_S,
// IQ3_XXS, IQ3_S), two blocks to a vector; for IQ1_M, x = d * sc * (g + (s ? -1 : 1) / 8) with
// g the signed grid (-1, 0, 1) and s the shift signs. d: the format's fp16 scale.
typedef struct {
    __m512i g[4];    // blocks 2h and 2h + 1
    uint32_t sg[8];
    int32_t sc[16];
    float d;
} lowbit_parts;

static inline int lowbit_div(enum gl_type t) {
    return t == GL_TYPE_IQ3_S ? 1 : t == GL_TYPE_IQ3_XXS ? 4 : 8;
}

// Super-block i of one row of a type with a fast path (has_parts), in parts. False for others.
static inline __attribute__((always_inline)) bool decode_parts(enum gl_type t, const char *row, int i, lowbit_parts *p) {
    int32_t *sc = p->sc;
    switch (t) {
    case GL_TYPE_IQ2_XXS: {
        const block_iq2_xxs *b = (const block_iq2_xxs *)row + i;
        p->d = half_to_float(b->d);
        // per block two words: four 8-bit grid indices, then the signs and scale
        const __m512i words = _mm512_loadu_si512(b->qs);
        const __m256i aux = _mm512_cvtepi64_epi32(_mm512_srli_epi64(words, 32));
        const __m256i idx = _mm512_cvtepi64_epi32(words); // the 32 indices in order
        _mm256_storeu_si256((__m256i *)p->sg, signs4_x8(aux));
        scales_x8(aux, sc);
#ifdef __AVX512VBMI__
        const __m512i lo = codes256(gl_iq2xxs_codes.lo, _mm512_castsi256_si512(idx));
        const __m512i hi = codes256(gl_iq2xxs_codes.hi, _mm512_castsi256_si512(idx));
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) p->g[h] = expand_iq2(lo, hi, 8 * h, gl_iq2xxs_codes.levels);
        return true;
#endif
        _Alignas(32) uint8_t ix[32];
        _mm256_store_si256((__m256i *)ix, idx);
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) { // blocks 2h, 2h + 1
            const uint8_t *q = ix + 8 * h;
            const __m512i g = _mm512_set_epi64((long long)gl_iq2xxs_grid[q[7]], (long long)gl_iq2xxs_grid[q[6]],
                                               (long long)gl_iq2xxs_grid[q[5]], (long long)gl_iq2xxs_grid[q[4]],
                                               (long long)gl_iq2xxs_grid[q[3]], (long long)gl_iq2xxs_grid[q[2]],
                                               (long long)gl_iq2xxs_grid[q[1]], (long long)gl_iq2xxs_grid[q[0]]);
            p->g[h] = g;
        }
        return true;
    }
    case GL_TYPE_IQ2_S: {
        const block_iq2_s *b = (const block_iq2_s *)row + i;
        const uint8_t *signs = b->qs + QK_K / 8;
        p->d = half_to_float(b->d);
        // scale k: nibble k % 2 of byte k / 2
        scales_x16(_mm512_castsi256_si512(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b->scales))),
                   _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0),
                   _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0), 0xf, sc);
#ifdef __AVX512VBMI__
        // index k's two high bits: bits 2k, 2k + 1 of the 8 qh bytes as one qword
        const __m512i ctl = _mm512_set_epi64(0x3e3c3a3836343230ll, 0x2e2c2a2826242220ll, 0x1e1c1a1816141210ll,
                                             0x0e0c0a0806040200ll, 0x3e3c3a3836343230ll, 0x2e2c2a2826242220ll,
                                             0x1e1c1a1816141210ll, 0x0e0c0a0806040200ll);
        const __m512i high = _mm512_multishift_epi64_epi8(ctl, _mm512_set1_epi64((long long)rd64(b->qh)));
        const __m512i idx = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b->qs));
        const __m512i lo = codes1024(gl_iq2s_codes.lo, idx, high), hi = codes1024(gl_iq2s_codes.hi, idx, high);
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) p->g[h] = expand_iq2(lo, hi, 8 * h, gl_iq2s_codes.levels);
        memcpy(p->sg, signs, sizeof p->sg); // a bit per element
        return true;
#endif
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) { // blocks 2h, 2h + 1: 8 groups
            const uint8_t *q = b->qs + 8 * h;
            const unsigned h0 = b->qh[2 * h], h1 = b->qh[2 * h + 1]; // two high index bits per group
            long long e[8]; // index k: q[k] and its two high bits
            for (int k = 0; k < 8; k++) e[k] = (long long)gl_iq2s_grid[q[k] | ((k < 4 ? h0 : h1) >> (2 * (k % 4)) & 3) << 8];
            p->g[h] = _mm512_set_epi64(e[7], e[6], e[5], e[4], e[3], e[2], e[1], e[0]);
        }
        memcpy(p->sg, signs, sizeof p->sg); // a bit per element
        return true;
    }
    case GL_TYPE_IQ3_XXS: {
        const block_iq3_xxs *b = (const block_iq3_xxs *)row + i;
        const uint8_t *qs = b->qs;
        p->d = half_to_float(b->d);
        const __m256i aux = _mm256_loadu_si256((const __m256i *)(b->qs + QK_K / 4)); // signs and scale per block
        _mm256_storeu_si256((__m256i *)p->sg, signs4_x8(aux));
        scales_x8(aux, sc);
#ifdef __AVX512VBMI__
        const __m512i idx = _mm512_loadu_si512(qs);
        const __m512i lo = codes256(gl_iq3xxs_codes.lo, idx), hi = codes256(gl_iq3xxs_codes.hi, idx);
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) p->g[h] = expand_iq3(lo, hi, 16 * h, gl_iq3xxs_codes.levels);
        return true;
#endif
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) p->g[h] = grid16_u8(gl_iq3xxs_grid, qs + 16 * h);
        return true;
    }
    case GL_TYPE_IQ3_S: {
        const block_iq3_s *b = (const block_iq3_s *)row + i;
        p->d = half_to_float(b->d);
        // the 64 grid indices: 8 low bits from qs, the ninth from qh (bit k for index k)
        uint64_t hb;
        memcpy(&hb, b->qh, 8);
        // scale k < 8: nibble k % 2 of byte k / 2 (the other 8 lanes unused)
        scales_x16(_mm512_castsi128_si512(_mm_cvtepu8_epi32(_mm_cvtsi32_si128((int)rd32(b->scales)))),
                   _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 2, 2, 1, 1, 0, 0),
                   _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 4, 0, 4, 0, 4, 0), 0xf, sc);
#ifdef __AVX512VBMI__
        const __m512i idx = _mm512_loadu_si512(b->qs);
        const __m512i lo = codes512(gl_iq3s_codes.lo, idx, hb), hi = codes512(gl_iq3s_codes.hi, idx, hb);
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) p->g[h] = expand_iq3(lo, hi, 16 * h, gl_iq3s_codes.levels);
        memcpy(p->sg, b->signs, sizeof p->sg); // a bit per element
        return true;
#endif
        _Alignas(64) uint16_t ix[64];
        const __m512i nine = _mm512_set1_epi16(256);
        for (int h = 0; h < 2; h++) {
            const __m512i lo = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(b->qs + 32 * h)));
            _mm512_store_si512(ix + 32 * h, _mm512_mask_add_epi16(lo, (__mmask32)(hb >> (32 * h)), lo, nine));
        }
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) p->g[h] = grid16_u16(gl_iq3s_grid, ix + 16 * h);
        memcpy(p->sg, b->signs, sizeof p->sg); // a bit per element
        return true;
    }
    case GL_TYPE_IQ1_M: {
        const block_iq1_m *b = (const block_iq1_m *)row + i;
        uint16_t s[4];
        for (int k = 0; k < 4; k++) s[k] = rd16(b->scales + 2 * k);
        const uint16_t dbits = (uint16_t)((s[0] >> 12) | (s[1] >> 8 & 0x00f0) | (s[2] >> 4 & 0x0f00) | (s[3] & 0xf000));
        p->d = half_to_float(dbits);
        // per group k of 8 a nibble of qh (k even: low): 3 high index bits and the shift's sign
        const __m128i qh = _mm_loadu_si128((const __m128i *)b->qh), m4 = _mm_set1_epi8(0xf);
        const __m128i n0 = _mm_and_si128(qh, m4), n1 = _mm_and_si128(_mm_srli_epi16(qh, 4), m4);
        const __m256i nib = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi8(n0, n1)), _mm_unpackhi_epi8(n0, n1), 1);
        const uint32_t minus = (uint32_t)_mm256_movepi8_mask(_mm256_slli_epi16(nib, 4)); // bit 3 of each nibble
        const __m512i hi = _mm512_slli_epi16(_mm512_cvtepu8_epi16(_mm256_and_si256(nib, _mm256_set1_epi8(7))), 8);
        _Alignas(64) uint16_t ix[32];
        _mm512_store_si512(ix, _mm512_or_si512(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)b->qs)), hi));
        // scale k: bits 3 (k % 4).. of word k / 4
        scales_x16(_mm512_castsi128_si512(_mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)b->scales))),
                   _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                   _mm512_set_epi32(9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0), 7, sc);
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) { // blocks 2h, 2h + 1
            const uint16_t *q = ix + 8 * h;
            p->g[h] = _mm512_set_epi64((long long)gl_iq1s_grid[q[7]], (long long)gl_iq1s_grid[q[6]],
                                       (long long)gl_iq1s_grid[q[5]], (long long)gl_iq1s_grid[q[4]],
                                       (long long)gl_iq1s_grid[q[3]], (long long)gl_iq1s_grid[q[2]],
                                       (long long)gl_iq1s_grid[q[1]], (long long)gl_iq1s_grid[q[0]]);
        }
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) { // the shift-sign bit of each group of 8 to its 8 elements' bits
            const __m512i groups = _mm512_maskz_mov_epi64((__mmask8)(minus >> 8 * h), _mm512_set1_epi8(-1));
            const uint64_t m = _mm512_movepi8_mask(groups);
            memcpy(p->sg + 2 * h, &m, 8);
        }
        return true;
    }
    default:
        return false;
    }
}

// Super-block i of one row as the prompt tiles read it: q + LOWBIT_OFFSET (64 elements per
// vector), sub-block scales, d / div; bit for bit gl_unpack_lowbit's levels. IQ1_M and IQ1_S
// read their grid with the shift and offset folded in (gl_iq1m_tile_grid); IQ2_XS and the types
// with parts (decode_parts) are their magnitudes with the signs applied; the rest (the ternary
// types) go through the unpacker.
static inline __attribute__((always_inline)) void decode_tile_row(enum gl_type t, const char *row, int i, __m512i v[4],
                                                                  int32_t sc[16], float *d) {
    if (t == GL_TYPE_IQ1_M) {
        const block_iq1_m *b = (const block_iq1_m *)row + i;
        uint16_t s[4];
        for (int k = 0; k < 4; k++) s[k] = rd16(b->scales + 2 * k);
        *d = half_to_float((uint16_t)((s[0] >> 12) | (s[1] >> 8 & 0x00f0) | (s[2] >> 4 & 0x0f00) | (s[3] & 0xf000))) / 8;
        // group k of 8: index bits 8..10 and the shift's sign in nibble k % 2 of qh[k / 2]
        const __m256i qh = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)b->qh));
        const __m256i nib = _mm256_and_si256(_mm256_or_si256(qh, _mm256_slli_epi16(qh, 4)), _mm256_set1_epi16(0x0f0f));
        // (byte k of nib: group k's nibble)
        const __m512i nib16 = _mm512_cvtepu8_epi16(nib);
        const uint32_t minus = (uint32_t)_mm512_test_epi16_mask(nib16, _mm512_set1_epi16(8));
        _Alignas(64) uint16_t ix[32];
        _mm512_store_si512(ix, _mm512_or_si512(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)b->qs)),
                                               _mm512_slli_epi16(_mm512_and_si512(nib16, _mm512_set1_epi16(7)), 8)));
        scales_x16(_mm512_castsi128_si512(_mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)b->scales))),
                   _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                   _mm512_set_epi32(9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0), 7, sc);
        const __m512i two = _mm512_set1_epi8(2);
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
            const uint16_t *q = ix + 8 * h;
            const __m512i g = _mm512_set_epi64((long long)gl_iq1m_tile_grid[q[7]], (long long)gl_iq1m_tile_grid[q[6]],
                                               (long long)gl_iq1m_tile_grid[q[5]], (long long)gl_iq1m_tile_grid[q[4]],
                                               (long long)gl_iq1m_tile_grid[q[3]], (long long)gl_iq1m_tile_grid[q[2]],
                                               (long long)gl_iq1m_tile_grid[q[1]], (long long)gl_iq1m_tile_grid[q[0]]);
            v[h] = _mm512_mask_sub_epi64(g, (__mmask8)(minus >> 8 * h), g, two); // (bytes >= 55: no borrows)
        }
        return;
    }
    if (t == GL_TYPE_IQ1_S) {
        const block_iq1_s *b = (const block_iq1_s *)row + i;
        *d = half_to_float(b->d) / 8;
        // per block of 32 a word of qh: 3 high index bits per group, the scale (bits 12..14), the shift's sign (15)
        const __m128i qh = _mm_loadu_si128((const __m128i *)b->qh);
        const __m512i words = _mm512_permutexvar_epi16( // word g: qh of group g's block, shifted to its 3 bits
            _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12,
                                               11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 2),
            _mm512_castsi128_si512(qh));
        const __m512i high = _mm512_srlv_epi16(words, _mm512_set_epi16(9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6,
                                                                         3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0));
        _Alignas(64) uint16_t ix[32];
        _mm512_store_si512(ix, _mm512_or_si512(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)b->qs)),
                                               _mm512_slli_epi16(_mm512_and_si512(high, _mm512_set1_epi16(7)), 8)));
        const __m256i sc8 = _mm256_cvtepu16_epi32(qh);
        _mm256_storeu_si256((__m256i *)sc, _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(sc8, 12),
                                                                                                _mm256_set1_epi32(7)), 1),
                                                           _mm256_set1_epi32(1)));
        const unsigned minus = _mm_movepi16_mask(qh); // bit b: block b's shift is negative
        const __m512i two = _mm512_set1_epi8(2);
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
            const uint16_t *q = ix + 8 * h;
            const __m512i g = _mm512_set_epi64((long long)gl_iq1m_tile_grid[q[7]], (long long)gl_iq1m_tile_grid[q[6]],
                                               (long long)gl_iq1m_tile_grid[q[5]], (long long)gl_iq1m_tile_grid[q[4]],
                                               (long long)gl_iq1m_tile_grid[q[3]], (long long)gl_iq1m_tile_grid[q[2]],
                                               (long long)gl_iq1m_tile_grid[q[1]], (long long)gl_iq1m_tile_grid[q[0]]);
            const unsigned m = (minus >> 2 * h & 1 ? 0x0f : 0) | (minus >> (2 * h + 1) & 1 ? 0xf0 : 0);
            v[h] = _mm512_mask_sub_epi64(g, (__mmask8)m, g, two);
        }
        return;
    }
    const __m512i off = _mm512_set1_epi8(LOWBIT_OFFSET);
    if (t == GL_TYPE_IQ2_XS) {
        const block_iq2_xs *b = (const block_iq2_xs *)row + i;
        *d = half_to_float(b->d) / 8;
        // group g: a 9-bit grid index and 7 sign bits, the eighth making the count of minus signs even
        const __m512i qs = _mm512_loadu_si512(b->qs);
        _Alignas(64) uint16_t ix[32];
        _mm512_store_si512(ix, _mm512_and_si512(qs, _mm512_set1_epi16(511)));
        const __m512i s7 = _mm512_srli_epi16(qs, 9);
        __m512i par = _mm512_xor_si512(s7, _mm512_srli_epi16(s7, 4));
        par = _mm512_xor_si512(par, _mm512_srli_epi16(par, 2));
        par = _mm512_xor_si512(par, _mm512_srli_epi16(par, 1));
        const __m512i signs16 = _mm512_or_si512(s7, _mm512_slli_epi16(_mm512_and_si512(par, _mm512_set1_epi16(1)), 7));
        _Alignas(32) uint64_t sg[4]; // group g's sign byte at byte g: bit j of qword h for element 64h + j
        _mm256_store_si256((__m256i *)sg, _mm512_cvtepi16_epi8(signs16));
        // scale k: nibble k % 2 of byte k / 2
        scales_x16(_mm512_castsi256_si512(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b->scales))),
                   _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0),
                   _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0), 0xf, sc);
        _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
            const uint16_t *q = ix + 8 * h;
            const __m512i g = _mm512_set_epi64((long long)gl_iq2xs_grid[q[7]], (long long)gl_iq2xs_grid[q[6]],
                                               (long long)gl_iq2xs_grid[q[5]], (long long)gl_iq2xs_grid[q[4]],
                                               (long long)gl_iq2xs_grid[q[3]], (long long)gl_iq2xs_grid[q[2]],
                                               (long long)gl_iq2xs_grid[q[1]], (long long)gl_iq2xs_grid[q[0]]);
            v[h] = _mm512_add_epi8(_mm512_mask_sub_epi8(g, (__mmask64)sg[h], _mm512_setzero_si512(), g), off);
        }
        return;
    }
    lowbit_parts p;
    if (decode_parts(t, row, i, &p)) { // the magnitudes negated where the sign bits say
        memcpy(sc, p.sc, sizeof p.sc);
        for (int h = 0; h < 4; h++)
            v[h] = _mm512_add_epi8(_mm512_mask_sub_epi8(p.g[h], (__mmask64)rd64(p.sg + 2 * h), _mm512_setzero_si512(), p.g[h]), off);
        *d = p.d / (float)lowbit_div(t);
        return;
    }
    gl_lowbit_block u;
    gl_unpack_lowbit(t, row, i, &u);
    *d = u.d / (float)u.div;
    const int ns = n_sub(t), per = 16 / ns;
    for (int k = 0; k < ns; k++) sc[k] = u.ls[per * k];
    for (int h = 0; h < 4; h++) v[h] = _mm512_add_epi8(_mm512_loadu_si512(u.q + 64 * h), off);
}

#endif
