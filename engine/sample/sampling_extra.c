// llama.cpp's further samplers, with its semantics (Feb 2025, src/llama-sampling.cpp):
//   - logit bias: added to the logits before anything else;
//   - DRY ("don't repeat yourself"): when the history ends with a sequence that occurred
//     before, followed there by token t, emitting t would extend a repeat of length L; if L >=
//     allowed_length, t's logit loses multiplier * base^(L - allowed_length). Repeats do not
//     reach back past a sequence breaker (a string such as "\n"), and a token that is itself
//     a breaker is never penalised;
//   - XTC ("exclude top choices"): with probability xtc_probability, every candidate whose
//     probability is at least the threshold is removed except the least likely of them;
//   - top-n-sigma: keeps the logits within n standard deviations of the largest;
//   - Mirostat 1 and 2: keep the most likely tokens so that the surprise -log2 p of the drawn
//     token tracks tau, adjusting mu by eta times the error after each draw.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample/sampling_internal.h"

enum {
    DRY_MAX_BREAKER_CHARS = 40, // llama.cpp's limits on a breaker and the tokens of its tail
    DRY_MAX_TAIL = 20,
    DRY_HISTORY_START = 256,    // -1 (the whole history): the first allocation, then doubling
    MIROSTAT_M = 100,           // Mirostat 1 estimates the Zipf exponent from the top 100
};

// A sequence breaker as tokens: a head token whose text contains the breaker (no tail) or
// ends with its start, followed by the tokens of the rest (the tail).
typedef struct {
    int32_t next;       // the next entry with the same head, -1 at the end
    int32_t tail_off, tail_len;
} dry_breaker;

struct ll_sampler_extra {
    ll_sampler_params par;
    int32_t n_vocab;
    ll_logit_bias *bias;
    int32_t n_bias;
    float mu;                   // Mirostat

    bool dry_on;
    ll_token *hist;             // DRY's history, oldest first
    int32_t hist_len, hist_cap; // cap: dry_penalty_last_n, or growing for -1 (the whole history)
    int32_t *first_breaker;     // [n_vocab]: the first entry with that head, -1: none
    dry_breaker *breakers;
    int32_t n_breakers;
    ll_token *tails;
    int32_t n_tails;
    int32_t *repeat;            // scratch: repeat lengths over the window
    int32_t *max_repeat;        // [n_vocab]: the longest repeat each token would extend
    ll_token *touched;          // tokens with max_repeat > 0
    int32_t n_touched;
};

bool extra_wanted(const ll_sampler_params *p) {
    return p->n_logit_bias > 0 || p->mirostat != 0 || p->top_n_sigma >= 0.0f ||
           p->xtc_probability > 0.0f || p->dry_multiplier != 0.0f;
}

// ---- DRY's sequence breakers --------------------------------------------------------------

static bool add_breaker(ll_sampler_extra *x, ll_token head, const ll_token *tail, int32_t n_tail) {
    // The same tail for the same head once.
    for (int32_t e = x->first_breaker[head]; e >= 0; e = x->breakers[e].next) {
        const dry_breaker *b = &x->breakers[e];
        if (b->tail_len == n_tail && (n_tail == 0 || !memcmp(x->tails + b->tail_off, tail, sizeof *tail * (size_t)n_tail)))
            return true;
    }
    dry_breaker *nb = realloc(x->breakers, sizeof *nb * (size_t)(x->n_breakers + 1));
    if (!nb) return false;
    x->breakers = nb;
    ll_token *nt = realloc(x->tails, sizeof *nt * (size_t)(x->n_tails + n_tail + 1));
    if (!nt) return false;
    x->tails = nt;
    if (n_tail) memcpy(x->tails + x->n_tails, tail, sizeof *tail * (size_t)n_tail); // tail NULL when empty
    x->breakers[x->n_breakers] = (dry_breaker){x->first_breaker[head], x->n_tails, n_tail};
    x->first_breaker[head] = x->n_breakers++;
    x->n_tails += n_tail;
    return true;
}

