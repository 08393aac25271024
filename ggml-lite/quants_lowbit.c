// Decoders of the low-bit formats (see quants_lowbit.h). Each 256-element type has one
// unpacker that turns a super-block into integers q[256], scales ls[16] and d; the decoders and
// the scalar dot kernels both go through it. Any bytes decode: grid indices are masked to their
// table's size, so hostile data cannot read outside a table.
//
// Layouts, per super-block of 256 (groups of 8 elements g = 0..31, blocks of 32 b = g / 4):
//  IQ2_XXS  qs as 8 words of 32 bits per block: word 0 = four 8-bit grid indices, word 1 =
//           four 7-bit sign fields (bits 7l..7l+6) and a 4-bit scale s (bits 28..31); 2s+1 / 8.
//  IQ2_XS   qs[g] = 9-bit grid index | 7 sign bits << 9; scales[b]: two 4-bit scales, one per 16.
//  IQ2_S    qs[g] = low 8 index bits, qh[b] bits 2l..2l+1 the high two; sign bytes qs[32 + g];
//           scales as IQ2_XS.
//  IQ3_XXS  qs[2g], qs[2g+1]: indices of two 4-element grid points; then per block a 32-bit
//           word of four 7-bit sign fields and the 4-bit scale; (2s+1) / 4.
//  IQ3_S    qs as IQ3_XXS plus a ninth index bit from qh[b]; signs[g] a full sign byte; a 4-bit
//           scale per block (two per byte of scales): 2s+1.
//  IQ1_S    qs[g] low 8 index bits; qh[b]: 3 high bits per group, a 3-bit scale (bits 12..14)
//           and the sign of the shift +-1/8 added to every grid value (bit 15).
//  IQ1_M    as IQ1_S with the high bits and shift signs in qh[2b], qh[2b+1] (a nibble per group)
//           and 3-bit scales per 16 elements; the fp16 d is spread over the scales' top nibbles.
//  TQ1_0    base-3 digits: 5 trits per byte of qs (value = top digit of byte * 3^n), 4 per qh.
//  TQ2_0    2 bits per element, q - 1.
#include <string.h>

#include "iq_grids.h"
#include "quants.h"
#include "quants_lowbit.h"

const int8_t gl_mxfp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static inline uint32_t rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint16_t rd16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// Eight magnitudes of a grid entry with the sign byte applied.
static inline void put8(int8_t *q, uint64_t grid, uint8_t signs) {
    for (int j = 0; j < 8; j++) {
        const int v = gl_grid_byte(grid, j);
        q[j] = (int8_t)(signs >> j & 1 ? -v : v);
    }
}

// Four magnitudes of an IQ3 grid entry with sign bits `signs` (bit j for element j).
static inline void put4(int8_t *q, uint32_t grid, unsigned signs) {
    for (int j = 0; j < 4; j++) {
        const int v = (int)(grid >> (8 * j) & 0xff);
        q[j] = (int8_t)(signs >> j & 1 ? -v : v);
    }
}

static void unpack_iq2_xxs(const block_iq2_xxs *b, gl_lowbit_block *u) {
    u->d = gl_fp16_to_fp32(b->d);
    u->div = 8;
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *w = (const uint8_t *)(b->qs + 4 * ib);
        const uint32_t aux = rd32(w + 4);
        u->ls[2 * ib] = u->ls[2 * ib + 1] = (int16_t)(2 * (aux >> 28) + 1);
        for (int l = 0; l < 4; l++)
            put8(u->q + 32 * ib + 8 * l, gl_iq2xxs_grid[w[l]], gl_iq_signs8(aux >> (7 * l)));
    }
}

static void unpack_iq2_xs(const block_iq2_xs *b, gl_lowbit_block *u) {
    u->d = gl_fp16_to_fp32(b->d);
    u->div = 8;
    for (int ib = 0; ib < 8; ib++) {
        u->ls[2 * ib] = (int16_t)(2 * (b->scales[ib] & 0xf) + 1);
        u->ls[2 * ib + 1] = (int16_t)(2 * (b->scales[ib] >> 4) + 1);
        for (int l = 0; l < 4; l++) {
            const uint16_t v = rd16(b->qs + 4 * ib + l);
            put8(u->q + 32 * ib + 8 * l, gl_iq2xs_grid[v & 511], gl_iq_signs8(v >> 9));
        }
    }
}

static void unpack_iq2_s(const block_iq2_s *b, gl_lowbit_block *u) {
    u->d = gl_fp16_to_fp32(b->d);
    u->div = 8;
    const uint8_t *signs = b->qs + QK_K / 8;
    for (int ib = 0; ib < 8; ib++) {
        u->ls[2 * ib] = (int16_t)(2 * (b->scales[ib] & 0xf) + 1);
        u->ls[2 * ib + 1] = (int16_t)(2 * (b->scales[ib] >> 4) + 1);
        for (int l = 0; l < 4; l++) {
            const int idx = b->qs[4 * ib + l] | (b->qh[ib] >> (2 * l) & 3) << 8;
            put8(u->q + 32 * ib + 8 * l, gl_iq2s_grid[idx], signs[4 * ib + l]);
        }
    }
}

