// Matmul kernels that work on several weight rows at once (AVX2, optional AVX512-VNNI):
//  - tiles for prompt batches: Q4_0, Q5_0, Q8_0, IQ4_NL (against Q8_0), Q4_K, Q5_K, Q6_K
//    (against Q8_K);
//  - the one-token kernel for the Q8_0 family with eight-block scale vectors.
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

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "quants.h"

#define INL static inline __attribute__((always_inline))
#define FOR_J _Pragma("GCC unroll 4") for (int j = 0; j < nt; j++)
#define UNROLL _Pragma("GCC unroll 8")

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

INL float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// acc + per-lane sums of 4 (unsigned u) x (signed v) bytes: AVX512-VNNI's vpdpbusd on 256-bit
// registers, as inline assembly so the file still builds with plain -mavx2 (it only runs after
// the CPU check).
INL __m256i dpbusd(__m256i acc, __m256i u, __m256i v) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(v));
    return acc;
}

INL __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
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

static bool use_vnni(void) {
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
                     const void *y, size_t by, const float *dy, const float *sy, int n_tok,
                     float *out, size_t bs) {
    const int nb = n / QK8_0;
    const pk_kind kind = kind_of(type);
    const bool vnni = use_vnni();
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

// ---- Q4_K / Q5_K tiles against Q8_K ------------------------------------------------------------------
// Same interleave per super-block of 256: 64 steps of 8 rows x 4 levels (0..15 or 0..31), the
// rows' 32-element sub-block scales (int16 pairs for madd, int32 for the VNNI path), their mins
// (int16 pairs, two sub-blocks per pair, against Q8_K's sub-block sums) and d / dmin as floats.

typedef struct {
    float d[8], dmin[8];
    int16_t sc16[8][16]; // sub-block s: row r's scale in lanes 2r and 2r+1
    int32_t sc32[8][8];  // sub-block s: row r's scale
    int16_t mn[4][16];   // pair p: row r's (min[2p], min[2p+1]) in lanes 2r, 2r+1
    uint8_t q[64][32];   // step s: elements 4s..4s+3 of row r at bytes 4r..4r+3
} pk_k4;

bool gl_tile8k_supported(enum gl_type t) { return t == GL_TYPE_Q4_K || t == GL_TYPE_Q5_K || t == GL_TYPE_Q6_K; }

static bool tile8_q6_matmul(int n, const void *w, size_t w_row, int n_rows, const void *y, size_t by,
                            int n_tok, float *out, size_t bs);

static void pack_k4(enum gl_type t, const char *w, size_t w_row, int nrows, int nsb, pk_k4 *pk) {
    uint8_t lv[QK_K], sc[8], m[8];
    for (int r = 0; r < 8; r++) {
        for (int i = 0; i < nsb; i++) {
            pk_k4 *p = &pk[i];
            float d = 0, dmin = 0;
            if (r < nrows) {
                const char *row = w + (size_t)r * w_row;
                const uint8_t *qs, *scales;
                if (t == GL_TYPE_Q4_K) {
                    const block_q4_K *b = (const block_q4_K *)row + i;
                    d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin), qs = b->qs, scales = b->scales;
                    for (int c = 0; c < 4; c++)
                        for (int l = 0; l < 32; l++) {
                            lv[64 * c + l] = qs[32 * c + l] & 0xf;
                            lv[64 * c + 32 + l] = qs[32 * c + l] >> 4;
                        }
                } else {
                    const block_q5_K *b = (const block_q5_K *)row + i;
                    d = _cvtsh_ss(b->d), dmin = _cvtsh_ss(b->dmin), qs = b->qs, scales = b->scales;
                    for (int c = 0; c < 4; c++)
                        for (int l = 0; l < 32; l++) {
                            lv[64 * c + l] = (uint8_t)((qs[32 * c + l] & 0xf) | (b->qh[l] >> (2 * c) & 1) << 4);
                            lv[64 * c + 32 + l] = (uint8_t)((qs[32 * c + l] >> 4) | (b->qh[l] >> (2 * c + 1) & 1) << 4);
                        }
                }
                gl_unpack_scales_k4(scales, sc, m);
            } else {
                memset(lv, 0, sizeof lv);
                memset(sc, 0, sizeof sc);
                memset(m, 0, sizeof m);
            }
            p->d[r] = d;
            p->dmin[r] = dmin;
            for (int k = 0; k < 8; k++) {
                p->sc16[k][2 * r] = p->sc16[k][2 * r + 1] = sc[k];
                p->sc32[k][r] = sc[k];
            }
            for (int k = 0; k < 4; k++) {
                p->mn[k][2 * r] = m[2 * k];
                p->mn[k][2 * r + 1] = m[2 * k + 1];
            }
            for (int st = 0; st < 64; st++) memcpy(&p->q[st][4 * r], lv + 4 * st, 4);
        }
    }
}

