// Q8_0 values weighed with AVX512-BF16 dot products (gl_attn_ops.accumulate_q8_0), built with
// -mavx512bf16 and run only on CPUs that have it (kernel_select.c).
//
// The float loops spend one fused multiply-add per value element per key and query, which on a
// deep cache is half of the attention's time. A value row's int8 quants are exact in bf16, so
// the row's block scale can go into the weight instead: w' = w * d, rounded to bf16 (2^-9
// relative, the only rounding added), and one vdpbf16ps takes two keys per element. The pairs are
// fixed positions of the tile (keys 2p and 2p + 1 from the tile's start), so a query's sums do
// not depend on where the tile's valid keys end: one-token and batched decodes agree bitwise.
#include <immintrin.h>

#include "dot.h"
#include "quants.h"

#define UNROLL _Pragma("GCC unroll 8") // the register arrays below must stay registers

enum { TILE = 32, PAIRS = TILE / 2, QB = 4 }; // QB: queries per register block (6 spilled)

// The tile's value rows [r0, n) as bf16 key pairs: dword e of pair p holds element e of key 2p
// (low half) and of key 2p + 1 (high half); rows outside [r0, n) are zeros. Their block scales
// into dk[j * nb + b].
static void pair_rows(const char *v, size_t v_stride, int r0, int n, int hd, uint32_t *vp, float *dk) {
    const int nb = hd / QK8_0;
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (int p = r0 / 2; p < (n + 1) / 2; p++) {
        const int j = 2 * p;
        const block_q8_0 *lo = j >= r0 ? (const block_q8_0 *)(v + (size_t)j * v_stride) : NULL;
        const block_q8_0 *hi = j + 1 < n ? (const block_q8_0 *)(v + (size_t)(j + 1) * v_stride) : NULL;
        for (int b = 0; b < nb; b++) {
            dk[j * nb + b] = lo ? _cvtsh_ss(lo[b].d) : 0.0f;
            dk[(j + 1) * nb + b] = hi ? _cvtsh_ss(hi[b].d) : 0.0f;
            for (int g = 0; g < QK8_0; g += 16) {
                const __m512 a = lo ? _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(lo[b].qs + g))))
                                    : _mm512_setzero_ps();
                const __m512 c = hi ? _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(hi[b].qs + g))))
                                    : _mm512_setzero_ps();
                // small integers' floats are exact bf16: their upper halves
                const __m512i pair = _mm512_or_si512(_mm512_srli_epi32(_mm512_castps_si512(a), 16),
                                                     _mm512_and_si512(_mm512_castps_si512(c), high));
                _mm512_storeu_si512(vp + (size_t)p * hd + b * QK8_0 + g, pair);
            }
        }
    }
}

// Query i's weights times the keys' block scales, as bf16 in key order: the dword of keys 2p,
// 2p + 1 in block b at wp[(b * n_q + i) * PAIRS + p]. Keys outside [r0, n) weigh 0.
static void pair_weights(int n_q, int r0, int n, int nb, const float *w, int ld, const float *dk, uint32_t *wp) {
    const __mmask32 seen = (__mmask32)((n >= 32 ? 0xffffffffu : (1u << n) - 1) & ~((1u << r0) - 1));
    for (int b = 0; b < nb; b++) {
        float d[TILE];
        for (int j = 0; j < TILE; j++) d[j] = (seen >> j & 1) ? dk[j * nb + b] : 0.0f;
        const __m512 d0 = _mm512_loadu_ps(d), d1 = _mm512_loadu_ps(d + 16);
        for (int i = 0; i < n_q; i++) {
            const float *wi = w + (size_t)i * ld;
            const __m512 w0 = _mm512_maskz_loadu_ps((__mmask16)seen, wi);
            const __m512 w1 = _mm512_maskz_loadu_ps((__mmask16)(seen >> 16), wi + 16);
            const __m512bh x = _mm512_cvtne2ps_pbh(_mm512_mul_ps(w1, d1), _mm512_mul_ps(w0, d0));
            _mm512_storeu_si512(wp + ((size_t)b * n_q + i) * PAIRS, (__m512i)x);
        }
    }
}

