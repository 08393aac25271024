// AVX2 dot kernels of the low-bit types. Each 32-element block of weights becomes a vector of
// unsigned magnitudes (grid entries) and the activation's signs are flipped where the weight's
// are (vpsignb), so one vpmaddubsw + vpmaddwd per block gives 8 lanes of 32-bit sums; lane k
// holds elements 4k..4k+3 of every block times its scale. The lanes are then scaled in float
// exactly as llama.cpp's AVX2 build does (same lane contents, same fused multiply-adds, same
// horizontal sum), so the logits are the reference's bit for bit.
#include <math.h>
#include <stdlib.h>

#include "dot_lowbit.h"
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

// ---- decoding a super-block once for several activation rows ---------------------------------
// Block ib of 32 weights becomes u[ib] (unsigned magnitudes), s[ib] (where negative: the
// activation's signs are flipped by vpsignb; 0 zeroes them) and ls[ib] (16-bit scales of its
// two halves), so that for every activation row
//     lanes = sum_ib madd(maddubs(u[ib], sign(q8[ib], s[ib])), ls[ib])
// exactly as the reference's one-row kernel forms them.
typedef struct {
    __m256i u[8], s[8], ls[8];
    __m256i shift[8]; // IQ1_M: the +-1/8 shifts as +-1 bytes
    int shift_ls[8];  // IQ1_S: ls * the shift's sign, per block
    float d;          // the weight's super-block scale
} lowbit_sb;

INL void dec_iq2_xxs(const block_iq2_xxs *x, lowbit_sb *b) {
    b->d = gl_fp16_to_fp32(x->d);
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *w = (const uint8_t *)(x->qs + 4 * ib);
        const uint32_t aux = rd32(w + 4);
        b->u[ib] = grid4(gl_iq2xxs_grid[w[0]], gl_iq2xxs_grid[w[1]], gl_iq2xxs_grid[w[2]], gl_iq2xxs_grid[w[3]]);
        b->s[ib] = signs4(gl_iq_signs8(aux), gl_iq_signs8(aux >> 7), gl_iq_signs8(aux >> 14), gl_iq_signs8(aux >> 21));
        b->ls[ib] = _mm256_set1_epi16((short)(2 * (aux >> 28) + 1));
    }
}

INL void dec_iq2_xs(const block_iq2_xs *x, lowbit_sb *b) {
    b->d = gl_fp16_to_fp32(x->d);
    for (int ib = 0; ib < 8; ib++) {
        uint16_t v[4];
        for (int l = 0; l < 4; l++) v[l] = rd16(x->qs + 4 * ib + l);
        b->u[ib] = grid4(gl_iq2xs_grid[v[0] & 511], gl_iq2xs_grid[v[1] & 511], gl_iq2xs_grid[v[2] & 511],
                         gl_iq2xs_grid[v[3] & 511]);
        b->s[ib] = signs4(gl_iq_signs8(v[0] >> 9), gl_iq_signs8(v[1] >> 9), gl_iq_signs8(v[2] >> 9), gl_iq_signs8(v[3] >> 9));
        b->ls[ib] = scale16(2 * (x->scales[ib] & 0xf) + 1, 2 * (x->scales[ib] >> 4) + 1);
    }
}

INL void dec_iq2_s(const block_iq2_s *x, lowbit_sb *b) {
    b->d = gl_fp16_to_fp32(x->d);
    const uint8_t *qs = x->qs, *sg = x->qs + QK_K / 8;
    for (int ib = 0; ib < 8; ib++) {
        const int h = x->qh[ib];
        b->u[ib] = grid4(gl_iq2s_grid[qs[4 * ib] | (h & 3) << 8], gl_iq2s_grid[qs[4 * ib + 1] | (h >> 2 & 3) << 8],
                         gl_iq2s_grid[qs[4 * ib + 2] | (h >> 4 & 3) << 8], gl_iq2s_grid[qs[4 * ib + 3] | (h >> 6 & 3) << 8]);
        b->s[ib] = signs4(sg[4 * ib], sg[4 * ib + 1], sg[4 * ib + 2], sg[4 * ib + 3]);
        b->ls[ib] = scale16(2 * (x->scales[ib] & 0xf) + 1, 2 * (x->scales[ib] >> 4) + 1);
    }
}

