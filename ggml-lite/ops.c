// Elementwise and small vector ops (see ops.h). Each op has a plain C loop; where the op is
// hot enough to matter, an AVX2 path (chosen at compile time) does the bulk and the C loop
// the tail.
#include <math.h>
#include <string.h>

#include "ops.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define OPS_AVX2 1
#endif

// ---- AVX2 helpers -------------------------------------------------------------------------
#ifdef OPS_AVX2
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
#endif


// ---- the reference engine's exp ------------------------------------------------------------
// e^x as the reference engine's 8-lane (AVX2) softmax and SiLU compute it: n = x*log2(e) rounded
// to an integer with the 1.5*2^23 trick, b = x - n*ln2 (ln2 in two parts), p = e^b - 1 from a
// degree-5 polynomial, result k + k*p with k = 2^n built in the exponent bits. Where |n| > 126
// the scale is split in two factors (results near overflow/underflow), and |n| > 192 saturates.
// Not the most accurate exp, but mirrored so the roundings after it (F16 softmax weights,
// 8-bit activations) fall the way the reference's do.
static inline float bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t f_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float exp_ref1(float x) {
    const float z = fmaf(x, 0x1.715476p+0f, 0x1.8p23f);
    const float n = z - 0x1.8p23f;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = f_bits(z) << 23;
    const float k = bits_f(e + f_bits(1.0f));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126)) return fmaf(j, k, k);
    const uint32_t g = n <= 0 ? 0x82000000u : 0;
    const float s1 = bits_f(g + 0x7f000000u), s2 = bits_f(e - g);
    if (fabsf(n) > 192) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

#ifdef OPS_AVX2
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
#endif

// 8 floats summed as the reference's 8-lane reduction: halves, then (0+2)+(1+3).
static inline float hsum8_ref(const float *l) {
    const float t0 = l[0] + l[4], t1 = l[1] + l[5], t2 = l[2] + l[6], t3 = l[3] + l[7];
    return (t0 + t2) + (t1 + t3);
}

double gl_exp_sum8(float *y, const float *x, float sub, int n, int n_row) {
    if (gl_ref_avx512()) return gl_exp_sum_ref512(y, x, sub, n, n_row);
    double sum = 0;
    int i = 0;
    for (; i + 8 <= n_row && i < n; i += 8) {
        float v[8];
        for (int l = 0; l < 8; l++) v[l] = i + l < n ? x[i + l] - sub : -INFINITY;
#ifdef OPS_AVX2
        _mm256_storeu_ps(v, exp_ref8(_mm256_loadu_ps(v)));
#else
        for (int l = 0; l < 8; l++) v[l] = exp_ref1(v[l]);
#endif
        memcpy(y + i, v, (size_t)(n - i < 8 ? n - i : 8) * sizeof(float));
        sum += hsum8_ref(v);
    }
    for (; i < n; i++) {
        y[i] = expf(x[i] - sub);
        sum += y[i];
    }
    return sum;
}

// y[i] = e^x[i] with the same exp, 8 at a time (no sum; -inf gives 0). y may be x.
void gl_exp_row(float *y, const float *x, int n) {
    int i = 0;
#ifdef OPS_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_ref8(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) y[i] = exp_ref1(x[i]);
}

// ---- norms and activations ----------------------------------------------------------------

void gl_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    if (n <= 0) return;
    // Rounded as the reference engine rounds: each square in float, summed in order in
    // double, the mean and the scale in float. On models that re-quantize activations to
    // 8 bits every layer, a last-bit difference here flips roundings that grow layer by layer.
    double sum = 0.0;
    int i = 0;
#ifdef OPS_AVX2
    for (; i + 8 <= n; i += 8) {
        float sq[8];
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(sq, _mm256_mul_ps(v, v));
        for (int l = 0; l < 8; l++) sum += sq[l];
    }
#endif
    for (; i < n; i++) sum += x[i] * x[i];
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
    } else {
        for (i = 0; i < n; i++) out[i] = x[i] * scale;
    }
}

void gl_softmax(float *x, int n) {
    if (n <= 0) return;
    float max = -INFINITY;
    int i = 0;
#ifdef OPS_AVX2
    if (n >= 8) {
        __m256 m = _mm256_set1_ps(-INFINITY);
        for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        max = hmax256(m);
    }
#endif
    for (; i < n; i++) if (x[i] > max) max = x[i];
    if (max == -INFINITY) { // nothing allowed: no distribution, zeros rather than NaN
        memset(x, 0, (size_t)n * sizeof *x);
        return;
    }
    double sum = 0.0;
    i = 0;
#ifdef OPS_AVX2
    const __m256 vmax = _mm256_set1_ps(max);
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    sum = hsum256(acc);
#endif
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    gl_vec_scale(x, (float)(1.0 / sum), n);
}

