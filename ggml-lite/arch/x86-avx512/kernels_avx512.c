// The AVX-512 set (F, BW, VL and VNNI: Ice Lake, Zen 4 and later): 512-bit prompt tiles and
// fused attention loops (attention_avx512.c). What it lacks (one-token kernels, vector ops, the
// other types) comes from the AVX2 set.
#include "dot.h"
#include "kernels_avx512.h"

const gl_kernel_set gl_kernels_avx512 = {
    .name = "avx512",
    .tile = {[GL_TYPE_Q4_0] = gl_tile16_matmul, [GL_TYPE_Q5_0] = gl_tile16_matmul,
             [GL_TYPE_Q8_0] = gl_tile16_matmul, [GL_TYPE_IQ4_NL] = gl_tile16_matmul,
             [GL_TYPE_Q4_K] = gl_tile16k_matmul, [GL_TYPE_Q5_K] = gl_tile16k_matmul,
             [GL_TYPE_Q6_K] = gl_tile16k_matmul, [GL_TYPE_IQ4_XS] = gl_tile16k_matmul},
    .attn = &gl_attn_ops_avx512,
};
