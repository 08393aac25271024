// Sampler tests: each filter on synthetic logits with known probabilities, checked through
// ll_sampler_probs against values worked out here; a brute-force reference chain (full sort,
// double precision) on big vocabularies; penalties; seeded draws against the distribution
// (chi-square with a fixed seed, so deterministic); seeds; the constraint hook.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "engine/sample/sampling.h"
#include "tests/test_util.h"

// Parameters with every filter off, temperature 1, fixed seed.
static ll_sampler_params plain(void) {
    ll_sampler_params p = ll_sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.repeat_penalty = 1.0f;
    p.seed = 1234;
    return p;
}

static uint64_t lcg_state = 42;
static double lcg_uniform(void) {
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(lcg_state >> 11) * 0x1.0p-53;
}

// Logits whose softmax is exactly probs (up to float rounding).
static void logits_from_probs(const double *probs, int n, float *logits) {
    for (int i = 0; i < n; i++) logits[i] = (float)log(probs[i]);
}

static int count_nonzero(const float *p, int n) {
    int c = 0;
    for (int i = 0; i < n; i++) c += p[i] != 0.0f;
    return c;
}

static double max_abs_diff(const float *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
    }
    return m;
}

// ---- a brute-force reference of the chain (full sort, double precision) -----------------

typedef struct { int id; double logit, p, key; } rc;

static int rc_by_logit(const void *pa, const void *pb) {
    const rc *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit > b->logit ? -1 : 1;
    return a->id - b->id;
}
static int rc_by_key(const void *pa, const void *pb) {
    const rc *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->id - b->id;
}
static void rc_softmax(rc *c, int n) {
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) if (c[i].logit > max) max = c[i].logit;
    for (int i = 0; i < n; i++) sum += c[i].p = exp(c[i].logit - max);
    for (int i = 0; i < n; i++) c[i].p /= sum;
}

// Final probabilities of the llama-cli chain (no penalties) into out[nv].
static void reference_chain(const ll_sampler_params *P, const float *logits, int nv, double *out) {
    rc *c = malloc(sizeof(rc) * (size_t)nv);
    for (int i = 0; i < nv; i++) c[i] = (rc){ i, logits[i], 0, 0 };
    int n = nv;
    qsort(c, (size_t)n, sizeof *c, rc_by_logit);
    if (P->top_k > 0 && P->top_k < n) n = P->top_k;
    if (P->typical_p < 1.0f) {
        rc_softmax(c, n);
        double h = 0;
        for (int i = 0; i < n; i++) h -= c[i].p * log(c[i].p);
        for (int i = 0; i < n; i++) c[i].key = fabs(-log(c[i].p) - h);
        qsort(c, (size_t)n, sizeof *c, rc_by_key);
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum > P->typical_p) { n = i + 1; break; }
        }
        qsort(c, (size_t)n, sizeof *c, rc_by_logit);
    }
    if (P->top_p < 1.0f) {
        rc_softmax(c, n);
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= P->top_p) { n = i + 1; break; }
        }
    }
    if (P->min_p > 0.0f) {
        rc_softmax(c, n);
        int m = 0;
        for (int i = 0; i < n; i++) if (c[i].p >= P->min_p * c[0].p) c[m++] = c[i];
        n = m;
    }
    for (int i = 0; i < n; i++) c[i].logit /= P->temp;
    rc_softmax(c, n);
    for (int i = 0; i < nv; i++) out[i] = 0;
    for (int i = 0; i < n; i++) out[c[i].id] = c[i].p;
    free(c);
}

// ---- tests --------------------------------------------------------------------------------

static void test_greedy(void) {
    enum { N = 1000 };
    float logits[N];
    for (int i = 0; i < N; i++) logits[i] = (float)(lcg_uniform() * 20 - 10);
    logits[617] = 11.0f;
    ll_sampler_params p = ll_sampler_default_params();
    p.temp = 0.0f;
    ll_sampler *s = ll_sampler_new(&p, N);
    CHECK(s != NULL, "new");
    for (int k = 0; k < 5; k++) CHECK(ll_sampler_sample(s, logits) == 617, "greedy argmax");
    float probs[N];
    ll_sampler_probs(s, logits, probs);
    CHECK(probs[617] == 1.0f && count_nonzero(probs, N) == 1, "greedy probs one-hot");
    // A negative temperature is greedy too, and ties go to the lower id.
    p.temp = -1.0f;
    ll_sampler *s2 = ll_sampler_new(&p, N);
    logits[3] = 11.0f;
    CHECK(ll_sampler_sample(s2, logits) == 3, "greedy tie -> lower id");
    // Greedy with typical on runs the filters and picks the best survivor.
    p.typical_p = 0.5f;
    ll_sampler *s3 = ll_sampler_new(&p, N);
    ll_token t = ll_sampler_sample(s3, logits);
    CHECK(t >= 0 && t < N, "greedy+typical gives a token (%d)", t);
    ll_sampler_free(s);
    ll_sampler_free(s2);
    ll_sampler_free(s3);
}

static void test_top_k(void) {
    enum { N = 5000 };
    static float logits[N], probs[N];
    for (int i = 0; i < N; i++) logits[i] = (float)(lcg_uniform() * 8);
    const int ks[] = { 1, 7, 40, 200, 4999 };
    for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
        ll_sampler_params p = plain();
        p.top_k = ks[j];
        ll_sampler *s = ll_sampler_new(&p, N);
        ll_sampler_probs(s, logits, probs);
        CHECK(count_nonzero(probs, N) == ks[j], "top-k %d keeps %d", ks[j], count_nonzero(probs, N));
        // The kept ones are the k largest: every kept logit >= every dropped logit, and their
        // probabilities are the softmax over the kept set.
        float min_kept = INFINITY, max_dropped = -INFINITY;
        double sum = 0;
        for (int i = 0; i < N; i++) {
            if (probs[i] != 0) { if (logits[i] < min_kept) min_kept = logits[i]; sum += exp(logits[i]); }
            else if (logits[i] > max_dropped) max_dropped = logits[i];
        }
        CHECK(min_kept >= max_dropped, "top-k %d keeps the largest", ks[j]);
        double err = 0;
        for (int i = 0; i < N; i++) {
            if (probs[i] != 0) err = fmax(err, fabs(probs[i] - exp(logits[i]) / sum));
        }
        CHECK(err < 1e-6, "top-k %d probs err %g", ks[j], err);
        ll_sampler_free(s);
    }
}

