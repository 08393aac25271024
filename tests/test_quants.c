// Block formats without external data:
//  - round trip: quantize -> dequantize fixed-seed Gaussian rows; the RMSE relative to the
//    data's RMS must fall in a tight per-type band (measured once against ggml's quantizer);
//    a bit-layout bug or a quantizer without the scale search lands outside it;
//  - importance weights: the imatrix quantizers give a lower weighted error than the plain
//    ones, and uniform weights change little;
//  - exactly representable blocks (built from known quants and scales) are reproduced:
//    dequant(quant(dequant(b))) == dequant(b), and for the simple formats the same bytes;
//  - hand-computed decoder values for each layout, Q8_1's s and Q8_K's bsums;
//  - gl_quantize_rows dispatch, gl_row_size, gl_type_name / gl_type_from_name;
//  - hostile inputs (NaN, Inf, huge) quantize without crashing, zero rows decode to zero.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/ggml-lite.h"
#include "ggml-lite/quants.h"
#include "tests/test_util.h"

typedef void (*imatrix_fn)(const float *x, void *y, int64_t n, const float *qw);

typedef struct {
    enum gl_type type;
    const char *name;
    int blck;
    size_t size;
    gl_to_float_fn dequant;
    gl_from_float_fn ref;
    imatrix_fn imatrix;
    // Expected relative RMSE on unit Gaussian rows (measured once; identical to ggml's
    // quantizer on the same data) for the plain quantizer and the imatrix one with uniform
    // weights. The check allows +-BAND around it; skipping the scale search costs 7-28%.
    double rmse, rmse_imx;
} qtype;

#define BAND 0.02

#define T(TY, name, blck, st, e) \
    { GL_TYPE_##TY, #TY, blck, sizeof(st), gl_dequant_row_##name, gl_quant_row_##name##_ref, NULL, e, 0 }
#define TI(TY, name, blck, st, e, ei) \
    { GL_TYPE_##TY, #TY, blck, sizeof(st), gl_dequant_row_##name, gl_quant_row_##name##_ref, \
      gl_quant_row_##name##_imatrix, e, ei }

static const qtype types[] = {
    T(F32, f32, 1, float, 0),
    T(F16, f16, 1, gl_fp16, 0.000208),
    T(BF16, bf16, 1, gl_bf16, 0.001654),
    TI(Q4_0, q4_0, 32, block_q4_0, 0.086313, 0.082011),
    TI(Q4_1, q4_1, 32, block_q4_1, 0.078266, 0.069916),
    TI(Q5_0, q5_0, 32, block_q5_0, 0.042862, 0.040608),
    TI(Q5_1, q5_1, 32, block_q5_1, 0.037842, 0.033889),
    T(Q8_0, q8_0, 32, block_q8_0, 0.005363),
    T(Q8_1, q8_1, 32, block_q8_1, 0.005363),
    TI(Q2_K, q2_K, 256, block_q2_K, 0.295732, 0.266696),
    TI(Q3_K, q3_K, 256, block_q3_K, 0.151731, 0.145509),
    TI(Q4_K, q4_K, 256, block_q4_K, 0.071309, 0.070695),
    TI(Q5_K, q5_K, 256, block_q5_K, 0.036217, 0.035474),
    TI(Q6_K, q6_K, 256, block_q6_K, 0.017748, 0.017327),
    T(Q8_K, q8_K, 256, block_q8_K, 0.006927),
    TI(IQ4_NL, iq4_nl, 32, block_iq4_nl, 0.076578, 0.075269),
    TI(IQ4_XS, iq4_xs, 256, block_iq4_xs, 0.077122, 0.075918),
};
#define N_TYPES ((int)(sizeof types / sizeof types[0]))

static bool in_band(double got, double want) {
    return want == 0 ? got == 0 : got >= want * (1 - BAND) && got <= want * (1 + BAND);
}

// ---- deterministic data -------------------------------------------------------------------

static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s * 2654435761u + 1; }
static uint32_t rng_u32(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 32);
}
static double urand(void) { return (rng_u32() + 0.5) * 0x1.0p-32; } // (0, 1)
static float gauss(void) { return (float)(sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand())); }

enum { NROWS = 64, NCOLS = 1024, NTOT = NROWS * NCOLS };

static float data[NTOT], out[NTOT], imx[NCOLS];
static uint8_t qbuf[NTOT * 4], qbuf2[NTOT * 4];

static size_t row_bytes(const qtype *t, int64_t n) { return (size_t)(n / t->blck) * t->size; }

