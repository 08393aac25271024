// Internal: the kernel sets, one per ISA (arch/ folders), and the activation quantizers they read.
//
// Every weight type T has
//   vec_dot:     one weight row x one activation row (of T's vec_dot_type), n elements;
//   vec_dot_nr:  one weight row x nr (1..GL_DOT_NR) activation rows at stride `by` bytes,
//                writing s[j * bs] for row j. The matmul's batched path uses it so each
//                weight block is decoded once for several tokens.
// The scalar kernels are the reference; SIMD kernels agree with them within float rounding
// (they compute the same integer block sums and differ only in the order of float adds). The
// AVX2 kernels add in the order of llama.cpp's AVX2 build (its one-token vec_dot for vec_dot,
// its batched GEMM for vec_dot_nr). Within a set, the generation kernels (gen, gen_n, gen_nx)
// are bitwise vec_dot, so speculative verification reproduces one-token decoding; prompt tiles
// only have to be accurate (tests/test_kernel_order.c).
#ifndef GGML_LITE_DOT_H
#define GGML_LITE_DOT_H

#include <stddef.h>

#include "ggml-lite.h"

#define GL_DOT_NR 4 // activation rows per batched kernel call

typedef void (*gl_vec_dot_nr_fn)(int n, float *s, size_t bs, const void *x, const void *y,
                                 size_t by, int nr);

// Several tokens against n_rows weight rows of `type` (prompt processing), each weight block
// decoded once for many tokens: out[t * bs + r] for r < n_rows, t < n_tok. y: activation rows
// by bytes apart; dy, ys: for Q8_0 activations each block's scale and sum(q) (n / 32 per token,
// see matmul.c), NULL otherwise. False when it cannot run (out of memory): nothing written.
typedef bool (*gl_tile_fn)(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                           const void *y, size_t by, const float *dy, const int32_t *ys, int n_tok,
                           float *out, size_t bs);
// One token against n_rows weight rows (generation): out[r], bitwise vec_dot row by row.
typedef void (*gl_gen_fn)(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                          const void *y, const float *dy, const int32_t *ys, float *out);
// n_tok tokens (speculative verification): out[t * bs + r], each token bitwise what gl_gen_fn
// gives for it alone.
typedef void (*gl_gen_n_fn)(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                            const void *y, size_t by, const float *dy, const int32_t *ys, int n_tok,
                            float *out, size_t bs);
// The same from the activation rows rearranged once (vx, `size` bytes, 32-byte aligned) by
// `build` (token groups [g0, g1) of 4, so threads share it). `usable`: whether this CPU runs it.
typedef struct {
    bool (*usable)(void);
    size_t (*size)(int n, int n_tok);
    void (*build)(const void *y, size_t by, const float *dy, int n, int n_tok, int g0, int g1, void *vx);
    bool (*rows)(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *vx,
                 int n_tok, float *out, size_t bs);
} gl_gen_nx;

// Vector ops (ops.h has what each computes).
typedef struct {
    double (*exp_sum8)(float *y, const float *x, float sub, int n, int n_row);
    void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps);
    void (*softmax)(float *x, int n);
    void (*silu)(float *out, const float *x, int n);
    void (*swiglu)(float *out, const float *gate, const float *up, int n);
    void (*vec_add)(float *out, const float *a, const float *b, int n);
    void (*vec_scale)(float *x, float s, int n);
    void (*vec_mad)(float *y, const float *x, float a, int n);
    float (*vec_dot_f32)(const float *a, const float *b, int n);
    void (*fp32_to_fp16_row)(const float *x, gl_fp16 *y, int64_t n);
    void (*fp16_to_fp32_row)(const gl_fp16 *x, float *y, int64_t n);
    float (*vec_dot_f16_f32)(const gl_fp16 *x, const float *y, int n);
    void (*vec_mad_f16)(float *y, const gl_fp16 *x, float a, int n);
    float (*kv_dot)(const void *k, bool f16, const float *q, int n, bool batch);
    void (*kv_mad)(float *acc, const void *v, bool f16, float w, int n);
    void (*kv_values_32)(float *acc, const char *v, size_t v_row, bool f16, const float *w, int n_keys, int hd);
    void (*kv_reduce_32)(float *out, const float *acc, int hd);
    float (*dot_f32_tok)(const float *w, const float *x, int n);
    float (*dot_f32_batch)(const float *w, const float *x, int n);
    void (*dot_f32_lanes8)(const float *wt, int rank, int n_out, const float *t, float *out);
    void (*exp_row)(float *y, const float *x, int n);
} gl_vec_ops;

