// Prompt tiles for Q4_0, Q5_0, Q8_0 and IQ4_NL against Q8_0 rows (AVX2, optional AVX512-VNNI).
//
// Eight weight rows are decoded once per work item into an interleaved buffer: for each block,
// the 8 rows' scales as floats, then 8 steps of 32 bytes where step s holds elements 4s..4s+3 of
// each row side by side. One _mm256_maddubs_epi16 (or vpdpbusd) of a step against the 4
// activation bytes broadcast to every lane advances all 8 dot products at once, and the results
// come out as one vector of 8 outputs per token: no horizontal sums, no per-pair scale work.
//
// The float operations are those of the per-row batched kernels (dot_avx2.c), in their order, so
// the outputs are bitwise equal to them:
//  - Q4_0: per block the exact integer sum of (q - 8) * y, then acc = fma(sum, d_w * d_y, acc).
//    Levels are stored unsigned (0..15); the offset comes off in integers as 8 * sum(y).
//  - Q5_0, Q8_0, IQ4_NL: the per-row kernel keeps 8 float lanes, lane k collecting the integer
//    sums of elements 4k..4k+3 block after block, and adds the lanes up at the end as
//    ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)). Here a step's int32 vector (over the 8
//    rows) is exactly lane s, so each token keeps one float vector per step. Levels are signed
//    (Q5_0 as q - 16).
//
// The blocks are walked in chunks whose decoded weights stay in L1 while every token of the work
// item passes over them; the float accumulators wait in a small per-token state between chunks
// (the order of the additions is unchanged: each accumulator still takes its blocks in order).
#include "dot.h"

#include <stdlib.h>

#include "quants.h"
#include "kernels_avx2.h"
#include "simd_avx2.h"

typedef struct {
    float d[8];
    uint8_t q[256]; // [step 0..7][row 0..7][4 bytes]
    // Signed kinds only: with VNNI, per step and row -128 * the sum of the 4 levels (vpdpbusd
    // multiplies y + 128, unsigned, by the levels; starting from this leaves the exact signed
    // sum); without, |level| (maddubs' unsigned operand).
    union {
        int32_t c[64];
        uint8_t aq[256];
    } x;
} pk_block;

enum {
    CHUNK = 28,  // blocks per chunk of the signed kinds: 28 * 544 bytes, about half of L1 (Q4_0's
                 // 288-byte blocks measured fastest without chunks)
    U4_NT = 4,   // tokens per pass of the Q4_0 kernel
    // Tokens per pass of the signed kernel and steps per pass (NT * K float accumulators): AVX2
    // has 16 vector registers, the VNNI path (compiled for AVX512-VL) 32.
    S8_NT = 2, S8_K = 4,
    S8V_NT = 2, S8V_K = 8,
};

typedef enum { PK_U4, PK_S8 } pk_kind; // unsigned 4-bit (offset 8), signed 8-bit

// 32 nibbles: elements 0..15 from the low nibbles, 16..31 from the high ones.
INL __m256i nibbles(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

// Decodes block b of one row into 32 levels (Q4_0 unsigned 0..15, the others signed bytes).
INL __m256i decode_block(enum gl_type t, const char *row, int b, float *d) {
    switch (t) {
    case GL_TYPE_Q4_0: {
        const block_q4_0 *x = (const block_q4_0 *)row + b;
        *d = _cvtsh_ss(x->d);
        return nibbles(x->qs);
    }
    case GL_TYPE_Q5_0: {
        // q - 16: the nibble where the fifth bit is set, else the nibble - 16 (0xf0 | nibble).
        const block_q5_0 *x = (const block_q5_0 *)row + b;
        uint32_t h;
        memcpy(&h, x->qh, 4);
        const __m256i spread = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                                 0x0101010101010101ll, 0x0000000000000000ll);
        const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
        const __m256i hb = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), spread), bit);
        const __m256i hi = _mm256_andnot_si256(_mm256_cmpeq_epi8(hb, bit), _mm256_set1_epi8((char)0xf0));
        *d = _cvtsh_ss(x->d);
        return _mm256_or_si256(nibbles(x->qs), hi);
    }
    case GL_TYPE_Q8_0: {
        const block_q8_0 *x = (const block_q8_0 *)row + b;
        *d = _cvtsh_ss(x->d);
        return _mm256_loadu_si256((const __m256i *)x->qs);
    }
    default: { // IQ4_NL
        const block_iq4_nl *x = (const block_iq4_nl *)row + b;
        const __m128i lut = _mm_loadu_si128((const __m128i *)gl_iq4nl_values);
        *d = _cvtsh_ss(x->d);
        return _mm256_shuffle_epi8(_mm256_set_m128i(lut, lut), nibbles(x->qs));
    }
    }
}