// SiLU as the reference computes it: x / (1 + e^-x) with its 8-lane exp over whole groups of
// 8, the C library's expf for the n % 8 left over.
void gl_silu(float *out, const float *x, int n) {
    if (gl_ref_avx512()) return gl_silu_ref512(out, x, n);
    const int nv = n & ~7;
    int i = 0;
#ifdef OPS_AVX2
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i < nv; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp_ref8(_mm256_sub_ps(_mm256_setzero_ps(), v));
        _mm256_storeu_ps(out + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
#else
    for (; i < nv; i++) out[i] = x[i] / (1.0f + exp_ref1(-x[i]));
#endif
    for (; i < n; i++) out[i] = x[i] / (1.0f + expf(-x[i]));
}

void gl_swiglu(float *out, const float *gate, const float *up, int n) {
    if (gl_ref_avx512()) return gl_swiglu_ref512(out, gate, up, n);
    const int nv = n & ~7;
    int i = 0;
#ifdef OPS_AVX2
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i < nv; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp_ref8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
#else
    for (; i < nv; i++) out[i] = gate[i] / (1.0f + exp_ref1(-gate[i])) * up[i];
#endif
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

// ---- vector arithmetic --------------------------------------------------------------------

void gl_vec_add(float *out, const float *a, const float *b, int n) {
    int i = 0;
#ifdef OPS_AVX2
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    }
#endif
    for (; i < n; i++) out[i] = a[i] + b[i];
}

void gl_vec_scale(float *x, float s, int n) {
    int i = 0;
#ifdef OPS_AVX2
    const __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
#endif
    for (; i < n; i++) x[i] *= s;
}

void gl_vec_mad(float *y, const float *x, float a, int n) {
    int i = 0;
#ifdef OPS_AVX2
    const __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, _mm256_loadu_ps(y + i)));
    }
#endif
    for (; i < n; i++) y[i] += a * x[i];
}

float gl_vec_dot_f32(const float *a, const float *b, int n) {
    float sum = 0.0f;
    int i = 0;
#ifdef OPS_AVX2
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
#endif
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

// ---- F16 rows -----------------------------------------------------------------------------

void gl_fp32_to_fp16_row(const float *x, gl_fp16 *y, int64_t n) {
    int64_t i = 0;
#if defined(OPS_AVX2) && defined(__F16C__)
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(y + i), h);
    }
#endif
    for (; i < n; i++) y[i] = gl_fp32_to_fp16(x[i]);
}

void gl_fp16_to_fp32_row(const gl_fp16 *x, float *y, int64_t n) {
    int64_t i = 0;
#if defined(OPS_AVX2) && defined(__F16C__)
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    }
#endif
    for (; i < n; i++) y[i] = gl_fp16_to_fp32(x[i]);
}

float gl_vec_dot_f16_f32(const gl_fp16 *x, const float *y, int n) {
    float sum = 0.0f;
    int i = 0;
#if defined(OPS_AVX2) && defined(__F16C__)
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256 k1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8)));
        s0 = _mm256_fmadd_ps(k0, _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(k1, _mm256_loadu_ps(y + i + 8), s1);
    }
    sum = hsum256(_mm256_add_ps(s0, s1));
#endif
    for (; i < n; i++) sum += gl_fp16_to_fp32(x[i]) * y[i];
    return sum;
}

void gl_vec_mad_f16(float *y, const gl_fp16 *x, float a, int n) {
    int i = 0;
#if defined(OPS_AVX2) && defined(__F16C__)
    const __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, va, _mm256_loadu_ps(y + i)));
    }
#endif
    for (; i < n; i++) y[i] += a * gl_fp16_to_fp32(x[i]);
}

// ---- RoPE ---------------------------------------------------------------------------------

typedef struct {
    float base, scale, theta_scale;
    const float *factors;
    int n_rot, half;
    bool neox;
} rope_setup;

static rope_setup rope_prepare(const gl_rope_params *p, int head_dim) {
    rope_setup r;
    r.base = p->freq_base > 0.0f ? p->freq_base : 10000.0f;
    r.scale = p->freq_scale != 0.0f ? p->freq_scale : 1.0f;
    r.factors = p->freq_factors;
    r.n_rot = p->n_rot > 0 && p->n_rot < head_dim ? p->n_rot : head_dim;
    r.n_rot &= ~1;
    r.half = r.n_rot / 2;
    r.theta_scale = r.n_rot > 0 ? powf(r.base, -2.0f / (float)r.n_rot) : 1.0f;
    r.neox = p->mode == GL_ROPE_NEOX;
    return r;
}

