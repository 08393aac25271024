// AVX2 dot kernels of the low-bit types. Each 32-element block of weights becomes a vector of
// unsigned magnitudes (grid entries) and the activation's signs are flipped where the weight's
// are (vpsignb), so one vpmaddubsw + vpmaddwd per block gives 8 lanes of 32-bit sums; lane k
// holds elements 4k..4k+3 of every block times its scale. The lanes are then scaled in float
// exactly as llama.cpp's AVX2 build does (same lane contents, same fused multiply-adds, same
// horizontal sum), so the logits are the reference's bit for bit.
#include "dot_lowbit.h"

#if defined(GL_HAVE_AVX2_KERNELS)
#include <math.h>

#include "iq_grids.h"
#include "simd_avx2.h"

static inline uint32_t rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t rd16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// Four 8-byte grid entries, entry a in the lowest 64 bits.
INL __m256i grid4(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    return _mm256_set_epi64x((long long)d, (long long)c, (long long)b, (long long)a);
}

// +1 / -1 bytes from four sign bytes (bit j of s_l set: byte j of group l is negative).
INL __m256i signs4(uint8_t s0, uint8_t s1, uint8_t s2, uint8_t s3) {
    const uint64_t spread = 0x0101010101010101ull;
    const __m256i v = _mm256_set_epi64x((long long)(s3 * spread), (long long)(s2 * spread),
                                        (long long)(s1 * spread), (long long)(s0 * spread));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i neg = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_or_si256(neg, _mm256_set1_epi8(1));
}

// 16 int16 pair sums of unsigned magnitudes u times the activation q8 with signs s applied.
INL __m256i dot_signed(__m256i u, __m256i q8, __m256i s) { return _mm256_maddubs_epi16(u, _mm256_sign_epi8(q8, s)); }

// The same for signed weights w (-1, 0, 1 grids and shifts).
INL __m256i dot_i8(__m256i w, __m256i q8) { return _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(q8, w)); }

INL __m256i scale16(int lo, int hi) { return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo)); }

