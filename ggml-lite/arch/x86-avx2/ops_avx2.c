// The AVX2 set's vector ops: 8 lanes at a time, the C loop for the tail; summation orders as the
// reference engine's AVX2 build (the scalar set's loops compute the same).
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "dot.h"
#include "ops_ref.h"

static void vec_scale(float *x, float s, int n);

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// e^x for 8 floats, relative error about 2e-7. x = n*ln2 + r with |r| <= ln2/2, e^r from a
// degree-7 minimax-style polynomial (Cephes' coefficients), 2^n built in the exponent bits.
// Inputs below -87 give 0, above 88 give +inf; NaN gives NaN.
static inline __m256 exp256(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.0f), lo = _mm256_set1_ps(-87.0f);
    const __m256 too_big = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    const __m256 too_small = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // r = x - n*ln2, with ln2 split in two so the product is exact enough.
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), too_big);
    y = _mm256_andnot_ps(too_small, y);
    // NaN compares false both ways and was clamped: put it back.
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

static inline __m256 exp_ref8(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1))));
    const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.f), n);
    const __m256 c = _mm256_cmp_ps(an, _mm256_set1_ps(126), _CMP_GT_OQ);
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
    if (!_mm256_movemask_ps(c)) return _mm256_fmadd_ps(j, k, k);
    const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32((int)0x82000000u));
    const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    const __m256 d = _mm256_cmp_ps(an, _mm256_set1_ps(192), _CMP_GT_OQ);
    const __m256 mid = _mm256_blendv_ps(_mm256_fmadd_ps(k, j, k), _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1), c);
    return _mm256_blendv_ps(mid, _mm256_mul_ps(s1, s1), d);
}

static double exp_sum8(float *y, const float *x, float sub, int n, int n_row) {
    double sum = 0;
    int i = 0;
    for (; i + 8 <= n_row && i < n; i += 8) {
        float v[8];
        for (int l = 0; l < 8; l++) v[l] = i + l < n ? x[i + l] - sub : -INFINITY;
        _mm256_storeu_ps(v, exp_ref8(_mm256_loadu_ps(v)));
        memcpy(y + i, v, (size_t)(n - i < 8 ? n - i : 8) * sizeof(float));
        sum += gl_hsum8_pairs(v);
    }
    for (; i < n; i++) {
        y[i] = expf(x[i] - sub);
        sum += y[i];
    }
    return sum;
}

// e^x, 8 at a time (no sum; -inf gives 0). y may be x.
static void exp_row(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_ref8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = gl_exp_ref1(x[i]);
}

// ---- norms and activations ----------------------------------------------------------------

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    if (n <= 0) return;
    // Rounded as the reference engine rounds: each square in float, summed in order in
    // double, the mean and the scale in float. On models that re-quantize activations to
    // 8 bits every layer, a last-bit difference here flips roundings that grow layer by layer.
    double sum = 0.0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float sq[8];
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(sq, _mm256_mul_ps(v, v));
        for (int l = 0; l < 8; l++) sum += sq[l];
    }
    for (; i < n; i++) sum += x[i] * x[i];
    gl_rmsnorm_apply(out, x, w, n, sum, eps);
}

static void softmax(float *x, int n) {
    if (n <= 0) return;
    float max = -INFINITY;
    int i = 0;
    if (n >= 8) {
        __m256 m = _mm256_set1_ps(-INFINITY);
        for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        max = hmax256(m);
    }
    for (; i < n; i++) if (x[i] > max) max = x[i];
    if (max == -INFINITY) { // nothing allowed: no distribution, zeros rather than NaN
        memset(x, 0, (size_t)n * sizeof *x);
        return;
    }
    double sum = 0.0;
    i = 0;
    const __m256 vmax = _mm256_set1_ps(max);
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    sum = hsum256(acc);
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
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i < nv; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp_ref8(_mm256_sub_ps(_mm256_setzero_ps(), v));
        _mm256_storeu_ps(out + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) out[i] = x[i] / (1.0f + expf(-x[i]));
}

static void swiglu(float *out, const float *gate, const float *up, int n) {
    const int nv = n & ~7;
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i < nv; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp_ref8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

// ---- vector arithmetic --------------------------------------------------------------------

static void vec_add(float *out, const float *a, const float *b, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    }
    for (; i < n; i++) out[i] = a[i] + b[i];
}

static void vec_scale(float *x, float s, int n) {
    int i = 0;
    const __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    for (; i < n; i++) x[i] *= s;
}

