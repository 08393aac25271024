// Causal self-attention over the KV cache, for every family: grouped-query heads, optional
// sliding window, score soft-capping and attention sinks. Three ways, chosen per context (ll_attend):
//  - fused (-fa on or auto, the default): ggml-lite's one-pass kernel over blocks of queries
//    sharing a KV head, with threads over KV heads, token blocks and (for few queries) key
//    ranges; a query's result is bitwise the same alone or in a batch;
//  - F16/F32 caches with -fa off: scores, softmax, then values, with the reference engine's
//    arithmetic (below), so the goldens match to the last digits;
//  - other cache types with -fa off (or heads that straddle the cache's blocks): the same two
//    passes, keys through their type's dot kernel and values decoded row by row (rows whose
//    blocks straddle heads are decoded whole).
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

#include "attention.h"
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
    // fused: tokens per block, token blocks, chunks as units of their own (0: none)
    int tok_block, n_tok_blocks, n_chunks, unused;
} att_task;

// Keys [*j0, pos + 1) a query at pos sees in layer l (all, or the sliding window's).
// (After a context shift a sliding-window layer may hold fewer rows than its window: the query
// then sees those it holds.)
static int first_key(const ll_context *c, int l, int pos) {
    const int n_swa = c->model->layers[l].n_swa;
    const int j0 = n_swa > 0 && pos + 1 > n_swa ? pos + 1 - n_swa : 0;
    return j0 > c->kv.base[l] ? j0 : c->kv.base[l];
}

// Causal self-attention of the chunk's queries over an F16/F32 cache, one (token, head) pair
// per unit; units are dealt round-robin because later tokens see more keys. A sliding-window
// layer sees the keys at distance < n_swa only; soft-capping turns scores s into
// c * tanh(s / c) before the softmax.
static void attention_task(void *arg, int ith, int nth) {
    const att_task *tk = arg;
    ll_context *c = tk->c;
    const ll_hparams *hp = &c->model->hp;
    const int hd = hp->head_dim, n_head = hp->n_head;
    const int group = hp->n_head / hp->n_head_kv;
    const int q_dim = n_head * hd;
    const float scale = hp->q_scale_first ? 1.0f : hp->kq_scale;
    const float cap = hp->attn_softcap, inv_cap = cap > 0 ? 1.0f / cap : 0.0f;
    const float *sinks = ll_vec(&c->model->layers[tk->layer], LL_ROLE_ATTN_SINKS); // gpt-oss
    // Exact batches (speculative verification) sum every row as a single token does.
    const bool fk = c->kv.type_k == GL_TYPE_F16, fv = c->kv.type_v == GL_TYPE_F16;
    const bool batch = tk->n_rows > 1 && !c->exact_batches;
    const size_t ek = fk ? 2 : 4, ev = fv ? 2 : 4;
    const bool ref512 = !batch && gl_ref_avx512(); // a GGML_NATIVE AVX-512 reference's single-token sums
    // value sums: 8 lanes (batch) or 4 x 8 (single token), each a row of hd partial sums
    const int n_slots = batch ? 8 : 32;
    float *s = c->att + (size_t)ith * c->n_ctx;
    float *qr = c->att_scratch + (size_t)ith * c->att_scratch_floats;
    float *acc = qr + hd;

    for (int u = ith; u < tk->n_rows * n_head; u += nth) {
        const int t = u / n_head, h = u % n_head;
        const int pos = tk->pos0 + t;
        const int j0 = first_key(c, tk->layer, pos);
        const int n_keys = pos + 1 - j0;
        const float *q = c->q + (size_t)t * q_dim + (size_t)h * hd;
        const int cell0 = ll_kv_cell(&c->kv, tk->layer, j0);
        const char *k = ll_kv_k(&c->kv, tk->layer, cell0) + (size_t)(h / group) * hd * ek;
        const char *v = ll_kv_v(&c->kv, tk->layer, cell0) + (size_t)(h / group) * hd * ev;
        const size_t k_row = c->kv.k_row, v_row = c->kv.v_row;
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
            const void *kj = k + (size_t)j * k_row;
            s[j] = (ref512 ? gl_dot_ref512(kj, 1, fk, hd, qr, hd) : gl_kv_dot(kj, fk, qr, hd, batch)) * scale;
            if (cap > 0) s[j] = tanhf(s[j] * inv_cap) * cap;
            if (s[j] > mx) mx = s[j];
        }
        // An attention sink: one more logit per head in the softmax, with no value.
        const float sink = sinks ? sinks[h] : -INFINITY;
        if (sink > mx) mx = sink;
        // The softmax row spans the reference's KV window (masked keys weigh 0): it decides
        // which keys its 8-lane exp takes and which its scalar tail takes.
        const int row = kv_window(c, batch ? tk->pos0 + tk->n_rows - 1 : pos) - j0;
        const double sum = gl_exp_sum8(s, s, mx, n_keys, row) + (sinks ? exp((double)sink - mx) : 0.0);
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < n_keys; j++) {
            s[j] *= inv;
            if (fv) s[j] = gl_fp16_to_fp32(gl_fp32_to_fp16(s[j]));
        }

        if (batch) {
            memset(acc, 0, (size_t)n_slots * hd * sizeof(float));
            for (int j = 0; j < n_keys; j++)
                gl_kv_mad(acc + (size_t)(j % n_slots) * hd, v + (size_t)j * v_row, fv, s[j], hd);
            for (int d = 0; d < hd; d++) {
                float r[8];
                for (int l = 0; l < 8; l++) r[l] = acc[(size_t)l * hd + d];
                out[d] = ll_hsum8_pairs(r);
            }
        } else if (ref512) { // each output element: the values' column against the weights
            for (int d = 0; d < hd; d++) out[d] = gl_dot_ref512(v + (size_t)d * ev, v_row / ev, fv, n_keys, s, row);
        } else {
            gl_kv_values_32(acc, v, v_row, fv, s, n_keys, hd);
            gl_kv_reduce_32(out, acc, hd);
        }
    }
}

