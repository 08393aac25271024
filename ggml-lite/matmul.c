// Weight matrix x activation rows, split across the threadpool.
//
// One token (generation): memory bound. Output rows are handed out through an atomic counter in
// shrinking chunks, so every core streams weights until the matrix is done, even when one core
// is slowed down by something else, and all finish at about the same time.
//
// Several tokens (prompt): compute bound. Work items are (token block, row chunk) pairs; the
// token block's activation rows stay in L2. Inside one, the kernel set's tile kernel decodes the
// chunk's weight rows once (e.g. into interleaved 8-row tiles) for every token of the block, or,
// for types without one, the batched kernel decodes each weight block once per GL_DOT_NR tokens.
//
// Several tokens, each through the one-token arithmetic (gl_matmul_rowwise, speculative
// verification): row chunks that every token passes over while they are in cache, through the
// set's gen_n kernel, or its gen_nx kernel on a rearranged copy of the activations.
//
// Which kernels run is the kernel set's business (dot.h, kernel_select.c); nothing here depends
// on the ISA.
//
// Q8_0 activations carry extras after their rows (block scales as floats, sum(q))
// that the Q8_0-family tile and generation kernels read instead of recomputing them per weight row.
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dot.h"
#include "matmul.h"

enum {
    ACT_BLOCK_BYTES = 512 << 10, // activation rows per work item: as many as fit in this (L2)
    TILE_ACT_BLOCK_BYTES = 1 << 20, // the same for tile kernels (see token_block)
    ROWS_PER_CHUNK_B = 64, // weight rows per work item in the batched path (at least)
    ITEMS_PER_THREAD_B = 4, // work items per thread in the batched path (at most; for balance)
    MIN_ROWS_1 = 8,        // smallest chunk in the single-token path
    INLINE_BYTES = 1 << 16, // below this many weight bytes x tokens, don't wake the pool
    TILE_MIN_TOK = 4,      // fewer tokens don't pay for decoding the tiles
    ROWWISE_CHUNK_BYTES = 64 << 10 // weight bytes per work item of gl_matmul_rowwise (in L2)
};

// ---- activations ---------------------------------------------------------------------------

void gl_act_free(gl_act *a) {
    if (!a) return;
    free(a->data);
    free(a->vx);
    memset(a, 0, sizeof *a);
}

typedef struct {
    gl_from_float_fn from_float;
    const float *x;
    int64_t n_in, n_tok;
    size_t row_bytes;
    char *dst;
    float *dy; // Q8_0 extras, or NULL
    int32_t *ys;
} act_task;

// Q8_0 activations carry, after their rows, each block's scale as a float and sum(q): the
// tiled kernels read these instead of recomputing them for every weight row.
static inline size_t extras_offset(const gl_act *a) { return (a->row_bytes * (size_t)a->n_tok + 63) & ~(size_t)63; }
// Token t's block scales and sums (n_in / 32 of each per token).
// NULL for the other activation types.
const float *gl_act_dy(const gl_act *a) {
    return a->type == GL_TYPE_Q8_0 ? (const float *)((const char *)a->data + extras_offset(a)) : NULL;
}
const int32_t *gl_act_ys(const gl_act *a) {
    return a->type == GL_TYPE_Q8_0 ? (const int32_t *)(gl_act_dy(a) + (a->n_in / QK8_0) * a->n_tok) : NULL;
}

static void q8_0_extras(const void *row, int64_t nb, float *dy, int32_t *ys) {
    const block_q8_0 *b = (const block_q8_0 *)row;
    for (int64_t i = 0; i < nb; i++) {
        int sum = 0;
        for (int k = 0; k < QK8_0; k++) sum += b[i].qs[k];
        dy[i] = gl_fp16_to_fp32(b[i].d);
        ys[i] = sum;
    }
}

static void act_run(void *p, int ith, int nth) {
    const act_task *t = (const act_task *)p;
    for (int64_t r = ith; r < t->n_tok; r += nth) {
        char *row = t->dst + (size_t)r * t->row_bytes;
        t->from_float(t->x + r * t->n_in, row, t->n_in);
        if (t->dy) {
            const int64_t nb = t->n_in / QK8_0;
            q8_0_extras(row, nb, t->dy + r * nb, t->ys + r * nb);
        }
    }
}

