// Prompt tiles for the i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) and the
// ternary types (TQ1_0, TQ2_0) against Q8_K rows, on 512-bit registers with AVX512-VNNI (the
// layout of tile_k_avx512.c).
//
// Every super-block of these types is small signed integers q[256] with integer sub-block
// scales and one float factor (quants_lowbit.h): x = (d / div) * ls[sub-block] * q. Sixteen
// weight rows are decoded once per work item into 64 steps of 64 bytes (step s: elements
// 4s..4s+3 of the 16 rows) holding q + 64, unsigned, so that the activations enter vpdpbusd as
// they are (signed, each token's 4 bytes broadcast); a sub-block's steps add up in integers,
// start from -64 times the activation sum of the sub-block (Q8_K's bsums), are multiplied by
// the scales (vpmulld) and summed over the super-block; then one conversion and one FMA:
// acc += float(sum) * (d / div * d_y). The integer sums are exact, so this differs from the
// scalar kernel only in the order of float adds over super-blocks.
//
// The common types decode with grid lookups straight into vectors; the rest go through the
// scalar unpacker.
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "dot.h"
#include "iq_grids.h"
#include "kernels_avx512_lowbit.h"
#include "quants.h"
#include "quants_lowbit.h"

enum { OFFSET = 64 }; // added to every level: |q| <= 62 in all these formats

typedef struct {
    float d[16];        // d / div of each row
    int32_t sc[16][16]; // sub-block k: each row's scale
    uint8_t q[64][64];  // step s: elements 4s..4s+3 of rows 0..15, plus OFFSET
} pk16lb;

enum {
    CHUNK = 4, // super-blocks per chunk: 4 * 5 KiB of weights stay in L1 while every token passes
    NT = 8     // tokens per pass
};

#define INL static inline __attribute__((always_inline))
#define FOR_T _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++)

// Sub-blocks with a scale of their own: 8 of 32 elements, or 16 of 16.
static int n_sub(enum gl_type t) {
    return t == GL_TYPE_IQ2_XS || t == GL_TYPE_IQ2_S || t == GL_TYPE_IQ1_M ? 16 : 8;
}

static inline uint32_t rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t rd16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// Magnitudes g with sign bytes s (byte l of s: bit j negates element 8l + j of g).
static inline __m256i apply_signs(__m256i g, uint32_t s) {
    const __m256i pick = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i sb = _mm256_shuffle_epi8(_mm256_set1_epi32((int)s), pick);
    const __m256i m = _mm256_cmpeq_epi8(_mm256_and_si256(sb, bits), bits);
    return _mm256_sub_epi8(_mm256_xor_si256(g, m), m);
}

// Four 7-bit sign fields of an IQ2_XXS/IQ3_XXS word to four full sign bytes.
static inline uint32_t signs4(uint32_t aux) {
    return gl_iq_signs8(aux) | (uint32_t)gl_iq_signs8(aux >> 7) << 8 | (uint32_t)gl_iq_signs8(aux >> 14) << 16 |
           (uint32_t)gl_iq_signs8(aux >> 21) << 24;
}