// Decodes 8 rows (nrows real ones, the rest zero) into the interleaved blocks: per block an 8x8
// transpose of 4-byte groups, so step s holds group s of every row.
static void pack_group(enum gl_type t, const char *w, size_t w_row, int nrows, int nb, pk_block *pk,
                       pk_kind kind, bool vnni) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int b = 0; b < nb; b++) {
        __m256i v[8];
        for (int r = 0; r < 8; r++) {
            if (r < nrows) {
                v[r] = decode_block(t, w + (size_t)r * w_row, b, &pk[b].d[r]);
            } else {
                v[r] = _mm256_setzero_si256();
                pk[b].d[r] = 0;
            }
        }
        __m256i *q = (__m256i *)pk[b].q;
        transpose8(v, q);
        if (kind != PK_S8) continue;
        for (int s = 0; s < 8; s++) {
            if (vnni) {
                const __m256i sum4 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q[s]), ones16);
                _mm256_store_si256((__m256i *)(pk[b].x.c + 8 * s),
                                   _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sum4, 7)));
            } else {
                _mm256_store_si256((__m256i *)(pk[b].x.aq + 32 * s), _mm256_abs_epi8(q[s]));
            }
        }
    }
}

// Q4_0: nt tokens x 8 rows over blocks [b0, b1). y[j]: token j's blocks; dy, ys: its scales and
// integer block sums; st[j]: its accumulator between chunks.
INL void u4_kernel(int b0, int b1, const pk_block *pk, const block_q8_0 *const *y, const float *const *dy,
                   const int32_t *const *ys, float *const *st, const int nt, const bool vnni) {
    __m256 acc[U4_NT];
    FOR_J acc[j] = _mm256_load_ps(st[j]);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = b0; b < b1; b++) {
        __m256i s32[U4_NT];
        FOR_J s32[j] = _mm256_set1_epi32(-8 * ys[j][b]); // the offset: sum((q - 8) y) = sum(q y) - 8 sum(y)
        if (vnni) {
            UNROLL for (int s = 0; s < 8; s++) {
                const __m256i w = _mm256_load_si256((const __m256i *)(pk[b].q + 32 * s));
                FOR_J s32[j] = dpbusd(s32[j], w, bcast4(y[j][b].qs + 4 * s));
            }
        } else {
            // int16 sums of 8 steps of 4-bit levels stay below 2^15.
            __m256i s16[U4_NT];
            FOR_J s16[j] = _mm256_setzero_si256();
            UNROLL for (int s = 0; s < 8; s++) {
                const __m256i w = _mm256_load_si256((const __m256i *)(pk[b].q + 32 * s));
                FOR_J s16[j] = _mm256_add_epi16(s16[j], _mm256_maddubs_epi16(w, bcast4(y[j][b].qs + 4 * s)));
            }
            FOR_J s32[j] = _mm256_add_epi32(s32[j], _mm256_madd_epi16(s16[j], ones));
        }
        const __m256 dw = _mm256_load_ps(pk[b].d);
        FOR_J acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[j]), _mm256_mul_ps(dw, _mm256_set1_ps(dy[j][b])), acc[j]);
    }
    FOR_J _mm256_store_ps(st[j], acc[j]);
}

// The steps in the order of the final additions: adding neighbours pairwise, level after level,
// gives ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
static const int step_order[8] = {0, 4, 2, 6, 1, 5, 3, 7};

