// Q4_K and Q6_K weights repacked at load (the 16-row layouts of repack_layout_x86.h, shared with
// the AVX-512 set), and the AVX2 kernel that reads them for generation, speculative
// verification and prompts alike (gl_repack_kernels).
//
// Each 64-byte step vector is read as two 32-byte halves, rows 0-7 and rows 8-15, one after the
// other. Per half, a step against a token's 4 activation bytes (broadcast) is one vpmaddubsw:
// 16-bit pair sums, added up in 16 bits while they cannot overflow, then one vpmaddwd by the
// rows' sub-block scales gives 32-bit sums. Per super-block and token: one conversion and one
// FMA, acc += float(sum) * (d_w * d_y) (Q4_K: minus float(sum(min * ysum)) * (dmin_w * d_y)).
// The float steps are the same for any number of tokens, so every token gets bitwise its
// one-token result.
//  - Q4_K: levels 0..15, |y| <= 128: a pair sum is at most 3840, and the 8 of a sub-block
//    (4 steps, both nibbles) at most 30720, under 32767.
//  - Q6_K: levels 0..63 (the -32 offset comes off as 32 * sum(scale * ysum) per super-block):
//    a pair sum is at most 16128, two steps' worth 32256.
// Activations: Q8_K rows (the plain types' vec_dot_type).
#include <immintrin.h>
#include <string.h>

#include "dot.h"
#include "kernels_avx2.h"
#include "repack_layout_x86.h"
#include "simd_avx2.h"

enum {
    CHUNK = 4, // super-blocks per pass over the tokens: their weights stay in L1
    NT = 8     // tokens per pass
};
// how far ahead one token's stream prefetches: 2 KiB left Q6_K at 22 GB/s from memory, 12 KiB 41
#define PREFETCH_BYTES 12288
#define FOR_T _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++)

// 8 rows' bytes at p as 32-bit lanes.
INL __m256i u8x8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
INL __m256i i8x8(const int8_t *p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)); }

// A 16-bit value in each 32-bit lane's two words (vpmaddwd then multiplies both of a pair by it).
INL __m256i twice16(__m256i x) {
    return _mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(x, 16));
}

// ---- Q4_K ----------------------------------------------------------------------------------

// A token's 32-element sums (sub-blocks 0..7, from Q8_K's 16-element bsums) as int16 pairs:
// pr[q] = sum_{2q} | sum_{2q+1} << 16 for q = 0..3.
INL void ysum_pairs(const int16_t *bsums, int32_t pr[4]) {
    const __m256i s = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bsums), _mm256_set1_epi16(1));
    _Alignas(32) int32_t w[8];
    _mm256_store_si256((__m256i *)w, _mm256_packs_epi32(s, s)); // words 0, 1, 4, 5 are the pairs
    pr[0] = w[0], pr[1] = w[1], pr[2] = w[4], pr[3] = w[5];
}

// Half hf (rows 8hf..8hf+7) of a super-block's mins, pair q: each row's min[2q] | min[2q+1] << 16.
INL void q4k_mins(const rq4k *p, int hf, __m256i mins[4]) {
    const __m256i m15 = _mm256_set1_epi32(15), m48 = _mm256_set1_epi32(0x30);
    for (int q = 0; q < 4; q++) {
        const __m256i x = u8x8(p->mlo[q] + 8 * hf);
        const __m256i s0 = u8x8(p->sc[2 * q] + 8 * hf), s1 = u8x8(p->sc[2 * q + 1] + 8 * hf);
        // the top 2 bits of a min sit in bits 6-7 of its scale byte
        const __m256i m0 = _mm256_or_si256(_mm256_and_si256(x, m15), _mm256_and_si256(_mm256_srli_epi32(s0, 2), m48));
        const __m256i m1 = _mm256_or_si256(_mm256_srli_epi32(x, 4), _mm256_and_si256(_mm256_srli_epi32(s1, 2), m48));
        mins[q] = _mm256_or_si256(m0, _mm256_slli_epi32(m1, 16));
    }
}

