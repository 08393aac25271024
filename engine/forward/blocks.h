// The shared blocks every forward pass is made of (blocks.c, attention.c, matmul.c). Each
// works on n_tok rows of the context's scratch buffers and reads its options from the model:
// a family's forward function only puts them in order.
#ifndef LLAMALITE_BLOCKS_H
#define LLAMALITE_BLOCKS_H

#include "context/context.h"
#include "forward/forward.h"

// ---- the blocks (blocks.c) -------------------------------------------------------------------

// The residual stream x of the chunk: embedding rows (times the family's embedding scale,
// plus LoRA), or when the first layers were evaluated elsewhere (ll_decode_from_layer) the
// stream leaving them. *first_layer is the layer to start at. False when out of memory.
bool ll_embed(ll_context *c, const ll_token *tokens, int n_tok, int pos0, int *first_layer);
// The rotation angles of the chunk's positions for each rotary setting (shared by every layer).
void ll_rope_positions(ll_context *c, int n_tok, int pos0);
// dst = RMS norm of n_tok rows of n_embd, times w.
void ll_rmsnorm(ll_context *c, float *dst, const float *src, const float *w, int n_tok);
// out = self-attention of layer l over normed input x (n_tok rows of n_embd): Q, K, V (fused
// or not, with biases), per-head q/k norms, RoPE, the cache, causal (sliding-window) softmax
// attention with the family's scale and soft-capping, the output projection (and bias).
// x may be c->xb (it is read before the attention output lands there). False: out of memory.
bool ll_attention(ll_context *c, int l, const float *x, int n_tok, int pos0, float *out);
// out = gated feed-forward of layer l over normed input x: down(act(gate(x)) * up(x)), gate and
// up fused or not, with biases, act SiLU or tanh-GELU. False: out of memory.
bool ll_ffn(ll_context *c, int l, const float *x, int n_tok, float *out);
// out = the mixture-of-experts feed-forward of layer l over normed input x: the router picks
// n_expert_used experts per token and weighs them, each expert runs once over all the tokens
// that chose it, plus a sigmoid-gated shared expert where the layer has one (moe.c).
bool ll_moe(ll_context *c, int l, const float *x, int n_tok, float *out);
// One token's choice of experts from its n_expert router logits: the n_expert_used experts (sel,
// best first) and their weights (w) by the family's rule; probs is scratch of n_expert floats.
void ll_moe_route(const ll_hparams *hp, const float *logits, float *probs, int *sel, float *w);
// dst = act(gate) * up over n_rows rows of n; gate and up rows are stride floats apart, dst's n.
// c NULL: on the calling thread (inside a task of the pool).
void ll_glu(ll_context *c, float *dst, const float *gate, const float *up, int n_rows, int n, size_t stride,
            ll_act act);
// x += y over n_tok rows of n_embd (name, layer: the debug dump's label).
void ll_residual(ll_context *c, float *x, const float *y, int n_tok, const char *name, int l);
// The final norm and the output head for the rows whose logits are wanted (all, or the last
// one), then the family's logit soft-capping. out NULL: none. False: out of memory.
bool ll_output(ll_context *c, int n_tok, float *out, bool all_logits);
// Writes "out of memory ..." to err and returns false.
bool ll_oom(char *err, size_t errlen);

// ---- pieces the blocks share -----------------------------------------------------------------

// Splits [0, n) evenly: thread ith gets [*lo, *hi).
static inline void ll_split(int n, int ith, int nth, int *lo, int *hi) {
    *lo = (int)((int64_t)n * ith / nth);
    *hi = (int)((int64_t)n * (ith + 1) / nth);
}
// Runs fn on the pool, or inline when the work is too small to pay for waking the threads.
static inline void ll_run(ll_context *c, gl_task_fn fn, void *t, size_t work) {
    if (work < 32768 || c->n_threads == 1) fn(t, 0, 1);
    else gl_threadpool_run(c->tp, fn, t);
}
// 8 lanes summed as the reference's reductions do: halves, then (0+2)+(1+3) / (0+1)+(2+3).
static inline float ll_hsum8_pairs(const float *l) {
    float t0 = l[0] + l[4], t1 = l[1] + l[5], t2 = l[2] + l[6], t3 = l[3] + l[7];
    return (t0 + t2) + (t1 + t3);
}
static inline float ll_hsum8_hadd(const float *l) {
    float t0 = l[0] + l[4], t1 = l[1] + l[5], t2 = l[2] + l[6], t3 = l[3] + l[7];
    return (t0 + t1) + (t2 + t3);
}

// out = W · x for n_tok rows of x, plus the LoRA adapters of `slot` (-1: none). The activation
// converted for the previous call is reused when it came from the same buffer in the same type
// (q/k/v, gate/up); callers reset c->act_src whenever that buffer changes (matmul.c).
bool ll_matmul(ll_context *c, const ll_weight *w, int slot, const float *x, int n_tok, float *out);
// out = expert `expert` of a stack of expert matrices · x, plus the adapters of the stack's
// slot for that expert (matmul.c).
bool ll_matmul_expert(ll_context *c, const ll_weight *stack, int slot, int expert, const float *x, int n_tok,
                      float *out);
// The adapters' deltas of the embedding rows of tokens, added to c->x (matmul.c).
bool ll_lora_embd(ll_context *c, const ll_token *tokens, int n_tok);

// Causal attention of layer l for the chunk's queries (c->q, roped and scaled) over the cache
// (which holds the chunk's keys and values): the heads' outputs into c->xb (attention.c).
void ll_attend(ll_context *c, int l, int n_tok, int pos0);
// Scratch the attention needs per thread (floats), and for the fused kernel's key splits.
size_t ll_attend_scratch_floats(const ll_hparams *hp);
size_t ll_attend_part_floats(const ll_hparams *hp, int n_ctx);

// LL_DUMP_DIR: named intermediates as f32 files, for layer-by-layer comparison with the
// reference engine (l < 0: not a layer's). Off unless the variable is set.
void ll_dump(const char *name, int l, const float *p, int n_tok, int n);

#endif
