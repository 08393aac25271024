// K-quants (super-blocks of 256: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K) and IQ4_XS.
// Decoders are exact (same float operations as ggml); quantizers use ggml's search-based
// scale selection, and the imatrix variants minimise the importance-weighted error.
//
// Layouts, per super-block of 256 elements:
//  Q2_K/Q3_K low bits: element 128h + 32s + l (h < 2, s < 4, l < 32) is 2-bit field s of
//        qs[32h + l]. Q3_K's third bit is bit 4h + s of hmask[l] (set = no -4 offset).
//  Q4_K/Q5_K: element 64c + l is the low nibble of qs[32c + l], element 64c + 32 + l the
//        high nibble; Q5_K's fifth bits are bits 2c and 2c+1 of qh[l].
//  Q6_K: per half h: elements l, l+32, l+64, l+96 take low nibbles from ql[64h + l],
//        ql[64h + l + 32] and their high nibbles; the top 2 bits come from qh[32h + l].
#ifdef __clang__
// No fused multiply-adds: the same roundings as ggml's reference build, hence the same bytes.
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <string.h>

#include "quants.h"

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// Packs 256 two-bit values (Q2_K quants, Q3_K low bits).
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(p[0] | p[32] << 2 | p[64] << 4 | p[96] << 6);
        }
}

static inline int get_2bit(const uint8_t *qs, int e) {
    return qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32)) & 3;
}

// ---- Q2_K: y = d * sc * q - dmin * m, 16 sub-blocks of 16 with 4-bit sc and m -----------------

void gl_dequant_row_q2_K(const void *vx, float *y, int64_t n) {
    const block_q2_K *x = (const block_q2_K *)vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = gl_fp16_to_fp32(x[i].d);
        const float dmin = gl_fp16_to_fp32(x[i].dmin);
        for (int j = 0; j < 16; j++) {
            const uint8_t sc = x[i].scales[j];
            const float dl = d * (sc & 0xf), ml = dmin * (sc >> 4);
            for (int e = 16 * j; e < 16 * j + 16; e++) y[e] = dl * get_2bit(x[i].qs, e) - ml;
        }
    }
}

// Re-derives the quants from the scales as they will be decoded (after rounding to 4 bits and
// fp16), for the sub-blocks with a non-zero scale.
static void q2_K_requantize(const float *x, const block_q2_K *b, uint8_t *L) {
    const float d = gl_fp16_to_fp32(b->d), dmin = gl_fp16_to_fp32(b->dmin);
    for (int j = 0; j < 16; j++) {
        const float dl = d * (b->scales[j] & 0xf);
        if (!dl) continue;
        const float ml = dmin * (b->scales[j] >> 4);
        for (int e = 16 * j; e < 16 * j + 16; e++)
            L[e] = (uint8_t)clampi(gl_nearest_int((x[e] + ml) / dl), 0, 3);
    }
}

void gl_quant_row_q2_K_ref(const float *x, void *vy, int64_t n) {
    block_q2_K *y = (block_q2_K *)vy;
    uint8_t L[QK_K], Laux[16];
    float w[16], mins[16], scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_min = 0; // both non-negative: the min is subtracted
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = gl_make_qkx_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux,
                                           -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = y[i].dmin = gl_fp32_to_fp16(0.f);
        if (max_scale > 0) {
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; j++) y[i].scales[j] = (uint8_t)clampi(gl_nearest_int(iscale * scales[j]), 0, 15);
            y[i].d = gl_fp32_to_fp16(max_scale / 15.f);
        }
        if (max_min > 0) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < 16; j++) y[i].scales[j] |= (uint8_t)(clampi(gl_nearest_int(iscale * mins[j]), 0, 15) << 4);
            y[i].dmin = gl_fp32_to_fp16(max_min / 15.f);
        }
        q2_K_requantize(x, &y[i], L);
        pack_2bit(L, y[i].qs);
    }
}

