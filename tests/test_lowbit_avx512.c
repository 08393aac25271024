// The AVX-512 set's low-bit kernels against the scalar ones, on random rows (any bytes, small
// scales): the prompt tile for many tokens and row counts that are not multiples of its 16,
// and the one-token kernels the set has (its generation kernels bitwise its vec_dot). Both sum the same integers; only float adds over
// super-blocks differ, so they agree within a few ulps of the products' magnitudes. The
// one-token kernels are also bitwise the AVX2 set's. Where the CPU has AVX512-VBMI, both builds
// of the kernels (grid lookups by byte permutes, and without) are checked. Skips when the build
// or the CPU has no AVX-512 set.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/dot.h"
#include "ggml-lite/quants.h"
#include "ggml-lite/quants_lowbit.h"
#include "tests/test_util.h"

extern const gl_kernel_set gl_kernels_avx512 __attribute__((weak));
extern const gl_kernel_set gl_kernels_avx2 __attribute__((weak));
extern bool gl_lowbit_use_vbmi __attribute__((weak)); // whether the set's AVX512-VBMI builds run

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static float gauss(void) { return test_gauss(&rng); }

static const enum gl_type types[] = {GL_TYPE_IQ2_XXS, GL_TYPE_IQ2_XS, GL_TYPE_IQ2_S, GL_TYPE_IQ3_XXS, GL_TYPE_IQ3_S,
                                     GL_TYPE_IQ1_S,   GL_TYPE_IQ1_M,  GL_TYPE_TQ1_0, GL_TYPE_TQ2_0, GL_TYPE_MXFP4};

// Random bytes with the block scale set small (IQ1_M keeps its fp16 in the scale words' top nibbles).
static void random_row(enum gl_type type, uint8_t *row, int n) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const size_t bytes = gl_row_size(type, n);
    for (size_t i = 0; i < bytes; i++) row[i] = (uint8_t)next_u32();
    if (type == GL_TYPE_MXFP4) { // block scales 2^-12 .. 2^-5
        for (int i = 0; i < n / QK_MXFP4; i++) row[(size_t)i * tr->type_size] = (uint8_t)(116 + next_u32() % 8);
        return;
    }
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t *b = row + (size_t)i * tr->type_size;
        const gl_fp16 d = gl_fp32_to_fp16((float)(next_u32() % 1000 + 50) * 2e-5f);
        switch (type) {
        case GL_TYPE_IQ1_M: {
            block_iq1_m *m = (block_iq1_m *)b;
            for (int k = 0; k < 4; k++) m->scales[2 * k + 1] = (uint8_t)((m->scales[2 * k + 1] & 0x0f) | (d >> (4 * k) & 0xf) << 4);
            break;
        }
        case GL_TYPE_TQ1_0: ((block_tq1_0 *)b)->d = d; break;
        case GL_TYPE_TQ2_0: ((block_tq2_0 *)b)->d = d; break;
        default: memcpy(b, &d, sizeof d); break; // the i-quants start with d
        }
    }
}

// sum |w_i y_i|: the scale of the float rounding the kernels may differ by.
static double magnitude(const gl_type_traits *tr, const void *w, const void *y, int n) {
    float *wd = malloc(sizeof(float) * n), *yd = malloc(sizeof(float) * n);
    tr->to_float(w, wd, n);
    gl_get_type_traits(tr->vec_dot_type)->to_float(y, yd, n);
    double m = 0;
    for (int i = 0; i < n; i++) m += fabs((double)wd[i] * yd[i]);
    free(wd), free(yd);
    return m;
}