static void quantize(const qtype *t, const float *x, void *q, const float *w) {
    const size_t rb = row_bytes(t, NCOLS);
    for (int r = 0; r < NROWS; r++) {
        if (w) t->imatrix(x + (size_t)r * NCOLS, (uint8_t *)q + r * rb, NCOLS, w);
        else t->ref(x + (size_t)r * NCOLS, (uint8_t *)q + r * rb, NCOLS);
    }
}

static void dequantize(const qtype *t, const void *q, float *y) {
    const size_t rb = row_bytes(t, NCOLS);
    for (int r = 0; r < NROWS; r++) t->dequant((const uint8_t *)q + r * rb, y + (size_t)r * NCOLS, NCOLS);
}

// sqrt(sum w (x - y)^2 / sum w x^2), w per column (NULL: 1).
static double rel_rmse(const float *x, const float *y, const float *w) {
    double num = 0, den = 0;
    for (int i = 0; i < NTOT; i++) {
        const double wi = w ? w[i % NCOLS] : 1.0;
        num += wi * ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        den += wi * (double)x[i] * x[i];
    }
    return sqrt(num / den);
}

static void test_round_trip(void) {
    rng_seed(1);
    for (int i = 0; i < NTOT; i++) data[i] = gauss();
    for (int k = 0; k < N_TYPES; k++) {
        const qtype *t = &types[k];
        quantize(t, data, qbuf, NULL);
        dequantize(t, qbuf, out);
        const double e = rel_rmse(data, out, NULL);
        double ei = -1;
        if (t->imatrix) {
            for (int j = 0; j < NCOLS; j++) imx[j] = 1.0f;
            quantize(t, data, qbuf2, imx);
            dequantize(t, qbuf2, out);
            ei = rel_rmse(data, out, NULL);
        }
        printf("round trip %-7s rel RMSE %.6f  imatrix(uniform) %.6f\n", t->name, e, ei);
        CHECK(in_band(e, t->rmse), "%s: rel RMSE %.6f, expected %.6f +-%.0f%%", t->name, e,
              t->rmse, BAND * 100);
        if (t->imatrix)
            CHECK(in_band(ei, t->rmse_imx), "%s imatrix: rel RMSE %.6f, expected %.6f +-%.0f%%",
                  t->name, ei, t->rmse_imx, BAND * 100);
    }
}

// With non-uniform importance weights, the imatrix quantizer must lower the weighted error
// clearly below what the plain quantizer gets (data from test_round_trip).
static void test_imatrix_weighting(void) {
    rng_seed(2);
    for (int j = 0; j < NCOLS; j++) imx[j] = (float)(0.05 + 5 * urand() * urand());
    for (int k = 0; k < N_TYPES; k++) {
        const qtype *t = &types[k];
        if (!t->imatrix) continue;
        quantize(t, data, qbuf, NULL);
        dequantize(t, qbuf, out);
        const double e_ref = rel_rmse(data, out, imx);
        quantize(t, data, qbuf, imx);
        dequantize(t, qbuf, out);
        const double e_imx = rel_rmse(data, out, imx);
        printf("weighted  %-7s plain %.6f  imatrix %.6f  (%.1f%% lower)\n", t->name, e_ref, e_imx,
               100 * (1 - e_imx / e_ref));
        CHECK(e_imx < 0.97 * e_ref, "%s: imatrix weighted RMSE %.6f not below plain %.6f", t->name,
              e_imx, e_ref);
    }
}

// ---- exactly representable blocks --------------------------------------------------------------

static int rint_range(int lo, int hi) { return lo + (int)(rng_u32() % (uint32_t)(hi - lo + 1)); }

// A random normal fp16 value with magnitude in [2^e0, 2^(e0+1)).
static gl_fp16 rand_fp16(int e0, bool negative) {
    return (gl_fp16)((negative ? 0x8000 : 0) | (e0 + 15) << 10 | (rng_u32() & 0x3ff));
}

// Fills n levels in [0, nmax], at least one 0 and (if want_max) one nmax, at random places.
static void rand_levels(uint8_t *L, int n, int nmax, bool want_max) {
    for (int i = 0; i < n; i++) L[i] = (uint8_t)rint_range(0, nmax);
    const int a = rint_range(0, n - 1);
    int b = rint_range(0, n - 2);
    if (b >= a) b++;
    L[a] = 0;
    if (want_max) L[b] = (uint8_t)nmax;
}

static void pack_nibbles32(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((L[j] & 15) | (L[j + 16] & 15) << 4);
}

