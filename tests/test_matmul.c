// gl_matmul against a naive reference (dequantized weights x dequantized activations in
// double), for every weight type, with 1, 2, 3 and 5 threads, row counts that do not divide
// into the chunks, and 1..17 tokens (single-row path, batched tiles with ragged ends, more
// than one token block). Also gl_matmul_f32, gl_matmul_rowwise bitwise equal to one token at a
// time, gl_act reuse across sizes, and bad arguments.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/dot.h"
#include "ggml-lite/matmul.h"
#include "tests/test_util.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float gauss(void) { return test_gauss(&rng); }

static const enum gl_type types[] = {TEST_WEIGHT_TYPES};

// out and the reference must agree within float rounding of the dot products.
static void check_matmul(gl_threadpool *tp, enum gl_type type, int n_in, int n_out, int n_tok, gl_act *act) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    const gl_type_traits *vt = gl_get_type_traits(tr->vec_dot_type);
    const size_t wrow = gl_row_size(type, n_in);
    float *wf = malloc(sizeof(float) * n_in * n_out), *x = malloc(sizeof(float) * n_in * n_tok);
    float *wd = malloc(sizeof(float) * n_in * n_out), *xd = malloc(sizeof(float) * n_in * n_tok);
    float *out = malloc(sizeof(float) * n_out * n_tok), *out2 = malloc(sizeof(float) * n_out * n_tok);
    uint8_t *w = malloc(wrow * n_out);
    for (int i = 0; i < n_in * n_out; i++) wf[i] = gauss();
    for (int i = 0; i < n_in * n_tok; i++) x[i] = gauss();
    for (int r = 0; r < n_out; r++) {
        tr->from_float_ref(wf + (size_t)r * n_in, w + r * wrow, n_in);
        tr->to_float(w + r * wrow, wd + (size_t)r * n_in, n_in);
    }
    CHECK(gl_act_prepare(act, tp, x, n_tok, n_in, tr->vec_dot_type), "act_prepare");
    for (int t = 0; t < n_tok; t++) vt->to_float((const char *)act->data + t * act->row_bytes, xd + (size_t)t * n_in, n_in);
    for (int i = 0; i < n_out * n_tok; i++) out[i] = NAN;
    gl_matmul(tp, w, type, n_out, act, out);
    int bad = 0;
    for (int t = 0; t < n_tok; t++)
        for (int r = 0; r < n_out; r++) {
            double s = 0, mag = 1e-30;
            for (int i = 0; i < n_in; i++) {
                const double p = (double)wd[(size_t)r * n_in + i] * xd[(size_t)t * n_in + i];
                s += p;
                mag += fabs(p);
            }
            // Q4_1/Q5_1 use the fp16-rounded block sums of Q8_1.
            const double tol = tr->vec_dot_type == GL_TYPE_Q8_1 ? 1e-3 : 3e-5;
            const float o = out[(size_t)t * n_out + r];
            if (!(fabs(o - s) <= tol * mag) && bad++ < 3)
                CHECK(0, "%s n_in=%d n_out=%d n_tok=%d threads=%d: out[%d][%d] = %g, want %g",
                      tr->name, n_in, n_out, n_tok, gl_threadpool_n_threads(tp), t, r, o, s);
        }
    CHECK(bad == 0, "%s: %d wrong outputs", tr->name, bad);
    // The convenience wrapper gives the same numbers.
    CHECK(gl_matmul_f32(tp, w, type, n_in, n_out, x, n_tok, out2), "matmul_f32");
    CHECK(memcmp(out, out2, sizeof(float) * n_out * n_tok) == 0, "%s matmul_f32 differs", tr->name);
    // Batch-invariant: each token of gl_matmul_rowwise is bitwise gl_matmul of that token alone.
    if (n_tok > 1) {
        gl_matmul_rowwise(tp, w, type, n_out, act, out2);
        gl_act one = {0};
        int diff = 0;
        for (int t = 0; t < n_tok; t++) {
            CHECK(gl_act_prepare(&one, tp, x + (size_t)t * n_in, 1, n_in, tr->vec_dot_type), "act_prepare 1");
            gl_matmul(tp, w, type, n_out, &one, out);
            diff += memcmp(out, out2 + (size_t)t * n_out, sizeof(float) * n_out) != 0;
        }
        CHECK(diff == 0, "%s n_in=%d n_out=%d n_tok=%d: rowwise differs from one token at a time in %d tokens",
              tr->name, n_in, n_out, n_tok, diff);
        gl_act_free(&one);
    }
    free(wf); free(x); free(wd); free(xd); free(out); free(out2); free(w);
}

static void run_all(void) {
    const int threads[] = {1, 2, 3, 5};
    gl_act act = {0};
    for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
        gl_threadpool *tp = gl_threadpool_create(threads[ti]);
        CHECK(tp != NULL, "pool");
        if (!tp) continue;
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            const gl_type_traits *tr = gl_get_type_traits(types[k]);
            const int n_in = tr->blck_size == QK_K ? 512 : 96;
            // Row counts: below the chunk size, ragged, and large enough to be split.
            const int outs[] = {1, 7, 37, 203};
            for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++) {
                if (threads[ti] != 2 && o == 1) continue; // keep the run short
                for (int n_tok = 1; n_tok <= 17; n_tok += (n_tok < 6 ? 1 : 5))
                    check_matmul(tp, types[k], n_in, outs[o], n_tok, &act);
            }
        }
        // Several token blocks (> 64 tokens) with a ragged last tile.
        check_matmul(tp, GL_TYPE_Q4_0, 64, 45, 131, &act);
        check_matmul(tp, GL_TYPE_Q6_K, 256, 19, 70, &act);
        // Single tokens on matrices big enough to be split across the threads.
        check_matmul(tp, GL_TYPE_Q4_0, 1024, 203, 1, &act);
        check_matmul(tp, GL_TYPE_Q4_K, 2048, 77, 1, &act);
        check_matmul(tp, GL_TYPE_Q6_K, 1024, 130, 1, &act);
        // Many threads on a one-row matrix.
        check_matmul(tp, GL_TYPE_Q8_0, 4096, 1, 1, &act);
        gl_threadpool_free(tp);
    }
    // Without a pool.
    check_matmul(NULL, GL_TYPE_Q4_K, 256, 9, 3, &act);
    gl_act_free(&act);
    gl_act_free(&act);
}

int main(void) {
    // LLAMALITE_ISA=avx2 (ctest's *_avx2 runs) on a CPU without it: nothing to test.
    const char *isa = getenv("LLAMALITE_ISA");
    if (isa && strcmp(isa, "avx2") == 0 && !gl_cpu_has_avx2()) return TEST_SKIP;
    gl_act act = {0};
    // The x86 tiles' AVX2 path, then their VNNI path where the CPU has one.
    gl_tile8_vnni = 0;
    run_all();
    if (gl_cpu_has_avx512vnni()) {
        gl_tile8_vnni = 1;
        run_all();
    }
    // Bad arguments are refused, not crashed on.
    CHECK(!gl_act_prepare(&act, NULL, NULL, 1, 100, GL_TYPE_Q8_0), "n_in not a multiple of 32");
    CHECK(!gl_act_prepare(&act, NULL, NULL, 1, 64, (enum gl_type)4), "bad type");
    CHECK(!gl_matmul_f32(NULL, NULL, GL_TYPE_Q8_1, 32, 1, NULL, 1, NULL), "Q8_1 has no kernel");
    gl_act_free(&act);
    return test_result("test_matmul");
}