// Room and shape for n_tok rows of n_in elements of type (the rows then filled by the caller).
static bool act_reserve(gl_act *a, enum gl_type type, int64_t n_tok, int64_t n_in) {
    const size_t row_bytes = gl_row_size(type, n_in);
    if (!row_bytes) return false;
    const bool extras = type == GL_TYPE_Q8_0;
    const size_t rows_end = (row_bytes * (size_t)n_tok + 63) & ~(size_t)63;
    const size_t need = rows_end + (extras ? 2 * sizeof(float) * (size_t)(n_in / QK8_0) * (size_t)n_tok : 0);
    if (need > a->cap) {
        free(a->data);
        a->data = NULL;
        a->cap = 0;
        // 64-byte aligned, padded to whole cache lines.
        const size_t cap = (need + 63) & ~(size_t)63;
        if (posix_memalign(&a->data, 64, cap ? cap : 64) != 0) {
            memset(a, 0, sizeof *a);
            return false;
        }
        a->cap = cap;
    }
    a->vx_ready = false;
    a->type = type;
    a->n_in = n_in;
    a->n_tok = n_tok;
    a->row_bytes = row_bytes;
    return true;
}

bool gl_act_prepare(gl_act *a, gl_threadpool *tp, const float *x, int64_t n_tok, int64_t n_in,
                    enum gl_type type) {
    const gl_type_traits *tr = gl_get_type_traits(type);
    if (!a || !tr || !tr->from_float || n_tok < 0 || n_in <= 0 || !act_reserve(a, type, n_tok, n_in)) return false;
    const size_t row_bytes = a->row_bytes, rows_end = extras_offset(a);
    const bool extras = type == GL_TYPE_Q8_0;
    act_task t = {tr->from_float, x, n_in, n_tok, row_bytes, (char *)a->data, NULL, NULL};
    if (extras) {
        t.dy = (float *)((char *)a->data + rows_end);
        t.ys = (int32_t *)(t.dy + (size_t)(n_in / QK8_0) * (size_t)n_tok);
    }
    if (n_tok > 1 && tp && gl_threadpool_n_threads(tp) > 1) gl_threadpool_run(tp, act_run, &t);
    else act_run(&t, 0, 1);
    return true;
}

bool gl_act_gather(gl_act *dst, const gl_act *src, const int *rows, int64_t n) {
    if (!dst || !src || dst == src || n < 0 || !act_reserve(dst, src->type, n, src->n_in)) return false;
    for (int64_t i = 0; i < n; i++)
        memcpy((char *)dst->data + (size_t)i * dst->row_bytes,
               (const char *)src->data + (size_t)rows[i] * src->row_bytes, src->row_bytes);
    const float *sdy = gl_act_dy(src);
    if (sdy) { // (the scales, then the sums: n_in / 32 of each per token)
        const int64_t nb = src->n_in / QK8_0;
        float *dy = (float *)gl_act_dy(dst);
        int32_t *ys = (int32_t *)gl_act_ys(dst);
        for (int64_t i = 0; i < n; i++) {
            memcpy(dy + i * nb, sdy + (size_t)rows[i] * nb, sizeof(float) * nb);
            memcpy(ys + i * nb, gl_act_ys(src) + (size_t)rows[i] * nb, sizeof(int32_t) * nb);
        }
    }
    return true;
}

// ---- matmul ----------------------------------------------------------------------------------

typedef struct {
    const char *w;
    size_t w_row;          // bytes per weight row
    int64_t n_out;
    const gl_act *act;
    float *out;
    enum gl_type wtype;
    gl_vec_dot_fn vec_dot;
    gl_vec_dot_nr_fn vec_dot_nr; // may be NULL: then vec_dot per token
    gl_tile_fn tile;       // several tokens at once, or NULL
    gl_gen_fn gen;         // one token, several rows at once, or NULL (vec_dot per row)
    gl_gen_n_fn gen_n;     // rowwise, several tokens per pass, or NULL
    const gl_gen_nx *gen_nx; // rowwise on act->vx (already built), or NULL
    bool rowwise;          // several tokens, each with the one-token kernel (gl_matmul_rowwise)
    bool guided;           // one token: `next` is the next row, chunks shrink as rows run out
    int64_t rows_per_chunk;
    int64_t tok_block;     // activation rows per work item (batched path)
    int64_t n_row_chunks;
    int64_t n_items;
    atomic_llong next;     // next work item to hand out (items < nth start statically)
} mm_task;

