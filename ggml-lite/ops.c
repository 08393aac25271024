// Elementwise and small vector ops (see ops.h). The loops live in each ISA's folder
// (arch/*/ops_*.c); these entry points call the ones of the kernel set chosen for this CPU.
// RoPE is plain C here: its trig dominates and it runs once per row.
#include <math.h>
#include <string.h>

#include "dot.h"
#include "ops.h"

#define OPS (gl_kernels()->ops)

// LLAMALITE_REF=avx512 swaps in an AVX-512 reference build's arithmetic for the exp-based ops
// (ops_ref512.c), on every kernel set: it matches goldens made that way, not this CPU.
double gl_exp_sum8(float *y, const float *x, float sub, int n, int n_row) {
    if (gl_ref_avx512()) return gl_exp_sum_ref512(y, x, sub, n, n_row);
    return OPS->exp_sum8(y, x, sub, n, n_row);
}
void gl_exp_row(float *y, const float *x, int n) { OPS->exp_row(y, x, n); }
void gl_rmsnorm(float *out, const float *x, const float *w, int n, float eps) { OPS->rmsnorm(out, x, w, n, eps); }
void gl_softmax(float *x, int n) { OPS->softmax(x, n); }
void gl_silu(float *out, const float *x, int n) {
    if (gl_ref_avx512()) gl_silu_ref512(out, x, n);
    else OPS->silu(out, x, n);
}
void gl_swiglu(float *out, const float *gate, const float *up, int n) {
    if (gl_ref_avx512()) gl_swiglu_ref512(out, gate, up, n);
    else OPS->swiglu(out, gate, up, n);
}
void gl_vec_add(float *out, const float *a, const float *b, int n) { OPS->vec_add(out, a, b, n); }
void gl_vec_scale(float *x, float s, int n) { OPS->vec_scale(x, s, n); }
void gl_vec_mad(float *y, const float *x, float a, int n) { OPS->vec_mad(y, x, a, n); }
float gl_vec_dot_f32(const float *a, const float *b, int n) { return OPS->vec_dot_f32(a, b, n); }
void gl_fp32_to_fp16_row(const float *x, gl_fp16 *y, int64_t n) { OPS->fp32_to_fp16_row(x, y, n); }
void gl_fp16_to_fp32_row(const gl_fp16 *x, float *y, int64_t n) { OPS->fp16_to_fp32_row(x, y, n); }
float gl_vec_dot_f16_f32(const gl_fp16 *x, const float *y, int n) { return OPS->vec_dot_f16_f32(x, y, n); }
void gl_vec_mad_f16(float *y, const gl_fp16 *x, float a, int n) { OPS->vec_mad_f16(y, x, a, n); }

float gl_kv_dot(const void *k, bool f16, const float *q, int n, bool batch) { return OPS->kv_dot(k, f16, q, n, batch); }
void gl_kv_mad(float *acc, const void *v, bool f16, float w, int n) { OPS->kv_mad(acc, v, f16, w, n); }
void gl_kv_values_32(float *acc, const char *v, size_t v_row, bool f16, const float *w, int n_keys, int hd) {
    OPS->kv_values_32(acc, v, v_row, f16, w, n_keys, hd);
}
void gl_kv_reduce_32(float *out, const float *acc, int hd) { OPS->kv_reduce_32(out, acc, hd); }
float gl_dot_f32_tok(const float *w, const float *x, int n) { return OPS->dot_f32_tok(w, x, n); }
float gl_dot_f32_batch(const float *w, const float *x, int n) { return OPS->dot_f32_batch(w, x, n); }
void gl_dot_f32_lanes8(const float *wt, int rank, int n_out, const float *t, float *out) {
    OPS->dot_f32_lanes8(wt, rank, n_out, t, out);
}

// ---- RoPE ---------------------------------------------------------------------------------

typedef struct {
    float base, scale, theta_scale;
    const float *factors;
    int n_rot, half;
    bool neox;
} rope_setup;

static rope_setup rope_prepare(const gl_rope_params *p, int head_dim) {
    rope_setup r;
    r.base = p->freq_base > 0.0f ? p->freq_base : 10000.0f;
    r.scale = p->freq_scale != 0.0f ? p->freq_scale : 1.0f;
    r.factors = p->freq_factors;
    r.n_rot = p->n_rot > 0 && p->n_rot < head_dim ? p->n_rot : head_dim;
    r.n_rot &= ~1;
    r.half = r.n_rot / 2;
    r.theta_scale = r.n_rot > 0 ? powf(r.base, -2.0f / (float)r.n_rot) : 1.0f;
    r.neox = p->mode == GL_ROPE_NEOX;
    return r;
}

