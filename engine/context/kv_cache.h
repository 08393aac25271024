// The KV cache's storage: per layer, one row per cell of n_head_kv * head_dim keys (and values)
// in a ggml type (F32, F16, BF16 or a 32-element block format), written from float rows as they
// are computed and read back by the attention kernels in their stored type.
//
// A layer whose attention slides a window of n_swa keys keeps only n_swa - 1 + n_batch cells
// (when that is less than the context): cell i holds position base + i. Before a chunk is
// written, the rows no query of the chunk can see are dropped and the rest moved down
// (ll_kv_cache_make_room), so the keys of every query stay in consecutive cells. Rollback of up
// to a chunk (speculative verification, n_batch tokens) always finds its rows.
#ifndef LLAMALITE_KV_CACHE_H
#define LLAMALITE_KV_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "ggml-lite.h"
#include "model/model.h"

typedef struct {
    enum gl_type type_k, type_v;
    int n_layer, n_cells, n_head_kv, head_dim, kv_dim; // n_cells: of a full layer (the context)
    size_t k_row, v_row; // bytes of one cell's keys / values
    char *k, *v;         // the layers' cells one after another
    size_t *cell0;       // [n_layer] the layer's first cell in k and v
    int *cells;          // [n_layer] its cells: n_cells, or fewer for a sliding-window layer
    int *base;           // [n_layer] the position its cell 0 holds (0 for full layers)
} ll_kv_cache;

// The ggml type of a cache type (false: not one we know).
bool ll_kv_cache_gl_type(ll_cache_type t, enum gl_type *out);
// Allocates cells[l] rows for layer l (n_cells: the context). False with err set when a type
// cannot hold the model's rows (kv_dim not a multiple of its block) or memory runs out.
bool ll_kv_cache_init(ll_kv_cache *kv, int n_layer, int n_head_kv, int head_dim, int n_cells, const int *cells,
                      enum gl_type type_k, enum gl_type type_v, char *err, size_t errlen);
void ll_kv_cache_free(ll_kv_cache *kv);

static inline char *ll_kv_k(const ll_kv_cache *kv, int layer, int cell) {
    return kv->k + (kv->cell0[layer] + (size_t)cell) * kv->k_row;
}
static inline char *ll_kv_v(const ll_kv_cache *kv, int layer, int cell) {
    return kv->v + (kv->cell0[layer] + (size_t)cell) * kv->v_row;
}
// The cell of position pos in a layer (pos >= its base).
static inline int ll_kv_cell(const ll_kv_cache *kv, int layer, int pos) { return pos - kv->base[layer]; }
// Before positions [pos0, pos0 + n) are written to a sliding-window layer (window n_swa): drops
// the rows before the first key the chunk's queries see, if the layer needs the room.
void ll_kv_cache_make_room(ll_kv_cache *kv, int layer, int pos0, int n, int n_swa);
// Whether rolling back to n_keep cached positions leaves every window's rows in place.
bool ll_kv_cache_can_keep(const ll_kv_cache *kv, int layer, int n_keep, int n_swa);
// Context shift of one layer holding positions [base, n_past): positions [n_keep, n_keep + n_discard)
// leave, the later ones move down by n_discard (keys re-rotated with rope).
void ll_kv_cache_shift_layer(ll_kv_cache *kv, int layer, int n_past, int n_keep, int n_discard, const ll_rope *rope);
// Whether one head of head_dim elements starts on a block boundary of type t, so kernels can
// read a head in place (otherwise they decode whole rows).
bool ll_kv_head_aligned(enum gl_type t, int head_dim);

// Writes one cell's keys and values (kv_dim floats each), converted to the cache's types.
void ll_kv_cache_store(ll_kv_cache *kv, int layer, int cell, const float *k, const float *v);
// Decodes one cell's key row (keys true) or value row to kv_dim floats.
void ll_kv_cache_row_f32(const ll_kv_cache *kv, bool keys, int layer, int cell, float *out);
// Copies cell `from` to cell `to` in one layer (both K and V).
void ll_kv_cache_move(ll_kv_cache *kv, int layer, int from, int to);
// Turns the cached keys of one cell by delta positions with the layer's rotary setting
// (context shift). Block-quantized keys are decoded, turned and quantized again.
void ll_kv_cache_rerotate(ll_kv_cache *kv, int layer, int cell, const ll_rope *rope, int delta);

#endif
