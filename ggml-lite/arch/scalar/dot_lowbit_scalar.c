// Scalar reference dot kernels of the low-bit types: each super-block is unpacked to integers
// (gl_unpack_lowbit), multiplied with the Q8_K quants exactly in integers, and scaled once:
//     sum += d_w * d_y * sum_k(ls[k] * dot16(q, y)) / div
#include "dot_lowbit.h"
#include "quants.h"

static void dot_lowbit(enum gl_type type, int n, float *s, const void *vx, const void *vy) {
    const block_q8_K *y = (const block_q8_K *)vy;
    gl_lowbit_block u;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        gl_unpack_lowbit(type, vx, i, &u);
        int isum = 0;
        for (int k = 0; k < 16; k++) {
            int b = 0;
            for (int e = 16 * k; e < 16 * k + 16; e++) b += u.q[e] * y[i].qs[e];
            isum += u.ls[k] * b;
        }
        sum += u.d * y[i].d * isum / u.div;
    }
    *s = sum;
}

#define DOT(T, ID) \
    void gl_dot_##T##_scalar(int n, float *s, const void *x, const void *y) { dot_lowbit(GL_TYPE_##ID, n, s, x, y); }
DOT(iq2_xxs, IQ2_XXS)
DOT(iq2_xs, IQ2_XS)
DOT(iq2_s, IQ2_S)
DOT(iq3_xxs, IQ3_XXS)
DOT(iq3_s, IQ3_S)
DOT(iq1_s, IQ1_S)
DOT(iq1_m, IQ1_M)
DOT(tq1_0, TQ1_0)
DOT(tq2_0, TQ2_0)

void gl_dot_mxfp4_scalar(int n, float *s, const void *vx, const void *vy) {
    const block_mxfp4 *x = (const block_mxfp4 *)vx;
    const block_q8_0 *y = (const block_q8_0 *)vy;
    float sum = 0;
    for (int i = 0; i < n / QK_MXFP4; i++) {
        int isum = 0;
        for (int j = 0; j < QK_MXFP4 / 2; j++)
            isum += gl_mxfp4_values[x[i].qs[j] & 0xf] * y[i].qs[j] +
                    gl_mxfp4_values[x[i].qs[j] >> 4] * y[i].qs[j + QK_MXFP4 / 2];
        sum += gl_e8m0_half(x[i].e) * gl_fp16_to_fp32(y[i].d) * isum;
    }
    *s = sum;
}
