// The low-bit formats: i-quants on lattices (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
// IQ3_S), ternary (TQ1_0, TQ2_0) and MXFP4 (gpt-oss experts). Block layouts are ggml's, byte for
// byte. Every super-block of 256 unpacks (gl_unpack_lowbit) to small signed integers q[256] and
// 16 integer scales (one per 16 elements), with
//     x[e] = d * ls[e / 16] * q[e] / div
// so the decoders and the scalar dot kernels read the format in one place.
#ifndef GGML_LITE_QUANTS_LOWBIT_H
#define GGML_LITE_QUANTS_LOWBIT_H

#include <stdbool.h>
#include <stdint.h>

#include "ggml-lite.h"

#define QK_MXFP4 32

typedef struct { gl_fp16 d; uint16_t qs[QK_K / 8]; } block_iq2_xxs;
typedef struct { gl_fp16 d; uint16_t qs[QK_K / 8]; uint8_t scales[QK_K / 32]; } block_iq2_xs;
typedef struct { gl_fp16 d; uint8_t qs[QK_K / 4]; uint8_t qh[QK_K / 32]; uint8_t scales[QK_K / 32]; } block_iq2_s;
typedef struct { gl_fp16 d; uint8_t qs[3 * QK_K / 8]; } block_iq3_xxs;
typedef struct { gl_fp16 d; uint8_t qs[QK_K / 4]; uint8_t qh[QK_K / 32]; uint8_t signs[QK_K / 8]; uint8_t scales[QK_K / 64]; } block_iq3_s;
typedef struct { gl_fp16 d; uint8_t qs[QK_K / 8]; uint16_t qh[QK_K / 32]; } block_iq1_s;
// IQ1_M has no separate d: its fp16 bits are the top nibbles of the four 16-bit scale words.
typedef struct { uint8_t qs[QK_K / 8]; uint8_t qh[QK_K / 16]; uint8_t scales[QK_K / 32]; } block_iq1_m;
typedef struct { uint8_t qs[(QK_K - 4 * QK_K / 64) / 5]; uint8_t qh[QK_K / 64]; gl_fp16 d; } block_tq1_0;
typedef struct { uint8_t qs[QK_K / 4]; gl_fp16 d; } block_tq2_0;
typedef struct { uint8_t e; uint8_t qs[QK_MXFP4 / 2]; } block_mxfp4; // e: E8M0 exponent

_Static_assert(sizeof(block_iq2_xxs) == 66, "iq2_xxs");
_Static_assert(sizeof(block_iq2_xs) == 74, "iq2_xs");
_Static_assert(sizeof(block_iq2_s) == 82, "iq2_s");
_Static_assert(sizeof(block_iq3_xxs) == 98, "iq3_xxs");
_Static_assert(sizeof(block_iq3_s) == 110, "iq3_s");
_Static_assert(sizeof(block_iq1_s) == 50, "iq1_s");
_Static_assert(sizeof(block_iq1_m) == 56, "iq1_m");
_Static_assert(sizeof(block_tq1_0) == 54, "tq1_0");
_Static_assert(sizeof(block_tq2_0) == 66, "tq2_0");
_Static_assert(sizeof(block_mxfp4) == 17, "mxfp4");

// One super-block of 256 as integers: x[e] = d * ls[e / 16] * q[e] / div.
typedef struct {
    float d;
    int div;
    int16_t ls[16];
    int8_t q[QK_K];
} gl_lowbit_block;

// Unpacks super-block i of a row of `type` (one of the 256-element low-bit types). False for
// other types.
bool gl_unpack_lowbit(enum gl_type type, const void *row, int64_t i, gl_lowbit_block *out);
bool gl_is_lowbit_type(enum gl_type type); // the 256-element types above (not MXFP4)

// The doubled E2M1 values of MXFP4 and its block scale: 2^(e - 128), i.e. half of E8M0.
extern const int8_t gl_mxfp4_values[16];
static inline float gl_e8m0_half(uint8_t e) {
    union { float f; uint32_t u; } v;
    v.u = e >= 2 ? (uint32_t)(e - 1) << 23 : 0x00200000u << e; // e < 2: subnormal halves
    return v.f;
}

#endif