// Eight 4-byte IQ3 grid entries.
INL __m256i grid8_u32(const uint32_t *grid, const int idx[8]) {
    return _mm256_set_epi32((int)grid[idx[7]], (int)grid[idx[6]], (int)grid[idx[5]], (int)grid[idx[4]],
                            (int)grid[idx[3]], (int)grid[idx[2]], (int)grid[idx[1]], (int)grid[idx[0]]);
}

INL void dec_iq3_xxs(const block_iq3_xxs *x, lowbit_sb *b) {
    b->d = gl_fp16_to_fp32(x->d);
    const uint8_t *qs = x->qs, *scales_signs = x->qs + QK_K / 4;
    for (int ib = 0; ib < 8; ib++) {
        int idx[8];
        for (int k = 0; k < 8; k++) idx[k] = qs[8 * ib + k];
        const uint32_t aux = rd32(scales_signs + 4 * ib);
        b->u[ib] = grid8_u32(gl_iq3xxs_grid, idx);
        b->s[ib] = signs4(gl_iq_signs8(aux), gl_iq_signs8(aux >> 7), gl_iq_signs8(aux >> 14), gl_iq_signs8(aux >> 21));
        b->ls[ib] = _mm256_set1_epi16((short)(2 * (aux >> 28) + 1));
    }
}

INL void dec_iq3_s(const block_iq3_s *x, lowbit_sb *b) {
    b->d = gl_fp16_to_fp32(x->d);
    for (int ib = 0; ib < 8; ib++) {
        int idx[8];
        for (int k = 0; k < 8; k++) idx[k] = x->qs[8 * ib + k] | (x->qh[ib] >> k & 1) << 8;
        const uint8_t *sb = x->signs + 4 * ib;
        b->u[ib] = grid8_u32(gl_iq3s_grid, idx);
        b->s[ib] = signs4(sb[0], sb[1], sb[2], sb[3]);
        b->ls[ib] = _mm256_set1_epi16((short)(2 * (x->scales[ib / 2] >> (4 * (ib % 2)) & 0xf) + 1));
    }
}

// IQ1 grids hold -1, 0, 1: magnitudes |g| with the signs of g itself.
INL void set_signed(lowbit_sb *b, int ib, __m256i g) {
    b->u[ib] = _mm256_sign_epi8(g, g);
    b->s[ib] = g;
}

INL void dec_iq1_s(const block_iq1_s *x, lowbit_sb *b) {
    b->d = gl_fp16_to_fp32(x->d);
    const uint8_t *qs = x->qs;
    for (int ib = 0; ib < 8; ib++) {
        const uint16_t qh = rd16(x->qh + ib);
        set_signed(b, ib, grid4(gl_iq1s_grid[qs[4 * ib] | (qh & 7) << 8], gl_iq1s_grid[qs[4 * ib + 1] | (qh >> 3 & 7) << 8],
                                gl_iq1s_grid[qs[4 * ib + 2] | (qh >> 6 & 7) << 8],
                                gl_iq1s_grid[qs[4 * ib + 3] | (qh >> 9 & 7) << 8]));
        const int ls = 2 * (qh >> 12 & 7) + 1;
        b->ls[ib] = _mm256_set1_epi16((short)ls);
        b->shift_ls[ib] = qh & 0x8000 ? -ls : ls;
    }
}

INL void dec_iq1_m(const block_iq1_m *x, lowbit_sb *b) {
    const long long plus = 0x0101010101010101ll, minus = -1ll;
    uint16_t sc[4];
    for (int k = 0; k < 4; k++) sc[k] = rd16(x->scales + 2 * k);
    b->d = gl_fp16_to_fp32((uint16_t)((sc[0] >> 12) | (sc[1] >> 8 & 0x00f0) | (sc[2] >> 4 & 0x0f00) | (sc[3] & 0xf000)));
    const uint8_t *qs = x->qs, *qh = x->qh;
    for (int ib = 0; ib < 8; ib++) {
        const int h0 = qh[2 * ib], h1 = qh[2 * ib + 1];
        set_signed(b, ib, grid4(gl_iq1s_grid[qs[4 * ib] | (h0 & 7) << 8], gl_iq1s_grid[qs[4 * ib + 1] | (h0 >> 4 & 7) << 8],
                                gl_iq1s_grid[qs[4 * ib + 2] | (h1 & 7) << 8], gl_iq1s_grid[qs[4 * ib + 3] | (h1 >> 4 & 7) << 8]));
        b->shift[ib] = _mm256_set_epi64x(h1 & 0x80 ? minus : plus, h1 & 0x08 ? minus : plus, h0 & 0x80 ? minus : plus,
                                         h0 & 0x08 ? minus : plus);
        const int bits = sc[ib / 2] >> (6 * (ib % 2));
        b->ls[ib] = scale16(2 * (bits & 7) + 1, 2 * (bits >> 3 & 7) + 1);
    }
}

