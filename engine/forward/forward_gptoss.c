// gpt-oss (OpenAI's open-weight mixture of experts). The Llama diagram with its own options, all
// read by the shared blocks from the weights and hyperparameters: biases on Q/K/V and the output
// projection, a learned sink logit per head in the attention softmax, a sliding window on even
// layers, YaRN rotation, and a mixture-of-experts FFN (router and experts with biases, the k
// largest router logits softmaxed, the clamped SwiGLU). Its pre-FFN norm is stored as
// post_attention_norm:
//
//   for each layer:
//     x += attention(rmsnorm(x))                      sinks, window on even layers
//     x += moe(rmsnorm_post_attention(x))
#include "forward/blocks.h"

bool ll_forward_gptoss(ll_context *c, const ll_token *tokens, int n_tok, int pos0, float *out,
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

        ll_rmsnorm(c, xb, x, ll_vec(L, LL_ROLE_ATTN_POST_NORM), n_tok);
        if (!ll_moe(c, l, xb, n_tok, xb2)) return ll_oom(err, errlen);
        ll_residual(c, x, xb2, n_tok, "l_out", l);
    }
    return ll_output(c, n_tok, out, all_logits) || ll_oom(err, errlen);
}
