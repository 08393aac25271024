// Context shift with every rotary setting.
//
// 1. Rotation alone: for synthetic settings (normal and NeoX pairs, partial rotation, linear
//    scaling, frequency divisors, YaRN, LongRoPE's attention factor) a key roped at p and
//    shifted by d equals the key roped at p + d, in F32 and F16 rows.
// 2. Each family model of ../shared/models/arch, layer by layer: a view of the model made of
//    that one layer generates past a small context with shifts, and after every shift its
//    cache and logits equal a fresh evaluation of the surviving tokens at their new positions.
//    With one layer a cached key depends only on its token and position, so the two must agree
//    up to float rounding (an F32 cache: F16 rounds twice on a shift, which these random
//    models, with their sharp attention, amplify). Every layer is tried because layers differ
//    in rotary setting (gemma3's local base vs its linearly scaled global one) and in sliding
//    window (gemma2/3). phi3 is also run with LongRoPE factors on its global setting.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/context/context.h"
#include "engine/forward/forward.h"
#include "engine/llamalite.h"
#include "tests/test_util.h"

// ---- 1. rotation alone -------------------------------------------------------------------------

static void rope_at(const ll_rope *r, float *x, int n_heads, int hd, int pos) {
    float cs[256];
    ll_rope_cache(r, hd, pos, cs);
    gl_rope_apply(&r->p, cs, x, n_heads, hd);
}

// Keys roped at p then shifted by delta vs roped at p + delta, in F32 and F16 rows.
static void check_setting(const char *name, const ll_rope *r) {
    enum { HEADS = 2, HD = 64 };
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int t = 0; t < 6; t++) {
        const int p = 10 + 37 * t, delta = -(3 + 11 * t);
        float k0[HEADS * HD], a[HEADS * HD], b[HEADS * HD];
        for (int i = 0; i < HEADS * HD; i++) k0[i] = test_gauss(&seed);
        memcpy(a, k0, sizeof a);
        rope_at(r, a, HEADS, HD, p);
        ll_rope_shift(r, a, false, HEADS, HD, delta);
        memcpy(b, k0, sizeof b);
        rope_at(r, b, HEADS, HD, p + delta);
        gl_fp16 h[HEADS * HD];
        float hf[HEADS * HD];
        memcpy(hf, k0, sizeof hf);
        rope_at(r, hf, HEADS, HD, p);
        gl_fp32_to_fp16_row(hf, h, HEADS * HD);
        ll_rope_shift(r, h, true, HEADS, HD, delta);
        gl_fp16_to_fp32_row(h, hf, HEADS * HD);
        double d32 = 0, d16 = 0;
        for (int i = 0; i < HEADS * HD; i++) {
            d32 = fmax(d32, fabs((double)a[i] - b[i]));
            d16 = fmax(d16, fabs((double)hf[i] - b[i]));
        }
        CHECK(d32 < 1e-4 && d16 < 1e-2, "%s: p %d shifted by %d differs from p %d: %.3g (f32), %.3g (f16)",
              name, p, delta, p + delta, d32, d16);
    }
}

static void test_rotation(void) {
    static float divisors[32];
    for (int i = 0; i < 32; i++) divisors[i] = 1.0f + 0.25f * (float)i;
    const ll_rope plain = {.p = {.freq_base = 10000, .freq_scale = 1, .mode = GL_ROPE_NORM}, .attn_factor = 1};
    ll_rope r = plain;
    check_setting("normal", &r);
    r.p.mode = GL_ROPE_NEOX;
    check_setting("neox", &r);
    r.p.n_rot = 32;
    check_setting("neox, 32 of 64 rotated", &r);
    r = plain;
    r.p.freq_base = 1e6f;
    r.p.freq_scale = 0.125f;
    check_setting("linear scaling", &r);
    r = plain;
    r.p.freq_base = 500000;
    r.p.freq_factors = divisors;
    check_setting("frequency divisors", &r);
    r = plain;
    r.p.mode = GL_ROPE_NEOX;
    r.p.freq_scale = 0.25f;
    r.ext_factor = 1;
    r.corr_dims[0] = 4;
    r.corr_dims[1] = 20;
    check_setting("yarn", &r);
    r = plain;
    r.p.mode = GL_ROPE_NEOX;
    r.p.freq_factors = divisors;
    r.attn_factor = 1.19f;
    check_setting("longrope", &r);
}

