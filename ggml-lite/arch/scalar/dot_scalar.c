// Scalar reference dot products: each weight block is unpacked to small integers, multiplied
// with the activation's int8 quants in exact integer arithmetic, and the block sums are scaled
// in float. SIMD kernels compute the same integer sums, so they differ only in float rounding.
#include <string.h>

#include "dot.h"
#include "dot_lowbit.h"
#include "quants.h"

// ---- float rows -------------------------------------------------------------------------------

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = (const float *)vx, *y = (const float *)vy;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)x[i] * y[i];
    *s = (float)sum;
}

static void dot_f16(int n, float *s, const void *vx, const void *vy) {
    const gl_fp16 *x = (const gl_fp16 *)vx, *y = (const gl_fp16 *)vy;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)gl_fp16_to_fp32(x[i]) * gl_fp16_to_fp32(y[i]);
    *s = (float)sum;
}

static void dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const gl_bf16 *x = (const gl_bf16 *)vx, *y = (const gl_bf16 *)vy;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)gl_bf16_to_fp32(x[i]) * gl_bf16_to_fp32(y[i]);
    *s = (float)sum;
}

// ---- 32-element blocks ------------------------------------------------------------------------

// Element j of a 4-bit block: low nibble of qs[j] for j < 16, high nibble of qs[j - 16] after.
static inline int nib(const uint8_t *qs, int j) { return j < 16 ? qs[j] & 0xf : qs[j - 16] >> 4; }

static inline int q5_val(const uint8_t *qs, const uint8_t *qh, int j) {
    const uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    return nib(qs, j) | (int)(h >> j & 1) << 4;
}

static void dot_q4_0(int n, float *s, const void *vx, const void *vy) {
    const block_q4_0 *x = (const block_q4_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += (nib(x[i].qs, j) - 8) * y[i].qs[j];
        sum += isum * (gl_fp16_to_fp32(x[i].d) * gl_fp16_to_fp32(y[i].d));
    }
    *s = sum;
}

static void dot_q4_1(int n, float *s, const void *vx, const void *vy) {
    const block_q4_1 *x = (const block_q4_1 *)vx;
    const block_q8_1 *y = (const block_q8_1 *)vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += nib(x[i].qs, j) * y[i].qs[j];
        sum += isum * (gl_fp16_to_fp32(x[i].d) * gl_fp16_to_fp32(y[i].d)) +
               gl_fp16_to_fp32(x[i].m) * gl_fp16_to_fp32(y[i].s);
    }
    *s = sum;
}

static void dot_q5_0(int n, float *s, const void *vx, const void *vy) {
    const block_q5_0 *x = (const block_q5_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += (q5_val(x[i].qs, x[i].qh, j) - 16) * y[i].qs[j];
        sum += isum * (gl_fp16_to_fp32(x[i].d) * gl_fp16_to_fp32(y[i].d));
    }
    *s = sum;
}

static void dot_q5_1(int n, float *s, const void *vx, const void *vy) {
    const block_q5_1 *x = (const block_q5_1 *)vx;
    const block_q8_1 *y = (const block_q8_1 *)vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_1; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += q5_val(x[i].qs, x[i].qh, j) * y[i].qs[j];
        sum += isum * (gl_fp16_to_fp32(x[i].d) * gl_fp16_to_fp32(y[i].d)) +
               gl_fp16_to_fp32(x[i].m) * gl_fp16_to_fp32(y[i].s);
    }
    *s = sum;
}

static void dot_q8_0(int n, float *s, const void *vx, const void *vy) {
    const block_q8_0 *x = (const block_q8_0 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += x[i].qs[j] * y[i].qs[j];
        sum += isum * (gl_fp16_to_fp32(x[i].d) * gl_fp16_to_fp32(y[i].d));
    }
    *s = sum;
}

static void dot_iq4_nl(int n, float *s, const void *vx, const void *vy) {
    const block_iq4_nl *x = (const block_iq4_nl *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    float sum = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        int isum = 0;
        for (int j = 0; j < 32; j++) isum += gl_iq4nl_values[nib(x[i].qs, j)] * y[i].qs[j];
        sum += isum * (gl_fp16_to_fp32(x[i].d) * gl_fp16_to_fp32(y[i].d));
    }
    *s = sum;
}

// ---- K-quants against Q8_K ----------------------------------------------------------------------
// Each super-block is unpacked to q[256] (the integer levels, offsets applied where the format
// has a fixed one) and integer scales per sub-block; then
//   sum += d_w * d_y * sum_sub(scale * dot(q, y)) - dmin_w * d_y * sum_sub(min * ysum)

static inline int dot16(const int8_t *q, const int8_t *y) {
    int s = 0;
    for (int l = 0; l < 16; l++) s += q[l] * y[l];
    return s;
}

static void dot_q2_K(int n, float *s, const void *vx, const void *vy) {
    const block_q2_K *x = (const block_q2_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    int8_t q[QK_K];
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        for (int e = 0; e < QK_K; e++) q[e] = (int8_t)(x[i].qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32)) & 3);
        int isum = 0, msum = 0;
        for (int j = 0; j < 16; j++) {
            isum += (x[i].scales[j] & 0xf) * dot16(q + 16 * j, y[i].qs + 16 * j);
            msum += (x[i].scales[j] >> 4) * y[i].bsums[j];
        }
        sum += y[i].d * gl_fp16_to_fp32(x[i].d) * isum - y[i].d * gl_fp16_to_fp32(x[i].dmin) * msum;
    }
    *s = sum;
}

