// Q4_K and Q6_K weights repacked at load into groups of 16 interleaved rows, and the one kernel
// that reads them for generation, speculative verification and prompts (gl_repack_kernels).
//
// Per super-block of 256 elements a group holds, for 16 rows side by side, the 4-bit levels as
// 64-byte vectors whose byte 4r+e is row r's element e of a 4-element step (low nibble) and of
// the step 16 elements further (high nibble), then the sub-block scales (and Q4_K's mins) by
// row, and the 16 rows' fp16 super-block scales. One vpdpbusd of a step against a
// token's 4 activation bytes (broadcast) advances 16 dot products. A sub-block's steps add up in
// integers, are scaled by its per-row scales (vpmulld) and summed over the super-block; then
// one conversion and one FMA per super-block and token: acc += float(sum) * (d_w * d_y), and
// for Q4_K acc -= float(sum(min * ysum)) * (dmin_w * d_y). The float steps are the same for any
// number of tokens, so every token gets bitwise its one-token result.
//  - Q4_K: 8 sub-blocks of 32: vector h of sub-block k: elements 32k+4h+e and 32k+16+4h+e.
//    2304 bytes per group and super-block (16 rows of 144: the 6-bit scales and mins rearranged).
//  - Q6_K: run c of 32 elements = sub-blocks 2c (low nibbles) and 2c+1 (high nibbles); the top
//    two bits of each level in two more vectors per run; levels 0..63, the -32 offset starts
//    each sub-block's sum at -32 * its activation sum. 3392 bytes (16 rows of 210, padded).
// Activations: Q8_K rows (the plain types' vec_dot_type).
#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "dot.h"
#include "kernels_avx512.h"
#include "repack_avx512.h"
#include "../x86-avx2/repack_layout_x86.h" // the layouts and their packing

#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 4096
#endif
enum {
    CHUNK = 4, // super-blocks per pass over the tokens: their weights stay in L1
    NT = 4     // tokens per pass
};

#define FOR_T _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)

// ---- the kernel ----------------------------------------------------------------------------

// A token's 32-element sums (sub-blocks k = 0..7 of a super-block, from Q8_K's 16-element
// bsums) as int16 pairs: word q = sum_{2q} | sum_{2q+1} << 16, for vpdpwssd against the mins.
INL void ysum_pairs(const int16_t *bsums, int32_t pairs[8]) {
    const __m256i s = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bsums), _mm256_set1_epi16(1));
    // per 128-bit half: (s0 s1 s2 s3 s0 s1 s2 s3), (s4 .. s7 s4 .. s7): words 0, 1, 4, 5 are the pairs
    _mm256_storeu_si256((__m256i *)pairs, _mm256_packs_epi32(s, s));
}

