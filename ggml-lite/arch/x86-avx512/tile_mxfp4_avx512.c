// Prompt tile for MXFP4 (gpt-oss's experts) against Q8_0 rows, on 512-bit registers with
// AVX512-VNNI, in the layout of tile_q8_avx512.c: sixteen weight rows decoded once per work
// item, per block of 32 the rows' scales and 8 steps of 64 bytes (step s: elements 4s..4s+3 of
// each row side by side), one vpdpbusd per step and token (its 4 activation bytes broadcast).
//
// A block's levels are the doubled E2M1 values (gl_mxfp4_values, -12..12) and its scale
// 2^(e - 128). The tile stores level + 12 (unsigned), so the activations enter vpdpbusd as they
// are; a block's sum starts at -12 * sum(y), from the activations' extras. Per block and token
// one conversion and one FMA: acc += float(sum) * (scale * d_y), the products of the AVX2
// kernel; only the order of the float adds over blocks differs.
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "dot.h"
#include "kernels_avx512_lowbit.h"
#include "lowbit_decode_avx512.h" // transpose16x16
#include "quants.h"
#include "quants_lowbit.h"

enum {
    OFFSET = 12, // |level| <= 12
    CHUNK = 32,  // blocks per chunk: 32 * 576 bytes of weights stay in L1 while every token passes
    NT = 8       // tokens per pass: 8 integer and 8 float accumulators, each weight step loaded once
};

typedef struct {
    float d[16];      // each row's block scale
    uint8_t q[8][64]; // step s: elements 4s..4s+3 of rows 0..15, plus OFFSET
} pk16fp4;

#define INL static inline __attribute__((always_inline))
#define FOR_T _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++)

// Blocks b and b + 1 (when b + 1 < nb) of 16 rows (nrows real ones, the rest zero) into p[0], p[1].
static void pack_pair(const char *w, size_t w_row, int nrows, int b, int nb, pk16fp4 *p) {
    // level + OFFSET of each nibble value, in every 128-bit lane for vpshufb
    const __m512i lut = _mm512_add_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)gl_mxfp4_values)),
                                        _mm512_set1_epi8(OFFSET));
    const __m512i m4 = _mm512_set1_epi8(0xf);
    const int two = b + 1 < nb;
    __m512i v[16], q[16];
    for (int r = 0; r < 16; r++) {
        if (r >= nrows) {
            v[r] = _mm512_set1_epi8(OFFSET);
            p[0].d[r] = p[1].d[r] = 0;
            continue;
        }
        const block_mxfp4 *x = (const block_mxfp4 *)(w + (size_t)r * w_row) + b;
        p[0].d[r] = gl_e8m0_half(x[0].e);
        p[1].d[r] = two ? gl_e8m0_half(x[1].e) : 0;
        // per block: elements 0..15 the low nibbles, 16..31 the high ones
        const __m128i q0 = _mm_loadu_si128((const __m128i *)x[0].qs);
        const __m128i q1 = two ? _mm_loadu_si128((const __m128i *)x[1].qs) : _mm_setzero_si128();
        const __m512i qq = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(_mm_srli_epi16(q0, 4), q0)),
                                              _mm256_set_m128i(_mm_srli_epi16(q1, 4), q1), 1);
        v[r] = _mm512_shuffle_epi8(lut, _mm512_and_si512(qq, m4));
    }
    transpose16x16(v, q);
    for (int s = 0; s < 8; s++) _mm512_store_si512((__m512i *)p[0].q[s], q[s]);
    if (two)
        for (int s = 0; s < 8; s++) _mm512_store_si512((__m512i *)p[1].q[s], q[8 + s]);
}

// nt tokens x 16 rows over blocks [b0, b1) (decoded in pk[0..b1 - b0)). Token j: y[j] its Q8_0
// blocks, dy[j] / ys[j] their scales and sums, st[j] its 16 accumulators between chunks.
INL void kernel16(int b0, int b1, const pk16fp4 *pk, const block_q8_0 *const *y, const float *const *dy,
                  const int32_t *const *ys, float *const *st, const int nt) {
    __m512 acc[NT];
    FOR_T acc[j] = _mm512_load_ps(st[j]);
    for (int b = b0; b < b1; b++) {
        const pk16fp4 *p = &pk[b - b0];
        __m512i is[NT];
        FOR_T is[j] = _mm512_set1_epi32(-OFFSET * ys[j][b]);
        _Pragma("GCC unroll 8") for (int s = 0; s < 8; s++) {
            const __m512i w = _mm512_load_si512((const __m512i *)p->q[s]);
            FOR_T {
                int32_t y4;
                memcpy(&y4, y[j][b].qs + 4 * s, 4);
                is[j] = _mm512_dpbusd_epi32(is[j], w, _mm512_set1_epi32(y4));
            }
        }
        const __m512 dw = _mm512_load_ps(p->d);
        FOR_T acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[j]), _mm512_mul_ps(dw, _mm512_set1_ps(dy[j][b])), acc[j]);
    }
    FOR_T _mm512_store_ps(st[j], acc[j]);
}

