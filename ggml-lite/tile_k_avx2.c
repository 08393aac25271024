// Prompt tiles for the K-quants against Q8_K rows (Q4_K, Q5_K, Q6_K): eight weight rows are
// decoded once per work item into an interleaved buffer (see tile_q8_avx2.c for the idea) that
// every token of the block then reuses.
#include "dot.h"

#if defined(GL_HAVE_AVX2_KERNELS)

#include <stdlib.h>

#include "quants.h"
#include "simd_avx2.h"

// ---- Q4_K / Q5_K tiles against Q8_K ------------------------------------------------------------------
// Same interleave per super-block of 256: 64 steps of 8 rows x 4 levels (0..15 or 0..31), the
// rows' 32-element sub-block scales (int16 pairs for madd, int32 for the VNNI path), their mins
// (int16 pairs, two sub-blocks per pair, against Q8_K's sub-block sums) and d / dmin as floats.

typedef struct {
    float d[8], dmin[8];
    int16_t sc16[8][16]; // sub-block s: row r's scale in lanes 2r and 2r+1
    int32_t sc32[8][8];  // sub-block s: row r's scale
    int16_t mn[4][16];   // pair p: row r's (min[2p], min[2p+1]) in lanes 2r, 2r+1
    uint8_t q[64][32];   // step s: elements 4s..4s+3 of row r at bytes 4r..4r+3
} pk_k4;

bool gl_tile8k_supported(enum gl_type t) { return t == GL_TYPE_Q4_K || t == GL_TYPE_Q5_K || t == GL_TYPE_Q6_K; }

static bool tile8_q6_matmul(int n, const void *w, size_t w_row, int n_rows, const void *y, size_t by,
                            int n_tok, float *out, size_t bs);

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
                p->sc32[k][r] = sc[k];
            }
            for (int k = 0; k < 4; k++) {
                p->mn[k][2 * r] = m[2 * k];
                p->mn[k][2 * r + 1] = m[2 * k + 1];
            }
            for (int st = 0; st < 64; st++) memcpy(&p->q[st][4 * r], lv + 4 * st, 4);
        }
    }
}

INL void tile_k4_kernel(int nsb, const pk_k4 *pk, const block_q8_K *const *y, float *out, size_t bs,
                        int nrows, const int nt, const bool five, const bool vnni) {
    __m256 acc[4];
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < nsb; i++) {
        const pk_k4 *p = &pk[i];
        __m256i isum[4];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int k = 0; k < 8; k++) { // 32-element sub-blocks
            if (vnni) {
                __m256i s32[4];
                FOR_J s32[j] = _mm256_setzero_si256();
                UNROLL for (int st = 8 * k; st < 8 * k + 8; st++) {
                    const __m256i w = _mm256_load_si256((const __m256i *)p->q[st]);
                    FOR_J s32[j] = dpbusd(s32[j], w, bcast4(y[j][i].qs + 4 * st));
                }
                const __m256i scv = _mm256_load_si256((const __m256i *)p->sc32[k]);
                FOR_J isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(s32[j], scv));
            } else {
                // int16 sums stay below 2^15: 8 steps of 4-bit levels, 4 of 5-bit ones.
                const int flush = five ? 4 : 8;
                const __m256i scv = _mm256_load_si256((const __m256i *)p->sc16[k]);
                UNROLL for (int s0 = 8 * k; s0 < 8 * k + 8; s0 += flush) {
                    __m256i s16[4];
                    FOR_J s16[j] = _mm256_setzero_si256();
                    UNROLL for (int st = s0; st < s0 + flush; st++) {
                        const __m256i w = _mm256_load_si256((const __m256i *)p->q[st]);
                        FOR_J s16[j] = _mm256_add_epi16(s16[j], _mm256_maddubs_epi16(w, bcast4(y[j][i].qs + 4 * st)));
                    }
                    FOR_J isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16[j], scv));
                }
            }
        }
        const __m256 d = _mm256_load_ps(p->d), dmin = _mm256_load_ps(p->dmin);
        FOR_J {
            // mins x the token's 32-element sums, two sub-blocks per madd
            const int16_t *bsum = y[j][i].bsums;
            __m256i msum = _mm256_setzero_si256();
            UNROLL for (int k = 0; k < 4; k++) {
                const int a = bsum[4 * k] + bsum[4 * k + 1], b = bsum[4 * k + 2] + bsum[4 * k + 3];
                const __m256i pair = _mm256_set1_epi32((int)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16));
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)p->mn[k]), pair));
            }
            const __m256 dy = _mm256_set1_ps(y[j][i].d);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, dy), acc[j]);
            acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmin, dy), acc[j]);
        }
    }
    FOR_J {
        if (nrows == 8) {
            _mm256_storeu_ps(out + (size_t)j * bs, acc[j]);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[j]);
            memcpy(out + (size_t)j * bs, tmp, sizeof(float) * nrows);
        }
    }
}