INL void tile_k4_kernel(int nsb, const pk_k4 *pk, const block_q8_K *const *y, float *out, size_t bs,
                        int nrows, const int nt, const bool five, const bool vnni) {
    __m256 acc[4];
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < nsb; i++) {
        const pk_k4 *p = &pk[i];
        __m256i isum[4];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int k = 0; k < 8; k++) { // 32-element sub-blocks
            if (vnni) {
                __m256i s32[4];
                FOR_J s32[j] = _mm256_setzero_si256();
                UNROLL for (int st = 8 * k; st < 8 * k + 8; st++) {
                    const __m256i w = _mm256_load_si256((const __m256i *)p->q[st]);
                    FOR_J s32[j] = dpbusd(s32[j], w, bcast4(y[j][i].qs + 4 * st));
                }
                const __m256i scv = _mm256_load_si256((const __m256i *)p->sc32[k]);
                FOR_J isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(s32[j], scv));
            } else {
                // int16 sums stay below 2^15: 8 steps of 4-bit levels, 4 of 5-bit ones.
                const int flush = five ? 4 : 8;
                const __m256i scv = _mm256_load_si256((const __m256i *)p->sc16[k]);
                UNROLL for (int s0 = 8 * k; s0 < 8 * k + 8; s0 += flush) {
                    __m256i s16[4];
                    FOR_J s16[j] = _mm256_setzero_si256();
                    UNROLL for (int st = s0; st < s0 + flush; st++) {
                        const __m256i w = _mm256_load_si256((const __m256i *)p->q[st]);
                        FOR_J s16[j] = _mm256_add_epi16(s16[j], _mm256_maddubs_epi16(w, bcast4(y[j][i].qs + 4 * st)));
                    }
                    FOR_J isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16[j], scv));
                }
            }
        }
        const __m256 d = _mm256_load_ps(p->d), dmin = _mm256_load_ps(p->dmin);
        FOR_J {
            // mins x the token's 32-element sums, two sub-blocks per madd
            const int16_t *bsum = y[j][i].bsums;
            __m256i msum = _mm256_setzero_si256();
            UNROLL for (int k = 0; k < 4; k++) {
                const int a = bsum[4 * k] + bsum[4 * k + 1], b = bsum[4 * k + 2] + bsum[4 * k + 3];
                const __m256i pair = _mm256_set1_epi32((int)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16));
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)p->mn[k]), pair));
            }
            const __m256 dy = _mm256_set1_ps(y[j][i].d);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, dy), acc[j]);
            acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmin, dy), acc[j]);
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

#define DISPATCH_K4_NT(five, vnni)                                                           \
    switch (nt) {                                                                            \
    case 4: tile_k4_kernel(nsb, pk, yy, o, bs, nrows, 4, five, vnni); break;                 \
    case 3: tile_k4_kernel(nsb, pk, yy, o, bs, nrows, 3, five, vnni); break;                 \
    case 2: tile_k4_kernel(nsb, pk, yy, o, bs, nrows, 2, five, vnni); break;                 \
    default: tile_k4_kernel(nsb, pk, yy, o, bs, nrows, 1, five, vnni); break;                \
    }

