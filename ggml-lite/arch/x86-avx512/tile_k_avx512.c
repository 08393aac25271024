// Prompt tiles for Q4_K, Q5_K, Q6_K and IQ4_XS against Q8_K rows, on 512-bit registers with
// AVX512-VNNI (the idea of tile_q8_avx512.c, per super-block of 256).
//
// Sixteen weight rows are decoded once per work item: per super-block 64 steps of 64 bytes
// (step s: elements 4s..4s+3 of the 16 rows), and per sub-block each row's integer scale. For a
// token, a sub-block's steps add up in integers (vpdpbusd, levels unsigned against the signed
// activations), are multiplied by the sub-block scales (vpmulld) and summed over the
// super-block; then one conversion and one FMA: acc += float(sum) * (d_w * d_y).
//  - Q4_K, Q5_K: 8 sub-blocks of 32; the mins come off as dmin * dy * sum(min_j * ysum_j), the
//    32-element sums of the activation (from Q8_K's bsums) against the mins (vpdpwssd on pairs).
//  - Q6_K: 16 sub-blocks of 16, levels 0..63; the -32 offset starts each sub-block's sum at
//    -32 * its activation sum.
//  - IQ4_XS: 8 sub-blocks of 32, signed levels from the non-linear table: vpdpbusd takes the
//    activations as y + 128 (a copy made once per call), starting from -128 * sum(levels).
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "dot.h"
#include "kernels_avx512.h"
#include "quants.h"
#include "../x86-avx2/simd_avx2.h" // transpose8

typedef struct {
    float d[16], dmin[16];
    int32_t sc[16][16]; // sub-block k: each row's scale (8 sub-blocks of 32, or Q6_K's 16 of 16)
    int32_t c[8][16];   // IQ4_XS: -128 * the sum of each row's sub-block levels
    int32_t mn[4][16];  // Q4_K, Q5_K: pair p: each row's (min[2p], min[2p+1]) as two int16
    uint8_t q[64][64];  // step s: elements 4s..4s+3 of rows 0..15
} pk16k;

enum { KIND_MINS, KIND_Q6, KIND_IQ4 };

enum {
    CHUNK = 4, // super-blocks per chunk: 4 * 6 KiB of weights stay in L1 while every token passes
    NT = 4     // tokens per pass
};

#define INL static inline __attribute__((always_inline))
#define FOR_T _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)

// Super-block i of one row: its 256 levels, sub-block scales and mins, d and dmin.
static void decode_row(enum gl_type t, const char *row, int i, uint8_t lv[QK_K], int32_t sc[16], int32_t m[8],
                       float *d, float *dmin) {
    uint8_t s8[8], m8[8];
    switch (t) {
    case GL_TYPE_Q4_K: {
        const block_q4_K *b = (const block_q4_K *)row + i;
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                lv[64 * c + l] = b->qs[32 * c + l] & 0xf;
                lv[64 * c + 32 + l] = b->qs[32 * c + l] >> 4;
            }
        gl_unpack_scales_k4(b->scales, s8, m8);
        *d = _cvtsh_ss(b->d), *dmin = _cvtsh_ss(b->dmin);
        for (int k = 0; k < 8; k++) sc[k] = s8[k], m[k] = m8[k];
        break;
    }
    case GL_TYPE_Q5_K: {
        const block_q5_K *b = (const block_q5_K *)row + i;
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                lv[64 * c + l] = (uint8_t)((b->qs[32 * c + l] & 0xf) | (b->qh[l] >> (2 * c) & 1) << 4);
                lv[64 * c + 32 + l] = (uint8_t)((b->qs[32 * c + l] >> 4) | (b->qh[l] >> (2 * c + 1) & 1) << 4);
            }
        gl_unpack_scales_k4(b->scales, s8, m8);
        *d = _cvtsh_ss(b->d), *dmin = _cvtsh_ss(b->dmin);
        for (int k = 0; k < 8; k++) sc[k] = s8[k], m[k] = m8[k];
        break;
    }
    case GL_TYPE_Q6_K: {
        const block_q6_K *b = (const block_q6_K *)row + i;
        gl_q6_K_levels(b, lv);
        for (int k = 0; k < 16; k++) sc[k] = b->scales[k];
        *d = _cvtsh_ss(b->d), *dmin = 0;
        break;
    }
    default: { // IQ4_XS: signed levels
        const block_iq4_xs *b = (const block_iq4_xs *)row + i;
        for (int ib = 0; ib < 8; ib++) {
            for (int l = 0; l < 16; l++) {
                lv[32 * ib + l] = (uint8_t)gl_iq4nl_values[b->qs[16 * ib + l] & 0xf];
                lv[32 * ib + 16 + l] = (uint8_t)gl_iq4nl_values[b->qs[16 * ib + l] >> 4];
            }
            sc[ib] = gl_iq4_xs_scale(b, ib);
        }
        *d = _cvtsh_ss(b->d), *dmin = 0;
        break;
    }
    }
}