// The 8 lanes of one activation row's super-block.
INL __m256i lanes(const lowbit_sb *b, const int8_t *q8) {
    __m256i sum = _mm256_setzero_si256();
    UNROLL for (int ib = 0; ib < 8; ib++) {
        const __m256i p = _mm256_maddubs_epi16(b->u[ib], _mm256_sign_epi8(load32(q8 + 32 * ib), b->s[ib]));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, b->ls[ib]));
    }
    return sum;
}

// IQ2 / IQ3 / IQ1: one weight row against nr activation rows (by bytes apart), s[j * bs].
// Per super-block acc += (d_w * d_y) * lanes; the result is c * hsum(acc) (c: the format's
// 1/8, 1/4 or 1), plus for IQ1 the shifts' share 1/8 * sum(d_w * d_y * shift sums).
#define LOWBIT_KERNEL(T, BLOCK, DECODE)                                                                    \
    void gl_dot_##T##_nr_avx2(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, int nr) {  \
        const BLOCK *x = (const BLOCK *)vx;                                                                   \
        __m256 acc[GL_DOT_NR], acc_m[GL_DOT_NR];                                                              \
        float acc_s[GL_DOT_NR] = {0};                                                                         \
        for (int j = 0; j < nr; j++) acc[j] = acc_m[j] = _mm256_setzero_ps();                                 \
        (void)acc_s, (void)acc_m;                                                                             \
        lowbit_sb b;                                                                                          \
        for (int i = 0; i < n / QK_K; i++) {                                                                  \
            DECODE(&x[i], &b);                                                                                \
            for (int j = 0; j < nr; j++) {                                                                    \
                const block_q8_K *y = (const block_q8_K *)((const char *)vy + (size_t)j * by) + i;           \
                const float d = y->d * b.d;                                                                   \
                acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes(&b, y->qs)), acc[j]);    \
                LOWBIT_EXTRA_##T                                                                              \
            }                                                                                                 \
        }                                                                                                     \
        for (int j = 0; j < nr; j++) s[(size_t)j * bs] = LOWBIT_RESULT_##T;                                  \
    }                                                                                                         \
    void gl_dot_##T##_avx2(int n, float *s, const void *x, const void *y) { gl_dot_##T##_nr_avx2(n, s, 0, x, y, 0, 1); }

#define LOWBIT_EXTRA_iq2_xxs
#define LOWBIT_EXTRA_iq2_xs
#define LOWBIT_EXTRA_iq2_s
#define LOWBIT_EXTRA_iq3_xxs
#define LOWBIT_EXTRA_iq3_s
#define LOWBIT_RESULT_iq2_xxs 0.125f * hsum8(acc[j])
#define LOWBIT_RESULT_iq2_xs 0.125f * hsum8(acc[j])
#define LOWBIT_RESULT_iq2_s 0.125f * hsum8(acc[j])
#define LOWBIT_RESULT_iq3_xxs 0.25f * hsum8(acc[j])
#define LOWBIT_RESULT_iq3_s hsum8(acc[j])
// IQ1_S: the shifts through the activation's 16-element sums (the reference's build contracts
// its d * sum + acc into one fma).
#define LOWBIT_EXTRA_iq1_s                                                                         \
    int sum_shift = 0;                                                                             \
    for (int ib = 0; ib < 8; ib++) sum_shift += (y->bsums[2 * ib] + y->bsums[2 * ib + 1]) * b.shift_ls[ib]; \
    acc_s[j] = fmaf(d, (float)sum_shift, acc_s[j]);
#define LOWBIT_RESULT_iq1_s hsum8(acc[j]) + 0.125f * acc_s[j]
// IQ1_M: the shifts in lanes of their own.
#define LOWBIT_EXTRA_iq1_m                                                                          \
    __m256i sum_shift = _mm256_setzero_si256();                                                     \
    for (int ib = 0; ib < 8; ib++) {                                                                \
        const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(b.shift[ib], b.shift[ib]),          \
                                               _mm256_sign_epi8(load32(y->qs + 32 * ib), b.shift[ib])); \
        sum_shift = _mm256_add_epi32(sum_shift, _mm256_madd_epi16(p, b.ls[ib]));                    \
    }                                                                                               \
    acc_m[j] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum_shift), acc_m[j]);
