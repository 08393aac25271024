// ggml-lite elementwise ops against naive double-precision references, at lengths that hit
// both the SIMD bodies and the scalar tails; RoPE against its formula; the F16 row
// conversions bit-exact against the scalar ones.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/ggml-lite.h"
#include "ggml-lite/ops.h"
#include "tests/test_util.h"

static uint64_t rng_state = 0x1234567;
static double urand(void) { // [0, 1)
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}
static float frand(float lo, float hi) { return (float)(lo + (hi - lo) * urand()); }
static void fill(float *x, int n, float lo, float hi) { for (int i = 0; i < n; i++) x[i] = frand(lo, hi); }

static const int lengths[] = { 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257, 4096, 4099 };
#define N_LENGTHS ((int)(sizeof lengths / sizeof lengths[0]))
enum { MAXN = 4099 };

static float A[MAXN], B[MAXN], C[MAXN], D[MAXN];
static double R[MAXN];

// Largest |got - want| / (|want| + abs_floor).
static double rel_err(const float *got, const double *want, int n, double abs_floor) {
    double m = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (fabs(want[i]) + abs_floor);
        if (!(e <= m)) m = e; // NaN shows up as an error
    }
    return m;
}

static void test_rmsnorm(void) {
    for (int t = 0; t < N_LENGTHS; t++) {
        int n = lengths[t];
        fill(A, n, -3, 3);
        fill(B, n, 0.5f, 2);
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)A[i] * A[i];
        const double scale = 1.0 / sqrt(ss / n + 1e-5);
        for (int i = 0; i < n; i++) R[i] = A[i] * scale * B[i];
        gl_rmsnorm(C, A, B, n, 1e-5f);
        CHECK(rel_err(C, R, n, 1e-6) < 2e-6, "rmsnorm n=%d err %g", n, rel_err(C, R, n, 1e-6));
        for (int i = 0; i < n; i++) R[i] = A[i] * scale;
        memcpy(C, A, sizeof(float) * (size_t)n);
        gl_rmsnorm(C, C, NULL, n, 1e-5f); // in place, no weight
        CHECK(rel_err(C, R, n, 1e-6) < 2e-6, "rmsnorm no-w n=%d", n);
    }
    // eps matters for a tiny row.
    float z[4] = { 0, 0, 0, 1e-4f }, o[4];
    gl_rmsnorm(o, z, NULL, 4, 1e-6f);
    double want = 1e-4 / sqrt(1e-8 / 4 + 1e-6);
    CHECK(fabs(o[3] - want) < 1e-5 * want, "rmsnorm eps %g vs %g", o[3], want);
}

static void test_softmax(void) {
    for (int t = 0; t < N_LENGTHS; t++) {
        int n = lengths[t];
        fill(A, n, -40, 15);
        if (n > 3) A[n / 2] = -INFINITY; // masked positions
        double max = -INFINITY, sum = 0;
        for (int i = 0; i < n; i++) if (A[i] > max) max = A[i];
        for (int i = 0; i < n; i++) sum += R[i] = exp((double)A[i] - max);
        for (int i = 0; i < n; i++) R[i] /= sum;
        gl_softmax(A, n);
        // x - max is rounded to float first (as in ggml): up to 55 * 2^-24 relative from that.
        CHECK(rel_err(A, R, n, 1e-30) < 5e-6, "softmax n=%d err %g", n, rel_err(A, R, n, 1e-30));
        if (n > 3) CHECK(A[n / 2] == 0.0f, "softmax masked -> 0");
    }
    // The whole exponent range the exp approximation covers, one value per lane position.
    int n = 2000;
    for (int i = 0; i < n; i++) A[i] = -100.0f + 100.0f * (float)i / (float)(n - 1);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += R[i] = exp((double)A[i]);
    for (int i = 0; i < n; i++) R[i] /= sum;
    gl_softmax(A, n);
    // Relative error, except near and below FLT_MIN where floats lose precision.
    double err = rel_err(A, R, n, 1e-33);
    CHECK(err < 2e-6, "softmax wide range err %g", err);
    // All masked: zeros, not NaN.
    for (int i = 0; i < 20; i++) A[i] = -INFINITY;
    gl_softmax(A, 20);
    int zeros = 0;
    for (int i = 0; i < 20; i++) zeros += A[i] == 0.0f;
    CHECK(zeros == 20, "softmax all -inf gives zeros");
}

