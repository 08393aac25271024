// The AVX-512 set's loops of the fused attention kernel (gl_attn_ops in dot.h), for a block of
// queries at once, rounding as the scalar set does:
//  - float keys (F16 straight from the cache rows): a tile transposed, 16 keys per register, and
//    blocks of up to 12 queries broadcast element by element against them, each score one chain
//    of fused steps as the scalar set's, with no horizontal sums;
//  - Q8_0 keys: 16 keys per register, one key per lane (a block's 32 bytes of 16 keys
//    transposed 4 bytes at a time), the queries' bytes offset by 128 to be unsigned for VNNI and
//    the offset taken back exactly (128 x the key's byte sum), so each block's int32 sum is exact;
//  - values: four queries' 64 outputs in registers across the tile, each value row loaded once
//    for the four; on CPUs with AVX512-BF16, Q8_0 values by bf16 dot products instead
//    (attention_bf16_avx512.c: the one place where the sets do not round alike).
// The sum and the Q8_0 decoding come from the AVX2 set.
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "dot.h"
#include "quants.h"

extern const gl_attn_ops gl_attn_ops_avx2;

#define UNROLL _Pragma("GCC unroll 8") // the register arrays below must stay registers
#define UNROLL16 _Pragma("GCC unroll 16")

// ---- float keys ----------------------------------------------------------------------------------

// A tile's keys transposed, 32 keys per element: element d of key j at kt[d * 32 + j] (keys from
// n on zeros), so a query's scores of 16 keys are one register's lanes, each key's dot one chain
// of fused steps over d (no horizontal sums), and a block of queries shares every key load.
#define KT_LD 32

// Sixteen rows of 16 floats r[0..15] transposed in registers: r[c] becomes column c.
static inline __attribute__((always_inline)) void transpose_16x16(__m512 *r) {
    __m512 t[16], u[16];
    UNROLL16 for (int i = 0; i < 16; i += 2) { // per 128 bits: a0 b0 a1 b1 | a2 b2 a3 b3
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    UNROLL16 for (int i = 0; i < 16; i += 4) { // u[i + c], 128-bit quarter L: column 4L + c of rows i .. i + 3
        u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    UNROLL16 for (int c = 0; c < 4; c++) { // the four quarters L of column 4L + c side by side
        const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xee);
        const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44), w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xee);
        r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
        r[8 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
    }
}

// Keys [0, n) (n <= 32; key j at k + j * stride bytes, F16 or F32 elements) into kt.
static void transpose_keys(const char *k, size_t stride, bool f16, int n, int hd, float *kt) {
    for (int g = 0; g < n; g += 16) { // 16 keys at a time
        const int left = n - g;
        const char *kg = k + (size_t)g * stride;
        int e = 0;
        for (; e + 16 <= hd; e += 16) {
            __m512 r[16];
            UNROLL16 for (int j = 0; j < 16; j++) {
                const char *x = kg + (size_t)j * stride;
                if (j >= left) r[j] = _mm512_setzero_ps();
                else if (f16) r[j] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const gl_fp16 *)x + e)));
                else r[j] = _mm512_loadu_ps((const float *)x + e);
            }
            transpose_16x16(r);
            UNROLL16 for (int c = 0; c < 16; c++) _mm512_storeu_ps(kt + (size_t)(e + c) * KT_LD + g, r[c]);
        }
        for (; e < hd; e++) // head sizes not a multiple of 16: the last elements one by one
            for (int j = 0; j < 16; j++) {
                const char *x = kg + (size_t)j * stride;
                kt[(size_t)e * KT_LD + g + j] = j >= left ? 0.0f : f16 ? gl_fp16_to_fp32(((const gl_fp16 *)x)[e]) : ((const float *)x)[e];
            }
    }
}

// nq queries (q_i at q + i * hd) against the transposed keys: nk registers of 16 keys each
// (masks m[0], m[1] for the stores), every score one fused chain over d from 0.
static inline __attribute__((always_inline)) void dots_block(const float *q, const int nq, const float *kt, int hd,
                                                            const int nk, float *s, int ld, const __mmask16 *m) {
    __m512 acc[12][2];
    UNROLL16 for (int i = 0; i < nq; i++)
        UNROLL16 for (int c = 0; c < nk; c++) acc[i][c] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m512 kv[2];
        UNROLL16 for (int c = 0; c < nk; c++) kv[c] = _mm512_loadu_ps(kt + (size_t)d * KT_LD + 16 * c);
        UNROLL16 for (int i = 0; i < nq; i++) {
            const __m512 qd = _mm512_set1_ps(q[(size_t)i * hd + d]);
            UNROLL16 for (int c = 0; c < nk; c++) acc[i][c] = _mm512_fmadd_ps(qd, kv[c], acc[i][c]);
        }
    }
    UNROLL16 for (int i = 0; i < nq; i++)
        UNROLL16 for (int c = 0; c < nk; c++) _mm512_mask_storeu_ps(s + (size_t)i * ld + 16 * c, m[c], acc[i][c]);
}