// Signed kinds: nt tokens x 8 rows over blocks [b0, b1), for the k steps step_order[p*k ..
// p*k+k-1] (pass p). Token j's block b starts at yq[j] + b * ybs (with VNNI a copy of y + 128);
// st[j] holds its 8 accumulators (one per step) between chunks.
INL void s8_kernel(int b0, int b1, const pk_block *pk, const int8_t *const *yq, const size_t ybs,
                   const float *const *dy, float *const *st, const int nt, const int k, const int p,
                   const bool vnni) {
    __m256 acc[4 * 8]; // up to 4 tokens x 8 steps
    FOR_J _Pragma("GCC unroll 8") for (int i = 0; i < k; i++) acc[j * k + i] = _mm256_load_ps(st[j] + 8 * step_order[p * k + i]);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = b0; b < b1; b++) {
        const __m256 dw = _mm256_load_ps(pk[b].d);
        __m256 dd[U4_NT];
        FOR_J dd[j] = _mm256_mul_ps(dw, _mm256_set1_ps(dy[j][b]));
        UNROLL for (int i = 0; i < k; i++) {
            const int s = step_order[p * k + i];
            const __m256i w = _mm256_load_si256((const __m256i *)(pk[b].q + 32 * s));
            __m256i isum[U4_NT];
            if (vnni) {
                __m256i c = _mm256_load_si256((const __m256i *)(pk[b].x.c + 8 * s));
                __asm__("" : "+v"(c)); // keep c in a register: each token copies it instead of loading it again
                FOR_J isum[j] = dpbusd(c, bcast4(yq[j] + (size_t)b * ybs + 4 * s), w);
            } else {
                const __m256i aw = _mm256_load_si256((const __m256i *)(pk[b].x.aq + 32 * s));
                FOR_J {
                    const __m256i yv = _mm256_sign_epi8(bcast4(yq[j] + (size_t)b * ybs + 4 * s), w);
                    isum[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, yv), ones);
                }
            }
            FOR_J acc[j * k + i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), dd[j], acc[j * k + i]);
        }
    }
    FOR_J _Pragma("GCC unroll 8") for (int i = 0; i < k; i++) _mm256_store_ps(st[j] + 8 * step_order[p * k + i], acc[j * k + i]);
}

INL void s8_chunk(int b0, int b1, const pk_block *pk, const int8_t *const *yq, const size_t ybs,
                  const float *const *dy, float *const *st, const int nt, const int k, const bool vnni) {
    UNROLL for (int p = 0; p < 8 / k; p++) s8_kernel(b0, b1, pk, yq, ybs, dy, st, nt, k, p, vnni);
}

// Blocks [b0, b1) of every token: Q4_0.
static void chunk_u4(int b0, int b1, int nb, const pk_block *pk, const void *y, size_t by, const float *dy,
                     const int32_t *ys, int n_tok, float *st, bool vnni) {
    for (int t0 = 0; t0 < n_tok; t0 += U4_NT) {
        const int nt = n_tok - t0 < U4_NT ? n_tok - t0 : U4_NT;
        const block_q8_0 *yy[U4_NT];
        const float *dd[U4_NT];
        const int32_t *ss[U4_NT];
        float *sp[U4_NT];
        for (int j = 0; j < U4_NT; j++) {
            const int t = t0 + (j < nt ? j : 0);
            yy[j] = (const block_q8_0 *)((const char *)y + (size_t)t * by);
            dd[j] = dy + (size_t)t * nb;
            ss[j] = ys + (size_t)t * nb;
            sp[j] = st + (size_t)t * 64;
        }
#define U4(nt_, vnni_) u4_kernel(b0, b1, pk, yy, dd, ss, sp, nt_, vnni_)
        if (vnni) {
            switch (nt) {
            case 4: U4(4, true); break;
            case 3: U4(3, true); break;
            case 2: U4(2, true); break;
            default: U4(1, true); break;
            }
        } else {
            switch (nt) {
            case 4: U4(4, false); break;
            case 3: U4(3, false); break;
            case 2: U4(2, false); break;
            default: U4(1, false); break;
            }
        }
#undef U4
    }
}

// Blocks [b0, b1) of every token: the signed kinds, NT tokens at a time. Token t's quants at
// yq + t * ty, block b at + b * ybs.
INL void chunk_s8(int b0, int b1, int nb, const pk_block *pk, const int8_t *yq, size_t ty, const size_t ybs,
                  const float *dy, int n_tok, float *st, const int NT, const int K, const bool vnni) {
    int t0 = 0;
    for (; t0 + NT <= n_tok; t0 += NT) {
        const int8_t *yy[U4_NT];
        const float *dd[U4_NT];
        float *sp[U4_NT];
        for (int j = 0; j < NT; j++) {
            yy[j] = yq + (size_t)(t0 + j) * ty;
            dd[j] = dy + (size_t)(t0 + j) * nb;
            sp[j] = st + (size_t)(t0 + j) * 64;
        }
        s8_chunk(b0, b1, pk, yy, ybs, dd, sp, NT, K, vnni);
    }
    for (; t0 < n_tok; t0++) {
        const int8_t *yy = yq + (size_t)t0 * ty;
        const float *dd = dy + (size_t)t0 * nb;
        float *sp = st + (size_t)t0 * 64;
        s8_chunk(b0, b1, pk, &yy, ybs, &dd, &sp, 1, K, vnni);
    }
}

