// Prompt tiles for the K-quants against Q8_K rows (Q4_K, Q5_K, Q6_K): eight weight rows are
// decoded once per work item into an interleaved buffer (see tile_q8_avx2.c for the idea) that
// every token of the block then reuses.
#include "dot.h"

#include <stdlib.h>

#include "quants.h"
#include "kernels_avx2.h"
#include "simd_avx2.h"

// ---- Q4_K / Q5_K tiles against Q8_K ------------------------------------------------------------------
// Same interleave per super-block of 256: 64 steps of 8 rows x 4 levels (0..15 or 0..31), the
// rows' 32-element sub-block scales (int16, for madd / vpdpwssd), their mins (int16 pairs, two
// sub-blocks per pair, against Q8_K's sub-block sums) and d / dmin as floats.

typedef struct {
    float d[8], dmin[8];
    int16_t sc16[8][16]; // sub-block s: row r's scale in lanes 2r and 2r+1
    int16_t mn[4][16];   // pair p: row r's (min[2p], min[2p+1]) in lanes 2r, 2r+1
    uint8_t q[64][32];   // step s: elements 4s..4s+3 of row r at bytes 4r..4r+3
} pk_k4;

static void pack_k4(enum gl_type t, const char *w, size_t w_row, int nrows, int nsb, pk_k4 *pk) {
    uint8_t lv[QK_K], sc[8], m[8];
    for (int r = 0; r < 8; r++) {
        for (int i = 0; i < nsb; i++) {
            pk_k4 *p = &pk[i];
            float d = 0, dmin = 0;
            if (r < nrows) {
                const char *row = w + (size_t)r * w_row;
                const uint8_t *qs, *scales;
                if (t == GL_TYPE_Q4_K) {
                    const block_q4_K *b = (const block_q4_K *)row + i;
                    d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin), qs = b->qs, scales = b->scales;
                    for (int c = 0; c < 4; c++)
                        for (int l = 0; l < 32; l++) {
                            lv[64 * c + l] = qs[32 * c + l] & 0xf;
                            lv[64 * c + 32 + l] = qs[32 * c + l] >> 4;
                        }
                } else {
                    const block_q5_K *b = (const block_q5_K *)row + i;
                    d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin), qs = b->qs, scales = b->scales;
                    for (int c = 0; c < 4; c++)
                        for (int l = 0; l < 32; l++) {
                            lv[64 * c + l] = (uint8_t)((qs[32 * c + l] & 0xf) | (b->qh[l] >> (2 * c) & 1) << 4);
                            lv[64 * c + 32 + l] = (uint8_t)((qs[32 * c + l] >> 4) | (b->qh[l] >> (2 * c + 1) & 1) << 4);
                        }
                }
                gl_unpack_scales_k4(scales, sc, m);
            } else {
                memset(lv, 0, sizeof lv);
                memset(sc, 0, sizeof sc);
                memset(m, 0, sizeof m);
            }
            p->d[r] = d;
            p->dmin[r] = dmin;
            for (int k = 0; k < 8; k++) {
                p->sc16[k][2 * r] = p->sc16[k][2 * r + 1] = sc[k];
            }
            for (int k = 0; k < 4; k++) {
                p->mn[k][2 * r] = m[2 * k];
                p->mn[k][2 * r + 1] = m[2 * k + 1];
            }
            for (int st = 0; st < 64; st++) memcpy(&p->q[st][4 * r], lv + 4 * st, 4);
        }
    }
}

// vpdpwssd (AVX512-VNNI on 256-bit registers): acc + pairs of int16 products, as inline assembly
// so the file builds with plain -mavx2; only runs after the CPU check.
INL __m256i dpwssd(__m256i acc, __m256i a, __m256i b) {
    __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}

// acc + scale x (4-element sums of one step), per row: the scale sits in both int16 lanes of a row.
INL __m256i add_scaled(__m256i acc, __m256i p16, __m256i sc16, const bool vnni) {
    if (vnni) return dpwssd(acc, p16, sc16);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, sc16));
}