#define DOTS_BLOCK(nq)                                                                                   \
    do {                                                                                                 \
        if (nk == 2) dots_block(q + (size_t)i * hd, nq, kt, hd, 2, s + (size_t)i * ld, ld, m);           \
        else dots_block(q + (size_t)i * hd, nq, kt, hd, 1, s + (size_t)i * ld, ld, m);                   \
        i += nq;                                                                                         \
    } while (0)

// Every query against n <= 32 transposed keys: blocks of 12 queries (24 registers of scores),
// then the rest.
static void dots_kt(const float *q, int n_q, const float *kt, int n, int hd, float *s, int ld) {
    const int nk = n > 16 ? 2 : 1;
    const __mmask16 m[2] = {n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1),
                            n >= 32 ? 0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0};
    int i = 0;
    while (n_q - i >= 12) DOTS_BLOCK(12);
    if (n_q - i >= 8) DOTS_BLOCK(8);
    if (n_q - i >= 4) DOTS_BLOCK(4);
    switch (n_q - i) {
    case 3: DOTS_BLOCK(3); break;
    case 2: DOTS_BLOCK(2); break;
    case 1: DOTS_BLOCK(1); break;
    default: break;
    }
}
#undef DOTS_BLOCK

static void dots(const float *q, int n_q, const float *k, int n, int hd, float *s, int ld, float *scratch) {
    for (int j = 0; j < n; j += 32, k += 32 * (size_t)hd, s += 32) { // a tile's worth of scratch at a time
        const int m = n - j < 32 ? n - j : 32;
        transpose_keys((const char *)k, (size_t)hd * sizeof(float), false, m, hd, scratch);
        dots_kt(q, n_q, scratch, m, hd, s, ld);
    }
}

static void dots_f16(const float *q, int n_q, const char *k, size_t k_stride, int n, int hd, float *s, int ld,
                     float *scratch) {
    for (int j = 0; j < n; j += 32, k += 32 * k_stride, s += 32) {
        const int m = n - j < 32 ? n - j : 32;
        transpose_keys(k, k_stride, true, m, hd, scratch);
        dots_kt(q, n_q, scratch, m, hd, s, ld);
    }
}

// ---- Q8_0 keys ----------------------------------------------------------------------------------

// Queries' quants offset by 128 (unsigned bytes for VNNI), block after block, into qu.
static void offset_queries(const char *q, size_t q_stride, int n_q, int nb, uint8_t *qu, float *dq) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int i = 0; i < n_q; i++) {
        const block_q8_0 *qb = (const block_q8_0 *)(q + (size_t)i * q_stride);
        for (int b = 0; b < nb; b++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)qb[b].qs);
            _mm256_storeu_si256((__m256i *)(qu + ((size_t)i * nb + b) * QK8_0), _mm256_xor_si256(v, flip));
            dq[(size_t)i * nb + b] = _cvtsh_ss(qb[b].d);
        }
    }
}

