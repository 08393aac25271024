// Prompt tiles for the i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) and the
// ternary types (TQ1_0, TQ2_0) against Q8_K rows, on 512-bit registers with AVX512-VNNI (the
// layout of tile_k_avx512.c).
//
// Every super-block of these types is small signed integers q[256] with integer sub-block
// scales and one float factor (quants_lowbit.h): x = (d / div) * ls[sub-block] * q. Sixteen
// weight rows are decoded once per work item into 64 steps of 64 bytes (step s: elements
// 4s..4s+3 of the 16 rows) holding q + 64, unsigned, so that the activations enter vpdpbusd as
// they are (signed, each token's 4 bytes broadcast); a sub-block's steps add up in integers,
// starting from -64 times the activation sum of the sub-block (Q8_K's bsums). Each sub-block
// sum is converted to float and multiplied by its scale with an FMA (faster than vpmulld, and
// exact: sum * scale < 2^24), summed over the super-block; then one FMA per super-block:
// acc += sum * (d / div * d_y). This differs from the scalar kernel only in the roundings of
// float adds.
//
// Decoding: in the VBMI build, IQ2_XXS, IQ2_S, IQ3_XXS and IQ3_S are decoded for the 16 rows at
// once straight into steps (one transpose of the rows' index and sign bytes, the grid codes looked
// up for all rows, spread into steps by byte shuffles); otherwise, and for the other types, row by
// row (decode_tile_row: vector grid lookups, the ternary types through the scalar unpacker), then
// transposed into steps.
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "dot.h"
#include "kernels_avx512_lowbit.h"
#include "lowbit_decode_avx512.h"
#include "quants.h"

typedef struct {
    float d[16];        // d / div of each row
    float sc[16][16];   // sub-block k: each row's scale
    uint8_t q[64][64];  // step s: elements 4s..4s+3 of rows 0..15, plus LOWBIT_OFFSET
} pk16lb;

enum {
    CHUNK = 4, // super-blocks per chunk: 4 * 5 KiB of weights stay in L1 while every token passes
    NT = 8     // tokens per pass
};

#define INL static inline __attribute__((always_inline))
#define FOR_T _Pragma("GCC unroll 8") for (int j = 0; j < nt; j++)

#ifdef __AVX512VBMI__
// signs4 on 16 words at once.
static inline __m512i signs4_x16(__m512i a) {
    const __m512i m7 = _mm512_set1_epi32(0x7f);
    const __m512i x = _mm512_or_si512(
        _mm512_or_si512(_mm512_and_si512(a, m7), _mm512_and_si512(_mm512_slli_epi32(a, 1), _mm512_slli_epi32(m7, 8))),
        _mm512_or_si512(_mm512_and_si512(_mm512_slli_epi32(a, 2), _mm512_slli_epi32(m7, 16)),
                        _mm512_and_si512(_mm512_slli_epi32(a, 3), _mm512_slli_epi32(m7, 24))));
    __m512i p = _mm512_xor_si512(x, _mm512_srli_epi32(x, 4));
    p = _mm512_xor_si512(p, _mm512_srli_epi32(p, 2));
    p = _mm512_xor_si512(p, _mm512_srli_epi32(p, 1));
    return _mm512_or_si512(x, _mm512_slli_epi32(_mm512_and_si512(p, _mm512_set1_epi32(0x01010101)), 7));
}

// vpmultishiftqb's control for byte j of each dword (both of a qword) to be the 8 bits from bit
// first + j * step of that dword.
static inline __attribute__((always_inline)) __m512i bit_offsets(int first, int step) {
    long long c = 0;
    for (int j = 0; j < 4; j++) c |= (long long)(first + j * step) << (8 * j) | (long long)(32 + first + j * step) << (32 + 8 * j);
    return _mm512_set1_epi64(c);
}

