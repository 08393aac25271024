// Scale searches shared by the quantizers: given a group of values (and importance weights),
// choose a scale (and min) and the integer levels that minimise the weighted error. These
// follow the same strategies as ggml's reference quantizer so that files we write have the
// same quality (and, for the same input, the same bytes).
#ifdef __clang__
// No fused multiply-adds: the same roundings as ggml's reference build, hence the same bytes.
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <string.h>

#include "quants.h"

// Below this, a group is treated as all zeros.
#define GROUP_EPS 1e-15f

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// Value of largest magnitude (keeping its sign) and that magnitude.
static float signed_absmax(int n, const float *x, float *amax_out) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    *amax_out = amax;
    return max;
}

// Weighted sums of the symmetric quantization of x at inverse scale iscale.
static void qx_sums(int n, int nmax, const float *x, const float *w, float iscale,
                    float *sumlx, float *suml2, int8_t *L) {
    float slx = 0, sl2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(gl_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        if (L) L[i] = (int8_t)(l + nmax);
        slx += w[i] * x[i] * l;
        sl2 += w[i] * l * l;
    }
    *sumlx = slx;
    *suml2 = sl2;
}

float gl_make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *w) {
    float amax;
    const float max = signed_absmax(n, x, &amax);
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    // The largest value maps to -nmax (the end of the range with one more level), then trial
    // scales within +-0.9 levels of it. With sum w*x*l and sum w*l*l the optimal scale for
    // fixed levels is sumlx/suml2 and its error reduction sumlx^2/suml2: keep the best.
    float sumlx, suml2;
    qx_sums(n, nmax, x, w, -nmax / max, &sumlx, &suml2, L);
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        const float iscale = -(nmax + 0.1f * is) / max;
        qx_sums(n, nmax, x, w, iscale, &sumlx, &suml2, NULL);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            qx_sums(n, nmax, x, w, iscale, &sumlx, &suml2, L);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

float gl_make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float amax;
    const float max = signed_absmax(n, x, &amax);
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    // Start from the max-magnitude grid with weights x^2, then move single quants to the
    // level that the current least-squares scale prefers, when that lowers the error.
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(gl_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx <= 0) continue;
            float sl2 = suml2 - w * L[i] * L[i];
            int nl = clampi(gl_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == L[i]) continue;
            slx += w * x[i] * nl;
            sl2 += w * nl * nl;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0 ? sumlx / suml2 : 0.0f;
}

