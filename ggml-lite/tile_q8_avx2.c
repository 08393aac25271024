// Prompt tiles for Q4_0, Q5_0, Q8_0 and IQ4_NL against Q8_0 rows (AVX2, optional AVX512-VNNI).
//
// Eight weight rows are decoded once per work item into an interleaved buffer: for each block,
// the 8 rows' scales as floats, then 8 steps of 32 bytes where step s holds elements 4s..4s+3 of
// each row side by side. One _mm256_maddubs_epi16 of a step against the 4 activation bytes
// broadcast to every lane then advances all 8 dot products at once, and the results come out as
// one vector of 8 outputs per token: no horizontal sums, no per-pair scale work.
//
// Levels are stored unsigned when small (Q4_0: 0..15 with offset 8, Q5_0: 0..31 with offset 16),
// accumulated in int16 and corrected by offset * sum(y); large signed levels (Q8_0, IQ4_NL) move
// their sign onto the activation bytes.
#include "dot.h"

#if defined(GL_HAVE_AVX2_KERNELS)

#include <stdlib.h>

#include "quants.h"
#include "simd_avx2.h"

typedef struct {
    float d[8];
    uint8_t q[256]; // [step 0..7][row 0..7][4 bytes]
} pk_block;

typedef enum { PK_U4, PK_U5, PK_S8 } pk_kind; // unsigned 4-bit, unsigned 5-bit, signed 8-bit

static pk_kind kind_of(enum gl_type t) {
    return t == GL_TYPE_Q4_0 ? PK_U4 : t == GL_TYPE_Q5_0 ? PK_U5 : PK_S8;
}

bool gl_tile8_supported(enum gl_type t) {
    return t == GL_TYPE_Q4_0 || t == GL_TYPE_Q5_0 || t == GL_TYPE_Q8_0 || t == GL_TYPE_IQ4_NL;
}

// Decodes block b of one row into 32 levels (unsigned for PK_U*, signed bytes for PK_S8).
INL float decode_block(enum gl_type t, const char *row, int b, uint8_t v[32]) {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    switch (t) {
    case GL_TYPE_Q4_0: {
        const block_q4_0 *x = (const block_q4_0 *)row + b;
        const __m128i q = _mm_loadu_si128((const __m128i *)x->qs);
        _mm_storeu_si128((__m128i *)v, _mm_and_si128(q, m4));
        _mm_storeu_si128((__m128i *)(v + 16), _mm_and_si128(_mm_srli_epi16(q, 4), m4));
        return _cvtsh_ss(x->d);
    }
    case GL_TYPE_Q5_0: {
        const block_q5_0 *x = (const block_q5_0 *)row + b;
        const uint32_t h = (uint32_t)x->qh[0] | (uint32_t)x->qh[1] << 8 | (uint32_t)x->qh[2] << 16 | (uint32_t)x->qh[3] << 24;
        for (int j = 0; j < 16; j++) {
            v[j] = (uint8_t)((x->qs[j] & 0xf) | (h >> j & 1) << 4);
            v[j + 16] = (uint8_t)((x->qs[j] >> 4) | (h >> (j + 16) & 1) << 4);
        }
        return _cvtsh_ss(x->d);
    }
    case GL_TYPE_Q8_0: {
        const block_q8_0 *x = (const block_q8_0 *)row + b;
        memcpy(v, x->qs, 32);
        return _cvtsh_ss(x->d);
    }
    default: { // IQ4_NL
        const block_iq4_nl *x = (const block_iq4_nl *)row + b;
        const __m128i lut = _mm_loadu_si128((const __m128i *)gl_iq4nl_values);
        const __m128i q = _mm_loadu_si128((const __m128i *)x->qs);
        _mm_storeu_si128((__m128i *)v, _mm_shuffle_epi8(lut, _mm_and_si128(q, m4)));
        _mm_storeu_si128((__m128i *)(v + 16), _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(q, 4), m4)));
        return _cvtsh_ss(x->d);
    }
    }
}

static void pack_group(enum gl_type t, const char *w, size_t w_row, int nrows, int nb, pk_block *pk) {
    uint32_t v[8];
    for (int r = 0; r < 8; r++) {
        const char *row = w + (size_t)r * w_row;
        for (int b = 0; b < nb; b++) {
            if (r < nrows) {
                pk[b].d[r] = decode_block(t, row, b, (uint8_t *)v);
            } else {
                pk[b].d[r] = 0;
                memset(v, 0, sizeof v);
            }
            uint32_t *q = (uint32_t *)pk[b].q + r;
            for (int s = 0; s < 8; s++) q[8 * s] = v[s];
        }
    }
}

