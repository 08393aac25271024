// Weight matmuls for every forward pass: the activation converted once per input buffer, and
// the LoRA adapters attached to the context.
//
// Each adapter attached to the context adds s * B·(A·x) to an adapted weight's output: two thin
// matmuls (rank rows, then rows of rank elements) over all tokens of the chunk at once, on the
// pool like every other matmul. The base weights are only read.

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/blocks.h"
#include "repack.h"

static bool grow(float **buf, size_t *cap, size_t n) {
    if (n <= *cap) return true;
    float *nb = realloc(*buf, n * sizeof(float));
    if (!nb) return false;
    *buf = nb;
    *cap = n;
    return true;
}

// A LoRA product is small (rank rows, or rows of rank elements): below this many weight bytes
// times tokens it runs on the calling thread, as waking the pool for it (about a hundred times
// per generated token) costs more than it saves.
enum { LORA_INLINE_BYTES = 512 << 10 };

static void thin_matmul(ll_context *c, const ll_weight *w, gl_act *act, float *out) {
    const double bytes = (double)gl_row_size(w->type, w->n_in) * (double)w->n_out * (double)act->n_tok;
    gl_threadpool *tp = bytes < LORA_INLINE_BYTES ? NULL : c->tp;
    if (c->exact_batches && act->n_tok > 1) gl_matmul_rowwise(tp, w->data, w->type, w->n_out, act, out);
    else gl_matmul(tp, w->data, w->type, w->n_out, act, out);
}

// The adapters of one weight are summed before they touch its output: the first product lands
// in lora_out with its scale kept aside (one adapter: a single out += s * d), further ones are
// added into lora_out. So the same adapter twice at 0.5 gives bitwise what it gives once at 1.
typedef struct {
    int n;        // products summed so far
    float s0;     // the first one's scale, not yet applied
    size_t len;   // floats in lora_out
} lora_sum;

// F32 adapters are multiplied in the reference's F32 orders (gl_dot_f32_tok for one token and
// each row of an exact batch, gl_dot_f32_batch for a batch), so that a model whose activations
// are re-quantized every layer sees the same roundings.
typedef struct {
    const ll_weight *w;
    const float *x;
    float *out;
    int n_tok;
    bool batch;
} f32_product;

// out[t][r] = row r of w · x[t], tokens split over the threads.
static void f32_product_task(void *arg, int ith, int nth) {
    const f32_product *p = arg;
    const int n_in = (int)p->w->n_in, n_out = (int)p->w->n_out;
    int lo, hi;
    ll_split(p->n_tok, ith, nth, &lo, &hi);
    for (int t = lo; t < hi; t++)
        for (int r = 0; r < n_out; r++) {
            const float *wr = (const float *)p->w->data + (size_t)r * n_in, *xt = p->x + (size_t)t * n_in;
            p->out[(size_t)t * n_out + r] = p->batch ? gl_dot_f32_batch(wr, xt, n_in) : gl_dot_f32_tok(wr, xt, n_in);
        }
}

// o[i] += w[i] * s with the product rounded before the add (no fused multiply-add).
static void add_products(float *o, const float *w, float s, int n) {
    for (int i = 0; i < n; i++) o[i] += w[i] * s; // -std=c11: never contracted into an FMA
}

// out = W · lora_tmp for n_tok rows. W has rows of rank elements (n_in = rank): for one token
// its transpose wt turns the n_out short dot products into rank long vector adds. Exact batches
// take the same path for every token, so each row is what a one-token decode gives.
static bool second_product(ll_context *c, const ll_weight *w, const float *wt, int n_tok, float *out) {
    const size_t n_out = (size_t)w->n_out;
    if (n_tok == 1 || c->exact_batches) {
        for (int t = 0; t < n_tok; t++) {
            float *o = out + (size_t)t * n_out;
            const float *x = c->lora_tmp + (size_t)t * w->n_in;
            memset(o, 0, n_out * sizeof(float));
            // Each output is the reference's one-token F32 dot of rank elements: with rank < 32
            // that is its scalar tail, every product rounded and then added in order.
            for (int64_t k = 0; k < w->n_in; k++) add_products(o, wt + (size_t)k * n_out, x[k], (int)n_out);
        }
        return true;
    }
    if (w->type == GL_TYPE_F32 && w->n_in % 8 == 0) {
        for (int t = 0; t < n_tok; t++)
            gl_dot_f32_lanes8(wt, (int)w->n_in, (int)n_out, c->lora_tmp + (size_t)t * w->n_in, out + (size_t)t * n_out);
        return true;
    }
    const enum gl_type vt = gl_get_type_traits(w->type)->vec_dot_type;
    if (!gl_act_prepare(&c->lora_act2, c->tp, c->lora_tmp, n_tok, w->n_in, vt)) return false;
    thin_matmul(c, w, &c->lora_act2, out);
    return true;
}

