// Token sampling: penalties, top-k, typical, top-p, min-p, temperature, then a seeded draw,
// in llama-cli's default order and with its semantics (Feb 2025):
//   - top-p keeps the smallest prefix of the candidates, by descending probability, whose
//     cumulative probability reaches p (>=); at least one token;
//   - min-p keeps the tokens whose probability is at least p times the largest one;
//   - typical-p keeps the tokens whose surprise -log p is closest to the entropy, in that
//     order, until their cumulative probability exceeds p (>);
//   - each filter renormalises over what the previous ones kept, and the temperature comes
//     last, so it reshapes the final distribution but not what the filters keep;
//   - temp <= 0 keeps only the highest logit (greedy).
// One deliberate difference: llama-cli passes min_keep = 0, which its typical filter turns
// into SIZE_MAX and so never cuts anything; here typical-p works as documented (min_keep 1).
// The candidates are (token, logit) pairs; top-k picks its k with a bounded heap (O(n log k)),
// and top-p / typical without top-k select by probability mass in O(n) (no full sort).
// A constraint (grammar) plugs in through sampling.h and masks the logits before anything.
// llama.cpp's other samplers (DRY, XTC, top-n-sigma, Mirostat 1/2, logit bias, a chosen
// order) are in sampling_extra.c; this file runs them at their place in the chain.
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llamalite.h"
#include "sample/sampling.h"
#include "sample/sampling_internal.h"

struct ll_sampler {
    ll_sampler_params par;
    int32_t n_vocab;
    uint32_t seed;     // the seed actually used (random when par.seed was LL_DEFAULT_SEED)
    uint64_t rng[4];   // xoshiro256**

    // Penalty history: the last repeat_last_n accepted tokens (a ring), or all of them when
    // repeat_last_n is -1. count[t] is how often t occurs in it; distinct[] lists the tokens
    // with count > 0 and where[t] is t's index there, so the penalties cost O(distinct).
    ll_token *hist;
    int32_t hist_cap, hist_len, hist_head;
    int32_t *count, *distinct, *where;
    int32_t n_distinct;

    ll_sampler_constraint constraint;
    bool has_constraint;

    float *work;  // n_vocab: the logits after constraint and penalties
    cand *cands;  // n_vocab: the surviving candidates

    ll_sampler_extra *extra; // DRY, XTC, Mirostat, logit bias, order (NULL: none of them)
};

// ---- random numbers -----------------------------------------------------------------------

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    const uint64_t result = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

// Uniform in [0, 1) with 53 random bits.
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

static void rng_seed(uint64_t s[4], uint32_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s[i] = splitmix64(&x);
}

static uint32_t random_seed(void) {
    uint32_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    bool ok = f && fread(&v, sizeof v, 1, f) == 1;
    if (f) fclose(f);
    if (!ok) {
        struct timespec ts;
        timespec_get(&ts, TIME_UTC);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        x ^= (uint64_t)(uintptr_t)&v;
        v = (uint32_t)splitmix64(&x);
    }
    // Reporting LL_DEFAULT_SEED would not reproduce the run: it means "random" again.
    return v == LL_DEFAULT_SEED ? v - 1 : v;
}

// ---- parameters and lifetime --------------------------------------------------------------

ll_sampler_params ll_sampler_default_params(void) {
    ll_sampler_params p = {
        .temp = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .typical_p = 1.0f,
        .repeat_last_n = 64,
        .repeat_penalty = 1.0f,
        .freq_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .seed = LL_DEFAULT_SEED,
        .dry_multiplier = 0.0f,
        .dry_base = 1.75f,
        .dry_allowed_length = 2,
        .dry_penalty_last_n = -1,
        .dry_breakers = {"\n", ":", "\"", "*"},
        .xtc_probability = 0.0f,
        .xtc_threshold = 0.1f,
        .top_n_sigma = -1.0f,
        .mirostat = 0,
        .mirostat_tau = 5.0f,
        .mirostat_eta = 0.1f,
    };
    return p;
}

static bool penalties_active(const ll_sampler_params *p) {
    return p->repeat_last_n != 0 &&
           (p->repeat_penalty != 1.0f || p->freq_penalty != 0.0f || p->presence_penalty != 0.0f);
}

