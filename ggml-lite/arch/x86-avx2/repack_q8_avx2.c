// Q8_0 and Q4_0 weights repacked at load (the 16-row layouts of repack_layout_x86.h, shared with
// the AVX-512 set), read by one AVX2 kernel for every token count, as repack_k_avx2.c does for
// the K-quants: each 64-byte step vector as two halves, rows 0-7 and rows 8-15.
//  - Q8_0: levels stored + 128; vpmaddubsw takes |w| against the activation bytes carrying w's
//    signs (|w| <= 128, |y| <= 127: a pair sum fits 16 bits), vpmaddwd by 1 makes them 32-bit.
//  - Q4_0: levels 0..15, the 8 steps' pair sums added in 16 bits (at most 30480), then one
//    vpmaddwd; the offset 8 sum(y) (the activation's extras) comes off the integer sum.
// Per block and token: one conversion and one FMA, acc += float(sum) * (d_w * d_y), the same
// float steps for any number of tokens (each token bitwise its one-token result).
#include <immintrin.h>
#include <string.h>

#include "dot.h"
#include "kernels_avx2.h"
#include "repack_layout_x86.h"
#include "simd_avx2.h"

enum {
    CHUNK = 32, // blocks per pass over the tokens: their weights stay in L1
    NT = 16,    // tokens per pass (Q4_0)
    NT_Q8 = 8   // tokens per pass (Q8_0)
};
// how far ahead one token's stream prefetches: 2 KiB left Q8_0 at 52 GB/s from memory, 12 KiB 66
#define PREFETCH_BYTES 12288
#define FOR_T _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++)

// Half hf of a Q4_0 block against nt tokens: the integer sums a[j] (offset taken off).
INL void q4_0_half(const rq4_0 *p, int hf, const int8_t *const *yq, const int32_t *ys, __m256i *a, const int nt) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256i lo[4], hi[4];
    _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
        const uint8_t *q = p->q[h] + 32 * hf;
        _mm_prefetch((const char *)q + PREFETCH_BYTES, _MM_HINT_T0);
        const __m256i v = _mm256_loadu_si256((const __m256i *)q);
        lo[h] = _mm256_and_si256(v, m4), hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    _Pragma("GCC unroll 1") for (int j = 0; j < nt; j++) {
        __m256i s = _mm256_maddubs_epi16(lo[0], bcast4(yq[j]));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[0], bcast4(yq[j] + 16)));
        _Pragma("GCC unroll 3") for (int h = 1; h < 4; h++) {
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo[h], bcast4(yq[j] + 4 * h)));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[h], bcast4(yq[j] + 16 + 4 * h)));
        }
        a[j] = _mm256_sub_epi32(_mm256_madd_epi16(s, ones), _mm256_set1_epi32(8 * ys[j]));
    }
}

// Half hf of a Q8_0 block against nt tokens: a[j], four steps at a time (w and |w| in registers).
INL void q8_0_half(const rq8_0 *p, int hf, const int8_t *const *yq, __m256i *a, const int nt) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    FOR_T a[j] = _mm256_setzero_si256();
    _Pragma("GCC unroll 2") for (int s0 = 0; s0 < 8; s0 += 4) {
        __m256i w[4], aw[4];
        _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++) {
            const uint8_t *q = p->q[s0 + s] + 32 * hf;
            _mm_prefetch((const char *)q + PREFETCH_BYTES, _MM_HINT_T0);
            w[s] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q), flip);
            aw[s] = _mm256_abs_epi8(w[s]);
        }
        _Pragma("GCC unroll 1") for (int j = 0; j < nt; j++) {
            __m256i pr[4];
            _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++)
                pr[s] = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[s], _mm256_sign_epi8(bcast4(yq[j] + 4 * (s0 + s)), w[s])), ones);
            a[j] = _mm256_add_epi32(a[j], _mm256_add_epi32(_mm256_add_epi32(pr[0], pr[1]), _mm256_add_epi32(pr[2], pr[3])));
        }
    }
}

// Half hf of block b against nt tokens, into acc[j][hf].
INL void block_half(const void *w, int b, int hf, const int8_t *const *yq, const int32_t *ysum, const float *const *dy,
                    __m256 (*acc)[2], const int nt, const bool q4) {
    __m256i a[NT];
    if (q4) q4_0_half((const rq4_0 *)w + b, hf, yq, ysum, a, nt);
    else q8_0_half((const rq8_0 *)w + b, hf, yq, a, nt);
    const gl_fp16 *dw = q4 ? ((const rq4_0 *)w + b)->d : ((const rq8_0 *)w + b)->d;
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(dw + 8 * hf)));
    FOR_T acc[j][hf] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[j]), _mm256_mul_ps(d, _mm256_set1_ps(dy[j][b])), acc[j][hf]);
}

