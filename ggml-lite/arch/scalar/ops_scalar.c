// The scalar set's vector ops: plain C loops, in the same summation orders as the SIMD sets
// (the reference engine's 8-lane groupings), so every set rounds alike where it matters.
#include <math.h>
#include <string.h>

#include "dot.h"
#include "ops_ref.h"

static void vec_scale(float *x, float s, int n);

static double exp_sum8(float *y, const float *x, float sub, int n, int n_row) {
    double sum = 0;
    int i = 0;
    for (; i + 8 <= n_row && i < n; i += 8) {
        float v[8];
        for (int l = 0; l < 8; l++) v[l] = i + l < n ? x[i + l] - sub : -INFINITY;
        for (int l = 0; l < 8; l++) v[l] = gl_exp_ref1(v[l]);
        memcpy(y + i, v, (size_t)(n - i < 8 ? n - i : 8) * sizeof(float));
        sum += gl_hsum8_pairs(v);
    }
    for (; i < n; i++) {
        y[i] = expf(x[i] - sub);
        sum += y[i];
    }
    return sum;
}

static void exp_row(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] = gl_exp_ref1(x[i]);
}

// ---- norms and activations ----------------------------------------------------------------

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    if (n <= 0) return;
    // Rounded as the reference engine rounds: each square in float, summed in order in
    // double, the mean and the scale in float. On models that re-quantize activations to
    // 8 bits every layer, a last-bit difference here flips roundings that grow layer by layer.
    double sum = 0.0;
    int i = 0;
    for (; i < n; i++) sum += x[i] * x[i];
    gl_rmsnorm_apply(out, x, w, n, sum, eps);
}

static void softmax(float *x, int n) {
    if (n <= 0) return;
    float max = -INFINITY;
    int i = 0;
    for (; i < n; i++) if (x[i] > max) max = x[i];
    if (max == -INFINITY) { // nothing allowed: no distribution, zeros rather than NaN
        memset(x, 0, (size_t)n * sizeof *x);
        return;
    }
    double sum = 0.0;
    i = 0;
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    vec_scale(x, (float)(1.0 / sum), n);
}

// SiLU as the reference computes it: x / (1 + e^-x) with its 8-lane exp over whole groups of
// 8, the C library's expf for the n % 8 left over.
static void silu(float *out, const float *x, int n) {
    const int nv = n & ~7;
    int i = 0;
    for (; i < nv; i++) out[i] = x[i] / (1.0f + gl_exp_ref1(-x[i]));
    for (; i < n; i++) out[i] = x[i] / (1.0f + expf(-x[i]));
}