ll_sampler *ll_sampler_new(const ll_sampler_params *p, int32_t n_vocab) {
    if (n_vocab <= 0) return NULL;
    ll_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->par = p ? *p : ll_sampler_default_params();
    if (s->par.repeat_last_n < -1) s->par.repeat_last_n = 0;
    if (s->par.mirostat < 0 || s->par.mirostat > 2) s->par.mirostat = 0;
    s->n_vocab = n_vocab;
    s->seed = s->par.seed == LL_DEFAULT_SEED ? random_seed() : s->par.seed;
    rng_seed(s->rng, s->seed);

    s->work = malloc((size_t)n_vocab * sizeof *s->work);
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    if (!s->work || !s->cands) goto fail;
    if (extra_wanted(&s->par) && !(s->extra = extra_new(&s->par, n_vocab))) goto fail;
    if (penalties_active(&s->par)) {
        s->count = calloc((size_t)n_vocab, sizeof *s->count);
        s->distinct = malloc((size_t)n_vocab * sizeof *s->distinct);
        s->where = malloc((size_t)n_vocab * sizeof *s->where);
        if (!s->count || !s->distinct || !s->where) goto fail;
        if (s->par.repeat_last_n > 0) {
            s->hist_cap = s->par.repeat_last_n;
            s->hist = malloc((size_t)s->hist_cap * sizeof *s->hist);
            if (!s->hist) goto fail;
        }
    }
    return s;
fail:
    ll_sampler_free(s);
    return NULL;
}

void ll_sampler_free(ll_sampler *s) {
    if (!s) return;
    ll_sampler_set_constraint(s, NULL);
    free(s->hist);
    free(s->count);
    free(s->distinct);
    free(s->where);
    free(s->work);
    free(s->cands);
    extra_free(s->extra);
    free(s);
}

uint32_t ll_sampler_seed(const ll_sampler *s) { return s ? s->seed : 0; }

void ll_sampler_set_seed(ll_sampler *s, uint32_t seed) {
    if (!s) return;
    s->par.seed = seed;
    s->seed = seed == LL_DEFAULT_SEED ? random_seed() : seed;
    rng_seed(s->rng, s->seed);
}

void ll_sampler_copy_rng(ll_sampler *dst, const ll_sampler *src) {
    if (!dst || !src) return;
    dst->seed = src->seed;
    memcpy(dst->rng, src->rng, sizeof dst->rng);
}

void ll_sampler_set_constraint(ll_sampler *s, const ll_sampler_constraint *c) {
    if (!s) return;
    if (s->has_constraint && s->constraint.free && !(c && c->ud == s->constraint.ud))
        s->constraint.free(s->constraint.ud);
    s->has_constraint = c && c->apply;
    if (s->has_constraint) s->constraint = *c;
    else memset(&s->constraint, 0, sizeof s->constraint);
}

const ll_sampler_constraint *ll_sampler_get_constraint(const ll_sampler *s) {
    return s && s->has_constraint ? &s->constraint : NULL;
}

// ---- penalty history ----------------------------------------------------------------------

static void count_add(ll_sampler *s, ll_token t) {
    if (s->count[t]++ == 0) {
        s->where[t] = s->n_distinct;
        s->distinct[s->n_distinct++] = t;
    }
}

static void count_remove(ll_sampler *s, ll_token t) {
    if (--s->count[t] == 0) {
        ll_token last = s->distinct[--s->n_distinct];
        s->distinct[s->where[t]] = last;
        s->where[last] = s->where[t];
    }
}

void ll_sampler_accept(ll_sampler *s, ll_token t) {
    if (!s || t < 0 || t >= s->n_vocab) return;
    if (s->has_constraint && s->constraint.accept) s->constraint.accept(s->constraint.ud, t);
    if (s->extra) extra_accept(s->extra, t);
    if (!s->count) return; // penalties off: nothing to remember
    if (s->hist_cap > 0) {
        if (s->hist_len == s->hist_cap) {
            count_remove(s, s->hist[s->hist_head]); // the oldest leaves the window
        } else {
            s->hist_len++;
        }
        s->hist[s->hist_head] = t;
        s->hist_head = (s->hist_head + 1) % s->hist_cap;
    }
    count_add(s, t); // with repeat_last_n == -1 the counts alone are the whole history
}

