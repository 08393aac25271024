// Internal to arch/x86-avx512: the low-bit types' kernels (tile_lowbit_avx512.c,
// tile_mxfp4_avx512.c, dot_lowbit_avx512.c, dot_mxfp4_avx512.c).
#ifndef GGML_LITE_KERNELS_AVX512_LOWBIT_H
#define GGML_LITE_KERNELS_AVX512_LOWBIT_H

#include "dot.h"

// 16-row prompt tiles for IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, TQ1_0 and
// TQ2_0 against Q8_K rows (a gl_tile_fn; false for other types or when out of memory).
bool gl_tile16_lowbit_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                             size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs);

// The same for MXFP4 against Q8_0 rows (tile_mxfp4_avx512.c).
bool gl_tile16_mxfp4_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                            size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs);

// Their entries in the set's tile table.
#define GL_AVX512_LOWBIT_TILES                                                                                 \
    [GL_TYPE_IQ2_XXS] = gl_tile16_lowbit_matmul, [GL_TYPE_IQ2_XS] = gl_tile16_lowbit_matmul,                    \
    [GL_TYPE_IQ2_S] = gl_tile16_lowbit_matmul, [GL_TYPE_IQ3_XXS] = gl_tile16_lowbit_matmul,                     \
    [GL_TYPE_IQ3_S] = gl_tile16_lowbit_matmul, [GL_TYPE_IQ1_S] = gl_tile16_lowbit_matmul,                       \
    [GL_TYPE_IQ1_M] = gl_tile16_lowbit_matmul, [GL_TYPE_TQ1_0] = gl_tile16_lowbit_matmul,                       \
    [GL_TYPE_TQ2_0] = gl_tile16_lowbit_matmul, [GL_TYPE_MXFP4] = gl_tile16_mxfp4_matmul

// One-token kernels (dot_lowbit_avx512.c) for the types decoded straight into vectors, and
// MXFP4's (dot_mxfp4_avx512.c); the batched entries run them row by row (bitwise the one-token
// kernel).
#define GL_AVX512_LOWBIT_DOT(T)                                                      \
    void gl_dot_##T##_avx512(int n, float *s, const void *x, const void *y);        \
    void gl_dot_##T##_nr_avx512(int n, float *s, size_t bs, const void *x, const void *y, size_t by, int nr);
// The same kernels built with AVX512-VBMI (dot_lowbit_vbmi_avx512.c, tile_lowbit_vbmi_avx512.c:
// grid lookups by byte permutes), which the entries above run when gl_lowbit_vbmi().
#define GL_AVX512_LOWBIT_VBMI_DOT(T)                                                   \
    void gl_dot_##T##_vbmi_avx512(int n, float *s, const void *x, const void *y);     \
    void gl_dot_##T##_nr_vbmi_avx512(int n, float *s, size_t bs, const void *x, const void *y, size_t by, int nr);
GL_AVX512_LOWBIT_VBMI_DOT(iq2_xxs)
GL_AVX512_LOWBIT_VBMI_DOT(iq2_s)
GL_AVX512_LOWBIT_VBMI_DOT(iq3_xxs)
GL_AVX512_LOWBIT_VBMI_DOT(iq3_s)
GL_AVX512_LOWBIT_VBMI_DOT(iq1_m)
#undef GL_AVX512_LOWBIT_VBMI_DOT
bool gl_tile16_lowbit_matmul_vbmi(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                                  size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs);

// Whether the VBMI builds run: the CPU has AVX512-VBMI (set at start; tests turn it off to check
// the other build too).
extern bool gl_lowbit_use_vbmi;
static inline bool gl_lowbit_vbmi(void) { return gl_lowbit_use_vbmi; }

GL_AVX512_LOWBIT_DOT(iq2_xxs)
GL_AVX512_LOWBIT_DOT(iq2_s)
GL_AVX512_LOWBIT_DOT(iq3_xxs)
GL_AVX512_LOWBIT_DOT(iq3_s)
GL_AVX512_LOWBIT_DOT(iq1_m)
GL_AVX512_LOWBIT_DOT(mxfp4) // (dot_mxfp4_avx512.c)
#undef GL_AVX512_LOWBIT_DOT

// MXFP4's generation kernel: four rows per pass over the activation, bitwise its vec_dot.
void gl_gen_mxfp4_avx512(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                         const float *dy, const int32_t *ys, float *out);
#define GL_AVX512_LOWBIT_GEN [GL_TYPE_MXFP4] = gl_gen_mxfp4_avx512

#define GL_AVX512_LOWBIT_DOTS(SUFFIX)                                                                        \
    [GL_TYPE_IQ2_XXS] = gl_dot_iq2_xxs##SUFFIX, [GL_TYPE_IQ2_S] = gl_dot_iq2_s##SUFFIX,          \
    [GL_TYPE_IQ3_XXS] = gl_dot_iq3_xxs##SUFFIX,                   \
    [GL_TYPE_IQ3_S] = gl_dot_iq3_s##SUFFIX, [GL_TYPE_IQ1_M] = gl_dot_iq1_m##SUFFIX,               \
    [GL_TYPE_MXFP4] = gl_dot_mxfp4##SUFFIX

#endif
