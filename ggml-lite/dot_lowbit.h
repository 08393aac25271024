// Internal: the low-bit types' dot kernels (dot_lowbit_*.c), registered in the kernel sets.
//   IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, TQ1_0, TQ2_0 against Q8_K rows;
//   MXFP4 against Q8_0 rows (as the reference pairs them).
#ifndef GGML_LITE_DOT_LOWBIT_H
#define GGML_LITE_DOT_LOWBIT_H

#include "dot.h"

#define GL_LOWBIT_TYPES(X) X(iq2_xxs) X(iq2_xs) X(iq2_s) X(iq3_xxs) X(iq3_s) X(iq1_s) X(iq1_m) X(tq1_0) X(tq2_0) X(mxfp4)

#define GL_DECLARE_LOWBIT_DOT(T) void gl_dot_##T##_scalar(int n, float *s, const void *x, const void *y);
GL_LOWBIT_TYPES(GL_DECLARE_LOWBIT_DOT)

// The AVX2 set's (arch/x86-avx2/dot_lowbit_avx2.c): one row and the batched entries.
#define GL_DECLARE_LOWBIT_DOT_AVX2(T)                                                      \
    void gl_dot_##T##_avx2(int n, float *s, const void *x, const void *y);                 \
    void gl_dot_##T##_nr_avx2(int n, float *s, size_t bs, const void *x, const void *y, size_t by, int nr);
GL_LOWBIT_TYPES(GL_DECLARE_LOWBIT_DOT_AVX2)
#undef GL_DECLARE_LOWBIT_DOT_AVX2
// Several tokens against rows of IQ1/IQ2/IQ3 weights (the prompt path, a gl_tile_fn; dy and ys
// unused): out[t * bs + r] for r < n_rows, t < n_tok, each bitwise what the one-row kernel
// gives. False for other types or when out of memory (nothing written).
bool gl_lowbit_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y, size_t by,
                      const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs);

// The designated initializers that register them, for the kernel tables.
#define GL_LOWBIT_ENTRIES(SUFFIX)                                                                 \
    [GL_TYPE_IQ2_XXS] = gl_dot_iq2_xxs_##SUFFIX, [GL_TYPE_IQ2_XS] = gl_dot_iq2_xs_##SUFFIX,       \
    [GL_TYPE_IQ2_S] = gl_dot_iq2_s_##SUFFIX, [GL_TYPE_IQ3_XXS] = gl_dot_iq3_xxs_##SUFFIX,         \
    [GL_TYPE_IQ3_S] = gl_dot_iq3_s_##SUFFIX, [GL_TYPE_IQ1_S] = gl_dot_iq1_s_##SUFFIX,             \
    [GL_TYPE_IQ1_M] = gl_dot_iq1_m_##SUFFIX, [GL_TYPE_TQ1_0] = gl_dot_tq1_0_##SUFFIX,             \
    [GL_TYPE_TQ2_0] = gl_dot_tq2_0_##SUFFIX, [GL_TYPE_MXFP4] = gl_dot_mxfp4_##SUFFIX

// The batched kernels (one weight row, 1..GL_DOT_NR activation rows; MXFP4 has none).
#define GL_LOWBIT_NR_ENTRIES(SUFFIX)                                                                    \
    [GL_TYPE_IQ2_XXS] = gl_dot_iq2_xxs_nr_##SUFFIX, [GL_TYPE_IQ2_XS] = gl_dot_iq2_xs_nr_##SUFFIX,       \
    [GL_TYPE_IQ2_S] = gl_dot_iq2_s_nr_##SUFFIX, [GL_TYPE_IQ3_XXS] = gl_dot_iq3_xxs_nr_##SUFFIX,         \
    [GL_TYPE_IQ3_S] = gl_dot_iq3_s_nr_##SUFFIX, [GL_TYPE_IQ1_S] = gl_dot_iq1_s_nr_##SUFFIX,             \
    [GL_TYPE_IQ1_M] = gl_dot_iq1_m_nr_##SUFFIX, [GL_TYPE_TQ1_0] = gl_dot_tq1_0_nr_##SUFFIX,             \
    [GL_TYPE_TQ2_0] = gl_dot_tq2_0_nr_##SUFFIX

// The prompt tile fn for the types it takes.
#define GL_LOWBIT_TILE_ENTRIES(FN)                                                                  \
    [GL_TYPE_IQ2_XXS] = FN, [GL_TYPE_IQ2_XS] = FN, [GL_TYPE_IQ2_S] = FN, [GL_TYPE_IQ3_XXS] = FN,    \
    [GL_TYPE_IQ3_S] = FN, [GL_TYPE_IQ1_S] = FN, [GL_TYPE_IQ1_M] = FN

#endif