// One head's keys or values of a cell as floats: decoded in place when the head starts on a
// block boundary, else from the whole decoded row (row: kv_dim floats of scratch).
static const float *head_f32(const ll_context *c, bool keys, int l, int pos, int kv_head, float *row) {
    const ll_kv_cache *kv = &c->kv;
    const int cell = ll_kv_cell(kv, l, pos);
    const enum gl_type t = keys ? kv->type_k : kv->type_v;
    const int hd = kv->head_dim;
    if (!ll_kv_head_aligned(t, hd)) {
        ll_kv_cache_row_f32(kv, keys, l, cell, row);
        return row + (size_t)kv_head * hd;
    }
    const char *src = (keys ? ll_kv_k(kv, l, cell) : ll_kv_v(kv, l, cell)) + gl_row_size(t, (int64_t)kv_head * hd);
    if (t == GL_TYPE_F32) return (const float *)src;
    gl_get_type_traits(t)->to_float(src, row, hd);
    return row;
}

// Scores, softmax, values over a cache of any type (one (token, head) pair per unit).
static void attention_any_task(void *arg, int ith, int nth) {
    const att_task *tk = arg;
    ll_context *c = tk->c;
    const ll_hparams *hp = &c->model->hp;
    const ll_kv_cache *kv = &c->kv;
    const int hd = hp->head_dim, n_head = hp->n_head, group = n_head / hp->n_head_kv, q_dim = n_head * hd;
    const float scale = hp->q_scale_first ? 1.0f : hp->kq_scale, cap = hp->attn_softcap;
    const bool k_aligned = ll_kv_head_aligned(kv->type_k, hd);
    const gl_vec_dot_fn dot = gl_get_type_traits(kv->type_k)->vec_dot;
    float *s = c->att + (size_t)ith * c->n_ctx;
    float *row = c->att_scratch + (size_t)ith * c->att_scratch_floats; // kv_dim floats
    char *qc = (char *)(row + kv->kv_dim);                             // the converted query

    for (int u = ith; u < tk->n_rows * n_head; u += nth) {
        const int t = u / n_head, h = u % n_head, hk = h / group, pos = tk->pos0 + t;
        const int j0 = first_key(c, tk->layer, pos), n_keys = pos + 1 - j0;
        const float *q = c->q + (size_t)t * q_dim + (size_t)h * hd;
        float *out = c->xb + (size_t)t * q_dim + (size_t)h * hd;
        const size_t k_off = k_aligned ? gl_row_size(kv->type_k, (int64_t)hk * hd) : 0;
        if (k_aligned) gl_attn_convert_q(kv->type_k, q, qc, hd);
        float mx = -INFINITY;
        for (int j = 0; j < n_keys; j++) {
            float x;
            if (k_aligned) dot(hd, &x, ll_kv_k(kv, tk->layer, ll_kv_cell(kv, tk->layer, j0 + j)) + k_off, qc);
            else x = gl_vec_dot_f32(head_f32(c, true, tk->layer, j0 + j, hk, row), q, hd);
            x *= scale;
            if (cap > 0) x = cap * tanhf(x / cap);
            s[j] = x;
            if (x > mx) mx = x;
        }
        const float inv = (float)(1.0 / gl_exp_sum8(s, s, mx, n_keys, n_keys));
        memset(out, 0, (size_t)hd * sizeof(float));
        for (int j = 0; j < n_keys; j++)
            if (s[j] > 0) gl_vec_mad(out, head_f32(c, false, tk->layer, j0 + j, hk, row), s[j] * inv, hd);
    }
}