void ll_sampler_reset(ll_sampler *s) {
    if (!s) return;
    if (s->count) {
        for (int32_t i = 0; i < s->n_distinct; i++) s->count[s->distinct[i]] = 0;
    }
    s->n_distinct = 0;
    s->hist_len = s->hist_head = 0;
    if (s->extra) extra_reset(s->extra);
}

// The logit of a token seen count > 0 times in the window, after the penalties.
static float penalized(const ll_sampler *s, float l, int32_t count) {
    const float rep = s->par.repeat_penalty;
    // Dividing a negative logit would make the token more likely: multiply it instead.
    l = l <= 0.0f ? l * rep : l / rep;
    return l - (float)count * s->par.freq_penalty - s->par.presence_penalty;
}

static void apply_penalties(ll_sampler *s, float *logits) {
    for (int32_t i = 0; i < s->n_distinct; i++) {
        ll_token t = s->distinct[i];
        logits[t] = penalized(s, logits[t], s->count[t]);
    }
}

// The same on candidates (a chosen order puts the penalties after other samplers).
static void penalize_cands(ll_sampler *s, cand *c, int32_t n) {
    if (!s->count) return;
    for (int32_t i = 0; i < n; i++)
        if (s->count[c[i].id] > 0) c[i].logit = penalized(s, c[i].logit, s->count[c[i].id]);
}

// ---- candidate ordering -------------------------------------------------------------------

// The candidate order: higher logit first, lower id first among equals (deterministic).
static inline bool ranks_above(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

// Min-heap on c[0..n) by rank (the root is the weakest kept candidate).
static void heap_sift_down(cand *c, int32_t n, int32_t i) {
    cand x = c[i];
    for (;;) {
        int32_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && ranks_above(&c[child], &c[child + 1])) child++;
        if (!ranks_above(&x, &c[child])) break;
        c[i] = c[child];
        i = child;
    }
    c[i] = x;
}

static void heap_build(cand *c, int32_t n) {
    for (int32_t i = n / 2 - 1; i >= 0; i--) heap_sift_down(c, n, i);
}

// Turns a min-heap into descending rank order in place.
static void heap_sort_desc(cand *c, int32_t n) {
    for (int32_t end = n - 1; end > 0; end--) {
        cand t = c[0]; c[0] = c[end]; c[end] = t;
        heap_sift_down(c, end, 0);
    }
}

// Reorders c[0..n) so that c[0..k) are its k best candidates in descending order.
static void partial_sort_desc(cand *c, int32_t n, int32_t k) {
    if (k > n) k = n;
    if (k <= 0) return;
    heap_build(c, k);
    for (int32_t i = k; i < n; i++) {
        if (ranks_above(&c[i], &c[0])) {
            cand t = c[0]; c[0] = c[i]; c[i] = t;
            heap_sift_down(c, k, 0);
        }
    }
    heap_sort_desc(c, k);
}

// The k best tokens of logits[0..n), descending, into out[0..k), straight from the array:
// only tokens beating the current k-th best touch the heap.
static void top_k_from_logits(const float *logits, int32_t n, int32_t k, cand *out) {
    for (int32_t i = 0; i < k; i++) out[i] = (cand){ .id = i, .logit = logits[i] };
    heap_build(out, k);
    for (int32_t i = k; i < n; i++) {
        // Strictly greater: on a tie the earlier (lower) id ranks above.
        if (logits[i] > out[0].logit) {
            out[0] = (cand){ .id = i, .logit = logits[i] };
            heap_sift_down(out, k, 0);
        }
    }
    heap_sort_desc(out, k);
}

static int cmp_key_asc(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

// ---- the filters --------------------------------------------------------------------------

// Softmax of the candidates' logits into p (normalised); returns nothing.
static void softmax(cand *c, int32_t n) {
    float max = c[0].logit;
    for (int32_t i = 1; i < n; i++) if (c[i].logit > max) max = c[i].logit;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - max);
        sum += c[i].p;
    }
    const float inv = (float)(1.0 / sum);
    for (int32_t i = 0; i < n; i++) c[i].p *= inv;
}

// Order of a mass cut: by rank (top-p) or by ascending key (typical), ids breaking ties.
static inline bool comes_first(const cand *a, const cand *b, bool by_key) {
    if (!by_key) return ranks_above(a, b);
    return a->key < b->key || (a->key == b->key && a->id < b->id);
}