// nt tokens x one group, super-blocks [i0, i1): acc[j][hf] (8 rows) of token j, y[j] its row.
INL void q4k_sb(const rq4k *w, int i0, int i1, const block_q8_K *const *y, __m256 (*acc)[2], const int nt) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m63 = _mm256_set1_epi32(63);
    for (int i = i0; i < i1; i++) {
        const rq4k *p = w + i;
        int32_t pr[NT][4];
        FOR_T ysum_pairs(y[j][i].bsums, pr[j]);
        for (int hf = 0; hf < 2; hf++) {
            __m256i tot[NT];
            FOR_T tot[j] = _mm256_setzero_si256();
            _Pragma("GCC unroll 1") for (int k = 0; k < 8; k++) {
                // the sub-block's 4 steps, both nibbles, for every token of the pass
                __m256i lo[4], hi[4];
                _Pragma("GCC unroll 4") for (int h = 0; h < 4; h++) {
                    const uint8_t *q = p->q[k][h] + 32 * hf;
                    _mm_prefetch((const char *)q + PREFETCH_BYTES, _MM_HINT_T0);
                    const __m256i v = _mm256_loadu_si256((const __m256i *)q);
                    lo[h] = _mm256_and_si256(v, m4), hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                }
                const __m256i sc = twice16(_mm256_and_si256(u8x8(p->sc[k] + 8 * hf), m63));
                FOR_T {
                    const int8_t *yq = y[j][i].qs + 32 * k;
                    const __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[0], bcast4(yq)), _mm256_maddubs_epi16(hi[0], bcast4(yq + 16)));
                    const __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[1], bcast4(yq + 4)), _mm256_maddubs_epi16(hi[1], bcast4(yq + 20)));
                    const __m256i s2 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[2], bcast4(yq + 8)), _mm256_maddubs_epi16(hi[2], bcast4(yq + 24)));
                    const __m256i s3 = _mm256_add_epi16(_mm256_maddubs_epi16(lo[3], bcast4(yq + 12)), _mm256_maddubs_epi16(hi[3], bcast4(yq + 28)));
                    const __m256i a = _mm256_add_epi16(_mm256_add_epi16(s0, s1), _mm256_add_epi16(s2, s3));
                    tot[j] = _mm256_add_epi32(tot[j], _mm256_madd_epi16(a, sc));
                }
            }
            __m256i mins[4];
            q4k_mins(p, hf, mins);
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p->d + 8 * hf)));
            const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p->dmin + 8 * hf)));
            FOR_T {
                __m256i ms = _mm256_madd_epi16(mins[0], _mm256_set1_epi32(pr[j][0]));
                ms = _mm256_add_epi32(ms, _mm256_madd_epi16(mins[1], _mm256_set1_epi32(pr[j][1])));
                ms = _mm256_add_epi32(ms, _mm256_madd_epi16(mins[2], _mm256_set1_epi32(pr[j][2])));
                ms = _mm256_add_epi32(ms, _mm256_madd_epi16(mins[3], _mm256_set1_epi32(pr[j][3])));
                const __m256 yd = _mm256_set1_ps(y[j][i].d);
                acc[j][hf] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[j]), _mm256_mul_ps(d, yd), acc[j][hf]);
                acc[j][hf] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_mul_ps(dm, yd), acc[j][hf]);
            }
        }
    }
}

// ---- Q6_K ----------------------------------------------------------------------------------