static double silu_ref(double x) { return x / (1.0 + exp(-x)); }

static void test_silu_swiglu(void) {
    for (int t = 0; t < N_LENGTHS; t++) {
        int n = lengths[t];
        fill(A, n, -20, 20);
        fill(B, n, -3, 3);
        if (n > 8) { A[0] = -100; A[1] = 100; A[2] = 0; A[3] = -87.5f; A[4] = 88.5f; }
        for (int i = 0; i < n; i++) R[i] = silu_ref(A[i]);
        gl_silu(C, A, n);
        CHECK(rel_err(C, R, n, 1e-30) < 2e-6, "silu n=%d err %g", n, rel_err(C, R, n, 1e-30));
        for (int i = 0; i < n; i++) R[i] = silu_ref(A[i]) * B[i];
        gl_swiglu(C, A, B, n);
        CHECK(rel_err(C, R, n, 1e-30) < 2e-6, "swiglu n=%d err %g", n, rel_err(C, R, n, 1e-30));
        memcpy(D, A, sizeof(float) * (size_t)n);
        gl_swiglu(D, D, B, n); // out aliasing gate
        CHECK(memcmp(C, D, sizeof(float) * (size_t)n) == 0, "swiglu in place");
    }
}

static void test_vec(void) {
    for (int t = 0; t < N_LENGTHS; t++) {
        int n = lengths[t];
        fill(A, n, -2, 2);
        fill(B, n, -2, 2);
        for (int i = 0; i < n; i++) R[i] = (double)A[i] + B[i];
        gl_vec_add(C, A, B, n);
        CHECK(rel_err(C, R, n, 1e-6) < 1e-6, "add n=%d", n);
        memcpy(C, A, sizeof(float) * (size_t)n);
        gl_vec_scale(C, 0.3f, n);
        for (int i = 0; i < n; i++) R[i] = A[i] * (double)0.3f;
        CHECK(rel_err(C, R, n, 1e-6) < 1e-6, "scale n=%d", n);
        memcpy(C, B, sizeof(float) * (size_t)n);
        gl_vec_mad(C, A, -1.7f, n);
        int mad_bad = 0;
        for (int i = 0; i < n; i++) {
            double want = B[i] + (double)-1.7f * A[i], mag = fabs(B[i]) + fabs(1.7 * A[i]);
            mad_bad += !(fabs(C[i] - want) <= 2.4e-7 * mag);
        }
        CHECK(mad_bad == 0, "mad n=%d: %d off", n, mad_bad);
        double dot = 0, mag = 0;
        for (int i = 0; i < n; i++) { dot += (double)A[i] * B[i]; mag += fabs((double)A[i] * B[i]); }
        double got = gl_vec_dot_f32(A, B, n);
        CHECK(fabs(got - dot) <= 1e-6 * mag + 1e-12, "dot n=%d: %g vs %g", n, got, dot);
    }
}

