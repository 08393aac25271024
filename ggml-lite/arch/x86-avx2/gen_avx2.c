// The one-token (generation) kernel for Q4_0, Q5_0, Q8_0 and IQ4_NL against Q8_0 rows, with the
// activation's block scales precomputed as floats; gl_gen_rows_n runs several tokens through
// it with each weight block decoded once (batch-invariant: speculative decoding verifies with it).
#include "dot.h"

#include <math.h>
#include <stdlib.h>

#include "quants.h"
#include "kernels_avx2.h"
#include "simd_avx2.h"

// ---- one token: the generation kernels --------------------------------------------------------
// Each row's sum is formed exactly as the per-row one-token kernel of dot_avx2.c forms it (the
// reference's order, so logits match it bitwise):
//  - Q8_0, Q5_0, IQ4_NL: an 8-lane float accumulator per row (lane k: elements 4k..4k+3 of every
//    block, signed levels), fma(lane ints, dw * dy) block after block; IQ4_NL alternates even and
//    odd blocks between two accumulators. Two far-apart rows run side by side so their FMA chains
//    overlap.
//  - Q4_0: per block the exact integer sum, then acc = fmaf(sum, dw * dy, acc) in block order.
//    Eight rows at a time sit in the lanes (gen_q4_0_x8); gen_q4_0 takes the rows left over.
// Several tokens (gl_gen_rows_n) share each decoded weight block; every token's arithmetic stays
// its one-token arithmetic (batch-invariant: speculative decoding verifies drafts with this).

INL float block_d(const char *blk) {
    uint16_t d;
    memcpy(&d, blk, 2);
    return _cvtsh_ss(d);
}

// Lane sums (elements 4k..4k+3) of unsigned a x signed b.
INL __m256i lanes_u8_i8(__m256i a, __m256i b, const bool vnni) {
    if (vnni) return dpbusd(_mm256_setzero_si256(), a, b);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

INL __m256i load_y(const block_q8_0 *y, int b) { return _mm256_loadu_si256((const __m256i *)y[b].qs); }

enum { PREFETCH_BYTES = 1024 };

// R rows (1 or 2) x nt tokens of a signed-level type.
INL void gen_lanes(enum gl_type t, size_t bsz, int n, const char *x0, size_t w_row, const int R,
                   const block_q8_0 *const *y, const float *const *dy, float *out, size_t os, const int nt,
                   const bool vnni) {
    const int nb = n / QK8_0;
    const bool split = t == GL_TYPE_IQ4_NL;
    __m256 acc[2][4], acc2[2][4];
    _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) FOR_J acc[r][j] = acc2[r][j] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const bool odd = split && (b & 1); // odd blocks of IQ4_NL go to the second accumulator
        _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
            const char *blk = x0 + (size_t)r * w_row + (size_t)b * bsz;
            // The FMA chain holds back retirement, so the out-of-order window alone does not
            // keep enough weight loads in flight from DRAM: fetch ahead.
            _mm_prefetch(blk + PREFETCH_BYTES, _MM_HINT_T0);
            const __m256i w = gen_levels(t, blk), aw = _mm256_sign_epi8(w, w);
            const float dw = block_d(blk);
            FOR_J {
                const __m256 p = _mm256_cvtepi32_ps(lanes_u8_i8(aw, _mm256_sign_epi8(load_y(y[j], b), w), vnni));
                const __m256 d = _mm256_set1_ps(dw * dy[j][b]);
                if (odd) acc2[r][j] = _mm256_fmadd_ps(p, d, acc2[r][j]);
                else acc[r][j] = _mm256_fmadd_ps(p, d, acc[r][j]);
            }
        }
    }
    // "+ 0.0f": the per-row kernel adds its (here zero) scalar sum, which turns -0 into +0.
    _Pragma("GCC unroll 2") for (int r = 0; r < R; r++)
        FOR_J out[(size_t)j * os + r] = hsum8(split ? _mm256_add_ps(acc[r][j], acc2[r][j]) : acc[r][j]) + 0.0f;
}

// Eight int32 vectors -> one vector of their horizontal sums, in order.
INL __m256i hsums8(const __m256i v[8]) {
    const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    const __m128i s0 = _mm_add_epi32(_mm256_castsi256_si128(h0), _mm256_extracti128_si256(h0, 1));
    const __m128i s1 = _mm_add_epi32(_mm256_castsi256_si128(h1), _mm256_extracti128_si256(h1, 1));
    return _mm256_set_m128i(s1, s0);
}