// nt (1..4) tokens x 8 rows over nb blocks. dy[j][b]: activation scales as floats; sy[j][b]:
// dy * sum(y), which the unsigned kinds subtract offset times.
INL void tile_kernel(int nb, const pk_block *pk, const block_q8_0 *const *y, const float *const *dy,
                     const float *const *sy, float *out, size_t bs, int nrows, const int nt,
                     const pk_kind kind, const bool vnni) {
    __m256 acc[4];
    FOR_J acc[j] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int b = 0; b < nb; b++) {
        __m256i s32[4];
        FOR_J s32[j] = _mm256_setzero_si256();
        if (vnni) {
            UNROLL for (int s = 0; s < 8; s++) {
                const __m256i w = _mm256_load_si256((const __m256i *)(pk[b].q + 32 * s));
                if (kind == PK_S8) {
                    const __m256i aw = _mm256_sign_epi8(w, w);
                    FOR_J s32[j] = dpbusd(s32[j], aw, _mm256_sign_epi8(bcast4(y[j][b].qs + 4 * s), w));
                } else {
                    FOR_J s32[j] = dpbusd(s32[j], w, bcast4(y[j][b].qs + 4 * s));
                }
            }
        } else if (kind == PK_S8) {
            UNROLL for (int s = 0; s < 8; s++) {
                const __m256i w = _mm256_load_si256((const __m256i *)(pk[b].q + 32 * s));
                const __m256i aw = _mm256_sign_epi8(w, w);
                FOR_J {
                    const __m256i yv = _mm256_sign_epi8(bcast4(y[j][b].qs + 4 * s), w);
                    s32[j] = _mm256_add_epi32(s32[j], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, yv), ones));
                }
            }
        } else {
            // int16 sums stay below 2^15: 8 steps of 4-bit levels, 4 of 5-bit ones.
            const int flush = kind == PK_U4 ? 8 : 4;
            UNROLL for (int s0 = 0; s0 < 8; s0 += flush) {
                __m256i s16[4];
                FOR_J s16[j] = _mm256_setzero_si256();
                UNROLL for (int s = s0; s < s0 + flush; s++) {
                    const __m256i w = _mm256_load_si256((const __m256i *)(pk[b].q + 32 * s));
                    FOR_J s16[j] = _mm256_add_epi16(s16[j], _mm256_maddubs_epi16(w, bcast4(y[j][b].qs + 4 * s)));
                }
                FOR_J s32[j] = _mm256_add_epi32(s32[j], _mm256_madd_epi16(s16[j], ones));
            }
        }
        const __m256 dw = _mm256_load_ps(pk[b].d);
        const __m256 mdw = _mm256_mul_ps(dw, _mm256_set1_ps(kind == PK_U4 ? -8.0f : -16.0f));
        FOR_J {
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[j]), _mm256_mul_ps(dw, _mm256_set1_ps(dy[j][b])), acc[j]);
            if (kind != PK_S8) acc[j] = _mm256_fmadd_ps(mdw, _mm256_set1_ps(sy[j][b]), acc[j]);
        }
    }
    FOR_J {
        if (nrows == 8) {
            _mm256_storeu_ps(out + (size_t)j * bs, acc[j]);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[j]);
            memcpy(out + (size_t)j * bs, tmp, sizeof(float) * nrows);
        }
    }
}

#define DISPATCH_NT(kind, vnni)                                                              \
    switch (nt) {                                                                            \
    case 4: tile_kernel(nb, pk, yy, dd, cc, o, bs, nrows, 4, kind, vnni); break;             \
    case 3: tile_kernel(nb, pk, yy, dd, cc, o, bs, nrows, 3, kind, vnni); break;             \
    case 2: tile_kernel(nb, pk, yy, dd, cc, o, bs, nrows, 2, kind, vnni); break;             \
    default: tile_kernel(nb, pk, yy, dd, cc, o, bs, nrows, 1, kind, vnni); break;            \
    }
#define DISPATCH(kind)                                                                       \
    if (vnni) DISPATCH_NT(kind, true) else DISPATCH_NT(kind, false)

int gl_tile8_vnni = -1;

bool gl_use_vnni(void) {
    int v = __atomic_load_n(&gl_tile8_vnni, __ATOMIC_RELAXED);
    if (v < 0) { // first use; every thread computes the same answer
        v = gl_cpu_has_avx512vnni() ? 1 : 0;
        __atomic_store_n(&gl_tile8_vnni, v, __ATOMIC_RELAXED);
    }
    return v == 1;
}

// Rows [0, n_rows) of w (row stride w_row) x tokens [0, n_tok) of y (row stride by); out[t * bs + r].
// Returns false (nothing done) when scratch memory is unavailable.
bool gl_tile8_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                     const void *y, size_t by, const float *dy, const float *sy, const int32_t *ys,
                     int n_tok, float *out, size_t bs) {
    (void)ys;
    const int nb = n / QK8_0;
    const pk_kind kind = kind_of(type);
    const bool vnni = gl_use_vnni();
    pk_block *pk = NULL;
    if (posix_memalign((void **)&pk, 32, sizeof(pk_block) * (size_t)nb) != 0) return false;
    for (int r0 = 0; r0 < n_rows; r0 += 8) {
        const int nrows = n_rows - r0 < 8 ? n_rows - r0 : 8;
        pack_group(type, (const char *)w + (size_t)r0 * w_row, w_row, nrows, nb, pk);
        for (int t0 = 0; t0 < n_tok; t0 += 4) {
            const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
            const block_q8_0 *yy[4];
            const float *dd[4], *cc[4];
            for (int j = 0; j < 4; j++) {
                const int t = t0 + (j < nt ? j : 0);
                yy[j] = (const block_q8_0 *)((const char *)y + (size_t)t * by);
                dd[j] = dy + (size_t)t * nb;
                cc[j] = sy + (size_t)t * nb;
            }
            float *o = out + (size_t)t0 * bs + r0;
            if (kind == PK_U4) DISPATCH(PK_U4)
            else if (kind == PK_U5) DISPATCH(PK_U5)
            else DISPATCH(PK_S8)
        }
    }
    free(pk);
    return true;
}

#endif