// nt tokens x one group over super-blocks [i0, i1): acc[j] (16 rows) of token j, y[j] its row.
// A sub-block's two nibble halves go into one integer sum per token (the same scale).
INL void q4k_sb(const rq4k *w, int i0, int i1, const block_q8_K *const *y, __m512 *acc, const int nt) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m63 = _mm512_set1_epi32(63);
    for (int i = i0; i < i1; i++) {
        const rq4k *p = w + i;
        __m512i tot[NT];
        FOR_T tot[j] = _mm512_setzero_si512();
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
            __m512i a[NT];
            FOR_T a[j] = _mm512_setzero_si512();
            _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
                _mm_prefetch((const char *)p->q[k][h] + PREFETCH_BYTES, _MM_HINT_T0);
                const __m512i v = _mm512_load_si512((const __m512i *)p->q[k][h]);
                const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                FOR_T {
                    const int8_t *yq = y[j][i].qs + 32 * k + 4 * h;
                    a[j] = _mm512_dpbusd_epi32(a[j], lo, bcast4(yq));
                    a[j] = _mm512_dpbusd_epi32(a[j], hi, bcast4(yq + 16));
                }
            }
            const __m512i sc = _mm512_and_si512(_mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)p->sc[k])), m63);
            FOR_T tot[j] = _mm512_add_epi32(tot[j], _mm512_mullo_epi32(a[j], sc));
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p->d));
        const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p->dmin));
        __m512i mins[4]; // pair q: each row's (min[2q], min[2q + 1]) as two int16
        for (int q = 0; q < 4; q++) {
            const __m512i x = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)p->mlo[q]));
            const __m512i s0 = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)p->sc[2 * q]));
            const __m512i s1 = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)p->sc[2 * q + 1]));
            const __m512i lo = _mm512_ternarylogic_epi32(_mm512_and_si512(x, _mm512_set1_epi32(0x0f)),
                                                         _mm512_slli_epi32(x, 12), _mm512_set1_epi32(0xf0000), 0xf8);
            const __m512i top = _mm512_ternarylogic_epi32(_mm512_srli_epi32(s0, 2), _mm512_slli_epi32(s1, 14),
                                                          _mm512_set1_epi32(0x300000), 0xf8); // (s0 >> 2) | (s1 << 14 & ..)
            mins[q] = _mm512_or_si512(lo, _mm512_and_si512(top, _mm512_set1_epi32(0x300030)));
        }
        FOR_T {
            int32_t pr[8];
            ysum_pairs(y[j][i].bsums, pr);
            __m512i ms = _mm512_dpwssd_epi32(_mm512_setzero_si512(), mins[0], _mm512_set1_epi32(pr[0]));
            ms = _mm512_dpwssd_epi32(ms, mins[1], _mm512_set1_epi32(pr[1]));
            ms = _mm512_dpwssd_epi32(ms, mins[2], _mm512_set1_epi32(pr[4]));
            ms = _mm512_dpwssd_epi32(ms, mins[3], _mm512_set1_epi32(pr[5]));
            const __m512 yd = _mm512_set1_ps(y[j][i].d);
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[j]), _mm512_mul_ps(d, yd), acc[j]);
            acc[j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(dm, yd), acc[j]);
        }
    }
}

INL void q6k_sb(const rq6k *w, int i0, int i1, const block_q8_K *const *y, __m512 *acc, const int nt) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    for (int i = i0; i < i1; i++) {
        const rq6k *p = w + i;
        __m512i tot[NT];
        // each sub-block's sum starts at -32 * its activation sum (the levels' offset)
        _Alignas(64) int32_t off[NT][16];
        FOR_T {
            tot[j] = _mm512_setzero_si512();
            const __m512i bs = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)y[j][i].bsums));
            _mm512_store_si512((__m512i *)off[j], _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(bs, 5)));
        }
        _Pragma("GCC unroll 8") for (int c = 0; c < 8; c++) {
            __m512i a[NT], b[NT];
            FOR_T {
                a[j] = _mm512_set1_epi32(off[j][2 * c]);
                b[j] = _mm512_set1_epi32(off[j][2 * c + 1]);
            }
            const __m512i t0 = _mm512_load_si512((const __m512i *)p->qh[c][0]);
            const __m512i t1 = _mm512_load_si512((const __m512i *)p->qh[c][1]);
            _mm_prefetch((const char *)p->qh[c] + PREFETCH_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)p->qh[c] + 64 + PREFETCH_BYTES, _MM_HINT_T0);
            _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
                _mm_prefetch((const char *)p->ql[c][h] + PREFETCH_BYTES, _MM_HINT_T0);
                const __m512i v = _mm512_loadu_si512((const __m512i *)p->ql[c][h]), t = h < 2 ? t0 : t1;
                const __m512i tl = h & 1 ? t : _mm512_slli_epi16(t, 4);
                const __m512i th = h & 1 ? _mm512_srli_epi16(t, 2) : _mm512_slli_epi16(t, 2);
                // (v & 0x0f) | (tl & 0x30), and the high nibbles likewise
                const __m512i lo = _mm512_ternarylogic_epi32(_mm512_and_si512(v, m4), tl, m30, 0xf8);
                const __m512i hi = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4), th, m30, 0xf8);
                FOR_T {
                    const int8_t *yq = y[j][i].qs + 32 * c + 4 * h;
                    a[j] = _mm512_dpbusd_epi32(a[j], lo, bcast4(yq));
                    b[j] = _mm512_dpbusd_epi32(b[j], hi, bcast4(yq + 16));
                }
            }
            const __m512i sa = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p->sc[2 * c]));
            const __m512i sb = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p->sc[2 * c + 1]));
            FOR_T tot[j] = _mm512_add_epi32(tot[j], _mm512_add_epi32(_mm512_mullo_epi32(a[j], sa), _mm512_mullo_epi32(b[j], sb)));
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p->d));
        FOR_T acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[j]), _mm512_mul_ps(d, _mm512_set1_ps(y[j][i].d)), acc[j]);
    }
}

