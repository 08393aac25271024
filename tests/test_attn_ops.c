// The fused attention kernel's tile loops (gl_attn_ops) and the exp row of the kernel set chosen
// for this CPU give bitwise what the scalar set's give, so fused attention rounds alike on every
// set (LLAMALITE_ISA=scalar reproduces an AVX2 run). Head sizes hit the 8-key and 32-element
// vector bodies and their tails.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/dot.h"
#include "ggml-lite/ops.h"
#include "ggml-lite/quants.h"
#include "tests/test_util.h"

static uint64_t rng = 0x51ED2701ull;
static float gauss(void) { return test_gauss(&rng); }

static int first_diff(const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
    return -1;
}

enum { MAX_KEYS = 32, MAX_HD = 264 };

static void test_dots(const gl_attn_ops *set, const gl_attn_ops *ref) {
    static const int hds[] = {8, 40, 64, 100, 128, 256, 264};
    static float q[MAX_HD], k[MAX_KEYS * MAX_HD], got[MAX_KEYS], want[MAX_KEYS];
    for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++)
        for (int n = 1; n <= MAX_KEYS; n += 5) {
            const int hd = hds[h];
            for (int i = 0; i < hd; i++) q[i] = gauss();
            for (int i = 0; i < n * hd; i++) k[i] = gauss();
            set->dots(q, k, n, hd, got);
            ref->dots(q, k, n, hd, want);
            const int d = first_diff(got, want, n);
            CHECK(d < 0, "dots hd=%d n=%d: key %d %a, scalar set %a", hd, n, d, d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
        }
}

static void test_accumulate(const gl_attn_ops *set, const gl_attn_ops *ref) {
    static const int hds[] = {8, 40, 64, 100, 128};
    static float v[MAX_KEYS * MAX_HD], w[MAX_KEYS], rescale[MAX_KEYS], got[MAX_HD], want[MAX_HD];
    for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++) {
        const int hd = hds[h], n = MAX_KEYS;
        for (int i = 0; i < n * hd; i++) v[i] = gauss();
        for (int j = 0; j < n; j++) w[j] = expf(gauss()), rescale[j] = expf(-fabsf(gauss()));
        for (int i = 0; i < hd; i++) got[i] = want[i] = gauss();
        const uint32_t grows = 0x80402101u; // a few keys raise the maximum
        set->accumulate(got, v, w, rescale, grows, n, hd);
        ref->accumulate(want, v, w, rescale, grows, n, hd);
        const int d = first_diff(got, want, hd);
        CHECK(d < 0, "accumulate hd=%d: element %d %a, scalar set %a", hd, d, d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
    }
}

static void test_sum_exp(const gl_attn_ops *set, const gl_attn_ops *ref) {
    static float x[MAX_KEYS + 7], got[MAX_KEYS + 7], want[MAX_KEYS + 7];
    const gl_vec_ops *ops = gl_kernels()->ops;
    for (int n = 1; n <= MAX_KEYS + 7; n++) {
        for (int j = 0; j < n; j++) x[j] = 4 * gauss();
        if (n > 3) x[n / 2] = -INFINITY; // a masked key
        const float a = set->sum(x, n), b = ref->sum(x, n);
        CHECK(memcmp(&a, &b, sizeof a) == 0, "sum n=%d: %a, scalar set %a", n, a, b);
        ops->exp_row(got, x, n);
        gl_vec_ops_scalar.exp_row(want, x, n);
        const int d = first_diff(got, want, n);
        CHECK(d < 0, "exp_row n=%d: element %d %a, scalar set %a", n, d, d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
        CHECK(n <= 3 || want[n / 2] == 0.0f, "exp_row n=%d: e^-inf = %a", n, want[n / 2]);
    }
}

static void test_q8_0(const gl_attn_ops *set, const gl_attn_ops *ref) {
    enum { N = 4 * QK8_0 };
    float x[N], got[N], want[N];
    block_q8_0 b[N / QK8_0];
    for (int i = 0; i < N; i++) x[i] = gauss();
    gl_get_type_traits(GL_TYPE_Q8_0)->from_float_ref(x, b, N);
    set->q8_0_to_f32(b, got, N);
    ref->q8_0_to_f32(b, want, N);
    const int d = first_diff(got, want, N);
    CHECK(d < 0, "q8_0_to_f32: element %d %a, scalar set %a", d, d < 0 ? 0.0 : got[d], d < 0 ? 0.0 : want[d]);
    gl_get_type_traits(GL_TYPE_Q8_0)->to_float(b, x, N);
    CHECK(first_diff(x, want, N) < 0, "q8_0_to_f32 differs from the type's own decoder");
}

int main(void) {
    const gl_kernel_set *k = gl_kernels();
    printf("kernels: %s\n", k->name);
    CHECK(k->attn != NULL, "the chosen kernels have no attention loops");
    if (!k->attn) return test_failures ? 1 : 0;
    test_dots(k->attn, &gl_attn_ops_scalar);
    test_accumulate(k->attn, &gl_attn_ops_scalar);
    test_sum_exp(k->attn, &gl_attn_ops_scalar);
    test_q8_0(k->attn, &gl_attn_ops_scalar);
    return test_failures ? 1 : 0;
}
