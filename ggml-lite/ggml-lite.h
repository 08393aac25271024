// ggml-lite: tensor types, block formats, kernels and a threadpool.
// Knows nothing of models. Block layouts and type ids are ggml's, byte for byte.
#ifndef GGML_LITE_H
#define GGML_LITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Type ids as in ggml (they are stored in GGUF files).
enum gl_type {
    GL_TYPE_F32 = 0,
    GL_TYPE_F16 = 1,
    GL_TYPE_Q4_0 = 2,
    GL_TYPE_Q4_1 = 3,
    GL_TYPE_Q5_0 = 6,
    GL_TYPE_Q5_1 = 7,
    GL_TYPE_Q8_0 = 8,
    GL_TYPE_Q8_1 = 9,
    GL_TYPE_Q2_K = 10,
    GL_TYPE_Q3_K = 11,
    GL_TYPE_Q4_K = 12,
    GL_TYPE_Q5_K = 13,
    GL_TYPE_Q6_K = 14,
    GL_TYPE_Q8_K = 15,
    GL_TYPE_IQ2_XXS = 16,
    GL_TYPE_IQ2_XS = 17,
    GL_TYPE_IQ3_XXS = 18,
    GL_TYPE_IQ1_S = 19,
    GL_TYPE_IQ4_NL = 20,
    GL_TYPE_IQ3_S = 21,
    GL_TYPE_IQ2_S = 22,
    GL_TYPE_IQ4_XS = 23,
    GL_TYPE_IQ1_M = 29,
    GL_TYPE_BF16 = 30,
    GL_TYPE_TQ1_0 = 34,
    GL_TYPE_TQ2_0 = 35,
    GL_TYPE_MXFP4 = 39,
    GL_TYPE_COUNT = 40, // ids >= this, and ids we do not implement, are rejected
};

typedef uint16_t gl_fp16; // IEEE half, raw bits
typedef uint16_t gl_bf16; // bfloat16, raw bits

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK4_NL 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { gl_fp16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { gl_fp16 d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { gl_fp16 d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { gl_fp16 d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { gl_fp16 d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { gl_fp16 d, s; int8_t qs[QK8_1]; } block_q8_1; // s = d * sum(qs)
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; gl_fp16 d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; gl_fp16 d; } block_q3_K;
typedef struct { gl_fp16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { gl_fp16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; gl_fp16 d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
typedef struct { gl_fp16 d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;
typedef struct { gl_fp16 d; uint16_t scales_h; uint8_t scales_l[QK_K / 64]; uint8_t qs[QK_K / 2]; } block_iq4_xs;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K");
_Static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl");
_Static_assert(sizeof(block_iq4_xs) == 136, "iq4_xs");

// ---- scalar conversions -------------------------------------------------------------
float gl_fp16_to_fp32(gl_fp16 h);
gl_fp16 gl_fp32_to_fp16(float f);  // round to nearest even
float gl_bf16_to_fp32(gl_bf16 h);
gl_bf16 gl_fp32_to_bf16(float f);  // round to nearest even, NaN kept quiet

// ---- type traits ----------------------------------------------------------------------
// A row of n elements of a type occupies n / blck_size * type_size bytes (n % blck_size == 0).
typedef void (*gl_to_float_fn)(const void *x, float *y, int64_t n);
typedef void (*gl_from_float_fn)(const float *x, void *y, int64_t n);
// Dot product of n elements: x is a row of the weight type, y a row of its vec_dot_type.
typedef void (*gl_vec_dot_fn)(int n, float *s, const void *x, const void *y);

typedef struct {
    const char *name;            // "Q4_K", as ggml names it
    int blck_size;               // elements per block (1 for F32/F16/BF16)
    size_t type_size;            // bytes per block
    bool is_quantized;
    gl_to_float_fn to_float;     // exact decoder (scalar reference)
    gl_from_float_fn from_float_ref; // reference quantizer (scalar; search-based for K-quants)
    gl_from_float_fn from_float; // fast quantizer used for activations (may be SIMD)
    gl_vec_dot_fn vec_dot;       // best kernel for this CPU
    gl_vec_dot_fn vec_dot_scalar;// scalar reference kernel (tests)
    enum gl_type vec_dot_type;   // the activation type vec_dot expects
} gl_type_traits;

// NULL for ids we do not implement.
const gl_type_traits *gl_get_type_traits(enum gl_type type);
const char *gl_type_name(enum gl_type type);    // "?" for unknown ids
bool gl_type_from_name(const char *name, enum gl_type *out); // case-insensitive
size_t gl_row_size(enum gl_type type, int64_t n); // bytes for n elements; 0 if n % blck != 0

// Quantize with an optional importance vector (imatrix, n_per_row floats; NULL = none).
// Writes nrows rows; returns bytes written. For types without imatrix support, ignores it.
size_t gl_quantize_rows(enum gl_type type, const float *src, void *dst, int64_t nrows,
                        int64_t n_per_row, const float *imatrix);

// ---- CPU features ---------------------------------------------------------------------
bool gl_cpu_has_avx2(void);   // AVX2 + FMA + F16C at run time
const char *gl_simd_name(void); // "avx2", "neon" or "scalar": what vec_dot uses

#ifdef __cplusplus
}
#endif
#endif
