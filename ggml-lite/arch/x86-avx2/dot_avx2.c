// AVX2/FMA/F16C kernels.
//
// Each kernel is written once for a tile of nr activation rows (nr a compile-time constant
// after inlining): the weight block is unpacked into registers once, then multiplied with every
// activation row of the tile. nr = 1 is the generation kernel, nr = GL_DOT_NR the prompt one.
//
// Integer core: weights as bytes w, activations as int8 y; _mm256_maddubs_epi16 multiplies
// unsigned by signed bytes and adds pairs into int16. Formats with an offset (Q4_0's -8, Q6_K's
// -32, ...) either use the unsigned levels and subtract offset * sum(y) (the K-quants, whose
// Q8_K activations carry 16-element sums), or make the weights signed and move their sign onto
// y (|w| * sign(y, w)). Both give the scalar kernels' exact integer block sums.
#include "dot.h"
#include "dot_lowbit.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels_avx2.h"
#include "quants.h"

#define INL static inline __attribute__((always_inline))
// Loops over the tile's rows are unrolled so the accumulators live in registers.
#define FOR_J _Pragma("GCC unroll 4") for (int j = 0; j < nr; j++)
// Loops inside a super-block are unrolled too: shuffle controls and shift counts become constants.
#define UNROLL _Pragma("GCC unroll 8")

INL float h2f(gl_fp16 h) { return _cvtsh_ss(h); }

INL float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// 32 nibbles of a 32-block: elements 0..15 from the low nibbles, 16..31 from the high ones.
// (Both halves load the 16 bytes; the high half shifts its 64-bit lanes right by 4 and the mask
// drops the bits that crossed into the byte below.)
INL __m256i unpack_nibbles(const uint8_t *qs) {
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0f));
}

// The 32 bits of qh as 32 bytes: 0xff where the bit is set.
INL __m256i bits_to_bytes(const uint8_t *qh) {
    uint32_t h;
    memcpy(&h, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                           0x0101010101010101ll, 0x0000000000000000ll);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    v = _mm256_and_si256(v, bit);
    return _mm256_cmpeq_epi8(v, bit);
}

// (unsigned u) x (signed y) bytes, summed in groups of 4: 8 int32 partial sums.
INL __m256i dot_u8_i8(__m256i u, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
}

// The same for signed w: |w| x (y with w's sign).
INL __m256i dot_i8_i8(__m256i aw, __m256i w, __m256i y) {
    return dot_u8_i8(aw, _mm256_sign_epi8(y, w));
}

#define ROWS(T, name, vy, by)                                                            \
    const T *name[GL_DOT_NR];                                                            \
    FOR_J name[j] = (const T *)((const char *)(vy) + (size_t)j * (by));

// The reference (llama.cpp's AVX2 build) sums some types in a different order for one token
// (ggml's vec_dot) than for a batch (tinyBLAS); we follow both. vec_dot passes bs = 0, the
// batched entry the output stride (>= 1).
#define ONE_TOKEN (bs == 0)

#define STORE(acc, extra)                                                                \
    FOR_J s[(size_t)j * bs] = hsum_ps(acc[j]) + (extra);

// ---- float rows ---------------------------------------------------------------------------------

