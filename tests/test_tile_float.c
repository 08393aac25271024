// F32 and F16 weights in a batch (a mixture-of-experts router, float projections): gl_matmul
// must give bitwise what the batched per-row kernel (vec_dot_nr, one weight row at a time)
// gives for every row and token, whichever tile the kernel set runs it with. The reference
// engine's goldens were made with that order, and a router's near ties turn a last-bit
// difference into another expert. Ragged row and token counts, widths with and without a
// multiple of 8 (those sum in the one-token order), 1 and 2 threads.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/dot.h"
#include "ggml-lite/matmul.h"
#include "tests/test_util.h"

static uint64_t rng = 0x6A09E667F3BCC909ull;

static void check(gl_threadpool *tp, enum gl_type type, int n_in, int n_out, int n_tok) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const size_t wrow = gl_row_size(type, n_in);
    float *wf = malloc(sizeof(float) * n_in), *x = malloc(sizeof(float) * n_in * n_tok);
    float *out = malloc(sizeof(float) * n_out * n_tok), *want = malloc(sizeof(float) * n_out * n_tok);
    uint8_t *w = malloc(wrow * n_out);
    // rows of very different scales, so that any other summation order shows in the last bits
    for (int r = 0; r < n_out; r++) {
        for (int i = 0; i < n_in; i++) wf[i] = test_gauss(&rng) * (float)(1 << (r % 7));
        tr->from_float_ref(wf, w + (size_t)r * wrow, n_in);
    }
    for (int i = 0; i < n_in * n_tok; i++) x[i] = test_gauss(&rng);
    gl_act act = {0};
    CHECK(gl_act_prepare(&act, tp, x, n_tok, n_in, tr->vec_dot_type), "act_prepare");
    const gl_vec_dot_nr_fn nrf = gl_get_vec_dot_nr(type);
    for (int t = 0; t < n_tok; t++)
        for (int r = 0; r < n_out; r++) {
            const void *wr = w + (size_t)r * wrow, *yt = (const char *)act.data + (size_t)t * act.row_bytes;
            float *o = &want[(size_t)t * n_out + r];
            if (n_tok == 1 || !nrf) tr->vec_dot(n_in, o, wr, yt);
            else nrf(n_in, o, (size_t)n_out, wr, yt, act.row_bytes, 1);
        }
    gl_matmul(tp, w, type, n_out, &act, out);
    int differ = 0, first = -1;
    for (int i = 0; i < n_out * n_tok; i++)
        if (memcmp(&out[i], &want[i], sizeof(float)) != 0 && differ++ == 0) first = i;
    CHECK(differ == 0, "%s n_in=%d n_out=%d n_tok=%d threads=%d: %d outputs differ from the per-row kernel, first "
          "[%d][%d] %a vs %a", tr->name, n_in, n_out, n_tok, gl_threadpool_n_threads(tp), differ,
          first < 0 ? 0 : first / n_out, first < 0 ? 0 : first % n_out, first < 0 ? 0.0 : out[first],
          first < 0 ? 0.0 : want[first]);
    gl_act_free(&act);
    free(wf), free(x), free(out), free(want), free(w);
}

int main(void) {
    printf("kernels: %s (float tile: %s)\n", gl_simd_name(), gl_kernels()->tile[GL_TYPE_F32] ? "yes" : "none");
    const enum gl_type types[] = {GL_TYPE_F32, GL_TYPE_F16};
    const int widths[] = {8, 40, 1024, 1028, 2048};
    for (int nt = 1; nt <= 2; nt++) {
        gl_threadpool *tp = gl_threadpool_create(nt);
        CHECK(tp != NULL, "pool");
        if (!tp) continue;
        for (int k = 0; k < 2; k++)
            for (int wi = 0; wi < 5; wi++)
                for (int n_out = 1; n_out <= 9; n_out += 2)
                    for (int n_tok = 1; n_tok <= 8; n_tok++) check(tp, types[k], widths[wi], n_out, n_tok);
        check(tp, GL_TYPE_F32, 1024, 64, 128); // a router over a prompt
        check(tp, GL_TYPE_F16, 2048, 70, 37);
        gl_threadpool_free(tp);
    }
    return test_result("test_tile_float");
}