float gl_make_qkx_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                         float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                         bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0; // the offset only ever shifts down: dequant is scale*L - the_min
    if (!(max > min)) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_err = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(gl_nearest_int(iscale * (x[i] - min)), 0, nmax);
        L[i] = (uint8_t)l;
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_err += w[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        // A slightly different grid, then the weighted least-squares (scale, min) for it.
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(gl_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * Laux[i] + this_min - x[i];
            diff = use_mad ? fabsf(diff) : diff * diff;
            err += w[i] * diff;
        }
        if (err < best_err) {
            memcpy(L, Laux, (size_t)n);
            best_err = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

float gl_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float max = 0;
    for (int i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    if (!(max > 0)) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    // Pick the best of nine grids around max -> nmax, then refine quants one at a time.
    float iscale = nmax / max;
    float best_mse = 0;
    {
        const float scale = 1 / iscale;
        for (int i = 0; i < n; i++) {
            int l = gl_nearest_int(iscale * x[i]);
            float diff = x[i] - scale * l;
            best_mse += w[i] * diff * diff;
        }
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * is + nmax) / max;
        const float scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            int l = gl_nearest_int(iscale_is * x[i]);
            if (l > nmax) l = nmax;
            float diff = x[i] - scale_is * l;
            mse += w[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        // x >= 0 here, so only the upper clamp matters (the lower one guards NaN input).
        int l = clampi(gl_nearest_int(iscale * x[i]), 0, nmax);
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
            int nl = clampi(gl_nearest_int(x[i] * sl2 / slx), 0, nmax);
            if (nl == L[i]) continue;
            slx += w[i] * x[i] * nl;
            sl2 += w[i] * nl * nl;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (uint8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    return suml2 > 0 ? sumlx / suml2 : 0.0f;
}

// ---- IQ4 (non-linear 4-bit grid) ------------------------------------------------------------

const int8_t gl_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

// Index of the grid value nearest to v (ties to the lower one); the grid is sorted.
static int iq4_nearest(float v) {
    const int8_t *g = gl_iq4nl_values;
    if (v <= g[0]) return 0;
    if (v >= g[15]) return 15;
    int lo = 0, hi = 15; // g[lo] <= v < g[hi]
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (v < g[mid]) hi = mid; else lo = mid;
    }
    return v - g[hi - 1] < g[hi] - v ? hi - 1 : hi;
}

// Weighted sums for the grid quantization of x at inverse scale id (L may be NULL).
static void iq4_sums(const float *x, const float *w, float id, float *sumqx, float *sumq2,
                     uint8_t *L) {
    float sqx = 0, sq2 = 0;
    for (int j = 0; j < 32; j++) {
        const int l = iq4_nearest(id * x[j]);
        if (L) L[j] = (uint8_t)l;
        const float q = gl_iq4nl_values[l];
        sqx += w[j] * q * x[j];
        sq2 += w[j] * q * q;
    }
    *sumqx = sqx;
    *sumq2 = sq2;
}

// Best scale for one block of 32: the grid's end at the largest magnitude, then 15 trial
// inverse scales around it, each scored by the weighted least-squares fit.
static float iq4_block_scale(const float *x, const float *w) {
    float amax;
    const float max = signed_absmax(32, x, &amax);
    if (amax < GROUP_EPS) return 0;
    const int8_t v0 = gl_iq4nl_values[0];
    float sumqx, sumq2;
    iq4_sums(x, w, 1 / (-max / v0), &sumqx, &sumq2, NULL);
    float d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int itry = -7; itry <= 7; itry++) {
        iq4_sums(x, w, (itry + v0) / max, &sumqx, &sumq2, NULL);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

void gl_quantize_iq4_superblock(int sb, const float *x, gl_fp16 *d_out, uint8_t *q4,
                                uint16_t *scales_h, uint8_t *scales_l, const float *qw) {
    const int nblk = sb / 32;
    float sigma2 = 0;
    for (int j = 0; j < sb; j++) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / sb;

    float scales[QK_K / 32];
    float w[32];
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < nblk; ib++) {
        const float *xb = x + 32 * ib;
        for (int j = 0; j < 32; j++)
            w[j] = qw ? qw[32 * ib + j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
        scales[ib] = iq4_block_scale(xb, w);
        if (fabsf(scales[ib]) > amax_scale) {
            amax_scale = fabsf(scales[ib]);
            max_scale = scales[ib];
        }
    }

    uint8_t L[QK_K];
    if (nblk > 1) {
        // 6-bit signed block scales relative to a super-block scale; requantize each block
        // with the scale it will actually be decoded with.
        const float d = -max_scale / 32;
        *d_out = gl_fp32_to_fp16(d);
        const float id = d ? 1 / d : 0.0f;
        *scales_h = 0;
        for (int ib = 0; ib < nblk; ib++) {
            int l = clampi(gl_nearest_int(id * scales[ib]), -32, 31);
            const float dl = d * l;
            const float idl = dl ? 1 / dl : 0.0f;
            for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)iq4_nearest(idl * x[32 * ib + j]);
            l += 32;
            if (ib % 2 == 0) scales_l[ib / 2] = (uint8_t)(l & 0xf);
            else scales_l[ib / 2] |= (uint8_t)((l & 0xf) << 4);
            *scales_h |= (uint16_t)((l >> 4) << (2 * ib));
        }
    } else {
        *d_out = gl_fp32_to_fp16(scales[0]);
        const float id = scales[0] ? 1 / scales[0] : 0.0f;
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4_nearest(id * x[j]);
    }
    for (int ib = 0; ib < nblk; ib++)
        for (int j = 0; j < 16; j++)
            q4[16 * ib + j] = (uint8_t)(L[32 * ib + j] | (L[32 * ib + 16 + j] << 4));
}