// The fused attention kernel's loops over a tile of keys (attention.c), for a block of n_q
// queries at once (the heads of a GQA group, the tokens of a chunk) so that each key and value
// row is loaded once for all of them. Every set computes the same roundings, query by query: the
// scalar set's loops are the SIMD sets' lanes written out. scratch: GL_ATTN_OPS_SCRATCH floats.
#define GL_ATTN_OPS_SCRATCH(n_q, hd) ((size_t)32 * (hd) + (size_t)(n_q) * (hd))
#define GL_ATTN_PAIRS_SCRATCH(n_q, hd) ((size_t)17 * (hd) + (size_t)(n_q) * ((hd) / 2 + 1)) // accumulate_q8_0
typedef struct {
    // s[i * ld + j] = q_i · k_j for n_q float queries (q_i at q + i * hd) and n float key rows
    // (k_j at k + j * hd): one fused chain over the elements, x = fma(q[d], k[d], x) from x = 0
    // (SIMD sets: keys in lanes, no horizontal sums). scratch: GL_ATTN_OPS_SCRATCH floats.
    void (*dots)(const float *q, int n_q, const float *k, int n, int hd, float *s, int ld, float *scratch);
    // dots over F16 key rows (key j at k + j * k_stride), read as they are (the same scores as
    // dots over the decoded rows). NULL: the caller decodes them for dots.
    void (*dots_f16)(const float *q, int n_q, const char *k, size_t k_stride, int n, int hd, float *s, int ld,
                     float *scratch);
    // The same for Q8_0 queries (query i at q + i * q_stride) against n Q8_0 key rows (key j at
    // k + j * k_stride): per block the whole int32 sum, then x = fma(float(sum), d_k * d_q, x),
    // block after block from x = 0.
    void (*dots_q8_0)(const char *q, size_t q_stride, int n_q, const char *k, size_t k_stride, int n, int hd,
                      float *s, int ld, float *scratch);
    // Called (when not NULL) once for a block of Q8_0 queries before their dots_q8_0 calls, with
    // the scratch those calls get: what the set's dots_q8_0 needs of the queries, laid out there
    // once instead of every tile.
    void (*prepare_q8_0)(const char *q, size_t q_stride, int n_q, int hd, float *scratch);
    // For each query i, key after key, element by element: acc_i *= rescale[i * ld + j] where bit
    // j of grows[i] is set, then acc_i = fma(v_j, w[i * ld + j], acc_i) (acc_i at acc + i * hd,
    // v_j at v + j * hd).
    void (*accumulate)(float *acc, int n_q, const float *v, int n, int hd, const float *w, const float *rescale,
                       int ld, const uint32_t *grows);
    // x[0..n) summed in 8 lanes (element j into lane j % 8, in order), the lanes added as
    // gl_hsum8_pairs: zeros past n leave the sum as it is (batch-invariant tiles).
    float (*sum)(const float *x, int n);
    // n Q8_0 blocks' worth of elements as floats: d * q.
    void (*q8_0_to_f32)(const void *x, float *y, int n);
    // A tile's step of the online softmax for one query: its scores s[0..n) (n <= 32) scaled,
    // s[j] *= scale for j in [a, b) (a < b), -inf elsewhere; when the largest, M, exceeds the
    // running maximum *m: *rescale = e^(*m - M) (exp_row's arithmetic), *l *= *rescale, *m = M,
    // and true; then s[j] = e^(s[j] - *m) (e^-inf = 0, as exp_row) and *l += sum(s, n).
    // NULL: the caller does it.
    bool (*weights)(float *s, int n, int a, int b, float scale, float *m, float *l, float *rescale);
    // weights for n_q queries of a tile at once: query i's scores at s + i * ld, its keys [a[i],
    // b[i]) (a[i] >= b[i]: none, its row zeros), its m[i], l[i] and rescale[i * ld + a[i]];
    // grows[i] = 1 << a[i] where its maximum grew, else 0. NULL: weights query by query.
    void (*weights_tile)(float *s, int ld, int n_q, int n, const int *a, const int *b, float scale, float *m, float *l,
                         float *rescale, uint32_t *grows);
    // n rows of hd elements of type t (row j at src + j * stride bytes) as floats into dst (row j
    // at dst + j * hd), as the type's decoder gives them; false (nothing done) for a type it does
    // not take. NULL: none taken.
    bool (*rows_to_f32)(enum gl_type t, const char *src, size_t stride, int n, int hd, float *dst);
    // Q8_0 value rows weighed in (row j of the tile at v + j * v_stride, rows [r0, n) valid) in
    // place of rows_to_f32 and accumulate: the same steps, with w[i * ld + j] * d (d the row's
    // block scale) rounded to bf16 and keys taken in pairs (2p, 2p + 1) by bf16 dot products;
    // w, rescale and grows as accumulate's, from the tile's key 0 (grows' bits from r0).
    // scratch: GL_ATTN_PAIRS_SCRATCH floats. NULL: rows_to_f32, then accumulate.
    void (*accumulate_q8_0)(float *acc, int n_q, const char *v, size_t v_stride, int r0, int n, int hd, const float *w,
                            const float *rescale, int ld, const uint32_t *grows, float *scratch);
} gl_attn_ops;