// The quants of one block of 16 keys (key r's block at blk + r * k_stride; keys from `left` on
// read as zeros), 4 bytes at a time: kq[c] holds bytes 4c .. 4c + 3 of key r in lane r. Rows of
// keys r and r + 8 share a register, then an 8 x 8 transpose of 4-byte words in each half.
static inline __attribute__((always_inline)) void transpose_block(const char *blk, size_t k_stride, int left,
                                                                 __m512i *kq) {
    __m512i a[8], t[8], u[8];
    UNROLL for (int r = 0; r < 8; r++) {
        const __m256i lo = r < left ? _mm256_loadu_si256((const __m256i *)(blk + (size_t)r * k_stride + 2)) : _mm256_setzero_si256();
        const __m256i hi = r + 8 < left ? _mm256_loadu_si256((const __m256i *)(blk + (size_t)(r + 8) * k_stride + 2)) : _mm256_setzero_si256();
        a[r] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    UNROLL for (int r = 0; r < 8; r += 2) {
        t[r] = _mm512_unpacklo_epi32(a[r], a[r + 1]);
        t[r + 1] = _mm512_unpackhi_epi32(a[r], a[r + 1]);
    }
    UNROLL for (int r = 0; r < 8; r += 4) { // per 128 bits: word c (and c + 4) of rows r .. r + 3
        u[r] = _mm512_unpacklo_epi64(t[r], t[r + 2]);
        u[r + 1] = _mm512_unpackhi_epi64(t[r], t[r + 2]);
        u[r + 2] = _mm512_unpacklo_epi64(t[r + 1], t[r + 3]);
        u[r + 3] = _mm512_unpackhi_epi64(t[r + 1], t[r + 3]);
    }
    const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), second = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    UNROLL for (int c = 0; c < 4; c++) {
        kq[c] = _mm512_permutex2var_epi64(u[c], first, u[c + 4]);
        kq[c + 4] = _mm512_permutex2var_epi64(u[c], second, u[c + 4]);
    }
}

static void dots_q8_0(const char *q, size_t q_stride, int n_q, const char *k, size_t k_stride, int n, int hd,
                      float *s, int ld, float *scratch) {
    (void)q, (void)q_stride;
    const int nb = hd / QK8_0;
    const float *dq = scratch;                                   // [n_q][nb] the queries' scales
    const uint8_t *qu = (const uint8_t *)(scratch + (size_t)n_q * nb); // [n_q][nb][32] offset quants
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int)k_stride));
    const __m512i ones = _mm512_set1_epi8(1);
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        const char *kj = k + (size_t)j * k_stride;
        for (int b = 0; b < nb; b++) {
            const char *blk = kj + (size_t)b * sizeof(block_q8_0);
            __m512i kq[8], ksum = _mm512_setzero_si512();
            transpose_block(blk, k_stride, n - j, kq);
            UNROLL for (int c = 0; c < 8; c++) ksum = _mm512_dpbusd_epi32(ksum, ones, kq[c]);
            const __m512i offset = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(ksum, 7));
            const __m512i dw = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, rows, blk, 1);
            const __m512 dk = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dw)); // the keys' scales
            for (int i = 0; i < n_q; i++) {
                const int32_t *qi = (const int32_t *)(qu + ((size_t)i * nb + b) * QK8_0);
                __m512i sum = offset;
                UNROLL for (int c = 0; c < 8; c++) sum = _mm512_dpbusd_epi32(sum, _mm512_set1_epi32(qi[c]), kq[c]);
                float *si = s + (size_t)i * ld + j;
                const __m512 x = b == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, si);
                const __m512 scale = _mm512_mul_ps(dk, _mm512_set1_ps(dq[(size_t)i * nb + b]));
                _mm512_mask_storeu_ps(si, m, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, x));
            }
        }
    }
}

// The queries offset and their scales apart, once per block of queries (prepare_q8_0).
static void prepare_q8_0(const char *q, size_t q_stride, int n_q, int hd, float *scratch) {
    const int nb = hd / QK8_0;
    offset_queries(q, q_stride, n_q, nb, (uint8_t *)(scratch + (size_t)n_q * nb), scratch);
}

// ---- values -------------------------------------------------------------------------------------

// nq (1 .. 4) queries' elements [e, e + 16 nv) across the tile's values.
static inline __attribute__((always_inline)) void accumulate_cols(float *acc, const int nq, const float *v, int n,
                                                                 int hd, int e, const int nv, const float *w,
                                                                 const float *rescale, int ld, const uint32_t *grows) {
    __m512 a[4][4];
    uint32_t any = 0;
    UNROLL for (int i = 0; i < nq; i++) {
        any |= grows[i];
        UNROLL for (int c = 0; c < nv; c++) a[i][c] = _mm512_loadu_ps(acc + (size_t)i * hd + e + 16 * c);
    }
    for (int j = 0; j < n; j++) {
        __m512 vj[4];
        UNROLL for (int c = 0; c < nv; c++) vj[c] = _mm512_loadu_ps(v + (size_t)j * hd + e + 16 * c);
        if (any >> j & 1)
            UNROLL for (int i = 0; i < nq; i++)
                if (grows[i] >> j & 1) {
                    const __m512 f = _mm512_set1_ps(rescale[(size_t)i * ld + j]);
                    UNROLL for (int c = 0; c < nv; c++) a[i][c] = _mm512_mul_ps(a[i][c], f);
                }
        UNROLL for (int i = 0; i < nq; i++) {
            const __m512 wij = _mm512_set1_ps(w[(size_t)i * ld + j]);
            UNROLL for (int c = 0; c < nv; c++) a[i][c] = _mm512_fmadd_ps(vj[c], wij, a[i][c]);
        }
    }
    UNROLL for (int i = 0; i < nq; i++)
        UNROLL for (int c = 0; c < nv; c++) _mm512_storeu_ps(acc + (size_t)i * hd + e + 16 * c, a[i][c]);
}

