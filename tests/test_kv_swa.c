// Sliding-window layers keep only their window's rows (engine/context/kv_cache.c): on gemma2
// (window 16 on even layers) and gemma3 (window 16 on 5 of 6 layers), a context whose window
// layers hold n_swa - 1 + n_batch cells gives bitwise the logits of one whose layers hold the
// whole context (swa_full), over a sequence many windows long, decoded in chunks and token by
// token, with F16 and Q8_0 caches, -fa on and off; a rollback within the last chunk keeps them
// equal; a rollback further back than the window rows held empties the cache (and says so
// through ll_n_past); context shifts run.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/context/context.h"
#include "engine/llamalite.h"
#include "tests/test_util.h"

enum { N_CTX = 256, N_BATCH = 8, N_TOK = 200 };

static ll_context *new_ctx(ll_model *m, ll_cache_type t, ll_flash_attn fa, bool full) {
    char err[256];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = N_CTX;
    cp.n_batch = N_BATCH;
    cp.n_threads = 2;
    cp.type_k = cp.type_v = t;
    cp.flash_attn = fa;
    cp.swa_full = full;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    return c;
}

static void compare(ll_model *m, const char *name, ll_cache_type t, ll_flash_attn fa, const ll_token *toks) {
    char err[256];
    const int n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m));
    ll_context *w = new_ctx(m, t, fa, false), *f = new_ctx(m, t, fa, true);
    if (!w || !f) goto done;
    int small = 0, same = 0, steps = 0;
    for (int l = 0; l < w->kv.n_layer; l++) small += w->kv.cells[l] < N_CTX;
    CHECK(small > 0 && w->kv.cells[0] == 16 - 1 + N_BATCH, "%s: %d layers with a window's cells (layer 0: %d)", name,
          small, w->kv.cells[0]);
    // a 40-token prompt in chunks of 8, then token by token
    CHECK(ll_decode(w, toks, 40, err, sizeof err) == 0 && ll_decode(f, toks, 40, err, sizeof err) == 0, "%s", err);
    for (int i = 40; i < N_TOK; i++) {
        steps++;
        same += memcmp(ll_get_logits(w), ll_get_logits(f), sizeof(float) * n_vocab) == 0;
        if (i == 120) { // rollback of 5 (within the last chunk's reach), then on
            ll_kv_truncate(w, i - 5);
            ll_kv_truncate(f, i - 5);
            CHECK(ll_n_past(w) == i - 5, "%s: rollback of 5 at %d left %d", name, i, ll_n_past(w));
            CHECK(ll_decode(w, toks + i - 5, 5, err, sizeof err) == 0 && ll_decode(f, toks + i - 5, 5, err, sizeof err) == 0,
                  "%s", err);
        }
        if (ll_decode(w, toks + i, 1, err, sizeof err) || ll_decode(f, toks + i, 1, err, sizeof err)) {
            CHECK(0, "%s step %d: %s", name, i, err);
            break;
        }
    }
    CHECK(same == steps, "%s %s -fa %s: %d of %d steps bitwise equal to the whole-context cache", name,
          ll_cache_type_name(t), fa == LL_FLASH_ATTN_ON ? "on" : "off", same, steps);
    // far back: the window's rows are gone, the cache starts over
    ll_kv_truncate(w, 50);
    CHECK(ll_n_past(w) == 0, "%s: rollback past the window rows held left n_past %d", name, ll_n_past(w));
    printf("%-7s %-4s -fa %-3s: %d layers hold %d cells instead of %d; %d/%d steps bitwise equal\n", name,
           ll_cache_type_name(t), fa == LL_FLASH_ATTN_ON ? "on" : "off", small, w->kv.cells[0], N_CTX, same, steps);
done:
    ll_context_free(w);
    ll_context_free(f);
}

// Generating past the context with shifts: the window layers keep what they hold.
static void shift(ll_model *m, const char *name, const ll_token *toks) {
    char err[256];
    const int n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m));
    ll_context *w = new_ctx(m, LL_CACHE_F16, LL_FLASH_ATTN_AUTO, false);
    if (!w) return;
    int shifts = 0, bad = 0;
    CHECK(ll_decode(w, toks, 16, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 3 * N_CTX; i++) {
        if (ll_n_past(w) == N_CTX) {
            ll_kv_shift(w, 4, (N_CTX - 4) / 2);
            shifts++;
        }
        if (ll_decode(w, toks + i % N_TOK, 1, err, sizeof err)) {
            CHECK(0, "%s after %d shifts: %s", name, shifts, err);
            break;
        }
        for (int j = 0; j < n_vocab; j++) bad += !isfinite(ll_get_logits(w)[j]);
    }
    CHECK(shifts >= 2 && bad == 0, "%s: %d shifts, %d non-finite logits", name, shifts, bad);
    ll_context_free(w);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    const char *names[] = {"gemma2", "gemma3"};
    for (int i = 0; i < 2; i++) {
        char path[1024], err[256];
        snprintf(path, sizeof path, "%s/models/arch/%s.gguf", shared, names[i]);
        ll_model_params mp = ll_model_default_params();
        ll_model *m = ll_model_load(path, &mp, err, sizeof err);
        CHECK(m != NULL, "load %s: %s", path, err);
        if (!m) continue;
        ll_token toks[N_TOK];
        toks[0] = 1;
        for (int k = 1; k < N_TOK; k++) toks[k] = (ll_token)((k * 7919 + 13) % 31000 + 100);
        compare(m, names[i], LL_CACHE_F16, LL_FLASH_ATTN_OFF, toks);
        compare(m, names[i], LL_CACHE_F16, LL_FLASH_ATTN_ON, toks);
        compare(m, names[i], LL_CACHE_Q8_0, LL_FLASH_ATTN_ON, toks);
        compare(m, names[i], LL_CACHE_Q8_0, LL_FLASH_ATTN_OFF, toks);
        shift(m, names[i], toks);
        ll_model_free(m);
    }
    return test_result("test_kv_swa");
}