// Adds s * W · lora_tmp (n_tok rows of w->n_in) to the sum; wt is W transposed.
static bool lora_accum(ll_context *c, const ll_weight *w, const float *wt, int n_tok, float s, lora_sum *sum) {
    const size_t n = (size_t)n_tok * (size_t)w->n_out;
    if (!grow(&c->lora_out, &c->lora_out_cap, n)) return false;
    if (sum->n == 0) {
        if (!second_product(c, w, wt, n_tok, c->lora_out)) return false;
        sum->s0 = s;
    } else {
        if (!grow(&c->lora_out2, &c->lora_out2_cap, n)) return false;
        if (sum->n == 1) gl_vec_scale(c->lora_out, sum->s0, (int)n);
        if (!second_product(c, w, wt, n_tok, c->lora_out2)) return false;
        gl_vec_mad(c->lora_out, c->lora_out2, s, (int)n);
    }
    sum->n++;
    sum->len = n;
    return true;
}

static void lora_flush(ll_context *c, const lora_sum *sum, float *out) {
    if (sum->n == 1) gl_vec_mad(out, c->lora_out, sum->s0, (int)sum->len);
    else if (sum->n > 1) gl_vec_add(out, out, c->lora_out, (int)sum->len);
}

// lora_tmp = W · x (n_tok rows), x converted once for every adapter reading the same input.
static bool lora_first(ll_context *c, const ll_weight *w, const float *x, int n_tok) {
    if (w->type == GL_TYPE_F32) {
        if (!grow(&c->lora_tmp, &c->lora_tmp_cap, (size_t)n_tok * (size_t)w->n_out)) return false;
        f32_product p = {w, x, c->lora_tmp, n_tok, n_tok > 1 && !c->exact_batches};
        const double bytes = (double)w->n_in * (double)w->n_out * 4.0 * n_tok;
        if (bytes < LORA_INLINE_BYTES || c->n_threads == 1) f32_product_task(&p, 0, 1);
        else gl_threadpool_run(c->tp, f32_product_task, &p);
        return true;
    }
    const enum gl_type vt = gl_get_type_traits(w->type)->vec_dot_type;
    if (c->lora_act_src != x || c->lora_act.type != vt || c->lora_act.n_tok != n_tok ||
        c->lora_act.n_in != w->n_in) {
        c->lora_act_src = NULL;
        if (!gl_act_prepare(&c->lora_act, c->tp, x, n_tok, w->n_in, vt)) return false;
        c->lora_act_src = x;
    }
    if (!grow(&c->lora_tmp, &c->lora_tmp_cap, (size_t)n_tok * (size_t)w->n_out)) return false;
    thin_matmul(c, w, &c->lora_act, c->lora_tmp);
    return true;
}

// The adapters of weight `slot`: out += sum of s * B·(A·x). For a stack of experts (expert >= 0)
// the adapters' A and B are stacks too, and expert's own pair applies.
static bool lora_apply(ll_context *c, int slot, int expert, const float *x, int n_tok, float *out) {
    lora_sum sum = {0};
    for (int i = 0; i < c->n_loras; i++) {
        const ll_lora_use *u = &c->loras[i];
        const ll_lora_pair *p = &u->adapter->pairs[slot];
        if (!p->a.data || u->scale == 0) continue;
        ll_weight a = p->a, b = p->b;
        const float *bt = p->bt;
        if (expert >= 0) {
            a = ll_expert(&p->a, expert), b = ll_expert(&p->b, expert);
            bt += (size_t)expert * (size_t)p->b.n_in * (size_t)p->b.n_out;
        }
        if (!lora_first(c, &a, x, n_tok) || !lora_accum(c, &b, bt, n_tok, u->scale * p->scale, &sum)) return false;
    }
    lora_flush(c, &sum, out);
    return true;
}