static void pack_qh32(const uint8_t *L, uint8_t *qh) {
    uint32_t h = 0;
    for (int j = 0; j < 32; j++) h |= (uint32_t)(L[j] >> 4 & 1) << j;
    for (int b = 0; b < 4; b++) qh[b] = (uint8_t)(h >> (8 * b));
}

static void pack_2bit_256(const uint8_t *L, uint8_t *qs) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)((p[0] & 3) | (p[32] & 3) << 2 | (p[64] & 3) << 4 | (p[96] & 3) << 6);
        }
}

static void set_scale_min_k4(uint8_t *s, const int *sc, const int *m) {
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = (uint8_t)sc[j];
            s[j + 4] = (uint8_t)m[j];
        } else {
            s[j + 4] = (uint8_t)((sc[j] & 15) | (m[j] & 15) << 4);
            s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            s[j] |= (uint8_t)((m[j] >> 4) << 6);
        }
    }
}

// A stored sub-block scale in [lo, hi] that does not decode to a zero scale (a zero-scale
// sub-block decodes to zeros whatever its quants, so its bytes are not determined).
static int nonzero_scale(int lo, int hi, int zero) {
    int v;
    do v = rint_range(lo, hi); while (v == zero);
    return v;
}

// A random index in [0, n) and, distinct from it, another.
static void two_indices(int n, int *a, int *b) {
    *a = rint_range(0, n - 1);
    *b = rint_range(0, n - 2);
    if (*b >= *a) (*b)++;
}