static void test_top_k_ties(void) {
    // Equal logits: the lower ids win, so results do not depend on scan order.
    enum { N = 1000 };
    static float logits[N], probs[N];
    for (int i = 0; i < N; i++) logits[i] = 0.5f;
    ll_sampler_params p = plain();
    p.top_k = 3;
    ll_sampler *s = ll_sampler_new(&p, N);
    ll_sampler_probs(s, logits, probs);
    CHECK(probs[0] > 0 && probs[1] > 0 && probs[2] > 0 && count_nonzero(probs, N) == 3, "top-k ties");
    ll_sampler_free(s);
}

static void test_top_p(void) {
    // Shuffled on purpose: the filter must order by probability itself.
    const double pr[6] = { 0.1, 0.3, 0.05, 0.4, 0.05, 0.1 };
    float logits[6], probs[6];
    logits_from_probs(pr, 6, logits);
    struct { float top_p; int keep; } cases[] = {
        { 0.35f, 1 }, { 0.65f, 2 }, { 0.75f, 3 }, { 0.85f, 4 }, { 0.97f, 6 },
    };
    for (size_t j = 0; j < sizeof cases / sizeof cases[0]; j++) {
        ll_sampler_params p = plain();
        p.top_p = cases[j].top_p;
        ll_sampler *s = ll_sampler_new(&p, 6);
        ll_sampler_probs(s, logits, probs);
        CHECK(count_nonzero(probs, 6) == cases[j].keep, "top-p %.2f keeps %d, want %d",
              cases[j].top_p, count_nonzero(probs, 6), cases[j].keep);
        ll_sampler_free(s);
    }
    // "Reaches p" includes equality: four equal logits (p = 0.25 exactly), top-p 0.5 keeps two.
    {
        const float flat[4] = { 1.0f, 1.0f, 1.0f, 1.0f };
        float fp[4];
        ll_sampler_params q = plain();
        q.top_p = 0.5f;
        ll_sampler *s = ll_sampler_new(&q, 4);
        ll_sampler_probs(s, flat, fp);
        CHECK(count_nonzero(fp, 4) == 2, "top-p boundary keeps %d", count_nonzero(fp, 4));
        ll_sampler_free(s);
    }
    // top-p 0.65: {0.4, 0.3} renormalised.
    ll_sampler_params p = plain();
    p.top_p = 0.65f;
    ll_sampler *s = ll_sampler_new(&p, 6);
    ll_sampler_probs(s, logits, probs);
    const double want[6] = { 0, 0.3 / 0.7, 0, 0.4 / 0.7, 0, 0 };
    CHECK(max_abs_diff(probs, want, 6) < 1e-6, "top-p renormalised");
    ll_sampler_free(s);
}

static void test_min_p(void) {
    const double pr[8] = { 0.05, 0.5, 0.1, 0.2, 0.04, 0.06, 0.03, 0.02 };
    float logits[8], probs[8];
    logits_from_probs(pr, 8, logits);
    // Relative to the top probability 0.5: min-p 0.15 keeps p >= 0.075.
    ll_sampler_params p = plain();
    p.min_p = 0.15f;
    ll_sampler *s = ll_sampler_new(&p, 8);
    ll_sampler_probs(s, logits, probs);
    const double want[8] = { 0, 0.5 / 0.8, 0.1 / 0.8, 0.2 / 0.8, 0, 0, 0, 0 };
    CHECK(max_abs_diff(probs, want, 8) < 1e-6, "min-p 0.15");
    ll_sampler_free(s);
    p.min_p = 0.09f; // keeps p >= 0.045: adds 0.05 and 0.06
    s = ll_sampler_new(&p, 8);
    ll_sampler_probs(s, logits, probs);
    CHECK(count_nonzero(probs, 8) == 5, "min-p 0.09 keeps %d", count_nonzero(probs, 8));
    ll_sampler_free(s);
    p.min_p = 1.0f; // only the top one
    s = ll_sampler_new(&p, 8);
    ll_sampler_probs(s, logits, probs);
    CHECK(probs[1] == 1.0f && count_nonzero(probs, 8) == 1, "min-p 1");
    ll_sampler_free(s);
}

static void test_typical(void) {
    // A dominant token, a band of five mid tokens, a tail. The entropy (1.82 nats) sits
    // nearest the mid band's surprise (2.30), then the dominant token's (0.92), then the
    // tail's (3.00): typical-p takes them in that order.
    const double pr[8] = { 0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05 };
    float logits[8], probs[8];
    logits_from_probs(pr, 8, logits);
    double h = 0;
    for (int i = 0; i < 8; i++) h -= pr[i] * log(pr[i]);
    CHECK(fabs(-log(0.1) - h) < fabs(-log(0.4) - h) && fabs(-log(0.4) - h) < fabs(-log(0.05) - h),
          "test premise");
    ll_sampler_params p = plain();
    p.typical_p = 0.35f; // four mid tokens reach 0.4 > 0.35 (ties in id order)
    ll_sampler *s = ll_sampler_new(&p, 8);
    ll_sampler_probs(s, logits, probs);
    const double want[8] = { 0, 0.25, 0.25, 0.25, 0.25, 0, 0, 0 };
    CHECK(max_abs_diff(probs, want, 8) < 1e-6, "typical 0.35 keeps mid tokens");
    ll_sampler_free(s);
    // "Exceeds p" is strict: four equal tokens (0.25 each), typical 0.5 keeps three.
    {
        const float flat[4] = { 2.0f, 2.0f, 2.0f, 2.0f };
        float fp[4];
        ll_sampler_params q = plain();
        q.typical_p = 0.5f;
        ll_sampler *t = ll_sampler_new(&q, 4);
        ll_sampler_probs(t, flat, fp);
        CHECK(count_nonzero(fp, 4) == 3, "typical boundary keeps %d", count_nonzero(fp, 4));
        ll_sampler_free(t);
    }
    p.typical_p = 0.6f; // the mid band (0.5), then the dominant token (0.9 > 0.6)
    s = ll_sampler_new(&p, 8);
    ll_sampler_probs(s, logits, probs);
    const double want2[8] = { 0.4 / 0.9, 0.1 / 0.9, 0.1 / 0.9, 0.1 / 0.9, 0.1 / 0.9, 0.1 / 0.9, 0, 0 };
    CHECK(max_abs_diff(probs, want2, 8) < 1e-6, "typical 0.6 drops the tail");
    ll_sampler_free(s);
}

