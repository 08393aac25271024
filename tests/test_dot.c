// Dot kernels, for every weight type and many lengths:
//  - the selected kernel (SIMD when available) equals the scalar reference within float
//    rounding, on quantized Gaussian rows and on random block bytes (every bit pattern of the
//    quants and sub-block scales, sane fp16 super-scales);
//  - the scalar kernel equals dequantize-both-then-float-dot within rounding;
//  - the batched kernel (one weight row x 1..4 activation rows) equals the single-row kernel;
//  - the fast activation quantizers (from_float) give the reference quantizer's bytes (quants
//    may differ by one on exact rounding ties) and decode back close to the input.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/dot.h"
#include "ggml-lite/ggml-lite.h"
#include "tests/test_util.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float uniform(void) { return (next_u32() & 0xffffff) / 16777216.0f; }
static float gauss(void) {
    const float u = uniform() + 1e-7f, v = uniform();
    return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v);
}

static const enum gl_type weight_types[] = {TEST_WEIGHT_TYPES};

static gl_fp16 small_half(void) { return gl_fp32_to_fp16((uniform() + 0.05f) * 0.02f); }

// Random bytes for every field, then sane fp16 super-scales (random halves can be Inf/NaN).
static void random_blocks(enum gl_type type, void *dst, int64_t n) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const int64_t nb = n / tr->blck_size;
    uint8_t *p = (uint8_t *)dst;
    for (size_t i = 0; i < (size_t)nb * tr->type_size; i++) p[i] = (uint8_t)next_u32();
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *b = p + (size_t)i * tr->type_size;
        gl_fp16 *h = NULL;
        switch (type) {
        case GL_TYPE_Q4_0: ((block_q4_0 *)b)->d = small_half(); break;
        case GL_TYPE_Q4_1: ((block_q4_1 *)b)->d = small_half(); ((block_q4_1 *)b)->m = small_half(); break;
        case GL_TYPE_Q5_0: ((block_q5_0 *)b)->d = small_half(); break;
        case GL_TYPE_Q5_1: ((block_q5_1 *)b)->d = small_half(); ((block_q5_1 *)b)->m = small_half(); break;
        case GL_TYPE_Q8_0: ((block_q8_0 *)b)->d = small_half(); break;
        case GL_TYPE_Q2_K: ((block_q2_K *)b)->d = small_half(); ((block_q2_K *)b)->dmin = small_half(); break;
        case GL_TYPE_Q3_K: ((block_q3_K *)b)->d = small_half(); break;
        case GL_TYPE_Q4_K: ((block_q4_K *)b)->d = small_half(); ((block_q4_K *)b)->dmin = small_half(); break;
        case GL_TYPE_Q5_K: ((block_q5_K *)b)->d = small_half(); ((block_q5_K *)b)->dmin = small_half(); break;
        case GL_TYPE_Q6_K: ((block_q6_K *)b)->d = small_half(); break;
        case GL_TYPE_IQ4_NL: ((block_iq4_nl *)b)->d = small_half(); break;
        case GL_TYPE_IQ4_XS: ((block_iq4_xs *)b)->d = small_half(); break;
        case GL_TYPE_F16: h = (gl_fp16 *)b; *h = gl_fp32_to_fp16(gauss()); break;
        case GL_TYPE_BF16: *(gl_bf16 *)b = gl_fp32_to_bf16(gauss()); break;
        case GL_TYPE_F32: { float f = gauss(); memcpy(b, &f, 4); } break;
        default: break;
        }
    }
}

// Sum of |w_i * y_i| over the dequantized rows: the scale of a dot product's rounding error.
static double abs_dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += fabs((double)a[i] * b[i]);
    return s;
}