// Builds one block of type t whose decoded values the quantizer can represent with zero error
// (the largest magnitudes sit on the levels the quantizers anchor their scales to).
static void make_exact_block(enum gl_type type, uint8_t *blk) {
    uint8_t L[256];
    switch (type) {
    case GL_TYPE_Q4_0: case GL_TYPE_Q5_0: case GL_TYPE_Q8_0: case GL_TYPE_Q8_1: case GL_TYPE_IQ4_NL: {
        const int nmax = type == GL_TYPE_Q4_0 || type == GL_TYPE_IQ4_NL ? 15 : type == GL_TYPE_Q5_0 ? 31 : 254;
        rand_levels(L, 32, nmax, false);
        const gl_fp16 d = rand_fp16(rint_range(-10, 2), type != GL_TYPE_Q8_0 && type != GL_TYPE_Q8_1 && (rng_u32() & 1));
        if (type == GL_TYPE_Q4_0) { block_q4_0 *b = (block_q4_0 *)blk; b->d = d; pack_nibbles32(L, b->qs); }
        if (type == GL_TYPE_IQ4_NL) { block_iq4_nl *b = (block_iq4_nl *)blk; b->d = d; pack_nibbles32(L, b->qs); }
        if (type == GL_TYPE_Q5_0) { block_q5_0 *b = (block_q5_0 *)blk; b->d = d; pack_nibbles32(L, b->qs); pack_qh32(L, b->qh); }
        if (type == GL_TYPE_Q8_0 || type == GL_TYPE_Q8_1) {
            int8_t qs[32];
            int sum = 0;
            for (int j = 0; j < 32; j++) { qs[j] = (int8_t)(L[j] - 127); sum += qs[j]; } // level 0 = -127
            if (type == GL_TYPE_Q8_0) { block_q8_0 *b = (block_q8_0 *)blk; b->d = d; memcpy(b->qs, qs, 32); }
            else {
                block_q8_1 *b = (block_q8_1 *)blk;
                b->d = d;
                b->s = gl_fp32_to_fp16(gl_fp16_to_fp32(d) * sum);
                memcpy(b->qs, qs, 32);
            }
        }
        break;
    }
    case GL_TYPE_Q4_1: case GL_TYPE_Q5_1: {
        const int nmax = type == GL_TYPE_Q4_1 ? 15 : 31;
        rand_levels(L, 32, nmax, true);
        const gl_fp16 d = rand_fp16(rint_range(-8, 0), false), m = rand_fp16(rint_range(-6, 1), true);
        if (type == GL_TYPE_Q4_1) { block_q4_1 *b = (block_q4_1 *)blk; b->d = d; b->m = m; pack_nibbles32(L, b->qs); }
        else { block_q5_1 *b = (block_q5_1 *)blk; b->d = d; b->m = m; pack_nibbles32(L, b->qs); pack_qh32(L, b->qh); }
        break;
    }
    case GL_TYPE_Q2_K: case GL_TYPE_Q4_K: case GL_TYPE_Q5_K: {
        // Sub-block scales and mins: one of each at the maximum, every sub-block spanning
        // its whole level range.
        const int nsub = type == GL_TYPE_Q2_K ? 16 : 8, len = 256 / nsub;
        const int smax = type == GL_TYPE_Q2_K ? 15 : 63, nmax = type == GL_TYPE_Q2_K ? 3 : type == GL_TYPE_Q4_K ? 15 : 31;
        int sc[16], m[16], a, b;
        for (int j = 0; j < nsub; j++) { sc[j] = rint_range(1, smax); m[j] = rint_range(0, smax); }
        two_indices(nsub, &a, &b);
        sc[a] = smax;
        m[b] = smax;
        for (int j = 0; j < nsub; j++) rand_levels(L + len * j, len, nmax, true);
        const gl_fp16 d = rand_fp16(rint_range(-12, -6), false), dmin = rand_fp16(rint_range(-12, -6), false);
        if (type == GL_TYPE_Q2_K) {
            block_q2_K *q = (block_q2_K *)blk;
            q->d = d; q->dmin = dmin;
            for (int j = 0; j < 16; j++) q->scales[j] = (uint8_t)(sc[j] | m[j] << 4);
            pack_2bit_256(L, q->qs);
        } else {
            uint8_t *scales = type == GL_TYPE_Q4_K ? ((block_q4_K *)blk)->scales : ((block_q5_K *)blk)->scales;
            uint8_t *qs = type == GL_TYPE_Q4_K ? ((block_q4_K *)blk)->qs : ((block_q5_K *)blk)->qs;
            if (type == GL_TYPE_Q4_K) { ((block_q4_K *)blk)->d = d; ((block_q4_K *)blk)->dmin = dmin; }
            else { ((block_q5_K *)blk)->d = d; ((block_q5_K *)blk)->dmin = dmin; }
            set_scale_min_k4(scales, sc, m);
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++)
                    qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 15) | (L[64 * c + 32 + l] & 15) << 4);
            if (type == GL_TYPE_Q5_K) {
                uint8_t *qh = ((block_q5_K *)blk)->qh;
                memset(qh, 0, 32);
                for (int c = 0; c < 4; c++)
                    for (int l = 0; l < 32; l++)
                        qh[l] |= (uint8_t)((L[64 * c + l] >> 4) << (2 * c) | (L[64 * c + 32 + l] >> 4) << (2 * c + 1));
            }
        }
        break;
    }
    case GL_TYPE_Q3_K: {
        block_q3_K *q = (block_q3_K *)blk;
        int ls[16];
        for (int j = 0; j < 16; j++) ls[j] = nonzero_scale(1, 63, 32); // stored scale, sc = ls - 32
        ls[rint_range(0, 15)] = 0;                              // the one of largest magnitude: -32
        memset(q->scales, 0, 12);
        for (int j = 0; j < 16; j++) {
            if (j < 8) q->scales[j] = (uint8_t)(ls[j] & 15);
            else q->scales[j - 8] |= (uint8_t)((ls[j] & 15) << 4);
            q->scales[8 + j % 4] |= (uint8_t)((ls[j] >> 4) << (2 * (j / 4)));
        }
        for (int j = 0; j < 16; j++) rand_levels(L + 16 * j, 16, 7, false);
        memset(q->hmask, 0, 32);
        uint8_t low[256];
        for (int e = 0; e < 256; e++) {
            if (L[e] > 3) q->hmask[e % 32] |= (uint8_t)(1 << (e / 32));
            low[e] = L[e] & 3;
        }
        pack_2bit_256(low, q->qs);
        q->d = rand_fp16(rint_range(-12, -6), rng_u32() & 1);
        break;
    }
    case GL_TYPE_Q6_K: {
        block_q6_K *q = (block_q6_K *)blk;
        for (int j = 0; j < 16; j++) q->scales[j] = (int8_t)nonzero_scale(-127, 127, 0);
        q->scales[rint_range(0, 15)] = -128;
        for (int j = 0; j < 16; j++) rand_levels(L + 16 * j, 16, 63, false);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *p = L + 128 * h + l;
                q->ql[64 * h + l] = (uint8_t)((p[0] & 15) | (p[64] & 15) << 4);
                q->ql[64 * h + l + 32] = (uint8_t)((p[32] & 15) | (p[96] & 15) << 4);
                q->qh[32 * h + l] = (uint8_t)(p[0] >> 4 | (p[32] >> 4) << 2 | (p[64] >> 4) << 4 | (p[96] >> 4) << 6);
            }
        q->d = rand_fp16(rint_range(-14, -8), rng_u32() & 1);
        break;
    }
    case GL_TYPE_Q8_K: {
        block_q8_K *q = (block_q8_K *)blk;
        rand_levels(L, 256, 253, false); // -127 .. 126: no +127 to tie with the -127
        for (int j = 0; j < 256; j++) q->qs[j] = (int8_t)(L[j] - 127);
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += q->qs[16 * j + l];
            q->bsums[j] = (int16_t)sum;
        }
        q->d = ldexpf(1.0f, rint_range(-20, 4)); // a power of two: 1/(1/d) == d
        break;
    }
    case GL_TYPE_IQ4_XS: {
        block_iq4_xs *q = (block_iq4_xs *)blk;
        int ls[8];
        for (int j = 0; j < 8; j++) ls[j] = nonzero_scale(1, 63, 32);
        ls[rint_range(0, 7)] = 0;
        q->scales_h = 0;
        memset(q->scales_l, 0, 4);
        for (int j = 0; j < 8; j++) {
            q->scales_l[j / 2] |= (uint8_t)((ls[j] & 15) << (4 * (j % 2)));
            q->scales_h |= (uint16_t)((ls[j] >> 4) << (2 * j));
        }
        for (int j = 0; j < 8; j++) {
            rand_levels(L + 32 * j, 32, 15, false);
            pack_nibbles32(L + 32 * j, q->qs + 16 * j);
        }
        q->d = rand_fp16(rint_range(-14, -8), rng_u32() & 1);
        break;
    }
    default:
        break;
    }
}

