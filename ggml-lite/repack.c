// Repacked weight matrices (repack.h): the layout and kernel come from the kernel set
// (gl_repack_kernels, dot.h); this file sizes, fills and splits the work across threads.
//
// One token: groups of 16 rows handed out a few at a time through an atomic counter, so every
// core streams weights until the matrix is done. Several tokens: work items of (64 rows, token
// block), the token block's activation rows staying in L2 while the kernel passes over them.
#include <stdatomic.h>

#include "dot.h"
#include "repack.h"

enum {
    GROUPS_B = 4,                 // groups per work item with several tokens
    ACT_BLOCK_BYTES = 512 << 10,  // activation rows per work item: as many as fit in this
    INLINE_BYTES = 1 << 16        // below this many weight bytes x tokens, don't wake the pool
};

static const gl_repack_kernels *kernels_for(enum gl_type type, int64_t n_in, int64_t n_out) {
    if ((unsigned)type >= GL_TYPE_COUNT || n_in <= 0 || n_out <= 0 || n_out % GL_REPACK_ROWS != 0) return NULL;
    const gl_type_traits *tr = gl_get_type_traits(type);
    if (!tr || n_in % tr->blck_size != 0) return NULL;
    return gl_kernels()->repack[type];
}

bool gl_repack_available(enum gl_type type, int64_t n_in, int64_t n_out) { return kernels_for(type, n_in, n_out) != NULL; }

static size_t group_bytes(const gl_repack_kernels *k, enum gl_type type, int64_t n_in) {
    return k->block_bytes * (size_t)(n_in / gl_get_type_traits(type)->blck_size);
}

size_t gl_repack_size(enum gl_type type, int64_t n_in, int64_t n_out) {
    const gl_repack_kernels *k = kernels_for(type, n_in, n_out);
    return k ? group_bytes(k, type, n_in) * (size_t)(n_out / GL_REPACK_ROWS) : 0;
}

void gl_repack_rows(enum gl_type type, const void *src, int64_t n_in, int64_t r0, int64_t r1, void *dst) {
    const gl_repack_kernels *k = kernels_for(type, n_in, r1 > 0 ? r1 : 0);
    if (!k || r0 % GL_REPACK_ROWS != 0 || r1 % GL_REPACK_ROWS != 0) return;
    const size_t row = gl_row_size(type, n_in), gb = group_bytes(k, type, n_in);
    for (int64_t r = r0; r < r1; r += GL_REPACK_ROWS)
        k->pack((const char *)src + (size_t)r * row, row, (int)n_in, (char *)dst + (size_t)(r / GL_REPACK_ROWS) * gb);
}

typedef struct {
    const gl_repack_kernels *k;
    const char *w;
    size_t gb; // bytes per group
    int64_t n_groups;
    const gl_act *act;
    float *out;
    size_t bs; // n_out
    int64_t groups_per_item, tok_block, n_gchunks, n_items;
    atomic_llong next;
} rp_task;

// Weight groups [g0, g1) against tokens [t0, t1).
static void rp_groups(const rp_task *t, int64_t g0, int64_t g1, int64_t t0, int64_t t1) {
    const size_t by = t->act->row_bytes;
    const int64_t nb = t->act->n_in / QK8_0; // Q8_0 extras per token
    const float *dy = gl_act_dy(t->act);
    const int32_t *ys = gl_act_ys(t->act);
    t->k->mul((int)t->act->n_in, t->w + (size_t)g0 * t->gb, (int)(g1 - g0), (const char *)t->act->data + (size_t)t0 * by,
              by, dy ? dy + t0 * nb : NULL, ys ? ys + t0 * nb : NULL, (int)(t1 - t0),
              t->out + (size_t)t0 * t->bs + (size_t)g0 * GL_REPACK_ROWS, t->bs);
}

static void rp_item(const rp_task *t, int64_t item) {
    const int64_t gc = item % t->n_gchunks, tb = item / t->n_gchunks;
    const int64_t g0 = gc * t->groups_per_item;
    const int64_t g1 = g0 + t->groups_per_item < t->n_groups ? g0 + t->groups_per_item : t->n_groups;
    const int64_t t0 = tb * t->tok_block;
    rp_groups(t, g0, g1, t0, t0 + t->tok_block < t->act->n_tok ? t0 + t->tok_block : t->act->n_tok);
}

static void rp_run(void *p, int ith, int nth) {
    rp_task *t = (rp_task *)p;
    // One token: each thread one contiguous run of rows, a single stream the prefetchers follow
    // (small grabs from a shared counter made both threads' streams jump: 63 vs 94 t/s at -t 2).
    if (t->act->n_tok == 1) {
        const int64_t g0 = t->n_groups * ith / nth, g1 = t->n_groups * (ith + 1) / nth;
        if (g1 > g0) rp_groups(t, g0, g1, 0, 1);
        return;
    }
    // The first nth items go one per thread without touching the counter.
    for (int64_t item = ith; item < t->n_items; item = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed))
        rp_item(t, item);
}

void gl_matmul_repacked(gl_threadpool *tp, const void *w, enum gl_type type, int64_t n_out, const gl_act *act,
                        float *out) {
    const gl_repack_kernels *k = act ? kernels_for(type, act->n_in, n_out) : NULL;
    if (!k || act->type != gl_get_type_traits(type)->vec_dot_type || act->n_tok <= 0) return;
    rp_task t = {.k = k, .w = (const char *)w, .gb = group_bytes(k, type, act->n_in), .n_groups = n_out / GL_REPACK_ROWS,
                 .act = act, .out = out, .bs = (size_t)n_out};
    if (act->n_tok == 1) { // (rp_run splits the groups evenly: an item is a group)
        t.groups_per_item = 1;
        t.tok_block = 1;
    } else {
        t.groups_per_item = GROUPS_B;
        int64_t tb = (int64_t)(ACT_BLOCK_BYTES / act->row_bytes);
        t.tok_block = tb < 16 ? 16 : tb > GL_REPACK_MAX_TOK ? GL_REPACK_MAX_TOK : tb;
    }
    t.n_gchunks = (t.n_groups + t.groups_per_item - 1) / t.groups_per_item;
    t.n_items = t.n_gchunks * ((act->n_tok + t.tok_block - 1) / t.tok_block);
    int nth = tp ? gl_threadpool_n_threads(tp) : 1;
    if ((double)t.gb * (double)t.n_groups * (double)act->n_tok < INLINE_BYTES) nth = 1;
    if (t.n_items < nth) nth = (int)t.n_items;
    atomic_init(&t.next, nth);
    if (nth > 1) gl_threadpool_run(tp, rp_run, &t);
    else rp_run(&t, 0, 1);
}
