// Matrix multiplication of a weight matrix by rows of activations, split across threads.
// Weights: n_out rows of n_in elements of wtype, row-major as in GGUF (ggml ne = [n_in, n_out]).
#ifndef GGML_LITE_MATMUL_H
#define GGML_LITE_MATMUL_H

#include "ggml-lite.h"
#include "threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

// Activations converted once to a weight's vec_dot_type, reusable for every weight that
// reads the same input (q/k/v, gate/up). Owns its buffer; grows as needed.
typedef struct {
    enum gl_type type; // vec_dot_type the rows are in
    int64_t n_in;      // elements per row
    int64_t n_tok;     // rows
    size_t row_bytes;
    void *data;
    size_t cap;
    // gl_matmul_rowwise's fast kernel reads the rows rearranged (built on first use)
    void *vx;
    size_t vx_cap;
    bool vx_ready;
} gl_act;

void gl_act_free(gl_act *a);
// Converts n_tok rows of n_in floats to `type` (threaded). Returns false on allocation failure.
bool gl_act_prepare(gl_act *a, gl_threadpool *tp, const float *x, int64_t n_tok, int64_t n_in,
                    enum gl_type type);

// Rows rows[0..n) of src (each < src->n_tok) copied into dst, as gl_act_prepare would have
// converted those rows of its input (e.g. a token's row once for every expert it chose).
bool gl_act_gather(gl_act *dst, const gl_act *src, const int *rows, int64_t n);

// Q8_0 activations' extras (after the rows): each block's scale as a float and sum(q), n_in / 32
// of each per token, token after token; NULL for the other types.
const float *gl_act_dy(const gl_act *a);
const int32_t *gl_act_ys(const gl_act *a);

// out[t * n_out + r] = dot(W row r, activation row t), for t < act->n_tok, r < n_out.
// act->type must be gl_get_type_traits(wtype)->vec_dot_type. Uses the batched (tiled) path
// when act->n_tok > 1.
void gl_matmul(gl_threadpool *tp, const void *w, enum gl_type wtype, int64_t n_out,
               const gl_act *act, float *out);

// As gl_matmul, but every activation row goes through the one-token kernel, so each output
// row is bitwise what gl_matmul gives for that row alone (batch-invariant: speculative
// decoding verifies a draft without changing the output). Weight rows are streamed once, in
// chunks that stay in cache while every token passes over them (with AVX512-VNNI, Q8_0, Q5_0
// and IQ4_NL run 4 rows x 4 tokens per pass, gen_n_vnni.c, about as fast per token as the
// prompt tiles). May add a rearranged copy of the rows to act (once, reused by every weight
// that reads it).
void gl_matmul_rowwise(gl_threadpool *tp, const void *w, enum gl_type wtype, int64_t n_out,
                       gl_act *act, float *out);

// Convenience: prepares a temporary activation and multiplies.
bool gl_matmul_f32(gl_threadpool *tp, const void *w, enum gl_type wtype, int64_t n_in,
                   int64_t n_out, const float *x, int64_t n_tok, float *out);

#ifdef __cplusplus
}
#endif
#endif
