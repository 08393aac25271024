// Internal sampling interface: the hook a constraint (grammar) plugs into.
// The public sampler API is in llamalite.h (ll_sampler_*).
#ifndef LLAMALITE_SAMPLING_H
#define LLAMALITE_SAMPLING_H

#include "llamalite.h"

// A constraint on which tokens may come next (a grammar, a stop list...). The sampler calls
// apply() on its private copy of the logits first, before penalties and every filter, so the
// filters and the final distribution only ever see allowed tokens. apply() forbids a token by
// setting its logit to -INFINITY. ll_sampler_accept() passes each accepted token to accept()
// (may be NULL) so the constraint can advance its state. A constraint that forbids every token
// makes ll_sampler_sample return -1.
typedef struct {
    void (*apply)(void *ud, float *logits, int32_t n_vocab);
    void (*accept)(void *ud, ll_token t);
    void *ud;
    // Optional (added for grammars). check: whether t alone is allowed next. When set,
    // ll_sampler_sample first samples without apply() and keeps the token if check() allows
    // it, running apply() and sampling again only when it does not: for an allowed token the
    // draw has the same distribution (renormalising over the allowed set), at the cost of one
    // check instead of masking the whole vocabulary. free: called on ud when the constraint is
    // replaced or removed, or the sampler is freed (the sampler then owns ud).
    bool (*check)(void *ud, ll_token t);
    void (*free)(void *ud);
} ll_sampler_constraint;

// Attaches a constraint (copied), or removes it with c == NULL. Tokens accepted before the
// constraint is attached (e.g. the prompt, fed for the penalties) never reach it.
void ll_sampler_set_constraint(ll_sampler *s, const ll_sampler_constraint *c);
// The attached constraint, or NULL.
const ll_sampler_constraint *ll_sampler_get_constraint(const ll_sampler *s);

// For speculative decoding (rejection sampling), drawing from the sampler's seeded RNG:
// a uniform number in [0, 1), and a token drawn from an arbitrary non-negative weight vector
// w[0..n) (need not sum to 1; -1 if it is all zeros).
double ll_sampler_uniform(ll_sampler *s);
ll_token ll_sampler_draw(ll_sampler *s, const float *w, int32_t n);

#endif