INL void q6k_sb(const rq6k *w, int i0, int i1, const block_q8_K *const *y, __m256 (*acc)[2], const int nt) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    for (int i = i0; i < i1; i++) {
        const rq6k *p = w + i;
        for (int hf = 0; hf < 2; hf++) {
            // each sub-block's sum starts at -32 * scale * its activation sum (the levels' offset)
            __m256i tot[NT];
            {
                __m256i sp[8]; // pair m: each row's scale[2m] | scale[2m+1] << 16
                for (int m = 0; m < 8; m++)
                    sp[m] = _mm256_or_si256(_mm256_and_si256(i8x8(p->sc[2 * m] + 8 * hf), _mm256_set1_epi32(0xffff)),
                                            _mm256_slli_epi32(i8x8(p->sc[2 * m + 1] + 8 * hf), 16));
                FOR_T {
                    const int32_t *bp = (const int32_t *)y[j][i].bsums; // bsums[2m] | bsums[2m+1] << 16
                    __m256i o = _mm256_madd_epi16(sp[0], _mm256_set1_epi32(bp[0]));
                    for (int m = 1; m < 8; m++) o = _mm256_add_epi32(o, _mm256_madd_epi16(sp[m], _mm256_set1_epi32(bp[m])));
                    tot[j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(o, 5));
                }
            }
            _Pragma("GCC unroll 1") for (int c = 0; c < 8; c++) {
                const __m256i sa = twice16(i8x8(p->sc[2 * c] + 8 * hf));
                const __m256i sb = twice16(i8x8(p->sc[2 * c + 1] + 8 * hf));
                const __m256i t0 = _mm256_loadu_si256((const __m256i *)(p->qh[c][0] + 32 * hf));
                const __m256i t1 = _mm256_loadu_si256((const __m256i *)(p->qh[c][1] + 32 * hf));
                _mm_prefetch((const char *)p->qh[c][0] + 32 * hf + PREFETCH_BYTES, _MM_HINT_T0);
                _Pragma("GCC unroll 2") for (int h2 = 0; h2 < 4; h2 += 2) {
                    __m256i lo[2], hi[2];
                    for (int u = 0; u < 2; u++) {
                        const int h = h2 + u;
                        const uint8_t *q = p->ql[c][h] + 32 * hf;
                        _mm_prefetch((const char *)q + PREFETCH_BYTES, _MM_HINT_T0);
                        const __m256i v = _mm256_loadu_si256((const __m256i *)q), t = h < 2 ? t0 : t1;
                        const __m256i tl = h & 1 ? t : _mm256_slli_epi16(t, 4);
                        const __m256i th = h & 1 ? _mm256_srli_epi16(t, 2) : _mm256_slli_epi16(t, 2);
                        lo[u] = _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_and_si256(tl, m30));
                        hi[u] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), _mm256_and_si256(th, m30));
                    }
                    FOR_T {
                        const int8_t *yq = y[j][i].qs + 32 * c + 4 * h2;
                        const __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(lo[0], bcast4(yq)),
                                                           _mm256_maddubs_epi16(lo[1], bcast4(yq + 4)));
                        const __m256i b = _mm256_add_epi16(_mm256_maddubs_epi16(hi[0], bcast4(yq + 16)),
                                                           _mm256_maddubs_epi16(hi[1], bcast4(yq + 20)));
                        tot[j] = _mm256_add_epi32(tot[j], _mm256_add_epi32(_mm256_madd_epi16(a, sa), _mm256_madd_epi16(b, sb)));
                    }
                }
            }
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p->d + 8 * hf)));
            FOR_T acc[j][hf] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(tot[j]), _mm256_mul_ps(d, _mm256_set1_ps(y[j][i].d)),
                                               acc[j][hf]);
        }
    }
}

// ---- the token loop ------------------------------------------------------------------------

// One group x n_tok tokens: super-blocks CHUNK at a time, every token passing over them while
// they are in L1; st: the tokens' accumulators between chunks.
INL void mul_group(const void *w, int nsb, const char *y, size_t by, int n_tok, float *out, size_t bs,
                   const bool q6) {
    _Alignas(32) float st[GL_REPACK_MAX_TOK][16];
    const int chunk = n_tok <= NT ? nsb : CHUNK;
    for (int i0 = 0; i0 < nsb; i0 += chunk) {
        const int i1 = nsb - i0 < chunk ? nsb : i0 + chunk;
        for (int t0 = 0; t0 < n_tok; t0 += NT) {
            const int nt = n_tok - t0 < NT ? n_tok - t0 : NT;
            const block_q8_K *yy[NT];
            __m256 acc[NT][2];
            for (int j = 0; j < nt; j++) {
                yy[j] = (const block_q8_K *)(y + (size_t)(t0 + j) * by);
                for (int hf = 0; hf < 2; hf++)
                    acc[j][hf] = i0 == 0 ? _mm256_setzero_ps() : _mm256_load_ps(st[t0 + j] + 8 * hf);
            }
#define RUN(N) q6 ? q6k_sb((const rq6k *)w, i0, i1, yy, acc, N) : q4k_sb((const rq4k *)w, i0, i1, yy, acc, N)
            switch (nt) {
            case 8: RUN(8); break;
            case 7: RUN(7); break;
            case 6: RUN(6); break;
            case 5: RUN(5); break;
            case 4: RUN(4); break;
            case 3: RUN(3); break;
            case 2: RUN(2); break;
            default: RUN(1); break;
            }
#undef RUN
            for (int j = 0; j < nt; j++)
                for (int hf = 0; hf < 2; hf++) {
                    if (i1 == nsb) _mm256_storeu_ps(out + (size_t)(t0 + j) * bs + 8 * hf, acc[j][hf]);
                    else _mm256_store_ps(st[t0 + j] + 8 * hf, acc[j][hf]);
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

const gl_repack_kernels gl_repack_q4_K_avx2 = {sizeof(rq4k), pack_q4_K, mul_q4_K};
const gl_repack_kernels gl_repack_q6_K_avx2 = {sizeof(rq6k), pack_q6_K, mul_q6_K};
