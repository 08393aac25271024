// Several tokens through the one-token arithmetic, fast (AVX512-VNNI on 256-bit registers), for
// the signed-level types Q8_0, Q5_0 and IQ4_NL: speculative decoding verifies its drafts with it.
//
// Every (row, token) pair is summed exactly as the one-token kernel sums it (gen_avx2.c: an
// 8-lane float accumulator, lane k taking the integer sum of elements 4k..4k+3 of each block,
// acc = fma(lanes, dw * dy, acc) block after block; IQ4_NL alternates two accumulators), so the
// results are bitwise equal. What changes is the work per pair and block:
//  - the weights are made unsigned once per row and block (w + 128) and the activations carry
//    -128 * the sum of each 4-byte group (vx_build), so one vpdpbusd starting from
//    that correction gives the exact signed lane sums;
//  - the scale products dw * dy are formed ahead, 16 per block (4 rows x 4 tokens) in two
//    multiplies, and the FMAs take them as broadcasts from memory (load ports) instead of
//    shuffling them out of registers (vector ALU ports, which the vpdpbusd/FMA pairs keep busy).
// A pair then costs a vpdpbusd, a conversion and an FMA, and 4 rows x 4 tokens of accumulators
// stay in AVX512-VL's 32 registers. (The vpdpbusd and the FMA share two vector ports: one cycle
// per pair is the floor; a 17-token verification of 1.1B Q8_0 weights runs at about 1.7.)
#include "dot.h"

#include <stdlib.h>

#include "quants.h"
#include "kernels_avx2.h"
#include "simd_avx2.h"

#define VNNI __attribute__((target("avx512vl,avx512vnni")))

// One block of a group of four tokens in the extras: their levels, corrections and scales
// (the four scales twice, to multiply two rows' scales at once).
typedef struct {
    int8_t q[4][32];
    int32_t c[4][8];
    float d[8];
} vx_block;

enum {
    SEG = 32,           // blocks per segment (its rows stay in L1 for every token group)
    LEAD = 4, RING = 8, // scale products formed LEAD blocks ahead, in a ring of RING blocks
    ROWS = 4,           // rows per pass (IQ4_NL: 2, its two accumulators per pair take the registers)
    STACK_SCRATCH = 24 << 10
};

static size_t vx_size(int n, int n_tok) {
    return sizeof(vx_block) * (size_t)(n / QK8_0) * (size_t)((n_tok + 3) / 4);
}

// Token t's blocks into group slot j (tokens past the end repeat the group's first token).
static void vx_build(const void *y, size_t by, const float *dy, int n, int n_tok, int g0, int g1, void *vx) {
    const int nb = n / QK8_0;
    vx_block *out = (vx_block *)vx;
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int g = g0; g < g1 && g < (n_tok + 3) / 4; g++)
        for (int j = 0; j < 4; j++) {
            const int t = 4 * g + j < n_tok ? 4 * g + j : 4 * g;
            const block_q8_0 *yb = (const block_q8_0 *)((const char *)y + (size_t)t * by);
            for (int b = 0; b < nb; b++) {
                vx_block *o = out + (size_t)g * nb + b;
                const __m256i q = _mm256_loadu_si256((const __m256i *)yb[b].qs);
                // lane sums: 1 (unsigned) x q (signed) in byte pairs, then pairs of those
                const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
                _mm256_store_si256((__m256i *)o->q[j], q);
                _mm256_store_si256((__m256i *)o->c[j], _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s, 7)));
                o->d[j] = o->d[j + 4] = dy[(size_t)t * nb + b];
            }
        }
}

// Block levels + 128 (unsigned: the signed levels' sign bit flipped).
VNNI INL __m256i levels_u8(enum gl_type t, const char *blk) {
    return _mm256_xor_si256(gen_levels(t, blk), _mm256_set1_epi8((char)0x80));
}

// acc + p * (*d broadcast), the FMA reading *d from memory itself (a compiler would forward a
// value it just stored through register shuffles instead).
VNNI INL __m256 fma_bcast(__m256 p, const float *d, __m256 acc) {
    __asm__("vfmadd231ps %2%{1to8%}, %1, %0" : "+v"(acc) : "v"(p), "m"(*d));
    return acc;
}

