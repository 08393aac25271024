// Golden test: the forward pass against the reference engine's greedy runs
// (../shared/golden/<model>.jsonl). The golden prompt tokens are decoded directly, so this test
// does not depend on the tokenizer. At every step our argmax must be the reference's token (on
// the random-weight models: unless it is a near tie) and each of the reference's top-8 logits
// must agree within the tolerance below.
// Runs with 1 and 2 threads.
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "ggml-lite/ggml-lite.h"
#include "tests/golden_file.h"
#include "tests/test_util.h"

typedef struct {
    double max_rel, max_abs, sum_rel;
    int n_rel;
    int steps, argmax_miss, top_miss, near_ties;
} stats;

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

// The fidelity policy (issue 19), for every kernel set. Trained models: each of the reference's
// top-8 logits within 2% or 0.05 at every step, the mean relative error under 2%, and our argmax
// the reference's token. The random 14-layer models (mixed-*) re-quantize their activations to
// 8 bits in every layer and are chaotic: any summation order but the reference's own flips
// roundings that grow to percent-level differences on single logits even with the reference's
// tokens fed at every step. The reference itself shows it: llama.cpp built for this CPU
// (AVX-512) parts from these goldens (made by its AVX2 build) by up to 3.2% on a logit, and at
// near ties with top-2 margins up to 0.9%. There: 4% per logit, a mean under 1%, and our argmax
// may differ only where the reference's logit for it is within 1.5% of its top logit (a near
// tie). A wrong kernel is far outside all of these.
typedef struct { double rel, abs, mean_rel, tie; } tolerance;
static const tolerance trained = {0.02, 0.05, 0.02, 0};
static const tolerance random_weights = {0.04, 0.05, 0.01, 0.015};

static void run_case(ll_context *c, int n_vocab, const golden_case *g, stats *st, const char *tag,
                     const tolerance *tol) {
    char err[256];
    ll_kv_clear(c);
    int rc = ll_decode(c, g->prompt, g->n_prompt, err, sizeof err);
    CHECK(rc == 0, "%s: decode of the prompt failed: %s", tag, err);
    if (rc) return;
    for (int k = 0; k < g->n_steps; k++) {
        const float *lg = ll_get_logits(c);
        CHECK(lg != NULL, "%s: no logits", tag);
        if (!lg) return;
        int am = argmax(lg, n_vocab);
        st->steps++;
        double top1 = g->top_logit[k][0], pick = -1e30; // the reference's logit for our pick
        for (int j = 0; j < GOLDEN_TOP; j++)
            if (g->top_id[k][j] == am) pick = g->top_logit[k][j];
        const bool near_tie = top1 - pick <= tol->tie * fabs(top1);
        if (am != g->token[k] && near_tie) st->near_ties++;
        if (am != g->token[k] && !near_tie) {
            st->argmax_miss++;
            CHECK(am == g->token[k], "%s step %d: argmax %d (%.4f, reference %.4f), reference %d (%.4f, ours %.4f)",
                  tag, k, am, lg[am], pick, g->token[k], top1, lg[g->token[k]]);
        }
        for (int j = 0; j < GOLDEN_TOP; j++) {
            ll_token id = g->top_id[k][j];
            if (id < 0 || id >= n_vocab) continue;
            double ref = g->top_logit[k][j], d = fabs(lg[id] - ref);
            double rel = d / (fabs(ref) > 1e-6 ? fabs(ref) : 1e-6);
            if (rel > st->max_rel) st->max_rel = rel;
            st->sum_rel += rel;
            st->n_rel++;
            if (d > st->max_abs) st->max_abs = d;
            if (!(d <= tol->abs || rel <= tol->rel)) {
                st->top_miss++;
                CHECK(0, "%s step %d: logit of %d is %.5f, reference %.5f", tag, k, id, lg[id], ref);
            }
        }
        // Feed the reference's token so one miss does not derail the rest.
        rc = ll_decode(c, &g->token[k], 1, err, sizeof err);
        CHECK(rc == 0, "%s step %d: decode failed: %s", tag, k, err);
        if (rc) return;
    }
}

// fused: also with fused attention (see golden_file.h: not for the random models).
static void run_file(const char *shared, const char *name, const tolerance *tol, bool fused) {
    char path[1024], gpath[1024], err[512];
    snprintf(path, sizeof path, "%s/models/%s.gguf", shared, name);
    snprintf(gpath, sizeof gpath, "%s/golden/%s.jsonl", shared, name);

    static golden_case cases[16];
    const int n_cases = golden_load(gpath, cases, 16);
    if (!n_cases) return;

    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", path, err);
    if (!m) return;
    int n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m));

    const ll_flash_attn modes[] = {LL_FLASH_ATTN_OFF, LL_FLASH_ATTN_AUTO};
    for (int fa = 0; fa < (fused ? 2 : 1); fa++)
        for (int nt = 1; nt <= 2; nt++) {
            ll_context *c = golden_context(m, nt, modes[fa]);
            if (!c) continue;
            stats st = {0};
            char tag[128];
            for (int i = 0; i < n_cases; i++) {
                snprintf(tag, sizeof tag, "%s case %d threads %d -fa %s", name, i, nt, golden_fa_name[modes[fa]]);
                run_case(c, n_vocab, &cases[i], &st, tag, tol);
            }
            double mean = st.n_rel ? st.sum_rel / st.n_rel : 0;
            CHECK(mean <= tol->mean_rel, "%s threads %d: mean relative error %.4f above %.4f", name, nt, mean, tol->mean_rel);
            printf("%-22s threads %d -fa %-4s: %d cases, %d steps, argmax misses %d (near ties %d), top-8 misses %d, "
                   "max rel err %.2e, mean rel err %.2e, max abs err %.2e\n", name, nt, golden_fa_name[modes[fa]],
                   n_cases, st.steps, st.argmax_miss, st.near_ties, st.top_miss, st.max_rel, mean, st.max_abs);
            ll_context_free(c);
        }
    ll_model_free(m);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    printf("kernels: %s\n", gl_simd_name());
    run_file(shared, "stories260K", &trained, true);
    run_file(shared, "stories260K-f16", &trained, true);
    run_file(shared, "mixed-types", &random_weights, false);
    run_file(shared, "mixed-base-q8_0", &random_weights, false);
    return test_result("test_golden");
}
