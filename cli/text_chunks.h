// A text evaluated the way llama.cpp's perplexity, KL-divergence and imatrix tools do: the
// tokens are cut into chunks of n_ctx, the first token of each chunk is replaced by BOS (when
// the vocab adds one), and each chunk is decoded from an empty cache with logits at every
// position; the predictions of each chunk's second half are the ones scored.
#ifndef LLAMALITE_CLI_TEXT_CHUNKS_H
#define LLAMALITE_CLI_TEXT_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>

#include "args.h"

// The text's tokens (no BOS: each chunk gets its own), which must fill at least two chunks of
// n_ctx; *n_chunks is how many whole chunks there are, at most max_chunks when >= 0. NULL after
// printing a message that names the tool.
ll_token *chunk_tokenize(const ll_vocab *v, const char *text, int n_ctx, int max_chunks,
                         const char *tool, int *n_tokens, int *n_chunks);

// A context for chunks of n_ctx tokens (logits for all positions), with the user's threads and
// cache types; n_batch is capped at n_ctx. NULL after printing a message.
ll_context *chunk_context_new(ll_model *model, const cli_params *p, int n_ctx, int n_batch);

// Decodes chunk c of toks (n_ctx tokens from c * n_ctx) into ctx from an empty cache; scratch
// holds n_ctx tokens. False after printing a message.
bool chunk_decode(ll_context *ctx, const ll_vocab *v, const ll_token *toks, int c, int n_ctx,
                  ll_token *scratch);

// -log p(target) under softmax(logits).
double chunk_nll(const float *logits, int n_vocab, ll_token target);

#endif