static void vec_mad(float *y, const float *x, float a, int n) {
    int i = 0;
    const __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] += a * x[i];
}

static float vec_dot_f32(const float *a, const float *b, int n) {
    float sum = 0.0f;
    int i = 0;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    sum = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

// ---- F16 rows -----------------------------------------------------------------------------

static void fp32_to_fp16_row(const float *x, gl_fp16 *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(y + i), h);
    }
    for (; i < n; i++) y[i] = gl_fp32_to_fp16(x[i]);
}

static void fp16_to_fp32_row(const gl_fp16 *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    }
    for (; i < n; i++) y[i] = gl_fp16_to_fp32(x[i]);
}

static float vec_dot_f16_f32(const gl_fp16 *x, const float *y, int n) {
    float sum = 0.0f;
    int i = 0;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256 k1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8)));
        s0 = _mm256_fmadd_ps(k0, _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(k1, _mm256_loadu_ps(y + i + 8), s1);
    }
    sum = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) sum += gl_fp16_to_fp32(x[i]) * y[i];
    return sum;
}

static void vec_mad_f16(float *y, const gl_fp16 *x, float a, int n) {
    int i = 0;
    const __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, va, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] += a * gl_fp16_to_fp32(x[i]);
}


// ---- the reference's orders for attention and F32 adapters ------------------------------

// dot(k, q) over n elements. batch: one 8-lane accumulator; else four over steps of 32 and
// the rest added in double.
static float att_dot(const void *k, bool f16, const float *q, int n, bool batch) {
    float a[4][8] = {{0}};
    int i = 0;
    if (batch && n % 8 == 0) {
        __m256 acc = _mm256_setzero_ps();
        for (; i < n; i += 8) {
            __m256 kv = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gl_fp16 *)k + i)))
                            : _mm256_loadu_ps((const float *)k + i);
            acc = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q + i), acc);
        }
        _mm256_storeu_ps(a[0], acc);
        return gl_hsum8_pairs(a[0]);
    }
    const int np = n & ~31;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (; i < np; i += 32)
        for (int m = 0; m < 4; m++) {
            __m256 kv = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gl_fp16 *)k + i + 8 * m)))
                            : _mm256_loadu_ps((const float *)k + i + 8 * m);
            acc[m] = _mm256_fmadd_ps(kv, _mm256_loadu_ps(q + i + 8 * m), acc[m]);
        }
    if (np == n) { // the reduction below, in registers
        const __m256 r = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
        const __m128 t = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1)); // l[i] + l[i+4]
        const __m128 u = _mm_hadd_ps(t, t);                                                   // t0+t1, t2+t3
        return _mm_cvtss_f32(_mm_hadd_ps(u, u));
    }
    for (int m = 0; m < 4; m++) _mm256_storeu_ps(a[m], acc[m]);
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
    int i = 0;
    const __m256 wv = _mm256_set1_ps(w);
    for (; i + 8 <= n; i += 8) {
        __m256 x = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gl_fp16 *)v + i)))
                       : _mm256_loadu_ps((const float *)v + i);
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(wv, x, _mm256_loadu_ps(acc + i)));
    }
    for (; i < n; i++) acc[i] = fmaf(w, gl_kv_at(v, f16, i), acc[i]);
}

// One token's weighted values: slot l (of 32) sums, in key order, the keys j with j % 32 == l
// (what att_mad into slot j % 32 gives, key after key), each slot's row kept in registers.
static void att_values_1(float *acc, const char *v, size_t v_row, bool f16, const float *w, int n_keys, int hd) {
    int d0 = 0;
    for (; d0 + 32 <= hd; d0 += 32)
        for (int l = 0; l < 32; l++) {
            __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int j = l; j < n_keys; j += 32) {
                const char *vj = v + (size_t)j * v_row;
                const __m256 wv = _mm256_set1_ps(w[j]);
                for (int m = 0; m < 4; m++) {
                    const int i = d0 + 8 * m;
                    const __m256 x = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const gl_fp16 *)vj + i)))
                                         : _mm256_loadu_ps((const float *)vj + i);
                    a[m] = _mm256_fmadd_ps(wv, x, a[m]);
                }
            }
            for (int m = 0; m < 4; m++) _mm256_storeu_ps(acc + (size_t)l * hd + d0 + 8 * m, a[m]);
        }
    if (d0 < hd) {
        for (int l = 0; l < 32; l++) memset(acc + (size_t)l * hd + d0, 0, (size_t)(hd - d0) * sizeof(float));
        for (int j = 0; j < n_keys; j++) {
            const char *vj = v + (size_t)j * v_row;
            float *a = acc + (size_t)(j % 32) * hd;
            for (int d = d0; d < hd; d++) a[d] = fmaf(w[j], gl_kv_at(vj, f16, (size_t)d), a[d]);
        }
    }
}

