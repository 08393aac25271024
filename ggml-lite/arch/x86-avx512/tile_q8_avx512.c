// Prompt tiles for Q4_0, Q5_0, Q8_0 and IQ4_NL against Q8_0 rows, on 512-bit registers with
// AVX512-VNNI.
//
// Sixteen weight rows are decoded once per work item into an interleaved buffer: per block the
// 16 rows' scales, then 8 steps of 64 bytes where step s holds elements 4s..4s+3 of each row
// side by side. One vpdpbusd of a step against a token's 4 activation bytes (broadcast to every
// lane) advances all 16 dot products; a block's 8 steps add up in integers, and each block costs
// one conversion and one FMA per token: acc += float(sum) * (d_w * d_y). (The AVX2 tiles sum
// in llama.cpp's order, a float lane per step; this sums as ggml's scalar code does.)
//  - Q4_0: levels unsigned 0..15, the offset comes off as 8 * sum(y), from the activation extras.
//  - Q5_0, Q8_0, IQ4_NL: levels signed; vpdpbusd takes the activations as y + 128 (unsigned, a
//    copy made once per call) and the weights signed, starting from -128 * sum(levels) of the
//    row's block, which leaves the exact signed sum.
#include <immintrin.h>
#include <stdlib.h>

#include "dot.h"
#include "kernels_avx512.h"
#include "quants.h"
#include "../x86-avx2/simd_avx2.h"

typedef struct {
    float d[16];
    int32_t c[16];    // signed kinds: -128 * the sum of the row's 32 levels
    uint8_t q[8][64]; // step s: elements 4s..4s+3 of rows 0..15
} pk16;

// Loops over a pass's tokens are unrolled so the accumulators live in registers.
#define FOR_T _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++)

enum {
    CHUNK = 32, // blocks per chunk: 32 * 640 bytes of weights stay in L1 while every token passes
    NT = 8      // tokens per pass: 8 integer and 8 float accumulators, each weight step loaded once
};

// Decodes 16 rows (nrows real ones, the rest zero) of nb blocks into pk.
static void pack16(enum gl_type t, const char *w, size_t w_row, int nrows, int nb, pk16 *pk, bool is_signed) {
    const size_t bsz = q8_family_block_size(t);
    const __m512i ones = _mm512_set1_epi8(1);
    for (int b = 0; b < nb; b++) {
        __m256i v[16], q[16];
        for (int r = 0; r < 16; r++) {
            const char *blk = w + (size_t)r * w_row + (size_t)b * bsz;
            // every type of the family starts its block with the F16 scale
            pk[b].d[r] = r < nrows ? _cvtsh_ss(*(const uint16_t *)blk) : 0.0f;
            v[r] = r < nrows ? gen_levels(t, blk) : _mm256_setzero_si256();
        }
        transpose8(v, q);
        transpose8(v + 8, q + 8);
        __m512i sum = _mm512_setzero_si512();
        for (int s = 0; s < 8; s++) {
            const __m512i qs = _mm512_inserti64x4(_mm512_castsi256_si512(q[s]), q[8 + s], 1);
            _mm512_store_si512((__m512i *)pk[b].q[s], qs);
            if (is_signed) sum = _mm512_dpbusd_epi32(sum, ones, qs);
        }
        _mm512_store_si512((__m512i *)pk[b].c, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)));
    }
}

// nt tokens x 16 rows over blocks [b0, b1). Token j's block b: its 32 bytes at y[j] + b * ybs
// (Q4_0: the Q8_0 levels; signed kinds: the y + 128 copy), its scale dy[j][b], its sum(q)
// ys[j][b]; st[j]: its 16 accumulators between chunks.
static inline __attribute__((always_inline)) void kernel16(int b0, int b1, const pk16 *pk, const uint8_t *const *y,
                                                           size_t ybs, const float *const *dy,
                                                           const int32_t *const *ys, float *const *st,
                                                           const int nt, const bool u4) {
    __m512 acc[NT];
    FOR_T acc[j] = _mm512_load_ps(st[j]);
    for (int b = b0; b < b1; b++) {
        __m512i is[NT];
        if (u4) {
            FOR_T is[j] = _mm512_set1_epi32(-8 * ys[j][b]);
        } else {
            const __m512i c = _mm512_load_si512((const __m512i *)pk[b].c);
            FOR_T is[j] = c;
        }
        _Pragma("GCC unroll 8") for (int s = 0; s < 8; s++) {
            const __m512i w = _mm512_load_si512((const __m512i *)pk[b].q[s]);
            FOR_T {
                int32_t y4;
                memcpy(&y4, y[j] + (size_t)b * ybs + 4 * s, 4);
                const __m512i yv = _mm512_set1_epi32(y4);
                is[j] = u4 ? _mm512_dpbusd_epi32(is[j], w, yv) : _mm512_dpbusd_epi32(is[j], yv, w);
            }
        }
        const __m512 dw = _mm512_load_ps(pk[b].d);
        FOR_T
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[j]), _mm512_mul_ps(dw, _mm512_set1_ps(dy[j][b])), acc[j]);
    }
    FOR_T _mm512_store_ps(st[j], acc[j]);
}