INL int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

// R Q4_0 rows (stride w_row) x nt tokens: exact signed block sums (unsigned levels minus
// 8 * sum(y)). The fmaf chains are latency-bound: R rows run side by side.
INL void gen_q4_0(int n, const char *x0, size_t w_row, const int R, const block_q8_0 *const *y,
                  const float *const *dy, const int32_t *const *ys, float *out, size_t os, const int nt,
                  const bool vnni) {
    const size_t bsz = sizeof(block_q4_0);
    const int nb = n / QK8_0;
    float acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    int b = 0;
    for (; b + 8 <= nb; b += 8) {
        float f[2][4][8], sc[2][4][8];
        _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
            const char *x = x0 + (size_t)r * w_row + (size_t)b * bsz;
            _mm_prefetch(x + PREFETCH_BYTES, _MM_HINT_T0);
            __m256i w[8];
            float dw[8];
            UNROLL for (int k = 0; k < 8; k++) {
                w[k] = gen_levels(GL_TYPE_Q4_0, x + (size_t)k * bsz);
                dw[k] = block_d(x + (size_t)k * bsz);
            }
            FOR_J {
                __m256i v[8];
                UNROLL for (int k = 0; k < 8; k++) v[k] = lanes_u8_i8(w[k], load_y(y[j], b + k), vnni);
                const __m256i off8 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(ys[j] + b)), 3);
                _mm256_storeu_ps(f[r][j], _mm256_cvtepi32_ps(_mm256_sub_epi32(hsums8(v), off8)));
                _mm256_storeu_ps(sc[r][j], _mm256_mul_ps(_mm256_loadu_ps(dw), _mm256_loadu_ps(dy[j] + b)));
            }
        }
        UNROLL for (int k = 0; k < 8; k++)
            _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) FOR_J acc[r][j] = fmaf(f[r][j][k], sc[r][j][k], acc[r][j]);
    }
    for (; b < nb; b++)
        _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
            const char *x = x0 + (size_t)r * w_row + (size_t)b * bsz;
            const __m256i w = gen_levels(GL_TYPE_Q4_0, x);
            const float dw = block_d(x);
            FOR_J {
                const int isum = hsum_i32(lanes_u8_i8(w, load_y(y[j], b), vnni)) - 8 * ys[j][b];
                acc[r][j] = fmaf((float)isum, dw * dy[j][b], acc[r][j]);
            }
        }
    _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) FOR_J out[(size_t)j * os + r] = acc[r][j];
}

// Eight Q4_0 rows (stride w_row apart) x nt tokens with the rows in the lanes: each block's
// eight row totals come out of one hadd tree, and the eight fmaf chains run as one vector FMA
// (lane by lane the same operations as gen_q4_0).
INL void gen_q4_0_x8(int n, const char *x0, size_t w_row, const block_q8_0 *const *y, const float *const *dy,
                     const int32_t *const *ys, float *out, size_t os, size_t rs, const int nt, const bool vnni) {
    const size_t bsz = sizeof(block_q4_0);
    const int nb = n / QK8_0;
    __m256 acc[4];
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i w[8];
        uint64_t dlo = 0, dhi = 0; // the eight fp16 scales, gathered in integer registers
        UNROLL for (int k = 0; k < 8; k++) {
            const char *x = x0 + (size_t)k * w_row + (size_t)b * bsz;
            if (!(b & 1)) _mm_prefetch(x + PREFETCH_BYTES, _MM_HINT_T0);
            w[k] = gen_levels(GL_TYPE_Q4_0, x);
            uint16_t d;
            memcpy(&d, x, 2);
            if (k < 4) dlo |= (uint64_t)d << (16 * k);
            else dhi |= (uint64_t)d << (16 * (k - 4));
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_set_epi64x((long long)dhi, (long long)dlo));
        FOR_J {
            const __m256i yb = load_y(y[j], b);
            __m256i v[8];
            UNROLL for (int k = 0; k < 8; k++) v[k] = lanes_u8_i8(w[k], yb, vnni);
            const __m256i isum = _mm256_sub_epi32(hsums8(v), _mm256_set1_epi32(8 * ys[j][b]));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(dy[j][b])), acc[j]);
        }
    }
    FOR_J {
        float o[8];
        _mm256_storeu_ps(o, acc[j]);
        for (int k = 0; k < 8; k++) out[(size_t)j * os + (size_t)k * rs] = o[k];
    }
}