// ---- fused attention -------------------------------------------------------------------------
//
// Units of work: a KV head, a block of tokens (its queries are the block's tokens times the heads
// of the GQA group, so each key and value row is read and decoded once for all of them), and a
// chunk of FA_CHUNK keys. Chunk boundaries are fixed key indices and a query's chunks are merged
// left to right, so a query's result does not depend on which other tokens share its decode
// (speculative verification needs one-token and batched decodes to agree bitwise). When the
// heads and token blocks alone keep every thread busy, a unit takes all chunks of its block in
// turn; otherwise (one token, few KV heads) the chunks are units of their own, their softmax
// states parked in att_part and merged afterwards.

#define FA_MAX_Q 64   // queries per unit (a GQA group times a few tokens)
#define FA_CHUNK 512  // keys per chunk (a multiple of GL_ATTN_TILE)

static int fa_tok_block(const ll_hparams *hp) {
    const int group = hp->n_head / hp->n_head_kv;
    return group >= FA_MAX_Q ? 1 : FA_MAX_Q / group;
}

size_t ll_attend_scratch_floats(const ll_hparams *hp) {
    const size_t hd = (size_t)hp->head_dim, kv_dim = (size_t)hp->n_head_kv * hd;
    const size_t n_q = (size_t)fa_tok_block(hp) * (hp->n_head / hp->n_head_kv);
    size_t n = 33 * hd;                                      // F16/F32 two-pass
    if (kv_dim + 2 * hd + 64 > n) n = kv_dim + 2 * hd + 64;  // any-type two-pass
    // fused: converted queries, two softmax states (running, chunk), the kernel's scratch
    const size_t fa = n_q * (hd + 8) + 2 * n_q * (hd + 2) + gl_attn_scratch_floats((int)n_q, (int)hd);
    return fa > n ? fa : n;
}

size_t ll_attend_part_floats(const ll_hparams *hp, int n_ctx) {
    const size_t max_q = (size_t)fa_tok_block(hp) * (hp->n_head / hp->n_head_kv);
    const size_t n_chunks = (size_t)(n_ctx + FA_CHUNK - 1) / FA_CHUNK;
    return (size_t)hp->n_head_kv * n_chunks * max_q * ((size_t)hp->head_dim + 2);
}

// A softmax state of n_q queries laid out in one buffer: m, l, then acc.
static gl_attn_state fa_state(float *buf, int n_q, const char *q, size_t q_size, const int *lo, const int *hi) {
    return (gl_attn_state){.n_q = n_q, .q = q, .q_stride = q_size, .lo = lo, .hi = hi,
                           .m = buf, .l = buf + n_q, .acc = buf + 2 * n_q};
}

