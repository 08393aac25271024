// Block formats: exact decoders and reference quantizers, byte-compatible with ggml.
//
// For every type T:
//   gl_dequant_row_T(x, y, n)      decode n elements (n a multiple of the block size)
//   gl_quant_row_T_ref(x, y, n)    quantize without importance weights; for the K-quants and
//                                  IQ4 this is the search-based quantizer llama.cpp uses when no
//                                  imatrix is given
// and for the types that accept importance weights:
//   gl_quant_row_T_imatrix(x, y, n, qw)  qw: n weights, one per element of x (the row's
//                                  slice of the imatrix); minimises the weighted error
//
// All of these are scalar and deterministic. Any input bytes decode without undefined
// behaviour; non-finite floats quantize to something (unspecified) without crashing.
#ifndef GGML_LITE_QUANTS_H
#define GGML_LITE_QUANTS_H

#include <stdint.h>

#include "ggml-lite.h"
#include "quants_lowbit.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GL_DECLARE_QUANT_FNS(T)                                            \
    void gl_dequant_row_##T(const void *x, float *y, int64_t n);           \
    void gl_quant_row_##T##_ref(const float *x, void *y, int64_t n);

#define GL_DECLARE_IMATRIX_FN(T)                                           \
    void gl_quant_row_##T##_imatrix(const float *x, void *y, int64_t n, const float *qw);

GL_DECLARE_QUANT_FNS(f32)
GL_DECLARE_QUANT_FNS(f16)
GL_DECLARE_QUANT_FNS(bf16)
GL_DECLARE_QUANT_FNS(q4_0)
GL_DECLARE_QUANT_FNS(q4_1)
GL_DECLARE_QUANT_FNS(q5_0)
GL_DECLARE_QUANT_FNS(q5_1)
// Activation quantizers (run time, Q8_0/Q8_1): the reference SIMD rounding, see quants.c.
void gl_quant_row_q8_0_act(const float *x, void *vy, int64_t n);
void gl_quant_row_q8_1_act(const float *x, void *vy, int64_t n);
GL_DECLARE_QUANT_FNS(q8_0)
GL_DECLARE_QUANT_FNS(q8_1)
GL_DECLARE_QUANT_FNS(q2_K)
GL_DECLARE_QUANT_FNS(q3_K)
GL_DECLARE_QUANT_FNS(q4_K)
GL_DECLARE_QUANT_FNS(q5_K)
GL_DECLARE_QUANT_FNS(q6_K)
GL_DECLARE_QUANT_FNS(q8_K)
GL_DECLARE_QUANT_FNS(iq4_nl)
GL_DECLARE_QUANT_FNS(iq4_xs)

// The low-bit types (quants_lowbit.c, quantize_lowbit.c).
GL_DECLARE_QUANT_FNS(iq2_xxs)
GL_DECLARE_QUANT_FNS(iq2_xs)
GL_DECLARE_QUANT_FNS(iq2_s)
GL_DECLARE_QUANT_FNS(iq3_xxs)
GL_DECLARE_QUANT_FNS(iq3_s)
GL_DECLARE_QUANT_FNS(iq1_s)
GL_DECLARE_QUANT_FNS(iq1_m)
GL_DECLARE_QUANT_FNS(tq1_0)
GL_DECLARE_QUANT_FNS(tq2_0)
GL_DECLARE_QUANT_FNS(mxfp4)

GL_DECLARE_IMATRIX_FN(q4_0)
GL_DECLARE_IMATRIX_FN(q4_1)
GL_DECLARE_IMATRIX_FN(q5_0)
GL_DECLARE_IMATRIX_FN(q5_1)
GL_DECLARE_IMATRIX_FN(q2_K)
GL_DECLARE_IMATRIX_FN(q3_K)
GL_DECLARE_IMATRIX_FN(q4_K)
GL_DECLARE_IMATRIX_FN(q5_K)
GL_DECLARE_IMATRIX_FN(q6_K)
GL_DECLARE_IMATRIX_FN(iq4_nl)
GL_DECLARE_IMATRIX_FN(iq4_xs)
GL_DECLARE_IMATRIX_FN(iq2_xxs)
GL_DECLARE_IMATRIX_FN(iq2_xs)
GL_DECLARE_IMATRIX_FN(iq2_s)
GL_DECLARE_IMATRIX_FN(iq3_xxs)
GL_DECLARE_IMATRIX_FN(iq3_s)
GL_DECLARE_IMATRIX_FN(iq1_s)
GL_DECLARE_IMATRIX_FN(iq1_m)

// A Q6_K super-block's 256 six-bit levels (0..63, before the -32 offset), in element order:
// low 4 bits from ql, high 2 from qh. (The prompt tiles unpack rows through this.)
static inline void gl_q6_K_levels(const block_q6_K *b, uint8_t lv[256]) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        uint8_t *o = lv + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (uint8_t)((ql[l] & 0xf) | (qh[l] & 3) << 4);
            o[l + 32] = (uint8_t)((ql[l + 32] & 0xf) | (qh[l] >> 2 & 3) << 4);
            o[l + 64] = (uint8_t)((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4);
            o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4);
        }
    }
}

// The 16 levels of the IQ4 formats (IQ4_NL, IQ4_XS), in increasing order.
extern const int8_t gl_iq4nl_values[16];

// ---- shared search helpers (quants_search.c), internal to the quantizers ------------------

// Round to nearest, ties to even, for |v| < 2^22 (no undefined behaviour outside that range).
static inline int gl_nearest_int(float v) {
    union { float f; int32_t i; } u;
    u.f = v + 12582912.0f; // 1.5 * 2^23: the FPU rounds v into the mantissa's low bits
    return (int)(u.i & 0x007fffff) - 0x00400000;
}

// Symmetric quants L[i] in [0, 2*nmax) (stored with offset nmax) for x ~ scale * (L - nmax),
// minimising sum w[i] * (x[i] - scale * (L[i] - nmax))^2 over a sweep of 19 trial scales.
// Returns the scale (0 and all L = 0 for an all-zero group).
float gl_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *w);

// Like gl_make_qx_quants with weights x^2, refining quants one at a time instead of a scale
// sweep (Q3_K reference quantizer). L in [0, 2*nmax).
float gl_make_q3_quants(int n, int nmax, const float *x, int8_t *L);

// Asymmetric quants L[i] in [0, nmax] for x ~ scale * L - min (min >= 0 returned in *the_min).
// Starts from the min/max grid and tries nstep+1 grids of rmin + rdelta*k extra levels, each
// followed by a weighted least-squares fit of scale and min; keeps the lowest weighted error
// (absolute error if use_mad, else squared). Laux: n bytes of scratch.
float gl_make_qkx_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                         float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                         bool use_mad);

// Non-negative quants L[i] in [0, nmax] for x[i] >= 0 (the sub-block scales of the imatrix
// K-quants), minimising the w-weighted squared error. Returns the scale.
float gl_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *w);

// IQ4 quantization of one super-block of sb elements (32 for IQ4_NL, 256 for IQ4_XS) in
// blocks of 32 with the non-linear grid gl_iq4nl_values. qw: sb importance weights or NULL.
// Writes *d, the packed nibbles q4 (sb/2 bytes) and, when sb > 32, the 6-bit block scales
// (scales_h, scales_l as in block_iq4_xs).
void gl_quantize_iq4_superblock(int sb, const float *x, gl_fp16 *d, uint8_t *q4,
                                uint16_t *scales_h, uint8_t *scales_l, const float *qw);

#ifdef __cplusplus
}
#endif
#endif
