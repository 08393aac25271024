// Between the sampler chain (sampling.c) and llama.cpp's further samplers (sampling_extra.c):
// DRY, XTC, top-n-sigma, Mirostat 1/2 and the logit bias. sampling.c owns the candidates and
// the order; these functions compute what each sampler keeps or changes.
#ifndef LLAMALITE_SAMPLING_INTERNAL_H
#define LLAMALITE_SAMPLING_INTERNAL_H

#include "llamalite.h"

typedef struct {
    ll_token id;
    float logit;
    float p;   // probability, once a softmax ran
    float key; // sort key of the typical filter
} cand;

// The state of the further samplers: the logit bias, DRY's history and sequence breakers,
// Mirostat's mu.
typedef struct ll_sampler_extra ll_sampler_extra;

// Whether p asks for any of them (else the sampler needs no extra state).
bool extra_wanted(const ll_sampler_params *p);
// NULL when out of memory.
ll_sampler_extra *extra_new(const ll_sampler_params *p, int32_t n_vocab);
void extra_free(ll_sampler_extra *x);
void extra_accept(ll_sampler_extra *x, ll_token t); // DRY's history
void extra_reset(ll_sampler_extra *x);              // history cleared, mu back to 2 tau

// Adds the logit bias to the logits w[n_vocab].
void extra_logit_bias(const ll_sampler_extra *x, float *w);
// DRY: lowers the logits of the tokens that would extend a repeat of the recent history, in
// the dense logits w[n_vocab] when w is not NULL, else in the candidates c[0..n).
void extra_dry(ll_sampler_extra *x, float *w, cand *c, int32_t n);
// XTC, on candidates sorted by descending probability (normalised p) with u uniform in
// [0, 1): how many leading candidates to remove (0: none).
int32_t extra_xtc_drop(const ll_sampler_extra *x, const cand *c, int32_t n, double u);
// Top-n-sigma: keeps the candidates whose logit is within nsigma standard deviations (of
// the candidates' logits) of the largest; returns how many (moved to the front, in order).
int32_t filter_top_n_sigma(cand *c, int32_t n, float nsigma);
// Mirostat, on candidates sorted by descending probability (normalised p): how many of the
// first to keep (at least 1).
int32_t extra_mirostat_keep(const ll_sampler_extra *x, const cand *c, int32_t n, int32_t n_vocab);
// Mirostat learns from the probability the drawn token had.
void extra_mirostat_update(ll_sampler_extra *x, float p);

// What accepted tokens changed (DRY's history, mu), for speculative rollbacks.
void *extra_save(const ll_sampler_extra *x);
void extra_restore(ll_sampler_extra *x, const void *state);
void extra_state_free(void *state);

#endif
