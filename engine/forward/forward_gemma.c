// Gemma 2 and Gemma 3. Each sublayer's output is RMS-normed again before it joins the residual
// stream; the embedding is scaled by sqrt(n_embd); the FFN gate is tanh-GELU. Gemma 2 soft-caps
// the attention scores and the logits and slides a window over every other layer; Gemma 3 has
// per-head q/k norms instead of soft-capping and five local layers (window, their own RoPE
// base) to one global layer. All of that is in the hyperparameters the blocks read:
//
//   x = embed(tokens) * sqrt(n_embd)
//   for each layer:
//     x += post_attn_norm(attention(rmsnorm(x)))
//     x += post_ffw_norm(ffn(rmsnorm(x)))           Wdown · (gelu(Wgate x) * Wup x)
//   logits = softcap(Wout · rmsnorm(x))              (Wout: token_embd when tied)
#include "forward/blocks.h"

bool ll_forward_gemma(ll_context *c, const ll_token *tokens, int n_tok, int pos0, float *out,
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
        ll_rmsnorm(c, xb2, xb2, ll_vec(L, LL_ROLE_ATTN_POST_NORM), n_tok);
        ll_residual(c, x, xb2, n_tok, "sa_out", l);

        ll_rmsnorm(c, xb, x, ll_vec(L, LL_ROLE_FFN_NORM), n_tok);
        if (!ll_ffn(c, l, xb, n_tok, xb2)) return ll_oom(err, errlen);
        ll_rmsnorm(c, xb2, xb2, ll_vec(L, LL_ROLE_FFN_POST_NORM), n_tok);
        ll_residual(c, x, xb2, n_tok, "l_out", l);
    }
    return ll_output(c, n_tok, out, all_logits) || ll_oom(err, errlen);
}