#define COLS(nq)                                                                                   \
    do {                                                                                           \
        int e = 0;                                                                                 \
        for (; e + 64 <= hd; e += 64) accumulate_cols(acc, nq, v, n, hd, e, 4, w, rescale, ld, grows); \
        for (; e < hd; e += 16) accumulate_cols(acc, nq, v, n, hd, e, 1, w, rescale, ld, grows);     \
    } while (0)

static void accumulate(float *acc, int n_q, const float *v, int n, int hd, const float *w, const float *rescale,
                       int ld, const uint32_t *grows) {
    if (hd % 16 != 0) {
        gl_attn_ops_avx2.accumulate(acc, n_q, v, n, hd, w, rescale, ld, grows);
        return;
    }
    for (int i0 = 0; i0 < n_q; i0 += 4, acc += 4 * (size_t)hd, w += 4 * (size_t)ld, rescale += 4 * (size_t)ld, grows += 4) {
        switch (n_q - i0 >= 4 ? 4 : n_q - i0) {
        case 4: COLS(4); break;
        case 3: COLS(3); break;
        case 2: COLS(2); break;
        default: COLS(1); break;
        }
    }
}
#undef COLS

// ---- softmax ----------------------------------------------------------------------------------

// e^x lane by lane with the AVX2 set's exp_row arithmetic (ops_avx2.c), 16 lanes.
static inline __m512 exp_ref16(__m512 x) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f), _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __m512i e = _mm512_slli_epi32(_mm512_castps_si512(z), 23);
    const __m512 k = _mm512_castsi512_ps(_mm512_add_epi32(e, _mm512_castps_si512(_mm512_set1_ps(1))));
    const __m512 an = _mm512_abs_ps(n);
    const __mmask16 c = _mm512_cmp_ps_mask(an, _mm512_set1_ps(126), _CMP_GT_OQ);
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_mul_ps(_mm512_set1_ps(0x1.ffffecp-1f), b));
    if (!c) return _mm512_fmadd_ps(j, k, k);
    const __mmask16 le = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ);
    const __m512i g = _mm512_maskz_mov_epi32(le, _mm512_set1_epi32((int)0x82000000u));
    const __m512 s1 = _mm512_castsi512_ps(_mm512_add_epi32(g, _mm512_set1_epi32(0x7f000000)));
    const __m512 s2 = _mm512_castsi512_ps(_mm512_sub_epi32(e, g));
    const __mmask16 d = _mm512_cmp_ps_mask(an, _mm512_set1_ps(192), _CMP_GT_OQ);
    const __m512 mid = _mm512_mask_blend_ps(c, _mm512_fmadd_ps(k, j, k), _mm512_mul_ps(_mm512_fmadd_ps(s2, j, s2), s1));
    return _mm512_mask_blend_ps(d, mid, _mm512_mul_ps(s1, s1));
}

// sum() of 32 weights in two registers: 8 lanes over steps of 8, then gl_hsum8_pairs.
static inline float sum_32(__m512 x0, __m512 x1) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(x0), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x0), 1)));
    a = _mm256_add_ps(a, _mm512_castps512_ps256(x1));
    a = _mm256_add_ps(a, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x1), 1)));
    const __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1)); // l0+l4 ...
    const __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t));                              // (t0+t2), (t1+t3)
    return _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)));
}

