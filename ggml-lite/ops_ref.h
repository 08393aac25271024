// Internal: small scalar helpers every ISA's vector ops share (the C tails of the SIMD loops and
// the scalar set's whole loops), so each arch/ folder computes the same roundings.
#ifndef GGML_LITE_OPS_REF_H
#define GGML_LITE_OPS_REF_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ggml-lite.h"

static inline float gl_bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t gl_f_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

// e^x as the reference engine's 8-lane (AVX2) softmax and SiLU compute it: n = x*log2(e) rounded
// to an integer with the 1.5*2^23 trick, b = x - n*ln2 (ln2 in two parts), p = e^b - 1 from a
// degree-5 polynomial, result k + k*p with k = 2^n built in the exponent bits. Where |n| > 126
// the scale is split in two factors (results near overflow/underflow), and |n| > 192 saturates.
// Not the most accurate exp, but mirrored so the roundings after it (F16 softmax weights,
// 8-bit activations) fall the way the reference's do.
static inline float gl_exp_ref1(float x) {
    const float z = fmaf(x, 0x1.715476p+0f, 0x1.8p23f);
    const float n = z - 0x1.8p23f;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = gl_f_bits(z) << 23;
    const float k = gl_bits_f(e + gl_f_bits(1.0f));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126)) return fmaf(j, k, k);
    const uint32_t g = n <= 0 ? 0x82000000u : 0;
    const float s1 = gl_bits_f(g + 0x7f000000u), s2 = gl_bits_f(e - g);
    if (fabsf(n) > 192) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

// 8 lanes summed as the reference's 8-lane reductions do: halves, then (0+2)+(1+3) ...
static inline float gl_hsum8_pairs(const float *l) {
    const float t0 = l[0] + l[4], t1 = l[1] + l[5], t2 = l[2] + l[6], t3 = l[3] + l[7];
    return (t0 + t2) + (t1 + t3);
}
// ... or halves, then (0+1)+(2+3), as two hadds do.
static inline float gl_hsum8_hadd(const float *l) {
    const float t0 = l[0] + l[4], t1 = l[1] + l[5], t2 = l[2] + l[6], t3 = l[3] + l[7];
    return (t0 + t1) + (t2 + t3);
}

// Element i of a KV-cache row, F16 or F32.
static inline float gl_kv_at(const void *p, bool f16, size_t i) {
    return f16 ? gl_fp16_to_fp32(((const gl_fp16 *)p)[i]) : ((const float *)p)[i];
}

// The end of an RMS norm once the squares are summed (in double, in order): mean and scale in
// float, as the reference rounds them, then out = x * scale (* w).
static inline void gl_rmsnorm_apply(float *out, const float *x, const float *w, int n, double sum_sq, float eps) {
    const float mean = (float)(sum_sq / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
    } else {
        for (int i = 0; i < n; i++) out[i] = x[i] * scale;
    }
}

// Elements d0..hd-1 of a one-token attention sum over 32 slots, reduced as the reference does:
// r[l] = (slot l + slot l+16) + (slot l+8 + slot l+24), then the 8 r[l] as hadd adds them.
static inline void gl_att_reduce_1_ref(float *out, const float *acc, int hd, int d0) {
    for (int d = d0; d < hd; d++) {
        float r[8];
        for (int l = 0; l < 8; l++)
            r[l] = (acc[(size_t)l * hd + d] + acc[(size_t)(16 + l) * hd + d]) +
                   (acc[(size_t)(8 + l) * hd + d] + acc[(size_t)(24 + l) * hd + d]);
        out[d] = gl_hsum8_hadd(r);
    }
}

// Outputs j0..n_out-1 of a batch's B·t through B transposed (wt, rank x n_out, rank % 8 == 0):
// lane l of output j accumulates B[j][8s+l] * t[8s+l] over s, and the 8 lanes are summed as
// the reference's GEMM sums them.
static inline void gl_f32_lanes8_ref(const float *wt, int rank, int n_out, const float *tk, float *o, int j0) {
    for (int j = j0; j < n_out; j++) {
        float r[8] = {0};
        for (int k0 = 0; k0 < rank; k0 += 8)
            for (int l = 0; l < 8; l++) r[l] = fmaf(wt[(size_t)(k0 + l) * n_out + j], tk[k0 + l], r[l]);
        o[j] = gl_hsum8_pairs(r);
    }
}

#endif