#define LOWBIT_RESULT_iq1_m hsum8(acc[j]) + 0.125f * hsum8(acc_m[j])

LOWBIT_KERNEL(iq2_xxs, block_iq2_xxs, dec_iq2_xxs)
LOWBIT_KERNEL(iq2_xs, block_iq2_xs, dec_iq2_xs)
LOWBIT_KERNEL(iq2_s, block_iq2_s, dec_iq2_s)
LOWBIT_KERNEL(iq3_xxs, block_iq3_xxs, dec_iq3_xxs)
LOWBIT_KERNEL(iq3_s, block_iq3_s, dec_iq3_s)
LOWBIT_KERNEL(iq1_s, block_iq1_s, dec_iq1_s)
LOWBIT_KERNEL(iq1_m, block_iq1_m, dec_iq1_m)

// ---- prompts: each weight row decoded once for every token ------------------------------------
// The batched kernel above decodes a weight super-block for every GL_DOT_NR activation rows; on
// a prompt the decoding then costs as much as the products. Here a row is decoded whole, once,
// into L1, and every token of the block is run over it, 8 at a time (their accumulators in
// registers). Each token's sums are formed exactly as in the one-row kernel.

enum lowbit_kind { K_PLAIN, K_IQ1_S, K_IQ1_M };

typedef void (*lowbit_decoder)(const void *row, int i, lowbit_sb *b);
#define DECODER(T, BLOCK) \
    static void decode_##T(const void *row, int i, lowbit_sb *b) { dec_##T((const BLOCK *)row + i, b); }
DECODER(iq2_xxs, block_iq2_xxs)
DECODER(iq2_xs, block_iq2_xs)
DECODER(iq2_s, block_iq2_s)
DECODER(iq3_xxs, block_iq3_xxs)
DECODER(iq3_s, block_iq3_s)
DECODER(iq1_s, block_iq1_s)
DECODER(iq1_m, block_iq1_m)

// Up to 8 tokens (y: their rows, by bytes apart) against one decoded weight row of nb
// super-blocks; out[j * bs] for token j.
INL void tokens_x_row(enum lowbit_kind kind, float c, const lowbit_sb *sb, int nb, const char *y, size_t by, int nt,
                      float *out, size_t bs) {
    __m256 acc[8], acc_m[8];
    float acc_s[8] = {0};
    for (int j = 0; j < nt; j++) acc[j] = acc_m[j] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const lowbit_sb *b = &sb[i];
        for (int j = 0; j < nt; j++) {
            const block_q8_K *q = (const block_q8_K *)(y + (size_t)j * by) + i;
            const float d = q->d * b->d;
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes(b, q->qs)), acc[j]);
            if (kind == K_IQ1_S) {
                int sum_shift = 0;
                for (int ib = 0; ib < 8; ib++) sum_shift += (q->bsums[2 * ib] + q->bsums[2 * ib + 1]) * b->shift_ls[ib];
                acc_s[j] = fmaf(d, (float)sum_shift, acc_s[j]);
            } else if (kind == K_IQ1_M) {
                __m256i sum_shift = _mm256_setzero_si256();
                for (int ib = 0; ib < 8; ib++) {
                    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(b->shift[ib], b->shift[ib]),
                                                           _mm256_sign_epi8(load32(q->qs + 32 * ib), b->shift[ib]));
                    sum_shift = _mm256_add_epi32(sum_shift, _mm256_madd_epi16(p, b->ls[ib]));
                }
                acc_m[j] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum_shift), acc_m[j]);
            }
        }
    }
    for (int j = 0; j < nt; j++)
        out[(size_t)j * bs] = kind == K_IQ1_S   ? hsum8(acc[j]) + 0.125f * acc_s[j]
                            : kind == K_IQ1_M ? hsum8(acc[j]) + 0.125f * hsum8(acc_m[j])
                                              : c * hsum8(acc[j]);
}