// The per-row kernels (dot_avx2.c) keep one 8-lane accumulator per row whose lane s holds
// elements 4s..4s+3 of every 32-element run; in the tile a step is one such lane for 8 rows, so
// each token keeps 8 integer sums (lane s) per super-block and 8 float accumulators, combined at
// the end in hsum's order: ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).
INL __m256 hsum_lanes(const __m256 a[8]) {
    return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6])),
                         _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7])));
}

INL void k4_pass(int nsb, const pk_k4 *pk, const block_q8_K *const *y, float *out, size_t bs, int nrows,
                 const int tp, const bool five, const bool vnni) {
    __m256 acc[2][8], accm[2][4], summs[2];
    for (int t = 0; t < tp; t++) {
        for (int s = 0; s < 8; s++) acc[t][s] = _mm256_setzero_ps();
        for (int q = 0; q < 4; q++) accm[t][q] = _mm256_setzero_ps();
        summs[t] = _mm256_setzero_ps();
    }
    for (int i = 0; i < nsb; i++) {
        const pk_k4 *p = &pk[i];
        __m256i isum[2][8];
        _Pragma("GCC unroll 2") for (int t = 0; t < tp; t++) UNROLL for (int s = 0; s < 8; s++) isum[t][s] = _mm256_setzero_si256();
        for (int k = 0; k < 8; k++) { // 32-element sub-blocks
            const __m256i scv = _mm256_load_si256((const __m256i *)p->sc16[k]);
            UNROLL for (int s = 0; s < 8; s++) {
                const __m256i w = _mm256_load_si256((const __m256i *)p->q[8 * k + s]);
                _Pragma("GCC unroll 2") for (int t = 0; t < tp; t++)
                    isum[t][s] = add_scaled(isum[t][s], _mm256_maddubs_epi16(w, bcast4(y[t][i].qs + 4 * (8 * k + s))), scv, vnni);
            }
        }
        _Pragma("GCC unroll 2") for (int t = 0; t < tp; t++) {
            const __m256 d = _mm256_mul_ps(_mm256_load_ps(p->d), _mm256_set1_ps(y[t][i].d));
            UNROLL for (int s = 0; s < 8; s++) acc[t][s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t][s]), d, acc[t][s]);
            // mins x the token's 32-element sums: row r's min pair q against (q8s[2q], q8s[2q+1])
            const __m256 mscale = _mm256_mul_ps(_mm256_set1_ps(-y[t][i].d), _mm256_load_ps(p->dmin));
            const int16_t *bsum = y[t][i].bsums;
            __m256i prod[4];
            UNROLL for (int q = 0; q < 4; q++) {
                const int a = bsum[4 * q] + bsum[4 * q + 1], b = bsum[4 * q + 2] + bsum[4 * q + 3];
                const __m256i pair = _mm256_set1_epi32((int)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16));
                prod[q] = _mm256_madd_epi16(_mm256_load_si256((const __m256i *)p->mn[q]), pair);
            }
            if (five) {
                const __m256i tot = _mm256_add_epi32(_mm256_add_epi32(prod[0], prod[1]), _mm256_add_epi32(prod[2], prod[3]));
                summs[t] = _mm256_fmadd_ps(mscale, _mm256_cvtepi32_ps(tot), summs[t]);
            } else {
                UNROLL for (int q = 0; q < 4; q++) accm[t][q] = _mm256_fmadd_ps(mscale, _mm256_cvtepi32_ps(prod[q]), accm[t][q]);
            }
        }
    }
    for (int t = 0; t < tp; t++) {
        const __m256 m = five ? summs[t] : _mm256_add_ps(_mm256_add_ps(accm[t][0], accm[t][2]), _mm256_add_ps(accm[t][1], accm[t][3]));
        store_rows(out + (size_t)t * bs, _mm256_add_ps(hsum_lanes(acc[t]), m), nrows);
    }
}