INL __m256i load32(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

// ---- IQ2 / IQ3: acc += d * lanes per super-block; result c * hsum ----------------------------

void gl_dot_iq2_xxs_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_iq2_xxs *x = (const block_iq2_xxs *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = gl_fp16_to_fp32(x[i].d) * y[i].d;
        __m256i sum = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *w = (const uint8_t *)(x[i].qs + 4 * ib);
            const uint32_t aux = rd32(w + 4);
            const __m256i g = grid4(gl_iq2xxs_grid[w[0]], gl_iq2xxs_grid[w[1]], gl_iq2xxs_grid[w[2]], gl_iq2xxs_grid[w[3]]);
            const __m256i sg = signs4(gl_iq_signs8(aux), gl_iq_signs8(aux >> 7), gl_iq_signs8(aux >> 14), gl_iq_signs8(aux >> 21));
            const __m256i p = dot_signed(g, load32(y[i].qs + 32 * ib), sg);
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_set1_epi16((short)(2 * (aux >> 28) + 1))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    *s = 0.125f * hsum8(acc);
}

void gl_dot_iq2_xs_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_iq2_xs *x = (const block_iq2_xs *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = gl_fp16_to_fp32(x[i].d) * y[i].d;
        __m256i sum = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            uint16_t v[4];
            for (int l = 0; l < 4; l++) v[l] = rd16(x[i].qs + 4 * ib + l);
            const __m256i g = grid4(gl_iq2xs_grid[v[0] & 511], gl_iq2xs_grid[v[1] & 511], gl_iq2xs_grid[v[2] & 511],
                                    gl_iq2xs_grid[v[3] & 511]);
            const __m256i sg = signs4(gl_iq_signs8(v[0] >> 9), gl_iq_signs8(v[1] >> 9), gl_iq_signs8(v[2] >> 9),
                                      gl_iq_signs8(v[3] >> 9));
            const __m256i p = dot_signed(g, load32(y[i].qs + 32 * ib), sg);
            const uint8_t sc = x[i].scales[ib];
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, scale16(2 * (sc & 0xf) + 1, 2 * (sc >> 4) + 1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    *s = 0.125f * hsum8(acc);
}

void gl_dot_iq2_s_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_iq2_s *x = (const block_iq2_s *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = gl_fp16_to_fp32(x[i].d) * y[i].d;
        const uint8_t *qs = x[i].qs, *signs = x[i].qs + QK_K / 8;
        __m256i sum = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const int h = x[i].qh[ib];
            const __m256i g = grid4(gl_iq2s_grid[qs[4 * ib] | (h & 3) << 8], gl_iq2s_grid[qs[4 * ib + 1] | (h >> 2 & 3) << 8],
                                    gl_iq2s_grid[qs[4 * ib + 2] | (h >> 4 & 3) << 8], gl_iq2s_grid[qs[4 * ib + 3] | (h >> 6 & 3) << 8]);
            const __m256i sg = signs4(signs[4 * ib], signs[4 * ib + 1], signs[4 * ib + 2], signs[4 * ib + 3]);
            const __m256i p = dot_signed(g, load32(y[i].qs + 32 * ib), sg);
            const uint8_t sc = x[i].scales[ib];
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, scale16(2 * (sc & 0xf) + 1, 2 * (sc >> 4) + 1)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    *s = 0.125f * hsum8(acc);
}

// Eight 4-byte IQ3 grid entries from 9-bit indices.
INL __m256i grid8_u32(const uint32_t *grid, const int idx[8]) {
    return _mm256_set_epi32((int)grid[idx[7]], (int)grid[idx[6]], (int)grid[idx[5]], (int)grid[idx[4]],
                            (int)grid[idx[3]], (int)grid[idx[2]], (int)grid[idx[1]], (int)grid[idx[0]]);
}

void gl_dot_iq3_xxs_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_iq3_xxs *x = (const block_iq3_xxs *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = gl_fp16_to_fp32(x[i].d) * y[i].d;
        const uint8_t *qs = x[i].qs, *scales_signs = x[i].qs + QK_K / 4;
        __m256i sum = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            int idx[8];
            for (int k = 0; k < 8; k++) idx[k] = qs[8 * ib + k];
            const uint32_t aux = rd32(scales_signs + 4 * ib);
            const __m256i g = grid8_u32(gl_iq3xxs_grid, idx);
            const __m256i sg = signs4(gl_iq_signs8(aux), gl_iq_signs8(aux >> 7), gl_iq_signs8(aux >> 14), gl_iq_signs8(aux >> 21));
            const __m256i p = dot_signed(g, load32(y[i].qs + 32 * ib), sg);
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_set1_epi16((short)(2 * (aux >> 28) + 1))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    *s = 0.25f * hsum8(acc);
}

void gl_dot_iq3_s_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_iq3_s *x = (const block_iq3_s *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = gl_fp16_to_fp32(x[i].d) * y[i].d;
        __m256i sum = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            int idx[8];
            for (int k = 0; k < 8; k++) idx[k] = x[i].qs[8 * ib + k] | (x[i].qh[ib] >> k & 1) << 8;
            const uint8_t *sb = x[i].signs + 4 * ib;
            const __m256i g = grid8_u32(gl_iq3s_grid, idx);
            const __m256i p = dot_signed(g, load32(y[i].qs + 32 * ib), signs4(sb[0], sb[1], sb[2], sb[3]));
            const int ls = 2 * (x[i].scales[ib / 2] >> (4 * (ib % 2)) & 0xf) + 1;
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_set1_epi16((short)ls)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    *s = hsum8(acc);
}

// ---- IQ1: the grid part in lanes, the +-1/8 shifts apart --------------------------------------

void gl_dot_iq1_s_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_iq1_s *x = (const block_iq1_s *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    __m256 acc = _mm256_setzero_ps();
    float acc_shift = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *qs = x[i].qs;
        __m256i sum = _mm256_setzero_si256();
        int sum_shift = 0; // sum over blocks of ls * sign * sum(y)
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t qh = rd16(x[i].qh + ib);
            const __m256i g = grid4(gl_iq1s_grid[qs[4 * ib] | (qh & 7) << 8], gl_iq1s_grid[qs[4 * ib + 1] | (qh >> 3 & 7) << 8],
                                    gl_iq1s_grid[qs[4 * ib + 2] | (qh >> 6 & 7) << 8],
                                    gl_iq1s_grid[qs[4 * ib + 3] | (qh >> 9 & 7) << 8]);
            const int ls = 2 * (qh >> 12 & 7) + 1;
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(dot_i8(g, load32(y[i].qs + 32 * ib)), _mm256_set1_epi16((short)ls)));
            sum_shift += (y[i].bsums[2 * ib] + y[i].bsums[2 * ib + 1]) * (qh & 0x8000 ? -1 : 1) * ls;
        }
        const float d = y[i].d * gl_fp16_to_fp32(x[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
        acc_shift = fmaf(d, (float)sum_shift, acc_shift); // the reference build contracts this too
    }
    *s = hsum8(acc) + 0.125f * acc_shift;
}

void gl_dot_iq1_m_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_iq1_m *x = (const block_iq1_m *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    const long long plus = 0x0101010101010101ll, minus = -1ll;
    __m256 acc = _mm256_setzero_ps(), acc_shift = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        uint16_t sc[4];
        for (int k = 0; k < 4; k++) sc[k] = rd16(x[i].scales + 2 * k);
        const uint16_t dbits = (uint16_t)((sc[0] >> 12) | (sc[1] >> 8 & 0x00f0) | (sc[2] >> 4 & 0x0f00) | (sc[3] & 0xf000));
        const uint8_t *qs = x[i].qs, *qh = x[i].qh;
        __m256i sum = _mm256_setzero_si256(), sum_shift = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const int h0 = qh[2 * ib], h1 = qh[2 * ib + 1];
            const __m256i g = grid4(gl_iq1s_grid[qs[4 * ib] | (h0 & 7) << 8], gl_iq1s_grid[qs[4 * ib + 1] | (h0 >> 4 & 7) << 8],
                                    gl_iq1s_grid[qs[4 * ib + 2] | (h1 & 7) << 8], gl_iq1s_grid[qs[4 * ib + 3] | (h1 >> 4 & 7) << 8]);
            const __m256i shift = _mm256_set_epi64x(h1 & 0x80 ? minus : plus, h1 & 0x08 ? minus : plus,
                                                    h0 & 0x80 ? minus : plus, h0 & 0x08 ? minus : plus);
            const int bits = sc[ib / 2] >> (6 * (ib % 2));
            const __m256i ls = scale16(2 * (bits & 7) + 1, 2 * (bits >> 3 & 7) + 1);
            const __m256i q8 = load32(y[i].qs + 32 * ib);
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(dot_i8(g, q8), ls));
            sum_shift = _mm256_add_epi32(sum_shift, _mm256_madd_epi16(dot_i8(shift, q8), ls));
        }
        const __m256 d = _mm256_set1_ps(y[i].d * gl_fp16_to_fp32(dbits));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum), acc);
        acc_shift = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum_shift), acc_shift);
    }
    *s = hsum8(acc) + 0.125f * hsum8(acc_shift);
}

