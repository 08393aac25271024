#include "text_chunks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ll_token *chunk_tokenize(const ll_vocab *v, const char *text, int n_ctx, int max_chunks,
                         const char *tool, int *n_tokens, int *n_chunks) {
    ll_token *toks = cli_tokenize(v, text, false, n_tokens);
    if (!toks) {
        fputs("llamalite: out of memory\n", stderr);
        return NULL;
    }
    if (*n_tokens < 2 * n_ctx) {
        fprintf(stderr, "llamalite: the text is %d tokens; %s with -c %d needs at least %d\n", *n_tokens,
                tool, n_ctx, 2 * n_ctx);
        free(toks);
        return NULL;
    }
    *n_chunks = *n_tokens / n_ctx;
    if (max_chunks >= 0 && max_chunks < *n_chunks) *n_chunks = max_chunks;
    return toks;
}

ll_context *chunk_context_new(ll_model *model, const cli_params *p, int n_ctx, int n_batch) {
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch < n_ctx ? n_batch : n_ctx;
    cp.n_threads = p->n_threads;
    cp.type_k = p->type_k;
    cp.type_v = p->type_v;
    cp.flash_attn = p->flash_attn;
    cp.swa_full = p->swa_full;
    cp.logits_all = true;
    char err[512];
    ll_context *ctx = ll_context_new(model, &cp, err, sizeof err);
    if (!ctx) fprintf(stderr, "llamalite: %s\n", err);
    return ctx;
}

bool chunk_decode(ll_context *ctx, const ll_vocab *v, const ll_token *toks, int c, int n_ctx,
                  ll_token *scratch) {
    memcpy(scratch, toks + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *scratch);
    const ll_token bos = ll_vocab_bos(v);
    if (ll_vocab_add_bos(v) && bos >= 0) scratch[0] = bos;
    ll_kv_clear(ctx);
    char err[512];
    if (ll_decode(ctx, scratch, n_ctx, err, sizeof err) != 0) {
        fprintf(stderr, "llamalite: %s\n", err);
        return false;
    }
    return true;
}

double chunk_nll(const float *logits, int n_vocab, ll_token target) {
    float max = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > max) max = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)(logits[i] - max));
    return -((double)(logits[target] - max) - log(sum));
}