// cos/sin of pairs [j0, j1) into cs[0..2*(j1-j0)); *theta is pos * theta_scale^j0 on entry
// and advances. The angle is built by repeated multiplication, as ggml does, so positions
// agree with the reference to the last bit the float math allows.
static void rope_fill(const rope_setup *r, float *theta, int j0, int j1, float *cs) {
    for (int j = j0; j < j1; j++) {
        const float ff = r->factors ? r->factors[j] : 1.0f;
        const float t = r->scale * (*theta / ff);
        cs[2 * (j - j0)] = cosf(t);
        cs[2 * (j - j0) + 1] = sinf(t);
        *theta *= r->theta_scale;
    }
}

// Turns pairs [j0, j1) of every head by the angles in cs (indexed from j0).
static void rope_turn(const rope_setup *r, const float *cs, float *x, int n_heads, int head_dim,
                      int j0, int j1) {
    const int stride = r->neox ? r->half : 1, step = r->neox ? 1 : 2;
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * head_dim;
        for (int j = j0; j < j1; j++) {
            const float c = cs[2 * (j - j0)], s = cs[2 * (j - j0) + 1];
            float *a = xh + j * step, *b = a + stride;
            const float x0 = *a, x1 = *b;
            // One rounding of the first product is folded into a fused multiply-add, as the
            // reference engine's compiled rotation does: keeps roped q/k bitwise equal to it.
            *a = fmaf(x0, c, -(x1 * s));
            *b = fmaf(x0, s, x1 * c);
        }
    }
}

enum { ROPE_CHUNK = 128 }; // pairs whose trig sits on the stack at once

void gl_rope(const gl_rope_params *p, float *x, int n_heads, int head_dim, int pos) {
    const rope_setup r = rope_prepare(p, head_dim);
    float cs[2 * ROPE_CHUNK];
    float theta = (float)pos;
    for (int j0 = 0; j0 < r.half; j0 += ROPE_CHUNK) {
        const int j1 = j0 + ROPE_CHUNK < r.half ? j0 + ROPE_CHUNK : r.half;
        rope_fill(&r, &theta, j0, j1, cs);
        rope_turn(&r, cs, x, n_heads, head_dim, j0, j1);
    }
}

void gl_rope_cache(const gl_rope_params *p, int head_dim, int pos, float *cs) {
    const rope_setup r = rope_prepare(p, head_dim);
    float theta = (float)pos;
    rope_fill(&r, &theta, 0, r.half, cs);
}

void gl_rope_apply(const gl_rope_params *p, const float *cs, float *x, int n_heads, int head_dim) {
    const rope_setup r = rope_prepare(p, head_dim);
    rope_turn(&r, cs, x, n_heads, head_dim, 0, r.half);
}

void gl_rope_shift(const gl_rope_params *p, float *x, int n_heads, int head_dim, int delta) {
    gl_rope(p, x, n_heads, head_dim, delta);
}

void gl_rope_shift_f16(const gl_rope_params *p, gl_fp16 *x, int n_heads, int head_dim, int delta) {
    const rope_setup r = rope_prepare(p, head_dim);
    const int stride = r.neox ? r.half : 1, step = r.neox ? 1 : 2;
    float cs[2 * ROPE_CHUNK];
    float theta = (float)delta;
    for (int j0 = 0; j0 < r.half; j0 += ROPE_CHUNK) {
        const int j1 = j0 + ROPE_CHUNK < r.half ? j0 + ROPE_CHUNK : r.half;
        rope_fill(&r, &theta, j0, j1, cs);
        for (int h = 0; h < n_heads; h++) {
            gl_fp16 *xh = x + (size_t)h * head_dim;
            for (int j = j0; j < j1; j++) {
                const float c = cs[2 * (j - j0)], s = cs[2 * (j - j0) + 1];
                gl_fp16 *a = xh + j * step, *b = a + stride;
                const float x0 = gl_fp16_to_fp32(*a), x1 = gl_fp16_to_fp32(*b);
                *a = gl_fp32_to_fp16(fmaf(x0, c, -(x1 * s)));
                *b = gl_fp32_to_fp16(fmaf(x0, s, x1 * c));
            }
        }
    }
}