// One group x n_tok tokens: super-blocks CHUNK at a time, every token passing over them while
// they are in L1; st: the tokens' accumulators between chunks.
INL void mul_group(const void *w, int nsb, const char *y, size_t by, int n_tok, float *out, size_t bs,
                   const bool q6) {
    _Alignas(64) float st[GL_REPACK_MAX_TOK][16];
    const int chunk = n_tok <= NT ? nsb : CHUNK;
    for (int i0 = 0; i0 < nsb; i0 += chunk) {
        const int i1 = nsb - i0 < chunk ? nsb : i0 + chunk;
        for (int t0 = 0; t0 < n_tok; t0 += NT) {
            const int nt = n_tok - t0 < NT ? n_tok - t0 : NT;
            const block_q8_K *yy[NT];
            __m512 acc[NT];
            for (int j = 0; j < nt; j++) {
                yy[j] = (const block_q8_K *)(y + (size_t)(t0 + j) * by);
                acc[j] = i0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(st[t0 + j]);
            }
#define RUN(N) q6 ? q6k_sb((const rq6k *)w, i0, i1, yy, acc, N) : q4k_sb((const rq4k *)w, i0, i1, yy, acc, N)
            switch (nt) {
            case 4: RUN(4); break;
            case 3: RUN(3); break;
            case 2: RUN(2); break;
            default: RUN(1); break;
            }
#undef RUN
            for (int j = 0; j < nt; j++) {
                if (i1 == nsb) _mm512_storeu_ps(out + (size_t)(t0 + j) * bs, acc[j]);
                else _mm512_store_ps(st[t0 + j], acc[j]);
            }
        }
    }
}

static void mul_q4_K(int n, const void *w, int n_groups, const void *y, size_t by, const float *dy, const int32_t *ys,
                     int n_tok, float *out, size_t bs) {
    (void)dy, (void)ys; // Q8_K rows carry their own scales and sums
    const int nsb = n / QK_K;
    for (int g = 0; g < n_groups; g++)
        mul_group((const rq4k *)w + (size_t)g * nsb, nsb, (const char *)y, by, n_tok, out + 16 * g, bs, false);
}

static void mul_q6_K(int n, const void *w, int n_groups, const void *y, size_t by, const float *dy, const int32_t *ys,
                     int n_tok, float *out, size_t bs) {
    (void)dy, (void)ys;
    const int nsb = n / QK_K;
    for (int g = 0; g < n_groups; g++)
        mul_group((const rq6k *)w + (size_t)g * nsb, nsb, (const char *)y, by, n_tok, out + 16 * g, bs, true);
}

const gl_repack_kernels gl_repack_q4_K_avx512 = {sizeof(rq4k), pack_q4_K, mul_q4_K};
const gl_repack_kernels gl_repack_q6_K_avx512 = {sizeof(rq6k), pack_q6_K, mul_q6_K};
