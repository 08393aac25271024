// Internal: dot-product kernels per ISA and the activation quantizers they read.
//
// Every weight type T has
//   vec_dot:     one weight row x one activation row (of T's vec_dot_type), n elements;
//   vec_dot_nr:  one weight row x nr (1..GL_DOT_NR) activation rows at stride `by` bytes,
//                writing s[j * bs] for row j. The matmul's batched path uses it so each
//                weight block is decoded once for several tokens.
// The scalar kernels are the reference; SIMD kernels agree with them within float rounding
// (they compute the same integer block sums and differ only in the order of float adds). The
// AVX2 kernels add in exactly the order of llama.cpp's AVX2 build (its one-token vec_dot for
// vec_dot, its batched GEMM for vec_dot_nr), and the tiles and generation kernels exactly as
// these per-row kernels (tests/test_kernel_order.c), so logits match the reference bitwise.
#ifndef GGML_LITE_DOT_H
#define GGML_LITE_DOT_H

#include <stddef.h>

#include "ggml-lite.h"

#define GL_DOT_NR 4 // activation rows per batched kernel call

typedef void (*gl_vec_dot_nr_fn)(int n, float *s, size_t bs, const void *x, const void *y,
                                 size_t by, int nr);

// One ISA's kernels, indexed by weight type (NULL where the ISA has none).
typedef struct {
    gl_vec_dot_fn vec_dot[GL_TYPE_COUNT];
    gl_vec_dot_nr_fn vec_dot_nr[GL_TYPE_COUNT];
    gl_from_float_fn from_float[GL_TYPE_COUNT]; // activation quantizers (Q8_0, Q8_1, Q8_K, F16, BF16)
} gl_kernel_set;

extern const gl_kernel_set gl_kernels_scalar;
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define GL_HAVE_AVX2_KERNELS 1
extern const gl_kernel_set gl_kernels_avx2;
#endif
#if defined(__ARM_NEON) && defined(__aarch64__)
#define GL_HAVE_NEON_KERNELS 1
extern const gl_kernel_set gl_kernels_neon;
#endif

// The batched kernel chosen for this CPU, or NULL (then the matmul calls vec_dot per row).
gl_vec_dot_nr_fn gl_get_vec_dot_nr(enum gl_type type);

#if defined(GL_HAVE_AVX2_KERNELS)
// Interleaved 8-row tiles (tile_q8_avx2.c) for Q4_0, Q5_0, Q8_0 and IQ4_NL against Q8_0 rows:
// out[t * bs + r] for r < n_rows, t < n_tok. dy, ys: per token (stride n / 32) each block's
// scale and sum(q). False when out of memory (nothing written). Bitwise the batched per-row
// kernel (vec_dot_nr) for every row and token.
bool gl_tile8_supported(enum gl_type type);
// -1: use AVX512-VNNI (256-bit vpdpbusd) in the tiles when the CPU has it; 0: never; 1: always
// (tests set it to cover both paths).
extern int gl_tile8_vnni;
bool gl_cpu_has_avx512vnni(void); // cpu_check.c
bool gl_use_vnni(void);            // whether the kernels use it (gl_tile8_vnni, else the CPU check)
bool gl_tile8_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                     const void *y, size_t by, const float *dy, const int32_t *ys, int n_tok,
                     float *out, size_t bs);
// The same for Q4_K, Q5_K and Q6_K against Q8_K rows.
bool gl_tile8k_supported(enum gl_type type);
bool gl_tile8k_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                      const void *y, size_t by, int n_tok, float *out, size_t bs);
// One token against rows of the same types (generation), with the activation's float scales dy
// and sums ys: out[r] for r < n_rows, bitwise the one-token per-row kernel (vec_dot).
bool gl_gen_supported(enum gl_type type);
void gl_gen_rows(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                 const float *dy, const int32_t *ys, float *out);
// The same for n_tok tokens (activation rows by bytes apart, scales n / 32 floats apart):
// out[t * bs + r], each token's outputs bitwise what gl_gen_rows gives for it alone.
void gl_gen_rows_n(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                   size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs);
// The same with AVX512-VNNI (only on CPUs with it, gl_use_vnni) for Q8_0, Q5_0 and IQ4_NL, from
// the activation rows (Q8_0, by bytes apart, block scales dy) rearranged by gl_gen_n_vnni_extras
// into vx (gl_gen_n_vnni_extras_size bytes, 32-byte aligned). False when out of memory.
bool gl_gen_n_vnni_supported(enum gl_type type);
size_t gl_gen_n_vnni_extras_size(int n, int n_tok);
// Only token groups [g0, g1) (groups of 4 tokens) are written, so threads can share the work.
void gl_gen_n_vnni_extras(const void *y, size_t by, const float *dy, int n, int n_tok, int g0, int g1, void *vx);
bool gl_gen_rows_n_vnni(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *vx,
                        int n_tok, float *out, size_t bs);
#endif

// Helpers shared by the kernel files: the 6-bit scale/min pairs of Q4_K/Q5_K and the signed
// 6-bit scales of Q3_K, unpacked from their 12-byte encodings.
static inline void gl_unpack_scales_k4(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0xf) | (s[j] >> 6) << 4);
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | (s[j + 4] >> 6) << 4);
    }
}

static inline void gl_unpack_scales_q3(const uint8_t *s, int8_t sc[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
        const int hi = s[8 + j % 4] >> (2 * (j / 4)) & 3;
        sc[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

// IQ4_XS block scale ib (0..7), already minus 32.
static inline int gl_iq4_xs_scale(const block_iq4_xs *b, int ib) {
    return ((b->scales_l[ib / 2] >> (4 * (ib % 2)) & 0xf) | (b->scales_h >> (2 * ib) & 3) << 4) - 32;
}

#endif