// Block b's scales of the R rows, each four times, into dwx (one fp16 conversion for all).
VNNI INL void row_scales(const char *const *x, const int R, size_t bsz, int b, float *dwx) {
    uint64_t h4 = 0;
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
        uint16_t h;
        memcpy(&h, x[r] + (size_t)b * bsz, 2);
        h4 |= (uint64_t)h << (16 * r);
    }
    const __m256 d = _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)h4)));
    _Pragma("GCC unroll 2") for (int h = 0; h < R / 2; h++)
        _mm256_store_ps(dwx + ((size_t)b * R + 2 * h) * 4,
                        _mm256_permutevar8x32_ps(d, _mm256_set_epi32(2 * h + 1, 2 * h + 1, 2 * h + 1, 2 * h + 1,
                                                                      2 * h, 2 * h, 2 * h, 2 * h)));
}

// A token group's accumulators between block segments.
typedef struct {
    __m256 a[ROWS][4], a2[ROWS][4];
} acc_state;

// R rows x nt tokens (1..4) of one token group over blocks [b0, b1), the accumulators from st
// (zero when b0 is 0) and back. dwx: per block the R rows' scales, each four times; vx: the
// group's extras; pf: rows to prefetch (the next row group), or NULL.
VNNI INL void rows_tokens(enum gl_type t, size_t bsz, int b0, int b1, const char *const *x, const int R,
                          const float *dwx, const vx_block *vx, acc_state *st, const int nt,
                          const char *const *pf) {
    const bool split = t == GL_TYPE_IQ4_NL; // odd blocks go to the second accumulator
    __m256 acc[ROWS][4], acc2[ROWS][4];
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) FOR_J {
        acc[r][j] = b0 ? st->a[r][j] : _mm256_setzero_ps();
        if (split) acc2[r][j] = b0 ? st->a2[r][j] : _mm256_setzero_ps();
    }
    // The scale products of block b + LEAD are formed while block b runs (off the FMAs' path),
    // into a ring the FMAs read as broadcasts from memory (load ports; registers would need
    // shuffles on the vector ALU ports, which the vpdpbusd/FMA pairs keep busy).
    _Alignas(32) float ring[RING][ROWS * 4]; // [block % RING][4 * row + token]
#define PRODUCTS(B)                                                                             \
    do {                                                                                        \
        const __m256 d_ = _mm256_load_ps(vx[B].d);                                              \
        _Pragma("GCC unroll 2") for (int h = 0; h < R / 2; h++)                                \
            _mm256_store_ps(&ring[(B) % RING][8 * h], _mm256_mul_ps(_mm256_load_ps(dwx + (size_t)(B) * R * 4 + 8 * h), d_)); \
    } while (0)
    for (int b = b0; b < b1 && b < b0 + LEAD; b++) PRODUCTS(b);
    for (int b = b0; b < b1; b++) {
        const vx_block *v = vx + b;
        __m256i yv[4], cv[4];
        FOR_J {
            yv[j] = _mm256_load_si256((const __m256i *)v->q[j]);
            cv[j] = _mm256_load_si256((const __m256i *)v->c[j]);
        }
        if (b + LEAD < b1) PRODUCTS(b + LEAD);
        if (pf) // towards L2: into L1 they come when used
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) _mm_prefetch(pf[r] + (size_t)b * bsz, _MM_HINT_T2);
        const float *ds = ring[b % RING];
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
            const __m256i w = levels_u8(t, x[r] + (size_t)b * bsz);
            FOR_J {
                const __m256 p = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(cv[j], w, yv[j]));
                if (split && (b & 1)) acc2[r][j] = fma_bcast(p, ds + 4 * r + j, acc2[r][j]);
                else acc[r][j] = fma_bcast(p, ds + 4 * r + j, acc[r][j]);
            }
        }
    }
#undef PRODUCTS
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) FOR_J {
        st->a[r][j] = acc[r][j];
        if (split) st->a2[r][j] = acc2[r][j];
    }
}

