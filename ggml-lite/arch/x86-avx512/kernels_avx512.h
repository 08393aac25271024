// Internal to arch/x86-avx512: the kernels its set (kernels_avx512.c) lists.
#ifndef GGML_LITE_KERNELS_AVX512_H
#define GGML_LITE_KERNELS_AVX512_H

#include "dot.h"

// 16-row prompt tiles for Q4_0, Q5_0, Q8_0 and IQ4_NL against Q8_0 rows (gl_tile_fn).
bool gl_tile16_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                      size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs);

// The same for Q4_K, Q5_K, Q6_K and IQ4_XS against Q8_K rows (tile_k_avx512.c).
bool gl_tile16k_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                       size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs);

// Rows repacked into 16-row groups: Q4_K and Q6_K (repack_k_avx512.c), Q8_0 and Q4_0
// (repack_q8_avx512.c).
extern const gl_repack_kernels gl_repack_q4_K_avx512, gl_repack_q6_K_avx512;
extern const gl_repack_kernels gl_repack_q8_0_avx512, gl_repack_q4_0_avx512;

#endif