// The outputs of KV head hk's queries (tokens t0 ...; query i is token t0 + i / group, head
// hk * group + i % group), each with its head's attention sink (gpt-oss) added to the softmax.
static void fa_finish(const att_task *tk, gl_attn_state *st, int hk, int t0) {
    ll_context *c = tk->c;
    const ll_hparams *hp = &c->model->hp;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv, q_dim = hp->n_head * hd;
    const float *sinks = ll_vec(&c->model->layers[tk->layer], LL_ROLE_ATTN_SINKS);
    for (int i = 0; i < st->n_q; i++) {
        const int h = hk * group + i % group;
        if (sinks) gl_attn_sink(st, i, sinks[h], hd);
        gl_attn_end(st, i, hd, c->xb + (size_t)(t0 + i / group) * q_dim + (size_t)h * hd);
    }
}

// Unit (KV head hk, token block tb, chunk ch; ch < 0: all chunks in turn).
static void fa_unit(const att_task *tk, int hk, int tb, int ch, float *scratch) {
    ll_context *c = tk->c;
    const ll_hparams *hp = &c->model->hp;
    const ll_kv_cache *kv = &c->kv;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv, q_dim = hp->n_head * hd;
    const int t0 = tb * tk->tok_block, t1 = t0 + tk->tok_block < tk->n_rows ? t0 + tk->tok_block : tk->n_rows;
    const int n_q = (t1 - t0) * group, max_q = tk->tok_block * group;
    const size_t q_size = gl_attn_q_size(kv->type_k, hd);
    char *qc = (char *)scratch;
    float *run = scratch + (size_t)max_q * (hd + 8), *part = run + (size_t)max_q * (hd + 2);
    float *kscratch = part + (size_t)max_q * (hd + 2);

    int lo[FA_MAX_Q], hi[FA_MAX_Q];
    const int base = kv->base[tk->layer]; // the position of cell 0
    for (int t = t0; t < t1; t++)
        for (int g = 0; g < group; g++) {
            const int i = (t - t0) * group + g, pos = tk->pos0 + t;
            lo[i] = first_key(c, tk->layer, pos) - base; // cells from here on
            hi[i] = pos + 1 - base;
            gl_attn_convert_q(kv->type_k, c->q + (size_t)t * q_dim + (size_t)(hk * group + g) * hd, qc + i * q_size, hd);
        }
    const gl_attn_kv kvh = {
        .head_dim = hd, .k_type = kv->type_k, .v_type = kv->type_v,
        .k = ll_kv_k(kv, tk->layer, 0) + gl_row_size(kv->type_k, (int64_t)hk * hd),
        .v = ll_kv_v(kv, tk->layer, 0) + gl_row_size(kv->type_v, (int64_t)hk * hd),
        .k_stride = kv->k_row, .v_stride = kv->v_row,
        .scale = hp->q_scale_first ? 1.0f : hp->kq_scale, .softcap = hp->attn_softcap, .grid = base,
    };
    const int k_begin = first_key(c, tk->layer, tk->pos0 + t0), k_end = tk->pos0 + t1;
    const int ch0 = k_begin / FA_CHUNK, ch1 = (k_end - 1) / FA_CHUNK;
    if (ch >= 0) { // one chunk of a single token block, parked for fa_merge_chunks
        gl_attn_state st = fa_state(c->att_part + ((size_t)hk * tk->n_chunks + (ch - ch0)) * n_q * (hd + 2), n_q, qc,
                                    q_size, lo, hi);
        gl_attn_begin(&st, hd);
        const int j0 = ch * FA_CHUNK > k_begin ? ch * FA_CHUNK : k_begin;
        const int j1 = (ch + 1) * FA_CHUNK < k_end ? (ch + 1) * FA_CHUNK : k_end;
        gl_attn_keys(&kvh, &st, j0 - base, j1 - base, kscratch);
        return;
    }
    gl_attn_state st = fa_state(run, n_q, qc, q_size, lo, hi), cs = fa_state(part, n_q, qc, q_size, lo, hi);
    for (int k = ch0; k <= ch1; k++) {
        gl_attn_state *into = k == ch0 ? &st : &cs;
        gl_attn_begin(into, hd);
        const int j0 = k * FA_CHUNK > k_begin ? k * FA_CHUNK : k_begin;
        const int j1 = (k + 1) * FA_CHUNK < k_end ? (k + 1) * FA_CHUNK : k_end;
        gl_attn_keys(&kvh, into, j0 - base, j1 - base, kscratch);
        if (k > ch0) gl_attn_merge(&st, &cs, hd);
    }
    fa_finish(tk, &st, hk, t0);
}