INL __m256 load_f16(const gl_fp16 *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

// F32 and F16 rows (f16: 8 elements of x or y as floats from halves).
INL __m256 load8(const void *p, int i, const bool f16) {
    return f16 ? load_f16((const gl_fp16 *)p + i) : _mm256_loadu_ps((const float *)p + i);
}
INL float load1(const void *p, int i, const bool f16) {
    return f16 ? h2f(((const gl_fp16 *)p)[i]) : ((const float *)p)[i];
}

// The reference's orders. Batch (tinyBLAS): one 8-lane fma chain, hsum. One token (ggml's
// vec_dot): four 8-lane chains over steps of 32, (0+2)+(1+3), halves, hadd twice; the tail
// added in float (F32) or double (F16).
INL void float_rows(int n, float *s, size_t bs, const void *x, const void *vy, size_t by, const int nr,
                    const bool f16) {
    ROWS(char, y, vy, by)
    if (!ONE_TOKEN && n % 8 == 0) {
        FOR_J {
            __m256 a = _mm256_setzero_ps();
            for (int i = 0; i < n; i += 8) a = _mm256_fmadd_ps(load8(x, i, f16), load8(y[j], i, f16), a);
            s[(size_t)j * bs] = hsum_ps(a);
        }
        return;
    }
    FOR_J {
        const int np = n & ~31;
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int i = 0; i < np; i += 32)
            for (int m = 0; m < 4; m++) a[m] = _mm256_fmadd_ps(load8(x, i + 8 * m, f16), load8(y[j], i + 8 * m, f16), a[m]);
        a[0] = _mm256_add_ps(a[0], a[2]);
        a[1] = _mm256_add_ps(a[1], a[3]);
        a[0] = _mm256_add_ps(a[0], a[1]);
        const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(a[0]), _mm256_extractf128_ps(a[0], 1));
        const __m128 t1 = _mm_hadd_ps(t0, t0);
        const float head = _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
        if (f16) {
            double sum = head;
            for (int i = np; i < n; i++) sum += (double)(load1(x, i, true) * load1(y[j], i, true));
            s[(size_t)j * bs] = (float)sum;
        } else {
            float sum = head;
            for (int i = np; i < n; i++) sum += load1(x, i, false) * load1(y[j], i, false);
            s[(size_t)j * bs] = sum;
        }
    }
}

INL void f32_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    float_rows(n, s, bs, vx, vy, by, nr, false);
}

INL void f16_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    float_rows(n, s, bs, vx, vy, by, nr, true);
}

INL __m256 load_bf16(const gl_bf16 *p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

INL void bf16_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const gl_bf16 *x = (const gl_bf16 *)vx;
    ROWS(gl_bf16, y, vy, by)
    if (!ONE_TOKEN && n % 8 == 0) { // batch (tinyBLAS): one 8-lane fma chain, hsum
        FOR_J {
            __m256 a = _mm256_setzero_ps();
            for (int i = 0; i < n; i += 8) a = _mm256_fmadd_ps(load_bf16(x + i), load_bf16(y[j] + i), a);
            s[(size_t)j * bs] = hsum_ps(a);
        }
        return;
    }
    FOR_J {
        int i = 0;
        __m256 c[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (; i + 32 <= n; i += 32)
            for (int m = 0; m < 4; m++) c[m] = _mm256_add_ps(_mm256_mul_ps(load_bf16(x + i + 8 * m), load_bf16(y[j] + i + 8 * m)), c[m]);
        double sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(c[0], c[2]), _mm256_add_ps(c[1], c[3])));
        for (; i < n; i++) sum += (double)(gl_bf16_to_fp32(x[i]) * gl_bf16_to_fp32(y[j][i]));
        s[(size_t)j * bs] = (float)sum;
    }
}

// ---- 32-blocks ------------------------------------------------------------------------------------
// One function per format handles block i for the tile's rows. The sums follow llama.cpp's AVX2
// kernels exactly (one 8-lane accumulator per row, block after block; lane k holds elements
// 4k..4k+3), so logits match the reference bitwise, not just within rounding. `split` (IQ4_NL's
// one-token kernel) alternates even and odd blocks between two accumulators, as the reference does.

#define LOOP32(blk, YT, split)                                                           \
    ROWS(YT, y, vy, by)                                                                  \
    __m256 acc[GL_DOT_NR], acc2[GL_DOT_NR];                                              \
    float summ[GL_DOT_NR];                                                               \
    FOR_J { acc[j] = acc2[j] = _mm256_setzero_ps(); summ[j] = 0; }                       \
    const int nb = n / 32;                                                               \
    int i = 0;                                                                           \
    if (split)                                                                           \
        for (; i + 1 < nb; i += 2) {                                                     \
            blk(x, y, i, acc, summ, nr);                                                 \
            blk(x, y, i + 1, acc2, summ, nr);                                            \
        }                                                                                \
    for (; i < nb; i++) blk(x, y, i, acc, summ, nr);                                     \
    FOR_J s[(size_t)j * bs] = hsum_ps(split ? _mm256_add_ps(acc[j], acc2[j]) : acc[j]) + summ[j];

