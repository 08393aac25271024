// The draft's head copy (engine/draft_head.c): after each decode of a draft context that skips
// its logits (ll_set_no_logits), the logits made from the 4-bit copy plus the exactly
// recomputed best rows have the same best token as a plain decode, bitwise the same logits for
// the best two, and are approximate elsewhere (the copy is really used). Models: stories260K
// (F32 head) and mixed-types (Q8_0 head tied to the embeddings), two threads.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/speculative/draft_head.h"
#include "engine/llamalite.h"
#include "tests/test_util.h"

static void best_two(const float *l, int n, int *b1, int *b2) {
    *b1 = 0;
    *b2 = 1;
    if (l[1] > l[0]) { *b1 = 1; *b2 = 0; }
    for (int i = 2; i < n; i++) {
        if (l[i] > l[*b1]) { *b2 = *b1; *b1 = i; }
        else if (l[i] > l[*b2]) *b2 = i;
    }
}

static void check_model(const char *shared, const char *name) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/models/%s", shared, name);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", path, err);
    if (!m) return;
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 2;
    ll_context *ref = ll_context_new(m, &cp, err, sizeof err), *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(ref && c, "%s: context: %s", name, err);
    ll_draft_head *h = c ? ll_draft_head_new(c) : NULL;
    CHECK(h != NULL, "%s: no head copy for a big head", name);
    const int nv = ll_vocab_n_tokens(ll_model_get_vocab(m));
    float *hl = malloc(sizeof(float) * (size_t)nv);
    if (!ref || !c || !h || !hl) goto done;

    ll_token tok[8] = {1, 403, 407, 261, 1033, 22, 5, 300};
    for (int i = 0; i < 8; i++) tok[i] %= nv;
    ll_set_no_logits(c, true);
    CHECK(ll_decode(ref, tok, 8, err, sizeof err) == 0 && ll_decode(c, tok, 8, err, sizeof err) == 0, "%s", err);
    CHECK(ll_get_logits(c) == NULL, "%s: logits made by a decode that skips them", name);
    int n_approx = 0;
    for (int step = 0; step < 40; step++) {
        const float *l = ll_get_logits(ref);
        CHECK(ll_draft_head_logits(h, c, hl), "%s: step %d: no logits", name, step);
        int b1, b2, h1, h2;
        best_two(l, nv, &b1, &b2);
        best_two(hl, nv, &h1, &h2);
        CHECK(h1 == b1 && h2 == b2, "%s: step %d: best %d, %d; the copy's %d, %d", name, step, b1, b2, h1, h2);
        CHECK(memcmp(&l[b1], &hl[b1], sizeof(float)) == 0 && memcmp(&l[b2], &hl[b2], sizeof(float)) == 0,
              "%s: step %d: best logits %.9g %.9g, recomputed %.9g %.9g", name, step, l[b1], l[b2], hl[b1], hl[b2]);
        for (int i = 0; i < nv; i++) n_approx += memcmp(&l[i], &hl[i], sizeof(float)) != 0;
        const ll_token t = (ll_token)b1;
        CHECK(ll_decode(ref, &t, 1, err, sizeof err) == 0 && ll_decode(c, &t, 1, err, sizeof err) == 0, "%s", err);
    }
    CHECK(n_approx > 40 * (nv - 64), "%s: %d approximate logits: the copy is not what made them", name, n_approx);
done:
    free(hl);
    ll_draft_head_free(h);
    ll_context_free(c);
    ll_context_free(ref);
    ll_model_free(m);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) {
        fprintf(stderr, "test_draft_head: ../shared not found, skipped\n");
        return TEST_SKIP;
    }
    check_model(shared, "stories260K.gguf");
    check_model(shared, "mixed-types.gguf");
    return test_result("test_draft_head");
}
