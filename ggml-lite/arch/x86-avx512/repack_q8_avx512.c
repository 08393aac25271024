// Q8_0 and Q4_0 weights repacked at load into groups of 16 interleaved rows (as
// repack_k_avx512.c does for the K-quants), read by one kernel for every token count.
//
// Per block of 32 elements a group holds 64-byte step vectors whose byte 4r+e is row r's element
// 4s+e of step s, then the 16 rows' fp16 scales; as large as the 16 plain rows' blocks.
//  - Q8_0: 8 steps, the levels stored as unsigned level + 128; vpdpbusd against the signed
//    activation bytes gives sum(w y) + 128 sum(y), and the activation's sum(y) (its extras) takes
//    the offset off again.
//  - Q4_0: 4 vectors, low nibbles step h, high nibbles step h + 4: byte 4r+e of vector h is
//    exactly byte 4h+e of the row's block. Levels unsigned 0..15, the offset 8 sum(y).
// Per block and token: one integer sum, one conversion and one FMA, acc += float(sum) * (d_w *
// d_y), the same float steps for any number of tokens (each token bitwise its one-token result).
#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "dot.h"
#include "kernels_avx512.h"
#include "repack_avx512.h"
#include "../x86-avx2/repack_layout_x86.h" // the layouts and their packing

enum {
    CHUNK = 16,           // blocks per pass over the tokens: their weights stay in L1
    NT = 4,               // tokens per pass
    PREFETCH_BYTES = 4096 // the hardware prefetcher alone leaves one core short of bandwidth
};

#define FOR_T _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)

// nt tokens x one group over blocks [b0, b1): token j's row y[j], extras dy[j], ys[j].
INL void blocks(const void *w, int b0, int b1, const block_q8_0 *const *y, const float *const *dy,
                const int32_t *const *ys, __m512 *acc, const int nt, const bool q4) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const int off = q4 ? 8 : 128;
    for (int b = b0; b < b1; b++) {
        __m512i a[NT];
        FOR_T a[j] = _mm512_setzero_si512();
        const gl_fp16 *dw;
        if (q4) {
            const rq4_0 *p = (const rq4_0 *)w + b;
            _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
                _mm_prefetch((const char *)p->q[h] + PREFETCH_BYTES, _MM_HINT_T0);
                const __m512i v = _mm512_loadu_si512((const __m512i *)p->q[h]);
                const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                FOR_T {
                    a[j] = _mm512_dpbusd_epi32(a[j], lo, bcast4(y[j][b].qs + 4 * h));
                    a[j] = _mm512_dpbusd_epi32(a[j], hi, bcast4(y[j][b].qs + 16 + 4 * h));
                }
            }
            dw = p->d;
        } else {
            const rq8_0 *p = (const rq8_0 *)w + b;
            _Pragma("GCC unroll 8") for (int s = 0; s < 8; s++) {
                _mm_prefetch((const char *)p->q[s] + PREFETCH_BYTES, _MM_HINT_T0);
                const __m512i v = _mm512_loadu_si512((const __m512i *)p->q[s]);
                FOR_T a[j] = _mm512_dpbusd_epi32(a[j], v, bcast4(y[j][b].qs + 4 * s));
            }
            dw = p->d;
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dw));
        FOR_T {
            const __m512i isum = _mm512_sub_epi32(a[j], _mm512_set1_epi32(off * ys[j][b]));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, _mm512_set1_ps(dy[j][b])), acc[j]);
        }
    }
}

// One group x n_tok tokens: blocks CHUNK at a time, every token passing over them while they
// are in L1; st: the tokens' accumulators between chunks.
INL void mul_group(const void *w, int nb, const char *y, size_t by, const float *dy, const int32_t *ys, int n_tok,
                   float *out, size_t bs, const bool q4) {
    _Alignas(64) float st[GL_REPACK_MAX_TOK][16];
    const int chunk = n_tok <= NT ? nb : CHUNK;
    for (int b0 = 0; b0 < nb; b0 += chunk) {
        const int b1 = nb - b0 < chunk ? nb : b0 + chunk;
        for (int t0 = 0; t0 < n_tok; t0 += NT) {
            const int nt = n_tok - t0 < NT ? n_tok - t0 : NT;
            const block_q8_0 *yy[NT];
            const float *dd[NT];
            const int32_t *ss[NT];
            __m512 acc[NT];
            for (int j = 0; j < nt; j++) {
                yy[j] = (const block_q8_0 *)(y + (size_t)(t0 + j) * by);
                dd[j] = dy + (size_t)(t0 + j) * nb;
                ss[j] = ys + (size_t)(t0 + j) * nb;
                acc[j] = b0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(st[t0 + j]);
            }
            switch (nt) {
            case 4: blocks(w, b0, b1, yy, dd, ss, acc, 4, q4); break;
            case 3: blocks(w, b0, b1, yy, dd, ss, acc, 3, q4); break;
            case 2: blocks(w, b0, b1, yy, dd, ss, acc, 2, q4); break;
            default: blocks(w, b0, b1, yy, dd, ss, acc, 1, q4); break;
            }
            for (int j = 0; j < nt; j++) {
                if (b1 == nb) _mm512_storeu_ps(out + (size_t)(t0 + j) * bs, acc[j]);
                else _mm512_store_ps(st[t0 + j], acc[j]);
            }
        }
    }
}

static void mul_q8_0(int n, const void *w, int n_groups, const void *y, size_t by, const float *dy, const int32_t *ys,
                     int n_tok, float *out, size_t bs) {
    const int nb = n / QK8_0;
    for (int g = 0; g < n_groups; g++)
        mul_group((const rq8_0 *)w + (size_t)g * nb, nb, (const char *)y, by, dy, ys, n_tok, out + 16 * g, bs, false);
}

static void mul_q4_0(int n, const void *w, int n_groups, const void *y, size_t by, const float *dy, const int32_t *ys,
                     int n_tok, float *out, size_t bs) {
    const int nb = n / QK4_0;
    for (int g = 0; g < n_groups; g++)
        mul_group((const rq4_0 *)w + (size_t)g * nb, nb, (const char *)y, by, dy, ys, n_tok, out + 16 * g, bs, true);
}

const gl_repack_kernels gl_repack_q8_0_avx512 = {sizeof(rq8_0), pack_q8_0, mul_q8_0};
const gl_repack_kernels gl_repack_q4_0_avx512 = {sizeof(rq4_0), pack_q4_0, mul_q4_0};
