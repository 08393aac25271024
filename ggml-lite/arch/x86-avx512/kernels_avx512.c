// The AVX-512 set (F, BW, VL and VNNI: Ice Lake, Zen 4 and later): 512-bit prompt tiles, the
// low-bit types' one-token kernels, the kernels of weights repacked at load (repack.h) and the
// fused attention loops (attention_avx512.c). What it lacks (the other one-token kernels, vector
// ops, the other types) comes from the AVX2 set.
#include "dot.h"
#include "kernels_avx512.h"
#include "kernels_avx512_lowbit.h"

const gl_kernel_set gl_kernels_avx512 = {
    .name = "avx512",
    .vec_dot = {GL_AVX512_LOWBIT_DOTS(_avx512)},
    .vec_dot_nr = {GL_AVX512_LOWBIT_DOTS(_nr_avx512)},
    .gen = {GL_AVX512_LOWBIT_GEN},
    .tile = {[GL_TYPE_Q4_0] = gl_tile16_matmul, [GL_TYPE_Q5_0] = gl_tile16_matmul,
             [GL_TYPE_Q8_0] = gl_tile16_matmul, [GL_TYPE_IQ4_NL] = gl_tile16_matmul,
             [GL_TYPE_Q4_K] = gl_tile16k_matmul, [GL_TYPE_Q5_K] = gl_tile16k_matmul,
             [GL_TYPE_Q6_K] = gl_tile16k_matmul, [GL_TYPE_IQ4_XS] = gl_tile16k_matmul, GL_AVX512_LOWBIT_TILES},
    .repack = {[GL_TYPE_Q4_K] = &gl_repack_q4_K_avx512, [GL_TYPE_Q6_K] = &gl_repack_q6_K_avx512,
               [GL_TYPE_Q8_0] = &gl_repack_q8_0_avx512, [GL_TYPE_Q4_0] = &gl_repack_q4_0_avx512},
    .attn = &gl_attn_ops_avx512,
    .attn_bf16 = &gl_attn_ops_avx512_bf16,
};