// With VNNI the 32 registers of AVX512-VL hold two tokens' 16 lane sums: each weight step
// is loaded once for both.
__attribute__((target("avx512vl,avx512vnni"))) static void k4_vnni(int nsb, const pk_k4 *pk, const block_q8_K *const *y,
                                                                    float *out, size_t bs, int nrows, int nt, bool five) {
    int t = 0;
    for (; t + 2 <= nt; t += 2)
        if (five) k4_pass(nsb, pk, y + t, out + (size_t)t * bs, bs, nrows, 2, true, true);
        else k4_pass(nsb, pk, y + t, out + (size_t)t * bs, bs, nrows, 2, false, true);
    if (t < nt) {
        if (five) k4_pass(nsb, pk, y + t, out + (size_t)t * bs, bs, nrows, 1, true, true);
        else k4_pass(nsb, pk, y + t, out + (size_t)t * bs, bs, nrows, 1, false, true);
    }
}

// Q4_K / Q5_K, bitwise the per-row kernels: lane sums x d*dy in 8 float lanes; Q4_K's mins in
// four float lanes (pairs of sub-blocks), Q5_K's as one fused float sum per super-block.
INL void tile_k4_kernel(int nsb, const pk_k4 *pk, const block_q8_K *const *y, float *out, size_t bs,
                        int nrows, const int nt, const bool five, const bool vnni) {
    if (vnni) {
        k4_vnni(nsb, pk, y, out, bs, nrows, nt, five);
        return;
    }
    for (int t = 0; t < nt; t++) k4_pass(nsb, pk, y + t, out + (size_t)t * bs, bs, nrows, 1, five, false);
}

// ---- Q6_K tiles against Q8_K ---------------------------------------------------------------------------
// Levels 0..63 (value + 32), int8 scales per 16 elements (4 steps); the offset comes off inside
// each int16 pair, as in the per-row kernel.

typedef struct {
    float d[8];
    int16_t sc16[16][16]; // sub-block s: row r's scale in lanes 2r and 2r+1
    uint8_t q[64][32];    // step s: elements 4s..4s+3 of row r at bytes 4r..4r+3
} pk_q6;

static void pack_q6(const char *w, size_t w_row, int nrows, int nsb, pk_q6 *pk) {
    uint8_t lv[QK_K];
    for (int r = 0; r < 8; r++) {
        for (int i = 0; i < nsb; i++) {
            pk_q6 *p = &pk[i];
            const block_q6_K *b = r < nrows ? (const block_q6_K *)(w + (size_t)r * w_row) + i : NULL;
            if (b) gl_q6_K_levels(b, lv);
            else memset(lv, 0, sizeof lv);
            p->d[r] = b ? _cvtsh_ss(b->d) : 0.0f;
            for (int k = 0; k < 16; k++) {
                const int sc = b ? b->scales[k] : 0;
                p->sc16[k][2 * r] = p->sc16[k][2 * r + 1] = (int16_t)sc;
            }
            for (int st = 0; st < 64; st++) memcpy(&p->q[st][4 * r], lv + 4 * st, 4);
        }
    }
}

