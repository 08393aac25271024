// The KV cache's storage (kv_cache.h): rows in the cache's types, written and read back.
#include <stdlib.h>
#include <string.h>

#include "context/kv_cache.h"
#include "forward/forward.h"
#include "ops.h"
#include "util.h"

static const struct {
    ll_cache_type t;
    enum gl_type gl;
    const char *name;
} cache_types[] = {
    {LL_CACHE_F32, GL_TYPE_F32, "f32"},       {LL_CACHE_F16, GL_TYPE_F16, "f16"},
    {LL_CACHE_BF16, GL_TYPE_BF16, "bf16"},    {LL_CACHE_Q8_0, GL_TYPE_Q8_0, "q8_0"},
    {LL_CACHE_Q4_0, GL_TYPE_Q4_0, "q4_0"},    {LL_CACHE_Q4_1, GL_TYPE_Q4_1, "q4_1"},
    {LL_CACHE_Q5_0, GL_TYPE_Q5_0, "q5_0"},    {LL_CACHE_Q5_1, GL_TYPE_Q5_1, "q5_1"},
    {LL_CACHE_IQ4_NL, GL_TYPE_IQ4_NL, "iq4_nl"},
};
enum { N_CACHE_TYPES = sizeof cache_types / sizeof cache_types[0] };

bool ll_kv_cache_gl_type(ll_cache_type t, enum gl_type *out) {
    for (int i = 0; i < N_CACHE_TYPES; i++)
        if (cache_types[i].t == t) {
            *out = cache_types[i].gl;
            return true;
        }
    return false;
}

const char *ll_cache_type_name(ll_cache_type t) {
    for (int i = 0; i < N_CACHE_TYPES; i++)
        if (cache_types[i].t == t) return cache_types[i].name;
    return "?";
}

bool ll_cache_type_from_name(const char *name, ll_cache_type *out) {
    for (int i = 0; i < N_CACHE_TYPES; i++)
        if (!strcmp(cache_types[i].name, name)) {
            *out = cache_types[i].t;
            return true;
        }
    return false;
}

bool ll_kv_head_aligned(enum gl_type t, int head_dim) {
    const gl_type_traits *tr = gl_get_type_traits(t);
    return tr && head_dim % tr->blck_size == 0;
}

bool ll_kv_cache_init(ll_kv_cache *kv, int n_layer, int n_head_kv, int head_dim, int n_cells, const int *cells,
                      enum gl_type type_k, enum gl_type type_v, char *err, size_t errlen) {
    memset(kv, 0, sizeof *kv);
    const int kv_dim = n_head_kv * head_dim;
    const size_t k_row = gl_row_size(type_k, kv_dim), v_row = gl_row_size(type_v, kv_dim);
    if (!k_row || !v_row) {
        const enum gl_type bad = k_row ? type_v : type_k;
        ll_set_err(err, errlen, "cache type %s needs a multiple of %d keys/values per token; this model has %d",
                   gl_type_name(bad), gl_get_type_traits(bad) ? gl_get_type_traits(bad)->blck_size : 0, kv_dim);
        return false;
    }
    *kv = (ll_kv_cache){.type_k = type_k, .type_v = type_v, .n_layer = n_layer, .n_cells = n_cells,
                        .n_head_kv = n_head_kv, .head_dim = head_dim, .kv_dim = kv_dim,
                        .k_row = k_row, .v_row = v_row};
    kv->cell0 = calloc((size_t)n_layer + 1, sizeof *kv->cell0);
    kv->cells = calloc((size_t)n_layer + 1, sizeof *kv->cells);
    kv->base = calloc((size_t)n_layer + 1, sizeof *kv->base);
    size_t rows = 0;
    for (int l = 0; l < n_layer && kv->cells; l++) {
        kv->cells[l] = cells && cells[l] > 0 && cells[l] < n_cells ? cells[l] : n_cells;
        kv->cell0[l] = rows;
        rows += (size_t)kv->cells[l];
    }
    if (rows && (k_row > SIZE_MAX / rows || v_row > SIZE_MAX / rows)) {
        ll_kv_cache_free(kv);
        ll_set_err(err, errlen, "out of memory for a KV cache of %d cells", n_cells);
        return false;
    }
    if (kv->cell0 && kv->cells && kv->base) {
        kv->k = malloc(rows * k_row > 0 ? rows * k_row : 1);
        kv->v = malloc(rows * v_row > 0 ? rows * v_row : 1);
    }
    if (!kv->k || !kv->v) {
        ll_kv_cache_free(kv);
        ll_set_err(err, errlen, "out of memory for a KV cache of %d cells", n_cells);
        return false;
    }
    return true;
}

void ll_kv_cache_free(ll_kv_cache *kv) {
    free(kv->k);
    free(kv->v);
    free(kv->cell0);
    free(kv->cells);
    free(kv->base);
    kv->k = kv->v = NULL;
    kv->cell0 = NULL;
    kv->cells = kv->base = NULL;
}