bool gl_tile8k_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows,
                      const void *y, size_t by, int n_tok, float *out, size_t bs) {
    if (type == GL_TYPE_Q6_K) return tile8_q6_matmul(n, w, w_row, n_rows, y, by, n_tok, out, bs);
    const int nsb = n / QK_K;
    const bool five = type == GL_TYPE_Q5_K, vnni = use_vnni();
    pk_k4 *pk = NULL;
    if (posix_memalign((void **)&pk, 32, sizeof(pk_k4) * (size_t)nsb) != 0) return false;
    for (int r0 = 0; r0 < n_rows; r0 += 8) {
        const int nrows = n_rows - r0 < 8 ? n_rows - r0 : 8;
        pack_k4(type, (const char *)w + (size_t)r0 * w_row, w_row, nrows, nsb, pk);
        for (int t0 = 0; t0 < n_tok; t0 += 4) {
            const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
            const block_q8_K *yy[4];
            for (int j = 0; j < 4; j++)
                yy[j] = (const block_q8_K *)((const char *)y + (size_t)(t0 + (j < nt ? j : 0)) * by);
            float *o = out + (size_t)t0 * bs + r0;
            if (five) {
                if (vnni) DISPATCH_K4_NT(true, true) else DISPATCH_K4_NT(true, false)
            } else {
                if (vnni) DISPATCH_K4_NT(false, true) else DISPATCH_K4_NT(false, false)
            }
        }
    }
    free(pk);
    return true;
}

// ---- Q6_K tiles against Q8_K ---------------------------------------------------------------------------
// Levels 0..63 (value + 32), int8 scales per 16 elements (4 steps); the offset comes back as
// -32 * sum(scale * Q8_K bsum), two sub-blocks per madd.

typedef struct {
    float d[8];
    int16_t sc16[16][16]; // sub-block s: row r's scale in lanes 2r and 2r+1
    int32_t sc32[16][8];  // sub-block s: row r's scale
    int16_t scp[8][16];   // pair p: row r's (scale[2p], scale[2p+1]) in lanes 2r, 2r+1
    uint8_t q[64][32];    // step s: elements 4s..4s+3 of row r at bytes 4r..4r+3
} pk_q6;

static void pack_q6(const char *w, size_t w_row, int nrows, int nsb, pk_q6 *pk) {
    uint8_t lv[QK_K];
    for (int r = 0; r < 8; r++) {
        for (int i = 0; i < nsb; i++) {
            pk_q6 *p = &pk[i];
            const block_q6_K *b = r < nrows ? (const block_q6_K *)(w + (size_t)r * w_row) + i : NULL;
            if (b) {
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
            } else {
                memset(lv, 0, sizeof lv);
            }
            p->d[r] = b ? _cvtsh_ss(b->d) : 0.0f;
            for (int k = 0; k < 16; k++) {
                const int sc = b ? b->scales[k] : 0;
                p->sc16[k][2 * r] = p->sc16[k][2 * r + 1] = (int16_t)sc;
                p->sc32[k][r] = sc;
                p->scp[k / 2][2 * r + (k & 1)] = (int16_t)sc;
            }
            for (int st = 0; st < 64; st++) memcpy(&p->q[st][4 * r], lv + 4 * st, 4);
        }
    }
}