static inline __attribute__((always_inline)) bool weights_one(float *s, int n, int a, int b, float scale, float *m,
                                                            float *l, float *rescale) {
    const __mmask32 seen = (__mmask32)((b >= 32 ? 0xffffffffu : (1u << b) - 1) & ~((1u << a) - 1));
    const __m512 none = _mm512_set1_ps(-INFINITY), sc = _mm512_set1_ps(scale);
    const __m512 x0 = _mm512_mask_mul_ps(none, (__mmask16)seen, _mm512_loadu_ps(s), sc);
    const __m512 x1 = _mm512_mask_mul_ps(none, (__mmask16)(seen >> 16), _mm512_loadu_ps(s + 16), sc);
    __m512 mv = _mm512_set1_ps(*m);
    // a score above the maximum: the usual case once it settles is none (two compares, no
    // horizontal maximum)
    const bool grows = (_mm512_cmp_ps_mask(x0, mv, _CMP_GT_OQ) | _mm512_cmp_ps_mask(x1, mv, _CMP_GT_OQ)) != 0;
    if (grows) {
        const float top = _mm512_reduce_max_ps(_mm512_max_ps(x0, x1));
        *rescale = _mm_cvtss_f32(_mm512_castps512_ps128(exp_ref16(_mm512_set1_ps(*m - top))));
        *l *= *rescale;
        *m = top;
        mv = _mm512_set1_ps(top);
    }
    const __m512 w0 = exp_ref16(_mm512_sub_ps(x0, mv)), w1 = exp_ref16(_mm512_sub_ps(x1, mv));
    const __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
    const __mmask16 m1 = n >= 32 ? 0xffff : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : 0;
    _mm512_mask_storeu_ps(s, m0, w0);
    _mm512_mask_storeu_ps(s + 16, m1, w1);
    *l += sum_32(w0, w1); // lanes past n hold e^-inf = 0, as sum()'s padding
    return grows;
}

static bool weights(float *s, int n, int a, int b, float scale, float *m, float *l, float *rescale) {
    return weights_one(s, n, a, b, scale, m, l, rescale);
}

static void weights_tile(float *s, int ld, int n_q, int n, const int *a, const int *b, float scale, float *m, float *l,
                         float *rescale, uint32_t *grows) {
    for (int i = 0; i < n_q; i++, s += ld, rescale += ld) {
        if (a[i] >= b[i]) {
            memset(s, 0, (size_t)n * sizeof(float));
            grows[i] = 0;
        } else {
            grows[i] = weights_one(s, n, a[i], b[i], scale, &m[i], &l[i], &rescale[a[i]]) ? 1u << a[i] : 0;
        }
    }
}

// ---- decoding ---------------------------------------------------------------------------------

static bool rows_to_f32(enum gl_type t, const char *src, size_t stride, int n, int hd, float *dst) {
    if (hd % 32 != 0 || (t != GL_TYPE_F16 && t != GL_TYPE_Q8_0)) return false;
    for (int j = 0; j < n; j++, src += stride, dst += hd) {
        if (t == GL_TYPE_F16) {
            for (int e = 0; e < hd; e += 16)
                _mm512_storeu_ps(dst + e, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + 2 * e))));
            continue;
        }
        const block_q8_0 *x = (const block_q8_0 *)src;
        for (int b = 0; b < hd / QK8_0; b++) {
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(x[b].d));
            for (int e = 0; e < QK8_0; e += 16) {
                const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(x[b].qs + e)));
                _mm512_storeu_ps(dst + b * QK8_0 + e, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q)));
            }
        }
    }
    return true;
}

// The AVX2 set's (one row each: no gain from wider registers).
static float sum(const float *x, int n) { return gl_attn_ops_avx2.sum(x, n); }
static void q8_0_to_f32(const void *x, float *y, int n) { gl_attn_ops_avx2.q8_0_to_f32(x, y, n); }

#define AVX512_ATTN_OPS                                                                                        \
    .dots = dots, .dots_f16 = dots_f16, .dots_q8_0 = dots_q8_0, .prepare_q8_0 = prepare_q8_0,                   \
    .accumulate = accumulate, .sum = sum, .q8_0_to_f32 = q8_0_to_f32, .weights = weights,                     \
    .weights_tile = weights_tile, .rows_to_f32 = rows_to_f32
const gl_attn_ops gl_attn_ops_avx512 = {AVX512_ATTN_OPS};
// CPUs with AVX512-BF16: Q8_0 values by bf16 dot products (attention_bf16_avx512.c).
void gl_attn_accumulate_q8_0_bf16(float *acc, int n_q, const char *v, size_t v_stride, int r0, int n, int hd,
                                  const float *w, const float *rescale, int ld, const uint32_t *grows, float *scratch);
const gl_attn_ops gl_attn_ops_avx512_bf16 = {AVX512_ATTN_OPS, .accumulate_q8_0 = gl_attn_accumulate_q8_0_bf16};