void gl_quant_row_q2_K_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_q2_K *y = (block_q2_K *)vy;
    uint8_t L[QK_K], Laux[16], Ls[16], Lm[16];
    float w[16], sw[16], mins[16], scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        float sumx2 = 0;
        for (int j = 0; j < QK_K; j++) sumx2 += x[j] * x[j];
        const float sigma2 = sumx2 / QK_K;
        for (int j = 0; j < 16; j++) {
            sw[j] = 0;
            for (int l = 0; l < 16; l++) {
                w[l] = qw[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
                sw[j] += w[l];
            }
            scales[j] = gl_make_qkx_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux,
                                           -0.9f, 0.05f, 36, false);
        }
        // The 16 scales and mins are themselves quantized to 4 bits, weighted by the
        // importance of their sub-block.
        const float dm = gl_make_qp_quants(16, 15, scales, Ls, sw);
        const float mm = gl_make_qp_quants(16, 15, mins, Lm, sw);
        y[i].d = gl_fp32_to_fp16(dm);
        y[i].dmin = gl_fp32_to_fp16(mm);
        for (int j = 0; j < 16; j++) y[i].scales[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
        q2_K_requantize(x, &y[i], L);
        pack_2bit(L, y[i].qs);
    }
}

// ---- Q3_K: y = d * (sc - 32) * (q - 4), 16 sub-blocks of 16 with 6-bit sc ----------------------

static int q3_K_scale(const uint8_t *s, int j) {
    const int lo = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
    const int hi = s[8 + j % 4] >> (2 * (j / 4)) & 3;
    return (lo | hi << 4) - 32;
}

static void q3_K_set_scales(uint8_t *s, const int *l) { // l[j] in [0, 63]
    memset(s, 0, 12);
    for (int j = 0; j < 16; j++) {
        if (j < 8) s[j] = (uint8_t)(l[j] & 0xf);
        else s[j - 8] |= (uint8_t)((l[j] & 0xf) << 4);
        s[8 + j % 4] |= (uint8_t)((l[j] >> 4) << (2 * (j / 4)));
    }
}

void gl_dequant_row_q3_K(const void *vx, float *y, int64_t n) {
    const block_q3_K *x = (const block_q3_K *)vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        const float d = gl_fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; j++) {
            const float dl = d * q3_K_scale(x[i].scales, j);
            for (int e = 16 * j; e < 16 * j + 16; e++) {
                const int high = x[i].hmask[e % 32] >> (e / 32) & 1;
                y[e] = dl * (get_2bit(x[i].qs, e) - (high ? 0 : 4));
            }
        }
    }
}

// Requantizes with the decoded scales, then packs L (0..7) into hmask and qs.
static void q3_K_finish(const float *x, block_q3_K *b, int8_t *L) {
    const float d = gl_fp16_to_fp32(b->d);
    for (int j = 0; j < 16; j++) {
        const float dl = d * q3_K_scale(b->scales, j);
        if (!dl) continue;
        for (int e = 16 * j; e < 16 * j + 16; e++)
            L[e] = (int8_t)(clampi(gl_nearest_int(x[e] / dl), -4, 3) + 4);
    }
    uint8_t low[QK_K];
    memset(b->hmask, 0, sizeof b->hmask);
    for (int e = 0; e < QK_K; e++) {
        const int q = clampi(L[e], 0, 7);
        if (q > 3) b->hmask[e % 32] |= (uint8_t)(1 << (e / 32));
        low[e] = (uint8_t)(q & 3);
    }
    pack_2bit(low, b->qs);
}

void gl_quant_row_q3_K_ref(const float *x, void *vy, int64_t n) {
    block_q3_K *y = (block_q3_K *)vy;
    int8_t L[QK_K];
    float scales[16];
    int ls[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = gl_make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_scale) {
            // Signed 6-bit scales; the largest maps to -32 (so the sign of d follows it).
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) ls[j] = clampi(gl_nearest_int(iscale * scales[j]), -32, 31) + 32;
            q3_K_set_scales(y[i].scales, ls);
            y[i].d = gl_fp32_to_fp16(1 / iscale);
        } else {
            memset(y[i].scales, 0, 12);
            y[i].d = gl_fp32_to_fp16(0.f);
        }
        q3_K_finish(x, &y[i], L);
    }
}

