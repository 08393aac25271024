// Quantizers of the lattice i-quants IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M, making the
// reference's choices (same search, same float operations, hence the same bytes).
//
// Each group of 8 (IQ2) or 4 (IQ3) magnitudes must be a point of the type's lattice; the
// signs are stored apart (IQ2_XXS, IQ2_XS, IQ3_XXS: 7 bits, the eighth making the count of
// minus signs even, so one element may have to be flipped: the least important one).
// For every block of 16 or 32 elements a sweep of trial scales rounds each group to levels
// l (value 2l + 1) and, when that point is not on the lattice, takes the nearest lattice
// neighbour (by importance-weighted distance) among the points closest to it; the scale with
// the best weighted fit wins, then the groups are re-rounded at that scale. Block scales are
// finally stored as 4 bits relative to the super-block's largest.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "iq_grids.h"
#include "quants.h"

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// ---- lattices: points as levels, a map from rounded levels to the point or its neighbours -----

typedef struct {
    int group;        // elements per point: 8 or 4
    int bits;         // bits per level in a map index: 2 or 3
    int n_points;
    int8_t *value;    // n_points * group values 2l + 1
    int32_t *map;     // index of packed levels -> point (>= 0) or -(1 + offset in neighbours)
    uint16_t *neighbours; // per off-lattice index: count, then the candidate points
} lattice;

enum { LAT_IQ2_XXS, LAT_IQ2_XS, LAT_IQ2_S, LAT_IQ3_XXS, LAT_IQ3_S, LAT_IQ1, LAT_COUNT };
static lattice lattices[LAT_COUNT];
static pthread_once_t lattice_once[LAT_COUNT] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                                 PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

// Level of byte b among the sorted distinct bytes of a grid (its magnitudes).
static int level_of(const uint8_t *levels, int n_levels, int b) {
    for (int l = 0; l < n_levels; l++)
        if (levels[l] == b) return l;
    return 0;
}

// Builds lattice `id` from the decode grid: levels from the grid's bytes; the neighbours of an
// off-lattice index are the points at the `nwant` smallest squared distances, nearest first
// (equal distances by point index).
static void build_lattice(int id) {
    static const struct { int group, bits, n_points, nwant; } shape[LAT_COUNT] = {
        {8, 2, 256, 2}, {8, 2, 512, 2}, {8, 2, 1024, 1}, {4, 3, 256, 2}, {4, 3, 512, 3}, {8, 2, 2048, 3}};
    lattice *lat = &lattices[id];
    const int g = shape[id].group, n = shape[id].n_points;
    lat->group = g;
    lat->bits = shape[id].bits;
    lat->n_points = n;
    // The grid's bytes, point by point.
    uint8_t *bytes = malloc((size_t)n * g);
    for (int k = 0; k < n; k++)
        for (int j = 0; j < g; j++) {
            uint64_t e = id == LAT_IQ2_XXS ? gl_iq2xxs_grid[k] : id == LAT_IQ2_XS ? gl_iq2xs_grid[k]
                       : id == LAT_IQ2_S ? gl_iq2s_grid[k] : id == LAT_IQ3_XXS ? gl_iq3xxs_grid[k]
                       : id == LAT_IQ3_S ? gl_iq3s_grid[k] : gl_iq1s_grid[k];
            bytes[k * g + j] = (uint8_t)(e >> (8 * j));
            if (id == LAT_IQ1) bytes[k * g + j] += 1; // int8 -1, 0, 1 -> 0, 1, 2 (ordered as levels)
        }
    uint8_t levels[8];
    int n_levels = 0;
    for (int v = 0; v < 256; v++)
        for (int i = 0; i < n * g; i++)
            if (bytes[i] == v) {
                levels[n_levels++] = (uint8_t)v;
                break;
            }
    const int n_index = 1 << (g * lat->bits);
    lat->value = malloc((size_t)n * g);
    lat->map = malloc(sizeof(int32_t) * (size_t)n_index);
    for (int i = 0; i < n_index; i++) lat->map[i] = -1;
    for (int k = 0; k < n; k++) {
        int index = 0;
        for (int j = 0; j < g; j++) {
            const int l = level_of(levels, n_levels, bytes[k * g + j]);
            lat->value[k * g + j] = (int8_t)(2 * l + 1);
            index |= l << (lat->bits * j);
        }
        lat->map[index] = k;
    }
    free(bytes);
    // Neighbours of every off-lattice index whose levels can occur (below the level count).
    size_t cap = 1 << 16, used = 0;
    lat->neighbours = malloc(sizeof(uint16_t) * cap);
    int *d2 = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n_index; i++) {
        if (lat->map[i] >= 0) continue;
        int pos[8];
        bool reachable = true;
        for (int j = 0; j < g; j++) {
            const int l = i >> (lat->bits * j) & ((1 << lat->bits) - 1);
            reachable &= l < n_levels;
            pos[j] = 2 * l + 1;
        }
        if (!reachable) continue;
        for (int k = 0; k < n; k++) {
            int s = 0;
            for (int j = 0; j < g; j++) s += (lat->value[k * g + j] - pos[j]) * (lat->value[k * g + j] - pos[j]);
            d2[k] = s;
        }
        if (used + 1 + (size_t)n > cap) {
            while (used + 1 + (size_t)n > cap) cap *= 2;
            lat->neighbours = realloc(lat->neighbours, sizeof(uint16_t) * cap);
        }
        const size_t start = used++;
        int last = -1;
        for (int have = 0; have < shape[id].nwant; have++) { // the next larger distance
            int next = -1;
            for (int k = 0; k < n; k++)
                if (d2[k] > last && (next < 0 || d2[k] < next)) next = d2[k];
            if (next < 0) break;
            for (int k = 0; k < n; k++)
                if (d2[k] == next) lat->neighbours[used++] = (uint16_t)k;
            last = next;
        }
        lat->neighbours[start] = (uint16_t)(used - start - 1);
        lat->map[i] = -(int32_t)(start + 1);
    }
    free(d2);
}