INL void tile_q6_kernel(int nsb, const pk_q6 *pk, const block_q8_K *const *y, float *out, size_t bs,
                        int nrows, const int nt, const bool vnni) {
    __m256 acc[4];
    FOR_J acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < nsb; i++) {
        const pk_q6 *p = &pk[i];
        __m256i isum[4];
        FOR_J isum[j] = _mm256_setzero_si256();
        UNROLL for (int k = 0; k < 16; k++) { // 16-element sub-blocks
            if (vnni) {
                __m256i s32[4];
                FOR_J s32[j] = _mm256_setzero_si256();
                UNROLL for (int st = 4 * k; st < 4 * k + 4; st++) {
                    const __m256i w = _mm256_load_si256((const __m256i *)p->q[st]);
                    FOR_J s32[j] = dpbusd(s32[j], w, bcast4(y[j][i].qs + 4 * st));
                }
                const __m256i scv = _mm256_load_si256((const __m256i *)p->sc32[k]);
                FOR_J isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(s32[j], scv));
            } else {
                // int16 sums of two steps of 6-bit levels stay below 2^15.
                const __m256i scv = _mm256_load_si256((const __m256i *)p->sc16[k]);
                UNROLL for (int s0 = 4 * k; s0 < 4 * k + 4; s0 += 2) {
                    const __m256i w0 = _mm256_load_si256((const __m256i *)p->q[s0]);
                    const __m256i w1 = _mm256_load_si256((const __m256i *)p->q[s0 + 1]);
                    FOR_J {
                        const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast4(y[j][i].qs + 4 * s0)),
                                                             _mm256_maddubs_epi16(w1, bcast4(y[j][i].qs + 4 * s0 + 4)));
                        isum[j] = _mm256_add_epi32(isum[j], _mm256_madd_epi16(s16, scv));
                    }
                }
            }
        }
        const __m256 d = _mm256_load_ps(p->d);
        FOR_J {
            // the +32 offset of the levels: 32 * sum(scale * bsum), two sub-blocks per madd
            const int16_t *bsum = y[j][i].bsums;
            __m256i off = _mm256_setzero_si256();
            UNROLL for (int k = 0; k < 8; k++) {
                const __m256i pair = _mm256_set1_epi32((int)((uint32_t)(uint16_t)bsum[2 * k] | (uint32_t)(uint16_t)bsum[2 * k + 1] << 16));
                off = _mm256_add_epi32(off, _mm256_madd_epi16(_mm256_load_si256((const __m256i *)p->scp[k]), pair));
            }
            const __m256i t = _mm256_sub_epi32(isum[j], _mm256_slli_epi32(off, 5));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(d, _mm256_set1_ps(y[j][i].d)), acc[j]);
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

#define DISPATCH_Q6_NT(vnni)                                                                 \
    switch (nt) {                                                                            \
    case 4: tile_q6_kernel(nsb, pk, yy, o, bs, nrows, 4, vnni); break;                       \
    case 3: tile_q6_kernel(nsb, pk, yy, o, bs, nrows, 3, vnni); break;                       \
    case 2: tile_q6_kernel(nsb, pk, yy, o, bs, nrows, 2, vnni); break;                       \
    default: tile_q6_kernel(nsb, pk, yy, o, bs, nrows, 1, vnni); break;                      \
    }

static bool tile8_q6_matmul(int n, const void *w, size_t w_row, int n_rows, const void *y, size_t by,
                            int n_tok, float *out, size_t bs) {
    const int nsb = n / QK_K;
    const bool vnni = use_vnni();
    pk_q6 *pk = NULL;
    if (posix_memalign((void **)&pk, 32, sizeof(pk_q6) * (size_t)nsb) != 0) return false;
    for (int r0 = 0; r0 < n_rows; r0 += 8) {
        const int nrows = n_rows - r0 < 8 ? n_rows - r0 : 8;
        pack_q6((const char *)w + (size_t)r0 * w_row, w_row, nrows, nsb, pk);
        for (int t0 = 0; t0 < n_tok; t0 += 4) {
            const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
            const block_q8_K *yy[4];
            for (int j = 0; j < 4; j++)
                yy[j] = (const block_q8_K *)((const char *)y + (size_t)(t0 + (j < nt ? j : 0)) * by);
            float *o = out + (size_t)t0 * bs + r0;
            if (vnni) DISPATCH_Q6_NT(true) else DISPATCH_Q6_NT(false)
        }
    }
    free(pk);
    return true;
}

// ---- one token: the generation kernel with precomputed activation scales -------------------------
// Scales are handled eight blocks at a time: the weights' eight fp16 scales go through one
// conversion, get multiplied by eight activation scales loaded at once, and each block takes its
// lane with a permute. The unsigned kinds add -offset * dw * sy for eight blocks in one FMA.