static void test_f16(void) {
    // Every half value, through the row converter and the scalar one.
    static gl_fp16 h[65536];
    static float f[65536];
    for (int i = 0; i < 65536; i++) h[i] = (gl_fp16)i;
    gl_fp16_to_fp32_row(h, f, 65536);
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
        float s = gl_fp16_to_fp32(h[i]);
        if (isnan(s) ? !isnan(f[i]) : memcmp(&s, &f[i], 4) != 0) bad++;
    }
    CHECK(bad == 0, "fp16->fp32 row: %d mismatches", bad);

    // Random floats over the half range and beyond (subnormals, overflow), exact ties, specials.
    static float x[4099];
    static gl_fp16 y[4099];
    int n = 4099;
    for (int i = 0; i < n; i++) x[i] = (float)((urand() < 0.5 ? -1 : 1) * ldexp(urand() + 0.5, (int)(urand() * 50) - 30));
    for (int i = 0; i < 64; i++) x[i] = gl_fp16_to_fp32((gl_fp16)(i * 997)) * (1.0f + 0x1.0p-11f); // halfway-ish
    for (int i = 64; i < 128; i++) { // exact halfway between two halves: round to even
        float lo = gl_fp16_to_fp32((gl_fp16)(0x3c00 + i)), hi = gl_fp16_to_fp32((gl_fp16)(0x3c01 + i));
        x[i] = (lo + hi) / 2;
    }
    x[200] = INFINITY; x[201] = -INFINITY; x[202] = 0.0f; x[203] = -0.0f; x[204] = 65504.0f; x[205] = 65520.0f;
    x[206] = 1e-8f; x[207] = 3e-5f;
    gl_fp32_to_fp16_row(x, y, n);
    bad = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(x[i])) { // any NaN half will do (F16C keeps the payload)
            bad += (y[i] & 0x7c00) != 0x7c00 || (y[i] & 0x3ff) == 0;
            continue;
        }
        if (y[i] != gl_fp32_to_fp16(x[i])) {
            if (bad++ < 5) fprintf(stderr, "fp32->fp16 %a: row %04x scalar %04x\n", x[i], y[i], gl_fp32_to_fp16(x[i]));
        }
    }
    CHECK(bad == 0, "fp32->fp16 row: %d mismatches", bad);

    // Attention helpers.
    int mad_bad;
    for (int t = 0; t < N_LENGTHS; t++) {
        n = lengths[t];
        fill(A, n, -2, 2);
        fill(B, n, -2, 2);
        gl_fp32_to_fp16_row(A, y, n);
        double dot = 0, mag = 0;
        for (int i = 0; i < n; i++) {
            double k = gl_fp16_to_fp32(y[i]);
            dot += k * B[i];
            mag += fabs(k * B[i]);
        }
        double got = gl_vec_dot_f16_f32(y, B, n);
        CHECK(fabs(got - dot) <= 1e-6 * mag + 1e-12, "dot f16 n=%d: %g vs %g", n, got, dot);
        memcpy(C, B, sizeof(float) * (size_t)n);
        gl_vec_mad_f16(C, y, 0.75f, n);
        mad_bad = 0;
        for (int i = 0; i < n; i++) {
            double v = gl_fp16_to_fp32(y[i]), want = B[i] + 0.75 * v, mag = fabs(B[i]) + fabs(0.75 * v);
            mad_bad += !(fabs(C[i] - want) <= 2.4e-7 * mag);
        }
        CHECK(mad_bad == 0, "mad f16 n=%d: %d off", n, mad_bad);
    }
}

// RoPE reference: theta_i = pos * base^(-2i/n_rot) * scale / ff_i, in double.
static void rope_ref(const gl_rope_params *p, const float *x, double *out, int n_heads, int head_dim, int pos) {
    int n_rot = p->n_rot ? p->n_rot : head_dim;
    int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        const float *xh = x + h * head_dim;
        double *oh = out + h * head_dim;
        for (int i = 0; i < head_dim; i++) oh[i] = xh[i];
        for (int i = 0; i < half; i++) {
            double theta = pos * pow(p->freq_base, -2.0 * i / n_rot) * p->freq_scale;
            if (p->freq_factors) theta /= p->freq_factors[i];
            int a = p->mode == GL_ROPE_NEOX ? i : 2 * i;
            int b = p->mode == GL_ROPE_NEOX ? i + half : 2 * i + 1;
            oh[a] = xh[a] * cos(theta) - xh[b] * sin(theta);
            oh[b] = xh[a] * sin(theta) + xh[b] * cos(theta);
        }
    }
}

static double max_abs(const float *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) { double e = fabs(a[i] - b[i]); if (!(e <= m)) m = e; }
    return m;
}