// Super-block i of one row: its 256 levels (8 vectors of 32), sub-block scales, d / div.
static void decode_row(enum gl_type t, const char *row, int i, __m256i lv[8], int32_t sc[16], float *d) {
    switch (t) {
    case GL_TYPE_IQ2_XXS: {
        const block_iq2_xxs *b = (const block_iq2_xxs *)row + i;
        *d = gl_fp16_to_fp32(b->d) * 0.125f;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *w = (const uint8_t *)(b->qs + 4 * ib);
            const uint32_t aux = rd32(w + 4);
            sc[ib] = (int32_t)(2 * (aux >> 28) + 1);
            const __m256i g = _mm256_set_epi64x((long long)gl_iq2xxs_grid[w[3]], (long long)gl_iq2xxs_grid[w[2]],
                                                (long long)gl_iq2xxs_grid[w[1]], (long long)gl_iq2xxs_grid[w[0]]);
            lv[ib] = apply_signs(g, signs4(aux));
        }
        return;
    }
    case GL_TYPE_IQ3_XXS: {
        const block_iq3_xxs *b = (const block_iq3_xxs *)row + i;
        const uint8_t *qs = b->qs, *ss = b->qs + QK_K / 4;
        *d = gl_fp16_to_fp32(b->d) * 0.25f;
        for (int ib = 0; ib < 8; ib++) {
            const uint32_t aux = rd32(ss + 4 * ib);
            sc[ib] = (int32_t)(2 * (aux >> 28) + 1);
            const uint8_t *q = qs + 8 * ib;
            const __m256i g = _mm256_set_epi32((int)gl_iq3xxs_grid[q[7]], (int)gl_iq3xxs_grid[q[6]],
                                               (int)gl_iq3xxs_grid[q[5]], (int)gl_iq3xxs_grid[q[4]],
                                               (int)gl_iq3xxs_grid[q[3]], (int)gl_iq3xxs_grid[q[2]],
                                               (int)gl_iq3xxs_grid[q[1]], (int)gl_iq3xxs_grid[q[0]]);
            lv[ib] = apply_signs(g, signs4(aux));
        }
        return;
    }
    case GL_TYPE_IQ3_S: {
        const block_iq3_s *b = (const block_iq3_s *)row + i;
        *d = gl_fp16_to_fp32(b->d);
        for (int ib = 0; ib < 8; ib++) {
            sc[ib] = (int32_t)(2 * (b->scales[ib / 2] >> (4 * (ib % 2)) & 0xf) + 1);
            const uint8_t *q = b->qs + 8 * ib;
            const unsigned h = b->qh[ib];
#define IDX(k) (int)gl_iq3s_grid[q[k] | (h >> (k) & 1) << 8]
            const __m256i g = _mm256_set_epi32(IDX(7), IDX(6), IDX(5), IDX(4), IDX(3), IDX(2), IDX(1), IDX(0));
#undef IDX
            lv[ib] = apply_signs(g, rd32(b->signs + 4 * ib));
        }
        return;
    }
    case GL_TYPE_IQ1_M: {
        const block_iq1_m *b = (const block_iq1_m *)row + i;
        uint16_t s[4];
        for (int k = 0; k < 4; k++) s[k] = rd16(b->scales + 2 * k);
        const uint16_t dbits = (uint16_t)((s[0] >> 12) | (s[1] >> 8 & 0x00f0) | (s[2] >> 4 & 0x0f00) | (s[3] & 0xf000));
        *d = gl_fp16_to_fp32(dbits) * 0.125f;
        const __m256i high = _mm256_set1_epi8((char)0xf8);
        for (int ib = 0; ib < 8; ib++) {
            const int v = s[ib / 2] >> (6 * (ib % 2));
            sc[2 * ib] = 2 * (v & 7) + 1;
            sc[2 * ib + 1] = 2 * (v >> 3 & 7) + 1;
            long long g[4], sh[4];
            for (int l = 0; l < 4; l++) {
                const int h = b->qh[2 * ib + l / 2] >> (4 * (l % 2)) & 0xf; // 3 index bits, shift sign
                g[l] = (long long)gl_iq1s_grid[b->qs[4 * ib + l] | (h & 7) << 8];
                sh[l] = h & 8 ? -1LL : 0x0101010101010101LL;
            }
            // 8 * grid (bytes -1, 0, 1; the bits shifted into the next byte masked off) + shift
            const __m256i gv = _mm256_set_epi64x(g[3], g[2], g[1], g[0]);
            lv[ib] = _mm256_add_epi8(_mm256_and_si256(_mm256_slli_epi16(gv, 3), high),
                                     _mm256_set_epi64x(sh[3], sh[2], sh[1], sh[0]));
        }
        return;
    }
    default: {
        gl_lowbit_block u;
        gl_unpack_lowbit(t, row, i, &u);
        *d = u.d / (float)u.div;
        const int ns = n_sub(t), per = 16 / ns;
        for (int k = 0; k < ns; k++) sc[k] = u.ls[per * k];
        for (int c = 0; c < 8; c++) lv[c] = _mm256_loadu_si256((const __m256i *)(u.q + 32 * c));
        return;
    }
    }
}

