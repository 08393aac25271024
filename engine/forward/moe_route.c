// The router of a mixture-of-experts layer: one score per expert for each token of a chunk,
//
//   logits = Wrouter · x (+ bias)
//
// then each token's k experts and their weights by the family's rule (ll_moe_route). For a
// prompt the tokens are split between the threads, each scoring and routing its own share: the
// router is small (n_expert rows), so a matmul split over its rows would give most threads
// nothing to do, and scoring is the one part of routing worth threads at all.
#include <math.h>
#include <stdatomic.h>

#include "forward/moe.h"

// The k largest of v[0..n) into sel, best first (the earlier expert wins a tie).
static void top_k(const float *v, int n, int k, int *sel) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m == k && !(v[i] > v[sel[k - 1]])) continue;
        int j = m < k ? m++ : k - 1;
        for (; j > 0 && v[i] > v[sel[j - 1]]; j--) sel[j] = sel[j - 1];
        sel[j] = i;
    }
}

// p = softmax(v[0..n)), the sum taken in double as the reference does.
static void softmax(const float *v, int n, float *p) {
    float mx = v[0];
    for (int i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (p[i] = expf(v[i] - mx));
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) p[i] *= inv;
}

void ll_moe_route(const ll_hparams *hp, const float *logits, float *probs, int *sel, float *w) {
    const int n = hp->n_expert, k = hp->n_expert_used;
    if (hp->moe_gating == LL_MOE_TOPK_SOFTMAX) {
        top_k(logits, n, k, sel);
        for (int j = 0; j < k; j++) probs[j] = logits[sel[j]];
        softmax(probs, k, w);
        return;
    }
    softmax(logits, n, probs);
    top_k(probs, n, k, sel);
    float sum = 0;
    for (int j = 0; j < k; j++) sum += (w[j] = probs[sel[j]]);
    if (hp->moe_norm_w)
        for (int j = 0; j < k; j++) w[j] /= sum;
}

// How close a routing call came to choosing differently: the last chosen logit minus the best
// logit left out, over the largest |logit| (the softmax keeps the order, so logits decide).
static float route_margin(const float *logits, int n, const int *sel, int k) {
    float left_out = -INFINITY, scale = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(logits[i]) > scale) scale = fabsf(logits[i]);
        bool chosen = false;
        for (int j = 0; j < k; j++) chosen |= sel[j] == i;
        if (!chosen && logits[i] > left_out) left_out = logits[i];
    }
    float last = INFINITY;
    for (int j = 0; j < k; j++) last = fminf(last, logits[sel[j]]);
    return scale > 0 ? (last - left_out) / scale : INFINITY;
}

// Tokens [t0, t1) whose logits are in: the router's bias, the choice, the closest call.
static float choose(const ll_hparams *hp, const float *bias, int t0, int t1, const ll_moe_routes *r, float *probs) {
    const int n_exp = hp->n_expert, k = hp->n_expert_used;
    float margin = INFINITY;
    for (int t = t0; t < t1; t++) {
        float *lg = r->logits + (size_t)t * n_exp;
        if (bias) gl_vec_add(lg, lg, bias, n_exp);
        ll_moe_route(hp, lg, probs, r->sel + (size_t)t * k, r->w + (size_t)t * k);
        margin = fminf(margin, route_margin(lg, n_exp, r->sel + (size_t)t * k, k));
    }
    return margin;
}

typedef struct {
    const ll_hparams *hp;
    const ll_weight *router;
    const float *bias;
    const float *x;
    int n_tok;
    bool exact;              // every row in one-token arithmetic (exact batches)
    const ll_moe_routes *r;
    float *margin;           // [n_threads] each thread's closest call
} route_task;

// This thread's tokens: at least two whenever the chunk has two (a batch's share of one token
// would be summed in the one-token order, so a token's logits would depend on the split).
static void token_share(int n_tok, int ith, int nth, int *t0, int *t1) {
    const int pairs = n_tok / 2;
    *t0 = 2 * (int)((int64_t)pairs * ith / nth);
    *t1 = ith == nth - 1 ? n_tok : 2 * (int)((int64_t)pairs * (ith + 1) / nth);
}

static void route_share(void *arg, int ith, int nth) {
    const route_task *t = arg;
    const int E = t->hp->n_embd, n_exp = t->hp->n_expert;
    int t0, t1;
    token_share(t->n_tok, ith, nth, &t0, &t1);
    t->margin[ith] = INFINITY;
    if (t0 >= t1) return;
    // F32 weights read F32 activations: the input rows themselves, no conversion
    gl_act rows = {.type = GL_TYPE_F32, .n_in = E, .n_tok = t1 - t0, .row_bytes = sizeof(float) * E,
                         .data = (void *)(t->x + (size_t)t0 * E)};
    float *out = t->r->logits + (size_t)t0 * n_exp;
    if (t->exact) gl_matmul_rowwise(NULL, t->router->data, GL_TYPE_F32, n_exp, &rows, out);
    else gl_matmul(NULL, t->router->data, GL_TYPE_F32, n_exp, &rows, out);
    t->margin[ith] = choose(t->hp, t->bias, t0, t1, t->r, t->r->probs + (size_t)ith * n_exp);
}

// Whether the router can be scored in shares of tokens: an F32 matrix that no adapter changes
// and no observer watches (those see one matmul over the whole chunk).
static bool router_shareable(const ll_context *c, int l, const ll_weight *router) {
    if (router->type != GL_TYPE_F32 || router->packed || c->act_hook) return false;
    const int slot = ll_lora_slot(l, LL_ROLE_FFN_GATE_INP);
    for (int i = 0; i < c->n_loras; i++)
        if (c->loras[i].adapter->pairs[slot].a.data && c->loras[i].scale != 0) return false;
    return true;
}

bool ll_moe_route_chunk(ll_context *c, int l, const float *x, int n_tok, const ll_moe_routes *r) {
    const ll_hparams *hp = &c->model->hp;
    const ll_layer *L = &c->model->layers[l];
    const ll_weight *router = &L->w[LL_ROLE_FFN_GATE_INP];
    const float *bias = ll_vec(L, LL_ROLE_FFN_GATE_INP_B);
    float margin = INFINITY;
    if (n_tok >= 4 && c->n_threads > 1 && router_shareable(c, l, router)) {
        route_task t = {.hp = hp, .router = router, .bias = bias, .x = x, .n_tok = n_tok,
                        .exact = c->exact_batches, .r = r, .margin = r->margins};
        gl_threadpool_run(c->tp, route_share, &t);
        for (int i = 0; i < c->n_threads; i++) margin = fminf(margin, r->margins[i]);
    } else {
        c->act_src = NULL;
        if (!ll_matmul(c, router, ll_lora_slot(l, LL_ROLE_FFN_GATE_INP), x, n_tok, r->logits)) return false;
        margin = choose(hp, bias, 0, n_tok, r, r->probs);
    }
    if (margin < c->route_margin) c->route_margin = margin;
    return true;
}