static void fa_task(void *arg, int ith, int nth) {
    const att_task *tk = arg;
    ll_context *c = tk->c;
    const int n_kv = c->model->hp.n_head_kv;
    float *scratch = c->att_scratch + (size_t)ith * c->att_scratch_floats;
    if (tk->n_chunks > 0) { // (KV head, chunk) units of one token block
        const int ch0 = first_key(c, tk->layer, tk->pos0) / FA_CHUNK;
        for (int u = ith; u < n_kv * tk->n_chunks; u += nth) fa_unit(tk, u / tk->n_chunks, 0, ch0 + u % tk->n_chunks, scratch);
        return;
    }
    for (int u = ith; u < n_kv * tk->n_tok_blocks; u += nth) fa_unit(tk, u % n_kv, u / n_kv, -1, scratch);
}

// The parked chunk states of each KV head merged left to right into the outputs.
static void fa_merge_chunks(const att_task *tk) {
    ll_context *c = tk->c;
    const ll_hparams *hp = &c->model->hp;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    const int n_q = tk->n_rows * group;
    for (int hk = 0; hk < hp->n_head_kv; hk++) {
        float *base = c->att_part + (size_t)hk * tk->n_chunks * n_q * (hd + 2);
        gl_attn_state st = fa_state(base, n_q, NULL, 0, NULL, NULL);
        for (int k = 1; k < tk->n_chunks; k++) {
            gl_attn_state cs = fa_state(base + (size_t)k * n_q * (hd + 2), n_q, NULL, 0, NULL, NULL);
            gl_attn_merge(&st, &cs, hd);
        }
        fa_finish(tk, &st, hk, 0);
    }
}

// Fused attention of the chunk's n_tok queries at positions pos0 ...
static void attend_fused(ll_context *c, int l, int n_tok, int pos0) {
    const ll_hparams *hp = &c->model->hp;
    att_task tk = {c, n_tok, l, pos0, fa_tok_block(hp), 0, 0, 0};
    tk.n_tok_blocks = (n_tok + tk.tok_block - 1) / tk.tok_block;
    // Too few (head, token block) units for the threads: chunks become units too.
    const int ch0 = first_key(c, l, pos0) / FA_CHUNK, ch1 = (pos0 + n_tok - 1) / FA_CHUNK;
    if (tk.n_tok_blocks == 1 && hp->n_head_kv < 2 * c->n_threads && ch1 > ch0) tk.n_chunks = ch1 - ch0 + 1;
    ll_run(c, fa_task, &tk, (size_t)n_tok * hp->n_head * (pos0 + n_tok) * hp->head_dim);
    if (tk.n_chunks > 0) fa_merge_chunks(&tk);
}

void ll_attend(ll_context *c, int l, int n_tok, int pos0) {
    const ll_hparams *hp = &c->model->hp;
    const bool plain = (c->kv.type_k == GL_TYPE_F16 || c->kv.type_k == GL_TYPE_F32) &&
                       (c->kv.type_v == GL_TYPE_F16 || c->kv.type_v == GL_TYPE_F32);
    if (c->flash_attn && hp->n_head / hp->n_head_kv <= FA_MAX_Q) {
        attend_fused(c, l, n_tok, pos0);
        return;
    }
    att_task tk = {c, n_tok, l, pos0, 0, 0, 0, 0};
    ll_run(c, plain ? attention_task : attention_any_task, &tk, (size_t)n_tok * hp->n_head * (pos0 + n_tok) * hp->head_dim);
}
