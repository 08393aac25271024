// Rotary settings beyond plain RoPE: YaRN's blend of interpolated and extrapolated angles and
// its magnitude scale, and an attention factor on cos/sin (LongRoPE files) -- ggml's rope_yarn.
// Plain settings go straight to ggml-lite's gl_rope_cache, so their angles are bitwise the
// ones the engine always computed.
#include <math.h>
#include <string.h>

#include "forward/forward.h"

static bool plain(const ll_rope *r) { return r->ext_factor == 0.0f && r->attn_factor == 1.0f; }

// ggml's rope_yarn_ramp: 1 below corr_dims[0], 0 above corr_dims[1], linear between.
static float yarn_ramp(const float low, const float high, int i0) {
    const float y = (float)(i0 / 2 - low) / fmaxf(0.001f, high - low);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

// The angles of position pos (may be negative: a shift); magnitude: cos/sin scaled by the
// attention factor and YaRN's 1 + 0.1 ln(1/scale), else unit length.
static void cache_yarn(const ll_rope *r, int head_dim, int pos, bool magnitude, float *cs) {
    const gl_rope_params *p = &r->p;
    int n_rot = p->n_rot > 0 && p->n_rot < head_dim ? p->n_rot : head_dim;
    n_rot &= ~1;
    const float base = p->freq_base > 0.0f ? p->freq_base : 10000.0f;
    const float freq_scale = p->freq_scale != 0.0f ? p->freq_scale : 1.0f;
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float mscale = magnitude ? r->attn_factor : 1.0f;
    if (magnitude && r->ext_factor != 0.0f) mscale *= 1.0f + 0.1f * logf(1.0f / freq_scale);
    float theta_base = (float)pos;
    for (int i0 = 0; i0 < n_rot; i0 += 2) {
        const float ff = p->freq_factors ? p->freq_factors[i0 / 2] : 1.0f;
        const float extrap = theta_base / ff, interp = freq_scale * extrap;
        float theta = interp;
        if (r->ext_factor != 0.0f) {
            const float mix = yarn_ramp(r->corr_dims[0], r->corr_dims[1], i0) * r->ext_factor;
            theta = interp * (1 - mix) + extrap * mix;
        }
        cs[i0] = cosf(theta) * mscale;
        cs[i0 + 1] = sinf(theta) * mscale;
        theta_base *= theta_scale;
    }
}

void ll_rope_cache(const ll_rope *r, int head_dim, int pos, float *cs) {
    if (plain(r)) gl_rope_cache(&r->p, head_dim, pos, cs);
    else cache_yarn(r, head_dim, pos, true, cs);
}

void ll_rope_shift(const ll_rope *r, void *row, bool f16, int n_heads, int head_dim, int delta) {
    if (plain(r)) {
        if (f16) gl_rope_shift_f16(&r->p, row, n_heads, head_dim, delta);
        else gl_rope_shift(&r->p, row, n_heads, head_dim, delta);
        return;
    }
    // The angles are linear in the position; the magnitude was applied when the key was made.
    float cs[4096], x[4096]; // the loader caps head_dim at 4096
    cache_yarn(r, head_dim, delta, false, cs);
    for (int h = 0; h < n_heads; h++) {
        void *hp = f16 ? (void *)((gl_fp16 *)row + (size_t)h * head_dim) : (void *)((float *)row + (size_t)h * head_dim);
        if (f16) gl_fp16_to_fp32_row(hp, x, head_dim);
        else memcpy(x, hp, (size_t)head_dim * sizeof(float));
        gl_rope_apply(&r->p, cs, x, 1, head_dim);
        if (f16) gl_fp32_to_fp16_row(x, hp, head_dim);
        else memcpy(hp, x, (size_t)head_dim * sizeof(float));
    }
}