void ll_kv_cache_make_room(ll_kv_cache *kv, int l, int pos0, int n, int n_swa) {
    if (kv->cells[l] >= kv->n_cells || pos0 + n - kv->base[l] <= kv->cells[l]) return;
    // the first key the chunk's first query sees; rows before it go
    const int keep_from = pos0 + 1 > n_swa ? pos0 + 1 - n_swa : 0;
    const int drop = keep_from - kv->base[l];
    const int kept = pos0 - keep_from;
    if (drop <= 0) return; // (cannot happen: cells >= n_swa - 1 + n_batch)
    memmove(ll_kv_k(kv, l, 0), ll_kv_k(kv, l, drop), (size_t)kept * kv->k_row);
    memmove(ll_kv_v(kv, l, 0), ll_kv_v(kv, l, drop), (size_t)kept * kv->v_row);
    kv->base[l] = keep_from;
}

bool ll_kv_cache_can_keep(const ll_kv_cache *kv, int l, int n_keep, int n_swa) {
    const int first = n_keep + 1 > n_swa ? n_keep + 1 - n_swa : 0; // the next query's first key
    return kv->base[l] <= first;
}

void ll_kv_cache_shift_layer(ll_kv_cache *kv, int l, int n_past, int n_keep, int n_discard, const ll_rope *rope) {
    const int base = kv->base[l];
    // Held after the shift: [base, n_keep) as they are, then the moved ones from n_keep on.
    const int new_base = base < n_keep ? base : base >= n_keep + n_discard ? base - n_discard : n_keep;
    for (int p = new_base; p < n_past - n_discard; p++) {
        const int from = p < n_keep ? p : p + n_discard;
        ll_kv_cache_move(kv, l, from - base, p - new_base);
        if (p >= n_keep) ll_kv_cache_rerotate(kv, l, p - new_base, rope, -n_discard);
    }
    kv->base[l] = new_base;
}

// n floats into a row of type t.
static void row_from_f32(enum gl_type t, const float *x, void *dst, int n) {
    switch (t) {
    case GL_TYPE_F32: memcpy(dst, x, (size_t)n * sizeof(float)); return;
    case GL_TYPE_F16: gl_fp32_to_fp16_row(x, dst, n); return;
    default: {
        const gl_type_traits *tr = gl_get_type_traits(t);
        (tr->from_float ? tr->from_float : tr->from_float_ref)(x, dst, n);
    }
    }
}

static void row_to_f32(enum gl_type t, const void *src, float *y, int n) {
    switch (t) {
    case GL_TYPE_F32: memcpy(y, src, (size_t)n * sizeof(float)); return;
    case GL_TYPE_F16: gl_fp16_to_fp32_row(src, y, n); return;
    default: gl_get_type_traits(t)->to_float(src, y, n);
    }
}

void ll_kv_cache_store(ll_kv_cache *kv, int layer, int cell, const float *k, const float *v) {
    row_from_f32(kv->type_k, k, ll_kv_k(kv, layer, cell), kv->kv_dim);
    row_from_f32(kv->type_v, v, ll_kv_v(kv, layer, cell), kv->kv_dim);
}

void ll_kv_cache_row_f32(const ll_kv_cache *kv, bool keys, int layer, int cell, float *out) {
    if (keys) row_to_f32(kv->type_k, ll_kv_k(kv, layer, cell), out, kv->kv_dim);
    else row_to_f32(kv->type_v, ll_kv_v(kv, layer, cell), out, kv->kv_dim);
}

void ll_kv_cache_move(ll_kv_cache *kv, int layer, int from, int to) {
    if (from == to) return;
    memmove(ll_kv_k(kv, layer, to), ll_kv_k(kv, layer, from), kv->k_row);
    memmove(ll_kv_v(kv, layer, to), ll_kv_v(kv, layer, from), kv->v_row);
}

void ll_kv_cache_rerotate(ll_kv_cache *kv, int layer, int cell, const ll_rope *rope, int delta) {
    void *row = ll_kv_k(kv, layer, cell);
    if (kv->type_k == GL_TYPE_F16 || kv->type_k == GL_TYPE_F32) {
        ll_rope_shift(rope, row, kv->type_k == GL_TYPE_F16, kv->n_head_kv, kv->head_dim, delta);
        return;
    }
    // Other types: decoded, turned in float, stored again (one more rounding of the key).
    float buf[4096], *x = kv->kv_dim <= 4096 ? buf : malloc((size_t)kv->kv_dim * sizeof(float));
    if (!x) return;
    row_to_f32(kv->type_k, row, x, kv->kv_dim);
    ll_rope_shift(rope, x, false, kv->n_head_kv, kv->head_dim, delta);
    row_from_f32(kv->type_k, x, row, kv->kv_dim);
    if (x != buf) free(x);
}