#define DISPATCH_K4_NT(five, vnni)                                                           \
    switch (nt) {                                                                            \
    case 4: tile_k4_kernel(nsb, pk, yy, o, bs, nrows, 4, five, vnni); break;                 \
    case 3: tile_k4_kernel(nsb, pk, yy, o, bs, nrows, 3, five, vnni); break;                 \
    case 2: tile_k4_kernel(nsb, pk, yy, o, bs, nrows, 2, five, vnni); break;                 \
    default: tile_k4_kernel(nsb, pk, yy, o, bs, nrows, 1, five, vnni); break;                \
    }

bool gl_tile8k_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                      const void *y, size_t by, int n_tok, float *out, size_t bs) {
    if (type == GL_TYPE_Q6_K) return tile8_q6_matmul(n, w, w_row, n_rows, y, by, n_tok, out, bs);
    const int nsb = n / QK_K;
    const bool five = type == GL_TYPE_Q5_K, vnni = gl_use_vnni();
    pk_k4 *pk = NULL;
    if (posix_memalign((void **)&pk, 32, sizeof(pk_k4) * (size_t)nsb) != 0) return false;
    for (int r0 = 0; r0 < n_rows; r0 += 8) {
        const int nrows = n_rows - r0 < 8 ? n_rows - r0 : 8;
        pack_k4(type, (const char *)w + (size_t)r0 * w_row, w_row, nrows, nsb, pk);
        for (int t0 = 0; t0 < n_tok; t0 += 4) {
            const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
            const block_q8_K *yy[4];
            for (int j = 0; j < 4; j++)
                yy[j] = (const block_q8_K *)((const char *)y + (size_t)(t0 + (j < nt ? j : 0)) * by);
            float *o = out + (size_t)t0 * bs + r0;
            if (five) {
                if (vnni) DISPATCH_K4_NT(true, true) else DISPATCH_K4_NT(true, false)
            } else {
                if (vnni) DISPATCH_K4_NT(false, true) else DISPATCH_K4_NT(false, false)
            }
        }
    }
    free(pk);
    return true;
}

// ---- Q6_K tiles against Q8_K ---------------------------------------------------------------------------
// Levels 0..63 (value + 32), int8 scales per 16 elements (4 steps); the offset comes back as
// -32 * sum(scale * Q8_K bsum), two sub-blocks per madd.

typedef struct {
    float d[8];
    int16_t sc16[16][16]; // sub-block s: row r's scale in lanes 2r and 2r+1
    int32_t sc32[16][8];  // sub-block s: row r's scale
    int16_t scp[8][16];   // pair p: row r's (scale[2p], scale[2p+1]) in lanes 2r, 2r+1
    uint8_t q[64][32];    // step s: elements 4s..4s+3 of row r at bytes 4r..4r+3
} pk_q6;

static void pack_q6(const char *w, size_t w_row, int nrows, int nsb, pk_q6 *pk) {
    uint8_t lv[QK_K];
    for (int r = 0; r < 8; r++) {
        for (int i = 0; i < nsb; i++) {
            pk_q6 *p = &pk[i];
            const block_q6_K *b = r < nrows ? (const block_q6_K *)(w + (size_t)r * w_row) + i : NULL;
            if (b) {
                for (int h = 0; h < 2; h++) {
                    const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
                    uint8_t *o = lv + 128 * h;
                    for (int l = 0; l < 32; l++) {
                        o[l] = (uint8_t)((ql[l] & 0xf) | (qh[l] & 3) << 4);
                        o[l + 32] = (uint8_t)((ql[l + 32] & 0xf) | (qh[l] >> 2 & 3) << 4);
                        o[l + 64] = (uint8_t)((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4);
                        o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4);
                    }
                }
            } else {
                memset(lv, 0, sizeof lv);
            }
            p->d[r] = b ? _cvtsh_ss(b->d) : 0.0f;
            for (int k = 0; k < 16; k++) {
                const int sc = b ? b->scales[k] : 0;
                p->sc16[k][2 * r] = p->sc16[k][2 * r + 1] = (int16_t)sc;
                p->sc32[k][r] = sc;
                p->scp[k / 2][2 * r + (k & 1)] = (int16_t)sc;
            }
            for (int st = 0; st < 64; st++) memcpy(&p->q[st][4 * r], lv + 4 * st, 4);
        }
    }
}