static void unpack_iq3_xxs(const block_iq3_xxs *b, gl_lowbit_block *u) {
    u->d = gl_fp16_to_fp32(b->d);
    u->div = 4;
    const uint8_t *qs = b->qs, *scales_signs = b->qs + QK_K / 4;
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t aux = rd32(scales_signs + 4 * ib);
        u->ls[2 * ib] = u->ls[2 * ib + 1] = (int16_t)(2 * (aux >> 28) + 1);
        for (int l = 0; l < 4; l++) {
            const uint8_t s = gl_iq_signs8(aux >> (7 * l));
            int8_t *q = u->q + 32 * ib + 8 * l;
            put4(q, gl_iq3xxs_grid[qs[8 * ib + 2 * l]], s);
            put4(q + 4, gl_iq3xxs_grid[qs[8 * ib + 2 * l + 1]], s >> 4);
        }
    }
}

static void unpack_iq3_s(const block_iq3_s *b, gl_lowbit_block *u) {
    u->d = gl_fp16_to_fp32(b->d);
    u->div = 1;
    for (int ib = 0; ib < 8; ib++) {
        const int s = b->scales[ib / 2] >> (4 * (ib % 2)) & 0xf;
        u->ls[2 * ib] = u->ls[2 * ib + 1] = (int16_t)(2 * s + 1);
        for (int l = 0; l < 4; l++) {
            const int i1 = b->qs[8 * ib + 2 * l] | (b->qh[ib] >> (2 * l) & 1) << 8;
            const int i2 = b->qs[8 * ib + 2 * l + 1] | (b->qh[ib] >> (2 * l + 1) & 1) << 8;
            const uint8_t sg = b->signs[4 * ib + l];
            int8_t *q = u->q + 32 * ib + 8 * l;
            put4(q, gl_iq3s_grid[i1], sg);
            put4(q + 4, gl_iq3s_grid[i2], sg >> 4);
        }
    }
}

// IQ1 values are grid + shift with grid in {-1, 0, 1} and shift +-1/8: stored as 8 * value.
static inline void put8_iq1(int8_t *q, uint64_t grid, bool minus) {
    for (int j = 0; j < 8; j++) q[j] = (int8_t)(8 * (int8_t)gl_grid_byte(grid, j) + (minus ? -1 : 1));
}

static void unpack_iq1_s(const block_iq1_s *b, gl_lowbit_block *u) {
    u->d = gl_fp16_to_fp32(b->d);
    u->div = 8;
    for (int ib = 0; ib < 8; ib++) {
        const uint16_t qh = rd16(b->qh + ib);
        u->ls[2 * ib] = u->ls[2 * ib + 1] = (int16_t)(2 * (qh >> 12 & 7) + 1);
        for (int l = 0; l < 4; l++) {
            const int idx = b->qs[4 * ib + l] | (qh >> (3 * l) & 7) << 8;
            put8_iq1(u->q + 32 * ib + 8 * l, gl_iq1s_grid[idx], qh & 0x8000);
        }
    }
}

static void unpack_iq1_m(const block_iq1_m *b, gl_lowbit_block *u) {
    uint16_t sc[4];
    for (int k = 0; k < 4; k++) sc[k] = rd16(b->scales + 2 * k);
    const uint16_t dbits = (uint16_t)((sc[0] >> 12) | (sc[1] >> 8 & 0x00f0) | (sc[2] >> 4 & 0x0f00) | (sc[3] & 0xf000));
    u->d = gl_fp16_to_fp32(dbits);
    u->div = 8;
    for (int ib = 0; ib < 8; ib++) {
        const int s = sc[ib / 2] >> (6 * (ib % 2));
        u->ls[2 * ib] = (int16_t)(2 * (s & 7) + 1);
        u->ls[2 * ib + 1] = (int16_t)(2 * (s >> 3 & 7) + 1);
        for (int l = 0; l < 4; l++) {
            const int h = b->qh[2 * ib + l / 2] >> (4 * (l % 2)) & 0xf; // 3 index bits, shift sign
            const int idx = b->qs[4 * ib + l] | (h & 7) << 8;
            put8_iq1(u->q + 32 * ib + 8 * l, gl_iq1s_grid[idx], h & 8);
        }
    }
}

// The n-th base-3 digit (most significant first) of a byte holding 5 trits as a fixed-point
// fraction of 243: multiplying by 3^n shifts it to the top; (q * 3) >> 8 reads it.
static inline int trit(uint8_t byte, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    const uint8_t q = (uint8_t)(byte * pow3[n]);
    return ((uint16_t)q * 3 >> 8) - 1;
}

