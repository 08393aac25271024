// The router of a MoE layer (forward/moe_route.c) on the ../shared/models/arch MoE models, fed
// random normed inputs directly: a chunk's logits, choices and weights with 2 and 3 threads
// (tokens scored in shares on the threads) are bitwise those of 1 thread (one matmul over the
// whole chunk), for chunks of 1 to 9 tokens and of 40; with exact batches, every token's row
// is bitwise what routing it alone gives. A share of a single token would be summed in the
// one-token order and part from the batch in the last bits, which near a routing tie sends
// the token to another expert.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/forward/moe.h"
#include "tests/test_util.h"

enum { N = 40, MAX_EXP = 64, MAX_K = 8, MAX_THREADS = 3 };

typedef struct {
    float logits[N * MAX_EXP], w[N * MAX_K], probs[MAX_THREADS * MAX_EXP], margins[MAX_THREADS];
    int sel[N * MAX_K];
} routes_buf;

static ll_moe_routes routes(routes_buf *b) { return (ll_moe_routes){b->logits, b->sel, b->w, b->probs, b->margins}; }

static ll_context *context(ll_model *m, int n_threads, bool exact) {
    char err[512];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = n_threads;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    if (c) ll_set_exact_batches(c, exact);
    return c;
}

// rows [0, n) of a and b bitwise equal (logits, choices, weights)
static int rows_differ(const ll_hparams *hp, const routes_buf *a, const routes_buf *b, int n) {
    const int e = hp->n_expert, k = hp->n_expert_used;
    int differ = 0;
    for (int t = 0; t < n; t++)
        differ += memcmp(a->logits + t * e, b->logits + t * e, sizeof(float) * e) != 0 ||
                  memcmp(a->sel + t * k, b->sel + t * k, sizeof(int) * k) != 0 ||
                  memcmp(a->w + t * k, b->w + t * k, sizeof(float) * k) != 0;
    return differ;
}

static void check_model(const char *shared, const char *name) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/arch/%s.gguf", shared, name);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "%s: %s", name, err);
    if (!m) return;
    const ll_hparams *hp = &m->hp;
    CHECK(hp->n_expert <= MAX_EXP && hp->n_expert_used <= MAX_K, "%s: %d experts, %d used", name, hp->n_expert,
          hp->n_expert_used);
    static float x[N * 4096];
    uint64_t rng = 0x243F6A8885A308D3ull;
    for (int i = 0; i < N * hp->n_embd && hp->n_embd <= 4096; i++) x[i] = test_gauss(&rng);
    static routes_buf one, many, alone;
    ll_context *c1 = context(m, 1, false);
    const int lens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, N};
    for (int nt = 2; nt <= MAX_THREADS && c1 && hp->n_expert <= MAX_EXP && hp->n_expert_used <= MAX_K; nt++) {
        ll_context *cn = context(m, nt, false), *ce = context(m, nt, true);
        for (int li = 0; cn && ce && li < (int)(sizeof lens / sizeof lens[0]); li++)
            for (int l = 0; l < hp->n_layer; l++) {
                const int n = lens[li];
                ll_moe_routes r1 = routes(&one), rn = routes(&many), ra = routes(&alone);
                CHECK(ll_moe_route_chunk(c1, l, x, n, &r1) && ll_moe_route_chunk(cn, l, x, n, &rn), "%s: route", name);
                const int differ = rows_differ(hp, &one, &many, n);
                CHECK(differ == 0, "%s layer %d, %d tokens, %d threads: %d tokens routed otherwise than with 1 thread",
                      name, l, n, nt, differ);
                // exact batches: each row as routing that token alone
                CHECK(ll_moe_route_chunk(ce, l, x, n, &rn), "%s: route", name);
                int differ_exact = 0;
                for (int t = 0; t < n; t++) {
                    CHECK(ll_moe_route_chunk(c1, l, x + (size_t)t * hp->n_embd, 1, &ra), "%s: route", name);
                    const size_t row = sizeof(float) * hp->n_expert;
                    differ_exact += memcmp(many.logits + t * hp->n_expert, alone.logits, row) != 0;
                }
                CHECK(differ_exact == 0, "%s layer %d, %d tokens, %d threads, exact: %d rows differ from one-token routing",
                      name, l, n, nt, differ_exact);
            }
        ll_context_free(cn);
        ll_context_free(ce);
    }
    ll_context_free(c1);
    ll_model_free(m);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    const char *models[] = {"qwen3moe", "qwen2moe", "llama-moe", "gpt-oss"};
    for (int i = 0; i < 4; i++) check_model(shared, models[i]);
    return test_result("test_moe_router");
}