// Every token whose text contains str, or ends with a beginning of it (then with the tokens
// of the rest of str as the tail), as llama.cpp's get_overlapping_token_sequences.
static bool add_breaker_string(ll_sampler_extra *x, const ll_vocab *v, const char *str) {
    size_t sl = strlen(str);
    if (sl > DRY_MAX_BREAKER_CHARS) sl = DRY_MAX_BREAKER_CHARS;
    if (sl == 0) return true;
    char word[512];
    ll_token tail[DRY_MAX_TAIL + 64];
    for (ll_token t = 0; t < x->n_vocab; t++) {
        int32_t wl = ll_token_to_piece(v, t, word, sizeof word, true);
        if (wl <= 0) continue; // empty, or longer than any breaker could overlap usefully
        if (memmem(word, (size_t)wl, str, sl)) {
            if (!add_breaker(x, t, NULL, 0)) return false;
            continue;
        }
        for (int32_t pos = 0; pos < wl; pos++) {
            size_t rest = (size_t)(wl - pos); // the word ends inside str
            if (word[pos] != str[0] || rest >= sl || memcmp(word + pos, str, rest) != 0) continue;
            int32_t n = ll_tokenize(v, str + rest, (int32_t)(sl - rest), tail, DRY_MAX_TAIL + 64, false, false);
            if (n < 0) return false;
            if (n > DRY_MAX_TAIL + 64) n = DRY_MAX_TAIL + 64;
            if (n > DRY_MAX_TAIL) n = DRY_MAX_TAIL;
            if (!add_breaker(x, t, tail, n)) return false;
        }
    }
    return true;
}

// ---- lifetime -----------------------------------------------------------------------------

ll_sampler_extra *extra_new(const ll_sampler_params *p, int32_t n_vocab) {
    ll_sampler_extra *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->par = *p;
    x->n_vocab = n_vocab;
    x->mu = 2.0f * p->mirostat_tau;
    if (p->n_logit_bias > 0 && p->logit_bias) {
        x->bias = malloc(sizeof *x->bias * (size_t)p->n_logit_bias);
        if (!x->bias) goto fail;
        for (int32_t i = 0; i < p->n_logit_bias; i++)
            if (p->logit_bias[i].token >= 0 && p->logit_bias[i].token < n_vocab) x->bias[x->n_bias++] = p->logit_bias[i];
    }
    x->par.logit_bias = NULL;
    x->dry_on = p->dry_multiplier != 0.0f && p->dry_base >= 1.0f && p->dry_penalty_last_n != 0;
    if (x->dry_on) {
        x->hist_cap = p->dry_penalty_last_n > 0 && p->dry_penalty_last_n < DRY_HISTORY_START ? p->dry_penalty_last_n
                                                                                            : DRY_HISTORY_START;
        x->hist = malloc(sizeof *x->hist * (size_t)x->hist_cap);
        x->repeat = malloc(sizeof *x->repeat * (size_t)x->hist_cap);
        x->max_repeat = calloc((size_t)n_vocab, sizeof *x->max_repeat);
        x->touched = malloc(sizeof *x->touched * (size_t)n_vocab);
        x->first_breaker = malloc(sizeof *x->first_breaker * (size_t)n_vocab);
        if (!x->hist || !x->repeat || !x->max_repeat || !x->touched || !x->first_breaker) goto fail;
        for (int32_t t = 0; t < n_vocab; t++) x->first_breaker[t] = -1;
        for (int i = 0; p->vocab && i < LL_MAX_DRY_BREAKERS && p->dry_breakers[i]; i++)
            if (!add_breaker_string(x, p->vocab, p->dry_breakers[i])) goto fail;
    }
    return x;
fail:
    extra_free(x);
    return NULL;
}

void extra_free(ll_sampler_extra *x) {
    if (!x) return;
    free(x->bias);
    free(x->hist);
    free(x->first_breaker);
    free(x->breakers);
    free(x->tails);
    free(x->repeat);
    free(x->max_repeat);
    free(x->touched);
    free(x);
}

// Room for n tokens of history: the window's size, or for -1 as many as there are (doubling).
// False when the window is full (or memory is short): the caller drops the oldest.
static bool dry_reserve(ll_sampler_extra *x, int32_t n) {
    if (n <= x->hist_cap) return true;
    const int32_t window = x->par.dry_penalty_last_n;
    if (window > 0 && x->hist_cap >= window) return false;
    int64_t cap = (int64_t)x->hist_cap * 2;
    if (cap < n) cap = n;
    if (window > 0 && cap > window) cap = window;
    if (cap > INT32_MAX / 2) return false;
    ll_token *h = realloc(x->hist, sizeof *h * (size_t)cap);
    if (h) x->hist = h;
    int32_t *r = h ? realloc(x->repeat, sizeof *r * (size_t)cap) : NULL;
    if (r) x->repeat = r;
    if (!h || !r) return false;
    x->hist_cap = (int32_t)cap;
    return true;
}