// The 8 steps of block b (groups 4b..4b + 3) of 16 rows from their IQ2 grid codes (lo, hi: byte
// 4r + l the code of row r's group 4b + l) and sign bytes (sg, the same layout): step 8b + 2l +
// half, elements 4 half + j of group 4b + l, takes byte j of dword r from the code bits of
// element j (lo) or 4 + j (hi) of row r's entry, and its sign bit.
static inline __attribute__((always_inline)) void iq2_steps(const gl_grid_codes *codes, __m512i lo, __m512i hi, __m512i sg,
                                                            int b, pk16lb *p) {
    const __m512i levels = _mm512_add_epi8(_mm512_load_si512((const __m512i *)codes->levels), _mm512_set1_epi8(LOWBIT_OFFSET));
    const __m512i twice = _mm512_set1_epi8(2 * LOWBIT_OFFSET); // level + offset negated: twice - it
    _Pragma("GCC unroll 4") for (int l = 0; l < 4; l++)
        _Pragma("GCC unroll 2") for (int half = 0; half < 2; half++) { // (unrolled: the controls are constants)
            const __m512i rank = _mm512_multishift_epi64_epi8(bit_offsets(8 * l, 2), half ? hi : lo);
            const __m512i lv = _mm512_permutexvar_epi8(rank, levels);
            const __mmask64 neg = _mm512_test_epi8_mask(_mm512_multishift_epi64_epi8(bit_offsets(8 * l + 4 * half, 1), sg),
                                                        _mm512_set1_epi8(1));
            _mm512_store_si512((__m512i *)p->q[8 * b + 2 * l + half], _mm512_mask_sub_epi8(lv, neg, twice, lv));
        }
}

// IQ2_XXS super-block i of 16 rows (nrows real ones) straight into the step layout. One transpose
// of the rows' 16 words brings each block's grid indices (and its sign and scale word) of all
// rows into one vector, dword r for row r; the grid codes are then looked up for the 16 rows at
// once, and byte shuffles spread them into steps: per step a shift-select of the code bytes,
// a level lookup and the signs, instead of per row lookups and transposes of the levels.
static void pack16_iq2xxs(const char *w, size_t w_row, int nrows, int i, pk16lb *p) {
    __m512i v[16], q[16];
    for (int r = 0; r < 16; r++) {
        const block_iq2_xxs *b = (const block_iq2_xxs *)(w + (size_t)r * w_row) + i;
        v[r] = r < nrows ? _mm512_loadu_si512(b->qs) : _mm512_setzero_si512();
        p->d[r] = r < nrows ? half_to_float(b->d) / 8 : 0.0f;
    }
    transpose16x16(v, q); // q[2b]: the four grid indices of block b of each row; q[2b + 1]: its signs and scale
    for (int b = 0; b < 8; b++) {
        const __m512i aux = q[2 * b + 1];
        _mm512_store_ps(p->sc[b], _mm512_cvtepi32_ps(_mm512_or_si512(_mm512_slli_epi32(_mm512_srli_epi32(aux, 28), 1),
                                                                     _mm512_set1_epi32(1))));
        iq2_steps(&gl_iq2xxs_codes, codes256(gl_iq2xxs_codes.lo, q[2 * b]), codes256(gl_iq2xxs_codes.hi, q[2 * b]),
                  signs4_x16(aux), b, p);
    }
}

// IQ2_S super-block i of 16 rows (nrows real ones) straight into the step layout (iq2_steps).
static void pack16_iq2s(const char *w, size_t w_row, int nrows, int i, pk16lb *p) {
    __m512i v[16], q[16], hs[16];
    for (int r = 0; r < 16; r++) {
        const block_iq2_s *b = (const block_iq2_s *)(w + (size_t)r * w_row) + i;
        v[r] = r < nrows ? _mm512_loadu_si512(b->qs) : _mm512_setzero_si512();
        p->d[r] = r < nrows ? half_to_float(b->d) / 8 : 0.0f;
    }
    transpose16x16(v, q); // q[b]: low index bytes of groups 4b..4b + 3 of each row; q[8 + b]: their sign bytes
    for (int r = 0; r < 16; r++) { // qh, then the scales: a byte per dword
        const block_iq2_s *b = (const block_iq2_s *)(w + (size_t)r * w_row) + i;
        v[r] = r < nrows ? _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b->qh)) : _mm512_setzero_si512();
    }
    transpose16x16(v, hs); // hs[b]: qh[b] of each row (two high index bits per group); hs[8 + k]: scales[k]
    for (int k = 0; k < 16; k++) // scale k: nibble k % 2 of byte k / 2
        _mm512_store_ps(p->sc[k], _mm512_cvtepi32_ps(_mm512_or_si512(
                                      _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hs[8 + k / 2], 4 * (k % 2)), _mm512_set1_epi32(0xf)), 1),
                                      _mm512_set1_epi32(1))));
    for (int b = 0; b < 8; b++) {
        const __m512i high = _mm512_multishift_epi64_epi8(bit_offsets(0, 2), hs[b]); // byte 4r + l: group 4b + l's bits
        iq2_steps(&gl_iq2s_codes, codes1024(gl_iq2s_codes.lo, q[b], high), codes1024(gl_iq2s_codes.hi, q[b], high), q[8 + b], b,
                  p);
    }
}