// Rows [r0, r1) of the weight x activation row tok, with the one-token kernels.
static void mm_rows_1(const mm_task *t, int64_t r0, int64_t r1, int64_t tok) {
    const int n = (int)t->act->n_in;
    const void *y = (const char *)t->act->data + (size_t)tok * t->act->row_bytes;
    float *out = t->out + (size_t)tok * (size_t)t->n_out;
    if (t->gen) {
        const int64_t nb = n / QK8_0;
        const float *dy = gl_act_dy(t->act), *dyt = dy ? dy + tok * nb : NULL;
        const int32_t *ys = gl_act_ys(t->act), *yst = ys ? ys + tok * nb : NULL;
        t->gen(t->wtype, n, t->w + (size_t)r0 * t->w_row, t->w_row, (int)(r1 - r0), y, dyt, yst, out + r0);
        return;
    }
    for (int64_t r = r0; r < r1; r++) t->vec_dot(n, out + r, t->w + (size_t)r * t->w_row, y);
}

// Rows [r0, r1) of the weight x activation rows [t0, t1).
static void mm_rows_batched(const mm_task *t, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    const int n = (int)t->act->n_in;
    const size_t by = t->act->row_bytes;
    const char *ya = (const char *)t->act->data;
    const size_t bs = (size_t)t->n_out;
    if (t->tile && t1 - t0 >= TILE_MIN_TOK) {
        const int64_t nb = n / QK8_0;
        const float *dy = gl_act_dy(t->act);
        const int32_t *ys = gl_act_ys(t->act);
        if (t->tile(t->wtype, n, t->w + (size_t)r0 * t->w_row, t->w_row, (int)(r1 - r0), ya + (size_t)t0 * by,
                    by, dy ? dy + t0 * nb : NULL, ys ? ys + t0 * nb : NULL, (int)(t1 - t0),
                    t->out + (size_t)t0 * bs + r0, bs))
            return;
    }
    for (int64_t tk = t0; tk < t1; tk += GL_DOT_NR) {
        const int nr = (int)(t1 - tk < GL_DOT_NR ? t1 - tk : GL_DOT_NR);
        const char *y = ya + (size_t)tk * by;
        float *o = t->out + (size_t)tk * bs;
        for (int64_t r = r0; r < r1; r++) {
            const void *w = t->w + (size_t)r * t->w_row;
            if (t->vec_dot_nr) t->vec_dot_nr(n, o + r, bs, w, y, by, nr);
            else
                for (int j = 0; j < nr; j++) t->vec_dot(n, o + r + j * bs, w, y + j * by);
        }
    }
}

static void mm_item(const mm_task *t, int64_t item) {
    const int64_t rc = item % t->n_row_chunks, tb = item / t->n_row_chunks;
    const int64_t r0 = rc * t->rows_per_chunk;
    const int64_t r1 = r0 + t->rows_per_chunk < t->n_out ? r0 + t->rows_per_chunk : t->n_out;
    if (t->act->n_tok == 1) {
        mm_rows_1(t, r0, r1, 0);
    } else if (t->rowwise) {
        if (t->gen_nx && t->gen_nx->rows(t->wtype, (int)t->act->n_in, t->w + (size_t)r0 * t->w_row, t->w_row,
                                         (int)(r1 - r0), t->act->vx, (int)t->act->n_tok, t->out + r0,
                                         (size_t)t->n_out))
            return;
        if (t->gen_n) { // several tokens per pass over a row
            t->gen_n(t->wtype, (int)t->act->n_in, t->w + (size_t)r0 * t->w_row, t->w_row, (int)(r1 - r0),
                     t->act->data, t->act->row_bytes, gl_act_dy(t->act), gl_act_ys(t->act), (int)t->act->n_tok,
                     t->out + r0, (size_t)t->n_out);
            return;
        }
        for (int64_t tok = 0; tok < t->act->n_tok; tok++) mm_rows_1(t, r0, r1, tok);
    } else {
        const int64_t t0 = tb * t->tok_block;
        const int64_t t1 = t0 + t->tok_block < t->act->n_tok ? t0 + t->tok_block : t->act->n_tok;
        mm_rows_batched(t, r0, r1, t0, t1);
    }
}

