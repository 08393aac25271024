// Repacked weights (ggml-lite/repack.h) against the plain rows: for Q4_K, Q6_K, Q8_0 and Q4_0,
// random rows at widths of 1 to 22 super-blocks (1 to 176 blocks of 32), row counts of one and several 16-row groups, and token
// counts around every kernel tail (passes of 4 tokens, chunks of super-blocks, token blocks):
//  - every output within float rounding of the plain per-row kernel (vec_dot);
//  - every token's outputs bitwise what a one-token call gives (speculative decoding verifies
//    with the batch what generation computes one token at a time);
//  - one and two threads alike.
// Skipped where the kernels in use have no repacked layout (the scalar and NEON sets). ctest runs
// it with the CPU's best set and again with the AVX2 set's kernels (test_repack_avx2).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/repack.h"
#include "tests/test_util.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static void check(gl_threadpool *tp, enum gl_type type, int n_in, int n_out, int n_tok) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const size_t wrow = gl_row_size(type, n_in);
    uint8_t *w = malloc(wrow * n_out);
    float *wf = malloc(sizeof(float) * n_in), *x = malloc(sizeof(float) * (size_t)n_in * n_tok);
    for (int r = 0; r < n_out; r++) {
        const float scale = powf(2.0f, (float)(r % 7) - 3.0f);
        for (int i = 0; i < n_in; i++) wf[i] = test_gauss(&rng) * scale;
        tr->from_float_ref(wf, w + (size_t)r * wrow, n_in);
    }
    for (int i = 0; i < n_in * n_tok; i++) x[i] = test_gauss(&rng);
    const size_t size = gl_repack_size(type, n_in, n_out);
    CHECK(size > 0, "%s: repack size", tr->name);
    void *packed = NULL;
    if (posix_memalign(&packed, 64, size) != 0) return;
    // in two halves, as the loader's threads would
    const int64_t mid = n_out / 32 * 16;
    gl_repack_rows(type, w, n_in, 0, mid, packed);
    gl_repack_rows(type, w, n_in, mid, n_out, packed);

    gl_act act = {0}, one = {0};
    CHECK(gl_act_prepare(&act, tp, x, n_tok, n_in, tr->vec_dot_type), "act");
    float *out = malloc(sizeof(float) * (size_t)n_out * n_tok), *o1 = malloc(sizeof(float) * n_out);
    gl_matmul_repacked(tp, packed, type, n_out, &act, out);
    const gl_type_traits *vt = gl_get_type_traits(tr->vec_dot_type);
    float *wd = malloc(sizeof(float) * n_in), *yd = malloc(sizeof(float) * n_in);
    int bad = 0, diff = 0;
    for (int t = 0; t < n_tok; t++) {
        const char *yt = (const char *)act.data + (size_t)t * act.row_bytes;
        vt->to_float(yt, yd, n_in);
        for (int r = 0; r < n_out; r++) {
            float want;
            tr->vec_dot(n_in, &want, w + (size_t)r * wrow, yt);
            tr->to_float(w + (size_t)r * wrow, wd, n_in);
            double mag = 1e-30;
            for (int i = 0; i < n_in; i++) mag += fabs((double)wd[i] * yd[i]);
            const float got = out[(size_t)t * n_out + r];
            if (!(fabs((double)got - want) <= 1e-5 * mag) && bad++ == 0)
                fprintf(stderr, "%s n_in=%d n_out=%d n_tok=%d: out[%d][%d] = %g, vec_dot %g\n", tr->name, n_in, n_out,
                        n_tok, t, r, got, want);
        }
        // the same token alone
        CHECK(gl_act_prepare(&one, tp, x + (size_t)t * n_in, 1, n_in, tr->vec_dot_type), "act");
        gl_matmul_repacked(tp, packed, type, n_out, &one, o1);
        if (memcmp(o1, out + (size_t)t * n_out, sizeof(float) * n_out) != 0 && diff++ == 0)
            fprintf(stderr, "%s n_in=%d n_out=%d n_tok=%d: token %d differs from its one-token result\n", tr->name,
                    n_in, n_out, n_tok, t);
    }
    CHECK(bad == 0, "%s n_in=%d n_out=%d n_tok=%d threads=%d: %d outputs off the plain kernel", tr->name, n_in, n_out,
          n_tok, gl_threadpool_n_threads(tp), bad);
    CHECK(diff == 0, "%s n_in=%d n_out=%d n_tok=%d threads=%d: %d tokens not batch-invariant", tr->name, n_in, n_out,
          n_tok, gl_threadpool_n_threads(tp), diff);
    gl_act_free(&act);
    gl_act_free(&one);
    free(packed); free(w); free(wf); free(x); free(out); free(o1); free(wd); free(yd);
}

int main(void) {
    const enum gl_type types[] = {GL_TYPE_Q4_K, GL_TYPE_Q6_K, GL_TYPE_Q8_0, GL_TYPE_Q4_0};
    if (!gl_repack_available(GL_TYPE_Q4_K, QK_K, 16)) {
        printf("kernels %s: no repacked layouts\n", gl_simd_name());
        return TEST_SKIP;
    }
    CHECK(!gl_repack_available(GL_TYPE_Q4_K, QK_K, 24), "row counts off the 16-row groups are not repacked");
    CHECK(!gl_repack_available(GL_TYPE_Q4_K, 96, 16), "widths off the super-blocks are not repacked");
    for (int nth = 1; nth <= 2; nth++) {
        gl_threadpool *tp = gl_threadpool_create(nth);
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            const bool kq = gl_get_type_traits(types[ti])->blck_size == QK_K;
            const int widths_k[] = {256, 768, 1280, 5632}, widths_32[] = {32, 96, 544, 5632};
            const int *widths = kq ? widths_k : widths_32;
            for (int wi = 0; wi < 4; wi++)
                for (int n_tok = 1; n_tok <= 11; n_tok += n_tok < 6 ? 1 : 5) check(tp, types[ti], widths[wi], 48, n_tok);
            check(tp, types[ti], 2048, 16, 300); // token blocks of at most 256
            check(tp, types[ti], 5632, 160, 37);
        }
        gl_threadpool_free(tp);
    }
    return test_result("test_repack");
}