static void test_temperature(void) {
    enum { N = 50 };
    float logits[N], probs[N];
    double want[N];
    for (int i = 0; i < N; i++) logits[i] = (float)(lcg_uniform() * 6 - 3);
    const float temps[] = { 0.25f, 0.8f, 1.0f, 3.0f };
    for (size_t j = 0; j < 4; j++) {
        ll_sampler_params p = plain();
        p.temp = temps[j];
        ll_sampler *s = ll_sampler_new(&p, N);
        ll_sampler_probs(s, logits, probs);
        double sum = 0;
        for (int i = 0; i < N; i++) sum += want[i] = exp(logits[i] / temps[j]);
        for (int i = 0; i < N; i++) want[i] /= sum;
        CHECK(max_abs_diff(probs, want, N) < 1e-6, "temp %.2f softmax", temps[j]);
        ll_sampler_free(s);
    }
    // The filters run before the temperature: min-p picks on the untempered probabilities.
    const double pr[4] = { 0.5, 0.3, 0.15, 0.05 };
    float l4[4], p4[4];
    logits_from_probs(pr, 4, l4);
    ll_sampler_params p = plain();
    p.min_p = 0.2f;  // keeps p >= 0.1: three tokens, whatever the temperature
    p.temp = 5.0f;
    ll_sampler *s = ll_sampler_new(&p, 4);
    ll_sampler_probs(s, l4, p4);
    double w4[4] = { pow(0.5, 0.2), pow(0.3, 0.2), pow(0.15, 0.2), 0 };
    double sum = w4[0] + w4[1] + w4[2];
    for (int i = 0; i < 4; i++) w4[i] /= sum;
    CHECK(max_abs_diff(p4, w4, 4) < 1e-6, "temp after min-p");
    ll_sampler_free(s);
}

static void test_reference_chain(void) {
    // Big vocabularies against the brute-force chain: default settings, and top-p without
    // top-k (the partial sort has to grow), and everything at once.
    const int nvs[] = { 32000, 128256 };
    for (int v = 0; v < 2; v++) {
        int nv = nvs[v];
        float *logits = malloc(sizeof(float) * (size_t)nv), *probs = malloc(sizeof(float) * (size_t)nv);
        double *want = malloc(sizeof(double) * (size_t)nv);
        for (int i = 0; i < nv; i++) logits[i] = (float)(lcg_uniform() * 12 - 6);
        enum { NCASES = 9 };
        ll_sampler_params cases[NCASES];
        cases[0] = ll_sampler_default_params(); cases[0].seed = 7;
        cases[1] = plain(); cases[1].top_p = 0.9f; cases[1].temp = 0.7f;
        cases[2] = plain(); cases[2].top_k = 500; cases[2].typical_p = 0.8f; cases[2].top_p = 0.9f;
        cases[2].min_p = 0.02f; cases[2].temp = 1.3f;
        cases[3] = plain(); cases[3].min_p = 0.3f; cases[3].temp = 0.5f;
        // No top-k, top-p and min-p together: once top-p binds, once min-p.
        cases[4] = plain(); cases[4].top_p = 0.3f; cases[4].min_p = 0.01f;
        cases[5] = plain(); cases[5].top_p = 0.95f; cases[5].min_p = 0.2f;
        cases[6] = plain(); cases[6].top_p = 0.05f; cases[6].temp = 2.0f;
        // Typical without top-k: the whole vocabulary goes through the mass selection.
        cases[7] = plain(); cases[7].typical_p = 0.7f;
        cases[8] = plain(); cases[8].typical_p = 0.9f; cases[8].top_p = 0.8f; cases[8].min_p = 0.01f;
        for (int j = 0; j < NCASES; j++) {
            ll_sampler *s = ll_sampler_new(&cases[j], nv);
            ll_sampler_probs(s, logits, probs);
            reference_chain(&cases[j], logits, nv, want);
            int kept = count_nonzero(probs, nv), kept_ref = 0;
            for (int i = 0; i < nv; i++) kept_ref += want[i] != 0;
            CHECK(kept == kept_ref, "vocab %d case %d keeps %d, reference %d", nv, j, kept, kept_ref);
            double err = max_abs_diff(probs, want, nv);
            CHECK(err < 1e-5, "vocab %d case %d probs err %g", nv, j, err);
            ll_sampler_free(s);
        }
        free(logits); free(probs); free(want);
    }
}