// ---- 2. each family, layer by layer ------------------------------------------------------------

enum { N_CTX = 40, N_KEEP = 5, N_GEN = 110 };

static ll_context *new_ctx(ll_model *m) {
    char err[256];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = N_CTX;
    cp.n_threads = 1;
    cp.type_k = cp.type_v = LL_CACHE_F32;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    return c;
}

// A fresh context that decoded toks[0..n) token by token, as the shifted context decodes them
// (a batch would sum in another order); logits for the last token only.
static ll_context *fresh_eval(ll_model *m, const ll_token *toks, int n) {
    char err[256];
    ll_context *c = new_ctx(m);
    for (int i = 0; c && i < n; i++) {
        ll_set_no_logits(c, i < n - 1);
        if (ll_decode(c, toks + i, 1, err, sizeof err) != 0) {
            CHECK(0, "fresh decode: %s", err);
            ll_context_free(c);
            return NULL;
        }
    }
    return c;
}

// The largest difference between the two (one-layer, F32) caches over positions [0, n),
// relative to the largest value there.
static double cache_diff(const ll_context *a, const ll_context *b, int n) {
    const ll_hparams *hp = &a->model->hp;
    const size_t len = (size_t)n * hp->n_head_kv * hp->head_dim;
    double d = 0, s = 1e-9;
    for (int kv = 0; kv < 2; kv++) {
        const float *x = (const float *)(kv ? a->kv.v : a->kv.k), *y = (const float *)(kv ? b->kv.v : b->kv.k);
        for (size_t i = 0; i < len; i++) {
            const double e = fabs((double)x[i] - y[i]);
            if (!(e <= d)) d = e;
            s = fmax(s, fabs(y[i]));
        }
    }
    return d / s;
}

// The largest logit difference in units of the tolerance max(0.05, 2% |fresh|); *at its id.
static double logit_diff(const float *got, const float *fresh, int n_vocab, int *at) {
    double worst = 0;
    for (int v = 0; v < n_vocab; v++) {
        const double e = fabs((double)got[v] - fresh[v]) / fmax(0.05, 0.02 * fabs(fresh[v]));
        if (!(e <= worst)) worst = e, *at = v; // NaN stays the worst
    }
    return worst;
}

typedef struct {
    int shifts, compared, logits_off;
    double worst_cache, worst_logits; // relative cache difference; logits in tolerance units
} shift_stats;

// Generates N_GEN tokens in a context of N_CTX with shifts that keep N_KEEP and drop half the
// rest; after each shift, and the step after it, compares with a fresh evaluation of the
// surviving tokens: the cache exactly (up to float rounding of the angles), the logits within
// tolerance.
static void generate_with_shifts(ll_model *m, const char *name, int layer, shift_stats *st) {
    char err[256];
    const int n_vocab = m->hp.n_vocab;
    ll_token hist[N_CTX];
    int n_hist = 0, check_left = 0;
    ll_context *c = new_ctx(m);
    for (int i = 0; c && i < N_GEN; i++) {
        if (ll_n_past(c) == N_CTX) {
            const int n_discard = (N_CTX - N_KEEP) / 2;
            ll_kv_shift(c, N_KEEP, n_discard);
            memmove(hist + N_KEEP, hist + N_KEEP + n_discard, (size_t)(n_hist - N_KEEP - n_discard) * sizeof *hist);
            n_hist -= n_discard;
            CHECK(ll_n_past(c) == n_hist, "%s: n_past %d after a shift, expected %d", name, ll_n_past(c), n_hist);
            st->shifts++;
            check_left = 2;
        }
        // Spread-out token ids: every row of the embedding is a different key.
        const ll_token t = (ll_token)(((uint64_t)i * 7919 + 13) % (uint64_t)n_vocab);
        if (ll_decode(c, &t, 1, err, sizeof err) != 0) {
            CHECK(0, "%s layer %d: decode at step %d: %s", name, layer, i, err);
            break;
        }
        hist[n_hist++] = t;
        if (check_left-- <= 0) continue;
        ll_context *f = fresh_eval(m, hist, n_hist);
        if (!f) break;
        const double dc = cache_diff(c, f, n_hist);
        int at = 0;
        const double dl = logit_diff(ll_get_logits(c), ll_get_logits(f), n_vocab, &at);
        CHECK(dc <= 1e-5, "%s layer %d, after shift %d: the cache differs from a fresh evaluation's by %.3g",
              name, layer, st->shifts, dc);
        if (!(dl <= 1.0)) {
            st->logits_off++;
            fprintf(stderr, "%s layer %d, after shift %d: logit %d is %g, a fresh evaluation gives %g\n", name,
                    layer, st->shifts, at, ll_get_logits(c)[at], ll_get_logits(f)[at]);
        }
        st->compared++;
        if (!(dc <= st->worst_cache)) st->worst_cache = dc;
        if (!(dl <= st->worst_logits)) st->worst_logits = dl;
        ll_context_free(f);
    }
    ll_context_free(c);
}