// One token: each grab takes a share of the rows still left (half of an even split), so chunks
// start long (contiguous streams) and shrink towards the end, where threads finish together.
static void mm_run_guided(mm_task *t, int nth) {
    long long r0 = atomic_load_explicit(&t->next, memory_order_relaxed); // the counter's type
    for (;;) {
        const int64_t left = t->n_out - r0;
        if (left <= 0) return;
        int64_t take = left / (2 * (int64_t)nth);
        if (take < MIN_ROWS_1) take = MIN_ROWS_1;
        const int64_t r1 = take < left ? r0 + take : t->n_out;
        if (atomic_compare_exchange_weak_explicit(&t->next, &r0, r1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            mm_rows_1(t, r0, r1, 0);
            r0 = atomic_load_explicit(&t->next, memory_order_relaxed);
        }
    }
}

static void mm_run(void *p, int ith, int nth) {
    mm_task *t = (mm_task *)p;
    if (t->guided) {
        mm_run_guided(t, nth);
        return;
    }
    // The first nth items go one per thread without touching the counter.
    for (int64_t item = ith; item < t->n_items;
         item = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed))
        mm_item(t, item);
}

typedef struct {
    gl_act *a;
    const gl_gen_nx *k;
} vx_task;

// Token groups of the rearranged rows, split between the threads.
static void vx_run(void *p, int ith, int nth) {
    const vx_task *t = (const vx_task *)p;
    const gl_act *a = t->a;
    const int ng = (int)(a->n_tok + 3) / 4;
    t->k->build(a->data, a->row_bytes, gl_act_dy(a), (int)a->n_in, (int)a->n_tok, ng * ith / nth, ng * (ith + 1) / nth,
                a->vx);
}

// The rearranged rows the type's gen_nx kernel reads, built once per activation. NULL when the
// set has no such kernel for the type, the CPU lacks it, or memory is short (then gen_n runs).
static const gl_gen_nx *act_vx(gl_threadpool *tp, gl_act *a, enum gl_type wtype) {
    const gl_gen_nx *k = gl_kernels()->gen_nx[wtype];
    if (a->n_tok < 2 || a->type != GL_TYPE_Q8_0 || !k || !k->usable()) return NULL;
    if (a->vx_ready) return k;
    const size_t need = k->size((int)a->n_in, (int)a->n_tok);
    if (need > a->vx_cap) {
        free(a->vx);
        a->vx = NULL;
        a->vx_cap = 0;
        if (posix_memalign(&a->vx, 64, need) != 0) {
            a->vx = NULL;
            return NULL;
        }
        a->vx_cap = need;
    }
    vx_task t = {a, k};
    const int ng = (int)(a->n_tok + 3) / 4;
    if (ng > 1 && tp && gl_threadpool_n_threads(tp) > 1) gl_threadpool_run(tp, vx_run, &t);
    else vx_run(&t, 0, 1);
    a->vx_ready = true;
    return k;
}

// Activation rows per work item of the batched path: they stay in L2 while the item's weight rows
// pass. A tile kernel decodes its weight rows once per token block, which costs more than the
// activations' spilling past half of L2, so tile types get a larger budget, in equal blocks (a
// 128-token prompt of 5632-wide rows is one block, not 80 + 48 tokens that decode every weight
// row twice: 7-15% faster ffn_down).
static int64_t token_block(int64_t n_tok, size_t row_bytes, bool tiled) {
    const size_t budget = tiled ? TILE_ACT_BLOCK_BYTES : ACT_BLOCK_BYTES;
    int64_t most = (int64_t)(budget / row_bytes) / GL_DOT_NR * GL_DOT_NR;
    most = most < 16 ? 16 : most > 256 ? 256 : most;
    if (!tiled) return most;
    const int64_t n_blocks = (n_tok + most - 1) / most;
    const int64_t even = (n_tok + n_blocks - 1) / n_blocks;
    return (even + GL_DOT_NR - 1) / GL_DOT_NR * GL_DOT_NR;
}

// Weight rows per work item of the batched path. A tile kernel sets up per call (the activation
// sums it reads), so it gets a few long chunks per thread rather than many of 64 rows.
static int64_t row_chunk(int64_t n_out, int nth, bool tiled) {
    if (!tiled) return ROWS_PER_CHUNK_B;
    const int64_t rows = (n_out + (int64_t)nth * ITEMS_PER_THREAD_B - 1) / ((int64_t)nth * ITEMS_PER_THREAD_B);
    return rows <= ROWS_PER_CHUNK_B ? ROWS_PER_CHUNK_B : (rows + ROWS_PER_CHUNK_B - 1) / ROWS_PER_CHUNK_B * ROWS_PER_CHUNK_B;
}