static void test_penalties(void) {
    enum { N = 6 };
    const float logits[N] = { 2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f };
    float probs[N];
    ll_sampler_params p = plain();
    p.repeat_last_n = 4;
    p.repeat_penalty = 1.5f;
    p.freq_penalty = 0.25f;
    p.presence_penalty = 0.125f;
    ll_sampler *s = ll_sampler_new(&p, N);
    // History 3,3,1,0,3,3 with a window of 4 → counts: 3 x3, 0 x1 (the first 3 and 1 slid out).
    const ll_token hist[] = { 3, 1, 3, 0, 3, 3 };
    for (int i = 0; i < 6; i++) ll_sampler_accept(s, hist[i]);
    ll_sampler_probs(s, logits, probs);
    double pen[N];
    for (int i = 0; i < N; i++) pen[i] = logits[i];
    pen[3] = 3.0 / 1.5 - 3 * 0.25 - 0.125;
    pen[0] = 2.0 / 1.5 - 1 * 0.25 - 0.125;
    double want[N], sum = 0;
    for (int i = 0; i < N; i++) sum += want[i] = exp(pen[i]);
    for (int i = 0; i < N; i++) want[i] /= sum;
    CHECK(max_abs_diff(probs, want, N) < 1e-6, "penalties window 4");

    // A negative logit is multiplied by the repetition penalty (less likely, not more).
    ll_sampler_accept(s, 1);
    ll_sampler_accept(s, 4);
    ll_sampler_accept(s, 5); // window now 3,1,4,5
    ll_sampler_probs(s, logits, probs);
    for (int i = 0; i < N; i++) pen[i] = logits[i];
    pen[3] = 3.0 / 1.5 - 0.25 - 0.125;
    pen[1] = -1.0 * 1.5 - 0.25 - 0.125;
    pen[4] = -2.0 * 1.5 - 0.25 - 0.125;
    pen[5] = 0.0 - 0.25 - 0.125; // zero counts as non-positive: 0 * 1.5
    sum = 0;
    for (int i = 0; i < N; i++) sum += want[i] = exp(pen[i]);
    for (int i = 0; i < N; i++) want[i] /= sum;
    CHECK(max_abs_diff(probs, want, N) < 1e-6, "penalties negative logits");

    // Reset forgets the history.
    ll_sampler_reset(s);
    ll_sampler_probs(s, logits, probs);
    sum = 0;
    for (int i = 0; i < N; i++) sum += want[i] = exp(logits[i]);
    for (int i = 0; i < N; i++) want[i] /= sum;
    CHECK(max_abs_diff(probs, want, N) < 1e-6, "reset clears penalties");
    ll_sampler_free(s);

    // repeat_last_n = -1: the whole history counts; 0: penalties off.
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    p.freq_penalty = 1.0f;
    p.repeat_last_n = -1;
    s = ll_sampler_new(&p, N);
    for (int i = 0; i < 100; i++) ll_sampler_accept(s, 2);
    ll_sampler_accept(s, 0);
    ll_sampler_probs(s, logits, probs);
    for (int i = 0; i < N; i++) pen[i] = logits[i];
    pen[2] -= 100;
    pen[0] -= 1;
    sum = 0;
    for (int i = 0; i < N; i++) sum += want[i] = exp(pen[i]);
    for (int i = 0; i < N; i++) want[i] /= sum;
    CHECK(max_abs_diff(probs, want, N) < 1e-6, "penalties whole history");
    ll_sampler_accept(s, -5);   // out of range: ignored
    ll_sampler_accept(s, N);
    ll_sampler_free(s);
    p.repeat_last_n = 0;
    s = ll_sampler_new(&p, N);
    ll_sampler_accept(s, 3);
    ll_sampler_probs(s, logits, probs);
    CHECK(probs[3] > probs[0], "repeat_last_n 0 disables penalties");
    ll_sampler_free(s);

    // Greedy respects the penalties.
    p = plain();
    p.temp = 0.0f;
    p.repeat_penalty = 2.0f;
    s = ll_sampler_new(&p, N);
    CHECK(ll_sampler_sample(s, logits) == 3, "greedy before penalty");
    ll_sampler_accept(s, 3); // 3.0 / 2 = 1.5 < 2.0
    CHECK(ll_sampler_sample(s, logits) == 0, "greedy after penalty");
    ll_sampler_free(s);
}

