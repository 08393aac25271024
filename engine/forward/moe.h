// What the two halves of the mixture-of-experts block share: the router (moe_route.c) fills a
// chunk's routes, the experts (moe.c) run them.
#ifndef LLAMALITE_MOE_H
#define LLAMALITE_MOE_H

#include "forward/blocks.h"

// A chunk's routes, in buffers sized for the largest chunk.
typedef struct {
    float *logits;  // [n_tok][n_expert] router scores (plus bias)
    int *sel;       // [n_tok][k] each token's chosen experts, best first
    float *w;       // [n_tok][k] their weights
    float *probs;   // [n_threads][n_expert] scratch: one token's softmax per thread
    float *margins; // [n_threads] scratch: each thread's closest call
} ll_moe_routes;

// Scores and routes the n_tok tokens of x (normed, n_embd each) through layer l's router, and
// lowers c->route_margin to the closest call. False: out of memory.
bool ll_moe_route_chunk(ll_context *c, int l, const float *x, int n_tok, const ll_moe_routes *r);

// Generation's expert choices, for ll_moe_traffic_measure: while buf is set, the i-th one-token
// pass through MoE layer l (i < n_tokens) writes its k choices, best first, to
// buf[(i * n_layer + l) * k ...]. NULL stops. False: out of memory.
bool ll_moe_trace(ll_context *c, int *buf, int n_tokens);

#endif