INL __m256 load_dw8(const char *x, size_t stride) {
    uint64_t lo = 0, hi = 0;
    for (int b = 0; b < 4; b++) {
        uint16_t d0, d1;
        memcpy(&d0, x + stride * (size_t)b, 2);
        memcpy(&d1, x + stride * (size_t)(b + 4), 2);
        lo |= (uint64_t)d0 << (16 * b);
        hi |= (uint64_t)d1 << (16 * b);
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

// Block levels: unsigned for Q4_0/Q5_0, signed for Q8_0/IQ4_NL.
INL __m256i gen_levels(enum gl_type t, const char *blk) {
    const __m128i m4 = _mm_set1_epi8(0x0f);
    if (t == GL_TYPE_Q8_0) return _mm256_loadu_si256((const __m256i *)(blk + 2));
    const uint8_t *qs = (const uint8_t *)blk + (t == GL_TYPE_Q5_0 ? 6 : 2);
    // Both halves get the 16 bytes; the high half shifts them right by 4 (64-bit lanes: the
    // mask removes what crosses byte boundaries).
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    const __m256i u = _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0f));
    (void)m4;
    if (t == GL_TYPE_Q4_0) return u;
    if (t == GL_TYPE_IQ4_NL) {
        const __m128i l = _mm_loadu_si128((const __m128i *)gl_iq4nl_values);
        return _mm256_shuffle_epi8(_mm256_set_m128i(l, l), u);
    }
    // Q5_0: fifth bits from qh (bytes 2..5)
    uint32_t h;
    memcpy(&h, blk + 2, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                           0x0101010101010101ll, 0x0000000000000000ll);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf), bit), bit);
    return _mm256_or_si256(u, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
}

INL __m256i gen_dot(enum gl_type t, __m256i w, const int8_t *yq, const bool vnni) {
    const __m256i y = _mm256_loadu_si256((const __m256i *)yq);
    const __m256i ones = _mm256_set1_epi16(1);
    const bool u = t == GL_TYPE_Q4_0 || t == GL_TYPE_Q5_0;
    const __m256i a = u ? w : _mm256_sign_epi8(w, w), b = u ? y : _mm256_sign_epi8(y, w);
    if (vnni) return dpbusd(_mm256_setzero_si256(), a, b);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones);
}

// nt tokens (1..4) x one row: every token's arithmetic is exactly the one-token kernel's (same
// operations on the same values, in the same order), the weight levels and scales are decoded
// once for all of them. Speculative decoding verifies drafts through this: batch-invariant,
// so its logits are bitwise those of plain decoding, at a fraction of nt one-token passes.
INL void gen_kernel(enum gl_type t, size_t bsz, int n, const void *vx, const block_q8_0 *const *y,
                    const float *const *dy, const float *const *sy, float *out, size_t os, const int nt,
                    const bool vnni) {
    const char *x = (const char *)vx;
    const int nb = n / QK8_0;
    const bool offs = t == GL_TYPE_Q4_0 || t == GL_TYPE_Q5_0;
    const float off = t == GL_TYPE_Q4_0 ? -8.0f : -16.0f;
    __m256 acc0[4], acc1[4], corr[4];
    float tail[4];
    FOR_J {
        acc0[j] = acc1[j] = corr[j] = _mm256_setzero_ps();
        tail[j] = 0;
    }
    int i = 0;
    for (; i + 8 <= nb; i += 8) {
        const char *xb = x + (size_t)i * bsz;
        const __m256 dw = load_dw8(xb, bsz);
        // Each block's dw * dy. With several tokens they are broadcast from memory (loads
        // instead of shuffles on the busy FP ports); alone, a permute is faster. Same values.
        __m256 sc[4];
        float scm[4][8] __attribute__((aligned(32)));
        FOR_J {
            sc[j] = _mm256_mul_ps(dw, _mm256_loadu_ps(dy[j] + i));
            if (nt > 1) _mm256_store_ps(scm[j], sc[j]);
            if (offs) corr[j] = _mm256_fmadd_ps(dw, _mm256_loadu_ps(sy[j] + i), corr[j]);
        }
        UNROLL for (int b = 0; b < 8; b += 2) {
            const __m256i w0 = gen_levels(t, xb + (size_t)b * bsz), w1 = gen_levels(t, xb + (size_t)(b + 1) * bsz);
            FOR_J {
                const __m256 p0 = _mm256_cvtepi32_ps(gen_dot(t, w0, y[j][i + b].qs, vnni));
                const __m256 p1 = _mm256_cvtepi32_ps(gen_dot(t, w1, y[j][i + b + 1].qs, vnni));
                const __m256 s0 = nt > 1 ? _mm256_broadcast_ss(&scm[j][b]) : _mm256_permutevar8x32_ps(sc[j], _mm256_set1_epi32(b));
                const __m256 s1 = nt > 1 ? _mm256_broadcast_ss(&scm[j][b + 1]) : _mm256_permutevar8x32_ps(sc[j], _mm256_set1_epi32(b + 1));
                acc0[j] = _mm256_fmadd_ps(p0, s0, acc0[j]);
                acc1[j] = _mm256_fmadd_ps(p1, s1, acc1[j]);
            }
        }
    }
    for (; i < nb; i++) {
        const char *xb = x + (size_t)i * bsz;
        uint16_t dh;
        memcpy(&dh, xb, 2);
        const float dw = _cvtsh_ss(dh);
        const __m256i wl = gen_levels(t, xb);
        FOR_J {
            const __m256 p = _mm256_cvtepi32_ps(gen_dot(t, wl, y[j][i].qs, vnni));
            acc0[j] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * dy[j][i]), acc0[j]);
            if (offs) tail[j] += off * dw * sy[j][i];
        }
    }
    FOR_J {
        float r = hsum8(_mm256_add_ps(acc0[j], acc1[j])) + tail[j];
        if (offs) r += off * hsum8(corr[j]);
        out[(size_t)j * os] = r;
    }
}

