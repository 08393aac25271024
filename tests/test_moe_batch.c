// The three ways the MoE block runs a chunk must agree (../shared/models/arch MoE models):
//   - one token at a time (each thread whole experts when the k chosen share out evenly, else
//     every expert's rows split over the threads);
//   - a prompt with few experts in use per thread, or exact batches: expert after expert;
//   - a prompt with many experts in use: whole experts side by side on the threads.
// With exact batches (speculative verification) every row of a batch is bitwise the logits
// the same token gets decoded alone; without, the batched kernels round differently (about 0.3%
// of the largest logit on these models, whose output norms amplify; a token sent to the wrong
// expert moves logits by tens of percent), so rows must agree to 1% of the largest logit. Runs
// with 1, 2 and 3 threads (2: all 8 experts in use, side by side; 3: a token's 2 experts split
// over the threads row by row).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/llamalite.h"
#include "tests/test_util.h"

enum { V = 32000, N = 24 };

static void check_model(const char *shared, const char *name) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/arch/%s.gguf", shared, name);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    if (!m) return;
    const char *text = "The experts of a mixture each see only the tokens that chose them, and no others.";
    ll_token toks[N];
    const int n = ll_tokenize(ll_model_get_vocab(m), text, (int)strlen(text), toks, N, true, false);
    CHECK(n >= 16, "%s: prompt of %d tokens", name, n);
    static float alone[N][V];
    for (int nt = 1; nt <= 3; nt++) {
        ll_context_params cp = ll_context_default_params();
        cp.n_ctx = 64;
        cp.n_threads = nt;
        cp.logits_all = true;
        ll_context *c = ll_context_new(m, &cp, err, sizeof err);
        CHECK(c != NULL, "%s: context: %s", name, err);
        if (!c) continue;
        for (int i = 0; i < n; i++) {
            CHECK(ll_decode(c, &toks[i], 1, err, sizeof err) == 0, "%s: decode: %s", name, err);
            memcpy(alone[i], ll_get_logits(c), sizeof(float) * V);
        }
        for (int exact = 0; exact <= 1; exact++) {
            ll_kv_clear(c);
            ll_set_exact_batches(c, exact);
            CHECK(ll_decode(c, toks, n, err, sizeof err) == 0, "%s: batch decode: %s", name, err);
            double worst = 0, top = 0;
            int differ = 0;
            for (int i = 0; i < n; i++) {
                const float *lg = ll_get_logits_ith(c, i);
                for (int v = 0; lg && v < V; v++) {
                    worst = fmax(worst, fabs((double)lg[v] - alone[i][v]));
                    top = fmax(top, fabs((double)alone[i][v]));
                    differ += lg[v] != alone[i][v];
                }
            }
            printf("%-9s threads %d exact %d: max |batch - alone| %.3g (largest logit %.3g), %d differ\n", name, nt,
                   exact, worst, top, differ);
            if (exact) CHECK(differ == 0, "%s threads %d: %d exact-batch logits differ from one-token decodes", name, nt,
                             differ);
            else CHECK(worst <= 1e-2 * top, "%s threads %d: batch and one-token logits differ by %.3g", name, nt, worst);
        }
        ll_set_exact_batches(c, false);
        ll_context_free(c);
    }
    ll_model_free(m);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    check_model(shared, "llama-moe");
    check_model(shared, "qwen2moe");
    check_model(shared, "qwen3moe");
    return test_result("test_moe_batch");
}