// The IQ3 grids' codes (12 bits, 3 per element) of 16 rows' entries in the step layout: ix[k] has
// index 4k + c of row r at byte 4r + c (nine: its ninth bits, for IQ3_S's 512-entry grid; NULL
// for IQ3_XXS), sg[b] row r's sign byte of group 4b + l at byte 4r + l. Step s = 4k + c is entry
// 4k + c of every row: its code gathered into dword r, spread into the 4 levels, signs applied.
static void iq3_steps(const gl_grid_codes *codes, const __m512i *ix, const __mmask64 *nine, const __m512i *sg,
                      pk16lb *p) {
    const __m512i levels = _mm512_add_epi8(_mm512_load_si512((const __m512i *)codes->levels), _mm512_set1_epi8(LOWBIT_OFFSET));
    const __m512i twice = _mm512_set1_epi8(2 * LOWBIT_OFFSET), rank_at = bit_offsets(0, 3);
    __m512i place[4], sign_at[4][2]; // place: dword r from byte 4r + c of the low codes, then of the high ones
    for (int l = 0; l < 4; l++)
        for (int half = 0; half < 2; half++) sign_at[l][half] = bit_offsets(8 * l + 4 * half, 1);
    for (int c = 0; c < 4; c++) {
        _Alignas(64) uint32_t pl[16];
        for (int r = 0; r < 16; r++) pl[r] = (uint32_t)(4 * r + c) * 0x0101u + 0x4000u;
        place[c] = _mm512_load_si512(pl);
    }
    for (int k = 0; k < 16; k++) {
        const __m512i lo = nine ? codes512(codes->lo, ix[k], nine[k]) : codes256(codes->lo, ix[k]);
        const __m512i hi = nine ? codes512(codes->hi, ix[k], nine[k]) : codes256(codes->hi, ix[k]);
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            // step 4k + c: elements 4 (c % 2)..4 (c % 2) + 3 of group 2k + c / 2, in block k / 2
            const int l = 2 * (k % 2) + c / 2, half = c % 2;
            const __m512i code = _mm512_permutex2var_epi8(lo, place[c], hi);
            const __m512i lv = _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(rank_at, code), levels);
            const __mmask64 neg = _mm512_test_epi8_mask(_mm512_multishift_epi64_epi8(sign_at[l][half], sg[k / 2]),
                                                        _mm512_set1_epi8(1));
            _mm512_store_si512((__m512i *)p->q[4 * k + c], _mm512_mask_sub_epi8(lv, neg, twice, lv));
        }
    }
}

// IQ3_XXS super-block i of 16 rows (nrows real ones) straight into the step layout (iq3_steps).
static void pack16_iq3xxs(const char *w, size_t w_row, int nrows, int i, pk16lb *p) {
    __m512i v[16], ix[16], sw[16], sg[8];
    for (int r = 0; r < 16; r++) {
        const block_iq3_xxs *b = (const block_iq3_xxs *)(w + (size_t)r * w_row) + i;
        v[r] = r < nrows ? _mm512_loadu_si512(b->qs) : _mm512_setzero_si512();
        p->d[r] = r < nrows ? half_to_float(b->d) / 4 : 0.0f;
    }
    transpose16x16(v, ix); // ix[k]: grid indices 4k..4k + 3 of each row
    for (int r = 0; r < 16; r++) {
        const block_iq3_xxs *b = (const block_iq3_xxs *)(w + (size_t)r * w_row) + i;
        v[r] = r < nrows ? _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b->qs + QK_K / 4))) : _mm512_setzero_si512();
    }
    transpose16x16(v, sw); // sw[b]: block b's signs and scale word of each row
    for (int b = 0; b < 8; b++) {
        sg[b] = signs4_x16(sw[b]);
        _mm512_store_ps(p->sc[b], _mm512_cvtepi32_ps(_mm512_or_si512(_mm512_slli_epi32(_mm512_srli_epi32(sw[b], 28), 1),
                                                                     _mm512_set1_epi32(1))));
    }
    iq3_steps(&gl_iq3xxs_codes, ix, NULL, sg, p);
}

