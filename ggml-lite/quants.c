// The float rows (F32, F16, BF16) and the 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q8_1 and IQ4_NL. Decoders are exact; the reference quantizers produce ggml's bytes.
//
// In a 32-block the nibble at byte j holds element j (low) and element j+16 (high); for the
// 5-bit formats the fifth bit of element k is bit k of the little-endian word qh.
#ifdef __clang__
// No fused multiply-adds: the same roundings as ggml's reference build, hence the same bytes.
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <string.h>

#include "ops.h"
#include "quants.h"


// (int)v for 0 <= v, clamped to [0, hi]: the truncating conversion of the legacy quantizers,
// without undefined behaviour for out-of-range or NaN input.
static inline int trunc_clamp(float v, int hi) {
    if (v >= (float)hi) return hi;
    return v > 0 ? (int)v : 0;
}

// roundf(v) as an int8 (half away from zero), clamped; NaN gives 0.
static inline int8_t round_i8(float v) {
    if (!(v == v)) return 0;
    if (v >= 127.f) return 127;
    if (v <= -128.f) return -128;
    return (int8_t)roundf(v);
}

static inline uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

// Largest magnitude of a block, with its sign.
static float signed_absmax(const float *x, int n) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
    }
    return max;
}

static void block_minmax(const float *x, int n, float *mn, float *mx) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

// Mean of x^2 over the row: the imatrix quantizers weight errors by qw * sqrt(sigma2 + x^2).
static float row_sigma2(const float *x, int64_t n) {
    float s = 0;
    for (int64_t j = 0; j < n; j++) s += x[j] * x[j];
    return s / n;
}

// ---- float rows ----------------------------------------------------------------------------

void gl_dequant_row_f32(const void *x, float *y, int64_t n) { memmove(y, x, (size_t)n * sizeof(float)); }
void gl_quant_row_f32_ref(const float *x, void *y, int64_t n) { memmove(y, x, (size_t)n * sizeof(float)); }

void gl_dequant_row_f16(const void *x, float *y, int64_t n) { gl_fp16_to_fp32_row((const gl_fp16 *)x, y, n); }
void gl_quant_row_f16_ref(const float *x, void *y, int64_t n) { gl_fp32_to_fp16_row(x, (gl_fp16 *)y, n); }

void gl_dequant_row_bf16(const void *vx, float *y, int64_t n) {
    const gl_bf16 *x = (const gl_bf16 *)vx;
    for (int64_t i = 0; i < n; i++) y[i] = gl_bf16_to_fp32(x[i]);
}

void gl_quant_row_bf16_ref(const float *x, void *vy, int64_t n) {
    gl_bf16 *y = (gl_bf16 *)vy;
    for (int64_t i = 0; i < n; i++) y[i] = gl_fp32_to_bf16(x[i]);
}

// ---- Q4_0: d * (q - 8) ------------------------------------------------------------------------

