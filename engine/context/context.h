// Internal context representation shared by context.c (lifetime, KV cache management,
// decode loop) and the forward pass of each architecture (forward/).
#ifndef LLAMALITE_CONTEXT_H
#define LLAMALITE_CONTEXT_H

#include "matmul.h"
#include "ops.h"
#include "threadpool.h"
#include "adapters/lora.h"
#include "context/kv_cache.h"
#include "model/model.h"

struct ll_context {
    ll_model *model;
    ll_context_params params;
    gl_threadpool *tp;
    int n_threads;
    int n_ctx;
    int n_batch;
    int n_past;

    // KV cache: per layer, one cell per position (kv_cache.h).
    ll_kv_cache kv;
    bool flash_attn;    // the fused kernel runs (-fa on or auto, where the heads allow)
    bool exact_batches; // ll_set_exact_batches: one-token arithmetic for every row

    // Scratch, sized once for n_batch tokens.
    float *x;     // [n_batch][n_embd] residual stream
    float *xb;    // [n_batch][max(n_embd, q_dim)] normed input, then attention output
    float *xb2;   // [n_batch][n_embd] projection output before the residual add
    float *q;     // [n_batch][q_dim]
    float *k, *v; // [n_batch][kv_dim]
    float *qkv;   // [n_batch][q_dim + 2 kv_dim] a fused projection's output (NULL: none fused)
    float *hb, *hb2;   // [n_batch][n_ff] (gate|up fused: hb is [n_batch][2 n_ff])
    float *att;   // [n_threads][n_ctx] attention scores, one row per thread
    float *att_scratch; // [n_threads][att_scratch_floats] queries, partial sums, decoded rows
    size_t att_scratch_floats;
    float *att_part;    // the fused attention's per-split softmax states (ll_attend_part_floats)
    // Rotary settings (the model's, LongRoPE's factors chosen for n_ctx) and for each the
    // cos, sin pairs of the chunk's positions: [n_batch][n_rot].
    ll_rope rope[LL_MAX_ROPES];
    float *rope_cs[LL_MAX_ROPES];
    int n_ropes;
    gl_act act;
    const float *act_src; // the buffer act was made from (NULL: stale)
    struct ll_moe_buf *moe; // mixture-of-experts scratch (forward/moe.c), made on first use
    float route_margin;     // the last decode's closest routing call (ll_get_route_margin)

    // Logits of the last decode: n_logits rows (all tokens with logits_all, else the last).
    float *logits;
    size_t logits_cap;  // floats
    int n_logits;
    int n_last;         // tokens in the last decode

    double t_prompt_ms, t_gen_ms;
    int n_prompt, n_gen;

    // LoRA adapters attached with ll_context_set_adapter (lora.c), applied by the forward pass.
    ll_lora_use *loras;
    int n_loras, cap_loras;
    gl_act lora_act;            // the adapted matmul's input in A's activation type
    const float *lora_act_src;  // what lora_act was made from (NULL: stale, reset with act)
    gl_act lora_act2;           // A·x in B's activation type
    float *lora_tmp;            // [n_tok][rank]: A·x
    float *lora_out;            // [n_tok][n_out]: B·(A·x), summed over the adapters
    float *lora_out2;           // [n_tok][n_out]: the next adapter's B·(A·x)
    size_t lora_tmp_cap, lora_out_cap, lora_out2_cap; // floats

    // Layer-prefix reuse (speculative decoding, set only around one decode): the first
    // skip_layers layers are taken as done, the residual stream entering layer skip_layers being
    // skip_x (rows for positions skip_pos0, skip_pos0 + 1, ...) and their K/V rows already in
    // the cache.
    int skip_layers;
    const float *skip_x;
    int skip_pos0;
    int n_rows_x; // tokens of the last forward pass: x holds their residual after the last layer
    bool no_logits; // the next decodes stop before the head (only their residual is wanted)

    // Activation observer (importance-matrix collection, imatrix.c): when set, the forward
    // pass calls it before every weight matmul with the matmul's input (n_tok rows of n_in
    // floats) and the weight's slot as lora.h numbers them; for a stack of experts, once per
    // expert in use (expert >= 0, in increasing order within a layer), else expert is -1.
    // NULL (the default) costs one test.
    void (*act_hook)(void *ud, int slot, int expert, const float *x, int n_tok, int n_in);
    void *act_hook_ud;

    // ll_set_abort_callback: asked between chunks and between layers whether to stop.
    bool (*abort_cb)(void *ud);
    void *abort_ud;
};

// Frees the mixture-of-experts scratch (forward/moe.c).
void ll_moe_free(struct ll_moe_buf *b);

// True (with err set to "interrupted") when the abort callback asks the decode to stop.
bool ll_decode_aborted(ll_context *c, char *err, size_t errlen);

// ll_decode with layers [0, n_layers) taken as done: x holds the residual stream entering layer
// n_layers for each of the n tokens, and the cache holds their K/V rows in those layers.
int ll_decode_from_layer(ll_context *c, const ll_token *tokens, int n, int n_layers, const float *x,
                         char *err, size_t errlen);
// The residual stream after the last layer for the last token of the last decode.
const float *ll_last_residual(const ll_context *c);
// Decodes after this skip the final norm and the output head (no logits; ll_last_residual still
// holds the residual stream): the draft's last token, whose rows alone the target takes, and
// drafts whose logits come from a copy of the head (draft_head.c).
void ll_set_no_logits(ll_context *c, bool on);
// Whether a and b store K and V rows alike (so rows can be copied between them).
bool ll_kv_same_layout(const ll_context *a, const ll_context *b);
// Copies the K/V rows of positions [p0, p1) in layers [0, n_layers) from src to dst; a dst
// cache holding p0..p1 - 1 positions (or more) then holds at least p1.
void ll_kv_copy_rows(ll_context *dst, const ll_context *src, int n_layers, int p0, int p1);

#endif