// 8 rows' 32-byte level vectors to 8 steps: step s holds 4-byte group s of every row.
static void transpose8(const __m256i v[8], __m256i q[8]) {
    __m256i u[8];
    for (int h = 0; h < 8; h += 4) {
        const __m256i t0 = _mm256_unpacklo_epi32(v[h], v[h + 1]), t1 = _mm256_unpackhi_epi32(v[h], v[h + 1]);
        const __m256i t2 = _mm256_unpacklo_epi32(v[h + 2], v[h + 3]), t3 = _mm256_unpackhi_epi32(v[h + 2], v[h + 3]);
        u[h] = _mm256_unpacklo_epi64(t0, t2);
        u[h + 1] = _mm256_unpackhi_epi64(t0, t2);
        u[h + 2] = _mm256_unpacklo_epi64(t1, t3);
        u[h + 3] = _mm256_unpackhi_epi64(t1, t3);
    }
    for (int i = 0; i < 4; i++) {
        q[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
        q[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
    }
}

// Decodes 16 rows (nrows real ones, the rest zero) of nsb super-blocks into pk.
static void pack16lb(enum gl_type t, const char *w, size_t w_row, int nrows, int nsb, pk16lb *pk) {
    _Alignas(32) __m256i lv[16][8];
    int32_t sc[16];
    const __m256i off = _mm256_set1_epi8(OFFSET);
    for (int i = 0; i < nsb; i++) {
        pk16lb *p = &pk[i];
        for (int r = 0; r < 16; r++) {
            float d = 0;
            memset(sc, 0, sizeof sc);
            if (r < nrows) decode_row(t, w + (size_t)r * w_row, i, lv[r], sc, &d);
            else
                for (int c = 0; c < 8; c++) lv[r][c] = _mm256_setzero_si256();
            p->d[r] = d;
            for (int k = 0; k < 16; k++) p->sc[k][r] = sc[k];
        }
        for (int c = 0; c < 8; c++) { // 32-element runs: 8 steps each
            __m256i v[16], q[16];
            for (int r = 0; r < 16; r++) v[r] = _mm256_add_epi8(lv[r][c], off);
            transpose8(v, q);
            transpose8(v + 8, q + 8);
            for (int s = 0; s < 8; s++)
                _mm512_store_si512((__m512i *)p->q[8 * c + s], _mm512_inserti64x4(_mm512_castsi256_si512(q[s]), q[8 + s], 1));
        }
    }
}

// nt tokens x 16 rows over super-blocks [i0, i1). Token j: yk[j] its Q8_K blocks, yo[j] +
// nsub * i its sub-blocks' -OFFSET * sum(y), st[j] its 16 accumulators between chunks.
INL void kernel16lb(int i0, int i1, const pk16lb *pk, const block_q8_K *const *yk, const int32_t *const *yo,
                    float *const *st, const int nt, const int nsub) {
    const int steps = 64 / nsub;
    __m512 acc[NT];
    FOR_T acc[j] = _mm512_load_ps(st[j]);
    for (int i = i0; i < i1; i++) {
        const pk16lb *p = &pk[i];
        __m512i tot[NT];
        FOR_T tot[j] = _mm512_setzero_si512();
        _Pragma("GCC unroll 16") for (int k = 0; k < nsub; k++) {
            __m512i is[NT];
            FOR_T is[j] = _mm512_set1_epi32(yo[j][nsub * i + k]);
            _Pragma("GCC unroll 8") for (int s = steps * k; s < steps * (k + 1); s++) {
                const __m512i w = _mm512_load_si512((const __m512i *)p->q[s]);
                FOR_T {
                    int32_t y4;
                    memcpy(&y4, yk[j][i].qs + 4 * s, 4);
                    is[j] = _mm512_dpbusd_epi32(is[j], w, _mm512_set1_epi32(y4));
                }
            }
            const __m512i sc = _mm512_load_si512((const __m512i *)p->sc[k]);
            FOR_T tot[j] = _mm512_add_epi32(tot[j], _mm512_mullo_epi32(is[j], sc));
        }
        const __m512 dw = _mm512_load_ps(p->d);
        FOR_T acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[j]), _mm512_mul_ps(dw, _mm512_set1_ps(yk[j][i].d)), acc[j]);
    }
    FOR_T _mm512_store_ps(st[j], acc[j]);
}