// The shortest prefix, in the given order, whose probability reaches p (cum >= p) or, when
// strict, exceeds it (cum > p); moved to c[0..k), unsorted, and k returned (n if the sum
// never gets there). A quickselect on probability mass, O(n) expected, so neither top-p nor
// typical sorts the vocabulary; nothing downstream needs the kept set in order.
static int32_t select_mass(cand *c, int32_t n, double p, bool by_key, bool strict) {
    double need = p;
    int32_t lo = 0, hi = n; // c[0..lo) is taken; the cut lies in [lo, hi)
    while (hi - lo > 32) {
        // Median-of-three pivot, moved to hi-1, then a Lomuto partition of [lo, hi-1).
        int32_t a = lo, b = lo + (hi - lo) / 2, z = hi - 1;
        if (comes_first(&c[b], &c[a], by_key)) { int32_t t = a; a = b; b = t; }
        if (comes_first(&c[z], &c[b], by_key)) { b = z; if (comes_first(&c[b], &c[a], by_key)) b = a; }
        cand t = c[b]; c[b] = c[hi - 1]; c[hi - 1] = t;
        const cand pivot = c[hi - 1];
        int32_t store = lo;
        double before = 0.0;
        for (int32_t i = lo; i < hi - 1; i++) {
            if (comes_first(&c[i], &pivot, by_key)) {
                before += c[i].p;
                t = c[i]; c[i] = c[store]; c[store] = t;
                store++;
            }
        }
        c[hi - 1] = c[store];
        c[store] = pivot;
        if (strict ? before > need : before >= need) {
            hi = store;                 // the cut is among the ones before the pivot
        } else {
            need -= before + pivot.p;   // all of those and the pivot are in
            lo = store + 1;
            if (strict ? need < 0.0 : need <= 0.0) return lo;
        }
    }
    if (by_key) qsort(c + lo, (size_t)(hi - lo), sizeof *c, cmp_key_asc);
    else partial_sort_desc(c + lo, hi - lo, hi - lo);
    for (int32_t i = lo; i < hi; i++) {
        need -= c[i].p;
        if (strict ? need < 0.0 : need <= 0.0) return i + 1;
    }
    return hi; // rounding kept the sum just short of p: keep what is left
}

// Keeps the tokens whose surprise -log p is closest to the entropy until they exceed p.
static int32_t filter_typical(cand *c, int32_t n, float p) {
    softmax(c, n);
    double entropy = 0.0;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].p > 0.0f) entropy -= (double)c[i].p * log(c[i].p);
    }
    for (int32_t i = 0; i < n; i++) {
        c[i].key = c[i].p > 0.0f ? fabsf(-logf(c[i].p) - (float)entropy) : INFINITY;
    }
    return select_mass(c, n, p, true, true);
}

// c must hold normalised p. Already sorted (after top-k): a prefix walk.
static int32_t filter_top_p(cand *c, int32_t n, bool sorted, float p) {
    if (!sorted) return select_mass(c, n, p, false, false);
    double cum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (cum >= p) return i + 1;
    }
    return n;
}

static int32_t filter_min_p(cand *c, int32_t n, float p) {
    float max = c[0].logit;
    for (int32_t i = 1; i < n; i++) if (c[i].logit > max) max = c[i].logit;
    // p_i >= p * p_max  <=>  logit_i >= max + log(p); keeps the order (and sortedness).
    const float min_logit = max + logf(p);
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].logit >= min_logit) c[m++] = c[i];
    }
    return m;
}

// Keeps only the best candidate (greedy): returns 1.
static int32_t keep_best(cand *c, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) if (ranks_above(&c[i], &c[best])) best = i;
    c[0] = c[best];
    c[0].p = 1.0f;
    return 1;
}

static void divide_by_temp(cand *c, int32_t n, float temp) {
    if (temp == 1.0f) return;
    for (int32_t i = 0; i < n; i++) c[i].logit /= temp;
}

// Every token that is not forbidden, in id order.
static int32_t gather(const float *w, int32_t nv, cand *c) {
    int32_t n = 0;
    for (int32_t i = 0; i < nv; i++) {
        if (w[i] != -INFINITY) c[n++] = (cand){ .id = i, .logit = w[i] };
    }
    return n;
}

// Sorted by descending probability, normalised (what XTC and Mirostat look at).
static void sort_by_p(cand *c, int32_t n, bool sorted) {
    if (!sorted) partial_sort_desc(c, n, n);
    softmax(c, n);
}