// Rows [0, n_rows) x tokens [0, n_tok), in groups of R rows. Per row group, the blocks go in
// segments, and every token group passes over a segment while its rows are in L1 (the tokens'
// extras stream from L2); meanwhile the first token group fetches the next row group towards
// L2. A last, short row group repeats its last row (only real rows are stored).
VNNI static void run_type(enum gl_type t, int R, size_t bsz, int nb, const char *w, size_t w_row, int n_rows,
                          const vx_block *vx, int n_tok, float *out, size_t bs, float *dwx, acc_state *st) {
    const int ng = (n_tok + 3) / 4;
    for (int r0 = 0; r0 < n_rows; r0 += R) {
        const int rr = n_rows - r0 < R ? n_rows - r0 : R;
        const char *x[ROWS], *next[ROWS];
        for (int r = 0; r < R; r++) {
            x[r] = w + (size_t)(r0 + (r < rr ? r : rr - 1)) * w_row;
            next[r] = r0 + R + r < n_rows ? x[r] + (size_t)R * w_row : x[r];
        }
        for (int b0 = 0; b0 < nb; b0 += SEG) {
            const int b1 = nb - b0 < SEG ? nb : b0 + SEG;
            for (int b = b0; b < b1; b++) row_scales(x, R, bsz, b, dwx);
            for (int g = 0; g < ng; g++) {
                const int nt = n_tok - 4 * g < 4 ? n_tok - 4 * g : 4;
                const vx_block *v = vx + (size_t)g * nb;
                const char *const *pf = g == 0 && r0 + R < n_rows ? next : NULL;
#define NT_CASES(T, RR)                                                                        \
    switch (nt) {                                                                              \
    case 4: rows_tokens(T, bsz, b0, b1, x, RR, dwx, v, st + g, 4, pf); break;                  \
    case 3: rows_tokens(T, bsz, b0, b1, x, RR, dwx, v, st + g, 3, pf); break;                  \
    case 2: rows_tokens(T, bsz, b0, b1, x, RR, dwx, v, st + g, 2, pf); break;                  \
    default: rows_tokens(T, bsz, b0, b1, x, RR, dwx, v, st + g, 1, pf); break;                 \
    }
                if (t == GL_TYPE_Q8_0) NT_CASES(GL_TYPE_Q8_0, 4)
                else if (t == GL_TYPE_Q5_0) NT_CASES(GL_TYPE_Q5_0, 4)
                else NT_CASES(GL_TYPE_IQ4_NL, 2)
#undef NT_CASES
            }
        }
        // "+ 0.0f": as the one-token kernel (its zero scalar sum turns -0 into +0).
        for (int tk = 0; tk < n_tok; tk++) {
            const acc_state *a = st + tk / 4;
            for (int r = 0; r < rr; r++)
                out[(size_t)tk * bs + r0 + r] =
                    hsum8(t == GL_TYPE_IQ4_NL ? _mm256_add_ps(a->a[r][tk % 4], a->a2[r][tk % 4]) : a->a[r][tk % 4]) + 0.0f;
        }
    }
}

static bool vx_rows(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *vx,
                    int n_tok, float *out, size_t bs) {
    const int nb = n / QK8_0, R = type == GL_TYPE_IQ4_NL ? 2 : ROWS;
    const size_t bsz = q8_family_block_size(type);
    // scratch: the row group's scales, then the token groups' accumulators (on the stack when
    // small, as this runs once per work item)
    const size_t dwx_bytes = (sizeof(float) * 4 * R * (size_t)nb + 63) & ~(size_t)63;
    const size_t bytes = dwx_bytes + sizeof(acc_state) * (size_t)((n_tok + 3) / 4);
    _Alignas(64) char local[STACK_SCRATCH];
    char *mem = local;
    if (bytes > sizeof local && posix_memalign((void **)&mem, 64, bytes) != 0) return false;
    run_type(type, R, bsz, nb, (const char *)w, w_row, n_rows, (const vx_block *)vx, n_tok, out, bs, (float *)mem,
             (acc_state *)(mem + dwx_bytes));
    if (mem != local) free(mem);
    return true;
}

const gl_gen_nx gl_gen_nx_vnni = {.usable = gl_use_vnni, .size = vx_size, .build = vx_build, .rows = vx_rows};