static bool same_values(const float *a, const float *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

// Re-quantizing the decoded values of a representable block must give the same values (and,
// for all formats but those whose sign convention can flip, the same bytes).
static void test_exact_blocks(void) {
    rng_seed(3);
    enum { NBLK = 200 };
    for (int k = 0; k < N_TYPES; k++) {
        const qtype *t = &types[k];
        if (t->blck == 1) continue;
        const int n = t->blck;
        uint8_t blk[sizeof(block_q8_K)], blk2[sizeof(block_q8_K)];
        float y0[256], y1[256], w[256];
        int value_bad = 0, byte_bad = 0, imx_bad = 0;
        for (int it = 0; it < NBLK; it++) {
            memset(blk, 0, sizeof blk);
            make_exact_block(t->type, blk);
            t->dequant(blk, y0, n);
            memset(blk2, 0xAA, sizeof blk2);
            t->ref(y0, blk2, n);
            t->dequant(blk2, y1, n);
            value_bad += !same_values(y0, y1, n);
            byte_bad += memcmp(blk, blk2, t->size) != 0;
            if (t->imatrix) {
                for (int j = 0; j < n; j++) w[j] = (float)(0.1 + urand());
                t->imatrix(y0, blk2, n, w);
                t->dequant(blk2, y1, n);
                imx_bad += !same_values(y0, y1, n);
            }
        }
        printf("exact     %-7s %d blocks: value mismatches %d, byte mismatches %d, imatrix value mismatches %d\n",
               t->name, NBLK, value_bad, byte_bad, imx_bad);
        CHECK(value_bad == 0, "%s: %d representable blocks not reproduced", t->name, value_bad);
        CHECK(byte_bad == 0, "%s: %d representable blocks re-encoded differently", t->name, byte_bad);
        CHECK(imx_bad == 0, "%s: %d representable blocks not reproduced by the imatrix quantizer", t->name, imx_bad);
    }
}

// ---- hand-computed decoder values ---------------------------------------------------------------

#define F16_ONE 0x3C00
#define F16_HALF 0x3800

static void test_hand_decoded(void) {
    float y[256];
    {   // Q4_0: byte j holds elements j (low nibble) and j+16; value (q - 8) * d
        block_q4_0 b = {0};
        b.d = F16_HALF;
        b.qs[0] = 0x1F;
        gl_dequant_row_q4_0(&b, y, 32);
        CHECK(y[0] == 3.5f && y[16] == -3.5f && y[1] == -4.0f, "q4_0: %g %g %g", y[0], y[16], y[1]);
    }
    {   // Q4_1: q * d + m
        block_q4_1 b = {0};
        b.d = F16_ONE;
        b.m = 0xC000; // -2
        b.qs[3] = 0xA5;
        gl_dequant_row_q4_1(&b, y, 32);
        CHECK(y[3] == 3.0f && y[19] == 8.0f && y[0] == -2.0f, "q4_1: %g %g %g", y[3], y[19], y[0]);
    }
    {   // Q5_0: fifth bit of element k is bit k of qh (little endian)
        block_q5_0 b = {0};
        b.d = F16_ONE;
        b.qs[2] = 0x0F;
        b.qs[15] = 0x30;
        b.qh[0] = 1 << 2;  // element 2
        b.qh[2] = 1 << 2;  // element 18
        b.qh[3] = 1 << 7;  // element 31
        gl_dequant_row_q5_0(&b, y, 32);
        CHECK(y[2] == 15.0f && y[18] == 0.0f && y[31] == 3.0f && y[0] == -16.0f, "q5_0: %g %g %g %g",
              y[2], y[18], y[31], y[0]);
    }
    {   // Q5_1
        block_q5_1 b = {0};
        b.d = F16_HALF;
        b.m = F16_ONE;
        b.qs[4] = 0x21;
        b.qh[2] = 1 << 4;  // element 20
        gl_dequant_row_q5_1(&b, y, 32);
        CHECK(y[4] == 1.5f && y[20] == 10.0f, "q5_1: %g %g", y[4], y[20]);
    }
    {   // Q8_0
        block_q8_0 b = {0};
        b.d = 0x3400; // 0.25
        b.qs[5] = -100;
        gl_dequant_row_q8_0(&b, y, 32);
        CHECK(y[5] == -25.0f && y[6] == 0.0f, "q8_0: %g", y[5]);
    }
    {   // Q2_K: element 50 = sub-block 3, 2-bit field 1 of qs[18]; d*sc*q - dmin*m
        block_q2_K b = {0};
        b.d = F16_ONE;
        b.dmin = F16_HALF;
        b.scales[3] = 0x25; // sc 5, m 2
        b.qs[18] = 3 << 2;
        gl_dequant_row_q2_K(&b, y, 256);
        CHECK(y[50] == 14.0f && y[51] == -1.0f && y[18] == 0.0f, "q2_K: %g %g %g", y[50], y[51], y[18]);
    }
    {   // Q3_K: sub-block 10 has 6-bit scale 45 (-> 13); element 165 = field 1 of qs[37],
        // hmask[5] bit 5 clear -> q - 4
        block_q3_K b = {0};
        b.d = F16_ONE;
        b.scales[2] = 13 << 4;     // low 4 bits of scale 10
        b.scales[10] = 2 << 4;     // high 2 bits of scale 10 (bits 4-5 of byte 8 + 10 % 4)
        for (int j = 0; j < 16; j++)
            if (j != 10) { /* scale 0 -> stored 32: high bits 2 */
                b.scales[8 + j % 4] |= (uint8_t)(2 << (2 * (j / 4)));
            }
        b.qs[37] = 1 << 2;
        b.hmask[6] = 1 << 5;       // element 166: high bit set -> q = 0
        gl_dequant_row_q3_K(&b, y, 256);
        CHECK(y[165] == -39.0f && y[166] == 0.0f && y[160] == -52.0f && y[0] == 0.0f,
              "q3_K: %g %g %g %g", y[165], y[166], y[160], y[0]);
    }
    {   // Q4_K: sub-block 6 (sc 37, m 20) = low nibbles of qs[96..127]
        block_q4_K b = {0};
        b.d = F16_ONE;
        b.dmin = F16_ONE;
        b.scales[10] = 0x45;  // sc low 5, m low 4
        b.scales[2] = 2 << 6; // sc high 2
        b.scales[6] = 1 << 6; // m high 1
        b.qs[104] = 0x79;
        gl_dequant_row_q4_K(&b, y, 256);
        CHECK(y[200] == 313.0f && y[232] == 0.0f && y[192] == -20.0f, "q4_K: %g %g %g", y[200], y[232], y[192]);
    }
    {   // Q5_K: as Q4_K plus fifth bit 2c of qh[l]
        block_q5_K b = {0};
        b.d = F16_ONE;
        b.dmin = F16_ONE;
        b.scales[10] = 0x45;
        b.scales[2] = 2 << 6;
        b.scales[6] = 1 << 6;
        b.qs[104] = 0x09;
        b.qh[8] = 1 << 6;
        gl_dequant_row_q5_K(&b, y, 256);
        CHECK(y[200] == 905.0f, "q5_K: %g", y[200]);
    }
    {   // Q6_K: element 195 = half 1, l 3, third quarter: high nibble of ql[67], bits 4-5 of qh[35]
        block_q6_K b = {0};
        b.d = F16_HALF;
        b.ql[67] = 0xB0;
        b.qh[35] = 2 << 4;
        b.scales[12] = -3;
        gl_dequant_row_q6_K(&b, y, 256);
        CHECK(y[195] == -16.5f && y[3] == 0.0f, "q6_K: %g", y[195]);
    }
    {   // Q8_K: float d
        block_q8_K b = {0};
        b.d = 0.125f;
        b.qs[7] = -8;
        gl_dequant_row_q8_K(&b, y, 256);
        CHECK(y[7] == -1.0f, "q8_K: %g", y[7]);
    }
    {   // IQ4_NL: d * grid[q]
        block_iq4_nl b = {0};
        b.d = F16_HALF;
        b.qs[1] = 0x70;
        gl_dequant_row_iq4_nl(&b, y, 32);
        CHECK(y[1] == -63.5f && y[17] == -5.0f, "iq4_nl: %g %g", y[1], y[17]);
    }
    {   // IQ4_XS: block 5 has 6-bit scale 40 (-> 8): low nibble in scales_l[2] >> 4, high bits 10-11
        block_iq4_xs b = {0};
        b.d = F16_ONE;
        b.scales_l[2] = 0x80;
        b.scales_h = 2 << 10;
        b.qs[83] = 0xF2;
        gl_dequant_row_iq4_xs(&b, y, 256);
        CHECK(y[163] == -664.0f && y[179] == 904.0f, "iq4_xs: %g %g", y[163], y[179]);
    }
    {
        const gl_fp16 h = 0x3E00;
        const gl_bf16 bf = 0x3FC0;
        gl_dequant_row_f16(&h, y, 1);
        gl_dequant_row_bf16(&bf, y + 1, 1);
        CHECK(y[0] == 1.5f && y[1] == 1.5f, "f16/bf16: %g %g", y[0], y[1]);
    }
}

// Q8_1 carries s = d * sum(qs); Q8_K carries bsums = sums of 16 consecutive quants.
static void test_activation_sums(void) {
    rng_seed(4);
    float x[256];
    for (int it = 0; it < 50; it++) {
        const float scale = (float)ldexp(1.0, rint_range(-10, 10));
        for (int j = 0; j < 256; j++) x[j] = scale * gauss();
        block_q8_1 b1[8];
        gl_quant_row_q8_1_ref(x, b1, 256);
        for (int i = 0; i < 8; i++) {
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += b1[i].qs[j];
            const float want = gl_fp16_to_fp32(b1[i].d) * sum, got = gl_fp16_to_fp32(b1[i].s);
            // d and s are rounded to fp16 separately: allow both roundings.
            CHECK(fabsf(got - want) <= 2e-3f * fabsf(want) + 1e-7f * scale, "q8_1 s %g vs d*sum %g", got, want);
        }
        block_q8_K bk;
        gl_quant_row_q8_K_ref(x, &bk, 256);
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += bk.qs[16 * g + j];
            CHECK(bk.bsums[g] == sum, "q8_K bsums[%d] %d vs %d", g, bk.bsums[g], sum);
        }
        int amax = 0;
        for (int j = 0; j < 256; j++) amax = abs(bk.qs[j]) > amax ? abs(bk.qs[j]) : amax;
        CHECK(amax == 127, "q8_K: largest quant %d, want 127", amax);
    }
}