// Signed weights w against Q8_0 rows: |w| x (y with w's sign).
INL void q8_0_pairs(__m256i w, float dw, const block_q8_0 *const *y, int i, __m256 *acc, const int nr) {
    const __m256i aw = _mm256_sign_epi8(w, w);
    FOR_J {
        const __m256i yq = _mm256_loadu_si256((const __m256i *)y[j][i].qs);
        const __m256 p = _mm256_cvtepi32_ps(dot_i8_i8(aw, w, yq));
        acc[j] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * h2f(y[j][i].d)), acc[j]);
    }
}

// Unsigned levels u against Q8_1 rows, plus the min times Q8_1's d * sum(q).
INL void q8_1_pairs(__m256i u, float dw, float mw, const block_q8_1 *const *y, int i, __m256 *acc,
                    float *summ, const int nr) {
    FOR_J {
        const __m256i yq = _mm256_loadu_si256((const __m256i *)y[j][i].qs);
        const __m256 p = _mm256_cvtepi32_ps(dot_u8_i8(u, yq));
        acc[j] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * h2f(y[j][i].d)), acc[j]);
        summ[j] += mw * h2f(y[j][i].s);
    }
}

INL void blk_q4_0(const block_q4_0 *x, const block_q8_0 *const *y, int i, __m256 *acc, float *summ, const int nr) {
    (void)summ;
    const __m256i w = _mm256_sub_epi8(unpack_nibbles(x[i].qs), _mm256_set1_epi8(8));
    q8_0_pairs(w, h2f(x[i].d), y, i, acc, nr);
}

INL void blk_q5_0(const block_q5_0 *x, const block_q8_0 *const *y, int i, __m256 *acc, float *summ, const int nr) {
    (void)summ;
    // q - 16: the nibble where the fifth bit is set, the nibble - 16 (0xf0 | nibble) where not.
    const __m256i hi = _mm256_andnot_si256(bits_to_bytes(x[i].qh), _mm256_set1_epi8((char)0xf0));
    const __m256i w = _mm256_or_si256(unpack_nibbles(x[i].qs), hi);
    q8_0_pairs(w, h2f(x[i].d), y, i, acc, nr);
}

INL void blk_q8_0(const block_q8_0 *x, const block_q8_0 *const *y, int i, __m256 *acc, float *summ, const int nr) {
    (void)summ;
    q8_0_pairs(_mm256_loadu_si256((const __m256i *)x[i].qs), h2f(x[i].d), y, i, acc, nr);
}

INL __m256i iq4_lut(void) {
    const __m128i t = _mm_loadu_si128((const __m128i *)gl_iq4nl_values);
    return _mm256_set_m128i(t, t);
}

INL void blk_iq4_nl(const block_iq4_nl *x, const block_q8_0 *const *y, int i, __m256 *acc, float *summ, const int nr) {
    (void)summ;
    q8_0_pairs(_mm256_shuffle_epi8(iq4_lut(), unpack_nibbles(x[i].qs)), h2f(x[i].d), y, i, acc, nr);
}

INL void blk_q4_1(const block_q4_1 *x, const block_q8_1 *const *y, int i, __m256 *acc, float *summ, const int nr) {
    q8_1_pairs(unpack_nibbles(x[i].qs), h2f(x[i].d), h2f(x[i].m), y, i, acc, summ, nr);
}

INL void blk_q5_1(const block_q5_1 *x, const block_q8_1 *const *y, int i, __m256 *acc, float *summ, const int nr) {
    const __m256i hi = _mm256_and_si256(bits_to_bytes(x[i].qh), _mm256_set1_epi8(0x10));
    q8_1_pairs(_mm256_or_si256(unpack_nibbles(x[i].qs), hi), h2f(x[i].d), h2f(x[i].m), y, i, acc, summ, nr);
}

#define KERNEL32(T, YT, split)                                                           \
    INL void T##_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) { \
        const block_##T *x = (const block_##T *)vx;                                      \
        LOOP32(blk_##T, YT, split)                                                       \
    }

