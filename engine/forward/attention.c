// Causal self-attention over the KV cache, for every family: grouped-query heads, optional
// sliding window and score soft-capping.
//
// Precision follows the reference engine over an F16 cache: the query is rounded to F16 for
// the q·k dots and the softmax weights are rounded to F16 before they weight the values.
// Sums are also grouped the way the reference groups them (8 lanes, plus 4 accumulators over
// steps of 32 for a single token; 1 accumulator for a batch). On models whose activations are
// re-quantized to 8 bits between layers, a last-bit difference can flip a rounding and grow
// through the layers, so matching the reference's arithmetic keeps the golden logits close.
// The dots and sums in those orders are ggml-lite's (gl_kv_*), run by the CPU's kernel set.

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/blocks.h"

// The reference's KV window for a batch whose last position is last_pos: the used cells padded
// to a multiple of 32, at most the context.
static int kv_window(const ll_context *c, int last_pos) {
    const int n = ((last_pos + 1 + 31) / 32) * 32;
    return n < c->n_ctx ? n : c->n_ctx;
}






typedef struct {
    ll_context *c;
    int n_rows, layer, pos0;
} att_task;

// Causal self-attention of the chunk's queries over the cache, one (token, head) pair per
// unit; units are dealt round-robin because later tokens see more keys. A sliding-window
// layer sees the keys at distance < n_swa only; soft-capping turns scores s into
// c * tanh(s / c) before the softmax.
static void attention_task(void *arg, int ith, int nth) {
    const att_task *tk = arg;
    ll_context *c = tk->c;
    const ll_hparams *hp = &c->model->hp;
    const int hd = hp->head_dim, n_head = hp->n_head;
    const int group = hp->n_head / hp->n_head_kv;
    const int q_dim = n_head * hd, kv_dim = hp->n_head_kv * hd;
    const float scale = hp->q_scale_first ? 1.0f : hp->kq_scale;
    const float cap = hp->attn_softcap, inv_cap = cap > 0 ? 1.0f / cap : 0.0f;
    const int n_swa = c->model->layers[tk->layer].n_swa;
    const size_t layer_off = (size_t)tk->layer * c->n_ctx * kv_dim;
    // Exact batches (speculative verification) sum every row as a single token does.
    const bool fk = c->kv_f16_k, fv = c->kv_f16_v, batch = tk->n_rows > 1 && !c->exact_batches;
    const size_t ek = fk ? 2 : 4, ev = fv ? 2 : 4;
    // value sums: 8 lanes (batch) or 4 x 8 (single token), each a row of hd partial sums
    const int n_slots = batch ? 8 : 32;
    float *s = c->att + (size_t)ith * c->n_ctx;
    float *qr = c->att_scratch + (size_t)ith * (33 * (size_t)hd);
    float *acc = qr + hd;

    for (int u = ith; u < tk->n_rows * n_head; u += nth) {
        const int t = u / n_head, h = u % n_head;
        const int pos = tk->pos0 + t;
        // keys j0 .. pos: all of them, or the window's
        const int j0 = n_swa > 0 && pos + 1 > n_swa ? pos + 1 - n_swa : 0;
        const int n_keys = pos + 1 - j0;
        const float *q = c->q + (size_t)t * q_dim + (size_t)h * hd;
        const size_t col = layer_off + (size_t)j0 * kv_dim + (size_t)(h / group) * hd;
        const char *k = (const char *)c->k_cache + col * ek;
        const char *v = (const char *)c->v_cache + col * ev;
        float *out = c->xb + (size_t)t * q_dim + (size_t)h * hd;

        if (fk) {
            gl_fp16 tmp[256];
            for (int i = 0; i < hd; i += 256) {
                int m = hd - i < 256 ? hd - i : 256;
                gl_fp32_to_fp16_row(q + i, tmp, m);
                gl_fp16_to_fp32_row(tmp, qr + i, m);
            }
        } else {
            memcpy(qr, q, (size_t)hd * sizeof(float));
        }
        float mx = -INFINITY;
        for (int j = 0; j < n_keys; j++) {
            s[j] = gl_kv_dot(k + (size_t)j * kv_dim * ek, fk, qr, hd, batch) * scale;
            if (cap > 0) s[j] = tanhf(s[j] * inv_cap) * cap;
            if (s[j] > mx) mx = s[j];
        }
        // The softmax row spans the reference's KV window (masked keys weigh 0): it decides
        // which keys its 8-lane exp takes and which its scalar tail takes.
        const int row = kv_window(c, batch ? tk->pos0 + tk->n_rows - 1 : pos) - j0;
        const double sum = gl_exp_sum8(s, s, mx, n_keys, row);
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < n_keys; j++) {
            s[j] *= inv;
            if (fv) s[j] = gl_fp16_to_fp32(gl_fp32_to_fp16(s[j]));
        }

        if (batch) {
            memset(acc, 0, (size_t)n_slots * hd * sizeof(float));
            for (int j = 0; j < n_keys; j++)
                gl_kv_mad(acc + (size_t)(j % n_slots) * hd, v + (size_t)j * kv_dim * ev, fv, s[j], hd);
            for (int d = 0; d < hd; d++) {
                float r[8];
                for (int l = 0; l < 8; l++) r[l] = acc[(size_t)l * hd + d];
                out[d] = ll_hsum8_pairs(r);
            }
        } else {
            gl_kv_values_32(acc, v, kv_dim * ev, fv, s, n_keys, hd);
            gl_kv_reduce_32(out, acc, hd);
        }
    }
}

void ll_attend(ll_context *c, int l, int n_tok, int pos0) {
    att_task tk = {c, n_tok, l, pos0};
    const ll_hparams *hp = &c->model->hp;
    ll_run(c, attention_task, &tk, (size_t)n_tok * hp->n_head * (pos0 + n_tok) * hp->head_dim);
}