static void build_iq2_xxs(void) { build_lattice(LAT_IQ2_XXS); }
static void build_iq2_xs(void) { build_lattice(LAT_IQ2_XS); }
static void build_iq2_s(void) { build_lattice(LAT_IQ2_S); }
static void build_iq3_xxs(void) { build_lattice(LAT_IQ3_XXS); }
static void build_iq3_s(void) { build_lattice(LAT_IQ3_S); }
static void build_iq1(void) { build_lattice(LAT_IQ1); }

static const lattice *get_lattice(int id) {
    static void (*const build[LAT_COUNT])(void) = {build_iq2_xxs, build_iq2_xs, build_iq2_s, build_iq3_xxs, build_iq3_s, build_iq1};
    pthread_once(&lattice_once[id], build[id]);
    return &lattices[id];
}

// The lattice point for levels L (g of them), choosing among the neighbours when the rounded
// levels are off the lattice (then L is rewritten to the chosen point's levels).
static int lattice_point(const lattice *lat, int8_t *L, const float *xval, const float *w, float scale, bool *on) {
    int index = 0;
    for (int j = 0; j < lat->group; j++) index |= L[j] << (lat->bits * j);
    const int32_t m = lat->map[index];
    *on = m >= 0;
    if (m >= 0) return m;
    const uint16_t *nb = lat->neighbours + (-m - 1);
    float best = INFINITY;
    int point = nb[1];
    for (int c = 1; c <= nb[0]; c++) {
        const int8_t *v = lat->value + (size_t)nb[c] * lat->group;
        float d2 = 0;
        for (int j = 0; j < lat->group; j++) {
            const float diff = scale * v[j] - xval[j];
            d2 += w[j] * diff * diff;
        }
        if (d2 < best) best = d2, point = nb[c];
    }
    const int8_t *v = lat->value + (size_t)point * lat->group;
    for (int j = 0; j < lat->group; j++) L[j] = (int8_t)((v[j] - 1) / 2);
    return point;
}

// make_qp_quants as the reference runs it for IQ2_XXS, where one magnitude may be negative
// (the sign flipped to keep the count of minus signs even): its levels live in bytes, so a
// negative level reads back as level + 256 where the byte is read (the search goes on from
// there). Only the starting scale and levels of the sweep depend on it.
static float qp_quants_bytes(int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float max = 0;
    for (int i = 0; i < n; i++) max = max > x[i] ? max : x[i];
    if (!max) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    float iscale = nmax / max;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)gl_nearest_int(iscale * x[i]);
    const float scale = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - scale * L[i];
        best_mse += w[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * is + nmax) / max, scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            int l = gl_nearest_int(iscale_is * x[i]);
            l = l < nmax ? l : nmax;
            const float diff = x[i] - scale_is * l;
            mse += w[i] * diff * diff;
        }
        if (mse < best_mse) best_mse = mse, iscale = iscale_is;
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = gl_nearest_int(iscale * x[i]);
        l = l < nmax ? l : nmax;
        L[i] = (uint8_t)l;
        sumlx += w[i] * x[i] * l;
        suml2 += w[i] * l * l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * L[i];
            float sl2 = suml2 - w[i] * L[i] * L[i];
            if (!(slx > 0 && sl2 > 0)) continue;
            int nl = gl_nearest_int(x[i] * sl2 / slx);
            nl = nl < nmax ? nl : nmax;
            if (nl == L[i]) continue;
            slx += w[i] * x[i] * nl;
            sl2 += w[i] * nl * nl;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (uint8_t)nl;
                sumlx = slx, suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    return sumlx / suml2;
}

// ---- one block of 16 or 32 -------------------------------------------------------------------

// Which groups are rounded again at the chosen scale: the off-lattice ones when there are any,
// all of them when any is off, or all of them always.
enum { REFINE_OFF, REFINE_ALL_IF_OFF, REFINE_ALL };

