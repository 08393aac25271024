// Internal to arch/x86-avx2: the tile and generation kernels the set's table (dot_avx2.c) lists.
// Signatures and what each computes: gl_tile_fn, gl_gen_fn, gl_gen_n_fn, gl_gen_nx in dot.h.
#ifndef GGML_LITE_KERNELS_AVX2_H
#define GGML_LITE_KERNELS_AVX2_H

#include "dot.h"

// Interleaved 8-row tiles (tile_q8_avx2.c) for Q4_0, Q5_0, Q8_0 and IQ4_NL against Q8_0 rows,
// bitwise the batched per-row kernel (vec_dot_nr) for every row and token.
bool gl_tile8_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                     const void *y, size_t by, const float *dy, const int32_t *ys, int n_tok,
                     float *out, size_t bs);
// The same for Q4_K, Q5_K and Q6_K against Q8_K rows (tile_k_avx2.c).
bool gl_tile8k_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                      const void *y, size_t by, const float *dy, const int32_t *ys, int n_tok,
                      float *out, size_t bs);
// F32 and F16 weights against rows of their type (tile_float_avx2.c), bitwise vec_dot_nr; false
// for widths that are not a multiple of 8.
bool gl_tile_float_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y, size_t by,
                          const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs);
// One token and n_tok tokens for the Q8_0 family (gen_avx2.c), bitwise vec_dot.
void gl_gen_rows(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                 const float *dy, const int32_t *ys, float *out);
void gl_gen_rows_n(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                   size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs);
// The same with AVX512-VNNI for Q8_0, Q5_0 and IQ4_NL on rearranged activations (gen_n_vnni.c).
extern const gl_gen_nx gl_gen_nx_vnni;
// Weights repacked at load into 16-row groups, read as two 8-row halves (repack_k_avx2.c,
// repack_q8_avx2.c; the layouts are the AVX-512 set's, repack_layout_x86.h).
extern const gl_repack_kernels gl_repack_q4_K_avx2, gl_repack_q6_K_avx2;
extern const gl_repack_kernels gl_repack_q8_0_avx2, gl_repack_q4_0_avx2;

#endif