// Blocks [b0, b1) of every token, NT at a time.
static void chunk16(int b0, int b1, int nb, const pk16fp4 *pk, const char *y, size_t by, const float *dy,
                    const int32_t *ys, int n_tok, float *st) {
    for (int t0 = 0; t0 < n_tok; t0 += NT) {
        const int nt = n_tok - t0 < NT ? n_tok - t0 : NT;
        const block_q8_0 *yy[NT];
        const float *dd[NT];
        const int32_t *ss[NT];
        float *sp[NT];
        for (int j = 0; j < nt; j++) {
            yy[j] = (const block_q8_0 *)(y + (size_t)(t0 + j) * by);
            dd[j] = dy + (size_t)(t0 + j) * nb;
            ss[j] = ys + (size_t)(t0 + j) * nb;
            sp[j] = st + (size_t)(t0 + j) * 16;
        }
        switch (nt) {
        case 8: kernel16(b0, b1, pk, yy, dd, ss, sp, 8); break;
        case 7: kernel16(b0, b1, pk, yy, dd, ss, sp, 7); break;
        case 6: kernel16(b0, b1, pk, yy, dd, ss, sp, 6); break;
        case 5: kernel16(b0, b1, pk, yy, dd, ss, sp, 5); break;
        case 4: kernel16(b0, b1, pk, yy, dd, ss, sp, 4); break;
        case 3: kernel16(b0, b1, pk, yy, dd, ss, sp, 3); break;
        case 2: kernel16(b0, b1, pk, yy, dd, ss, sp, 2); break;
        default: kernel16(b0, b1, pk, yy, dd, ss, sp, 1); break;
        }
    }
}

bool gl_tile16_mxfp4_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                            size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs) {
    if (type != GL_TYPE_MXFP4) return false;
    const int nb = n / QK_MXFP4;
    // Scratch: a chunk of decoded weights, each token's accumulators, and the activations'
    // block scales and sums when the caller has none.
    const size_t pk_bytes = sizeof(pk16fp4) * CHUNK, st_bytes = sizeof(float) * 16 * (size_t)n_tok;
    const size_t ex_bytes = dy && ys ? 0 : (sizeof(float) + sizeof(int32_t)) * (size_t)nb * (size_t)n_tok;
    char *mem = NULL;
    if (posix_memalign((void **)&mem, 64, pk_bytes + st_bytes + ex_bytes) != 0) return false;
    pk16fp4 *pk = (pk16fp4 *)mem;
    float *st = (float *)(mem + pk_bytes);
    if (ex_bytes) {
        float *d = (float *)(mem + pk_bytes + st_bytes);
        int32_t *sum = (int32_t *)(d + (size_t)nb * n_tok);
        for (int t = 0; t < n_tok; t++)
            for (int b = 0; b < nb; b++) {
                const block_q8_0 *yb = (const block_q8_0 *)((const char *)y + (size_t)t * by) + b;
                d[(size_t)t * nb + b] = gl_fp16_to_fp32(yb->d);
                int32_t s = 0;
                for (int k = 0; k < QK8_0; k++) s += yb->qs[k];
                sum[(size_t)t * nb + b] = s;
            }
        dy = d;
        ys = sum;
    }
    for (int r0 = 0; r0 < n_rows; r0 += 16) {
        const int nrows = n_rows - r0 < 16 ? n_rows - r0 : 16;
        const char *w16 = (const char *)w + (size_t)r0 * w_row;
        memset(st, 0, st_bytes);
        for (int b0 = 0; b0 < nb; b0 += CHUNK) { // each chunk decoded right before the tokens pass (in L1)
            const int b1 = nb - b0 < CHUNK ? nb : b0 + CHUNK;
            for (int b = b0; b < b1; b += 2) pack_pair(w16, w_row, nrows, b, b1, &pk[b - b0]);
            chunk16(b0, b1, nb, pk, (const char *)y, by, dy, ys, n_tok, st);
        }
        const __mmask16 m = (__mmask16)((1u << nrows) - 1);
        for (int t = 0; t < n_tok; t++) _mm512_mask_storeu_ps(out + (size_t)t * bs + r0, m, _mm512_load_ps(st + (size_t)t * 16));
    }
    free(mem);
    return true;
}