// Pearson chi-square of n draws against probabilities want[k].
static double chi_square(ll_sampler *s, const float *logits, const double *want, int k, int n) {
    int counts[64] = { 0 };
    for (int i = 0; i < n; i++) {
        ll_token t = ll_sampler_sample(s, logits);
        if (t < 0 || t >= k) return INFINITY;
        counts[t]++;
    }
    double chi = 0;
    for (int i = 0; i < k; i++) {
        if (want[i] == 0) { if (counts[i]) return INFINITY; continue; }
        double e = want[i] * n;
        chi += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi;
}

static void test_draws(void) {
    enum { K = 10, DRAWS = 20000 };
    const double pr[K] = { 0.25, 0.2, 0.15, 0.1, 0.08, 0.07, 0.06, 0.05, 0.03, 0.01 };
    float logits[K];
    logits_from_probs(pr, K, logits);
    ll_sampler_params p = plain();
    p.seed = 20250301;
    ll_sampler *s = ll_sampler_new(&p, K);
    // 9 degrees of freedom: 27.88 is the 0.999 quantile.
    double chi = chi_square(s, logits, pr, K, DRAWS);
    CHECK(chi < 27.88, "plain draws chi2 %.2f", chi);
    ll_sampler_free(s);

    // Through filters and temperature: top-k 5, temperature 0.7.
    p.top_k = 5;
    p.temp = 0.7f;
    s = ll_sampler_new(&p, K);
    double want[K] = { 0 }, sum = 0;
    for (int i = 0; i < 5; i++) sum += want[i] = pow(pr[i], 1 / 0.7);
    for (int i = 0; i < 5; i++) want[i] /= sum;
    float probs[K];
    ll_sampler_probs(s, logits, probs);
    CHECK(max_abs_diff(probs, want, K) < 1e-6, "top-k 5 temp 0.7 probs");
    chi = chi_square(s, logits, want, K, DRAWS);
    CHECK(chi < 18.47, "filtered draws chi2 %.2f", chi); // 4 dof, 0.999 quantile
    ll_sampler_free(s);
}

static void test_seeds(void) {
    enum { N = 100, DRAWS = 200 };
    float logits[N];
    for (int i = 0; i < N; i++) logits[i] = (float)(lcg_uniform() * 2);
    ll_sampler_params p = plain();
    p.seed = 99;
    ll_sampler *a = ll_sampler_new(&p, N), *b = ll_sampler_new(&p, N);
    p.seed = 100;
    ll_sampler *c = ll_sampler_new(&p, N);
    int same_ab = 0, same_ac = 0;
    ll_token first[DRAWS];
    for (int i = 0; i < DRAWS; i++) {
        ll_token ta = ll_sampler_sample(a, logits), tb = ll_sampler_sample(b, logits);
        ll_token tc = ll_sampler_sample(c, logits);
        first[i] = ta;
        same_ab += ta == tb;
        same_ac += ta == tc;
    }
    CHECK(same_ab == DRAWS, "same seed, same sequence (%d/%d)", same_ab, DRAWS);
    CHECK(same_ac < DRAWS / 4, "different seeds differ (%d/%d equal)", same_ac, DRAWS);
    CHECK(ll_sampler_seed(a) == 99 && ll_sampler_seed(c) == 100, "seed reported");

    // Random seed: reported, and reusing the report reproduces the run.
    p.seed = LL_DEFAULT_SEED;
    ll_sampler *r = ll_sampler_new(&p, N);
    uint32_t used = ll_sampler_seed(r);
    CHECK(used != LL_DEFAULT_SEED, "random seed is a real seed");
    p.seed = used;
    ll_sampler *r2 = ll_sampler_new(&p, N);
    int same = 0;
    for (int i = 0; i < DRAWS; i++) same += ll_sampler_sample(r, logits) == ll_sampler_sample(r2, logits);
    CHECK(same == DRAWS, "reported random seed reproduces");

    // Reset keeps the RNG going (it does not restart the sequence).
    ll_sampler_reset(a);
    int restart = 0;
    for (int i = 0; i < DRAWS; i++) restart += ll_sampler_sample(a, logits) == first[i];
    CHECK(restart < DRAWS / 4, "reset keeps the RNG state (%d/%d)", restart, DRAWS);

    // set_seed restarts the stream; copy_rng continues another sampler's.
    ll_sampler_set_seed(a, 99);
    restart = 0;
    for (int i = 0; i < DRAWS / 2; i++) restart += ll_sampler_sample(a, logits) == first[i];
    CHECK(restart == DRAWS / 2 && ll_sampler_seed(a) == 99, "set_seed 99 restarts (%d)", restart);
    p.seed = 5;
    ll_sampler *d = ll_sampler_new(&p, N);
    ll_sampler_copy_rng(d, a);
    int cont = 0;
    for (int i = DRAWS / 2; i < DRAWS; i++) cont += ll_sampler_sample(d, logits) == first[i];
    CHECK(cont == DRAWS / 2 && ll_sampler_seed(d) == 99, "copy_rng continues the stream (%d)", cont);
    ll_sampler_set_seed(d, LL_DEFAULT_SEED);
    CHECK(ll_sampler_seed(d) != LL_DEFAULT_SEED, "set_seed -1 picks a seed");
    ll_sampler_free(d);
    ll_sampler_free(a); ll_sampler_free(b); ll_sampler_free(c);
    ll_sampler_free(r); ll_sampler_free(r2);
}

static void forbid_even(void *ud, float *logits, int32_t n) {
    (void)ud;
    for (int32_t i = 0; i < n; i += 2) logits[i] = -INFINITY;
}
static void forbid_all(void *ud, float *logits, int32_t n) {
    (void)ud;
    for (int32_t i = 0; i < n; i++) logits[i] = -INFINITY;
}
static void count_accept(void *ud, ll_token t) { (void)t; (*(int *)ud)++; }

static void test_constraint_and_bad_input(void) {
    enum { N = 300 };
    float logits[N], probs[N];
    for (int i = 0; i < N; i++) logits[i] = (float)(lcg_uniform() * 4);
    logits[0] = 10.0f;
    int accepted = 0;
    const ll_sampler_params cases[2] = { plain(), ll_sampler_default_params() };
    for (int j = 0; j < 2; j++) {
        ll_sampler *s = ll_sampler_new(&cases[j], N);
        ll_sampler_set_constraint(s, &(ll_sampler_constraint){ .apply = forbid_even, .accept = count_accept, .ud = &accepted });
        int bad = 0;
        for (int i = 0; i < 500; i++) {
            ll_token t = ll_sampler_sample(s, logits);
            bad += t < 0 || t % 2 == 0;
            ll_sampler_accept(s, t);
        }
        CHECK(bad == 0, "constraint respected (case %d, %d bad)", j, bad);
        ll_sampler_probs(s, logits, probs);
        double odd = 0;
        for (int i = 0; i < N; i++) { if (i % 2 == 0) CHECK(probs[i] == 0, "even prob"); else odd += probs[i]; }
        CHECK(fabs(odd - 1) < 1e-5, "constrained probs sum %g", odd);
        ll_sampler_set_constraint(s, &(ll_sampler_constraint){ .apply = forbid_all });
        CHECK(ll_sampler_sample(s, logits) == -1, "everything forbidden -> -1");
        ll_sampler_set_constraint(s, NULL);
        CHECK(ll_sampler_sample(s, logits) >= 0, "constraint removed");
        ll_sampler_free(s);
    }
    CHECK(accepted == 1000, "constraint saw the accepted tokens (%d)", accepted);

    // NaN and infinite logits: NaN never wins, +inf does.
    ll_sampler_params p = plain();
    ll_sampler *s = ll_sampler_new(&p, N);
    logits[5] = NAN;
    logits[7] = INFINITY;
    ll_sampler_probs(s, logits, probs);
    CHECK(probs[5] == 0 && probs[7] > 0.99f, "nan/inf logits");
    ll_sampler_free(s);
    CHECK(ll_sampler_new(&p, 0) == NULL, "empty vocab rejected");
    CHECK(ll_sampler_sample(NULL, logits) == -1, "NULL sampler");
}

static void test_draw_helpers(void) {
    // ll_sampler_draw from an unnormalised weight vector, zeros and junk never drawn.
    enum { K = 6, DRAWS = 20000 };
    const float w[K] = { 2.0f, 0.0f, 1.0f, -3.0f, 1.0f, NAN };
    const double want[K] = { 0.5, 0, 0.25, 0, 0.25, 0 };
    ll_sampler_params p = plain();
    p.seed = 5;
    ll_sampler *s = ll_sampler_new(&p, K);
    int counts[K] = { 0 };
    for (int i = 0; i < DRAWS; i++) {
        ll_token t = ll_sampler_draw(s, w, K);
        if (t >= 0 && t < K) counts[t]++;
    }
    double chi = 0;
    for (int i = 0; i < K; i++) {
        if (want[i] == 0) { CHECK(counts[i] == 0, "draw: weight 0 drawn (%d)", i); continue; }
        double e = want[i] * DRAWS;
        chi += (counts[i] - e) * (counts[i] - e) / e;
    }
    CHECK(chi < 13.82, "draw chi2 %.2f", chi); // 2 dof, 0.999 quantile
    const float zeros[3] = { 0, 0, 0 };
    CHECK(ll_sampler_draw(s, zeros, 3) == -1, "draw from nothing");
    double u = ll_sampler_uniform(s), mean = 0;
    CHECK(u >= 0 && u < 1, "uniform range");
    for (int i = 0; i < DRAWS; i++) mean += ll_sampler_uniform(s);
    mean /= DRAWS;
    CHECK(fabs(mean - 0.5) < 0.01, "uniform mean %g", mean); // sd 0.002
    ll_sampler_free(s);
}


// ---- llama.cpp's further samplers ---------------------------------------------------------

// Softmax of logits[0..n) in double, into want.
static void softmax_ref(const double *logits, int n, double *want) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += want[i] = isinf(logits[i]) ? 0 : exp(logits[i]);
    for (int i = 0; i < n; i++) want[i] /= sum;
}