void gl_quant_row_q3_K_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_q3_K *y = (block_q3_K *)vy;
    int8_t L[QK_K], Ls[16];
    float scales[16], w[16], sw[16];
    int ls[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        float sumx2 = 0;
        for (int j = 0; j < QK_K; j++) sumx2 += x[j] * x[j];
        const float sigma2 = 2 * sumx2 / QK_K;
        for (int j = 0; j < 16; j++) {
            const float *xb = x + 16 * j;
            float sumw = 0;
            for (int l = 0; l < 16; l++) {
                w[l] = qw[16 * j + l] * sqrtf(sigma2 + xb[l] * xb[l]);
                sumw += w[l];
            }
            sw[j] = sumw;
            scales[j] = gl_make_qx_quants(16, 4, xb, L + 16 * j, w);
        }
        const float d_block = gl_make_qx_quants(16, 32, scales, Ls, sw);
        for (int j = 0; j < 16; j++) ls[j] = Ls[j];
        q3_K_set_scales(y[i].scales, ls);
        y[i].d = gl_fp32_to_fp16(d_block);
        q3_K_finish(x, &y[i], L);
    }
}

// ---- Q4_K / Q5_K: y = d * sc * q - dmin * m, 8 sub-blocks of 32 with 6-bit sc and m ------------

static void get_scale_min_k4(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

static void set_scale_min_k4(uint8_t *s, const uint8_t *ls, const uint8_t *lm) {
    for (int j = 0; j < 8; j++) {
        const int sc = ls[j] & 63, m = lm[j] & 63;
        if (j < 4) {
            s[j] = (uint8_t)sc;
            s[j + 4] = (uint8_t)m;
        } else {
            s[j + 4] = (uint8_t)((sc & 0xf) | (m & 0xf) << 4);
            s[j - 4] |= (uint8_t)((sc >> 4) << 6);
            s[j] |= (uint8_t)((m >> 4) << 6);
        }
    }
}

void gl_dequant_row_q4_K(const void *vx, float *y, int64_t n) {
    const block_q4_K *x = (const block_q4_K *)vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = gl_fp16_to_fp32(x[i].d), dmin = gl_fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc, m;
            get_scale_min_k4(2 * c, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(2 * c + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xf) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void gl_dequant_row_q5_K(const void *vx, float *y, int64_t n) {
    const block_q5_K *x = (const block_q5_K *)vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = gl_fp16_to_fp32(x[i].d), dmin = gl_fp16_to_fp32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        for (int c = 0; c < 4; c++, ql += 32) {
            int sc, m;
            get_scale_min_k4(2 * c, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            get_scale_min_k4(2 * c + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xf) + (qh[l] >> (2 * c) & 1) * 16) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] >> (2 * c + 1) & 1) * 16) - m2;
        }
    }
}

// Requantizes a Q4_K/Q5_K super-block with its decoded scales (levels 0..nmax).
static void k4_requantize(const float *x, float d, float dmin, const uint8_t *scales, int nmax,
                          uint8_t *L) {
    for (int j = 0; j < 8; j++) {
        int sc, m;
        get_scale_min_k4(j, scales, &sc, &m);
        const float dl = d * sc;
        if (!dl) continue;
        const float ml = dmin * m;
        for (int e = 32 * j; e < 32 * j + 32; e++)
            L[e] = (uint8_t)clampi(gl_nearest_int((x[e] + ml) / dl), 0, nmax);
    }
}

static void pack_q4_K(const uint8_t *L, uint8_t *qs) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 0xf) | (L[64 * c + 32 + l] & 0xf) << 4);
}

static void pack_q5_K(const uint8_t *L, uint8_t *qs, uint8_t *qh) {
    pack_q4_K(L, qs);
    memset(qh, 0, QK_K / 8);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            qh[l] |= (uint8_t)((L[64 * c + l] >> 4 & 1) << (2 * c));
            qh[l] |= (uint8_t)((L[64 * c + 32 + l] >> 4 & 1) << (2 * c + 1));
        }
}

// Reference Q4_K/Q5_K: per sub-block min/scale search, then 6-bit scales and mins relative
// to their maxima. Writes d, dmin, scales and the final levels L.
static void k4_quant_ref(const float *x, int nmax, float rmin, float rdelta, int nstep,
                         gl_fp16 *d_out, gl_fp16 *dmin_out, uint8_t *scales_out, uint8_t *L) {
    uint8_t Laux[32], ls[8], lm[8];
    float w[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xb = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xb[l] * xb[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xb[l]);
        scales[j] = gl_make_qkx_quants(32, nmax, xb, w, L + 32 * j, &mins[j], Laux, rmin, rdelta,
                                       nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)clampi(gl_nearest_int(inv_scale * scales[j]), 0, 63);
        lm[j] = (uint8_t)clampi(gl_nearest_int(inv_min * mins[j]), 0, 63);
    }
    set_scale_min_k4(scales_out, ls, lm);
    *d_out = gl_fp32_to_fp16(max_scale / 63.f);
    *dmin_out = gl_fp32_to_fp16(max_min / 63.f);
    k4_requantize(x, gl_fp16_to_fp32(*d_out), gl_fp16_to_fp32(*dmin_out), scales_out, nmax, L);
}