// Decodes 16 rows (nrows real ones, the rest zero) of nsb super-blocks into pk.
static void pack16k(enum gl_type t, const char *w, size_t w_row, int nrows, int nsb, pk16k *pk) {
    _Alignas(32) uint8_t lv[16][QK_K];
    int32_t sc[16], m[8];
    const __m512i ones = _mm512_set1_epi8(1);
    for (int i = 0; i < nsb; i++) {
        pk16k *p = &pk[i];
        for (int r = 0; r < 16; r++) {
            float d = 0, dmin = 0;
            memset(sc, 0, sizeof sc);
            memset(m, 0, sizeof m);
            if (r < nrows) decode_row(t, w + (size_t)r * w_row, i, lv[r], sc, m, &d, &dmin);
            else memset(lv[r], 0, QK_K);
            p->d[r] = d, p->dmin[r] = dmin;
            for (int k = 0; k < 16; k++) p->sc[k][r] = sc[k];
            for (int q = 0; q < 4; q++) p->mn[q][r] = (int32_t)((uint32_t)(uint16_t)m[2 * q] | (uint32_t)m[2 * q + 1] << 16);
        }
        for (int c = 0; c < 8; c++) { // 32-element runs: 8 steps each
            __m256i v[16], q[16];
            for (int r = 0; r < 16; r++) v[r] = _mm256_load_si256((const __m256i *)(lv[r] + 32 * c));
            transpose8(v, q);
            transpose8(v + 8, q + 8);
            __m512i sum = _mm512_setzero_si512();
            for (int s = 0; s < 8; s++) {
                const __m512i qs = _mm512_inserti64x4(_mm512_castsi256_si512(q[s]), q[8 + s], 1);
                _mm512_store_si512((__m512i *)p->q[8 * c + s], qs);
                if (t == GL_TYPE_IQ4_XS) sum = _mm512_dpbusd_epi32(sum, ones, qs);
            }
            _mm512_store_si512((__m512i *)p->c[c], _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)));
        }
    }
}

// nt tokens x 16 rows over super-blocks [i0, i1). Token j: yk[j] its Q8_K blocks (scales,
// bsums), yq[j] + i * ybs the levels of its block i (IQ4_XS: the y + 128 copy), st[j] its 16
// accumulators between chunks.
INL void kernel16k(int i0, int i1, const pk16k *pk, const block_q8_K *const *yk, const uint8_t *const *yq,
                   size_t ybs, float *const *st, const int nt, const int kind) {
    const int nsub = kind == KIND_Q6 ? 16 : 8, steps = 64 / nsub;
    __m512 acc[NT];
    FOR_T acc[j] = _mm512_load_ps(st[j]);
    for (int i = i0; i < i1; i++) {
        const pk16k *p = &pk[i];
        __m512i tot[NT];
        FOR_T tot[j] = _mm512_setzero_si512();
        _Pragma("GCC unroll 16") for (int k = 0; k < nsub; k++) {
            __m512i is[NT];
            if (kind == KIND_Q6) {
                FOR_T is[j] = _mm512_set1_epi32(-32 * yk[j][i].bsums[k]);
            } else if (kind == KIND_IQ4) {
                const __m512i c = _mm512_load_si512((const __m512i *)p->c[k]);
                FOR_T is[j] = c;
            } else {
                FOR_T is[j] = _mm512_setzero_si512();
            }
            _Pragma("GCC unroll 8") for (int s = steps * k; s < steps * (k + 1); s++) {
                const __m512i w = _mm512_load_si512((const __m512i *)p->q[s]);
                FOR_T {
                    int32_t y4;
                    memcpy(&y4, yq[j] + (size_t)i * ybs + 4 * s, 4);
                    const __m512i yv = _mm512_set1_epi32(y4);
                    is[j] = kind == KIND_IQ4 ? _mm512_dpbusd_epi32(is[j], yv, w) : _mm512_dpbusd_epi32(is[j], w, yv);
                }
            }
            const __m512i sc = _mm512_load_si512((const __m512i *)p->sc[k]);
            FOR_T tot[j] = _mm512_add_epi32(tot[j], _mm512_mullo_epi32(is[j], sc));
        }
        const __m512 dw = _mm512_load_ps(p->d);
        FOR_T acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[j]), _mm512_mul_ps(dw, _mm512_set1_ps(yk[j][i].d)), acc[j]);
        if (kind == KIND_MINS) {
            const __m512 dm = _mm512_load_ps(p->dmin);
            FOR_T {
                const int16_t *bs = yk[j][i].bsums;
                __m512i ms = _mm512_setzero_si512();
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
                    const int a = bs[4 * q] + bs[4 * q + 1], b = bs[4 * q + 2] + bs[4 * q + 3];
                    const __m512i pair = _mm512_set1_epi32((int)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16));
                    ms = _mm512_dpwssd_epi32(ms, _mm512_load_si512((const __m512i *)p->mn[q]), pair);
                }
                acc[j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(dm, _mm512_set1_ps(yk[j][i].d)), acc[j]);
            }
        }
    }
    FOR_T _mm512_store_ps(st[j], acc[j]);
}