// ---- gl_quantize_rows and the type-name helpers --------------------------------------------------

static bool same_name(const char *a, const char *b) { // ASCII, case-insensitive
    for (; *a && *b; a++, b++)
        if ((*a | 0x20) != (*b | 0x20)) return false;
    return *a == *b;
}

static void test_quantize_rows(void) {
    rng_seed(5);
    enum { R = 3, C = 512 };
    static float x[R * C], w[C];
    static uint8_t a[R * C * 4], b[R * C * 4];
    for (int i = 0; i < R * C; i++) x[i] = gauss();
    for (int j = 0; j < C; j++) w[j] = (float)(0.1 + 3 * urand());
    for (int k = 0; k < N_TYPES; k++) {
        const qtype *t = &types[k];
        const size_t rb = row_bytes(t, C);
        CHECK(gl_row_size(t->type, C) == rb, "%s: gl_row_size %zu, want %zu", t->name, gl_row_size(t->type, C), rb);
        for (int use_w = 0; use_w < 2; use_w++) {
            memset(a, 0x55, sizeof a);
            memset(b, 0x55, sizeof b);
            const size_t got = gl_quantize_rows(t->type, x, a, R, C, use_w ? w : NULL);
            for (int r = 0; r < R; r++) {
                if (use_w && t->imatrix) t->imatrix(x + r * C, b + r * rb, C, w);
                else t->ref(x + r * C, b + r * rb, C);
            }
            CHECK(got == R * rb, "%s: gl_quantize_rows returned %zu, want %zu", t->name, got, R * rb);
            CHECK(memcmp(a, b, sizeof a) == 0, "%s (imatrix %d): gl_quantize_rows differs from per-row quantizer",
                  t->name, use_w);
        }
        enum gl_type back;
        CHECK(same_name(gl_type_name(t->type), t->name), "%s: gl_type_name gives %s", t->name, gl_type_name(t->type));
        CHECK(gl_type_from_name(t->name, &back) && back == t->type, "%s: gl_type_from_name", t->name);
        if (t->blck > 1)
            CHECK(gl_row_size(t->type, t->blck + 1) == 0 && gl_quantize_rows(t->type, x, a, 1, t->blck + 1, NULL) == 0,
                  "%s: partial block accepted", t->name);
    }
    enum gl_type ty;
    CHECK(gl_type_from_name("q4_k", &ty) && ty == GL_TYPE_Q4_K, "lower-case name");
    CHECK(gl_type_from_name("iq4_xs", &ty) && ty == GL_TYPE_IQ4_XS, "lower-case iq4_xs");
    CHECK(!gl_type_from_name("Q4_K_M", &ty) && !gl_type_from_name("", &ty) && !gl_type_from_name("q4", &ty), "bad names");
    CHECK(strcmp(gl_type_name((enum gl_type)4), "?") == 0 && strcmp(gl_type_name((enum gl_type)1000), "?") == 0, "unknown name");
    CHECK(gl_quantize_rows((enum gl_type)4, x, a, 1, C, NULL) == 0, "removed type 4 accepted");
    CHECK(gl_quantize_rows((enum gl_type)-1, x, a, 1, C, NULL) == 0, "negative type accepted");
    CHECK(gl_row_size(GL_TYPE_Q4_K, 512) == 288 && gl_row_size(GL_TYPE_Q8_0, 64) == 68, "row sizes");
}

