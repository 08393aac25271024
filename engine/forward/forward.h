// The forward passes of the architectures (one per family of blocks) and the rotary helpers
// context.c needs. The architecture table (model/arch.c) names a forward function per family.
#ifndef LLAMALITE_FORWARD_H
#define LLAMALITE_FORWARD_H

#include "model/model.h"

// Pre-norm blocks with a gated FFN: llama, qwen2, qwen3, phi3 (forward_llama.c).
bool ll_forward_llama(ll_context *c, const ll_token *tokens, int n_tok, int pos0, float *out,
                      bool all_logits, char *err, size_t errlen);
// gpt-oss: biases, attention sinks, alternating sliding window, experts (forward_gptoss.c).
bool ll_forward_gptoss(ll_context *c, const ll_token *tokens, int n_tok, int pos0, float *out,
                       bool all_logits, char *err, size_t errlen);
// Gemma 2 and 3: scaled embeddings, post-norms on both sublayers, GeGLU (forward_gemma.c).
bool ll_forward_gemma(ll_context *c, const ll_token *tokens, int n_tok, int pos0, float *out,
                      bool all_logits, char *err, size_t errlen);

// cos, sin of each rotated pair at position pos (n_rot floats), for gl_rope_apply (rope.c).
void ll_rope_cache(const ll_rope *r, int head_dim, int pos, float *cs);
// Turns a cached key row (n_heads heads of head_dim, F16 or F32) by delta positions.
void ll_rope_shift(const ll_rope *r, void *row, bool f16, int n_heads, int head_dim, int delta);

#endif