bool gl_gen_supported(enum gl_type t) { return gl_tile8_supported(t); }

#define GEN_NT(T, BLOCK, vnni)                                                               \
    switch (nt) {                                                                            \
    case 4: GEN_ROWS(T, BLOCK, 4, vnni) break;                                               \
    case 3: GEN_ROWS(T, BLOCK, 3, vnni) break;                                               \
    case 2: GEN_ROWS(T, BLOCK, 2, vnni) break;                                               \
    default: GEN_ROWS(T, BLOCK, 1, vnni) break;                                              \
    }
#define GEN_ROWS(T, BLOCK, NT, vnni)                                                         \
    for (int r = 0; r < n_rows; r++)                                                         \
        gen_kernel(T, sizeof(BLOCK), n, wr + (size_t)r * w_row, yy, dd, cc, out + r, bs, NT, vnni);

void gl_gen_rows_n(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                   size_t by, const float *dy, const float *sy, int n_tok, float *out, size_t bs) {
    const char *wr = (const char *)w;
    const bool vnni = use_vnni();
    const int nb = n / QK8_0;
    for (int t0 = 0; t0 < n_tok; t0 += 4, out += 4 * bs) {
        const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
        const block_q8_0 *yy[4];
        const float *dd[4], *cc[4];
        for (int j = 0; j < 4; j++) {
            const int tk = t0 + (j < nt ? j : 0);
            yy[j] = (const block_q8_0 *)((const char *)y + (size_t)tk * by);
            dd[j] = dy + (size_t)tk * nb;
            cc[j] = sy + (size_t)tk * nb;
        }
        switch (type) {
        case GL_TYPE_Q4_0:
            if (vnni) GEN_NT(GL_TYPE_Q4_0, block_q4_0, true) else GEN_NT(GL_TYPE_Q4_0, block_q4_0, false)
            break;
        case GL_TYPE_Q5_0:
            if (vnni) GEN_NT(GL_TYPE_Q5_0, block_q5_0, true) else GEN_NT(GL_TYPE_Q5_0, block_q5_0, false)
            break;
        case GL_TYPE_Q8_0:
            if (vnni) GEN_NT(GL_TYPE_Q8_0, block_q8_0, true) else GEN_NT(GL_TYPE_Q8_0, block_q8_0, false)
            break;
        default:
            if (vnni) GEN_NT(GL_TYPE_IQ4_NL, block_iq4_nl, true) else GEN_NT(GL_TYPE_IQ4_NL, block_iq4_nl, false)
            break;
        }
    }
}

void gl_gen_rows(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                 const float *dy, const float *sy, float *out) {
    gl_gen_rows_n(type, n, w, w_row, n_rows, y, 0, dy, sy, 1, out, 0);
}

#endif
