// Fused attention kernel (attention.h): tiles of GL_ATTN_TILE keys; for each tile the scores of
// every query of the block at once (float keys decoded once for all of them, Q8_0 keys by the
// kernel set's block-integer dots, other types by their dot kernel key by key), each query's
// online softmax update (rescale what was summed when the maximum grows), then the value rows
// decoded once and added into every query that weighs them. A block of queries sharing a KV head
// (the heads of a GQA group, several tokens of a prompt chunk) so reads and decodes each key and
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
    if (ops->rows_to_f32 && ops->rows_to_f32(t, src, stride, n, hd, dst)) return;
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

// The scores of every query over the tile's rows [r0, n) (keys t0 + r0 ...) into p[i * TILE + j]:
// float keys from their decoded rows kt, Q8_0 keys by the set's block-integer dots, any other
// type through its dot kernel, key by key.
static void tile_dots(const gl_attn_kv *kv, const gl_attn_state *st, const gl_attn_ops *ops, const float *qf,
                      const float *kt, int t0, int r0, int n, float *p, float *ops_scratch) {
    const int hd = kv->head_dim, n_q = st->n_q;
    const char *k = kv->k + (size_t)(t0 + r0) * kv->k_stride;
    if (kv->k_type == GL_TYPE_F16 && ops->dots_f16) {
        ops->dots_f16(qf, n_q, k, kv->k_stride, n - r0, hd, p + r0, GL_ATTN_TILE, ops_scratch);
    } else if (kt) {
        ops->dots(qf, n_q, kt + (size_t)r0 * hd, n - r0, hd, p + r0, GL_ATTN_TILE, ops_scratch);
    } else if (kv->k_type == GL_TYPE_Q8_0) {
        ops->dots_q8_0(st->q, st->q_stride, n_q, k, kv->k_stride, n - r0, hd, p + r0, GL_ATTN_TILE, ops_scratch);
    } else {
        const gl_vec_dot_fn dot = gl_get_type_traits(kv->k_type)->vec_dot;
        for (int i = 0; i < n_q; i++)
            for (int j = r0; j < n; j++)
                dot(hd, &p[(size_t)i * GL_ATTN_TILE + j], k + (size_t)(j - r0) * kv->k_stride, st->q + (size_t)i * st->q_stride);
    }
}

// Query i's scores s over the tile's keys [t0, t0 + n): scaled and soft-capped where it sees them
// ([a, b)), -inf elsewhere; then its online softmax step for the whole tile: when the tile's
// largest score M raises the running maximum m, what was summed is scaled by e^(m - M) once
// (bit a - t0 of the result, the factor in rescale[a - t0]: the values' sums are scaled before
// the tile's first seen key); then s becomes the weights e^(s - m) and their sum is added.
static uint32_t softmax_step(const gl_attn_kv *kv, const gl_attn_ops *ops, gl_attn_state *st, int i, int a, int b,
                             int t0, int n, float *s, float *rescale, float *d) {
    if (ops->weights && kv->softcap <= 0)
        return ops->weights(s, n, a - t0, b - t0, kv->scale, &st->m[i], &st->l[i], &rescale[a - t0]) ? 1u << (a - t0) : 0;
    for (int j = 0; j < a - t0; j++) s[j] = -INFINITY;
    for (int j = a - t0; j < b - t0; j++) s[j] *= kv->scale;
    if (kv->softcap > 0)
        for (int j = a - t0; j < b - t0; j++) s[j] = kv->softcap * tanhf(s[j] / kv->softcap);
    for (int j = b - t0; j < n; j++) s[j] = -INFINITY;
    float m = st->m[i], top = -INFINITY;
    for (int j = a - t0; j < b - t0; j++) top = s[j] > top ? s[j] : top;
    uint32_t grows = 0;
    if (top > m) {
        const float diff = m - top; // e^-inf = 0 on the first tile: nothing summed yet
        gl_exp_row(&rescale[a - t0], &diff, 1);
        st->l[i] *= rescale[a - t0];
        st->m[i] = m = top;
        grows = 1u << (a - t0);
    }
    for (int j = 0; j < n; j++) d[j] = s[j] == -INFINITY ? -INFINITY : s[j] - m;
    gl_exp_row(s, d, n); // s = the weights (0 for masked keys)
    st->l[i] += ops->sum(s, n);
    return grows;
}