// Q4_0 in the order of the reference's repacked (Q4_0x8) kernels: per block the whole int32
// sum, then acc = fma(float(sum), d_w * d_y, acc), block after block.
INL int hsum_i32x8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}
INL void q4_0_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q4_0 *x = (const block_q4_0 *)vx;
    ROWS(block_q8_0, y, vy, by)
    const int nb = n / 32;
    FOR_J {
        float acc = 0;
        for (int i = 0; i < nb; i++) {
            const __m256i w = _mm256_sub_epi8(unpack_nibbles(x[i].qs), _mm256_set1_epi8(8));
            const __m256i yq = _mm256_loadu_si256((const __m256i *)y[j][i].qs);
            const int isum = hsum_i32x8(dot_i8_i8(_mm256_sign_epi8(w, w), w, yq));
            acc = fmaf((float)isum, h2f(x[i].d) * h2f(y[j][i].d), acc);
        }
        s[(size_t)j * bs] = acc;
    }
}
KERNEL32(q5_0, block_q8_0, false)
KERNEL32(q8_0, block_q8_0, false)
// The reference's one-token IQ4_NL kernel uses two accumulators, its batched one (tinyBLAS) one.
KERNEL32(iq4_nl, block_q8_0, ONE_TOKEN)
KERNEL32(q4_1, block_q8_1, false)
KERNEL32(q5_1, block_q8_1, false)

// ---- K-quants against Q8_K -----------------------------------------------------------------------
// Per super-block and activation row, an int32x8 accumulator collects
// sum(scale_sub * dot(u, y)) (minus the offset term through bsums); the float accumulator gets it
// times d_w * d_y once per super-block.

INL __m256i load_y(const block_q8_K *b, int off) { return _mm256_loadu_si256((const __m256i *)(b->qs + off)); }
INL __m256i load_bsums(const block_q8_K *b) { return _mm256_loadu_si256((const __m256i *)b->bsums); }

// Broadcast int16 element e (0..7) of each 128-bit lane to the whole lane.
INL __m256i bcast16(__m256i v, int e) {
    const __m256i ctl = _mm256_set1_epi16((short)(0x0100 * (2 * e + 1) + 2 * e));
    return _mm256_shuffle_epi8(v, ctl);
}

// int16 element a of the low lane and b of the high lane (both lanes of v hold the same 8).
INL __m256i bcast16_pair(__m256i v, int a, int b) {
    const __m256i ctl = _mm256_set_m128i(_mm_set1_epi16((short)(0x0100 * (2 * b + 1) + 2 * b)),
                                         _mm_set1_epi16((short)(0x0100 * (2 * a + 1) + 2 * a)));
    return _mm256_shuffle_epi8(v, ctl);
}

// Lane h (0 or 1) of v in both lanes.
INL __m256i lane_bcast(__m256i v, int h) {
    return _mm256_broadcastsi128_si256(h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v));
}

// Q3_K's 16 signed 6-bit scales (minus 32) from their 12-byte encoding, 4 at a time.
INL __m128i q3_scales(const uint8_t *s) {
    uint32_t a, b, c;
    memcpy(&a, s, 4);
    memcpy(&b, s + 4, 4);
    memcpy(&c, s + 8, 4);
    const uint32_t m4 = 0x0f0f0f0f, m30 = 0x30303030;
    const uint32_t s0 = (a & m4) | ((c << 4) & m30);        // scales 0..3
    const uint32_t s1 = (b & m4) | ((c << 2) & m30);        // 4..7
    const uint32_t s2 = ((a >> 4) & m4) | (c & m30);        // 8..11
    const uint32_t s3 = ((b >> 4) & m4) | ((c >> 2) & m30); // 12..15
    return _mm_sub_epi8(_mm_setr_epi32((int)s0, (int)s1, (int)s2, (int)s3), _mm_set1_epi8(32));
}

