// NEON kernels (aarch64). Same structure as the AVX2 file: each kernel is written once for a
// tile of nr activation rows, instantiated for nr = 1 (generation) and 1..GL_DOT_NR (batches).
// Integer block sums are exact (int8 x int8 products summed in int32, with SDOT when the CPU
// has it), so results match the scalar kernels within float rounding. Types without a NEON
// kernel here fall back to the scalar ones.
#include "dot.h"


#include <arm_neon.h>
#include <string.h>

#include "quants.h"

#define INL static inline __attribute__((always_inline))
#define FOR_J _Pragma("GCC unroll 4") for (int j = 0; j < nr; j++)

INL float h2f(gl_fp16 h) {
    __fp16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

// acc + sum over groups of 4 of a[i] * b[i] (lanes differ from SDOT's but the total is the same).
INL int32x4_t dot_s8(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    const int16x8_t p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    const int16x8_t p1 = vmull_high_s8(a, b);
    return vpadalq_s16(vpadalq_s16(acc, p0), p1);
#endif
}

// Sum of 32 products of a 32-block (two 16-byte halves).
INL int32_t dot32(int8x16_t w0, int8x16_t w1, const int8_t *y) {
    const int32x4_t p = dot_s8(dot_s8(vdupq_n_s32(0), w0, vld1q_s8(y)), w1, vld1q_s8(y + 16));
    return vaddvq_s32(p);
}

#define ROWS(T, name, vy, by)                                                            \
    const T *name[GL_DOT_NR];                                                            \
    FOR_J name[j] = (const T *)((const char *)(vy) + (size_t)j * (by));

// ---- float rows ---------------------------------------------------------------------------------

INL void f32_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const float *x = (const float *)vx;
    ROWS(float, y, vy, by)
    float32x4_t acc[GL_DOT_NR];
    FOR_J acc[j] = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t w = vld1q_f32(x + i);
        FOR_J acc[j] = vfmaq_f32(acc[j], w, vld1q_f32(y[j] + i));
    }
    FOR_J {
        float t = vaddvq_f32(acc[j]);
        for (int k = i; k < n; k++) t += x[k] * y[j][k];
        s[(size_t)j * bs] = t;
    }
}

INL float32x4_t f16_lo(const gl_fp16 *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

INL void f16_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const gl_fp16 *x = (const gl_fp16 *)vx;
    ROWS(gl_fp16, y, vy, by)
    float32x4_t acc[GL_DOT_NR];
    FOR_J acc[j] = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t w = f16_lo(x + i);
        FOR_J acc[j] = vfmaq_f32(acc[j], w, f16_lo(y[j] + i));
    }
    FOR_J {
        float t = vaddvq_f32(acc[j]);
        for (int k = i; k < n; k++) t += h2f(x[k]) * h2f(y[j][k]);
        s[(size_t)j * bs] = t;
    }
}

// ---- 32-blocks ------------------------------------------------------------------------------------

// The 32 nibbles of a block: elements 0..15 (low nibbles) and 16..31 (high nibbles).
INL void nibbles(const uint8_t *qs, uint8x16_t *lo, uint8x16_t *hi) {
    const uint8x16_t q = vld1q_u8(qs);
    *lo = vandq_u8(q, vdupq_n_u8(0x0f));
    *hi = vshrq_n_u8(q, 4);
}

// The fifth bits of a Q5 block as 0x10 bytes: elements 0..15 and 16..31.
INL void fifth_bits(const uint8_t *qh, uint8x16_t *lo, uint8x16_t *hi) {
    uint32_t h;
    memcpy(&h, qh, 4);
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t m = vld1q_u8(bit);
    const uint8x16_t v0 = vcombine_u8(vdup_n_u8((uint8_t)h), vdup_n_u8((uint8_t)(h >> 8)));
    const uint8x16_t v1 = vcombine_u8(vdup_n_u8((uint8_t)(h >> 16)), vdup_n_u8((uint8_t)(h >> 24)));
    *lo = vandq_u8(vtstq_u8(v0, m), vdupq_n_u8(0x10));
    *hi = vandq_u8(vtstq_u8(v1, m), vdupq_n_u8(0x10));
}

// One block of signed weights (w0: elements 0..15, w1: 16..31) against the tile's Q8_0 rows.
#define PAIRS_Q8_0(w0, w1, dw)                                                           \
    FOR_J acc[j] += (float)dot32(w0, w1, y[j][i].qs) * (dw * h2f(y[j][i].d));