// XTC: drops the leading candidates it removes (c sorted, normalised).
static int32_t apply_xtc(ll_sampler *s, cand *c, int32_t n) {
    int32_t drop = extra_xtc_drop(s->extra, c, n, rng_uniform(s->rng));
    if (drop > 0) memmove(c, c + drop, sizeof *c * (size_t)(n - drop));
    return n - drop;
}

static bool xtc_on(const ll_sampler_params *P) {
    return P->xtc_probability > 0.0f && P->xtc_threshold <= 0.5f;
}

// llama-cli's default order, with shortcuts it allows: greedy is an argmax when every filter
// keeps the top token, and min-p runs before top-p (see below).
static int32_t chain_default(ll_sampler *s, float *w) {
    const ll_sampler_params *P = &s->par;
    const int32_t nv = s->n_vocab;
    cand *c = s->cands;
    if (s->count) apply_penalties(s, w);
    if (s->extra) extra_dry(s->extra, w, NULL, 0);

    const bool greedy = !(P->temp > 0.0f);
    const bool typical = P->typical_p < 1.0f;

    // Greedy without typical and XTC: every other filter keeps the top token, so it is argmax.
    if (greedy && !typical && !xtc_on(P)) {
        int32_t best = 0;
        for (int32_t i = 1; i < nv; i++) if (w[i] > w[best]) best = i;
        if (w[best] == -INFINITY) return 0;
        c[0] = (cand){ .id = best, .logit = w[best], .p = 1.0f };
        return 1;
    }

    int32_t n;
    bool sorted;
    if (P->top_k > 0 && P->top_k < nv) {
        top_k_from_logits(w, nv, P->top_k, c);
        n = P->top_k;
        sorted = true;
    } else {
        n = gather(w, nv, c);
        sorted = false;
    }
    while (n > 0 && c[n - 1].logit == -INFINITY) n--; // forbidden tokens never survive
    if (n == 0) return 0;

    if (typical) {
        n = filter_typical(c, n, P->typical_p);
        sorted = false;
    }
    if (P->top_p < 1.0f) {
        // Both cuts are prefixes of the same order and min-p depends only on ratios to the top
        // probability, which top-p's renormalisation keeps: min-p first, on the probabilities
        // top-p sees, gives the same set and leaves top-p far fewer candidates.
        softmax(c, n);
        if (P->min_p > 0.0f) n = filter_min_p(c, n, P->min_p);
        n = filter_top_p(c, n, sorted, P->top_p);
    } else if (P->min_p > 0.0f) {
        n = filter_min_p(c, n, P->min_p);
    }
    if (xtc_on(P)) {
        sort_by_p(c, n, sorted && !typical);
        n = apply_xtc(s, c, n);
    }

    if (greedy) return keep_best(c, n);
    divide_by_temp(c, n, P->temp);
    softmax(c, n);
    return n;
}

// --samplers: each sampler in the order given (those not named do not run), as llama.cpp
// chains them; temperature <= 0 keeps only the top candidate where 't' stands.
static int32_t chain_in_order(ll_sampler *s, float *w) {
    const ll_sampler_params *P = &s->par;
    cand *c = s->cands;
    int32_t n = gather(w, s->n_vocab, c);
    bool sorted = false;
    for (const char *o = P->order; *o && n > 0; o++) {
        switch (*o) {
        case 'e': penalize_cands(s, c, n); sorted = false; break;
        case 'd': if (s->extra) extra_dry(s->extra, NULL, c, n); sorted = false; break;
        case 'k':
            if (P->top_k > 0 && P->top_k < n) {
                partial_sort_desc(c, n, P->top_k);
                n = P->top_k;
                sorted = true;
            }
            break;
        case 'y': if (P->typical_p < 1.0f) n = filter_typical(c, n, P->typical_p), sorted = false; break;
        case 'p':
            if (P->top_p < 1.0f) {
                softmax(c, n);
                n = filter_top_p(c, n, sorted, P->top_p);
            }
            break;
        case 'm': if (P->min_p > 0.0f) n = filter_min_p(c, n, P->min_p); break;
        case 'x':
            if (xtc_on(P)) {
                sort_by_p(c, n, sorted);
                sorted = true;
                n = apply_xtc(s, c, n);
            }
            break;
        case 't':
            if (!(P->temp > 0.0f)) n = keep_best(c, n);
            else divide_by_temp(c, n, P->temp);
            break;
        }
    }
    if (n > 0) softmax(c, n);
    return n;
}