#define NT_CASES(KIND)                                                        \
    switch (nt) {                                                             \
    case 4: kernel16k(i0, i1, pk, yk, yq, ybs, sp, 4, KIND); break;           \
    case 3: kernel16k(i0, i1, pk, yk, yq, ybs, sp, 3, KIND); break;           \
    case 2: kernel16k(i0, i1, pk, yk, yq, ybs, sp, 2, KIND); break;           \
    default: kernel16k(i0, i1, pk, yk, yq, ybs, sp, 1, KIND); break;          \
    }

// Super-blocks [i0, i1) of every token, NT at a time.
static void chunk16k(int i0, int i1, const pk16k *pk, const char *y, size_t by, const uint8_t *q0, size_t tq,
                     size_t ybs, int n_tok, float *st, int kind) {
    for (int t0 = 0; t0 < n_tok; t0 += NT) {
        const int nt = n_tok - t0 < NT ? n_tok - t0 : NT;
        const block_q8_K *yk[NT];
        const uint8_t *yq[NT];
        float *sp[NT];
        for (int j = 0; j < nt; j++) {
            yk[j] = (const block_q8_K *)(y + (size_t)(t0 + j) * by);
            yq[j] = q0 + (size_t)(t0 + j) * tq;
            sp[j] = st + (size_t)(t0 + j) * 16;
        }
        if (kind == KIND_MINS) NT_CASES(KIND_MINS)
        else if (kind == KIND_Q6) NT_CASES(KIND_Q6)
        else NT_CASES(KIND_IQ4)
    }
}

bool gl_tile16k_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                       size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs) {
    (void)dy, (void)ys; // Q8_K rows carry their own scales and sums
    const int nsb = n / QK_K;
    const int kind = type == GL_TYPE_Q6_K ? KIND_Q6 : type == GL_TYPE_IQ4_XS ? KIND_IQ4 : KIND_MINS;
    const bool plus = kind == KIND_IQ4;
    // Scratch: the decoded weights, each token's accumulators, IQ4_XS's y + 128 copy.
    const size_t pk_bytes = sizeof(pk16k) * (size_t)nsb, st_bytes = sizeof(float) * 16 * (size_t)n_tok;
    char *mem = NULL;
    if (posix_memalign((void **)&mem, 64, pk_bytes + st_bytes + (plus ? (size_t)n * (size_t)n_tok : 0)) != 0)
        return false;
    pk16k *pk = (pk16k *)mem;
    float *st = (float *)(mem + pk_bytes);
    uint8_t *yx = (uint8_t *)(mem + pk_bytes + st_bytes);
    const uint8_t *q0; // token 0's first levels
    size_t tq, ybs;
    if (plus) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        for (int t = 0; t < n_tok; t++) {
            const block_q8_K *yb = (const block_q8_K *)((const char *)y + (size_t)t * by);
            for (int i = 0; i < nsb; i++)
                for (int h = 0; h < 4; h++)
                    _mm512_storeu_si512((__m512i *)(yx + (size_t)t * n + QK_K * i + 64 * h),
                                        _mm512_xor_si512(_mm512_loadu_si512((const __m512i *)(yb[i].qs + 64 * h)), flip));
        }
        q0 = yx, tq = (size_t)n, ybs = QK_K;
    } else {
        q0 = (const uint8_t *)((const block_q8_K *)y)->qs, tq = by, ybs = sizeof(block_q8_K);
    }
    for (int r0 = 0; r0 < n_rows; r0 += 16) {
        const int nrows = n_rows - r0 < 16 ? n_rows - r0 : 16;
        pack16k(type, (const char *)w + (size_t)r0 * w_row, w_row, nrows, nsb, pk);
        memset(st, 0, st_bytes);
        for (int i0 = 0; i0 < nsb; i0 += CHUNK) {
            const int i1 = nsb - i0 < CHUNK ? nsb : i0 + CHUNK;
            chunk16k(i0, i1, pk, (const char *)y, by, q0, tq, ybs, n_tok, st, kind);
        }
        const __mmask16 m = (__mmask16)((1u << nrows) - 1);
        for (int t = 0; t < n_tok; t++) _mm512_mask_storeu_ps(out + (size_t)t * bs + r0, m, _mm512_load_ps(st + (size_t)t * 16));
    }
    free(mem);
    return true;
}