INL void tile_q6_kernel(int nsb, const pk_q6 *pk, const block_q8_K *const *y, float *out, size_t bs,
                        int nrows, const int nt, const bool vnni) {
    __m256 acc[4];
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < nsb; i++) {
        const pk_q6 *p = &pk[i];
        __m256i isum[4];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int k = 0; k < 16; k++) { // 16-element sub-blocks
            if (vnni) {
                __m256i s32[4];
                FOR_J s32[j] = _mm256_setzero_si256();
                UNROLL for (int st = 4 * k; st < 4 * k + 4; st++) {
                    const __m256i w = _mm256_load_si256((const __m256i *)p->q[st]);
                    FOR_J s32[j] = dpbusd(s32[j], w, bcast4(y[j][i].qs + 4 * st));
                }
                const __m256i scv = _mm256_load_si256((const __m256i *)p->sc32[k]);
                FOR_J isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(s32[j], scv));
            } else {
                // int16 sums of two steps of 6-bit levels stay below 2^15.
                const __m256i scv = _mm256_load_si256((const __m256i *)p->sc16[k]);
                UNROLL for (int s0 = 4 * k; s0 < 4 * k + 4; s0 += 2) {
                    const __m256i w0 = _mm256_load_si256((const __m256i *)p->q[s0]);
                    const __m256i w1 = _mm256_load_si256((const __m256i *)p->q[s0 + 1]);
                    FOR_J {
                        const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast4(y[j][i].qs + 4 * s0)),
                                                             _mm256_maddubs_epi16(w1, bcast4(y[j][i].qs + 4 * s0 + 4)));
                        isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16, scv));
                    }
                }
            }
        }
        const __m256 d = _mm256_load_ps(p->d);
        FOR_J {
            // the +32 offset of the levels: 32 * sum(scale * bsum), two sub-blocks per madd
            const int16_t *bsum = y[j][i].bsums;
            __m256i off = _mm256_setzero_si256();
            UNROLL for (int k = 0; k < 8; k++) {
                const __m256i pair = _mm256_set1_epi32((int)((uint32_t)(uint16_t)bsum[2 * k] | (uint32_t)(uint16_t)bsum[2 * k + 1] << 16));
                off = _mm256_add_epi32(off, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)p->scp[k]), pair));
            }
            const __m256i t = _mm256_sub_epi32(isum[j], _mm256_slli_epi32(off, 5));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(d, _mm256_set1_ps(y[j][i].d)), acc[j]);
        }
    }
    FOR_J {
        if (nrows == 8) {
            _mm256_storeu_ps(out + (size_t)j * bs, acc[j]);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[j]);
            memcpy(out + (size_t)j * bs, tmp, sizeof(float) * nrows);
        }
    }
}

#define DISPATCH_Q6_NT(vnni)                                                                 \
    switch (nt) {                                                                            \
    case 4: tile_q6_kernel(nsb, pk, yy, o, bs, nrows, 4, vnni); break;                       \
    case 3: tile_q6_kernel(nsb, pk, yy, o, bs, nrows, 3, vnni); break;                       \
    case 2: tile_q6_kernel(nsb, pk, yy, o, bs, nrows, 2, vnni); break;                       \
    default: tile_q6_kernel(nsb, pk, yy, o, bs, nrows, 1, vnni); break;                      \
    }

static bool tile8_q6_matmul(int n, const void *w, size_t w_row, int n_rows, const void *y, size_t by,
                            int n_tok, float *out, size_t bs) {
    const int nsb = n / QK_K;
    const bool vnni = gl_use_vnni();
    pk_q6 *pk = NULL;
    if (posix_memalign((void **)&pk, 32, sizeof(pk_q6) * (size_t)nsb) != 0) return false;
    for (int r0 = 0; r0 < n_rows; r0 += 8) {
        const int nrows = n_rows - r0 < 8 ? n_rows - r0 : 8;
        pack_q6((const char *)w + (size_t)r0 * w_row, w_row, nrows, nsb, pk);
        for (int t0 = 0; t0 < n_tok; t0 += 4) {
            const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
            const block_q8_K *yy[4];
            for (int j = 0; j < 4; j++)
                yy[j] = (const block_q8_K *)((const char *)y + (size_t)(t0 + (j < nt ? j : 0)) * by);
            float *o = out + (size_t)t0 * bs + r0;
            if (vnni) DISPATCH_Q6_NT(true) else DISPATCH_Q6_NT(false)
        }
    }
    free(pk);
    return true;
}

#endif