#define NT_CASES(NSUB)                                                        \
    switch (nt) {                                                             \
    case 8: kernel16lb(i0, i1, pk, yk, yo, sp, 8, NSUB); break;               \
    case 7: kernel16lb(i0, i1, pk, yk, yo, sp, 7, NSUB); break;               \
    case 6: kernel16lb(i0, i1, pk, yk, yo, sp, 6, NSUB); break;               \
    case 5: kernel16lb(i0, i1, pk, yk, yo, sp, 5, NSUB); break;               \
    case 4: kernel16lb(i0, i1, pk, yk, yo, sp, 4, NSUB); break;               \
    case 3: kernel16lb(i0, i1, pk, yk, yo, sp, 3, NSUB); break;               \
    case 2: kernel16lb(i0, i1, pk, yk, yo, sp, 2, NSUB); break;               \
    default: kernel16lb(i0, i1, pk, yk, yo, sp, 1, NSUB); break;              \
    }

// Super-blocks [i0, i1) of every token, NT at a time.
static void chunk16lb(int i0, int i1, const pk16lb *pk, const char *y, size_t by, const int32_t *ofs, size_t tofs,
                      int n_tok, float *st, int nsub) {
    for (int t0 = 0; t0 < n_tok; t0 += NT) {
        const int nt = n_tok - t0 < NT ? n_tok - t0 : NT;
        const block_q8_K *yk[NT];
        const int32_t *yo[NT];
        float *sp[NT];
        for (int j = 0; j < nt; j++) {
            yk[j] = (const block_q8_K *)(y + (size_t)(t0 + j) * by);
            yo[j] = ofs + (size_t)(t0 + j) * tofs;
            sp[j] = st + (size_t)(t0 + j) * 16;
        }
        if (nsub == 16) NT_CASES(16)
        else NT_CASES(8)
    }
}

bool gl_tile16_lowbit_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                             size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs) {
    (void)dy, (void)ys; // Q8_K rows carry their own scales and sums
    if (!gl_is_lowbit_type(type)) return false;
    const int nsb = n / QK_K, nsub = n_sub(type);
    // Scratch: the decoded weights, each token's accumulators and sub-block offsets.
    const size_t pk_bytes = sizeof(pk16lb) * (size_t)nsb, st_bytes = sizeof(float) * 16 * (size_t)n_tok;
    const size_t tofs = (size_t)nsub * (size_t)nsb;
    char *mem = NULL;
    if (posix_memalign((void **)&mem, 64, pk_bytes + st_bytes + sizeof(int32_t) * tofs * (size_t)n_tok) != 0)
        return false;
    pk16lb *pk = (pk16lb *)mem;
    float *st = (float *)(mem + pk_bytes);
    int32_t *ofs = (int32_t *)(mem + pk_bytes + st_bytes);
    for (int t = 0; t < n_tok; t++) {
        const block_q8_K *yb = (const block_q8_K *)((const char *)y + (size_t)t * by);
        int32_t *o = ofs + (size_t)t * tofs;
        for (int i = 0; i < nsb; i++)
            for (int k = 0; k < nsub; k++) {
                const int16_t *b = yb[i].bsums;
                const int sum = nsub == 16 ? b[k] : b[2 * k] + b[2 * k + 1];
                o[nsub * i + k] = -OFFSET * sum;
            }
    }
    for (int r0 = 0; r0 < n_rows; r0 += 16) {
        const int nrows = n_rows - r0 < 16 ? n_rows - r0 : 16;
        pack16lb(type, (const char *)w + (size_t)r0 * w_row, w_row, nrows, nsb, pk);
        memset(st, 0, st_bytes);
        for (int i0 = 0; i0 < nsb; i0 += CHUNK) {
            const int i1 = nsb - i0 < CHUNK ? nsb : i0 + CHUNK;
            chunk16lb(i0, i1, pk, (const char *)y, by, ofs, tofs, n_tok, st, nsub);
        }
        const __mmask16 m = (__mmask16)((1u << nrows) - 1);
        for (int t = 0; t < n_tok; t++) _mm512_mask_storeu_ps(out + (size_t)t * bs + r0, m, _mm512_load_ps(st + (size_t)t * 16));
    }
    free(mem);
    return true;
}