void extra_accept(ll_sampler_extra *x, ll_token t) {
    if (!x->dry_on) return;
    if (x->hist_len == x->hist_cap && !dry_reserve(x, x->hist_len + 1)) { // the oldest leaves the window
        memmove(x->hist, x->hist + 1, sizeof *x->hist * (size_t)(x->hist_cap - 1));
        x->hist_len--;
    }
    x->hist[x->hist_len++] = t;
}

void extra_reset(ll_sampler_extra *x) {
    x->hist_len = 0;
    x->mu = 2.0f * x->par.mirostat_tau;
}

void extra_logit_bias(const ll_sampler_extra *x, float *w) {
    for (int32_t i = 0; i < x->n_bias; i++) w[x->bias[i].token] += x->bias[i].bias;
}

// ---- DRY ----------------------------------------------------------------------------------

// The i-th token from the end of the history (0: the last).
static inline ll_token rat(const ll_sampler_extra *x, int32_t i) { return x->hist[x->hist_len - 1 - i]; }

// How far back a repeat may reach: up to the most recent complete sequence breaker.
static int32_t dry_rep_limit(const ll_sampler_extra *x, int32_t window) {
    for (int32_t i = 0; i < window; i++) {
        int32_t longest = -1;
        for (int32_t e = x->first_breaker[rat(x, i)]; e >= 0; e = x->breakers[e].next) {
            const dry_breaker *b = &x->breakers[e];
            if (b->tail_len <= longest || b->tail_len > i) continue;
            bool match = true; // the tail follows the head, so it lies closer to the end
            for (int32_t k = 0; match && k < b->tail_len; k++) match = x->tails[b->tail_off + k] == rat(x, i - k - 1);
            if (match) longest = b->tail_len;
        }
        if (longest >= 0) return i - longest;
    }
    return window;
}

// repeat[window-1-k] = how many of the last tokens also occur ending k tokens earlier (the
// Z-algorithm, run backwards from the end), capped at limit.
static void dry_repeats(ll_sampler_extra *x, int32_t window, int32_t limit) {
    const int32_t last = window - 1;
    int32_t *rc = x->repeat;
    memset(rc, 0, sizeof *rc * (size_t)window);
    int32_t lt = 0, rt = 0;
    for (int32_t k = 1; k < window; k++) {
        if (k > rt) {
            int32_t n = 0;
            while (n + k < window && rat(x, n) == rat(x, n + k)) n++;
            rc[last - k] = n < limit ? n : limit;
            if (n > 0) {
                lt = k;
                rt = k + n - 1;
            }
        } else if (rc[last - (k - lt)] < rt - k + 1) {
            int32_t n = rc[last - (k - lt)];
            rc[last - k] = n < limit ? n : limit;
        } else {
            int32_t i = rt + 1;
            while (i < window && rat(x, i) == rat(x, i - k)) i++;
            rc[last - k] = i - k < limit ? i - k : limit;
            lt = k;
            rt = i - 1;
        }
    }
}

static bool is_single_token_breaker(const ll_sampler_extra *x, ll_token t) {
    for (int32_t e = x->first_breaker[t]; e >= 0; e = x->breakers[e].next)
        if (x->breakers[e].tail_len == 0) return true;
    return false;
}

static float dry_penalty(const ll_sampler_extra *x, int32_t len) {
    int32_t e = len - x->par.dry_allowed_length;
    // base^e overflows a float past this exponent.
    if (x->par.dry_base > 1.000001f) {
        int32_t max_e = (int32_t)(88.7228391f / logf(x->par.dry_base));
        if (max_e > 0 && e > max_e) e = max_e;
    }
    return x->par.dry_multiplier * powf(x->par.dry_base, (float)e);
}