// Weight rows rearranged once (at load, repack.h) into groups of GL_REPACK_ROWS interleaved
// rows, and the kernel reading them. mul serves one token, verification and prompts alike: each
// token's outputs are bitwise what it gives for that token alone (batch-invariant).
#define GL_REPACK_ROWS 16
typedef struct {
    size_t block_bytes; // one group's bytes per block of the type (16 rows' blocks side by side)
    // Rows [0, 16) of the plain rows at src (src_row bytes apart), n elements, into one group.
    void (*pack)(const void *src, size_t src_row, int n, void *dst);
    // n_groups groups (w, consecutive) x n_tok (<= GL_REPACK_MAX_TOK) activation rows (by
    // bytes apart; dy, ys: Q8_0 activations' extras from the first row on, as gl_tile_fn):
    // out[t * bs + 16 * g + r].
    void (*mul)(int n, const void *w, int n_groups, const void *y, size_t by, const float *dy, const int32_t *ys,
                int n_tok, float *out, size_t bs);
} gl_repack_kernels;
#define GL_REPACK_MAX_TOK 256

// One ISA's kernels (an arch/ folder), indexed by weight type; NULL where the ISA has none, and
// then the next set down's serves. A type's one-token kernels (vec_dot, gen, gen_n, gen_nx)
// come together from one set, as they agree bitwise (speculative decoding relies on it); the
// batch kernels (vec_dot_nr, tile) may each come from another set.
typedef struct {
    const char *name;
    gl_vec_dot_fn vec_dot[GL_TYPE_COUNT];
    gl_vec_dot_nr_fn vec_dot_nr[GL_TYPE_COUNT];
    gl_tile_fn tile[GL_TYPE_COUNT];
    gl_gen_fn gen[GL_TYPE_COUNT];
    gl_gen_n_fn gen_n[GL_TYPE_COUNT];
    const gl_gen_nx *gen_nx[GL_TYPE_COUNT];
    gl_from_float_fn from_float[GL_TYPE_COUNT]; // activation quantizers (Q8_0, Q8_1, Q8_K, F16, BF16)
    const gl_vec_ops *ops;                       // NULL: the next set down's
    const gl_attn_ops *attn;                     // NULL: the next set down's
    const gl_attn_ops *attn_bf16;                // attn on CPUs with AVX512-BF16 (NULL: attn)
    const gl_repack_kernels *repack[GL_TYPE_COUNT]; // NULL: weights of the type stay as loaded
} gl_kernel_set;

// The sets, one per arch/ folder (kernel_select.c lists the ones this build has).
extern const gl_kernel_set gl_kernels_scalar;
extern const gl_kernel_set gl_kernels_avx2;
extern const gl_kernel_set gl_kernels_neon;
extern const gl_kernel_set gl_kernels_avx512;
extern const gl_vec_ops gl_vec_ops_scalar, gl_vec_ops_avx2;
extern const gl_attn_ops gl_attn_ops_scalar, gl_attn_ops_avx2, gl_attn_ops_avx512, gl_attn_ops_avx512_bf16;

// The kernels in use: the best set this CPU runs (or the one LLAMALITE_ISA names), each entry
// filled from the sets below it where it has none. Chosen once, thread-safe.
const gl_kernel_set *gl_kernels(void);
// The batched kernel chosen for this CPU, or NULL (then the matmul calls vec_dot per row).
gl_vec_dot_nr_fn gl_get_vec_dot_nr(enum gl_type type);

// x86 features (cpu_check.c, built without SIMD flags); gl_cpu_has_avx2 is in ggml-lite.h.
bool gl_cpu_has_avx512(void); // F, BW, VL and VNNI
bool gl_cpu_has_avx512vnni(void);
bool gl_cpu_has_avx512bf16(void);
// -1: the x86 kernels use AVX512-VNNI (256-bit vpdpbusd) when the CPU has it; 0: never;
// 1: always (tests set it to cover both paths).
extern int gl_tile8_vnni;
bool gl_use_vnni(void); // gl_tile8_vnni, else the CPU check

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
