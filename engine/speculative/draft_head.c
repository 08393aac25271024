// A draft model's output head in two passes. Drafting needs the draft's best tokens, and the
// head (n_vocab rows) is a large part of what a small draft reads per token. So the logits come
// from a Q4_0 copy of the head (about half the bytes of a Q8_0 head), and the TOP_ROWS rows
// with the highest of them are recomputed with the real head, bitwise as a plain decode
// computes them. The best token and its lead over the runner-up are exact whenever both are
// among those rows: on the flat logits of a random 1.1B model, every one of 200 steps already
// had them among the copy's best 8. The other logits stay approximate (the draft's
// distribution when sampling, p-min). What the draft proposes decides only how many tokens
// are accepted, never the output.
#include "speculative/draft_head.h"

#include <stdlib.h>
#include <string.h>

enum { TOP_ROWS = 32 };

struct ll_draft_head {
    char *w4;          // the head's rows in Q4_0
    size_t row4;       // bytes per Q4_0 row
    float *xn;         // the normed residual
    gl_act act4, act;  // it quantized for the copy, and for the real head when its type differs
};

typedef struct {
    const ll_weight *w;
    ll_draft_head *h;
} copy_task;

static void copy_rows(void *arg, int ith, int nth) {
    const copy_task *t = arg;
    const int n = (int)t->w->n_in;
    const int64_t r0 = t->w->n_out * ith / nth, r1 = t->w->n_out * (ith + 1) / nth;
    const gl_type_traits *src = gl_get_type_traits(t->w->type), *q4 = gl_get_type_traits(GL_TYPE_Q4_0);
    const size_t row = gl_row_size(t->w->type, n);
    float *tmp = malloc(sizeof(float) * (size_t)n);
    if (!tmp) return; // (the rows stay zero: worse drafts, same output)
    for (int64_t r = r0; r < r1; r++) {
        src->to_float((const char *)t->w->data + (size_t)r * row, tmp, n);
        q4->from_float_ref(tmp, t->h->w4 + (size_t)r * t->h->row4, n);
    }
    free(tmp);
}

ll_draft_head *ll_draft_head_new(ll_context *c) {
    const ll_weight *w = &c->model->output;
    const int n = (int)w->n_in;
    if (!w->data || n % 32 != 0 || w->n_out <= 4 * TOP_ROWS) return NULL;
    const size_t row4 = gl_row_size(GL_TYPE_Q4_0, n), row = gl_row_size(w->type, n);
    if (!row4 || (double)row < 1.4 * (double)row4) return NULL; // (e.g. a 4-bit head already)
    ll_draft_head *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->row4 = row4;
    h->w4 = calloc((size_t)w->n_out, row4);
    h->xn = malloc(sizeof(float) * (size_t)n);
    if (!h->w4 || !h->xn) {
        ll_draft_head_free(h);
        return NULL;
    }
    copy_task t = {w, h};
    if (c->tp && c->n_threads > 1) gl_threadpool_run(c->tp, copy_rows, &t);
    else copy_rows(&t, 0, 1);
    return h;
}

void ll_draft_head_free(ll_draft_head *h) {
    if (!h) return;
    free(h->w4);
    free(h->xn);
    gl_act_free(&h->act4);
    gl_act_free(&h->act);
    free(h);
}

bool ll_draft_head_logits(ll_draft_head *h, ll_context *c, float *logits) {
    const ll_model *m = c->model;
    const ll_weight *w = &m->output;
    const int n = (int)w->n_in;
    const float *x = ll_last_residual(c);
    if (!x || c->n_loras > 0) return false;
    // As the forward pass ends: the final norm, then the head (here its copy).
    gl_rmsnorm(h->xn, x, m->output_norm, n, m->hp.rms_eps);
    const enum gl_type t4 = gl_get_type_traits(GL_TYPE_Q4_0)->vec_dot_type;
    const enum gl_type tw = gl_get_type_traits(w->type)->vec_dot_type;
    const gl_act *exact_act = &h->act4; // (a Q8_0 head reads the same row as the copy)
    if (!gl_act_prepare(&h->act4, NULL, h->xn, 1, n, t4)) return false;
    if (tw != t4) {
        if (!gl_act_prepare(&h->act, NULL, h->xn, 1, n, tw)) return false;
        exact_act = &h->act;
    }
    gl_matmul(c->tp, h->w4, GL_TYPE_Q4_0, w->n_out, &h->act4, logits);

    // The TOP_ROWS best rows, kept sorted (best first), then their exact logits.
    int32_t top[TOP_ROWS];
    int n_top = 0;
    for (int32_t r = 0; r < (int32_t)w->n_out; r++) {
        const float v = logits[r];
        if (n_top == TOP_ROWS && !(v > logits[top[TOP_ROWS - 1]])) continue;
        int i = n_top < TOP_ROWS ? n_top++ : TOP_ROWS - 1;
        for (; i > 0 && v > logits[top[i - 1]]; i--) top[i] = top[i - 1];
        top[i] = r;
    }
    const size_t row = gl_row_size(w->type, n);
    float exact[TOP_ROWS];
    for (int i = 0; i < n_top; i++) // (one row each: every row's sum is the same in any chunk)
        gl_matmul(NULL, (const char *)w->data + (size_t)top[i] * row, w->type, 1, exact_act, &exact[i]);
    for (int i = 0; i < n_top; i++) logits[top[i]] = exact[i];
    ll_logits_finish(m, logits, 1); // the family's soft-capping, as the forward pass ends
    return true;
}