typedef struct {
    int lat;             // LAT_*
    int block;           // elements per scale: 16 or 32
    int kmaxq;           // levels per element
    int is_lo, is_hi;    // the trial scales (2 kmaxq - 1 + is * step) / max
    float step;
    bool qp_start;       // IQ2_XXS: start from make_qp_quants, trial scales relative to its max
    int refine;          // re-round at the chosen scale: REFINE_OFF, REFINE_ALL_IF_OFF, REFINE_ALL
    bool even_signs;     // 7 stored sign bits per 8 elements
    float eps;           // blocks whose largest magnitude is below: all zero
    int flip_groups;     // sign groups flipped if the scale came out negative (the reference's count)
} iq_search;

static float weighted_fit(const float *w, const float *xval, const int8_t *L, int n, float *sumq2) {
    float sumqx = 0, q2 = 0;
    for (int i = 0; i < n; i++) {
        const float q = 2 * L[i] + 1;
        sumqx += w[i] * xval[i] * q;
        q2 += w[i] * q * q;
    }
    *sumq2 = q2;
    return sumqx;
}

// Quantizes one block: signs (one byte per 8, full or 7 bits), the lattice points and the
// scale (0 for an all-zero block, points then 0).
static float quantize_block(const iq_search *p, const float *xb, const float *weight, uint8_t *signs, int *points) {
    const lattice *lat = get_lattice(p->lat);
    const int n = p->block, g = lat->group, n_groups = n / g;
    float xval[32] = {0}, waux[32];
    int8_t L[32], Laux[32];
    bool on[8], on_aux[8];
    for (int i = 0; i < n; i++) waux[i] = sqrtf(weight[i]);
    for (int k = 0; k < n / 8; k++) {
        int nflip = 0;
        uint8_t s = 0;
        for (int i = 8 * k; i < 8 * k + 8; i++) {
            xval[i] = xb[i] >= 0 ? xb[i] : -xb[i];
            if (xb[i] < 0) nflip++, s |= (uint8_t)(1 << (i - 8 * k));
        }
        if (p->even_signs && nflip % 2) { // flip the element that matters least
            int imin = 8 * k;
            float min = weight[imin] * xb[imin] * xb[imin];
            for (int i = 8 * k + 1; i < 8 * k + 8; i++) {
                const float ax = weight[i] * xb[i] * xb[i];
                if (ax < min) min = ax, imin = i;
            }
            xval[imin] = -xval[imin];
            s ^= (uint8_t)(1 << (imin - 8 * k));
        }
        signs[k] = p->even_signs ? s & 127 : s;
    }
    float max = xval[0];
    for (int i = 1; i < n; i++) max = xval[i] > max ? xval[i] : max;
    if (max < p->eps || !(max > 0)) {
        for (int k = 0; k < n_groups; k++) points[k] = -1;
        return 0;
    }
    float scale, best = 0, trial_max = max;
    if (p->qp_start) {
        scale = qp_quants_bytes(n, p->kmaxq + 1, xval, (uint8_t *)L, weight);
        trial_max = scale * p->kmaxq;
    } else {
        scale = max / (2 * p->kmaxq - 1);
    }
    for (int k = 0; k < n_groups; k++) on[k] = p->lat != LAT_IQ3_S;
    for (int is = p->is_lo; is <= p->is_hi; is++) {
        const float id = (2 * p->kmaxq - 1 + is * p->step) / trial_max;
        const float this_scale = 1 / id;
        for (int k = 0; k < n_groups; k++) {
            for (int i = g * k; i < g * k + g; i++) Laux[i] = (int8_t)clampi(gl_nearest_int(0.5f * (id * xval[i] - 1)), 0, p->kmaxq - 1);
            lattice_point(lat, Laux + g * k, xval + g * k, waux + g * k, this_scale, &on_aux[k]);
        }
        float sumq2;
        const float sumqx = weighted_fit(weight, xval, Laux, n, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            memcpy(L, Laux, (size_t)n);
            memcpy(on, on_aux, sizeof on);
        }
    }
    bool any_off = false;
    for (int k = 0; k < n_groups; k++) any_off |= !on[k];
    if ((p->refine == REFINE_ALL || any_off) && scale > 0) {
        const float id = 1 / scale;
        for (int k = 0; k < n_groups; k++) {
            if (p->refine == REFINE_OFF && on[k]) continue;
            for (int i = g * k; i < g * k + g; i++) L[i] = (int8_t)clampi(gl_nearest_int(0.5f * (id * xval[i] - 1)), 0, p->kmaxq - 1);
            bool dummy;
            lattice_point(lat, L + g * k, xval + g * k, waux + g * k, scale, &dummy);
        }
        float sumq2;
        const float sumqx = weighted_fit(weight, xval, L, n, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    if (scale < 0) { // should not happen; keep the stored scale non-negative
        scale = -scale;
        for (int k = 0; k < p->flip_groups; k++) signs[k] = p->even_signs ? (uint8_t)(~signs[k] & 127) : (uint8_t)~signs[k];
    }
    for (int k = 0; k < n_groups; k++) {
        bool on_k;
        points[k] = lattice_point(lat, L + g * k, xval + g * k, waux + g * k, scale, &on_k);
    }
    return scale;
}

// Importance weights of a super-block's block: qw * sqrt(sigma2 + x^2) with an imatrix, else the
// type's own choice.
static void block_weights(int type, const float *xb, const float *qw, float sigma2, int n, float *w) {
    for (int i = 0; i < n; i++) {
        if (qw) w[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
        else if (type == GL_TYPE_IQ2_S) w[i] = 0.25f * sigma2 + xb[i] * xb[i];
        else w[i] = xb[i] * xb[i];
    }
}

static float sum_squares(const float *x) {
    float s = 0;
    for (int i = 0; i < QK_K; i++) s += x[i] * x[i];
    return s;
}

// 4-bit block scale relative to d = max_scale / 31.
static inline int scale4(float id, float scale) { return clampi(gl_nearest_int(0.5f * (id * scale - 1)), 0, 15); }

// ---- the formats ----------------------------------------------------------------------------------

static const iq_search S_IQ2_XXS = {LAT_IQ2_XXS, 32, 3, -6, 6, 0.1f, true, REFINE_ALL, true, 1e-15f, 4};
static const iq_search S_IQ2_XS = {LAT_IQ2_XS, 16, 3, -9, 9, 0.1f, false, REFINE_OFF, true, 1e-15f, 2};
static const iq_search S_IQ2_S = {LAT_IQ2_S, 16, 3, -9, 9, 0.1f, false, REFINE_OFF, false, 1e-8f, 2};
static const iq_search S_IQ3_XXS = {LAT_IQ3_XXS, 32, 8, -15, 15, 0.2f, false, REFINE_OFF, true, 1e-8f, 4};
static const iq_search S_IQ3_S = {LAT_IQ3_S, 32, 8, -9, 9, 0.2f, false, REFINE_ALL_IF_OFF, false, 0, 4};

static void quant_iq2_xxs(const float *x, void *vy, int64_t n, const float *qw) {
    block_iq2_xxs *y = (block_iq2_xxs *)vy;
    for (int64_t ibl = 0; ibl < n / QK_K; ibl++, x += QK_K) {
        uint32_t q2[16] = {0};
        float scales[8], weight[32], max_scale = 0;
        const float sigma2 = sum_squares(x) / QK_K;
        for (int ib = 0; ib < 8; ib++) {
            uint8_t signs[4];
            int points[4];
            block_weights(GL_TYPE_IQ2_XXS, x + 32 * ib, qw ? qw + QK_K * ibl + 32 * ib : NULL, sigma2, 32, weight);
            scales[ib] = quantize_block(&S_IQ2_XXS, x + 32 * ib, weight, signs, points);
            if (points[0] < 0) continue;
            for (int k = 0; k < 4; k++) {
                q2[2 * ib] |= (uint32_t)points[k] << (8 * k);
                q2[2 * ib + 1] |= (uint32_t)signs[k] << (7 * k);
            }
            max_scale = scales[ib] > max_scale ? scales[ib] : max_scale;
        }
        y[ibl].d = gl_fp32_to_fp16(0.f);
        if (!max_scale) {
            memset(y[ibl].qs, 0, sizeof y[ibl].qs);
            continue;
        }
        const float d = max_scale / 31, id = 1 / d;
        y[ibl].d = gl_fp32_to_fp16(d);
        for (int ib = 0; ib < 8; ib++) q2[2 * ib + 1] |= (uint32_t)scale4(id, scales[ib]) << 28;
        memcpy(y[ibl].qs, q2, sizeof q2);
    }
}

// IQ2_XS and IQ2_S: blocks of 16 with a 4-bit scale each.
static void quant_iq2_xs_s(int type, const float *x, void *vy, int64_t n, const float *qw) {
    const bool xs = type == GL_TYPE_IQ2_XS;
    const size_t bsize = xs ? sizeof(block_iq2_xs) : sizeof(block_iq2_s);
    for (int64_t ibl = 0; ibl < n / QK_K; ibl++, x += QK_K) {
        uint8_t *blk = (uint8_t *)vy + (size_t)ibl * bsize;
        memset(blk, 0, bsize);
        block_iq2_xs *bx = (block_iq2_xs *)blk;
        block_iq2_s *bs = (block_iq2_s *)blk;
        float scales[16], weight[16], max_scale = 0;
        const float sigma2 = (xs ? 1 : 2) * sum_squares(x) / QK_K;
        for (int ib = 0; ib < 16; ib++) {
            uint8_t signs[2];
            int points[2];
            block_weights(type, x + 16 * ib, qw ? qw + QK_K * ibl + 16 * ib : NULL, sigma2, 16, weight);
            scales[ib] = quantize_block(xs ? &S_IQ2_XS : &S_IQ2_S, x + 16 * ib, weight, signs, points);
            if (points[0] < 0) continue;
            for (int k = 0; k < 2; k++) {
                const int g = 2 * ib + k;
                if (xs) {
                    const uint16_t v = (uint16_t)(points[k] | signs[k] << 9);
                    memcpy(&bx->qs[g], &v, 2);
                } else {
                    bs->qs[g] = (uint8_t)(points[k] & 255);
                    bs->qh[g / 4] |= (uint8_t)((points[k] >> 8) << (2 * (g % 4)));
                    bs->qs[QK_K / 8 + g] = signs[k];
                }
            }
            max_scale = scales[ib] > max_scale ? scales[ib] : max_scale;
        }
        if (!max_scale) continue;
        const float d = max_scale / 31, id = 1 / d;
        const gl_fp16 dh = gl_fp32_to_fp16(xs ? d : d * 0.9875f);
        uint8_t *sc = xs ? bx->scales : bs->scales;
        if (xs) bx->d = dh;
        else bs->d = dh;
        for (int ib = 0; ib < 16; ib += 2) sc[ib / 2] = (uint8_t)(scale4(id, scales[ib]) | scale4(id, scales[ib + 1]) << 4);
    }
}

static void quant_iq3_xxs(const float *x, void *vy, int64_t n, const float *qw) {
    block_iq3_xxs *y = (block_iq3_xxs *)vy;
    for (int64_t ibl = 0; ibl < n / QK_K; ibl++, x += QK_K) {
        uint8_t q3[3 * QK_K / 8] = {0};
        uint32_t scales_signs[8] = {0};
        float scales[8], weight[32], max_scale = 0;
        const float sigma2 = 2 * sum_squares(x) / QK_K;
        for (int ib = 0; ib < 8; ib++) {
            uint8_t signs[4];
            int points[8];
            block_weights(GL_TYPE_IQ3_XXS, x + 32 * ib, qw ? qw + QK_K * ibl + 32 * ib : NULL, sigma2, 32, weight);
            scales[ib] = quantize_block(&S_IQ3_XXS, x + 32 * ib, weight, signs, points);
            if (points[0] < 0) continue;
            for (int k = 0; k < 8; k++) q3[8 * ib + k] = (uint8_t)points[k];
            scales_signs[ib] = signs[0] | signs[1] << 7 | signs[2] << 14 | (uint32_t)signs[3] << 21;
            max_scale = scales[ib] > max_scale ? scales[ib] : max_scale;
        }
        y[ibl].d = gl_fp32_to_fp16(0.f);
        memset(y[ibl].qs, 0, sizeof y[ibl].qs);
        if (!max_scale) continue;
        const float d = max_scale / 31, id = 1 / d;
        y[ibl].d = gl_fp32_to_fp16(d * 1.0125f); // the reference's fudge factor
        for (int ib = 0; ib < 8; ib++) scales_signs[ib] |= (uint32_t)scale4(id, scales[ib]) << 28;
        memcpy(y[ibl].qs, q3, QK_K / 4);
        memcpy(y[ibl].qs + QK_K / 4, scales_signs, sizeof scales_signs);
    }
}

static void quant_iq3_s(const float *x, void *vy, int64_t n, const float *qw) {
    block_iq3_s *y = (block_iq3_s *)vy;
    for (int64_t ibl = 0; ibl < n / QK_K; ibl++, x += QK_K) {
        memset(&y[ibl], 0, sizeof y[ibl]);
        float scales[8], weight[32], max_scale = 0;
        const float sigma2 = 2 * sum_squares(x) / QK_K;
        for (int ib = 0; ib < 8; ib++) {
            uint8_t signs[4];
            int points[8];
            block_weights(GL_TYPE_IQ3_S, x + 32 * ib, qw ? qw + QK_K * ibl + 32 * ib : NULL, sigma2, 32, weight);
            scales[ib] = quantize_block(&S_IQ3_S, x + 32 * ib, weight, signs, points);
            if (points[0] < 0) continue;
            for (int k = 0; k < 8; k++) {
                y[ibl].qs[8 * ib + k] = (uint8_t)(points[k] & 255);
                y[ibl].qh[ib] |= (uint8_t)((points[k] >> 8) << k);
            }
            memcpy(y[ibl].signs + 4 * ib, signs, 4);
            max_scale = scales[ib] > max_scale ? scales[ib] : max_scale;
        }
        if (!max_scale) continue;
        const float d = max_scale / 31, id = 1 / d;
        y[ibl].d = gl_fp32_to_fp16(d * 1.033f); // the reference's fudge factor
        for (int ib = 0; ib < 8; ib += 2) y[ibl].scales[ib / 2] = (uint8_t)(scale4(id, scales[ib]) | scale4(id, scales[ib + 1]) << 4);
    }
}

// ---- IQ1_S, IQ1_M: levels -1, 0, 1 plus a shift of +-1/8 per block (IQ1_M: per half) -------
// With three levels the best split of a block's elements, sorted by value, into the levels is
// found exhaustively (two boundaries), for each shift sign; groups off the lattice then take the
// lattice neighbour nearest at that scale.

static const float shift_p[3] = {-1 + 0.125f, 0.125f, 1 + 0.125f};
static const float shift_m[3] = {-1 - 0.125f, -0.125f, 1 - 0.125f};

// Indices of x[0..n) in increasing order of value, equal values in index order (a stable
// sort, as the reference's C library sorts them).
static void sort_indices(const float *x, int n, int *idx) {
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && x[idx[j - 1]] > x[i]) idx[j] = idx[j - 1], j--;
        idx[j] = i;
    }
}

// The lattice point nearest (weighted) to the 8 values at `scale` with levels read through xs;
// rewrites L. For a group off the lattice only.
static int iq1_neighbour(const lattice *lat, int8_t *L, const float *xb, const float *w, float scale, const float *xs) {
    int index = 0;
    for (int j = 0; j < 8; j++) index |= L[j] << (2 * j);
    const int32_t m = lat->map[index];
    if (m >= 0) return m;
    const uint16_t *nb = lat->neighbours + (-m - 1);
    float best = INFINITY;
    int point = nb[1];
    for (int c = 1; c <= nb[0]; c++) {
        const int8_t *v = lat->value + (size_t)nb[c] * 8;
        float d2 = 0;
        for (int j = 0; j < 8; j++) {
            const float diff = scale * xs[(v[j] - 1) / 2] - xb[j];
            d2 += w[j] * diff * diff;
        }
        if (d2 < best) best = d2, point = nb[c];
    }
    const int8_t *v = lat->value + (size_t)point * 8;
    for (int j = 0; j < 8; j++) L[j] = (int8_t)((v[j] - 1) / 2);
    return point;
}

// Least-squares scale of the chosen points (with their shifts) when some group moved.
static float iq1_refit(const lattice *lat, const int *points, int n_groups, const float *xb, const float *w,
                       const float *const *xs, float scale) {
    float sumqx = 0, sumq2 = 0;
    for (int k = 0; k < n_groups; k++) {
        const int8_t *v = lat->value + (size_t)points[k] * 8;
        for (int j = 0; j < 8; j++) {
            const float q = xs[k][(v[j] - 1) / 2];
            sumqx += w[8 * k + j] * q * xb[8 * k + j];
            sumq2 += w[8 * k + j] * q * q;
        }
    }
    return sumqx > 0 && sumq2 > 0 ? sumqx / sumq2 : scale;
}

static void quant_iq1_s(const float *x, void *vy, int64_t n, const float *qw) {
    const lattice *lat = get_lattice(LAT_IQ1);
    block_iq1_s *y = (block_iq1_s *)vy;
    for (int64_t ibl = 0; ibl < n / QK_K; ibl++, x += QK_K) {
        memset(&y[ibl], 0, sizeof y[ibl]);
        float scales[8], weight[32], max_scale = 0;
        int shifts[8] = {0};
        uint16_t qh[8] = {0};
        const float sigma2 = 2 * sum_squares(x) / QK_K;
        for (int ib = 0; ib < 8; ib++) {
            const float *xb = x + 32 * ib;
            for (int i = 0; i < 32; i++) weight[i] = (qw ? qw[QK_K * ibl + 32 * ib + i] : 1.0f) * sqrtf(sigma2 + xb[i] * xb[i]);
            float max = fabsf(xb[0]);
            for (int i = 1; i < 32; i++) max = fabsf(xb[i]) > max ? fabsf(xb[i]) : max;
            scales[ib] = 0;
            if (max < 1e-12f) continue;
            int idx[32];
            float sumx[33], sumw[33];
            sort_indices(xb, 32, idx);
            sumx[0] = sumw[0] = 0;
            for (int j = 0; j < 32; j++) {
                sumx[j + 1] = sumx[j] + weight[idx[j]] * xb[idx[j]];
                sumw[j + 1] = sumw[j] + weight[idx[j]];
            }
            float best = -0x1p-126f, scale = max; // -FLT_MIN: any positive fit beats it
            int b1 = -1, b2 = -1, shift = 0;
            for (int i1 = 0; i1 <= 32; i1++)
                for (int i2 = i1; i2 <= 32; i2++)
                    for (int sgn = 1; sgn >= -1; sgn -= 2) {
                        const float *xs = sgn > 0 ? shift_p : shift_m;
                        const float sumqx = (sumx[i1] - sumx[0]) * xs[0] + (sumx[i2] - sumx[i1]) * xs[1] + (sumx[32] - sumx[i2]) * xs[2];
                        const float sumq2 = (sumw[i1] - sumw[0]) * xs[0] * xs[0] + (sumw[i2] - sumw[i1]) * xs[1] * xs[1] +
                                            (sumw[32] - sumw[i2]) * xs[2] * xs[2];
                        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                            scale = sumqx / sumq2;
                            best = scale * sumqx;
                            b1 = i1, b2 = i2, shift = sgn;
                        }
                    }
            int8_t L[32];
            for (int j = 0; j < 32; j++) L[idx[j]] = (int8_t)(j < b1 ? 0 : j < b2 ? 1 : 2);
            if (scale < 0) {
                for (int j = 0; j < 32; j++) L[j] = (int8_t)(2 - L[j]);
                scale = -scale, shift = -shift;
            }
            const float *xs = shift == 1 ? shift_p : shift_m;
            const float *xsk[4] = {xs, xs, xs, xs};
            int points[4];
            bool moved = false;
            for (int k = 0; k < 4; k++) {
                int index = 0;
                for (int j = 0; j < 8; j++) index |= L[8 * k + j] << (2 * j);
                moved |= lat->map[index] < 0;
                points[k] = iq1_neighbour(lat, L + 8 * k, xb + 8 * k, weight + 8 * k, scale, xs);
            }
            if (moved) scale = iq1_refit(lat, points, 4, xb, weight, xsk, scale);
            for (int k = 0; k < 4; k++) {
                y[ibl].qs[4 * ib + k] = (uint8_t)(points[k] & 255);
                qh[ib] |= (uint16_t)((points[k] >> 8) << (3 * k));
            }
            scales[ib] = scale;
            shifts[ib] = shift;
            max_scale = scale > max_scale ? scale : max_scale;
        }
        if (max_scale) {
            const float d = max_scale / 15, id = 1 / d;
            y[ibl].d = gl_fp32_to_fp16(d * 1.125f); // the reference's fudge factor
            for (int ib = 0; ib < 8; ib++) {
                int l = clampi(gl_nearest_int(0.5f * (id * scales[ib] - 1)), 0, 7);
                if (shifts[ib] == -1) l |= 8;
                qh[ib] |= (uint16_t)(l << 12);
            }
        }
        memcpy(y[ibl].qh, qh, sizeof qh);
    }
}