// A tied output head reads token_embd, so its adapters apply transposed:
// logits += s * A · (Bᵀ · x), A having one row of rank elements per token.
static bool lora_apply_tied_output(ll_context *c, const float *x, int n_tok, float *out) {
    const int slot = ll_lora_slot_embd(c->model);
    lora_sum sum = {0};
    for (int i = 0; i < c->n_loras; i++) {
        const ll_lora_use *u = &c->loras[i];
        const ll_lora_pair *p = &u->adapter->pairs[slot];
        if (!p->a.data || u->scale == 0) continue;
        const ll_weight bt = {p->bt, GL_TYPE_F32, p->b.n_out, p->rank, NULL};
        if (!lora_first(c, &bt, x, n_tok) || !lora_accum(c, &p->a, p->at, n_tok, u->scale * p->scale, &sum))
            return false;
    }
    lora_flush(c, &sum, out);
    return true;
}

// Embedding rows: x[t] += s * B · A[token t].
bool ll_lora_embd(ll_context *c, const ll_token *tokens, int n_tok) {
    const int slot = ll_lora_slot_embd(c->model);
    lora_sum sum = {0};
    for (int i = 0; i < c->n_loras; i++) {
        const ll_lora_use *u = &c->loras[i];
        const ll_lora_pair *p = &u->adapter->pairs[slot];
        if (!p->a.data || u->scale == 0) continue;
        if (!grow(&c->lora_tmp, &c->lora_tmp_cap, (size_t)n_tok * (size_t)p->rank)) return false;
        const gl_type_traits *tr = gl_get_type_traits(p->a.type);
        const size_t row = gl_row_size(p->a.type, p->rank);
        for (int t = 0; t < n_tok; t++)
            tr->to_float((const char *)p->a.data + (size_t)tokens[t] * row, c->lora_tmp + (size_t)t * p->rank,
                         p->rank);
        if (!lora_accum(c, &p->b, p->bt, n_tok, u->scale * p->scale, &sum)) return false;
    }
    lora_flush(c, &sum, c->x);
    return true;
}

// ---- matmul with a shared activation ------------------------------------------------------

// out = W · x, x converted to W's activation type unless the last conversion was of x already.
static bool base_matmul(ll_context *c, const ll_weight *w, const float *x, int n_tok, float *out) {
    const enum gl_type vt = gl_get_type_traits(w->type)->vec_dot_type;
    if (c->act_src != x || c->act.type != vt || c->act.n_tok != n_tok || c->act.n_in != w->n_in) {
        c->lora_act_src = NULL; // x's buffer may hold new values: the LoRA copy is stale too
        if (!gl_act_prepare(&c->act, c->tp, x, n_tok, w->n_in, vt)) {
            c->act_src = NULL;
            return false;
        }
        c->act_src = x;
    }
    // (the repacked kernel is batch-invariant: it serves exact batches as it is)
    if (w->packed) gl_matmul_repacked(c->tp, w->packed, w->type, w->n_out, &c->act, out);
    else if (c->exact_batches && n_tok > 1) gl_matmul_rowwise(c->tp, w->data, w->type, w->n_out, &c->act, out);
    else gl_matmul(c->tp, w->data, w->type, w->n_out, &c->act, out);
    return true;
}

bool ll_matmul(ll_context *c, const ll_weight *w, int slot, const float *x, int n_tok, float *out) {
    if (c->act_hook) c->act_hook(c->act_hook_ud, slot, -1, x, n_tok, (int)w->n_in);
    if (!base_matmul(c, w, x, n_tok, out)) return false;
    if (c->n_loras == 0 || slot < 0) return true;
    if (slot == ll_lora_slot_output(c->model) && w->data == c->model->tok_embd.data)
        return lora_apply_tied_output(c, x, n_tok, out);
    return lora_apply(c, slot, -1, x, n_tok, out);
}

bool ll_matmul_expert(ll_context *c, const ll_weight *stack, int slot, int expert, const float *x, int n_tok,
                      float *out) {
    if (c->act_hook) c->act_hook(c->act_hook_ud, slot, expert, x, n_tok, (int)stack->n_in);
    const ll_weight w = ll_expert(stack, expert);
    if (!base_matmul(c, &w, x, n_tok, out)) return false;
    return c->n_loras == 0 || lora_apply(c, slot, expert, x, n_tok, out);
}
