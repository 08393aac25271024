// The scalar set's loops of the fused attention kernel (gl_attn_ops in dot.h): the AVX2 set's
// lanes written out, so both round alike.
#include <math.h>
#include <string.h>

#include "dot.h"
#include "ops_ref.h"
#include "quants.h"

// Eight lanes added as two rounds of pairwise adds do: ((0+1)+(2+3))+((4+5)+(6+7)).
static inline float hsum8_tree(const float *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// Each score one fused chain over the elements, from 0.
static void dots_one(const float *q, const float *k, int n, int hd, float *s) {
    for (int j = 0; j < n; j++) {
        const float *kj = k + (size_t)j * hd;
        float x = 0;
        for (int d = 0; d < hd; d++) x = fmaf(q[d], kj[d], x);
        s[j] = x;
    }
}

static void dots(const float *q, int n_q, const float *k, int n, int hd, float *s, int ld, float *scratch) {
    (void)scratch;
    for (int i = 0; i < n_q; i++) dots_one(q + (size_t)i * hd, k, n, hd, s + (size_t)i * ld);
}

static void dots_q8_0(const char *q, size_t q_stride, int n_q, const char *k, size_t k_stride, int n, int hd,
                      float *s, int ld, float *scratch) {
    (void)scratch;
    for (int i = 0; i < n_q; i++) {
        const block_q8_0 *qb = (const block_q8_0 *)(q + (size_t)i * q_stride);
        for (int j = 0; j < n; j++) {
            const block_q8_0 *kb = (const block_q8_0 *)(k + (size_t)j * k_stride);
            float x = 0;
            for (int b = 0; b < hd / QK8_0; b++) {
                int32_t sum = 0;
                for (int e = 0; e < QK8_0; e++) sum += (int32_t)qb[b].qs[e] * kb[b].qs[e];
                x = fmaf((float)sum, gl_fp16_to_fp32(kb[b].d) * gl_fp16_to_fp32(qb[b].d), x);
            }
            s[(size_t)i * ld + j] = x;
        }
    }
}

static void accumulate(float *acc, int n_q, const float *v, int n, int hd, const float *w, const float *rescale,
                       int ld, const uint32_t *grows) {
    for (int i = 0; i < n_q; i++) {
        float *a = acc + (size_t)i * hd;
        for (int j = 0; j < n; j++) {
            if (grows[i] >> j & 1)
                for (int e = 0; e < hd; e++) a[e] *= rescale[(size_t)i * ld + j];
            for (int e = 0; e < hd; e++) a[e] = fmaf(v[(size_t)j * hd + e], w[(size_t)i * ld + j], a[e]);
        }
    }
}

// Element j goes to lane j % 8, the last group as if padded with zeros: a tile's weights past
// the keys a query sees are 0, so its sum is the same whoever else shares the tile (a decode of
// one token stops the tile at its own last key; a batch runs on to the batch's last).
static float sum(const float *x, int n) {
    float a[8] = {0};
    for (int j = 0; j < n; j++) a[j % 8] += x[j];
    return gl_hsum8_pairs(a);
}

static void q8_0_to_f32(const void *vx, float *y, int n) {
    const block_q8_0 *x = (const block_q8_0 *)vx;
    for (int b = 0; b < n / QK8_0; b++) {
        const float d = gl_fp16_to_fp32(x[b].d);
        for (int k = 0; k < QK8_0; k++) y[b * QK8_0 + k] = d * x[b].qs[k];
    }
}

const gl_attn_ops gl_attn_ops_scalar = {
    .dots = dots, .dots_q8_0 = dots_q8_0, .accumulate = accumulate, .sum = sum, .q8_0_to_f32 = q8_0_to_f32,
};
