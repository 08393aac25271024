// The routers' rules (forward/moe_route.c), on logits whose answers are worked out by hand:
//   softmax then top-k, renormalized (Mixtral, Qwen3-MoE) or not (Qwen2-MoE);
//   top-k of the logits then a softmax over those k (gpt-oss).
// The model goldens cover the first two end to end; this pins the selection and the weights.
#include <math.h>
#include <stdio.h>

#include "engine/forward/blocks.h"
#include "tests/test_util.h"

static void expect(const char *what, const ll_hparams *hp, const float *logits, const int *want_sel,
                   const float *want_w) {
    float probs[16], w[16];
    int sel[16];
    ll_moe_route(hp, logits, probs, sel, w);
    for (int j = 0; j < hp->n_expert_used; j++) {
        CHECK(sel[j] == want_sel[j], "%s: choice %d is expert %d, expected %d", what, j, sel[j], want_sel[j]);
        CHECK(fabsf(w[j] - want_w[j]) < 1e-6f, "%s: weight %d is %.7f, expected %.7f", what, j, w[j], want_w[j]);
    }
}

int main(void) {
    const float logits[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 3.0f};
    double z = 0;
    for (int i = 0; i < 6; i++) z += exp(logits[i]);
    const float p5 = (float)(exp(3.0) / z), p1 = (float)(exp(2.0) / z);
    ll_hparams hp = {.n_expert = 6, .n_expert_used = 3, .moe_gating = LL_MOE_SOFTMAX_TOPK};

    // Experts 5, then the tie 1 / 3 (the earlier expert first).
    hp.moe_norm_w = false;
    expect("softmax, top-3", &hp, logits, (int[]){5, 1, 3}, (float[]){p5, p1, p1});
    hp.moe_norm_w = true;
    const float s = p5 + 2 * p1;
    expect("softmax, top-3, renormalized", &hp, logits, (int[]){5, 1, 3}, (float[]){p5 / s, p1 / s, p1 / s});

    // Top-2 logits (5, 1), softmax over them: e^3 / (e^3 + e^2) = 1 / (1 + e^-1).
    hp.n_expert_used = 2;
    hp.moe_gating = LL_MOE_TOPK_SOFTMAX;
    const float a = (float)(1.0 / (1.0 + exp(-1.0)));
    expect("top-2, softmax", &hp, logits, (int[]){5, 1}, (float[]){a, 1 - a});

    // Every expert used: the order is the logits' and the weights are the whole softmax.
    const float flat[4] = {-2.0f, 4.0f, 4.5f, 0.0f};
    hp = (ll_hparams){.n_expert = 4, .n_expert_used = 4, .moe_gating = LL_MOE_SOFTMAX_TOPK};
    double zf = 0;
    for (int i = 0; i < 4; i++) zf += exp(flat[i]);
    expect("softmax, all", &hp, flat, (int[]){2, 1, 3, 0},
           (float[]){(float)(exp(4.5) / zf), (float)(exp(4.0) / zf), (float)(1 / zf), (float)(exp(-2.0) / zf)});
    return test_result("test_moe_route");
}