INL void q2_K_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q2_K *x = (const block_q2_K *)vx;
    ROWS(block_q8_K, y, vy, by)
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc[GL_DOT_NR];
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0f)));
        const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, _mm_set1_epi8(0x0f)));
        __m256i isum[GL_DOT_NR];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int h = 0; h < 2; h++) {
            const __m256i b = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            const __m256i sch = lane_bcast(sc16, h);
            UNROLL for (int k = 0; k < 4; k++) {
                const __m256i u = _mm256_and_si256(_mm256_srli_epi16(b, 2 * k), m3);
                const __m256i scv = bcast16_pair(sch, 2 * k, 2 * k + 1);
                FOR_J {
                    const __m256i p = _mm256_maddubs_epi16(u, load_y(y[j] + i, 128 * h + 32 * k));
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(p, scv));
                }
            }
        }
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        FOR_J {
            const __m256i msum = _mm256_madd_epi16(load_bsums(y[j] + i), mins);
            const float dy = y[j][i].d;
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(-dy * dmin), acc[j]);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_set1_ps(d * dy), acc[j]);
        }
    }
    STORE(acc, 0)
}

INL void q3_K_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q3_K *x = (const block_q3_K *)vx;
    ROWS(block_q8_K, y, vy, by)
    const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    __m256 acc[GL_DOT_NR];
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(q3_scales(x[i].scales));
        const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        __m256i isum[GL_DOT_NR];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int h = 0; h < 2; h++) {
            const __m256i b = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            const __m256i sch = lane_bcast(sc16, h);
            UNROLL for (int k = 0; k < 4; k++) {
                // u = low2 + 4 * hbit in 0..7; the value is u - 4.
                const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + k), m1);
                const __m256i u = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 2 * k), m3),
                                                  _mm256_slli_epi16(hb, 2));
                const __m256i scv = bcast16_pair(sch, 2 * k, 2 * k + 1);
                FOR_J {
                    const __m256i yv = load_y(y[j] + i, 128 * h + 32 * k);
                    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, yv), _mm256_maddubs_epi16(_mm256_set1_epi8(4), yv));
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(p, scv));
                }
            }
        }
        const float d = h2f(x[i].d);
        FOR_J {
            // minus 4 * sum(scale * bsum)
            const __m256i t = isum[j];
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_set1_ps(d * y[j][i].d), acc[j]);
        }
    }
    STORE(acc, 0)
}

// Q4_K / Q5_K: the 12-byte scale/min encoding unpacked 4 bytes at a time. Returns the 8 scales
// as int16 in both 128-bit lanes (for byte shuffles) and the 8 mins duplicated per 16-element
// half (to multiply Q8_K's bsums).
INL __m256i k4_scales(const uint8_t *scales, __m256i *mins16) {
    uint32_t a, b, c;
    memcpy(&a, scales, 4);
    memcpy(&b, scales + 4, 4);
    memcpy(&c, scales + 8, 4);
    const uint32_t sc_lo = a & 0x3f3f3f3f, m_lo = b & 0x3f3f3f3f;
    const uint32_t sc_hi = (c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030);
    const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0f) | ((b >> 2) & 0x30303030);
    const __m128i sc8 = _mm_cvtsi64_si128((long long)((uint64_t)sc_hi << 32 | sc_lo));
    const __m128i m8 = _mm_cvtsi64_si128((long long)((uint64_t)m_hi << 32 | m_lo));
    *mins16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
    return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8));
}

INL void q4_K_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q4_K *x = (const block_q4_K *)vx;
    ROWS(block_q8_K, y, vy, by)
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[GL_DOT_NR];
    __m128 accm[GL_DOT_NR];
    FOR_J accm[j] = _mm_setzero_ps();
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        __m256i mins16;
        const __m256i sc16 = k4_scales(x[i].scales, &mins16);
        __m256i isum[GL_DOT_NR];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int c = 0; c < 4; c++) {
            const __m256i b = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            const __m256i lo = _mm256_and_si256(b, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
            const __m256i s_lo = bcast16(sc16, 2 * c), s_hi = bcast16(sc16, 2 * c + 1);
            FOR_J {
                const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load_y(y[j] + i, 64 * c)), s_lo);
                const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load_y(y[j] + i, 64 * c + 32)), s_hi);
                isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(p_lo, p_hi));
            }
        }
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        FOR_J {
            // min * sum(y) per pair of sub-blocks: the reference's four-lane min accumulator
            const __m256i msum = _mm256_madd_epi16(load_bsums(y[j] + i), mins16);
            const __m128i prod = _mm_hadd_epi32(_mm256_castsi256_si128(msum), _mm256_extracti128_si256(msum, 1));
            const float dy = y[j][i].d;
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_set1_ps(d * dy), acc[j]);
            accm[j] = _mm_fmadd_ps(_mm_set1_ps(-dy * dmin), _mm_cvtepi32_ps(prod), accm[j]);
        }
    }
    FOR_J {
        __m128 m = _mm_add_ps(accm[j], _mm_movehl_ps(accm[j], accm[j]));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        s[(size_t)j * bs] = hsum_ps(acc[j]) + _mm_cvtss_f32(m);
    }
}