// Asks for n rows of `bytes` bytes (row j at p + j * stride) to be brought into the cache.
static void prefetch_rows(const char *p, size_t stride, int n, size_t bytes) {
    for (int j = 0; j < n; j++)
        for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + (size_t)j * stride + b);
}

size_t gl_attn_scratch_floats(int n_q, int head_dim) {
    return 2 * (size_t)n_q * GL_ATTN_TILE + GL_ATTN_TILE + 3 * (size_t)n_q + 2 * (size_t)GL_ATTN_TILE * head_dim +
           (size_t)n_q * head_dim + GL_ATTN_OPS_SCRATCH(n_q, head_dim) + GL_ATTN_PAIRS_SCRATCH(n_q, head_dim);
}

// The online softmax goes a tile at a time, as the usual fused kernels do: a tile whose largest
// score raises the running maximum M scales what was summed by e^(M_old - M) once, then every
// key of the tile weighs e^(s - M). (The reference engine goes key by key; the two differ by
// rounding only, and the tile step keeps the exponentials in whole vectors.) Masked keys weigh
// e^-inf = 0 and add nothing. The scores and the values of a tile are taken for all the queries
// at once (gl_attn_ops); a query that sees none of the tile weighs its values 0, which leaves its
// sums as they were.
void gl_attn_keys(const gl_attn_kv *kv, gl_attn_state *st, int j0, int j1, float *scratch) {
    const int hd = kv->head_dim, n_q = st->n_q;
    const gl_attn_ops *ops = gl_kernels()->attn;
    const bool fk = float_keys(kv->k_type);
    float *p = scratch;                                 // [n_q][TILE] scores, then weights
    float *rescale = p + (size_t)n_q * GL_ATTN_TILE;    // [n_q][TILE] scale factors
    float *d = rescale + (size_t)n_q * GL_ATTN_TILE;    // [TILE] score - running maximum
    uint32_t *grows = (uint32_t *)(d + GL_ATTN_TILE);   // [n_q] keys that raise the maximum
    int *ta = (int *)(grows + n_q), *tb = ta + n_q;      // [n_q] each the keys of the tile seen
    float *vt = d + GL_ATTN_TILE + 3 * (size_t)n_q;     // [TILE][hd] decoded values
    float *kt = vt + (size_t)GL_ATTN_TILE * hd;         // [TILE][hd] decoded keys (float key types)
    float *qf = kt + (size_t)GL_ATTN_TILE * hd;         // [n_q][hd] the queries as floats
    float *ops_scratch = qf + (size_t)n_q * hd;
    float *pairs_scratch = ops_scratch + GL_ATTN_OPS_SCRATCH(n_q, hd);
    const bool v_pairs = kv->v_type == GL_TYPE_Q8_0 && ops->accumulate_q8_0; // the values by bf16 pairs
    if (kv->k_type == GL_TYPE_Q8_0 && ops->prepare_q8_0) ops->prepare_q8_0(st->q, st->q_stride, n_q, hd, ops_scratch);
    if (fk)
        for (int i = 0; i < n_q; i++) decode_rows(gl_get_type_traits(kv->k_type)->vec_dot_type, st->q + (size_t)i * st->q_stride, 0, 1, hd, qf + (size_t)i * hd);
    // Tiles on a fixed grid of key indices + kv->grid (whatever range is asked), so that a
    // query's arithmetic does not depend on the range's start; rows of the first tile before j0
    // are neither read nor weighed.
    const int first = j0 - ((j0 + kv->grid) % GL_ATTN_TILE + GL_ATTN_TILE) % GL_ATTN_TILE;
    const size_t k_bytes = gl_row_size(kv->k_type, hd), v_bytes = gl_row_size(kv->v_type, hd); // a head's
    for (int t0 = first; t0 < j1; t0 += GL_ATTN_TILE) {
        const int n = j1 - t0 < GL_ATTN_TILE ? j1 - t0 : GL_ATTN_TILE, r0 = t0 < j0 ? j0 - t0 : 0;
        bool any = false;
        for (int i = 0; i < n_q && !any; i++) {
            const int lo = st->lo[i] > j0 ? st->lo[i] : j0, hi = st->hi[i] < j1 ? st->hi[i] : j1;
            any = lo < t0 + n && hi > t0 && lo < hi;
        }
        if (!any) continue;
        if (t0 + GL_ATTN_TILE < j1) { // the next tile's rows on their way from memory meanwhile
            const int m = j1 - t0 - GL_ATTN_TILE < GL_ATTN_TILE ? j1 - t0 - GL_ATTN_TILE : GL_ATTN_TILE;
            prefetch_rows(kv->k + (size_t)(t0 + GL_ATTN_TILE) * kv->k_stride, kv->k_stride, m, k_bytes);
            prefetch_rows(kv->v + (size_t)(t0 + GL_ATTN_TILE) * kv->v_stride, kv->v_stride, m, v_bytes);
        }
        if (fk && !(kv->k_type == GL_TYPE_F16 && ops->dots_f16)) decode_rows(kv->k_type, kv->k + (size_t)(t0 + r0) * kv->k_stride, kv->k_stride, n - r0, hd, kt + (size_t)r0 * hd);
        if (!v_pairs) decode_rows(kv->v_type, kv->v + (size_t)(t0 + r0) * kv->v_stride, kv->v_stride, n - r0, hd, vt + (size_t)r0 * hd);
        tile_dots(kv, st, ops, qf, fk ? kt : NULL, t0, r0, n, p, ops_scratch);
        for (int i = 0; i < n_q; i++) { // the keys of the tile query i sees: [t0 + ta[i], t0 + tb[i])
            const int lo = st->lo[i] > j0 ? st->lo[i] : j0, hi = st->hi[i] < j1 ? st->hi[i] : j1;
            ta[i] = (lo > t0 ? lo : t0) - t0, tb[i] = (hi < t0 + n ? hi : t0 + n) - t0;
        }
        if (ops->weights_tile && kv->softcap <= 0) {
            ops->weights_tile(p, GL_ATTN_TILE, n_q, n, ta, tb, kv->scale, st->m, st->l, rescale, grows);
            for (int i = 0; i < n_q; i++) grows[i] >>= r0;
        } else {
            for (int i = 0; i < n_q; i++) {
                float *s = p + (size_t)i * GL_ATTN_TILE;
                if (ta[i] >= tb[i]) { // sees none of this tile
                    memset(s, 0, (size_t)n * sizeof(float));
                    grows[i] = 0;
                    continue;
                }
                grows[i] = softmax_step(kv, ops, st, i, t0 + ta[i], t0 + tb[i], t0, n, s, rescale + (size_t)i * GL_ATTN_TILE, d) >> r0;
            }
        }
        if (v_pairs)
            ops->accumulate_q8_0(st->acc, n_q, kv->v + (size_t)t0 * kv->v_stride, kv->v_stride, r0, n, hd, p, rescale,
                                 GL_ATTN_TILE, grows, pairs_scratch);
        else
            ops->accumulate(st->acc, n_q, vt + (size_t)r0 * hd, n - r0, hd, p + r0, rescale + r0, GL_ATTN_TILE, grows);
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

void gl_attn_sink(gl_attn_state *st, int i, float sink, int head_dim) {
    if (sink == -INFINITY) return;
    const float m = st->m[i] > sink ? st->m[i] : sink;
    const float f = expf(st->m[i] - m); // e^-inf = 0 when no key was seen
    if (f != 1.0f) {
        float *x = st->acc + (size_t)i * head_dim;
        for (int d = 0; d < head_dim; d++) x[d] *= f;
    }
    st->l[i] = st->l[i] * f + expf(sink - m);
    st->m[i] = m;
}

void gl_attn_end(const gl_attn_state *st, int i, int head_dim, float *out) {
    const float inv = st->l[i] > 0 ? 1.0f / st->l[i] : 0.0f;
    const float *x = st->acc + (size_t)i * head_dim;
    for (int d = 0; d < head_dim; d++) out[d] = x[d] * inv;
}