void extra_dry(ll_sampler_extra *x, float *w, cand *c, int32_t n) {
    if (!x->dry_on) return;
    int32_t window = x->hist_len;
    if (x->par.dry_penalty_last_n > 0 && window > x->par.dry_penalty_last_n) window = x->par.dry_penalty_last_n;
    if (window <= x->par.dry_allowed_length) return;
    const int32_t limit = dry_rep_limit(x, window);
    if (limit < x->par.dry_allowed_length) return;
    dry_repeats(x, window, limit);

    // The token after each repeat would extend it: remember the longest per token.
    x->n_touched = 0;
    for (int32_t i = 0; i < window - 1; i++) {
        int32_t len = x->repeat[i];
        if (len < x->par.dry_allowed_length) continue;
        ll_token t = rat(x, window - 2 - i);
        if (x->max_repeat[t] == 0) x->touched[x->n_touched++] = t;
        if (len + 1 > x->max_repeat[t]) x->max_repeat[t] = len + 1; // stored + 1: 0 means none
    }
    for (int32_t i = 0; i < x->n_touched; i++) {
        ll_token t = x->touched[i];
        if (w && !is_single_token_breaker(x, t)) w[t] -= dry_penalty(x, x->max_repeat[t] - 1);
    }
    for (int32_t i = 0; !w && i < n; i++) {
        int32_t m = x->max_repeat[c[i].id];
        if (m > 0 && !is_single_token_breaker(x, c[i].id)) c[i].logit -= dry_penalty(x, m - 1);
    }
    for (int32_t i = 0; i < x->n_touched; i++) x->max_repeat[x->touched[i]] = 0;
}

// ---- XTC, top-n-sigma, Mirostat -----------------------------------------------------------

int32_t extra_xtc_drop(const ll_sampler_extra *x, const cand *c, int32_t n, double u) {
    if (x->par.xtc_probability <= 0.0f || x->par.xtc_threshold > 0.5f || n < 2) return 0;
    if (u > x->par.xtc_probability) return 0;
    int32_t last = 0; // the least likely candidate at or above the threshold
    for (int32_t i = 0; i < n && c[i].p >= x->par.xtc_threshold; i++) last = i;
    return last;
}

int32_t filter_top_n_sigma(cand *c, int32_t n, float nsigma) {
    if (n <= 0) return n;
    double max = c[0].logit, sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].logit > max) max = c[i].logit;
        sum += c[i].logit;
    }
    const double mean = sum / n;
    double acc = 0.0;
    for (int32_t i = 0; i < n; i++) acc += (c[i].logit - mean) * (c[i].logit - mean);
    const double min_logit = max - nsigma * sqrt(acc / n);
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit >= min_logit) c[m++] = c[i];
    return m;
}

int32_t extra_mirostat_keep(const ll_sampler_extra *x, const cand *c, int32_t n, int32_t n_vocab) {
    int32_t keep;
    if (x->par.mirostat == 1) {
        // Estimate the Zipf exponent s from the top m probabilities, then the k whose
        // expected surprise is mu.
        double sum_tb = 0.0, sum_tt = 0.0;
        for (int32_t i = 0; i < MIROSTAT_M - 1 && i < n - 1; i++) {
            double t = log((double)(i + 2) / (i + 1)), b = log((double)c[i].p / c[i + 1].p);
            sum_tb += t * b;
            sum_tt += t * t;
        }
        const double s_hat = sum_tb / sum_tt, eps = s_hat - 1.0;
        const double k = pow(eps * pow(2.0, x->mu) / (1.0 - pow(n_vocab, -eps)), 1.0 / s_hat);
        keep = k >= 1.0 && k < (double)n ? (int32_t)k : k >= (double)n ? n : 1;
    } else {
        // Mirostat 2: the tokens whose surprise is at most mu.
        keep = 0;
        while (keep < n && -log2f(c[keep].p) <= x->mu) keep++;
    }
    return keep > 0 ? keep : 1;
}

void extra_mirostat_update(ll_sampler_extra *x, float p) {
    x->mu -= x->par.mirostat_eta * (-log2f(p) - x->par.mirostat_tau);
}

// ---- state copies -------------------------------------------------------------------------

typedef struct {
    float mu;
    int32_t hist_len;
    ll_token hist[];
} extra_state;

void *extra_save(const ll_sampler_extra *x) {
    extra_state *st = malloc(sizeof *st + sizeof(ll_token) * (size_t)x->hist_len);
    if (!st) return NULL;
    st->mu = x->mu;
    st->hist_len = x->hist_len;
    if (x->hist_len) memcpy(st->hist, x->hist, sizeof(ll_token) * (size_t)x->hist_len);
    return st;
}

void extra_restore(ll_sampler_extra *x, const void *state) {
    const extra_state *st = state;
    x->mu = st->mu;
    if (!x->dry_on) return;
    // The newest tokens that fit (all of them unless memory is short).
    const int32_t n = dry_reserve(x, st->hist_len) || st->hist_len <= x->hist_cap ? st->hist_len : x->hist_cap;
    x->hist_len = n;
    if (n) memcpy(x->hist, st->hist + (st->hist_len - n), sizeof(ll_token) * (size_t)n);
}

void extra_state_free(void *state) { free(state); }