// IQ3_S super-block i of 16 rows (nrows real ones) straight into the step layout (iq3_steps).
static void pack16_iq3s(const char *w, size_t w_row, int nrows, int i, pk16lb *p) {
    __m512i v[16], ix[16], hb[16], ss[16];
    __mmask64 nine[16];
    for (int r = 0; r < 16; r++) {
        const block_iq3_s *b = (const block_iq3_s *)(w + (size_t)r * w_row) + i;
        v[r] = r < nrows ? _mm512_loadu_si512(b->qs) : _mm512_setzero_si512();
        p->d[r] = r < nrows ? half_to_float(b->d) : 0.0f;
    }
    transpose16x16(v, ix); // ix[k]: the low 8 bits of grid indices 4k..4k + 3 of each row
    for (int r = 0; r < 16; r++) // each index's ninth bit as a byte
        v[r] = r < nrows ? _mm512_movm_epi8((__mmask64)rd64(((const block_iq3_s *)(w + (size_t)r * w_row) + i)->qh))
                         : _mm512_setzero_si512();
    transpose16x16(v, hb);
    for (int k = 0; k < 16; k++) nine[k] = _mm512_movepi8_mask(hb[k]);
    for (int r = 0; r < 16; r++) { // the 32 sign bytes and the 4 scale bytes after them
        const block_iq3_s *b = (const block_iq3_s *)(w + (size_t)r * w_row) + i;
        v[r] = r < nrows ? _mm512_maskz_loadu_epi8(0xfffffffffull, b->signs) : _mm512_setzero_si512();
    }
    transpose16x16(v, ss); // ss[b]: sign bytes of groups 4b..4b + 3 of each row; ss[8]: the scales
    for (int b = 0; b < 8; b++) // scale b: nibble b % 2 of byte b / 2
        _mm512_store_ps(p->sc[b], _mm512_cvtepi32_ps(_mm512_or_si512(
                                      _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(ss[8], 4 * b), _mm512_set1_epi32(0xf)), 1),
                                      _mm512_set1_epi32(1))));
    iq3_steps(&gl_iq3s_codes, ix, nine, ss, p);
}
#endif

// Decodes super-blocks [i0, i1) of 16 rows (nrows real ones, the rest zero) into pk[0..i1 - i0).
static void pack16lb(enum gl_type t, const char *w, size_t w_row, int nrows, int i0, int i1, pk16lb *pk) {
    _Alignas(64) __m512i lv[16][4];
    _Alignas(64) int32_t sc[16][16];
    const size_t bsz = gl_row_size(t, QK_K);
    for (int i = i0; i < i1; i++) {
        pk16lb *p = &pk[i - i0];
        // the rows' next super-blocks: 16 streams a super-block apart are more than the hardware
        // prefetchers follow
        for (int r = 0; r < nrows; r++) _mm_prefetch(w + (size_t)r * w_row + (size_t)(i + 2) * bsz, _MM_HINT_T0);
#ifdef __AVX512VBMI__
        void (*pack)(const char *, size_t, int, int, pk16lb *) = t == GL_TYPE_IQ2_XXS ? pack16_iq2xxs
                                                                : t == GL_TYPE_IQ2_S   ? pack16_iq2s
                                                                : t == GL_TYPE_IQ3_XXS ? pack16_iq3xxs
                                                                : t == GL_TYPE_IQ3_S   ? pack16_iq3s
                                                                                       : NULL;
        if (pack) {
            pack(w, w_row, nrows, i, p);
            continue;
        }
#endif
        for (int r = 0; r < 16; r++) {
            float d = 0;
            if (r < nrows) {
                if (n_sub(t) == 8) memset(sc[r] + 8, 0, sizeof(int32_t) * 8); // (transposed, never read)
                decode_tile_row(t, w + (size_t)r * w_row, i, lv[r], sc[r], &d);
            } else {
                memset(sc[r], 0, sizeof sc[r]);
                for (int h = 0; h < 4; h++) lv[r][h] = _mm512_setzero_si512();
            }
            p->d[r] = d;
        }
        __m512i v[16], q[16];
        for (int r = 0; r < 16; r++) v[r] = _mm512_load_si512(sc[r]);
        transpose16x16(v, q); // scale k of every row
        for (int k = 0; k < 16; k++) _mm512_store_ps(p->sc[k], _mm512_cvtepi32_ps(q[k]));
        for (int h = 0; h < 4; h++) { // 64-element runs: 16 steps each
            for (int r = 0; r < 16; r++) v[r] = lv[r][h];
            transpose16x16(v, q);
            for (int s = 0; s < 16; s++) _mm512_store_si512((__m512i *)p->q[16 * h + s], q[s]);
        }
    }
}