// ---- ternary: (q + 1) in 0..2 times y in 16-bit pair sums, minus the activation sums ------------

// Adds the per-super-block lanes of u (256 bytes of q + 1) to acc as the reference does.
INL __m256 ternary_acc(const uint8_t *u, const block_q8_K *y, float dx, __m256 acc) {
    __m256i sum16 = _mm256_setzero_si256();
    for (int c = 0; c < 8; c++)
        sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(u + 32 * c)),
                                                             load32(y->qs + 32 * c)));
    sum16 = _mm256_sub_epi16(sum16, _mm256_loadu_si256((const __m256i *)y->bsums));
    const __m256i sum = _mm256_madd_epi16(sum16, _mm256_set1_epi16(1));
    // The reference writes mul + add; its build (-ffp-contract=fast) fuses them.
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(y->d * dx), acc);
}

void gl_dot_tq2_0_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_tq2_0 *x = (const block_tq2_0 *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    const __m256i three = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t u[QK_K] __attribute__((aligned(32)));
        for (int j = 0; j < 2; j++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            for (int l = 0; l < 4; l++)
                _mm256_store_si256((__m256i *)(u + 128 * j + 32 * l), _mm256_and_si256(_mm256_srli_epi16(q, 2 * l), three));
        }
        acc = ternary_acc(u, &y[i], gl_fp16_to_fp32(x[i].d), acc);
    }
    *s = hsum8(acc);
}

void gl_dot_tq1_0_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_q8_K *y = (const block_q8_K *)vy;
    __m256 acc = _mm256_setzero_ps();
    gl_lowbit_block b;
    for (int i = 0; i < n / QK_K; i++) {
        gl_unpack_lowbit(GL_TYPE_TQ1_0, vx, i, &b);
        uint8_t u[QK_K];
        for (int e = 0; e < QK_K; e++) u[e] = (uint8_t)(b.q[e] + 1);
        acc = ternary_acc(u, &y[i], b.d, acc);
    }
    *s = hsum8(acc);
}

// ---- MXFP4 against Q8_0 -------------------------------------------------------------------------

void gl_dot_mxfp4_avx2(int n, float *s, const void *vx, const void *vy) {
    const block_mxfp4 *x = (const block_mxfp4 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    const __m128i lut = _mm_loadu_si128((const __m128i *)gl_mxfp4_values);
    const __m256i lut2 = _mm256_set_m128i(lut, lut), m4 = _mm256_set1_epi8(0xf);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_MXFP4; i++) {
        const __m128i q = _mm_loadu_si128((const __m128i *)x[i].qs);
        const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
        const __m256i w = _mm256_shuffle_epi8(lut2, nib);
        const __m256i sum = _mm256_madd_epi16(dot_i8(w, load32(y[i].qs)), _mm256_set1_epi16(1));
        const float d = gl_e8m0_half(x[i].e) * gl_fp16_to_fp32(y[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc);
    }
    *s = hsum8(acc);
}

#endif