static void quant_iq1_m(const float *x, void *vy, int64_t n, const float *qw) {
    const lattice *lat = get_lattice(LAT_IQ1);
    static const uint8_t shift_bits[4] = {0x00, 0x80, 0x08, 0x88};
    block_iq1_m *y = (block_iq1_m *)vy;
    for (int64_t ibl = 0; ibl < n / QK_K; ibl++, x += QK_K) {
        memset(&y[ibl], 0, sizeof y[ibl]);
        float scales[16], weight[16], max_scale = 0;
        int shifts[16] = {0}; // per block of 16: bit 1 = first half's shift is -, bit 0 = second's
        const float sigma2 = 2 * sum_squares(x) / QK_K;
        for (int ib = 0; ib < 16; ib++) {
            const float *xb = x + 16 * ib;
            block_weights(GL_TYPE_IQ1_M, xb, qw ? qw + QK_K * ibl + 16 * ib : NULL, sigma2, 16, weight);
            float max = fabsf(xb[0]);
            for (int i = 1; i < 16; i++) max = fabsf(xb[i]) > max ? fabsf(xb[i]) : max;
            scales[ib] = 0;
            if (max < 1e-7f) continue;
            int idx[16];
            sort_indices(xb, 16, idx);
            float best = -0x1p-126f, scale = max;
            int b1 = -1, b2 = -1, best_k = -1;
            for (int i1 = 0; i1 <= 16; i1++)
                for (int i2 = i1; i2 <= 16; i2++) {
                    float sumqx[4] = {0}, sumq2[4] = {0};
                    for (int j = 0; j < 16; j++) {
                        const int i = idx[j], level = j < i1 ? 0 : j < i2 ? 1 : 2;
                        for (int k = 0; k < 4; k++) {
                            const bool minus = i < 8 ? k >= 2 : k % 2 == 1;
                            const float q = (minus ? shift_m : shift_p)[level];
                            sumqx[k] += weight[i] * q * xb[i];
                            sumq2[k] += weight[i] * q * q;
                        }
                    }
                    for (int k = 0; k < 4; k++)
                        if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > best * sumq2[k]) {
                            scale = sumqx[k] / sumq2[k];
                            best = scale * sumqx[k];
                            b1 = i1, b2 = i2, best_k = k;
                        }
                }
            int8_t L[16];
            for (int j = 0; j < 16; j++) L[idx[j]] = (int8_t)(j < b1 ? 0 : j < b2 ? 1 : 2);
            if (scale < 0) {
                for (int j = 0; j < 16; j++) L[j] = (int8_t)(2 - L[j]);
                scale = -scale;
                best_k = 3 - best_k;
            }
            const float *xsk[2] = {best_k < 2 ? shift_p : shift_m, best_k % 2 == 0 ? shift_p : shift_m};
            int points[2];
            bool moved = false;
            for (int k = 0; k < 2; k++) {
                int index = 0;
                for (int j = 0; j < 8; j++) index |= L[8 * k + j] << (2 * j);
                moved |= lat->map[index] < 0;
                points[k] = iq1_neighbour(lat, L + 8 * k, xb + 8 * k, weight + 8 * k, scale, xsk[k]);
            }
            if (moved) scale = iq1_refit(lat, points, 2, xb, weight, xsk, scale);
            y[ibl].qs[2 * ib] = (uint8_t)(points[0] & 255);
            y[ibl].qs[2 * ib + 1] = (uint8_t)(points[1] & 255);
            y[ibl].qh[ib] = (uint8_t)((points[0] >> 8) | (points[1] >> 8) << 4);
            scales[ib] = scale;
            shifts[ib] = best_k;
            max_scale = scale > max_scale ? scale : max_scale;
        }
        if (!max_scale) continue;
        // 3-bit block scales, then d refitted to the scaled points.
        uint16_t sc[4] = {0};
        float d = max_scale / 15;
        const float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int ib = 0; ib < 16; ib++) {
            const int l = clampi(gl_nearest_int(0.5f * (id * scales[ib] - 1)), 0, 7);
            sc[ib / 4] |= (uint16_t)(l << (3 * (ib % 4)));
            y[ibl].qh[ib] |= shift_bits[shifts[ib]];
            const float *xb = x + 16 * ib;
            block_weights(GL_TYPE_IQ1_M, xb, qw ? qw + QK_K * ibl + 16 * ib : NULL, sigma2, 16, weight);
            for (int k = 0; k < 2; k++) {
                const float *xs = (k == 0 ? shifts[ib] < 2 : shifts[ib] % 2 == 0) ? shift_p : shift_m;
                const int point = y[ibl].qs[2 * ib + k] | (y[ibl].qh[ib] >> (4 * k) & 7) << 8;
                const int8_t *v = lat->value + (size_t)point * 8;
                for (int j = 0; j < 8; j++) {
                    const float q = xs[(v[j] - 1) / 2] * (2 * l + 1);
                    sumqx += weight[8 * k + j] * q * xb[8 * k + j];
                    sumq2 += weight[8 * k + j] * q * q;
                }
            }
        }
        if (sumq2 > 0) d = sumqx / sumq2;
        const gl_fp16 dh = gl_fp32_to_fp16(d * 1.1125f); // the reference's fudge factor
        for (int k = 0; k < 4; k++) sc[k] |= (uint16_t)((dh >> (4 * k) & 0xf) << 12);
        memcpy(y[ibl].scales, sc, sizeof sc);
    }
}