// nq (1 .. QB) queries' elements [e, e + 16 nv) over the pairs [p0, p1). A query whose maximum
// grew in this tile first scales what it summed: the tile's keys before the one that raised it
// weigh 0 for it, so scaling at the tile's start is scaling at that key.
static inline __attribute__((always_inline)) void pairs_cols(float *acc, const int nq, const uint32_t *vp, int p0,
                                                            int p1, int hd, int e, const int nv, const uint32_t *wp,
                                                            int n_q, const float *scale) {
    __m512 a[QB][4];
    UNROLL for (int i = 0; i < nq; i++) {
        UNROLL for (int c = 0; c < nv; c++) a[i][c] = _mm512_loadu_ps(acc + (size_t)i * hd + e + 16 * c);
        if (scale[i] != 1.0f)
            UNROLL for (int c = 0; c < nv; c++) a[i][c] = _mm512_mul_ps(a[i][c], _mm512_set1_ps(scale[i]));
    }
    const uint32_t *w_lo = wp + (size_t)(e / QK8_0) * n_q * PAIRS, *w_hi = w_lo + (nv == 4 ? (size_t)n_q * PAIRS : 0);
    for (int p = p0; p < p1; p++) {
        __m512bh vv[4];
        UNROLL for (int c = 0; c < nv; c++) vv[c] = (__m512bh)_mm512_loadu_si512(vp + (size_t)p * hd + e + 16 * c);
        UNROLL for (int i = 0; i < nq; i++) {
            const __m512bh wl = (__m512bh)_mm512_set1_epi32((int)w_lo[i * PAIRS + p]);
            const __m512bh wh = (__m512bh)_mm512_set1_epi32((int)w_hi[i * PAIRS + p]);
            UNROLL for (int c = 0; c < nv; c++) a[i][c] = _mm512_dpbf16_ps(a[i][c], vv[c], c < 2 ? wl : wh);
        }
    }
    UNROLL for (int i = 0; i < nq; i++)
        UNROLL for (int c = 0; c < nv; c++) _mm512_storeu_ps(acc + (size_t)i * hd + e + 16 * c, a[i][c]);
}

#define COLS(nq)                                                                                   \
    do {                                                                                           \
        int e = 0;                                                                                 \
        for (; e + 64 <= hd; e += 64) pairs_cols(a, nq, vp, p0, p1, hd, e, 4, wq, n_q, scale + i0); \
        for (; e < hd; e += 16) pairs_cols(a, nq, vp, p0, p1, hd, e, 1, wq, n_q, scale + i0);     \
    } while (0)

void gl_attn_accumulate_q8_0_bf16(float *acc, int n_q, const char *v, size_t v_stride, int r0, int n, int hd,
                                  const float *w, const float *rescale, int ld, const uint32_t *grows, float *scratch) {
    const int nb = hd / QK8_0, p0 = r0 / 2, p1 = (n + 1) / 2;
    uint32_t *vp = (uint32_t *)scratch;                  // [PAIRS][hd]
    float *dk = scratch + (size_t)PAIRS * hd;            // [TILE][nb]
    float *scale = dk + (size_t)TILE * nb;               // [n_q]
    uint32_t *wp = (uint32_t *)(scale + n_q);            // [nb][n_q][PAIRS]
    pair_rows(v, v_stride, r0, n, hd, vp, dk);
    pair_weights(n_q, r0, n, nb, w, ld, dk, wp);
    for (int i = 0; i < n_q; i++) // (grows' bit: the key from r0 where query i's maximum grew)
        scale[i] = grows[i] ? rescale[(size_t)i * ld + __builtin_ctz(grows[i]) + r0] : 1.0f;
    for (int i0 = 0; i0 < n_q; i0 += QB) {
        float *a = acc + (size_t)i0 * hd;
        const uint32_t *wq = wp + (size_t)i0 * PAIRS;
        switch (n_q - i0 >= QB ? QB : n_q - i0) {
        case 4: COLS(4); break;
        case 3: COLS(3); break;
        case 2: COLS(2); break;
        default: COLS(1); break;
        }
    }
}
#undef COLS