// nt tokens x one group over blocks [b0, b1): token j's row y[j], extras dy[j], ys[j].
INL void blocks(const void *w, int b0, int b1, const block_q8_0 *const *y, const float *const *dy,
                const int32_t *const *ys, __m256 (*acc)[2], const int nt, const bool q4) {
    for (int b = b0; b < b1; b++) {
        const int8_t *yq[NT];
        int32_t ysum[NT];
        FOR_T yq[j] = y[j][b].qs, ysum[j] = ys[j][b];
        if (nt == 1) { // both halves in line: one token's two accumulators stay in registers
            block_half(w, b, 0, yq, ysum, dy, acc, 1, q4);
            block_half(w, b, 1, yq, ysum, dy, acc, 1, q4);
        } else { // a half at a time (in line, the two would spill registers)
            for (int hf = 0; hf < 2; hf++) block_half(w, b, hf, yq, ysum, dy, acc, nt, q4);
        }
    }
}

// One group x n_tok tokens: blocks CHUNK at a time, every token passing over them while they
// are in L1; st: the tokens' accumulators between chunks.
INL void mul_group(const void *w, int nb, const char *y, size_t by, const float *dy, const int32_t *ys, int n_tok,
                   float *out, size_t bs, const bool q4) {
    _Alignas(32) float st[GL_REPACK_MAX_TOK][16];
    const int pass = q4 ? NT : NT_Q8;
    const int chunk = n_tok <= pass ? nb : CHUNK;
    for (int b0 = 0; b0 < nb; b0 += chunk) {
        const int b1 = nb - b0 < chunk ? nb : b0 + chunk;
        for (int t0 = 0; t0 < n_tok; t0 += pass) {
            const int nt = n_tok - t0 < pass ? n_tok - t0 : pass;
            const block_q8_0 *yy[NT];
            const float *dd[NT];
            const int32_t *ss[NT];
            __m256 acc[NT][2];
            for (int j = 0; j < nt; j++) {
                yy[j] = (const block_q8_0 *)(y + (size_t)(t0 + j) * by);
                dd[j] = dy + (size_t)(t0 + j) * nb;
                ss[j] = ys + (size_t)(t0 + j) * nb;
                for (int hf = 0; hf < 2; hf++)
                    acc[j][hf] = b0 == 0 ? _mm256_setzero_ps() : _mm256_load_ps(st[t0 + j] + 8 * hf);
            }
            if (nt == 1 || !q4) { // Q8_0: constant counts keep its sums in registers
                switch (nt) {
                case 8: blocks(w, b0, b1, yy, dd, ss, acc, 8, false); break;
                case 7: blocks(w, b0, b1, yy, dd, ss, acc, 7, false); break;
                case 6: blocks(w, b0, b1, yy, dd, ss, acc, 6, false); break;
                case 5: blocks(w, b0, b1, yy, dd, ss, acc, 5, false); break;
                case 4: blocks(w, b0, b1, yy, dd, ss, acc, 4, false); break;
                case 3: blocks(w, b0, b1, yy, dd, ss, acc, 3, false); break;
                case 2: blocks(w, b0, b1, yy, dd, ss, acc, 2, false); break;
                default: blocks(w, b0, b1, yy, dd, ss, acc, 1, q4); break;
                }
            } else { // Q4_0: any count (its token loop is not unrolled)
                blocks(w, b0, b1, yy, dd, ss, acc, nt, true);
            }
            for (int j = 0; j < nt; j++)
                _Pragma("GCC unroll 2") for (int hf = 0; hf < 2; hf++) {
                    if (b1 == nb) _mm256_storeu_ps(out + (size_t)(t0 + j) * bs + 8 * hf, acc[j][hf]);
                    else _mm256_store_ps(st[t0 + j] + 8 * hf, acc[j][hf]);
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

const gl_repack_kernels gl_repack_q8_0_avx2 = {sizeof(rq8_0), pack_q8_0, mul_q8_0};
const gl_repack_kernels gl_repack_q4_0_avx2 = {sizeof(rq4_0), pack_q4_0, mul_q4_0};