static double exact_dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void check_type(enum gl_type type, int n, bool random_bytes) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const gl_type_traits *vt = gl_get_type_traits(tr->vec_dot_type);
    const size_t wbytes = gl_row_size(type, n), ybytes = gl_row_size(tr->vec_dot_type, n);
    float *xf = malloc(sizeof(float) * n * (GL_DOT_NR + 1));
    float *wd = malloc(sizeof(float) * n), *yd = malloc(sizeof(float) * n);
    uint8_t *w = malloc(wbytes), *y = malloc(ybytes * GL_DOT_NR), *yref = malloc(ybytes);
    // Weights.
    if (random_bytes) {
        random_blocks(type, w, n);
    } else {
        const float scale = 0.1f + uniform();
        for (int i = 0; i < n; i++) xf[i] = gauss() * scale;
        tr->from_float_ref(xf, w, n);
    }
    tr->to_float(w, wd, n);
    // Activation rows (some with outliers, like real hidden states).
    for (int j = 0; j < GL_DOT_NR; j++) {
        float *x = xf + (size_t)(j + 1) * n;
        for (int i = 0; i < n; i++) x[i] = gauss() * (j + 1) + ((next_u32() & 63) == 0 ? 20 * gauss() : 0);
        uint8_t *yj = y + (size_t)j * ybytes;
        vt->from_float(x, yj, n);
        vt->from_float_ref(x, yref, n);
        // Same bytes, except that quants may differ by one at exact rounding ties.
        if (memcmp(yj, yref, ybytes) != 0) {
            float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
            vt->to_float(yj, a, n);
            vt->to_float(yref, b, n);
            double maxd = 0, maxv = 0;
            for (int i = 0; i < n; i++) {
                maxd = fmax(maxd, fabs((double)a[i] - b[i]));
                maxv = fmax(maxv, fabs((double)b[i]));
            }
            CHECK(maxd <= maxv / 100, "%s from_float vs ref n=%d: max diff %g (max %g)",
                  vt->name, n, maxd, maxv);
            free(a);
            free(b);
        }
        // It decodes close to the input.
        vt->to_float(yj, yd, n);
        double err = 0, ref = 0;
        for (int i = 0; i < n; i++) {
            err += (yd[i] - x[i]) * (yd[i] - x[i]);
            ref += x[i] * x[i];
        }
        CHECK(err <= ref * 1e-3, "%s from_float round trip n=%d: rel err %g", vt->name, n, err / ref);
    }

    float s_scalar[GL_DOT_NR], s_best[GL_DOT_NR];
    for (int j = 0; j < GL_DOT_NR; j++) {
        const uint8_t *yj = y + (size_t)j * ybytes;
        vt->to_float(yj, yd, n);
        const double mag = abs_dot(wd, yd, n) + 1e-30;
        tr->vec_dot_scalar(n, &s_scalar[j], w, yj);
        tr->vec_dot(n, &s_best[j], w, yj);
        const double exact = exact_dot(wd, yd, n);
        // Q4_1/Q5_1 use Q8_1's s = d * sum(q) rounded to fp16 instead of the quants' sum.
        const double tol = vt->blck_size == QK8_1 && tr->vec_dot_type == GL_TYPE_Q8_1 ? 1e-3 : 2e-5;
        CHECK(fabs(s_scalar[j] - exact) <= tol * mag, "%s scalar vs dequant n=%d%s: %.9g vs %.9g (mag %g)",
              tr->name, n, random_bytes ? " (random bytes)" : "", s_scalar[j], exact, mag);
        CHECK(fabs(s_best[j] - s_scalar[j]) <= 2e-5 * mag, "%s %s vs scalar n=%d%s: %.9g vs %.9g (mag %g)",
              tr->name, gl_simd_name(), n, random_bytes ? " (random bytes)" : "", s_best[j], s_scalar[j], mag);
    }
    // Batched kernel against the single-row one, for every tile height.
    gl_vec_dot_nr_fn nrf = gl_get_vec_dot_nr(type);
    if (nrf) {
        for (int nr = 1; nr <= GL_DOT_NR; nr++) {
            float s[2 * GL_DOT_NR];
            for (int j = 0; j < 2 * GL_DOT_NR; j++) s[j] = -12345.f;
            nrf(n, s, 2, w, y, ybytes, nr);
            for (int j = 0; j < GL_DOT_NR; j++) {
                vt->to_float(y + (size_t)j * ybytes, yd, n);
                const double mag = abs_dot(wd, yd, n) + 1e-30;
                if (j < nr)
                    CHECK(fabs(s[2 * j] - s_best[j]) <= 2e-5 * mag, "%s nr=%d row %d n=%d: %.9g vs %.9g",
                          tr->name, nr, j, n, s[2 * j], s_best[j]);
                else
                    CHECK(s[2 * j] == -12345.f, "%s nr=%d wrote row %d", tr->name, nr, j);
                CHECK(s[2 * j + 1] == -12345.f, "%s nr=%d wrote between rows", tr->name, nr);
            }
        }
    }
    free(xf);
    free(wd);
    free(yd);
    free(w);
    free(y);
    free(yref);
}

int main(void) {
    printf("kernels: %s\n", gl_simd_name());
    for (size_t k = 0; k < sizeof weight_types / sizeof weight_types[0]; k++) {
        const enum gl_type type = weight_types[k];
        const gl_type_traits *tr = gl_get_type_traits(type);
        CHECK(tr && tr->vec_dot && tr->vec_dot_scalar, "type %d has no kernel", (int)type);
        if (!tr || !tr->vec_dot) continue;
        const gl_type_traits *vt = gl_get_type_traits(tr->vec_dot_type);
        CHECK(vt && vt->from_float, "%s: dot type has no from_float", tr->name);
        if (!vt || !vt->from_float) continue;
        const int blck = tr->blck_size > 1 ? tr->blck_size : 1;
        const int vblk = vt->blck_size > 1 ? vt->blck_size : 1;
        const int unit = blck > vblk ? blck : vblk;
        static const int counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33};
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            check_type(type, counts[c] * unit, false);
            check_type(type, counts[c] * unit, true);
        }
        if (unit == 1) // float rows: odd lengths exercise the SIMD tails
            for (int n = 1; n < 80; n += 3) check_type(type, n, false);
        check_type(type, 4096, false);
        check_type(type, 4096, true);
    }
    // Expected kernel pairs, as ggml.
    CHECK(gl_get_type_traits(GL_TYPE_Q4_0)->vec_dot_type == GL_TYPE_Q8_0, "q4_0");
    CHECK(gl_get_type_traits(GL_TYPE_Q4_1)->vec_dot_type == GL_TYPE_Q8_1, "q4_1");
    CHECK(gl_get_type_traits(GL_TYPE_Q4_K)->vec_dot_type == GL_TYPE_Q8_K, "q4_K");
    CHECK(gl_get_type_traits(GL_TYPE_IQ4_NL)->vec_dot_type == GL_TYPE_Q8_0, "iq4_nl");
    CHECK(gl_get_type_traits(GL_TYPE_IQ4_XS)->vec_dot_type == GL_TYPE_Q8_K, "iq4_xs");
    CHECK(gl_get_type_traits((enum gl_type)4) == NULL, "id 4 is not a type");
    CHECK(gl_get_type_traits((enum gl_type)1000) == NULL, "id 1000");
    CHECK(gl_row_size(GL_TYPE_Q4_K, 255) == 0 && gl_row_size(GL_TYPE_Q4_K, 512) == 288, "row size");
    return test_result("test_dot");
}