// Importance-weighted Q4_K/Q5_K: weighted search per sub-block, then the 8 scales and 8 mins
// quantized to 6 bits by a weighted search of their own.
static void k4_quant_imatrix(const float *x, const float *qw, int nmax, gl_fp16 *d_out,
                             gl_fp16 *dmin_out, uint8_t *scales_out, uint8_t *L) {
    uint8_t Laux[32], ls[8], lm[8];
    float w[32], sw[8], mins[8], scales[8];
    float sum_x2 = 0;
    for (int l = 0; l < QK_K; l++) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / QK_K;
    for (int j = 0; j < 8; j++) {
        const float *xb = x + 32 * j;
        float sumw = 0;
        for (int l = 0; l < 32; l++) {
            w[l] = qw[32 * j + l] * sqrtf(sigma2 + xb[l] * xb[l]);
            sumw += w[l];
        }
        sw[j] = sumw;
        scales[j] = gl_make_qkx_quants(32, nmax, xb, w, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f,
                                       36, false);
    }
    const float d_block = gl_make_qp_quants(8, 63, scales, ls, sw);
    const float m_block = gl_make_qp_quants(8, 63, mins, lm, sw);
    set_scale_min_k4(scales_out, ls, lm);
    *d_out = gl_fp32_to_fp16(d_block);
    *dmin_out = gl_fp32_to_fp16(m_block);
    k4_requantize(x, gl_fp16_to_fp32(*d_out), gl_fp16_to_fp32(*dmin_out), scales_out, nmax, L);
}

void gl_quant_row_q4_K_ref(const float *x, void *vy, int64_t n) {
    block_q4_K *y = (block_q4_K *)vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        k4_quant_ref(x, 15, -1.f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        pack_q4_K(L, y[i].qs);
    }
}

void gl_quant_row_q4_K_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_q4_K *y = (block_q4_K *)vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        k4_quant_imatrix(x, qw, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        pack_q4_K(L, y[i].qs);
    }
}

void gl_quant_row_q5_K_ref(const float *x, void *vy, int64_t n) {
    block_q5_K *y = (block_q5_K *)vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        k4_quant_ref(x, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        pack_q5_K(L, y[i].qs, y[i].qh);
    }
}

void gl_quant_row_q5_K_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_q5_K *y = (block_q5_K *)vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        k4_quant_imatrix(x, qw, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
        pack_q5_K(L, y[i].qs, y[i].qh);
    }
}

// ---- Q6_K: y = d * sc * (q - 32), 16 sub-blocks of 16 with int8 sc -----------------------------