bool gl_lowbit_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y, size_t by,
                      const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs) {
    lowbit_decoder dec;
    enum lowbit_kind kind = K_PLAIN;
    float c = 1.0f;
    switch (type) {
    case GL_TYPE_IQ2_XXS: dec = decode_iq2_xxs, c = 0.125f; break;
    case GL_TYPE_IQ2_XS: dec = decode_iq2_xs, c = 0.125f; break;
    case GL_TYPE_IQ2_S: dec = decode_iq2_s, c = 0.125f; break;
    case GL_TYPE_IQ3_XXS: dec = decode_iq3_xxs, c = 0.25f; break;
    case GL_TYPE_IQ3_S: dec = decode_iq3_s; break;
    case GL_TYPE_IQ1_S: dec = decode_iq1_s, kind = K_IQ1_S; break;
    case GL_TYPE_IQ1_M: dec = decode_iq1_m, kind = K_IQ1_M; break;
    default: return false;
    }
    const int nb = n / QK_K;
    lowbit_sb *sb = aligned_alloc(32, sizeof(lowbit_sb) * (size_t)nb);
    if (!sb) return false;
    for (int r = 0; r < n_rows; r++) {
        const char *row = (const char *)w + (size_t)r * w_row;
        for (int i = 0; i < nb; i++) dec(row, i, &sb[i]);
        for (int t = 0; t < n_tok; t += 8) {
            const int nt = n_tok - t < 8 ? n_tok - t : 8;
            const char *yt = (const char *)y + (size_t)t * by;
            float *o = out + (size_t)t * bs + r;
            if (kind == K_IQ1_S) tokens_x_row(K_IQ1_S, c, sb, nb, yt, by, nt, o, bs);
            else if (kind == K_IQ1_M) tokens_x_row(K_IQ1_M, c, sb, nb, yt, by, nt, o, bs);
            else tokens_x_row(K_PLAIN, c, sb, nb, yt, by, nt, o, bs);
        }
    }
    free(sb);
    return true;
}

// ---- ternary: (q + 1) in 0..2 times y in 16-bit pair sums, minus the activation sums ------------

// Adds one activation row's super-block lanes (u: 8 vectors of q + 1) to acc as the reference does.
INL __m256 ternary_acc(const __m256i u[8], const block_q8_K *y, float dx, __m256 acc) {
    __m256i sum16 = _mm256_setzero_si256();
    for (int c = 0; c < 8; c++) sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(u[c], load32(y->qs + 32 * c)));
    sum16 = _mm256_sub_epi16(sum16, _mm256_loadu_si256((const __m256i *)y->bsums));
    const __m256i sum = _mm256_madd_epi16(sum16, _mm256_set1_epi16(1));
    // The reference writes mul + add; its build (-ffp-contract=fast) fuses them.
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(y->d * dx), acc);
}

INL float dec_tq2_0(const void *vx, int64_t i, __m256i u[8]) {
    const block_tq2_0 *x = (const block_tq2_0 *)vx + i;
    const __m256i three = _mm256_set1_epi8(3);
    for (int j = 0; j < 2; j++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(x->qs + 32 * j));
        for (int l = 0; l < 4; l++) u[4 * j + l] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * l), three);
    }
    return gl_fp16_to_fp32(x->d);
}

INL float dec_tq1_0(const void *vx, int64_t i, __m256i u[8]) {
    gl_lowbit_block b;
    gl_unpack_lowbit(GL_TYPE_TQ1_0, vx, i, &b);
    for (int c = 0; c < 8; c++) u[c] = _mm256_add_epi8(load32(b.q + 32 * c), _mm256_set1_epi8(1));
    return b.d;
}

#define TERNARY_KERNEL(T)                                                                                    \
    void gl_dot_##T##_nr_avx2(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, int nr) { \
        __m256 acc[GL_DOT_NR];                                                                               \
        __m256i u[8];                                                                                        \
        for (int j = 0; j < nr; j++) acc[j] = _mm256_setzero_ps();                                           \
        for (int i = 0; i < n / QK_K; i++) {                                                                 \
            const float dx = dec_##T(vx, i, u);                                                              \
            for (int j = 0; j < nr; j++)                                                                     \
                acc[j] = ternary_acc(u, (const block_q8_K *)((const char *)vy + (size_t)j * by) + i, dx, acc[j]); \
        }                                                                                                    \
        for (int j = 0; j < nr; j++) s[(size_t)j * bs] = hsum8(acc[j]);                                     \
    }                                                                                                        \
    void gl_dot_##T##_avx2(int n, float *s, const void *x, const void *y) { gl_dot_##T##_nr_avx2(n, s, 0, x, y, 0, 1); }

TERNARY_KERNEL(tq2_0)
TERNARY_KERNEL(tq1_0)

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