INL void q5_K_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q5_K *x = (const block_q5_K *)vx;
    ROWS(block_q8_K, y, vy, by)
    const __m256i m4 = _mm256_set1_epi8(0x0f), m1 = _mm256_set1_epi8(1);
    __m256 acc[GL_DOT_NR];
    float summs5[GL_DOT_NR];
    FOR_J summs5[j] = 0;
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        __m256i mins16;
        const __m256i sc16 = k4_scales(x[i].scales, &mins16);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)x[i].qh);
        __m256i isum[GL_DOT_NR];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int c = 0; c < 4; c++) {
            const __m256i b = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            const __m256i h_lo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), m1), 4);
            const __m256i h_hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), m1), 4);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(b, m4), h_lo);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b, 4), m4), h_hi);
            const __m256i s_lo = bcast16(sc16, 2 * c), s_hi = bcast16(sc16, 2 * c + 1);
            FOR_J {
                const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load_y(y[j] + i, 64 * c)), s_lo);
                const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load_y(y[j] + i, 64 * c + 32)), s_hi);
                isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(p_lo, p_hi));
            }
        }
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        FOR_J {
            const __m256i msum = _mm256_madd_epi16(load_bsums(y[j] + i), mins16);
            const int tot = hsum_i32x8(msum);
            const float dy = y[j][i].d;
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_set1_ps(d * dy), acc[j]);
            summs5[j] = fmaf(-dy * dmin, (float)tot, summs5[j]); // the reference's order: one fused step per super-block
        }
    }
    FOR_J s[(size_t)j * bs] = hsum_ps(acc[j]) + summs5[j];
}

INL void q6_K_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q6_K *x = (const block_q6_K *)vx;
    ROWS(block_q8_K, y, vy, by)
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3), m30 = _mm256_set1_epi8(0x30);
    __m256 acc[GL_DOT_NR];
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        __m256i isum[GL_DOT_NR];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int h = 0; h < 2; h++) {
            const __m256i q1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h));
            const __m256i q2 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            // The four 32-element runs of this half, as unsigned levels 0..63 (value - 32).
            __m256i u[4];
            u[0] = _mm256_or_si256(_mm256_and_si256(q1, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            u[1] = _mm256_or_si256(_mm256_and_si256(q2, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
            u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), m4), _mm256_and_si256(qh, m30));
            u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q2, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            const __m256i sch = lane_bcast(sc16, h);
            UNROLL for (int k = 0; k < 4; k++) {
                const __m256i scv = bcast16_pair(sch, 2 * k, 2 * k + 1);
                FOR_J {
                    const __m256i yv = load_y(y[j] + i, 128 * h + 32 * k);
                    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u[k], yv), _mm256_maddubs_epi16(_mm256_set1_epi8(32), yv));
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(p, scv));
                }
            }
        }
        const float d = h2f(x[i].d);
        FOR_J acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_set1_ps(d * y[j][i].d), acc[j]);
    }
    STORE(acc, 0)
}

INL void iq4_xs_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_iq4_xs *x = (const block_iq4_xs *)vx;
    ROWS(block_q8_K, y, vy, by)
    const __m256i lut = iq4_lut();
    __m256 acc[GL_DOT_NR];
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        __m256i isum[GL_DOT_NR];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int ib = 0; ib < 8; ib++) {
            const __m256i w = _mm256_shuffle_epi8(lut, unpack_nibbles(x[i].qs + 16 * ib));
            const __m256i aw = _mm256_sign_epi8(w, w);
            const __m256i scv = _mm256_set1_epi16((short)gl_iq4_xs_scale(&x[i], ib));
            FOR_J {
                const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(load_y(y[j] + i, 32 * ib), w));
                isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(p, scv));
            }
        }
        const float d = h2f(x[i].d);
        FOR_J acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_set1_ps(d * y[j][i].d), acc[j]);
    }
    STORE(acc, 0)
}