// --top-nsigma: llama.cpp's chain top-k, temperature, top-n-sigma (nothing else).
static int32_t chain_top_n_sigma(ll_sampler *s, float *w) {
    const ll_sampler_params *P = &s->par;
    cand *c = s->cands;
    int32_t n;
    if (P->top_k > 0 && P->top_k < s->n_vocab) {
        top_k_from_logits(w, s->n_vocab, P->top_k, c);
        n = P->top_k;
        while (n > 0 && c[n - 1].logit == -INFINITY) n--;
    } else {
        n = gather(w, s->n_vocab, c);
    }
    if (n == 0) return 0;
    if (!(P->temp > 0.0f)) return keep_best(c, n);
    divide_by_temp(c, n, P->temp);
    n = filter_top_n_sigma(c, n, P->top_n_sigma);
    softmax(c, n);
    return n;
}

// --mirostat 1/2: llama.cpp's chain temperature, Mirostat (nothing else).
static int32_t chain_mirostat(ll_sampler *s, float *w) {
    const ll_sampler_params *P = &s->par;
    cand *c = s->cands;
    int32_t n = gather(w, s->n_vocab, c);
    if (n == 0) return 0;
    if (!(P->temp > 0.0f)) return keep_best(c, n);
    divide_by_temp(c, n, P->temp);
    sort_by_p(c, n, false);
    n = extra_mirostat_keep(s->extra, c, n, s->n_vocab);
    softmax(c, n);
    return n;
}

// Runs the whole chain on logits; leaves the final candidates with normalised p in s->cands
// and returns how many there are (0 when every token is forbidden).
static int32_t run_chain(ll_sampler *s, const float *logits, bool constrain) {
    const int32_t nv = s->n_vocab;
    float *w = s->work;

    // Private copy; NaN becomes -inf and +inf the largest float, so the softmax stays finite.
    // (Plain compares, not fmaxf/fminf: they vectorise instead of costing a call per token.)
    for (int32_t i = 0; i < nv; i++) {
        float x = logits[i];
        x = x >= -FLT_MAX ? x : -INFINITY;
        w[i] = x <= FLT_MAX ? x : FLT_MAX;
    }
    if (s->has_constraint && constrain) s->constraint.apply(s->constraint.ud, w, nv);
    if (s->extra) extra_logit_bias(s->extra, w);

    if (s->par.mirostat) return chain_mirostat(s, w);
    if (s->par.top_n_sigma >= 0.0f) return chain_top_n_sigma(s, w);
    if (s->par.order[0] && strcmp(s->par.order, "edkypmxt") != 0) return chain_in_order(s, w);
    return chain_default(s, w);
}

// ---- public entry points ------------------------------------------------------------------

// A draw from the n final candidates: its index, -1 when there are none.
static int32_t draw_index(ll_sampler *s, int32_t n) {
    if (n <= 1) return n - 1;
    // Inverse CDF over the candidates; the last one absorbs any rounding shortfall.
    double u = rng_uniform(s->rng), cum = 0.0;
    for (int32_t i = 0; i < n - 1; i++) {
        cum += s->cands[i].p;
        if (u < cum) return i;
    }
    return n - 1;
}

// Runs the chain and draws; Mirostat then learns from the drawn token's probability.
static ll_token sample_once(ll_sampler *s, const float *logits, bool constrain) {
    int32_t i = draw_index(s, run_chain(s, logits, constrain));
    if (i < 0) return -1;
    if (s->par.mirostat) extra_mirostat_update(s->extra, s->cands[i].p);
    return s->cands[i].id;
}

ll_token ll_sampler_sample(ll_sampler *s, const float *logits) {
    if (!s || !logits) return -1;
    if (s->has_constraint && s->constraint.check) {
        // Optimistic: the unconstrained pick is usually allowed (see sampling.h). Mirostat
        // learns from every draw, so it takes the constrained path at once.
        if (!s->par.mirostat) {
            ll_token t = sample_once(s, logits, false);
            if (t >= 0 && s->constraint.check(s->constraint.ud, t)) return t;
        }
    }
    return sample_once(s, logits, true);
}

