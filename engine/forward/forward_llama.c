// The Llama block, and every family that is the Llama block with options: Qwen2 (Q/K/V
// biases, NeoX rotation, YaRN), Qwen3 (per-head q/k norms), Phi-3 (fused QKV and gate|up,
// Q scaled after RoPE), and their mixtures of experts (Mixtral, Qwen2-MoE, Qwen3-MoE: the FFN is
// the router's choice of experts, moe.c). The options live in the weights a layer has and in the hyperparameters,
// so the pass itself is the paper's diagram:
//
//   x = embed(tokens)
//   for each layer:
//     x += attention(rmsnorm(x))      Wo · softmax(rope(Wq x) · rope(Wk x)) · Wv x
//     x += ffn(rmsnorm(x))            Wdown · (silu(Wgate x) * Wup x)
//   logits = Wout · rmsnorm(x)
//
// A chunk of n_tok tokens goes through together (the matmuls are batched); a single generated
// token is simply a chunk of one.
#include "forward/blocks.h"

bool ll_forward_llama(ll_context *c, const ll_token *tokens, int n_tok, int pos0, float *out,
                      bool all_logits, char *err, size_t errlen) {
    const ll_model *m = c->model;
    float *x = c->x, *xb = c->xb, *xb2 = c->xb2;

    int first;
    if (!ll_embed(c, tokens, n_tok, pos0, &first)) return ll_oom(err, errlen);
    ll_rope_positions(c, n_tok, pos0);

    for (int l = first; l < m->hp.n_layer; l++) {
        if (n_tok > 1 && ll_decode_aborted(c, err, errlen)) return false; // Ctrl-C in a long prompt
        const ll_layer *L = &m->layers[l];

        ll_rmsnorm(c, xb, x, ll_vec(L, LL_ROLE_ATTN_NORM), n_tok);
        if (!ll_attention(c, l, xb, n_tok, pos0, xb2)) return ll_oom(err, errlen);
        ll_residual(c, x, xb2, n_tok, "ffn_inp", l);

        ll_rmsnorm(c, xb, x, ll_vec(L, LL_ROLE_FFN_NORM), n_tok);
        const bool experts = L->w[LL_ROLE_FFN_GATE_INP].data != NULL;
        if (!(experts ? ll_moe(c, l, xb, n_tok, xb2) : ll_ffn(c, l, xb, n_tok, xb2))) return ll_oom(err, errlen);
        ll_residual(c, x, xb2, n_tok, "l_out", l);
    }
    return ll_output(c, n_tok, out, all_logits) || ll_oom(err, errlen);
}