// ---- instantiation: one-row kernel and the 1..GL_DOT_NR-row dispatcher -------------------------------

#define KERNELS(name)                                                                     \
    static void name##_1(int n, float *s, const void *x, const void *y) {                 \
        name##_k(n, s, 0, x, y, 0, 1);                                                    \
    }                                                                                     \
    static void name##_nr(int n, float *s, size_t bs, const void *x, const void *y,       \
                          size_t by, int nr) {                                            \
        switch (nr) {                                                                     \
        case 4: name##_k(n, s, bs, x, y, by, 4); break;                                   \
        case 3: name##_k(n, s, bs, x, y, by, 3); break;                                   \
        case 2: name##_k(n, s, bs, x, y, by, 2); break;                                   \
        default: name##_k(n, s, bs, x, y, by, 1); break;                                  \
        }                                                                                 \
    }
_Static_assert(GL_DOT_NR == 4, "the dispatcher covers 1..4 rows");

KERNELS(f32)
KERNELS(f16)
KERNELS(bf16)
KERNELS(q4_0)
KERNELS(q4_1)
KERNELS(q5_0)
KERNELS(q5_1)
KERNELS(q8_0)
KERNELS(iq4_nl)
KERNELS(q2_K)
KERNELS(q3_K)
KERNELS(q4_K)
KERNELS(q5_K)
KERNELS(q6_K)
KERNELS(iq4_xs)

// ---- activation quantizers --------------------------------------------------------------------------

INL float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

// 32 ints (4 vectors of 8, values in int8 range) to 32 bytes in order.
INL __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i v = _mm256_packs_epi16(ab, cd);
    // packs works per 128-bit lane: restore element order.
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// One 32-block to int8 as the reference's SIMD quantizer: d = amax / 127, multiplier 127 / amax,
// round half to even (gl_quant_row_q8_0_act); returns d.
INL float q8_block(const float *x, int8_t *qs, __m256i *sum32) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    const float am = hmax_ps(amax), d = am / 127;
    const __m256 id = _mm256_set1_ps(am != 0.0f ? 127.0f / am : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (sum32) *sum32 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    _mm256_storeu_si256((__m256i *)qs, pack_i32_to_i8(q[0], q[1], q[2], q[3]));
    return d;
}

INL int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static void quant_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = (block_q8_0 *)vy;
    for (int64_t i = 0; i < n / QK8_0; i++) y[i].d = gl_fp32_to_fp16(q8_block(x + 32 * i, y[i].qs, NULL));
}

static void quant_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = (block_q8_1 *)vy;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        __m256i sum;
        const float d = q8_block(x + 32 * i, y[i].qs, &sum);
        y[i].d = gl_fp32_to_fp16(d);
        y[i].s = gl_fp32_to_fp16(hsum_epi32(sum) * d);
    }
}

// Q8_K: scale from the signed largest magnitude, iscale = -127 / max, round to nearest even
// (as the reference's nearest_int), and the 16-element sums.
static void quant_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = (block_q8_K *)vy;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < QK_K; k += 8) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
        const float am = hmax_ps(amax);
        if (!(am > 0) || am != am) { // zero block, or NaN somewhere: the reference decides
            gl_quant_row_q8_K_ref(x, &y[i], QK_K);
            continue;
        }
        // The first element reaching the largest magnitude gives the sign, as the reference.
        float max = 0;
        for (int k = 0; k < QK_K; k++)
            if (fabsf(x[k]) == am) { max = x[k]; break; }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        for (int k = 0; k < QK_K; k += 32) {
            __m256i q[4];
            for (int t = 0; t < 4; t++)
                q[t] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(is, _mm256_loadu_ps(x + k + 8 * t)),
                                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            const __m256i b = pack_i32_to_i8(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(y[i].qs + k), b);
            // bsums of the two 16-runs
            const __m256i w = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)), _mm256_set1_epi16(1));
            const __m256i w2 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(b, 1)), _mm256_set1_epi16(1));
            y[i].bsums[k / 16] = (int16_t)hsum_epi32(w);
            y[i].bsums[k / 16 + 1] = (int16_t)hsum_epi32(w2);
        }
        y[i].d = 1 / iscale;
    }
}

