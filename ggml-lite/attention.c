// Fused attention kernel (attention.h): tiles of GL_ATTN_TILE keys; for each tile the scores of
// every query (one dot kernel call per query and key, in the key's stored type), the online
// softmax update (rescale what was summed when the maximum grows), then each value row decoded
// once and added into every query that weighs it. A block of queries sharing a KV head (the
// heads of a GQA group, several tokens of a prompt chunk) so reads and decodes each key and
// value once. The loops over a tile are the kernel set's (gl_attn_ops, arch/*/attention_*.c).
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attention.h"
#include "dot.h"
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

void gl_attn_begin(gl_attn_state *st, int head_dim) {
    for (int i = 0; i < st->n_q; i++) {
        st->m[i] = -INFINITY;
        st->l[i] = 0;
    }
    memset(st->acc, 0, (size_t)st->n_q * head_dim * sizeof(float));
}

// Float keys: F16, BF16 and F32 caches are decoded a tile at a time (once for all the queries)
// and dotted in float; block-quantized keys go through their type's integer dot kernel against
// the query quantized to its activation type (the reference's arithmetic).
static bool float_keys(enum gl_type t) { return t == GL_TYPE_F16 || t == GL_TYPE_BF16 || t == GL_TYPE_F32; }

// n rows of head_dim elements of type t (row j at src + j * stride bytes) as floats into dst.
static void decode_rows(enum gl_type t, const char *src, size_t stride, int n, int hd, float *dst) {
    const gl_to_float_fn to_float = gl_get_type_traits(t)->to_float;
    const gl_attn_ops *ops = gl_kernels()->attn;
    for (int j = 0; j < n; j++) {
        const char *r = src + (size_t)j * stride;
        float *y = dst + (size_t)j * hd;
        switch (t) {
        case GL_TYPE_F32: memcpy(y, r, (size_t)hd * sizeof(float)); break;
        case GL_TYPE_F16: gl_fp16_to_fp32_row((const gl_fp16 *)r, y, hd); break;
        case GL_TYPE_Q8_0: ops->q8_0_to_f32(r, y, hd); break;
        default: to_float(r, y, hd);
        }
    }
}

// Scores of one query over keys [t0, t0 + n) into s (scaled, soft-capped), -inf outside
// [lo, hi). kf: the tile's keys as floats (float key types), qf: the query as floats. False
// when the query sees none of them.
static bool tile_scores(const gl_attn_kv *kv, const gl_attn_ops *ops, gl_vec_dot_fn dot, const void *q, const float *qf,
                        const float *kf, int lo, int hi, int t0, int n, float *s) {
    const int a = lo > t0 ? lo : t0, b = hi < t0 + n ? hi : t0 + n;
    if (a >= b) return false;
    if (kf) {
        ops->dots(qf, kf + (size_t)(a - t0) * kv->head_dim, b - a, kv->head_dim, s + (a - t0));
    } else {
        for (int j = a; j < b; j++) dot(kv->head_dim, &s[j - t0], kv->k + (size_t)j * kv->k_stride, q);
    }
    for (int j = a - t0; j < b - t0; j++) {
        float x = s[j] * kv->scale;
        if (kv->softcap > 0) x = kv->softcap * tanhf(x / kv->softcap);
        s[j] = x;
    }
    for (int j = 0; j < a - t0; j++) s[j] = -INFINITY;
    for (int j = b - t0; j < n; j++) s[j] = -INFINITY;
    return true;
}

size_t gl_attn_scratch_floats(int n_q, int head_dim) {
    return (size_t)n_q * GL_ATTN_TILE + 2 * GL_ATTN_TILE + 2 * (size_t)GL_ATTN_TILE * head_dim +
           (size_t)n_q * head_dim;
}