static void swiglu(float *out, const float *gate, const float *up, int n) {
    const int nv = n & ~7;
    int i = 0;
    for (; i < nv; i++) out[i] = gate[i] / (1.0f + gl_exp_ref1(-gate[i])) * up[i];
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

// ---- vector arithmetic --------------------------------------------------------------------

static void vec_add(float *out, const float *a, const float *b, int n) {
    int i = 0;
    for (; i < n; i++) out[i] = a[i] + b[i];
}

static void vec_scale(float *x, float s, int n) {
    int i = 0;
    for (; i < n; i++) x[i] *= s;
}

static void vec_mad(float *y, const float *x, float a, int n) {
    int i = 0;
    for (; i < n; i++) y[i] += a * x[i];
}

static float vec_dot_f32(const float *a, const float *b, int n) {
    float sum = 0.0f;
    int i = 0;
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

// ---- F16 rows -----------------------------------------------------------------------------

static void fp32_to_fp16_row(const float *x, gl_fp16 *y, int64_t n) {
    int64_t i = 0;
    for (; i < n; i++) y[i] = gl_fp32_to_fp16(x[i]);
}

static void fp16_to_fp32_row(const gl_fp16 *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i < n; i++) y[i] = gl_fp16_to_fp32(x[i]);
}

static float vec_dot_f16_f32(const gl_fp16 *x, const float *y, int n) {
    float sum = 0.0f;
    int i = 0;
    for (; i < n; i++) sum += gl_fp16_to_fp32(x[i]) * y[i];
    return sum;
}

static void vec_mad_f16(float *y, const gl_fp16 *x, float a, int n) {
    int i = 0;
    for (; i < n; i++) y[i] += a * gl_fp16_to_fp32(x[i]);
}


// ---- the reference's orders for attention and F32 adapters ------------------------------

// dot(k, q) over n elements. batch: one 8-lane accumulator; else four over steps of 32 and
// the rest added in double.
static float att_dot(const void *k, bool f16, const float *q, int n, bool batch) {
    float a[4][8] = {{0}};
    int i = 0;
    if (batch && n % 8 == 0) {
        for (; i < n; i++) a[0][i % 8] = fmaf(gl_kv_at(k, f16, i), q[i], a[0][i % 8]);
        return gl_hsum8_pairs(a[0]);
    }
    const int np = n & ~31;
    for (; i < np; i++) a[(i / 8) % 4][i % 8] = fmaf(gl_kv_at(k, f16, i), q[i], a[(i / 8) % 4][i % 8]);
    double sum = 0;
    if (np) {
        float r[8];
        for (int l = 0; l < 8; l++) r[l] = (a[0][l] + a[2][l]) + (a[1][l] + a[3][l]);
        sum = gl_hsum8_hadd(r);
    }
    for (i = np; i < n; i++) sum += (double)(gl_kv_at(k, f16, i) * q[i]);
    return (float)sum;
}

// acc[slot][0..n) += w * v[0..n)
static void att_mad(float *acc, const void *v, bool f16, float w, int n) {
    for (int i = 0; i < n; i++) acc[i] = fmaf(w, gl_kv_at(v, f16, i), acc[i]);
}

// One token's weighted values: slot l (of 32) sums, in key order, the keys j with j % 32 == l
// (what att_mad into slot j % 32 gives, key after key), each slot's row kept in registers.
static void att_values_1(float *acc, const char *v, size_t v_row, bool f16, const float *w, int n_keys, int hd) {
    memset(acc, 0, (size_t)32 * hd * sizeof(float));
    for (int j = 0; j < n_keys; j++) {
        const char *vj = v + (size_t)j * v_row;
        float *a = acc + (size_t)(j % 32) * hd;
        for (int d = 0; d < hd; d++) a[d] = fmaf(w[j], gl_kv_at(vj, f16, (size_t)d), a[d]);
    }
}

// out[d] = the 32 slots of element d reduced as the reference's one-token sum (ops_ref.h).
static void att_reduce_1(float *out, const float *acc, int hd) { gl_att_reduce_1_ref(out, acc, hd, 0); }

// F32 adapters are multiplied in the reference's F32 order, so that a model whose activations
// are re-quantized every layer sees the same roundings. One token (and each row of an exact
// batch): its F32 dot, four 8-lane accumulators over steps of 32, reduced (0+2)+(1+3), lanes
// halved and added pairwise as hadd does, the rest added to the float sum (products rounded
// first, not fused). A batch: its GEMM,
// one 8-lane accumulator over steps of 8 (n % 8 == 0, else as one token), halves then
// (0+2)+(1+3).
static float f32_dot_tok(const float *w, const float *x, int n) {
    const int np = n & ~31;
    float sum = 0;
    if (np) {
        float r[8];
        float a[4][8] = {{0}};
        for (int i = 0; i < np; i++) a[(i / 8) % 4][i % 8] = fmaf(w[i], x[i], a[(i / 8) % 4][i % 8]);
        for (int l = 0; l < 8; l++) r[l] = (a[0][l] + a[2][l]) + (a[1][l] + a[3][l]);
        sum = gl_hsum8_hadd(r);
    }
    for (int i = np; i < n; i++) sum += w[i] * x[i]; // product rounded, then added
    return sum;
}

static float f32_dot_batch(const float *w, const float *x, int n) {
    if (n % 8) return f32_dot_tok(w, x, n);
    float r[8];
    for (int l = 0; l < 8; l++) r[l] = 0;
    for (int i = 0; i < n; i++) r[i % 8] = fmaf(w[i], x[i], r[i % 8]);
    return gl_hsum8_pairs(r);
}

// A batch's B·t for an F32 B of rank columns (rank % 8 == 0), through B transposed (ops_ref.h).
static void f32_second_batch(const float *wt, int rank, int n_out, const float *tk, float *o) {
    gl_f32_lanes8_ref(wt, rank, n_out, tk, o, 0);
}

const gl_vec_ops gl_vec_ops_scalar = {
    .exp_sum8 = exp_sum8, .rmsnorm = rmsnorm, .softmax = softmax, .silu = silu, .swiglu = swiglu,
    .vec_add = vec_add, .vec_scale = vec_scale, .vec_mad = vec_mad, .vec_dot_f32 = vec_dot_f32,
    .fp32_to_fp16_row = fp32_to_fp16_row, .fp16_to_fp32_row = fp16_to_fp32_row,
    .vec_dot_f16_f32 = vec_dot_f16_f32, .vec_mad_f16 = vec_mad_f16,
    .kv_dot = att_dot, .kv_mad = att_mad, .kv_values_32 = att_values_1, .kv_reduce_32 = att_reduce_1,
    .dot_f32_tok = f32_dot_tok, .dot_f32_batch = f32_dot_batch, .dot_f32_lanes8 = f32_second_batch,
    .exp_row = exp_row,
};