// out[d] = the 32 slots of element d reduced as the reference's one-token sum (ops_ref.h).
static void att_reduce_1(float *out, const float *acc, int hd) {
    int d = 0;
    for (; d + 8 <= hd; d += 8) { // the scalar steps below, 8 elements per lane-wise op
        __m256 r[8];
        for (int l = 0; l < 8; l++)
            r[l] = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(acc + (size_t)l * hd + d),
                                               _mm256_loadu_ps(acc + (size_t)(16 + l) * hd + d)),
                                 _mm256_add_ps(_mm256_loadu_ps(acc + (size_t)(8 + l) * hd + d),
                                               _mm256_loadu_ps(acc + (size_t)(24 + l) * hd + d)));
        const __m256 t0 = _mm256_add_ps(r[0], r[4]), t1 = _mm256_add_ps(r[1], r[5]);
        const __m256 t2 = _mm256_add_ps(r[2], r[6]), t3 = _mm256_add_ps(r[3], r[7]);
        _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_add_ps(t0, t1), _mm256_add_ps(t2, t3)));
    }
    gl_att_reduce_1_ref(out, acc, hd, d);
}

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
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int i = 0; i < np; i += 32)
            for (int m = 0; m < 4; m++)
                a[m] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8 * m), _mm256_loadu_ps(x + i + 8 * m), a[m]);
        _mm256_storeu_ps(r, _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3])));
        sum = gl_hsum8_hadd(r);
    }
    for (int i = np; i < n; i++) sum += w[i] * x[i]; // product rounded, then added
    return sum;
}

static float f32_dot_batch(const float *w, const float *x, int n) {
    if (n % 8) return f32_dot_tok(w, x, n);
    float r[8];
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a);
    _mm256_storeu_ps(r, a);
    return gl_hsum8_pairs(r);
}

// A batch's B·t for an F32 B of rank columns (rank % 8 == 0), through B transposed (ops_ref.h):
// 8 outputs per vector step, the rest as the reference sums them.
static void f32_second_batch(const float *wt, int rank, int n_out, const float *tk, float *o) {
    int j = 0;
    for (; j + 8 <= n_out; j += 8) {
        __m256 p[8];
        for (int l = 0; l < 8; l++) p[l] = _mm256_setzero_ps();
        for (int k0 = 0; k0 < rank; k0 += 8)
            for (int l = 0; l < 8; l++)
                p[l] = _mm256_fmadd_ps(_mm256_loadu_ps(wt + (size_t)(k0 + l) * n_out + j), _mm256_set1_ps(tk[k0 + l]), p[l]);
        const __m256 t0 = _mm256_add_ps(p[0], p[4]), t1 = _mm256_add_ps(p[1], p[5]);
        const __m256 t2 = _mm256_add_ps(p[2], p[6]), t3 = _mm256_add_ps(p[3], p[7]);
        _mm256_storeu_ps(o + j, _mm256_add_ps(_mm256_add_ps(t0, t2), _mm256_add_ps(t1, t3)));
    }
    gl_f32_lanes8_ref(wt, rank, n_out, tk, o, j);
}

const gl_vec_ops gl_vec_ops_avx2 = {
    .exp_sum8 = exp_sum8, .rmsnorm = rmsnorm, .softmax = softmax, .silu = silu, .swiglu = swiglu,
    .vec_add = vec_add, .vec_scale = vec_scale, .vec_mad = vec_mad, .vec_dot_f32 = vec_dot_f32,
    .fp32_to_fp16_row = fp32_to_fp16_row, .fp16_to_fp32_row = fp16_to_fp32_row,
    .vec_dot_f16_f32 = vec_dot_f16_f32, .vec_mad_f16 = vec_mad_f16,
    .kv_dot = att_dot, .kv_mad = att_mad, .kv_values_32 = att_values_1, .kv_reduce_32 = att_reduce_1,
    .dot_f32_tok = f32_dot_tok, .dot_f32_batch = f32_dot_batch, .dot_f32_lanes8 = f32_second_batch,
    .exp_row = exp_row,
};