// Q6_K, bitwise the per-row kernel: lane s sums (level - 32) x y over elements 4s..4s+3 of every
// 32-element run times the run's scale for that 16-element half; lane sums x d*dy in 8 float
// lanes; hsum order; "+ 0.0f" as the per-row kernel adds its (zero) extra term.
INL void q6_pass(int nsb, const pk_q6 *pk, const block_q8_K *const *y, float *out, size_t bs, int nrows,
                 const int tp, const bool vnni) {
    const __m256i c32 = _mm256_set1_epi8(32);
    __m256 acc[2][8];
    for (int t = 0; t < tp; t++)
        for (int s = 0; s < 8; s++) acc[t][s] = _mm256_setzero_ps();
    for (int i = 0; i < nsb; i++) {
        const pk_q6 *p = &pk[i];
        __m256i isum[2][8];
        _Pragma("GCC unroll 2") for (int t = 0; t < tp; t++) UNROLL for (int s = 0; s < 8; s++) isum[t][s] = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) { // 32-element runs
            const __m256i sc_lo = _mm256_load_si256((const __m256i *)p->sc16[2 * c]);
            const __m256i sc_hi = _mm256_load_si256((const __m256i *)p->sc16[2 * c + 1]);
            UNROLL for (int s = 0; s < 8; s++) {
                const __m256i w = _mm256_load_si256((const __m256i *)p->q[8 * c + s]);
                _Pragma("GCC unroll 2") for (int t = 0; t < tp; t++) {
                    const __m256i yb = bcast4(y[t][i].qs + 4 * (8 * c + s));
                    const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(w, yb), _mm256_maddubs_epi16(c32, yb));
                    isum[t][s] = add_scaled(isum[t][s], p16, s < 4 ? sc_lo : sc_hi, vnni);
                }
            }
        }
        _Pragma("GCC unroll 2") for (int t = 0; t < tp; t++) {
            const __m256 d = _mm256_mul_ps(_mm256_load_ps(p->d), _mm256_set1_ps(y[t][i].d));
            UNROLL for (int s = 0; s < 8; s++) acc[t][s] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t][s]), d, acc[t][s]);
        }
    }
    for (int t = 0; t < tp; t++) store_rows(out + (size_t)t * bs, _mm256_add_ps(hsum_lanes(acc[t]), _mm256_setzero_ps()), nrows);
}

__attribute__((target("avx512vl,avx512vnni"))) static void q6_vnni(int nsb, const pk_q6 *pk, const block_q8_K *const *y,
                                                                    float *out, size_t bs, int nrows, int nt) {
    int t = 0;
    for (; t + 2 <= nt; t += 2) q6_pass(nsb, pk, y + t, out + (size_t)t * bs, bs, nrows, 2, true);
    if (t < nt) q6_pass(nsb, pk, y + t, out + (size_t)t * bs, bs, nrows, 1, true);
}

INL void tile_q6_kernel(int nsb, const pk_q6 *pk, const block_q8_K *const *y, float *out, size_t bs,
                        int nrows, const int nt, const bool vnni) {
    if (vnni) {
        q6_vnni(nsb, pk, y, out, bs, nrows, nt);
        return;
    }
    for (int t = 0; t < nt; t++) q6_pass(nsb, pk, y + t, out + (size_t)t * bs, bs, nrows, 1, false);
}

// Rows [0, n_rows) x tokens [0, n_tok): each group of eight rows is decoded once, then every
// token passes over it.
bool gl_tile8k_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                      const void *y, size_t by, const float *dy, const int32_t *ys, int n_tok, float *out,
                      size_t bs) {
    (void)dy, (void)ys; // Q8_K rows carry their own sums
    const int nsb = n / QK_K;
    const bool q6 = type == GL_TYPE_Q6_K, five = type == GL_TYPE_Q5_K, vnni = gl_use_vnni();
    void *pk = NULL;
    if (posix_memalign(&pk, 32, (q6 ? sizeof(pk_q6) : sizeof(pk_k4)) * (size_t)nsb) != 0) return false;
    for (int r0 = 0; r0 < n_rows; r0 += 8) {
        const int nrows = n_rows - r0 < 8 ? n_rows - r0 : 8;
        const char *wr = (const char *)w + (size_t)r0 * w_row;
        if (q6) pack_q6(wr, w_row, nrows, nsb, pk);
        else pack_k4(type, wr, w_row, nrows, nsb, pk);
        for (int t0 = 0; t0 < n_tok; t0 += 4) {
            const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
            const block_q8_K *yy[4];
            for (int j = 0; j < nt; j++) yy[j] = (const block_q8_K *)((const char *)y + (size_t)(t0 + j) * by);
            float *o = out + (size_t)t0 * bs + r0;
            if (q6) tile_q6_kernel(nsb, pk, yy, o, bs, nrows, nt, vnni);
            else tile_k4_kernel(nsb, pk, yy, o, bs, nrows, nt, five, vnni);
        }
    }
    free(pk);
    return true;
}