// The sampler's distribution for logits equals the softmax of ref (-INFINITY: removed).
static void check_probs(const ll_sampler_params *p, const float *logits, int n, const double *ref,
                        const char *what) {
    float probs[16];
    double want[16];
    ll_sampler *s = ll_sampler_new(p, n);
    ll_sampler_probs(s, logits, probs);
    softmax_ref(ref, n, want);
    CHECK(max_abs_diff(probs, want, n) < 1e-6, "%s", what);
    ll_sampler_free(s);
}

static void test_logit_bias(void) {
    const float logits[4] = { 0, 0, 0, 0 };
    float probs[4];
    const ll_logit_bias bias[] = { { 2, (float)log(3.0) }, { 0, -INFINITY }, { 9, 5.0f } }; // 9: no such token
    ll_sampler_params p = plain();
    p.logit_bias = bias;
    p.n_logit_bias = 3;
    ll_sampler *s = ll_sampler_new(&p, 4);
    ll_sampler_probs(s, logits, probs);
    const double want[4] = { 0, 0.2, 0.6, 0.2 };
    CHECK(max_abs_diff(probs, want, 4) < 1e-6, "logit bias +ln 3, -inf");
    ll_sampler_free(s);
}

static void test_xtc(void) {
    const double pr[4] = { 0.4, 0.3, 0.2, 0.1 };
    float logits[4], probs[4];
    logits_from_probs(pr, 4, logits);
    ll_sampler_params p = plain();
    p.xtc_probability = 1.0f;
    p.xtc_threshold = 0.25f; // 0.4 and 0.3 reach it: all of them but the least likely go
    ll_sampler *s = ll_sampler_new(&p, 4);
    ll_sampler_probs(s, logits, probs);
    const double want[4] = { 0, 0.5, 0.2 / 0.6, 0.1 / 0.6 };
    CHECK(max_abs_diff(probs, want, 4) < 1e-6, "xtc threshold 0.25");
    ll_sampler_free(s);

    p.xtc_threshold = 0.45f; // only 0.4... no: nothing reaches 0.45, nothing goes
    s = ll_sampler_new(&p, 4);
    ll_sampler_probs(s, logits, probs);
    CHECK(max_abs_diff(probs, pr, 4) < 1e-6, "xtc threshold above the top");
    ll_sampler_free(s);
    p.xtc_threshold = 0.6f; // > 0.5: off
    p.temp = 0.0f;
    s = ll_sampler_new(&p, 4);
    CHECK(ll_sampler_sample(s, logits) == 0, "xtc threshold > 0.5 is off");
    ll_sampler_free(s);
    p.xtc_threshold = 0.25f; // greedy picks the best survivor
    s = ll_sampler_new(&p, 4);
    CHECK(ll_sampler_sample(s, logits) == 1, "xtc then greedy");
    ll_sampler_free(s);

    // With probability 0.5 the cut happens about half of the time.
    p.temp = 1.0f;
    p.xtc_probability = 0.5f;
    s = ll_sampler_new(&p, 4);
    int cut = 0;
    for (int i = 0; i < 2000; i++) {
        ll_sampler_probs(s, logits, probs);
        cut += probs[0] == 0.0f;
    }
    CHECK(cut > 900 && cut < 1100, "xtc probability 0.5: %d cuts of 2000", cut); // sd 22
    ll_sampler_free(s);
}

static void test_top_n_sigma(void) {
    // mean 1, standard deviation sqrt(2) (over the candidates, not the sample's sqrt(2.5)):
    // 1.3 sigma keeps the logits >= 3 - 1.84 (with sqrt(2.5), 1 would be kept too).
    const float logits[5] = { 1, 3, 0, 2, -1 };
    ll_sampler_params p = plain();
    p.top_n_sigma = 1.3f;
    p.min_p = 0.9f; // llama.cpp's top-n-sigma chain ignores the other filters
    const double l1[5] = { -INFINITY, 3, -INFINITY, 2, -INFINITY };
    check_probs(&p, logits, 5, l1, "top-n-sigma 1.3");
    // Temperature first: logits / 2 have sigma 0.707; 2.5 sigma keeps >= 1.5 - 1.77.
    p.temp = 2.0f;
    p.top_n_sigma = 2.5f;
    const double l2[5] = { 0.5, 1.5, 0, 1, -INFINITY };
    check_probs(&p, logits, 5, l2, "top-n-sigma 2.5 at temperature 2");
    // top-k still applies (before the temperature).
    p.top_k = 2;
    p.top_n_sigma = 10.0f;
    const double l3[5] = { -INFINITY, 1.5, -INFINITY, 1, -INFINITY };
    check_probs(&p, logits, 5, l3, "top-n-sigma after top-k");
}