void gl_dequant_row_q6_K(const void *vx, float *y, int64_t n) {
    const block_q6_K *x = (const block_q6_K *)vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = gl_fp16_to_fp32(x[i].d);
        for (int h = 0; h < 2; h++, y += 128) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t *sc = x[i].scales + 8 * h;
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xf) | (qh[l] >> 0 & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0xf) | (qh[l] >> 2 & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

// Shared tail of the Q6_K quantizers: 8-bit sub-block scales relative to the largest, then
// requantization with the decoded scales and packing. L holds the search's levels (0..63).
static void q6_K_finish(const float *x, const float *scales, block_q6_K *b, int8_t *L) {
    float max_scale = 0, max_abs = 0;
    for (int j = 0; j < 16; j++) {
        if (fabsf(scales[j]) > max_abs) {
            max_abs = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    if (max_abs < 1e-15f) {
        memset(b, 0, sizeof *b);
        return;
    }
    const float iscale = -128.f / max_scale;
    b->d = gl_fp32_to_fp16(1 / iscale);
    for (int j = 0; j < 16; j++) b->scales[j] = (int8_t)clampi(gl_nearest_int(iscale * scales[j]), -128, 127);
    const float d = gl_fp16_to_fp32(b->d);
    for (int j = 0; j < 16; j++) {
        const float dl = d * b->scales[j];
        if (!dl) continue;
        for (int e = 16 * j; e < 16 * j + 16; e++)
            L[e] = (int8_t)(clampi(gl_nearest_int(x[e] / dl), -32, 31) + 32);
    }
    for (int h = 0; h < 2; h++) {
        const int8_t *p = L + 128 * h;
        uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        for (int l = 0; l < 32; l++) {
            const int q1 = clampi(p[l], 0, 63), q2 = clampi(p[l + 32], 0, 63);
            const int q3 = clampi(p[l + 64], 0, 63), q4 = clampi(p[l + 96], 0, 63);
            ql[l] = (uint8_t)((q1 & 0xf) | (q3 & 0xf) << 4);
            ql[l + 32] = (uint8_t)((q2 & 0xf) | (q4 & 0xf) << 4);
            qh[l] = (uint8_t)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
        }
    }
}

void gl_quant_row_q6_K_ref(const float *x, void *vy, int64_t n) {
    block_q6_K *y = (block_q6_K *)vy;
    int8_t L[QK_K];
    float scales[16], w[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        for (int j = 0; j < 16; j++) {
            const float *xb = x + 16 * j;
            for (int l = 0; l < 16; l++) w[l] = xb[l] * xb[l];
            scales[j] = gl_make_qx_quants(16, 32, xb, L + 16 * j, w);
        }
        q6_K_finish(x, scales, &y[i], L);
    }
}

void gl_quant_row_q6_K_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_q6_K *y = (block_q6_K *)vy;
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, qw += QK_K) {
        // ggml weights Q6_K's search by the imatrix alone (no sigma term).
        for (int j = 0; j < 16; j++) scales[j] = gl_make_qx_quants(16, 32, x + 16 * j, L + 16 * j, qw + 16 * j);
        q6_K_finish(x, scales, &y[i], L);
    }
}

// ---- Q8_K: y = d * q, float d, with bsums = sums of 16 consecutive quants ------------------------

void gl_dequant_row_q8_K(const void *vx, float *y, int64_t n) {
    const block_q8_K *x = (const block_q8_K *)vx;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++) *y++ = x[i].d * x[i].qs[j];
}

void gl_quant_row_q8_K_ref(const float *x, void *vy, int64_t n) {
    block_q8_K *y = (block_q8_K *)vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        // -127 (not -128) keeps every quant in [-127, 127].
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)clampi(gl_nearest_int(iscale * x[j]), -128, 127);
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

// ---- IQ4_XS: y = d * (ls - 32) * grid[q], 8 blocks of 32 with 6-bit ls ---------------------------

void gl_dequant_row_iq4_xs(const void *vx, float *y, int64_t n) {
    const block_iq4_xs *x = (const block_iq4_xs *)vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = gl_fp16_to_fp32(x[i].d);
        const uint8_t *qs = x[i].qs;
        for (int ib = 0; ib < 8; ib++, qs += 16, y += 32) {
            const int ls = (x[i].scales_l[ib / 2] >> (4 * (ib % 2)) & 0xf) | (x[i].scales_h >> (2 * ib) & 3) << 4;
            const float dl = d * (ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * gl_iq4nl_values[qs[j] & 0xf];
                y[j + 16] = dl * gl_iq4nl_values[qs[j] >> 4];
            }
        }
    }
}

void gl_quant_row_iq4_xs_ref(const float *x, void *vy, int64_t n) {
    block_iq4_xs *y = (block_iq4_xs *)vy;
    for (int64_t i = 0; i < n / QK_K; i++)
        gl_quantize_iq4_superblock(QK_K, x + QK_K * i, &y[i].d, y[i].qs, &y[i].scales_h,
                                   y[i].scales_l, NULL);
}

void gl_quant_row_iq4_xs_imatrix(const float *x, void *vy, int64_t n, const float *qw) {
    block_iq4_xs *y = (block_iq4_xs *)vy;
    for (int64_t i = 0; i < n / QK_K; i++)
        gl_quantize_iq4_superblock(QK_K, x + QK_K * i, &y[i].d, y[i].qs, &y[i].scales_h,
                                   y[i].scales_l, qw + QK_K * i);
}