// Without VNNI: on the Q8_0 blocks' qs.
static void chunk_s8_avx2(int b0, int b1, int nb, const pk_block *pk, const void *y, size_t by,
                          const float *dy, int n_tok, float *st) {
    chunk_s8(b0, b1, nb, pk, (const int8_t *)((const block_q8_0 *)y)->qs, by, sizeof(block_q8_0), dy, n_tok, st,
             S8_NT, S8_K, false);
}

// With VNNI: on the y + 128 copy (n bytes per token). Only runs on CPUs with AVX512-VNNI and -VL
// (gl_use_vnni), so it may use their 32 vector registers.
__attribute__((target("avx512vl,avx512vnni"))) static void chunk_s8_vnni(int b0, int b1, int nb, const pk_block *pk,
                                                                       const int8_t *yx, const float *dy,
                                                                       int n_tok, float *st) {
    chunk_s8(b0, b1, nb, pk, yx, (size_t)nb * 32, 32, dy, n_tok, st, S8V_NT, S8V_K, true);
}

// Rows [0, n_rows) of w (row stride w_row) x tokens [0, n_tok) of y (row stride by); out[t * bs + r].
// Returns false (nothing done) when scratch memory is unavailable.
bool gl_tile8_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                     const void *y, size_t by, const float *dy, const int32_t *ys,
                     int n_tok, float *out, size_t bs) {
    const int nb = n / QK8_0;
    const pk_kind kind = type == GL_TYPE_Q4_0 ? PK_U4 : PK_S8;
    const bool vnni = gl_use_vnni();
    const bool yplus = kind == PK_S8 && vnni; // the signed kinds with VNNI run on a copy of y + 128
    // Scratch: the decoded weights, each token's accumulators (8 vectors), the y + 128 copy.
    const size_t pk_bytes = sizeof(pk_block) * (size_t)nb, st_bytes = sizeof(float) * 64 * (size_t)n_tok;
    char *mem = NULL;
    if (posix_memalign((void **)&mem, 32, pk_bytes + st_bytes + (yplus ? (size_t)n * (size_t)n_tok : 0)) != 0)
        return false;
    pk_block *pk = (pk_block *)mem;
    float *st = (float *)(mem + pk_bytes);
    int8_t *yx = (int8_t *)(mem + pk_bytes + st_bytes);
    if (yplus) {
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        for (int t = 0; t < n_tok; t++) {
            const block_q8_0 *yb = (const block_q8_0 *)((const char *)y + (size_t)t * by);
            for (int b = 0; b < nb; b++)
                _mm256_store_si256((__m256i *)(yx + (size_t)t * n + 32 * b),
                                   _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)yb[b].qs), flip));
        }
    }
    for (int r0 = 0; r0 < n_rows; r0 += 8) {
        const int nrows = n_rows - r0 < 8 ? n_rows - r0 : 8;
        pack_group(type, (const char *)w + (size_t)r0 * w_row, w_row, nrows, nb, pk, kind, vnni);
        memset(st, 0, st_bytes);
        const int chunk = kind == PK_U4 ? nb : CHUNK;
        for (int b0 = 0; b0 < nb; b0 += chunk) {
            const int b1 = nb - b0 < chunk ? nb : b0 + chunk;
            if (kind == PK_U4) chunk_u4(b0, b1, nb, pk, y, by, dy, ys, n_tok, st, vnni);
            else if (yplus) chunk_s8_vnni(b0, b1, nb, pk, yx, dy, n_tok, st);
            else chunk_s8_avx2(b0, b1, nb, pk, y, by, dy, n_tok, st);
        }
        for (int t = 0; t < n_tok; t++) {
            const float *a = st + (size_t)t * 64;
            __m256 v;
            if (kind == PK_U4) {
                v = _mm256_load_ps(a);
            } else {
                __m256 l[8];
                for (int i = 0; i < 8; i++) l[i] = _mm256_load_ps(a + 8 * step_order[i]);
                for (int w2 = 8; w2 > 1; w2 /= 2)
                    for (int i = 0; i < w2 / 2; i++) l[i] = _mm256_add_ps(l[2 * i], l[2 * i + 1]);
                v = l[0];
            }
            store_rows(out + (size_t)t * bs + r0, v, nrows);
        }
    }
    free(mem);
    return true;
}