// ---- entry points: with an imatrix, and without (IQ2_XXS / IQ2_XS need one: they then use
// uniform importance, which the quantize command never asks for) ------------------------------

void gl_quant_row_iq2_xxs_imatrix(const float *x, void *y, int64_t n, const float *qw) { quant_iq2_xxs(x, y, n, qw); }
void gl_quant_row_iq2_xs_imatrix(const float *x, void *y, int64_t n, const float *qw) { quant_iq2_xs_s(GL_TYPE_IQ2_XS, x, y, n, qw); }
void gl_quant_row_iq2_s_imatrix(const float *x, void *y, int64_t n, const float *qw) { quant_iq2_xs_s(GL_TYPE_IQ2_S, x, y, n, qw); }
void gl_quant_row_iq3_xxs_imatrix(const float *x, void *y, int64_t n, const float *qw) { quant_iq3_xxs(x, y, n, qw); }
void gl_quant_row_iq3_s_imatrix(const float *x, void *y, int64_t n, const float *qw) { quant_iq3_s(x, y, n, qw); }
void gl_quant_row_iq1_s_imatrix(const float *x, void *y, int64_t n, const float *qw) { quant_iq1_s(x, y, n, qw); }
void gl_quant_row_iq1_m_imatrix(const float *x, void *y, int64_t n, const float *qw) { quant_iq1_m(x, y, n, qw); }

