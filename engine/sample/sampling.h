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
    // Optional (speculative decoding): save returns a copy of the state accepted tokens
    // changed (NULL when out of memory), restore goes back to such a copy (which stays valid
    // until drop frees it). While a copy exists the constraint must keep it restorable.
    void *(*save)(void *ud);
    void (*restore)(void *ud, const void *state);
    void (*drop)(void *ud, void *state);
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
// Whether accepting a token changes the sampler (penalties on, or a constraint attached).
bool ll_sampler_has_state(const ll_sampler *s);
// A copy of what accepted tokens changed (penalty history, constraint state), to roll the
// sampler back after trying tokens ahead (a speculative draft). The RNG is not part of it, and
// the constraint must not be replaced before the restore. NULL when out of memory or when
// the constraint cannot save its state.
typedef struct ll_sampler_state ll_sampler_state;
ll_sampler_state *ll_sampler_save(ll_sampler *s);
void ll_sampler_restore(ll_sampler *s, const ll_sampler_state *st);
void ll_sampler_state_free(ll_sampler *s, ll_sampler_state *st);
ll_token ll_sampler_draw(ll_sampler *s, const float *w, int32_t n);

#endif