static void matmul(gl_threadpool *tp, const void *w, enum gl_type wtype, int64_t n_out,
                   const gl_act *act, float *out, bool rowwise, const gl_gen_nx *gen_nx) {
    const gl_type_traits *tr = gl_get_type_traits(wtype);
    if (!tr || !tr->vec_dot || !act || act->type != tr->vec_dot_type || n_out <= 0 ||
        act->n_tok <= 0)
        return;
    const size_t w_row = gl_row_size(wtype, act->n_in);
    if (!w_row) return;
    const gl_kernel_set *k = gl_kernels();
    int nth = gl_threadpool_n_threads(tp);
    if ((double)w_row * (double)n_out * (double)act->n_tok < INLINE_BYTES) nth = 1;

    mm_task t = {
        .w = (const char *)w, .w_row = w_row, .n_out = n_out, .act = act, .out = out,
        .vec_dot = tr->vec_dot, .vec_dot_nr = k->vec_dot_nr[wtype], .tile = k->tile[wtype], .gen = k->gen[wtype],
        .gen_n = k->gen_n[wtype], .gen_nx = gen_nx, .wtype = wtype, .rowwise = rowwise && act->n_tok > 1,
    };
    int64_t n_tok_blocks = 1;
    if (t.rowwise) {
        // Every token passes over a chunk while it is in cache. Whole groups of 8 rows (kernels
        // take several at a time).
        int64_t rows = (int64_t)(ROWWISE_CHUNK_BYTES / w_row);
        rows = (rows + 7) / 8 * 8;
        t.rows_per_chunk = rows < MIN_ROWS_1 ? MIN_ROWS_1 : rows;
    } else if (act->n_tok == 1) {
        // (With several threads the rows are handed out guided, below; this only decides how
        // many threads are worth waking.)
        int64_t rows = n_out / ((int64_t)nth * 8);
        if (rows < MIN_ROWS_1) rows = MIN_ROWS_1;
        t.rows_per_chunk = rows;
    } else {
        t.rows_per_chunk = row_chunk(n_out, nth, t.tile != NULL);
        t.tok_block = token_block(act->n_tok, act->row_bytes, t.tile != NULL);
        n_tok_blocks = (act->n_tok + t.tok_block - 1) / t.tok_block;
    }
    t.n_row_chunks = (n_out + t.rows_per_chunk - 1) / t.rows_per_chunk;
    t.n_items = t.n_row_chunks * n_tok_blocks;
    if (t.n_items < nth) nth = (int)t.n_items;
    atomic_init(&t.next, nth);
    if (act->n_tok == 1 && nth > 1) {
        t.guided = true;
        atomic_init(&t.next, 0);
    }
    if (nth > 1) gl_threadpool_run(tp, mm_run, &t);
    else mm_run(&t, 0, 1);
}

void gl_matmul(gl_threadpool *tp, const void *w, enum gl_type wtype, int64_t n_out,
               const gl_act *act, float *out) {
    matmul(tp, w, wtype, n_out, act, out, false, NULL);
}

void gl_matmul_rowwise(gl_threadpool *tp, const void *w, enum gl_type wtype, int64_t n_out,
                       gl_act *act, float *out) {
    const gl_gen_nx *gen_nx = act && (unsigned)wtype < GL_TYPE_COUNT ? act_vx(tp, act, wtype) : NULL;
    matmul(tp, w, wtype, n_out, act, out, true, gen_nx);
}

bool gl_matmul_f32(gl_threadpool *tp, const void *w, enum gl_type wtype, int64_t n_in,
                   int64_t n_out, const float *x, int64_t n_tok, float *out) {
    const gl_type_traits *tr = gl_get_type_traits(wtype);
    if (!tr || !tr->vec_dot) return false;
    gl_act a = {0};
    if (!gl_act_prepare(&a, tp, x, n_tok, n_in, tr->vec_dot_type)) return false;
    gl_matmul(tp, w, wtype, n_out, &a, out);
    gl_act_free(&a);
    return true;
}