// The model seen as its layer `layer` alone.
static void run_layer(ll_model *m, const char *name, int layer, shift_stats *st) {
    const int n_layer = m->hp.n_layer;
    const ll_layer first = m->layers[0];
    m->hp.n_layer = 1;
    m->layers[0] = m->layers[layer];
    generate_with_shifts(m, name, layer, st);
    m->layers[0] = first;
    m->hp.n_layer = n_layer;
}

static void test_family(const char *dir, const char *name, bool longrope) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/models/arch/%s.gguf", dir, name);
    ll_model *m = ll_model_load(path, NULL, err, sizeof err);
    CHECK(m != NULL, "%s: %s", name, err);
    if (!m) return;
    float factors[128];
    if (longrope) {
        // LongRoPE's long factors and attention factor on the global setting; a context longer
        // than the original one takes the long factors.
        const int n_half = m->hp.n_rot / 2;
        for (int i = 0; i < n_half && i < 128; i++) factors[i] = 1.0f + 3.0f * (float)i / (float)n_half;
        m->rope_long = factors;
        m->hp.n_ctx_orig = N_CTX / 2;
        m->rope[0].attn_factor = 1.19f;
    }
    shift_stats st = {0};
    const char *label = longrope ? "phi3+longrope" : name;
    for (int l = 0; l < m->hp.n_layer; l++) run_layer(m, label, l, &st);
    CHECK(st.shifts > 0 && st.compared > 0, "%s: no shift checked", label);
    // Logits pass through 8-bit activation roundings (the Q8_0 output head): a last-bit
    // difference in a key can flip one and move a few logits past the tolerance. A wrong
    // rotation moves nearly all of them; allow the odd flip.
    CHECK(st.logits_off * 10 <= st.compared, "%s: logits off after %d of %d shifts", label, st.logits_off,
          st.compared);
    printf("%-14s %2d layers: %4d shifts, %4d comparisons: cache within %.2g, logits within %.3f of the "
           "tolerance in %d\n", label, m->hp.n_layer, st.shifts, st.compared, st.worst_cache, st.worst_logits,
           st.compared - st.logits_off);
    if (longrope) m->rope_long = NULL;
    ll_model_free(m);
}

int main(void) {
    test_rotation();
    const char *dir = test_shared_dir();
    if (!dir) {
        printf("test_shift: ../shared absent, model checks skipped\n");
        return test_result("test_shift");
    }
    static const char *const families[] = {"qwen2", "qwen2-yarn", "qwen3", "phi3", "gemma2", "gemma3", "llama31"};
    for (size_t i = 0; i < sizeof families / sizeof *families; i++) test_family(dir, families[i], false);
    test_family(dir, "phi3", true);
    return test_result("test_shift");
}