static void test_mirostat(void) {
    // Mirostat 1 on Zipf probabilities p_i ~ 1/(i+1)^2: the estimated exponent is exactly 2,
    // so k = sqrt(2^mu / (1 - 1/n_vocab)); with tau 1 (mu = 2) and 5 tokens, k = sqrt(5): 2 kept.
    double pr[5], sum = 0;
    for (int i = 0; i < 5; i++) sum += pr[i] = 1.0 / ((i + 1) * (i + 1));
    for (int i = 0; i < 5; i++) pr[i] /= sum;
    float logits[5], probs[5];
    logits_from_probs(pr, 5, logits);
    ll_sampler_params p = plain();
    p.mirostat = 1;
    p.mirostat_tau = 1.0f;
    p.top_k = 1; // ignored by Mirostat
    ll_sampler *s = ll_sampler_new(&p, 5);
    ll_sampler_probs(s, logits, probs);
    const double want1[5] = { 0.8, 0.2, 0, 0, 0 };
    CHECK(max_abs_diff(probs, want1, 5) < 1e-5, "mirostat 1, tau 1");
    ll_sampler_free(s);
    p.mirostat_tau = 2.0f; // mu 4: k = sqrt(20) = 4.47, 4 kept
    s = ll_sampler_new(&p, 5);
    ll_sampler_probs(s, logits, probs);
    CHECK(count_nonzero(probs, 5) == 4 && fabs(probs[0] - pr[0] / (1 - pr[4])) < 1e-5, "mirostat 1, tau 2");
    ll_sampler_free(s);

    // Mirostat 2 keeps the tokens whose surprise -log2 p is at most mu (2 tau at first).
    const double pr2[5] = { 0.5, 0.25, 0.125, 0.0625, 0.0625 }; // surprises 1, 2, 3, 4, 4 bits
    logits_from_probs(pr2, 5, logits);
    p.mirostat = 2;
    p.mirostat_tau = 1.5f; // mu 3
    p.mirostat_eta = 1.0f;
    s = ll_sampler_new(&p, 5);
    ll_sampler_probs(s, logits, probs);
    const double want2[5] = { 0.5 / 0.875, 0.25 / 0.875, 0.125 / 0.875, 0, 0 };
    CHECK(max_abs_diff(probs, want2, 5) < 1e-6, "mirostat 2, mu 3");
    // A draw moves mu by eta * (its surprise - tau): 3 - (-log2 p_t - 1.5).
    ll_token t = ll_sampler_sample(s, logits);
    CHECK(t >= 0 && t <= 2, "mirostat 2 draws among the kept");
    double mu = 3.0 - (-log2(want2[t < 0 ? 0 : t]) - 1.5);
    int keep = 0;
    while (keep < 5 && -log2(pr2[keep]) <= mu) keep++;
    ll_sampler_probs(s, logits, probs);
    CHECK(count_nonzero(probs, 5) == (keep ? keep : 1), "mirostat 2 after drawing %d: mu %.3f keeps %d, got %d",
          t, mu, keep, count_nonzero(probs, 5));
    ll_sampler_reset(s); // mu back to 2 tau
    ll_sampler_probs(s, logits, probs);
    CHECK(max_abs_diff(probs, want2, 5) < 1e-6, "mirostat 2 reset");
    ll_sampler_free(s);
}

