// Elementwise and small vector ops for the forward pass: norms, RoPE, softmax, activations,
// axpy-style helpers and the F16 rows of the KV cache, each run by the kernel set chosen for
// this CPU (arch/). Sizes are element counts; no op allocates. Unless said otherwise, out may be the same pointer as an input.
#ifndef GGML_LITE_OPS_H
#define GGML_LITE_OPS_H

#include <stdint.h>

#include "ggml-lite.h"

#ifdef __cplusplus
extern "C" {
#endif

// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]   (w == NULL: no weight)
void gl_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

// In place, numerically stable (subtracts the max). All -inf gives all zeros.
void gl_softmax(float *x, int n);

// out[i] = x[i] * sigmoid(x[i])
void gl_silu(float *out, const float *x, int n);
// out[i] = silu(gate[i]) * up[i]   (llama's FFN activation)
void gl_swiglu(float *out, const float *gate, const float *up, int n);

// The reference engine's softmax core over a row of n_row >= n entries of which [n, n_row) are
// masked (-inf, weight 0, not written): y[i] = e^(x[i] - sub) with its exp 8 at a time, each
// group's sum reduced in float as its 8-lane sum does and added in double; the n_row % 8 left
// over use the C library's expf. Returns the sum. y may be x.
double gl_exp_sum8(float *y, const float *x, float sub, int n, int n_row);
// y[i] = e^x[i] with that exp, 8 lanes at a time (no sum). y may be x.
void gl_exp_row(float *y, const float *x, int n);

void gl_vec_add(float *out, const float *a, const float *b, int n); // out = a + b
void gl_vec_scale(float *x, float s, int n);                       // x *= s
void gl_vec_mad(float *y, const float *x, float a, int n);         // y += a * x
float gl_vec_dot_f32(const float *a, const float *b, int n);

// F16 rows (F16C when available; round to nearest even, bit-exact with gl_fp32_to_fp16).
void gl_fp32_to_fp16_row(const float *x, gl_fp16 *y, int64_t n);
void gl_fp16_to_fp32_row(const gl_fp16 *x, float *y, int64_t n);
// Attention over an F16 KV cache: dot of an f16 key row with an f32 query,
// and y += a * (f16 value row).
float gl_vec_dot_f16_f32(const gl_fp16 *x, const float *y, int n);
void gl_vec_mad_f16(float *y, const gl_fp16 *x, float a, int n);

// ---- the reference engine's summation orders for attention and F32 adapters -------------
// dot of a KV-cache row (F16 or F32) with a float query. batch: one 8-lane accumulator (n % 8
// == 0); else four over steps of 32, reduced as hadd does, the rest added in double.
float gl_kv_dot(const void *k, bool f16, const float *q, int n, bool batch);
// acc[0..n) += w * v[0..n)   (fused, element by element)
void gl_kv_mad(float *acc, const void *v, bool f16, float w, int n);
// One token's weighted values into 32 slots of hd floats: slot l sums, in key order, the keys
// j with j % 32 == l (rows v_row bytes apart); gl_kv_reduce_32 then adds the slots of each
// element as the reference's one-token sum does.
void gl_kv_values_32(float *acc, const char *v, size_t v_row, bool f16, const float *w, int n_keys, int hd);
void gl_kv_reduce_32(float *out, const float *acc, int hd);
// F32 dots in the reference's orders: one token (4 x 8 lanes over steps of 32, the tail's
// products rounded then added) and a batch (8 lanes, n % 8 == 0, else as one token).
float gl_dot_f32_tok(const float *w, const float *x, int n);
float gl_dot_f32_batch(const float *w, const float *x, int n);
// out[j] = wt[.., j] · t for a transposed F32 matrix wt (rank rows of n_out, rank % 8 == 0):
// lane l of output j accumulates wt[8s+l][j] * t[8s+l], the 8 lanes summed as the batch dot.
void gl_dot_f32_lanes8(const float *wt, int rank, int n_out, const float *t, float *out);

// ---- RoPE ------------------------------------------------------------------------------
// Rotary position embedding. Pair i (0 <= i < n_rot/2) of each head turns by
//   theta_i = pos * freq_base^(-2i/n_rot) * freq_scale / freq_factors[i]
// NORM (ggml mode 0, llama): pairs are (x[2i], x[2i+1]).
// NEOX (ggml mode 2):        pairs are (x[i], x[i + n_rot/2]).
// Elements n_rot..head_dim-1 of each head are left as they are.
enum gl_rope_mode { GL_ROPE_NORM = 0, GL_ROPE_NEOX = 2 };

typedef struct {
    float freq_base;           // e.g. 10000 (0 means 10000)
    float freq_scale;          // 1 / linear scaling factor (0 means 1)
    const float *freq_factors; // n_rot/2 divisors (rope_freqs.weight), or NULL
    int n_rot;                 // rotated elements per head: even, <= head_dim (0 means head_dim)
    int mode;                  // GL_ROPE_NORM or GL_ROPE_NEOX
} gl_rope_params;

// Rotates n_heads consecutive heads of head_dim floats at position pos, in place.
void gl_rope(const gl_rope_params *p, float *x, int n_heads, int head_dim, int pos);

// The same split in two, to share the trig between q and k of one position (or many rows):
// gl_rope_cache writes n_rot floats (cos, sin of each pair) for pos; gl_rope_apply uses them.
void gl_rope_cache(const gl_rope_params *p, int head_dim, int pos, float *cs);
void gl_rope_apply(const gl_rope_params *p, const float *cs, float *x, int n_heads, int head_dim);

// Context shift of cached keys: the angles are linear in the position, so a key roped at p
// and turned by delta equals the key roped at p + delta (delta may be negative).
void gl_rope_shift(const gl_rope_params *p, float *x, int n_heads, int head_dim, int delta);
void gl_rope_shift_f16(const gl_rope_params *p, gl_fp16 *x, int n_heads, int head_dim, int delta);

// The arithmetic of a GGML_NATIVE AVX-512 reference build (ops_ref512.c), used instead of the
// above when LLAMALITE_REF=avx512: SiLU, the softmax core, and a single token's attention dots
// (a: element i at a[i * stride], F16 or F32, the first n_valid read and the rest zero).
bool gl_ref_avx512(void);
void gl_silu_ref512(float *out, const float *x, int n);
void gl_swiglu_ref512(float *out, const float *gate, const float *up, int n);
double gl_exp_sum_ref512(float *y, const float *x, float sub, int n, int n_row);
float gl_dot_ref512(const void *a, size_t stride, bool f16, int n_valid, const float *b, int n);

#ifdef __cplusplus
}
#endif
#endif