INL void q4_0_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q4_0 *x = (const block_q4_0 *)vx;
    ROWS(block_q8_0, y, vy, by)
    float acc[GL_DOT_NR];
    FOR_J acc[j] = 0;
    for (int i = 0; i < n / QK4_0; i++) {
        uint8x16_t lo, hi;
        nibbles(x[i].qs, &lo, &hi);
        const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(lo), vdupq_n_s8(8));
        const int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(hi), vdupq_n_s8(8));
        const float dw = h2f(x[i].d);
        PAIRS_Q8_0(w0, w1, dw)
    }
    FOR_J s[(size_t)j * bs] = acc[j];
}

INL void q5_0_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q5_0 *x = (const block_q5_0 *)vx;
    ROWS(block_q8_0, y, vy, by)
    float acc[GL_DOT_NR];
    FOR_J acc[j] = 0;
    for (int i = 0; i < n / QK5_0; i++) {
        uint8x16_t lo, hi, b0, b1;
        nibbles(x[i].qs, &lo, &hi);
        fifth_bits(x[i].qh, &b0, &b1);
        const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, b0)), vdupq_n_s8(16));
        const int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(hi, b1)), vdupq_n_s8(16));
        const float dw = h2f(x[i].d);
        PAIRS_Q8_0(w0, w1, dw)
    }
    FOR_J s[(size_t)j * bs] = acc[j];
}

INL void q8_0_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q8_0 *x = (const block_q8_0 *)vx;
    ROWS(block_q8_0, y, vy, by)
    float acc[GL_DOT_NR];
    FOR_J acc[j] = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        const int8x16_t w0 = vld1q_s8(x[i].qs), w1 = vld1q_s8(x[i].qs + 16);
        const float dw = h2f(x[i].d);
        PAIRS_Q8_0(w0, w1, dw)
    }
    FOR_J s[(size_t)j * bs] = acc[j];
}

INL void iq4_nl_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_iq4_nl *x = (const block_iq4_nl *)vx;
    ROWS(block_q8_0, y, vy, by)
    const int8x16_t lut = vld1q_s8(gl_iq4nl_values);
    float acc[GL_DOT_NR];
    FOR_J acc[j] = 0;
    for (int i = 0; i < n / QK4_NL; i++) {
        uint8x16_t lo, hi;
        nibbles(x[i].qs, &lo, &hi);
        const int8x16_t w0 = vqtbl1q_s8(lut, lo), w1 = vqtbl1q_s8(lut, hi);
        const float dw = h2f(x[i].d);
        PAIRS_Q8_0(w0, w1, dw)
    }
    FOR_J s[(size_t)j * bs] = acc[j];
}

// Unsigned levels (< 32, so they are valid int8) against Q8_1 rows, plus min x s.
#define PAIRS_Q8_1(w0, w1, dw, mw)                                                       \
    FOR_J acc[j] += (float)dot32(w0, w1, y[j][i].qs) * (dw * h2f(y[j][i].d)) + mw * h2f(y[j][i].s);

INL void q4_1_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q4_1 *x = (const block_q4_1 *)vx;
    ROWS(block_q8_1, y, vy, by)
    float acc[GL_DOT_NR];
    FOR_J acc[j] = 0;
    for (int i = 0; i < n / QK4_1; i++) {
        uint8x16_t lo, hi;
        nibbles(x[i].qs, &lo, &hi);
        const int8x16_t w0 = vreinterpretq_s8_u8(lo), w1 = vreinterpretq_s8_u8(hi);
        const float dw = h2f(x[i].d), mw = h2f(x[i].m);
        PAIRS_Q8_1(w0, w1, dw, mw)
    }
    FOR_J s[(size_t)j * bs] = acc[j];
}

INL void q5_1_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q5_1 *x = (const block_q5_1 *)vx;
    ROWS(block_q8_1, y, vy, by)
    float acc[GL_DOT_NR];
    FOR_J acc[j] = 0;
    for (int i = 0; i < n / QK5_1; i++) {
        uint8x16_t lo, hi, b0, b1;
        nibbles(x[i].qs, &lo, &hi);
        fifth_bits(x[i].qh, &b0, &b1);
        const int8x16_t w0 = vreinterpretq_s8_u8(vorrq_u8(lo, b0));
        const int8x16_t w1 = vreinterpretq_s8_u8(vorrq_u8(hi, b1));
        const float dw = h2f(x[i].d), mw = h2f(x[i].m);
        PAIRS_Q8_1(w0, w1, dw, mw)
    }
    FOR_J s[(size_t)j * bs] = acc[j];
}

// ---- K-quants against Q8_K -----------------------------------------------------------------------

INL int32_t dot16(int8x16_t w, const int8_t *y) { return vaddvq_s32(dot_s8(vdupq_n_s32(0), w, vld1q_s8(y))); }