static void test_dry(void) {
    enum { N = 6 };
    const float logits[N] = { 0 };
    float probs[N];
    ll_sampler_params p = plain();
    p.dry_multiplier = 0.5f;
    p.dry_base = 2.0f;
    p.dry_allowed_length = 2;
    // History 1 2 3 4 1 2 3 4 1 2: its last 6 tokens "1 2 3 4 1 2" also end at the 6th, where
    // 3 followed: emitting 3 extends a repeat of 6, penalty 0.5 * 2^(6 - 2) = 8.
    const ll_token hist[] = { 1, 2, 3, 4, 1, 2, 3, 4, 1, 2 };
    ll_sampler *s = ll_sampler_new(&p, N);
    for (int i = 0; i < 10; i++) ll_sampler_accept(s, hist[i]);
    ll_sampler_probs(s, logits, probs);
    double l[N] = { 0, 0, 0, -8, 0, 0 }, want[N];
    softmax_ref(l, N, want);
    CHECK(max_abs_diff(probs, want, N) < 1e-6, "dry repeat of 6");
    // A saved state brings the history back after tokens tried ahead (speculative drafts).
    ll_sampler_state *st = ll_sampler_save(s);
    ll_sampler_accept(s, 3);
    ll_sampler_accept(s, 5);
    ll_sampler_probs(s, logits, probs);
    CHECK(max_abs_diff(probs, want, N) > 0.01, "dry history moved on");
    ll_sampler_restore(s, st);
    ll_sampler_state_free(s, st);
    ll_sampler_probs(s, logits, probs);
    CHECK(max_abs_diff(probs, want, N) < 1e-6, "dry history restored");
    ll_sampler_free(s);
    // Within the last 4 tokens "3 4 1 2" nothing repeats.
    p.dry_penalty_last_n = 4;
    s = ll_sampler_new(&p, N);
    for (int i = 0; i < 10; i++) ll_sampler_accept(s, hist[i]);
    ll_sampler_probs(s, logits, probs);
    CHECK(count_nonzero(probs, N) == N && fabs(probs[3] - 1.0 / N) < 1e-6, "dry window 4");
    ll_sampler_free(s);
    // A repeat of 1 ("2" alone) is below the allowed length: no penalty for 3 after "... 4 1 2"
    // when only "1 2" repeats: penalty 0.5 * 2^0.
    p.dry_penalty_last_n = -1;
    const ll_token hist2[] = { 1, 2, 3, 4, 1, 2 };
    s = ll_sampler_new(&p, N);
    for (int i = 0; i < 6; i++) ll_sampler_accept(s, hist2[i]);
    ll_sampler_probs(s, logits, probs);
    double l2[N] = { 0, 0, 0, -0.5, 0, 0 };
    softmax_ref(l2, N, want);
    CHECK(max_abs_diff(probs, want, N) < 1e-6, "dry repeat of 2");
    ll_sampler_free(s);

    // -1 reaches back over the whole history, however long: "100 101 102 103" followed by 5,
    // then 70000 tokens that never repeat, then "100 101 102 103" again: 5 extends a repeat of
    // 4 (penalty 0.5 * 2^2 = 2). A window of 1000 does not see the first occurrence.
    enum { NV = 72000, FILL = 70000 };
    float *big_logits = calloc(NV, sizeof(float)), *big_probs = malloc(sizeof(float) * NV);
    for (int last_n = -1; big_logits && big_probs && last_n <= 1000; last_n += 1001) {
        p.dry_penalty_last_n = last_n;
        s = ll_sampler_new(&p, NV);
        for (int i = 0; i < 4; i++) ll_sampler_accept(s, 100 + i);
        ll_sampler_accept(s, 5);
        for (int i = 0; i < FILL; i++) ll_sampler_accept(s, 1000 + i);
        for (int i = 0; i < 4; i++) ll_sampler_accept(s, 100 + i);
        ll_sampler_probs(s, big_logits, big_probs);
        const double ratio = big_probs[5] / big_probs[0], want_ratio = last_n < 0 ? exp(-2.0) : 1.0;
        CHECK(fabs(ratio - want_ratio) < 1e-4, "dry-penalty-last-n %d over %d tokens: p(5)/p(0) %g, expected %g",
              last_n, FILL + 9, ratio, want_ratio);
        ll_sampler_free(s);
    }
    free(big_logits);
    free(big_probs);

    // Sequence breakers need a vocabulary: ':' limits how far back a repeat reaches.
    const char *dir = test_shared_dir();
    if (!dir) return;
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-llama-spm.gguf", dir);
    ll_model_params mp = ll_model_default_params();
    mp.vocab_only = true;
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    if (!m) return;
    const ll_vocab *v = ll_model_get_vocab(m);
    const int nv = ll_vocab_n_tokens(v);
    ll_token w[4], colon = -1;
    CHECK(ll_tokenize(v, "one two six", 11, w, 4, false, false) == 3, "three words");
    for (ll_token t = 0; t < nv && colon < 0; t++) {
        char piece[8];
        if (ll_token_to_piece(v, t, piece, sizeof piece, true) == 1 && piece[0] == ':') colon = t;
    }
    // ": one two six : one two": ": one two" repeats (3), followed by "six".
    const ll_token hist3[] = { colon, w[0], w[1], w[2], colon, w[0], w[1] };
    float *big = calloc((size_t)nv, sizeof *big), *bigp = calloc((size_t)nv, sizeof *bigp);
    for (int with_breakers = 0; with_breakers < 2; with_breakers++) {
        p.dry_multiplier = 1.0f;
        p.vocab = with_breakers ? v : NULL;
        s = ll_sampler_new(&p, nv);
        for (int i = 0; i < 7; i++) ll_sampler_accept(s, hist3[i]);
        ll_sampler_probs(s, big, bigp);
        // Without breakers: six extends a repeat of 3, penalty 2^1; with ':' the repeat stops
        // after it (2 tokens), penalty 2^0; ':' itself is never penalised.
        double pen = log(bigp[w[0]] / bigp[w[2]]);
        CHECK(fabs(pen - (with_breakers ? 1.0 : 2.0)) < 1e-4, "dry %s breakers: penalty %g",
              with_breakers ? "with" : "without", pen);
        ll_sampler_free(s);
    }
    free(big);
    free(bigp);
    ll_model_free(m);
}

static void test_order(void) {
    // Penalties before or after top-k choose different survivors.
    const float logits[3] = { 3.0f, 2.9f, 1.0f };
    float probs[3];
    ll_sampler_params p = plain();
    p.top_k = 2;
    p.presence_penalty = 5.0f;
    p.repeat_last_n = 8;
    for (int k = 0; k < 2; k++) {
        strcpy(p.order, k ? "ke" : "ek");
        ll_sampler *s = ll_sampler_new(&p, 3);
        ll_sampler_accept(s, 0);
        ll_sampler_probs(s, logits, probs);
        double l[3] = { k ? -2.0 : -INFINITY, 2.9, k ? -INFINITY : 1.0 }, want[3];
        softmax_ref(l, 3, want);
        CHECK(max_abs_diff(probs, want, 3) < 1e-6, "order %s", p.order);
        ll_sampler_free(s);
    }
    // Without 't' the temperature (here greedy) does not apply.
    p.temp = 0.0f;
    p.presence_penalty = 0.0f;
    strcpy(p.order, "k");
    const double top2[3] = { 3.0, 2.9, -INFINITY };
    check_probs(&p, logits, 3, top2, "order k without t");
    strcpy(p.order, "kt");
    const double top1[3] = { 3.0, -INFINITY, -INFINITY };
    check_probs(&p, logits, 3, top1, "order kt greedy");
}

int main(void) {
    test_greedy();
    test_top_k();
    test_top_k_ties();
    test_top_p();
    test_min_p();
    test_typical();
    test_temperature();
    test_reference_chain();
    test_penalties();
    test_draws();
    test_seeds();
    test_draw_helpers();
    test_constraint_and_bad_input();
    test_logit_bias();
    test_xtc();
    test_top_n_sigma();
    test_mirostat();
    test_dry();
    test_order();
    return test_result("test_sampling");
}