void ll_sampler_probs(ll_sampler *s, const float *logits, float *probs) {
    if (!s || !logits || !probs) return;
    memset(probs, 0, (size_t)s->n_vocab * sizeof *probs);
    int32_t n = run_chain(s, logits, true);
    for (int32_t i = 0; i < n; i++) probs[s->cands[i].id] = s->cands[i].p;
}

double ll_sampler_uniform(ll_sampler *s) { return s ? rng_uniform(s->rng) : 0.0; }

ll_token ll_sampler_draw(ll_sampler *s, const float *w, int32_t n) {
    if (!s || !w || n <= 0) return -1;
    double total = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < n; i++) {
        if (w[i] > 0.0f) { total += w[i]; last = i; } // NaN and negatives count as zero
    }
    if (last < 0) return -1;
    double u = rng_uniform(s->rng) * total, cum = 0.0;
    for (int32_t i = 0; i < last; i++) {
        if (w[i] > 0.0f) {
            cum += w[i];
            if (u < cum) return i;
        }
    }
    return last;
}

// ---- state copies (speculative drafts) -----------------------------------------------------

struct ll_sampler_state {
    ll_token *hist;        // the ring as it was (hist_cap entries)
    int32_t hist_len, hist_head;
    ll_token *distinct;    // the distinct tokens and their counts
    int32_t *count;
    int32_t n_distinct;
    void *cstate;          // the constraint's copy, or NULL
    void *xstate;          // DRY's history and Mirostat's mu, or NULL
};

bool ll_sampler_has_state(const ll_sampler *s) {
    return s && (s->count != NULL || s->has_constraint || s->extra != NULL);
}

ll_sampler_state *ll_sampler_save(ll_sampler *s) {
    if (!s) return NULL;
    if (s->has_constraint && s->constraint.accept && !s->constraint.save) return NULL;
    ll_sampler_state *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    if (s->count) {
        size_t nd = (size_t)s->n_distinct ? (size_t)s->n_distinct : 1;
        st->distinct = malloc(nd * sizeof *st->distinct);
        st->count = malloc(nd * sizeof *st->count);
        st->hist = malloc((s->hist_cap ? (size_t)s->hist_cap : 1) * sizeof *st->hist);
        if (!st->distinct || !st->count || !st->hist) goto fail;
        for (int32_t i = 0; i < s->n_distinct; i++) {
            st->distinct[i] = s->distinct[i];
            st->count[i] = s->count[s->distinct[i]];
        }
        st->n_distinct = s->n_distinct;
        if (s->hist_cap) memcpy(st->hist, s->hist, (size_t)s->hist_cap * sizeof *st->hist);
        st->hist_len = s->hist_len;
        st->hist_head = s->hist_head;
    }
    if (s->has_constraint && s->constraint.save) {
        st->cstate = s->constraint.save(s->constraint.ud);
        if (!st->cstate) goto fail;
    }
    if (s->extra && !(st->xstate = extra_save(s->extra))) goto fail;
    return st;
fail:
    ll_sampler_state_free(s, st);
    return NULL;
}

void ll_sampler_restore(ll_sampler *s, const ll_sampler_state *st) {
    if (!s || !st) return;
    if (s->count) {
        for (int32_t i = 0; i < s->n_distinct; i++) s->count[s->distinct[i]] = 0;
        s->n_distinct = st->n_distinct;
        for (int32_t i = 0; i < st->n_distinct; i++) {
            ll_token t = st->distinct[i];
            s->distinct[i] = t;
            s->where[t] = i;
            s->count[t] = st->count[i];
        }
        if (s->hist_cap) memcpy(s->hist, st->hist, (size_t)s->hist_cap * sizeof *s->hist);
        s->hist_len = st->hist_len;
        s->hist_head = st->hist_head;
    }
    if (st->cstate && s->has_constraint && s->constraint.restore)
        s->constraint.restore(s->constraint.ud, st->cstate);
    if (st->xstate && s->extra) extra_restore(s->extra, st->xstate);
}

void ll_sampler_state_free(ll_sampler *s, ll_sampler_state *st) {
    if (!st) return;
    if (st->cstate && s && s->has_constraint && s->constraint.drop)
        s->constraint.drop(s->constraint.ud, st->cstate);
    extra_state_free(st->xstate);
    free(st->hist);
    free(st->distinct);
    free(st->count);
    free(st);
}