INL void gen_rows_nt(enum gl_type type, int n, const char *w, size_t w_row, int n_rows,
                     const block_q8_0 *const *yy, const float *const *dd, const int32_t *const *ss,
                     float *out, size_t bs, const int nt, const bool vnni) {
    const bool q4 = type == GL_TYPE_Q4_0;
    const size_t bsz = q8_family_block_size(type);
    // Rows r and r + half side by side: two independent FMA chains. (Far apart, not adjacent:
    // neighbouring rows streamed together fetch from DRAM at well under half the speed.)
    if (q4 && n_rows >= 8) {
        // groups of eight rows g apart; the rows left over below
        const int g = n_rows / 8;
        for (int r = 0; r < g; r++) gen_q4_0_x8(n, w + (size_t)r * w_row, (size_t)g * w_row, yy, dd, ss, out + r, bs, (size_t)g, nt, vnni);
        w += (size_t)(8 * g) * w_row;
        out += 8 * g;
        n_rows -= 8 * g;
    }
    const int half = n_rows / 2;
    for (int r = 0; r < half; r++) {
        float o2[2 * 4];
        const char *x = w + (size_t)r * w_row;
        if (q4) gen_q4_0(n, x, (size_t)half * w_row, 2, yy, dd, ss, o2, 2, nt, vnni);
        else gen_lanes(type, bsz, n, x, (size_t)half * w_row, 2, yy, dd, o2, 2, nt, vnni);
        FOR_J {
            out[(size_t)j * bs + r] = o2[2 * j];
            out[(size_t)j * bs + r + half] = o2[2 * j + 1];
        }
    }
    if (n_rows & 1) {
        const char *x = w + (size_t)(n_rows - 1) * w_row;
        float *o = out + n_rows - 1;
        if (q4) gen_q4_0(n, x, w_row, 1, yy, dd, ss, o, bs, nt, vnni);
        else gen_lanes(type, bsz, n, x, w_row, 1, yy, dd, o, bs, nt, vnni);
    }
}

#define GEN_TYPE(T, NT)                                                                        \
    case T:                                                                                  \
        if (vnni) gen_rows_nt(T, n, wr, w_row, n_rows, yy, dd, ss, out, bs, NT, true);       \
        else gen_rows_nt(T, n, wr, w_row, n_rows, yy, dd, ss, out, bs, NT, false);           \
        break;
#define GEN_NT(NT)                                                                           \
    switch (type) {                                                                          \
        GEN_TYPE(GL_TYPE_Q4_0, NT)                                                               \
        GEN_TYPE(GL_TYPE_Q5_0, NT)                                                               \
        GEN_TYPE(GL_TYPE_Q8_0, NT)                                                               \
    default:                                                                                 \
        GEN_TYPE(GL_TYPE_IQ4_NL, NT)                                                             \
    }

void gl_gen_rows_n(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                   size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs) {
    const char *wr = (const char *)w;
    const bool vnni = gl_use_vnni();
    const int nb = n / QK8_0;
    for (int t0 = 0; t0 < n_tok; t0 += 4, out += 4 * bs) {
        const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
        const block_q8_0 *yy[4];
        const float *dd[4];
        const int32_t *ss[4];
        for (int j = 0; j < 4; j++) {
            const int tk = t0 + (j < nt ? j : 0);
            yy[j] = (const block_q8_0 *)((const char *)y + (size_t)tk * by);
            dd[j] = dy + (size_t)tk * nb;
            ss[j] = ys + (size_t)tk * nb;
        }
        switch (nt) {
        case 4: GEN_NT(4) break;
        case 3: GEN_NT(3) break;
        case 2: GEN_NT(2) break;
        default: GEN_NT(1) break;
        }
    }
}

void gl_gen_rows(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                 const float *dy, const int32_t *ys, float *out) {
    gl_gen_rows_n(type, n, w, w_row, n_rows, y, 0, dy, ys, 1, out, 0);
}