void gl_dequant_row_q4_0(const void *vx, float *y, int64_t n) {
    const block_q4_0 *x = (const block_q4_0 *)vx;
    for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
        const float d = gl_fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = ((x[i].qs[j] & 0xf) - 8) * d;
            y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void gl_quant_row_q4_0_ref(const float *x, void *vy, int64_t n) {
    block_q4_0 *y = (block_q4_0 *)vy;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        // The largest magnitude maps to -8, the end of the range with the extra level.
        const float d = signed_absmax(x, QK4_0) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = gl_fp32_to_fp16(d);
        for (int j = 0; j < 16; j++) {
            const int q0 = trunc_clamp(x[j] * id + 8.5f, 15);
            const int q1 = trunc_clamp(x[j + 16] * id + 8.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

void gl_quant_row_q4_0_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_q4_0 *y = (block_q4_0 *)vy;
    const float sigma2 = row_sigma2(x, n);
    float w[QK4_0];
    int8_t L[QK4_0];
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0, qw += QK4_0) {
        for (int j = 0; j < QK4_0; j++) w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
        y[i].d = gl_fp32_to_fp16(gl_make_qx_quants(QK4_0, 8, x, L, w));
        for (int j = 0; j < 16; j++) y[i].qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
    }
}

// ---- Q4_1: d * q + m ------------------------------------------------------------------------

void gl_dequant_row_q4_1(const void *vx, float *y, int64_t n) {
    const block_q4_1 *x = (const block_q4_1 *)vx;
    for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
        const float d = gl_fp16_to_fp32(x[i].d);
        const float m = gl_fp16_to_fp32(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (x[i].qs[j] & 0xf) * d + m;
            y[j + 16] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

void gl_quant_row_q4_1_ref(const float *x, void *vy, int64_t n) {
    block_q4_1 *y = (block_q4_1 *)vy;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float mn, mx;
        block_minmax(x, QK4_1, &mn, &mx);
        const float d = (mx - mn) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = gl_fp32_to_fp16(d);
        y[i].m = gl_fp32_to_fp16(mn);
        for (int j = 0; j < 16; j++) {
            const int q0 = trunc_clamp((x[j] - mn) * id + 0.5f, 15);
            const int q1 = trunc_clamp((x[j + 16] - mn) * id + 0.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

void gl_quant_row_q4_1_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_q4_1 *y = (block_q4_1 *)vy;
    const float sigma2 = row_sigma2(x, n);
    float w[QK4_1];
    uint8_t L[QK4_1], Laux[QK4_1];
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1, qw += QK4_1) {
        for (int j = 0; j < QK4_1; j++) w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
        float min;
        const float d = gl_make_qkx_quants(QK4_1, 15, x, w, L, &min, Laux, -0.9f, 0.05f, 36, false);
        y[i].d = gl_fp32_to_fp16(d);
        y[i].m = gl_fp32_to_fp16(-min);
        for (int j = 0; j < 16; j++) y[i].qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
    }
}

// ---- Q5_0: d * (q - 16) -------------------------------------------------------------------

// Packs 32 five-bit quants into nibbles + the high-bit word.
static void pack_q5(const uint8_t *L, uint8_t *qs, uint8_t *qh) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((L[j] & 0xf) | (L[j + 16] & 0xf) << 4);
        h |= (uint32_t)(L[j] >> 4 & 1) << j;
        h |= (uint32_t)(L[j + 16] >> 4 & 1) << (j + 16);
    }
    store_u32le(qh, h);
}

// The 32 five-bit quants of a block.
static void unpack_q5(const uint8_t *qs, const uint8_t *qh, int *q) {
    const uint32_t h = load_u32le(qh);
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0xf) | (int)(h >> j & 1) << 4;
        q[j + 16] = (qs[j] >> 4) | (int)(h >> (j + 16) & 1) << 4;
    }
}

void gl_dequant_row_q5_0(const void *vx, float *y, int64_t n) {
    const block_q5_0 *x = (const block_q5_0 *)vx;
    int q[QK5_0];
    for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
        const float d = gl_fp16_to_fp32(x[i].d);
        unpack_q5(x[i].qs, x[i].qh, q);
        for (int j = 0; j < QK5_0; j++) y[j] = (q[j] - 16) * d;
    }
}

void gl_quant_row_q5_0_ref(const float *x, void *vy, int64_t n) {
    block_q5_0 *y = (block_q5_0 *)vy;
    uint8_t L[QK5_0];
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = gl_fp32_to_fp16(d);
        for (int j = 0; j < QK5_0; j++) L[j] = (uint8_t)trunc_clamp(x[j] * id + 16.5f, 31);
        pack_q5(L, y[i].qs, y[i].qh);
    }
}

void gl_quant_row_q5_0_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_q5_0 *y = (block_q5_0 *)vy;
    const float sigma2 = row_sigma2(x, n);
    float w[QK5_0];
    int8_t L[QK5_0];
    uint8_t U[QK5_0];
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0, qw += QK5_0) {
        for (int j = 0; j < QK5_0; j++) w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
        y[i].d = gl_fp32_to_fp16(gl_make_qx_quants(QK5_0, 16, x, L, w));
        for (int j = 0; j < QK5_0; j++) U[j] = (uint8_t)L[j];
        pack_q5(U, y[i].qs, y[i].qh);
    }
}

// ---- Q5_1: d * q + m ------------------------------------------------------------------------

void gl_dequant_row_q5_1(const void *vx, float *y, int64_t n) {
    const block_q5_1 *x = (const block_q5_1 *)vx;
    int q[QK5_1];
    for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
        const float d = gl_fp16_to_fp32(x[i].d);
        const float m = gl_fp16_to_fp32(x[i].m);
        unpack_q5(x[i].qs, x[i].qh, q);
        for (int j = 0; j < QK5_1; j++) y[j] = q[j] * d + m;
    }
}

void gl_quant_row_q5_1_ref(const float *x, void *vy, int64_t n) {
    block_q5_1 *y = (block_q5_1 *)vy;
    uint8_t L[QK5_1];
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float mn, mx;
        block_minmax(x, QK5_1, &mn, &mx);
        const float d = (mx - mn) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = gl_fp32_to_fp16(d);
        y[i].m = gl_fp32_to_fp16(mn);
        for (int j = 0; j < QK5_1; j++) L[j] = (uint8_t)trunc_clamp((x[j] - mn) * id + 0.5f, 31);
        pack_q5(L, y[i].qs, y[i].qh);
    }
}