INL void q4_K_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q4_K *x = (const block_q4_K *)vx;
    ROWS(block_q8_K, y, vy, by)
    float sum[GL_DOT_NR];
    FOR_J sum[j] = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], m[8];
        gl_unpack_scales_k4(x[i].scales, sc, m);
        int32_t isum[GL_DOT_NR] = {0}, msum[GL_DOT_NR] = {0};
        for (int c = 0; c < 4; c++) {
            const uint8x16_t q0 = vld1q_u8(x[i].qs + 32 * c), q1 = vld1q_u8(x[i].qs + 32 * c + 16);
            const int8x16_t l0 = vreinterpretq_s8_u8(vandq_u8(q0, vdupq_n_u8(0x0f)));
            const int8x16_t l1 = vreinterpretq_s8_u8(vandq_u8(q1, vdupq_n_u8(0x0f)));
            const int8x16_t h0 = vreinterpretq_s8_u8(vshrq_n_u8(q0, 4));
            const int8x16_t h1 = vreinterpretq_s8_u8(vshrq_n_u8(q1, 4));
            FOR_J {
                const int8_t *yq = y[j][i].qs + 64 * c;
                isum[j] += sc[2 * c] * vaddvq_s32(dot_s8(dot_s8(vdupq_n_s32(0), l0, vld1q_s8(yq)), l1, vld1q_s8(yq + 16)));
                isum[j] += sc[2 * c + 1] * vaddvq_s32(dot_s8(dot_s8(vdupq_n_s32(0), h0, vld1q_s8(yq + 32)), h1, vld1q_s8(yq + 48)));
                msum[j] += m[2 * c] * (y[j][i].bsums[4 * c] + y[j][i].bsums[4 * c + 1]) +
                           m[2 * c + 1] * (y[j][i].bsums[4 * c + 2] + y[j][i].bsums[4 * c + 3]);
            }
        }
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        FOR_J sum[j] += y[j][i].d * d * isum[j] - y[j][i].d * dmin * msum[j];
    }
    FOR_J s[(size_t)j * bs] = sum[j];
}

INL void q6_K_k(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int nr) {
    const block_q6_K *x = (const block_q6_K *)vx;
    ROWS(block_q8_K, y, vy, by)
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m3 = vdupq_n_u8(3);
    float sum[GL_DOT_NR];
    FOR_J sum[j] = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int32_t isum[GL_DOT_NR] = {0};
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t *sc = x[i].scales + 8 * h;
            for (int half = 0; half < 2; half++) { // l in [16 * half, 16 * half + 16)
                const int o = 16 * half;
                const uint8x16_t a = vld1q_u8(ql + o), b = vld1q_u8(ql + 32 + o), hb = vld1q_u8(qh + o);
                // levels 0..63 minus 32, for elements l, l + 32, l + 64, l + 96 of this half
                int8x16_t q[4];
                q[0] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(a, m4), vshlq_n_u8(vandq_u8(hb, m3), 4))), vdupq_n_s8(32));
                q[1] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4))), vdupq_n_s8(32));
                q[2] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(a, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4))), vdupq_n_s8(32));
                q[3] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(b, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4))), vdupq_n_s8(32));
                FOR_J {
                    const int8_t *yq = y[j][i].qs + 128 * h + o;
                    for (int k = 0; k < 4; k++) isum[j] += sc[2 * k + half] * dot16(q[k], yq + 32 * k);
                }
            }
        }
        const float d = h2f(x[i].d);
        FOR_J sum[j] += y[j][i].d * d * isum[j];
    }
    FOR_J s[(size_t)j * bs] = sum[j];
}

// ---- instantiation ---------------------------------------------------------------------------------

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
KERNELS(q4_0)
KERNELS(q4_1)
KERNELS(q5_0)
KERNELS(q5_1)
KERNELS(q8_0)
KERNELS(iq4_nl)
KERNELS(q4_K)
KERNELS(q6_K)

// Activation quantizers stay the scalar reference ones (exact; not on the critical path).
const gl_kernel_set gl_kernels_neon = {
    .name = "neon",
#define K(T, name) [GL_TYPE_##T] = name##_1
    .vec_dot = {
        K(F32, f32), K(F16, f16), K(Q4_0, q4_0), K(Q4_1, q4_1), K(Q5_0, q5_0), K(Q5_1, q5_1),
        K(Q8_0, q8_0), K(IQ4_NL, iq4_nl), K(Q4_K, q4_K), K(Q6_K, q6_K),
    },
#undef K
#define K(T, name) [GL_TYPE_##T] = name##_nr
    .vec_dot_nr = {
        K(F32, f32), K(F16, f16), K(Q4_0, q4_0), K(Q4_1, q4_1), K(Q5_0, q5_0), K(Q5_1, q5_1),
        K(Q8_0, q8_0), K(IQ4_NL, iq4_nl), K(Q4_K, q4_K), K(Q6_K, q6_K),
    },
#undef K
};