// ---- hostile input ----------------------------------------------------------------------------

// NaN, Inf, huge and tiny values must not crash a quantizer (run this under the sanitizers);
// all-zero rows must decode to zeros.
static void test_hostile_input(void) {
    static const float specials[] = {NAN, INFINITY, -INFINITY, 3e38f, -3e38f, 1e-40f, -1e-45f, 0.0f, -0.0f, 1e30f};
    enum { C = 512 };
    static float x[C], w[C], y[C];
    static uint8_t q[C * 4];
    rng_seed(6);
    for (int k = 0; k < N_TYPES; k++) {
        const qtype *t = &types[k];
        for (int s = 0; s < (int)(sizeof specials / sizeof specials[0]); s++) {
            for (int j = 0; j < C; j++) x[j] = gauss();
            for (int j = 0; j < C; j += 37) x[j] = specials[s];
            if (s == 5) for (int j = 0; j < C; j++) x[j] = specials[s] * (float)urand(); // all denormal
            for (int j = 0; j < C; j++) w[j] = (j % 3 == 0) ? 0.0f : (j % 7 == 0) ? specials[s] : 1.0f;
            t->ref(x, q, C);
            t->dequant(q, y, C);
            if (t->imatrix) {
                t->imatrix(x, q, C, w);
                t->dequant(q, y, C);
            }
        }
        memset(x, 0, sizeof x);
        for (int j = 0; j < C; j++) w[j] = 1.0f;
        for (int pass = 0; pass < (t->imatrix ? 2 : 1); pass++) {
            memset(q, 0x5A, sizeof q);
            if (pass) t->imatrix(x, q, C, w);
            else t->ref(x, q, C);
            t->dequant(q, y, C);
            int nz = 0;
            for (int j = 0; j < C; j++) nz += y[j] != 0;
            CHECK(nz == 0, "%s%s: zero row decodes to %d non-zeros", t->name, pass ? " imatrix" : "", nz);
        }
    }
}

int main(void) {
    test_round_trip();
    test_imatrix_weighting();
    test_exact_blocks();
    test_hand_decoded();
    test_activation_sums();
    test_quantize_rows();
    test_hostile_input();
    return test_result("test_quants");
}