void gl_quant_row_q5_1_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_q5_1 *y = (block_q5_1 *)vy;
    const float sigma2 = row_sigma2(x, n);
    float w[QK5_1];
    uint8_t L[QK5_1], Laux[QK5_1];
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1, qw += QK5_1) {
        for (int j = 0; j < QK5_1; j++) w[j] = qw[j] * sqrtf(sigma2 + x[j] * x[j]);
        float min;
        const float d = gl_make_qkx_quants(QK5_1, 31, x, w, L, &min, Laux, -0.9f, 0.05f, 36, false);
        y[i].d = gl_fp32_to_fp16(d);
        y[i].m = gl_fp32_to_fp16(-min);
        pack_q5(L, y[i].qs, y[i].qh);
    }
}

// ---- Q8_0 / Q8_1: d * q ---------------------------------------------------------------------

// Symmetric 8-bit block: returns the (unrounded) scale.
static float quant_block_q8(const float *x, int8_t *qs) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) qs[j] = round_i8(x[j] * id);
    return d;
}

void gl_dequant_row_q8_0(const void *vx, float *y, int64_t n) {
    const block_q8_0 *x = (const block_q8_0 *)vx;
    for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
        const float d = gl_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = x[i].qs[j] * d;
    }
}

void gl_quant_row_q8_0_ref(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = (block_q8_0 *)vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0)
        y[i].d = gl_fp32_to_fp16(quant_block_q8(x, y[i].qs));
}

// Activations (the Q8_0/Q8_1 inputs of the dot kernels) are quantized as the reference's SIMD
// code does at run time: multiplier 127/amax, round half to even. Stored Q8_0 weights keep the
// reference's scalar quantizer above (1/d, round half away), as llama-quantize writes them.
static float quant_block_q8_act(const float *x, int8_t *qs) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < 32; j++) {
        const float v = nearbyintf(x[j] * id);
        qs[j] = v != v ? -128 : v > 127 ? 127 : v < -128 ? -128 : (int8_t)v;
    }
    return amax / 127;
}

void gl_quant_row_q8_0_act(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = (block_q8_0 *)vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0)
        y[i].d = gl_fp32_to_fp16(quant_block_q8_act(x, y[i].qs));
}

void gl_quant_row_q8_1_act(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = (block_q8_1 *)vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float d = quant_block_q8_act(x, y[i].qs);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) sum += y[i].qs[j];
        y[i].d = gl_fp32_to_fp16(d);
        y[i].s = gl_fp32_to_fp16(sum * d);
    }
}

void gl_dequant_row_q8_1(const void *vx, float *y, int64_t n) {
    const block_q8_1 *x = (const block_q8_1 *)vx;
    for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
        const float d = gl_fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_1; j++) y[j] = x[i].qs[j] * d;
    }
}

void gl_quant_row_q8_1_ref(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = (block_q8_1 *)vy;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        const float d = quant_block_q8(x, y[i].qs);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) sum += y[i].qs[j];
        y[i].d = gl_fp32_to_fp16(d);
        y[i].s = gl_fp32_to_fp16(sum * d); // the unrounded d, as ggml
    }
}

// ---- IQ4_NL: d * grid[q] ----------------------------------------------------------------------

void gl_dequant_row_iq4_nl(const void *vx, float *y, int64_t n) {
    const block_iq4_nl *x = (const block_iq4_nl *)vx;
    for (int64_t i = 0; i < n / QK4_NL; i++, y += QK4_NL) {
        const float d = gl_fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * gl_iq4nl_values[x[i].qs[j] & 0xf];
            y[j + 16] = d * gl_iq4nl_values[x[i].qs[j] >> 4];
        }
    }
}

// The grid search, as llama.cpp's quantizer uses even without an imatrix.
void gl_quant_row_iq4_nl_ref(const float *x, void *vy, int64_t n) {
    block_iq4_nl *y = (block_iq4_nl *)vy;
    for (int64_t i = 0; i < n / QK4_NL; i++)
        gl_quantize_iq4_superblock(QK4_NL, x + QK4_NL * i, &y[i].d, y[i].qs, NULL, NULL, NULL);
}

void gl_quant_row_iq4_nl_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_iq4_nl *y = (block_iq4_nl *)vy;
    for (int64_t i = 0; i < n / QK4_NL; i++)
        gl_quantize_iq4_superblock(QK4_NL, x + QK4_NL * i, &y[i].d, y[i].qs, NULL, NULL,
                                   qw + QK4_NL * i);
}