// Keys are taken as the reference engine takes them, one after another: a key that raises the
// running maximum M first scales what was summed by e^(M_old - M) and weighs 1; any other key
// weighs e^(s - M). Here the maxima of a tile come first (a prefix maximum), then all its
// exponentials at once, then the values: the key-by-key arithmetic, vectorized (only the sum of
// the weights of a tile where the maximum stays is added as one tile sum, which spares a chain
// of dependent adds). Masked keys weigh e^-inf = 0 and add nothing.
void gl_attn_keys(const gl_attn_kv *kv, gl_attn_state *st, int j0, int j1, float *scratch) {
    const int hd = kv->head_dim, n_q = st->n_q;
    const gl_vec_dot_fn dot = gl_get_type_traits(kv->k_type)->vec_dot;
    const gl_attn_ops *ops = gl_kernels()->attn;
    const bool fk = float_keys(kv->k_type);
    float *p = scratch;                               // [n_q][TILE] scores, then weights
    float *rescale = p + (size_t)n_q * GL_ATTN_TILE;  // [TILE] one query's scale factors
    float *d = rescale + GL_ATTN_TILE;                // [TILE] score - running maximum
    float *vt = d + GL_ATTN_TILE;                     // [TILE][hd] decoded values
    float *kt = vt + (size_t)GL_ATTN_TILE * hd;       // [TILE][hd] decoded keys (float key types)
    float *qf = kt + (size_t)GL_ATTN_TILE * hd;       // [n_q][hd] the queries as floats
    if (fk)
        for (int i = 0; i < n_q; i++) decode_rows(gl_get_type_traits(kv->k_type)->vec_dot_type, st->q + (size_t)i * st->q_stride, 0, 1, hd, qf + (size_t)i * hd);
    // Tiles on a fixed grid of key indices + kv->grid (whatever range is asked), so that a
    // query's arithmetic does not depend on the range's start; rows of the first tile before j0
    // are neither read nor weighed.
    const int first = j0 - ((j0 + kv->grid) % GL_ATTN_TILE + GL_ATTN_TILE) % GL_ATTN_TILE;
    for (int t0 = first; t0 < j1; t0 += GL_ATTN_TILE) {
        const int n = j1 - t0 < GL_ATTN_TILE ? j1 - t0 : GL_ATTN_TILE, r0 = t0 < j0 ? j0 - t0 : 0;
        bool decoded = false;
        for (int i = 0; i < n_q; i++) {
            float *s = p + (size_t)i * GL_ATTN_TILE;
            const int lo = st->lo[i] > j0 ? st->lo[i] : j0, hi = st->hi[i] < j1 ? st->hi[i] : j1;
            if (lo >= t0 + n || hi <= t0 || lo >= hi) continue; // sees none of this tile
            if (!decoded) {
                if (fk) decode_rows(kv->k_type, kv->k + (size_t)(t0 + r0) * kv->k_stride, kv->k_stride, n - r0, hd, kt + (size_t)r0 * hd);
                decode_rows(kv->v_type, kv->v + (size_t)(t0 + r0) * kv->v_stride, kv->v_stride, n - r0, hd, vt + (size_t)r0 * hd);
                memset(vt, 0, sizeof(float) * (size_t)r0 * hd);
                decoded = true;
            }
            tile_scores(kv, ops, dot, st->q + (size_t)i * st->q_stride, qf + (size_t)i * hd, fk ? kt : NULL, lo, hi, t0, n, s);
            uint32_t grows = 0;
            float m = st->m[i], l = st->l[i];
            for (int j = 0; j < n; j++) {
                if (s[j] > m) {
                    grows |= 1u << j;
                    rescale[j] = expf(m - s[j]);
                    m = s[j];
                }
                d[j] = s[j] == -INFINITY ? -INFINITY : s[j] - m;
            }
            gl_exp_row(s, d, n); // s = the weights (0 for masked keys)
            if (grows) { // key by key, the sum scaled down where the maximum grows
                for (int j = 0; j < n; j++) l = grows >> j & 1 ? l * rescale[j] + 1.0f : l + s[j];
            } else { // the usual case once the maximum settles: the tile's weights summed apart
                l += ops->sum(s, n);
            }
            ops->accumulate(st->acc + (size_t)i * hd, vt, s, rescale, grows, n, hd);
            st->m[i] = m;
            st->l[i] = l;
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