// cos/sin of pairs [j0, j1) into cs[0..2*(j1-j0)); *theta is pos * theta_scale^j0 on entry
// and advances. The angle is built by repeated multiplication, as ggml does, so positions
// agree with the reference to the last bit the float math allows.
static void rope_fill(const rope_setup *r, float *theta, int j0, int j1, float *cs) {
    for (int j = j0; j < j1; j++) {
        const float ff = r->factors ? r->factors[j] : 1.0f;
        const float t = r->scale * (*theta / ff);
        cs[2 * (j - j0)] = cosf(t);
        cs[2 * (j - j0) + 1] = sinf(t);
        *theta *= r->theta_scale;
    }
}

// Turns pairs [j0, j1) of every head by the angles in cs (indexed from j0).
static void rope_turn(const rope_setup *r, const float *cs, float *x, int n_heads, int head_dim,
                      int j0, int j1) {
    const int stride = r->neox ? r->half : 1, step = r->neox ? 1 : 2;
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * head_dim;
        for (int j = j0; j < j1; j++) {
            const float c = cs[2 * (j - j0)], s = cs[2 * (j - j0) + 1];
            float *a = xh + j * step, *b = a + stride;
            const float x0 = *a, x1 = *b;
            // One rounding of the first product is folded into a fused multiply-add, as the
            // reference engine's compiled rotation does: keeps roped q/k bitwise equal to it.
            *a = fmaf(x0, c, -(x1 * s));
            *b = fmaf(x0, s, x1 * c);
        }
    }
}

enum { ROPE_CHUNK = 128 }; // pairs whose trig sits on the stack at once

void gl_rope(const gl_rope_params *p, float *x, int n_heads, int head_dim, int pos) {
    const rope_setup r = rope_prepare(p, head_dim);
    float cs[2 * ROPE_CHUNK];
    float theta = (float)pos;
    for (int j0 = 0; j0 < r.half; j0 += ROPE_CHUNK) {
        const int j1 = j0 + ROPE_CHUNK < r.half ? j0 + ROPE_CHUNK : r.half;
        rope_fill(&r, &theta, j0, j1, cs);
        rope_turn(&r, cs, x, n_heads, head_dim, j0, j1);
    }
}

void gl_rope_cache(const gl_rope_params *p, int head_dim, int pos, float *cs) {
    const rope_setup r = rope_prepare(p, head_dim);
    float theta = (float)pos;
    rope_fill(&r, &theta, 0, r.half, cs);
}

void gl_rope_apply(const gl_rope_params *p, const float *cs, float *x, int n_heads, int head_dim) {
    const rope_setup r = rope_prepare(p, head_dim);
    rope_turn(&r, cs, x, n_heads, head_dim, 0, r.half);
}

void gl_rope_shift(const gl_rope_params *p, float *x, int n_heads, int head_dim, int delta) {
    gl_rope(p, x, n_heads, head_dim, delta);
}

void gl_rope_shift_f16(const gl_rope_params *p, gl_fp16 *x, int n_heads, int head_dim, int delta) {
    const rope_setup r = rope_prepare(p, head_dim);
    const int stride = r.neox ? r.half : 1, step = r.neox ? 1 : 2;
    float cs[2 * ROPE_CHUNK];
    float theta = (float)delta;
    for (int j0 = 0; j0 < r.half; j0 += ROPE_CHUNK) {
        const int j1 = j0 + ROPE_CHUNK < r.half ? j0 + ROPE_CHUNK : r.half;
        rope_fill(&r, &theta, j0, j1, cs);
        for (int h = 0; h < n_heads; h++) {
            gl_fp16 *xh = x + (size_t)h * head_dim;
            for (int j = j0; j < j1; j++) {
                const float c = cs[2 * (j - j0)], s = cs[2 * (j - j0) + 1];
                gl_fp16 *a = xh + j * step, *b = a + stride;
                const float x0 = gl_fp16_to_fp32(*a), x1 = gl_fp16_to_fp32(*b);
                *a = gl_fp32_to_fp16(fmaf(x0, c, -(x1 * s)));
                *b = gl_fp32_to_fp16(fmaf(x0, s, x1 * c));
            }
        }
    }
}
