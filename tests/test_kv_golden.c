// Golden test of a quantized KV cache with fused attention: the reference engine's greedy run of
// mixed-base-q8_0.gguf with -ctk q8_0 -ctv q8_0 -fa (../shared/golden/kv/mixed-base-q8_0.q8_0.jsonl).
// The reference's tokens are fed at every step. The model has random weights and re-quantizes
// its activations every layer, so the fidelity policy's random-weight band applies (issue 19,
// as in test_golden): each of the reference's top-8 logits within 4% (or 0.05 absolute), the
// mean relative error under 1%, and our argmax may differ from its token only where the
// reference's logit for ours is within 4% of its top (a near tie that a last-bit difference
// may turn: any summation order but the reference's does; the q8_0 cache's rounding, which
// this model amplifies, widens test_golden's 1.5% band here: the scalar set parts at a 3.8%
// margin). The reference is no steadier: this golden came from llama.cpp's AVX-512 build, and
// its AVX2 build is 1.6% away from it. Runs with -fa on and, since a quantized V does not need
// it here, with -fa off; 1 and 2 threads.
// On CPUs with AVX512-BF16 the fused kernel weighs Q8_0 values by bf16 dot products (each weight
// times its row's scale rounded to bf16, 2^-9 relative): measured on this model, up to 5.1% on a
// logit, mean 1.2%, a parting at a 5.4% margin; its -fa runs are held to 6%, 1.5% and 6% then.
// That rounding costs users nothing measurable: the KL divergence of a q8_0 cache from the F16
// cache on the 1.1B benchmark model (war-and-peace, 2 x 1024 tokens) is 0.001529 with it,
// 0.001524 without, and llama.cpp's own 0.001539; and llama.cpp's -fa itself parts from its
// F16 goldens by up to 6.6% on these random models (tests/golden_file.h).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/llamalite.h"
#include "ggml-lite/dot.h"
#include "ggml-lite/ggml-lite.h"
#include "tests/golden_file.h"
#include "tests/test_util.h"

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

typedef struct {
    int steps, ties_parted, n_rel;
    double max_rel, sum_rel;
} stats;

typedef struct { double rel, mean, tie; } tolerance;
static const tolerance f32_values = {0.04, 0.01, 0.04}, bf16_values = {0.06, 0.015, 0.06};

static void run_case(ll_context *c, int n_vocab, const golden_case *g, const char *tag, stats *st, const tolerance *tol) {
    char err[256];
    ll_kv_clear(c);
    int rc = ll_decode(c, g->prompt, g->n_prompt, err, sizeof err);
    CHECK(rc == 0, "%s: prompt: %s", tag, err);
    for (int k = 0; k < g->n_steps && rc == 0; k++) {
        const float *lg = ll_get_logits(c);
        const int am = argmax(lg, n_vocab);
        double top1 = g->top_logit[k][0], pick = -1e30; // the reference's logit for our pick
        for (int j = 0; j < GOLDEN_TOP; j++)
            if (g->top_id[k][j] == am) pick = g->top_logit[k][j];
        const bool near_tie = top1 - pick <= tol->tie * fabs(top1);
        st->steps++;
        if (am != g->token[k]) {
            st->ties_parted += near_tie;
            CHECK(near_tie, "%s step %d: argmax %d, reference %d (its margin to ours %.4f is no near-tie)", tag, k, am,
                  g->token[k], top1 - pick);
        }
        for (int j = 0; j < GOLDEN_TOP; j++) {
            const ll_token id = g->top_id[k][j];
            if (id < 0 || id >= n_vocab) continue;
            const double ref = g->top_logit[k][j], d = fabs(lg[id] - ref), rel = d / fmax(fabs(ref), 1e-6);
            if (rel > st->max_rel) st->max_rel = rel;
            st->sum_rel += rel;
            st->n_rel++;
            CHECK(d <= 0.05 || rel <= tol->rel, "%s step %d: logit of %d is %.5f, reference %.5f", tag, k, id, lg[id], ref);
        }
        rc = ll_decode(c, &g->token[k], 1, err, sizeof err);
        CHECK(rc == 0, "%s step %d: %s", tag, k, err);
    }
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    printf("kernels: %s\n", gl_simd_name());
    char path[1024], gpath[1024], err[512];
    snprintf(path, sizeof path, "%s/models/mixed-base-q8_0.gguf", shared);
    snprintf(gpath, sizeof gpath, "%s/golden/kv/mixed-base-q8_0.q8_0.jsonl", shared);
    static golden_case cases[8];
    const int n_cases = golden_load(gpath, cases, 8);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = n_cases ? ll_model_load(path, &mp, err, sizeof err) : NULL;
    CHECK(m != NULL, "load %s: %s", path, err);
    if (!m) return test_result("test_kv_golden");
    const int n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m));
    const ll_flash_attn modes[] = {LL_FLASH_ATTN_ON, LL_FLASH_ATTN_OFF};
    const bool bf16 = gl_kernels()->attn->accumulate_q8_0 != NULL;
    printf("fused Q8_0 values: %s\n", bf16 ? "bf16 dot products" : "float");
    for (int fa = 0; fa < 2; fa++)
        for (int nt = 1; nt <= 2; nt++) {
            const tolerance *tol = modes[fa] == LL_FLASH_ATTN_ON && bf16 ? &bf16_values : &f32_values;
            ll_context_params cp = ll_context_default_params();
            cp.n_ctx = 512;
            cp.n_threads = nt;
            cp.type_k = cp.type_v = LL_CACHE_Q8_0;
            cp.flash_attn = modes[fa];
            ll_context *c = ll_context_new(m, &cp, err, sizeof err);
            CHECK(c != NULL, "context: %s", err);
            if (!c) continue;
            stats st = {0};
            for (int i = 0; i < n_cases; i++) {
                char tag[96];
                snprintf(tag, sizeof tag, "case %d -fa %s threads %d", i, fa ? "off" : "on", nt);
                run_case(c, n_vocab, &cases[i], tag, &st, tol);
            }
            const double mean = st.n_rel ? st.sum_rel / st.n_rel : 0;
            CHECK(mean <= tol->mean, "-fa %s threads %d: mean relative error %.4f", fa ? "off" : "on", nt, mean);
            printf("q8_0/q8_0 -fa %-3s threads %d: %d steps, max rel err %.2e, mean %.2e, near-ties parted %d\n",
                   fa ? "off" : "on", nt, st.steps, st.max_rel, mean, st.ties_parted);
            ll_context_free(c);
        }
    ll_model_free(m);
    return test_result("test_kv_golden");
}