static void unpack_tq1_0(const block_tq1_0 *b, gl_lowbit_block *u) {
    u->d = gl_fp16_to_fp32(b->d);
    u->div = 1;
    for (int k = 0; k < 16; k++) u->ls[k] = 1;
    int8_t *q = u->q;
    for (int n = 0; n < 5; n++) // elements 0..159: qs[0..31]
        for (int m = 0; m < 32; m++) *q++ = (int8_t)trit(b->qs[m], n);
    for (int n = 0; n < 5; n++) // 160..239: qs[32..47]
        for (int m = 0; m < 16; m++) *q++ = (int8_t)trit(b->qs[32 + m], n);
    for (int n = 0; n < 4; n++) // 240..255: qh
        for (int m = 0; m < 4; m++) *q++ = (int8_t)trit(b->qh[m], n);
}

static void unpack_tq2_0(const block_tq2_0 *b, gl_lowbit_block *u) {
    u->d = gl_fp16_to_fp32(b->d);
    u->div = 1;
    for (int k = 0; k < 16; k++) u->ls[k] = 1;
    for (int j = 0; j < 2; j++)
        for (int l = 0; l < 4; l++)
            for (int m = 0; m < 32; m++) u->q[128 * j + 32 * l + m] = (int8_t)((b->qs[32 * j + m] >> (2 * l) & 3) - 1);
}

bool gl_is_lowbit_type(enum gl_type type) {
    switch (type) {
    case GL_TYPE_IQ2_XXS: case GL_TYPE_IQ2_XS: case GL_TYPE_IQ2_S: case GL_TYPE_IQ3_XXS:
    case GL_TYPE_IQ3_S: case GL_TYPE_IQ1_S: case GL_TYPE_IQ1_M: case GL_TYPE_TQ1_0: case GL_TYPE_TQ2_0:
        return true;
    default:
        return false;
    }
}

bool gl_unpack_lowbit(enum gl_type type, const void *row, int64_t i, gl_lowbit_block *u) {
    switch (type) {
    case GL_TYPE_IQ2_XXS: unpack_iq2_xxs((const block_iq2_xxs *)row + i, u); return true;
    case GL_TYPE_IQ2_XS: unpack_iq2_xs((const block_iq2_xs *)row + i, u); return true;
    case GL_TYPE_IQ2_S: unpack_iq2_s((const block_iq2_s *)row + i, u); return true;
    case GL_TYPE_IQ3_XXS: unpack_iq3_xxs((const block_iq3_xxs *)row + i, u); return true;
    case GL_TYPE_IQ3_S: unpack_iq3_s((const block_iq3_s *)row + i, u); return true;
    case GL_TYPE_IQ1_S: unpack_iq1_s((const block_iq1_s *)row + i, u); return true;
    case GL_TYPE_IQ1_M: unpack_iq1_m((const block_iq1_m *)row + i, u); return true;
    case GL_TYPE_TQ1_0: unpack_tq1_0((const block_tq1_0 *)row + i, u); return true;
    case GL_TYPE_TQ2_0: unpack_tq2_0((const block_tq2_0 *)row + i, u); return true;
    default: return false;
    }
}

// x = (d * ls / div) * q: d * ls / div is exact in float (fp16 d times a small odd integer over
// a power of two), so each value takes one rounding, as in ggml's decoders.
static void dequant_lowbit(enum gl_type type, const void *x, float *y, int64_t n) {
    gl_lowbit_block u;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        gl_unpack_lowbit(type, x, i, &u);
        for (int k = 0; k < 16; k++) {
            const float dl = u.d * u.ls[k] / u.div;
            for (int e = 16 * k; e < 16 * k + 16; e++) y[e] = dl * u.q[e];
        }
    }
}

#define DEQUANT(T, ID) \
    void gl_dequant_row_##T(const void *x, float *y, int64_t n) { dequant_lowbit(GL_TYPE_##ID, x, y, n); }
DEQUANT(iq2_xxs, IQ2_XXS)
DEQUANT(iq2_xs, IQ2_XS)
DEQUANT(iq2_s, IQ2_S)
DEQUANT(iq3_xxs, IQ3_XXS)
DEQUANT(iq3_s, IQ3_S)
DEQUANT(iq1_s, IQ1_S)
DEQUANT(iq1_m, IQ1_M)
DEQUANT(tq1_0, TQ1_0)
DEQUANT(tq2_0, TQ2_0)

void gl_dequant_row_mxfp4(const void *vx, float *y, int64_t n) {
    const block_mxfp4 *x = (const block_mxfp4 *)vx;
    for (int64_t i = 0; i < n / QK_MXFP4; i++, y += QK_MXFP4) {
        const float d = gl_e8m0_half(x[i].e);
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            y[j] = d * gl_mxfp4_values[x[i].qs[j] & 0xf];
            y[j + QK_MXFP4 / 2] = d * gl_mxfp4_values[x[i].qs[j] >> 4];
        }
    }
}