static void quant_f16(const float *x, void *vy, int64_t n) {
    gl_fp16 *y = (gl_fp16 *)vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = gl_fp32_to_fp16(x[i]);
}

const gl_kernel_set gl_kernels_avx2 = {
    .name = "avx2",
#define K(T, name) [GL_TYPE_##T] = name##_1
    .vec_dot = {
        K(F32, f32), K(F16, f16), K(BF16, bf16), K(Q4_0, q4_0), K(Q4_1, q4_1), K(Q5_0, q5_0),
        K(Q5_1, q5_1), K(Q8_0, q8_0), K(IQ4_NL, iq4_nl), K(Q2_K, q2_K), K(Q3_K, q3_K),
        K(Q4_K, q4_K), K(Q5_K, q5_K), K(Q6_K, q6_K), K(IQ4_XS, iq4_xs),
        GL_LOWBIT_ENTRIES(avx2),
    },
#undef K
#define K(T, name) [GL_TYPE_##T] = name##_nr
    .vec_dot_nr = {
        K(F32, f32), K(F16, f16), K(BF16, bf16), K(Q4_0, q4_0), K(Q4_1, q4_1), K(Q5_0, q5_0),
        K(Q5_1, q5_1), K(Q8_0, q8_0), K(IQ4_NL, iq4_nl), K(Q2_K, q2_K), K(Q3_K, q3_K),
        K(Q4_K, q4_K), K(Q5_K, q5_K), K(Q6_K, q6_K), K(IQ4_XS, iq4_xs),
        GL_LOWBIT_NR_ENTRIES(avx2),
    },
#undef K
    .from_float = {
        [GL_TYPE_Q8_0] = quant_q8_0, [GL_TYPE_Q8_1] = quant_q8_1, [GL_TYPE_Q8_K] = quant_q8_K,
        [GL_TYPE_F16] = quant_f16,
    },
    // the Q8_0 family's tiles read the activations' extras (matmul.c), the K-quants' their bsums
    .tile = {
        [GL_TYPE_Q4_0] = gl_tile8_matmul, [GL_TYPE_Q5_0] = gl_tile8_matmul, [GL_TYPE_Q8_0] = gl_tile8_matmul,
        [GL_TYPE_IQ4_NL] = gl_tile8_matmul, [GL_TYPE_Q4_K] = gl_tile8k_matmul, [GL_TYPE_Q5_K] = gl_tile8k_matmul,
        [GL_TYPE_Q6_K] = gl_tile8k_matmul, GL_LOWBIT_TILE_ENTRIES(gl_lowbit_matmul),
        [GL_TYPE_F32] = gl_tile_float_matmul, [GL_TYPE_F16] = gl_tile_float_matmul,
    },
    .gen = {[GL_TYPE_Q4_0] = gl_gen_rows, [GL_TYPE_Q5_0] = gl_gen_rows, [GL_TYPE_Q8_0] = gl_gen_rows,
            [GL_TYPE_IQ4_NL] = gl_gen_rows},
    .gen_n = {[GL_TYPE_Q4_0] = gl_gen_rows_n, [GL_TYPE_Q5_0] = gl_gen_rows_n, [GL_TYPE_Q8_0] = gl_gen_rows_n,
              [GL_TYPE_IQ4_NL] = gl_gen_rows_n},
    .gen_nx = {[GL_TYPE_Q5_0] = &gl_gen_nx_vnni, [GL_TYPE_Q8_0] = &gl_gen_nx_vnni, [GL_TYPE_IQ4_NL] = &gl_gen_nx_vnni},
    .ops = &gl_vec_ops_avx2,
    .attn = &gl_attn_ops_avx2,
    .repack = {[GL_TYPE_Q4_K] = &gl_repack_q4_K_avx2, [GL_TYPE_Q6_K] = &gl_repack_q6_K_avx2,
               [GL_TYPE_Q8_0] = &gl_repack_q8_0_avx2, [GL_TYPE_Q4_0] = &gl_repack_q4_0_avx2},
};