static void uniform_importance(void (*fn)(const float *, void *, int64_t, const float *), const float *x, void *y, int64_t n) {
    float *ones = malloc(sizeof(float) * (size_t)n);
    if (!ones) return;
    for (int64_t i = 0; i < n; i++) ones[i] = 1;
    fn(x, y, n, ones);
    free(ones);
}

void gl_quant_row_iq2_xxs_ref(const float *x, void *y, int64_t n) { uniform_importance(gl_quant_row_iq2_xxs_imatrix, x, y, n); }
void gl_quant_row_iq2_xs_ref(const float *x, void *y, int64_t n) { uniform_importance(gl_quant_row_iq2_xs_imatrix, x, y, n); }
void gl_quant_row_iq2_s_ref(const float *x, void *y, int64_t n) { quant_iq2_xs_s(GL_TYPE_IQ2_S, x, y, n, NULL); }
void gl_quant_row_iq3_xxs_ref(const float *x, void *y, int64_t n) { quant_iq3_xxs(x, y, n, NULL); }
void gl_quant_row_iq3_s_ref(const float *x, void *y, int64_t n) { quant_iq3_s(x, y, n, NULL); }
void gl_quant_row_iq1_s_ref(const float *x, void *y, int64_t n) { quant_iq1_s(x, y, n, NULL); }
void gl_quant_row_iq1_m_ref(const float *x, void *y, int64_t n) { quant_iq1_m(x, y, n, NULL); }