#define NT_CASES(U4)                                                           \
    switch (nt) {                                                              \
    case 8: kernel16(b0, b1, pk, yy, ybs, dd, ss, sp, 8, U4); break;           \
    case 7: kernel16(b0, b1, pk, yy, ybs, dd, ss, sp, 7, U4); break;           \
    case 6: kernel16(b0, b1, pk, yy, ybs, dd, ss, sp, 6, U4); break;           \
    case 5: kernel16(b0, b1, pk, yy, ybs, dd, ss, sp, 5, U4); break;           \
    case 4: kernel16(b0, b1, pk, yy, ybs, dd, ss, sp, 4, U4); break;           \
    case 3: kernel16(b0, b1, pk, yy, ybs, dd, ss, sp, 3, U4); break;           \
    case 2: kernel16(b0, b1, pk, yy, ybs, dd, ss, sp, 2, U4); break;           \
    default: kernel16(b0, b1, pk, yy, ybs, dd, ss, sp, 1, U4); break;          \
    }

// Blocks [b0, b1) of every token, NT at a time. Token t's bytes start at y0 + t * ty.
static void chunk16(int b0, int b1, int nb, const pk16 *pk, const uint8_t *y0, size_t ty, size_t ybs,
                    const float *dy, const int32_t *ys, int n_tok, float *st, bool u4) {
    for (int t0 = 0; t0 < n_tok; t0 += NT) {
        const int nt = n_tok - t0 < NT ? n_tok - t0 : NT;
        const uint8_t *yy[NT];
        const float *dd[NT];
        const int32_t *ss[NT];
        float *sp[NT];
        for (int j = 0; j < nt; j++) {
            yy[j] = y0 + (size_t)(t0 + j) * ty;
            dd[j] = dy + (size_t)(t0 + j) * nb;
            ss[j] = ys + (size_t)(t0 + j) * nb;
            sp[j] = st + (size_t)(t0 + j) * 16;
        }
        if (u4) NT_CASES(true)
        else NT_CASES(false)
    }
}

bool gl_tile16_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                      size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs) {
    const int nb = n / QK8_0;
    const bool u4 = type == GL_TYPE_Q4_0;
    // Scratch: the decoded weights, each token's accumulators, the signed kinds' y + 128 copy.
    const size_t pk_bytes = sizeof(pk16) * (size_t)nb, st_bytes = sizeof(float) * 16 * (size_t)n_tok;
    char *mem = NULL;
    if (posix_memalign((void **)&mem, 64, pk_bytes + st_bytes + (u4 ? 0 : (size_t)n * (size_t)n_tok)) != 0)
        return false;
    pk16 *pk = (pk16 *)mem;
    float *st = (float *)(mem + pk_bytes);
    uint8_t *yx = (uint8_t *)(mem + pk_bytes + st_bytes);
    const uint8_t *y0; // token 0's first block's levels
    size_t ty, ybs;
    if (u4) {
        y0 = (const uint8_t *)((const block_q8_0 *)y)->qs;
        ty = by;
        ybs = sizeof(block_q8_0);
    } else {
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        for (int t = 0; t < n_tok; t++) {
            const block_q8_0 *yb = (const block_q8_0 *)((const char *)y + (size_t)t * by);
            for (int b = 0; b < nb; b++)
                _mm256_storeu_si256((__m256i *)(yx + (size_t)t * n + 32 * b),
                                    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)yb[b].qs), flip));
        }
        y0 = yx;
        ty = (size_t)n;
        ybs = 32;
    }
    for (int r0 = 0; r0 < n_rows; r0 += 16) {
        const int nrows = n_rows - r0 < 16 ? n_rows - r0 : 16;
        pack16(type, (const char *)w + (size_t)r0 * w_row, w_row, nrows, nb, pk, !u4);
        memset(st, 0, st_bytes);
        for (int b0 = 0; b0 < nb; b0 += CHUNK) {
            const int b1 = nb - b0 < CHUNK ? nb : b0 + CHUNK;
            chunk16(b0, b1, nb, pk, y0, ty, ybs, dy, ys, n_tok, st, u4);
        }
        const __mmask16 m = (__mmask16)((1u << nrows) - 1);
        for (int t = 0; t < n_tok; t++) _mm512_mask_storeu_ps(out + (size_t)t * bs + r0, m, _mm512_load_ps(st + (size_t)t * 16));
    }
    free(mem);
    return true;
}