static void check_type(enum gl_type type, int n, int n_rows, int n_tok) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const gl_type_traits *vt = gl_get_type_traits(tr->vec_dot_type);
    const size_t w_row = gl_row_size(type, n), by = gl_row_size(tr->vec_dot_type, n);
    uint8_t *w = malloc(w_row * n_rows), *y = malloc(by * n_tok);
    float *x = malloc(sizeof(float) * n), *out = malloc(sizeof(float) * n_rows * n_tok);
    for (int r = 0; r < n_rows; r++) random_row(type, w + r * w_row, n);
    for (int t = 0; t < n_tok; t++) {
        for (int i = 0; i < n; i++) x[i] = gauss() * (1 + t % 3) + ((next_u32() & 63) == 0 ? 10 * gauss() : 0);
        vt->from_float(x, y + t * by, n);
    }
    const gl_tile_fn tile = gl_kernels_avx512.tile[type];
    if (tile) {
        memset(out, 0, sizeof(float) * n_rows * n_tok);
        CHECK(tile(type, n, w, w_row, n_rows, y, by, NULL, NULL, n_tok, out, n_rows), "%s: tile refused", tr->name);
        int bad = 0;
        for (int t = 0; t < n_tok; t++)
            for (int r = 0; r < n_rows; r++) {
                float want;
                tr->vec_dot_scalar(n, &want, w + r * w_row, y + t * by);
                const double tol = 1e-5 * magnitude(tr, w + r * w_row, y + t * by, n) + 1e-30;
                const float got = out[t * n_rows + r];
                if (!(fabs((double)got - want) <= tol) && bad++ < 3)
                    CHECK(0, "%s n=%d tile row %d token %d: %.9g, scalar %.9g", tr->name, n, r, t, got, want);
            }
        CHECK(bad == 0, "%s: %d tile outputs off", tr->name, bad);
    }
    const gl_vec_dot_fn dot = gl_kernels_avx512.vec_dot[type];
    if (dot) {
        int bad = 0;
        for (int r = 0; r < n_rows; r++)
            for (int t = 0; t < 2; t++) {
                float got, want;
                dot(n, &got, w + r * w_row, y + t * by);
                tr->vec_dot_scalar(n, &want, w + r * w_row, y + t * by);
                const double tol = 1e-5 * magnitude(tr, w + r * w_row, y + t * by, n) + 1e-30;
                if (!(fabs((double)got - want) <= tol) && bad++ < 3)
                    CHECK(0, "%s n=%d dot row %d token %d: %.9g, scalar %.9g", tr->name, n, r, t, got, want);
                // and bitwise the AVX2 set's (the reference's arithmetic)
                if (&gl_kernels_avx2 != NULL && gl_kernels_avx2.vec_dot[type]) {
                    float ref;
                    gl_kernels_avx2.vec_dot[type](n, &ref, w + r * w_row, y + t * by);
                    if (memcmp(&ref, &got, sizeof got) != 0 && bad++ < 3)
                        CHECK(0, "%s n=%d dot row %d token %d: %.9g, AVX2 kernel %.9g", tr->name, n, r, t, got, ref);
                }
            }
        CHECK(bad == 0, "%s: %d one-token outputs off", tr->name, bad);
    }
    // the generation kernel (several rows at a time): bitwise vec_dot row by row
    const gl_gen_fn gen = gl_kernels_avx512.gen[type];
    if (gen && dot) {
        gen(type, n, w, w_row, n_rows, y, NULL, NULL, out);
        int bad = 0;
        for (int r = 0; r < n_rows; r++) {
            float want;
            dot(n, &want, w + r * w_row, y);
            if (memcmp(&want, &out[r], sizeof want) != 0 && bad++ < 3)
                CHECK(0, "%s n=%d gen row %d: %.9g, vec_dot %.9g", tr->name, n, r, out[r], want);
        }
        CHECK(bad == 0, "%s: %d gen outputs off", tr->name, bad);
    }
    free(w), free(y), free(x), free(out);
}

static void check_all(void) {
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        check_type(types[k], 256, 5, 3);
        check_type(types[k], 1024, 37, 13);
        check_type(types[k], 2816, 16, 9);
    }
    check_type(GL_TYPE_MXFP4, 1056, 23, 5); // an odd count of blocks (33): the last block pair has one
    check_type(GL_TYPE_MXFP4, 2880, 7, 2);  // gpt-oss's width
}

int main(void) {
    if (&gl_kernels_avx512 == NULL || !gl_cpu_has_avx512()) {
        printf("test_lowbit_avx512: no AVX-512 set on this build or CPU, skipped\n");
        return TEST_SKIP;
    }
    check_all();
    // the kernels' other build too: with VBMI when the CPU has it, the first pass ran that one
    if (&gl_lowbit_use_vbmi != NULL && gl_lowbit_use_vbmi) {
        gl_lowbit_use_vbmi = false;
        check_all();
        gl_lowbit_use_vbmi = true;
    }
    return test_result("test_lowbit_avx512");
}