// nt tokens x 16 rows over super-blocks [i0, i1) (decoded in pk[0..i1 - i0)). Token j: yk[j] its Q8_K blocks, yo[j] +
// nsub * i its sub-blocks' -LOWBIT_OFFSET * sum(y), st[j] its 16 accumulators between chunks.
INL void kernel16lb(int i0, int i1, const pk16lb *pk, const block_q8_K *const *yk, const int32_t *const *yo,
                    float *const *st, const int nt, const int nsub) {
    const int steps = 64 / nsub;
    __m512 acc[NT];
    FOR_T acc[j] = _mm512_load_ps(st[j]);
    for (int i = i0; i < i1; i++) {
        const pk16lb *p = &pk[i - i0];
        __m512 tot[NT];
        FOR_T tot[j] = _mm512_setzero_ps();
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
            const __m512 sc = _mm512_load_ps(p->sc[k]);
            FOR_T tot[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[j]), sc, tot[j]);
        }
        const __m512 dw = _mm512_load_ps(p->d);
        FOR_T acc[j] = _mm512_fmadd_ps(tot[j], _mm512_mul_ps(dw, _mm512_set1_ps(yk[j][i].d)), acc[j]);
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

#ifdef __AVX512VBMI__ // (built a second time with VBMI by tile_lowbit_vbmi_avx512.c)
#define TILE_LOWBIT gl_tile16_lowbit_matmul_vbmi
#else
#define TILE_LOWBIT tile_lowbit
static
#endif
bool TILE_LOWBIT(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                 size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs) {
    (void)dy, (void)ys; // Q8_K rows carry their own scales and sums
    if (!gl_is_lowbit_type(type)) return false;
    const int nsb = n / QK_K, nsub = n_sub(type);
    // Scratch: the decoded weights, each token's accumulators and sub-block offsets.
    const size_t pk_bytes = sizeof(pk16lb) * CHUNK, st_bytes = sizeof(float) * 16 * (size_t)n_tok;
    const size_t tofs = (size_t)nsub * (size_t)nsb;
    char *mem = NULL;
    if (posix_memalign((void **)&mem, 64, pk_bytes + st_bytes + sizeof(int32_t) * tofs * (size_t)n_tok) != 0)
        return false;
    pk16lb *pk = (pk16lb *)mem;
    float *st = (float *)(mem + pk_bytes);
    int32_t *ofs = (int32_t *)(mem + pk_bytes + st_bytes);
    for (int t = 0; t < n_tok; t++) { // -LOWBIT_OFFSET * each sub-block's activation sum
        const block_q8_K *yb = (const block_q8_K *)((const char *)y + (size_t)t * by);
        int32_t *o = ofs + (size_t)t * tofs;
        for (int i = 0; i < nsb; i++) {
            const __m256i bsums = _mm256_loadu_si256((const __m256i *)yb[i].bsums);
            // (vpmaddwd: word pairs times (-LOWBIT_OFFSET, 0) for 16 sums, (-LOWBIT_OFFSET, -LOWBIT_OFFSET) for 8)
            if (nsub == 16)
                _mm512_storeu_si512(o + 16 * i, _mm512_madd_epi16(_mm512_cvtepi16_epi32(bsums), _mm512_set1_epi32(-LOWBIT_OFFSET & 0xffff)));
            else
                _mm256_storeu_si256((__m256i *)(o + 8 * i), _mm256_madd_epi16(bsums, _mm256_set1_epi16(-LOWBIT_OFFSET)));
        }
    }
    for (int r0 = 0; r0 < n_rows; r0 += 16) {
        const int nrows = n_rows - r0 < 16 ? n_rows - r0 : 16;
        memset(st, 0, st_bytes);
        for (int i0 = 0; i0 < nsb; i0 += CHUNK) { // each chunk decoded right before the tokens pass (in L1)
            const int i1 = nsb - i0 < CHUNK ? nsb : i0 + CHUNK;
            pack16lb(type, (const char *)w + (size_t)r0 * w_row, w_row, nrows, i0, i1, pk);
            chunk16lb(i0, i1, pk, (const char *)y, by, ofs, tofs, n_tok, st, nsub);
        }
        const __mmask16 m = (__mmask16)((1u << nrows) - 1);
        for (int t = 0; t < n_tok; t++) _mm512_mask_storeu_ps(out + (size_t)t * bs + r0, m, _mm512_load_ps(st + (size_t)t * 16));
    }
    free(mem);
    return true;
}

#ifndef __AVX512VBMI__
// The set's entry: the VBMI build where the CPU has it (the same numbers, faster grid lookups).
bool gl_tile16_lowbit_matmul(enum gl_type type, int n, const void *w, size_t w_row, int n_rows, const void *y,
                             size_t by, const float *dy, const int32_t *ys, int n_tok, float *out, size_t bs) {
    return (gl_lowbit_vbmi() ? gl_tile16_lowbit_matmul_vbmi : tile_lowbit)(type, n, w, w_row, n_rows, y, by, dy, ys, n_tok,
                                                                           out, bs);
}
#endif