static void test_rope(void) {
    enum { HEADS = 3, HD = 128 };
    static float x[HEADS * HD], y[HEADS * HD], z[HEADS * HD], cs[HD];
    static double ref[HEADS * HD];
    static gl_fp16 xh[HEADS * HD];
    float factors[HD / 2];
    for (int i = 0; i < HD / 2; i++) factors[i] = 1.0f + (float)i / 8.0f;
    const int positions[] = { 0, 1, 17, 511, 4095, -3 };
    for (int mode = 0; mode < 2; mode++) {
        for (int variant = 0; variant < 3; variant++) {
            gl_rope_params p = { .freq_base = 10000.0f, .freq_scale = 1.0f, .n_rot = HD,
                                 .mode = mode ? GL_ROPE_NEOX : GL_ROPE_NORM };
            if (variant == 1) { p.freq_factors = factors; p.freq_base = 500000.0f; p.freq_scale = 0.25f; }
            if (variant == 2) { p.n_rot = 64; } // partial rotation: the tail stays
            for (size_t k = 0; k < sizeof positions / sizeof positions[0]; k++) {
                int pos = positions[k];
                fill(x, HEADS * HD, -1, 1);
                rope_ref(&p, x, ref, HEADS, HD, pos);
                memcpy(y, x, sizeof x);
                gl_rope(&p, y, HEADS, HD, pos);
                // Float angles lose ~1 ulp of |theta| per step: scale the bound with |pos|.
                double tol = 1e-6 + 4e-7 * abs(pos);
                double err = max_abs(y, ref, HEADS * HD);
                CHECK(err < tol, "rope mode %d variant %d pos %d err %g", mode, variant, pos, err);
                if (variant == 2) {
                    int same = 1;
                    for (int h = 0; h < HEADS; h++)
                        for (int i = 64; i < HD; i++) same &= y[h * HD + i] == x[h * HD + i];
                    CHECK(same, "rope partial: unrotated tail untouched");
                }
                // cache + apply is the same computation.
                memcpy(z, x, sizeof x);
                gl_rope_cache(&p, HD, pos, cs);
                gl_rope_apply(&p, cs, z, HEADS, HD);
                CHECK(memcmp(y, z, sizeof y) == 0, "rope cache/apply == rope");
                // Shift: rope(x, pos) turned by d equals rope(x, pos + d).
                const int d = k % 2 ? -7 : 300;
                gl_rope_shift(&p, z, HEADS, HD, d);
                rope_ref(&p, x, ref, HEADS, HD, pos + d);
                tol = 1e-6 + 4e-7 * (abs(pos) + abs(pos + d) + abs(d));
                err = max_abs(z, ref, HEADS * HD);
                CHECK(err < tol, "rope shift mode %d variant %d pos %d err %g", mode, variant, pos, err);
                // The F16 cache version: same up to f16 rounding (values within +-1.5).
                gl_fp32_to_fp16_row(y, xh, HEADS * HD);
                gl_rope_shift_f16(&p, xh, HEADS, HD, d);
                gl_fp16_to_fp32_row(xh, z, HEADS * HD);
                err = max_abs(z, ref, HEADS * HD);
                CHECK(err < 2e-3 + tol, "rope shift f16 mode %d variant %d pos %d err %g", mode, variant, pos, err);
            }
        }
    }
    // pos 0 is the identity; zeroed params mean base 10000, scale 1, n_rot = head_dim.
    fill(x, HD, -1, 1);
    memcpy(y, x, sizeof(float) * HD);
    gl_rope(&(gl_rope_params){ 0 }, y, 1, HD, 0);
    CHECK(memcmp(x, y, sizeof(float) * HD) == 0, "rope pos 0 identity");
    gl_rope(&(gl_rope_params){ 0 }, y, 1, HD, 5);
    rope_ref(&(gl_rope_params){ .freq_base = 10000, .freq_scale = 1, .n_rot = HD }, x, ref, 1, HD, 5);
    CHECK(max_abs(y, ref, HD) < 1e-5, "rope zero params = defaults");
}

int main(void) {
    test_rmsnorm();
    test_softmax();
    test_silu_swiglu();
    test_vec();
    test_f16();
    test_rope();
    return test_result("test_ops");
}
