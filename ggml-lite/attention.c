// Fused attention kernel (attention.h): tiles of GL_ATTN_TILE keys; for each tile the scores of
// every query (one dot kernel call per query and key, in the key's stored type), the online
// softmax update (rescale what was summed when the maximum grows), then each value row decoded
// once and added into every query that weighs it. A block of queries sharing a KV head (the
// heads of a GQA group, several tokens of a prompt chunk) so reads and decodes each key and
// value once.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attention.h"
#include "ops.h"

size_t gl_attn_q_size(enum gl_type k_type, int head_dim) {
    const gl_type_traits *tr = gl_get_type_traits(k_type);
    return gl_row_size(tr->vec_dot_type, head_dim);
}

void gl_attn_convert_q(enum gl_type k_type, const float *q, void *dst, int head_dim) {
    const gl_type_traits *tr = gl_get_type_traits(k_type);
    const gl_type_traits *qt = gl_get_type_traits(tr->vec_dot_type);
    if (tr->vec_dot_type == GL_TYPE_F32) memcpy(dst, q, (size_t)head_dim * sizeof(float));
    else qt->from_float(q, dst, head_dim);
}

bool gl_attn_supported(enum gl_type k_type, enum gl_type v_type, int head_dim) {
    const gl_type_traits *k = gl_get_type_traits(k_type), *v = gl_get_type_traits(v_type);
    return k && v && k->vec_dot && head_dim > 0 && head_dim % k->blck_size == 0 && head_dim % v->blck_size == 0;
}

size_t gl_attn_scratch_floats(int n_q, int head_dim) {
    return (size_t)n_q * GL_ATTN_TILE + (size_t)head_dim;
}

void gl_attn_begin(gl_attn_state *st, int head_dim) {
    for (int i = 0; i < st->n_q; i++) {
        st->m[i] = -INFINITY;
        st->l[i] = 0;
    }
    memset(st->acc, 0, (size_t)st->n_q * head_dim * sizeof(float));
}

// Scores of query i over keys [j0, j0 + n) into s, -inf outside [lo, hi). False when the
// query sees none of them.
static bool tile_scores(const gl_attn_kv *kv, gl_vec_dot_fn dot, const void *q, int lo, int hi, int j0, int n,
                        float *s) {
    const int a = lo > j0 ? lo : j0, b = hi < j0 + n ? hi : j0 + n;
    if (a >= b) return false;
    for (int j = j0; j < a; j++) s[j - j0] = -INFINITY;
    for (int j = a; j < b; j++) {
        float x;
        dot(kv->head_dim, &x, kv->k + (size_t)j * kv->k_stride, q);
        x *= kv->scale;
        if (kv->softcap > 0) x = kv->softcap * tanhf(x / kv->softcap);
        s[j - j0] = x;
    }
    for (int j = b; j < j0 + n; j++) s[j - j0] = -INFINITY;
    return true;
}

// One value row as floats: F32 rows in place, others decoded into buf.
static const float *value_row(const gl_attn_kv *kv, const gl_type_traits *vt, int j, float *buf) {
    const char *v = kv->v + (size_t)j * kv->v_stride;
    switch (kv->v_type) {
    case GL_TYPE_F32: return (const float *)v;
    case GL_TYPE_F16: gl_fp16_to_fp32_row((const gl_fp16 *)v, buf, kv->head_dim); return buf;
    default: vt->to_float(v, buf, kv->head_dim); return buf;
    }
}

void gl_attn_keys(const gl_attn_kv *kv, gl_attn_state *st, int j0, int j1, float *scratch) {
    const int hd = kv->head_dim, n_q = st->n_q;
    const gl_vec_dot_fn dot = gl_get_type_traits(kv->k_type)->vec_dot;
    const gl_type_traits *vt = gl_get_type_traits(kv->v_type);
    float *p = scratch;                                  // [n_q][TILE] scores, then weights
    float *vbuf = scratch + (size_t)n_q * GL_ATTN_TILE;  // one decoded value row
    for (int t0 = j0; t0 < j1; t0 += GL_ATTN_TILE) {
        const int n = j1 - t0 < GL_ATTN_TILE ? j1 - t0 : GL_ATTN_TILE;
        uint32_t grows[64 * 2]; // per query, bit j: key j raises the running maximum
        bool any = false;
        for (int i = 0; i < n_q; i++) {
            float *pi = p + (size_t)i * GL_ATTN_TILE;
            grows[i] = 0;
            if (!tile_scores(kv, dot, st->q + (size_t)i * st->q_stride, st->lo[i], st->hi[i], t0, n, pi)) {
                pi[0] = NAN; // marks "no key of this tile"
                continue;
            }
            any = true;
            // The reference's order: key after key, the weight e^(s - running max) (1 for a key
            // that raises the maximum, which first scales down what was summed).
            float m = st->m[i];
            for (int j = 0; j < n; j++) {
                const float x = pi[j];
                if (x > m) {
                    grows[i] |= 1u << j;
                    pi[j] = 1.0f;
                    m = x;
                } else {
                    pi[j] = x == -INFINITY ? 0.0f : expf(x - m);
                }
            }
        }
        if (!any) continue;
        for (int j = 0; j < n; j++) {
            const float *vr = NULL;
            for (int i = 0; i < n_q; i++) {
                float *pi = p + (size_t)i * GL_ATTN_TILE;
                if (pi[0] != pi[0]) continue; // no key of this tile
                float *acc = st->acc + (size_t)i * hd;
                if (grows[i] >> j & 1) {
                    // the raw score was overwritten; recompute the new maximum from the key
                    float x;
                    dot(hd, &x, kv->k + (size_t)(t0 + j) * kv->k_stride, st->q + (size_t)i * st->q_stride);
                    x *= kv->scale;
                    if (kv->softcap > 0) x = kv->softcap * tanhf(x / kv->softcap);
                    const float ms = expf(st->m[i] - x);
                    st->m[i] = x;
                    gl_vec_scale(acc, ms, hd);
                    st->l[i] = st->l[i] * ms + 1.0f;
                } else {
                    st->l[i] += pi[j];
                }
                const float w = pi[j];
                if (!(w > 0)) continue;
                if (!vr) vr = value_row(kv, vt, t0 + j, vbuf);
                gl_vec_mad(acc, vr, w, hd);
            }
        }
    }
}

void gl_attn_merge(gl_attn_state *a, const gl_attn_state *b, int head_dim) {
    for (int i = 0; i < a->n_q; i++) {
        if (b->m[i] == -INFINITY) continue;
        const float m = a->m[i] > b->m[i] ? a->m[i] : b->m[i];
        const float fa = expf(a->m[i] - m), fb = expf(b->m[i] - m);
        float *x = a->acc + (size_t)i * head_dim;
        const float *y = b->acc + (size_t)i * head_dim;
        for (int d = 0; d < head_dim; d++) x[d] = x[d] * fa + y[d] * fb;
        a->l[i] = a->l[i] * fa + b->l[i] * fb;
        a->m[i] = m;
    }
}

void gl_attn_end(const gl_attn_state *st, int i, int head_dim, float *out) {
    const float inv = st->l[i] > 0 ? 1.0f / st->l[i] : 0.0f;
    const float *x = st->acc + (size_t)i * head_dim;
    for (int d = 0; d < head_dim; d++) out[d] = x[d] * inv;
}
