// Quantizers of the low-bit formats that need no lattice search: the ternary types TQ1_0,
// TQ2_0 (x ~ d * {-1, 0, 1} with d the block's largest magnitude) and MXFP4 (a power-of-two
// scale and the nearest E2M1 value). The same roundings as the reference, hence the same bytes.
#include <math.h>
#include <string.h>

#include "quants.h"

static float amax_of(const float *x, int n) {
    float m = 0;
    for (int j = 0; j < n; j++) m = fabsf(x[j]) > m ? fabsf(x[j]) : m;
    return m;
}

// Ternary digit of x / d: 0, 1, 2 for -1, 0, 1.
static inline int ternary(float x, float id) { return (int)lroundf(x * id) + 1; }

// Base-3 number of up to 5 digits (first digit most significant) stored as a byte: the
// fraction q / 243 rounded up to /256, so the decoder's (byte * 3^n * 3) >> 8 reads digit n.
static inline uint8_t trits_to_byte(int q) { return (uint8_t)((q * 256 + 242) / 243); }

void gl_quant_row_tq1_0_ref(const float *x, void *vy, int64_t n) {
    block_tq1_0 *y = (block_tq1_0 *)vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        const float d = amax_of(x, QK_K), id = d ? 1.0f / d : 0.0f;
        y[i].d = gl_fp32_to_fp16(d);
        for (int m = 0; m < 32; m++) { // elements 0..159: digit k of byte m is element 32k + m
            int q = 0;
            for (int k = 0; k < 5; k++) q = 3 * q + ternary(x[32 * k + m], id);
            y[i].qs[m] = trits_to_byte(q);
        }
        for (int m = 0; m < 16; m++) { // 160..239
            int q = 0;
            for (int k = 0; k < 5; k++) q = 3 * q + ternary(x[160 + 16 * k + m], id);
            y[i].qs[32 + m] = trits_to_byte(q);
        }
        for (int m = 0; m < 4; m++) { // 240..255: 4 digits, the fifth zero
            int q = 0;
            for (int k = 0; k < 4; k++) q = 3 * q + ternary(x[240 + 4 * k + m], id);
            y[i].qh[m] = trits_to_byte(3 * q);
        }
    }
}

void gl_quant_row_tq2_0_ref(const float *x, void *vy, int64_t n) {
    block_tq2_0 *y = (block_tq2_0 *)vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        const float d = amax_of(x, QK_K), id = d ? 1.0f / d : 0.0f;
        y[i].d = gl_fp32_to_fp16(d);
        for (int j = 0; j < 2; j++)
            for (int m = 0; m < 32; m++) {
                int q = 0;
                for (int l = 0; l < 4; l++) q |= (ternary(x[128 * j + 32 * l + m], id) & 3) << (2 * l);
                y[i].qs[32 * j + m] = (uint8_t)q;
            }
    }
}

// Index of the E2M1 value nearest to x / d (the first of equals, as the reference).
static int nearest_mxfp4(float d, float x) {
    int best = 0;
    float best_err = fabsf(x - d * gl_mxfp4_values[0]);
    for (int j = 1; j < 16; j++) {
        const float err = fabsf(x - d * gl_mxfp4_values[j]);
        if (err < best_err) best_err = err, best = j;
    }
    return best;
}

void gl_quant_row_mxfp4_ref(const float *x, void *vy, int64_t n) {
    block_mxfp4 *y = (block_mxfp4 *)vy;
    for (int64_t i = 0; i < n / QK_MXFP4; i++, x += QK_MXFP4) {
        memset(&y[i], 0, sizeof y[i]);
        const float amax = amax_of(x, QK_MXFP4);
        if (!(amax > 0)) continue;
        // The largest E2M1 magnitude is 6 = 1.5 * 2^2: the exponent puts amax in the top binade.
        const uint8_t e = (uint8_t)(floorf(log2f(amax)) - 2 + 127);
        const float d = gl_e8m0_half(e);
        y[i].e = e;
        for (int j = 0; j < QK_MXFP4 / 2; j++)
            y[i].qs[j] = (uint8_t)(nearest_mxfp4(d, x[j]) | nearest_mxfp4(d, x[j + QK_MXFP4 / 2]) << 4);
    }
}