static void dot_q3_K(int n, float *s, const void *vx, const void *vy) {
    const block_q3_K *x = (const block_q3_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    int8_t q[QK_K], sc[16];
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        for (int e = 0; e < QK_K; e++) {
            const int low = x[i].qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32)) & 3;
            const int high = x[i].hmask[e % 32] >> (e / 32) & 1;
            q[e] = (int8_t)(low - (high ? 0 : 4));
        }
        gl_unpack_scales_q3(x[i].scales, sc);
        int isum = 0;
        for (int j = 0; j < 16; j++) isum += sc[j] * dot16(q + 16 * j, y[i].qs + 16 * j);
        sum += y[i].d * gl_fp16_to_fp32(x[i].d) * isum;
    }
    *s = sum;
}

// Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scale and min.
static float k4_block_sum(const int8_t *q, const uint8_t *scales, float d, float dmin,
                          const block_q8_K *y) {
    uint8_t sc[8], m[8];
    gl_unpack_scales_k4(scales, sc, m);
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; j++) {
        isum += sc[j] * (dot16(q + 32 * j, y->qs + 32 * j) + dot16(q + 32 * j + 16, y->qs + 32 * j + 16));
        msum += m[j] * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
    }
    return y->d * d * isum - y->d * dmin * msum;
}

static void dot_q4_K(int n, float *s, const void *vx, const void *vy) {
    const block_q4_K *x = (const block_q4_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    int8_t q[QK_K];
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                q[64 * c + l] = (int8_t)(x[i].qs[32 * c + l] & 0xf);
                q[64 * c + 32 + l] = (int8_t)(x[i].qs[32 * c + l] >> 4);
            }
        sum += k4_block_sum(q, x[i].scales, gl_fp16_to_fp32(x[i].d), gl_fp16_to_fp32(x[i].dmin), &y[i]);
    }
    *s = sum;
}

static void dot_q5_K(int n, float *s, const void *vx, const void *vy) {
    const block_q5_K *x = (const block_q5_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    int8_t q[QK_K];
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                const uint8_t ql = x[i].qs[32 * c + l], qh = x[i].qh[l];
                q[64 * c + l] = (int8_t)((ql & 0xf) | (qh >> (2 * c) & 1) << 4);
                q[64 * c + 32 + l] = (int8_t)((ql >> 4) | (qh >> (2 * c + 1) & 1) << 4);
            }
        sum += k4_block_sum(q, x[i].scales, gl_fp16_to_fp32(x[i].d), gl_fp16_to_fp32(x[i].dmin), &y[i]);
    }
    *s = sum;
}

static void dot_q6_K(int n, float *s, const void *vx, const void *vy) {
    const block_q6_K *x = (const block_q6_K *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    int8_t q[QK_K];
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            int8_t *p = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                p[l] = (int8_t)(((ql[l] & 0xf) | (qh[l] & 3) << 4) - 32);
                p[l + 32] = (int8_t)(((ql[l + 32] & 0xf) | (qh[l] >> 2 & 3) << 4) - 32);
                p[l + 64] = (int8_t)(((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32);
                p[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32);
            }
        }
        int isum = 0;
        for (int j = 0; j < 16; j++) isum += x[i].scales[j] * dot16(q + 16 * j, y[i].qs + 16 * j);
        sum += y[i].d * gl_fp16_to_fp32(x[i].d) * isum;
    }
    *s = sum;
}

static void dot_iq4_xs(int n, float *s, const void *vx, const void *vy) {
    const block_iq4_xs *x = (const block_iq4_xs *)vx;
    const block_q8_K *y = (const block_q8_K *)vy;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int isum = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *qs = x[i].qs + 16 * ib;
            const int8_t *yq = y[i].qs + 32 * ib;
            int b = 0;
            for (int j = 0; j < 32; j++) b += gl_iq4nl_values[nib(qs, j)] * yq[j];
            isum += gl_iq4_xs_scale(&x[i], ib) * b;
        }
        sum += y[i].d * gl_fp16_to_fp32(x[i].d) * isum;
    }
    *s = sum;
}

// ---- the table ---------------------------------------------------------------------------------

const gl_kernel_set gl_kernels_scalar = {
    .name = "scalar",
    .ops = &gl_vec_ops_scalar,
    .attn = &gl_attn_ops_scalar,
    .vec_dot = {
        [GL_TYPE_F32] = dot_f32, [GL_TYPE_F16] = dot_f16, [GL_TYPE_BF16] = dot_bf16,
        [GL_TYPE_Q4_0] = dot_q4_0, [GL_TYPE_Q4_1] = dot_q4_1, [GL_TYPE_Q5_0] = dot_q5_0,
        [GL_TYPE_Q5_1] = dot_q5_1, [GL_TYPE_Q8_0] = dot_q8_0, [GL_TYPE_IQ4_NL] = dot_iq4_nl,
        [GL_TYPE_Q2_K] = dot_q2_K, [GL_TYPE_Q3_K] = dot_q3_K, [GL_TYPE_Q4_K] = dot_q4_K,
        [GL_TYPE_Q5_K] = dot_q5_K, [GL_TYPE_Q6_K] = dot_q6_K, [GL_TYPE_IQ4_XS] = dot_iq4_xs,
        GL_LOWBIT_ENTRIES(scalar),
    },
    .from_float = {
        [GL_TYPE_F32] = gl_quant_row_f32_ref, [GL_TYPE_F16] = gl_quant_row_f16_ref,
        [GL_TYPE_BF16] = gl_quant_row_bf16_ref, [GL_TYPE_Q8_0] = gl_quant_row_q8_0_act,
        [GL_TYPE_Q8_1] = gl_quant_row_q8_1_act, [GL_TYPE_Q8_K] = gl_quant_row_q8_K_ref,
    },
};
