// The shared blocks (blocks.h): embedding, RMS norm, the attention block around the attention
// kernel (projections, biases, q/k norms, RoPE, the cache), the gated feed-forward block,
// residual adds and the output head. Options come from the model: which weights a layer has
// (a bias is added when the file has it) and the family's hyperparameters.
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/blocks.h"

// ---- threaded pieces ----------------------------------------------------------------------

typedef struct {
    ll_context *c;
    const float *src;   // rows of n floats (a GLU: the gates)
    float *dst;
    const float *w;     // norm weight
    const float *src2;  // a GLU's up rows
    int n_rows, n;
    size_t stride;      // floats between a row's start and the next (src, src2)
    ll_act act;
} task;

static void rmsnorm_task(void *arg, int ith, int nth) {
    const task *t = arg;
    int lo, hi;
    ll_split(t->n_rows, ith, nth, &lo, &hi);
    for (int r = lo; r < hi; r++)
        gl_rmsnorm(t->dst + (size_t)r * t->n, t->src + (size_t)r * t->n, t->w, t->n, t->c->model->hp.rms_eps);
}

// The reference's tanh-GELU on the CPU: the input rounded to F16 indexes a table of F16 results
// (0 below -10, x above 10). The table's entries are computed as its compiler builds them, the
// multiply-add in 1 + a x^2 fused.
static uint16_t gelu_table[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void gelu_init(void) {
    const float a = 0.044715f, s = 0.79788456080286535587989211986876f;
    for (int i = 0; i < 1 << 16; i++) {
        const float x = gl_fp16_to_fp32((gl_fp16)i);
        gelu_table[i] = gl_fp32_to_fp16(0.5f * x * (1.0f + tanhf(s * x * fmaf(a * x, x, 1.0f))));
    }
}

static inline float gelu(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    return gl_fp16_to_fp32(gelu_table[gl_fp32_to_fp16(x)]);
}

// dst row = act(gate row) * up row. SiLU: ggml-lite's swiglu; GELU: the table, then the product.
static void glu_task(void *arg, int ith, int nth) {
    const task *t = arg;
    int lo, hi;
    ll_split(t->n_rows, ith, nth, &lo, &hi);
    for (int r = lo; r < hi; r++) {
        const float *g = t->src + (size_t)r * t->stride, *u = t->src2 + (size_t)r * t->stride;
        float *d = t->dst + (size_t)r * t->n;
        if (t->act == LL_ACT_SILU) {
            gl_swiglu(d, g, u, t->n);
        } else if (t->act == LL_ACT_SWIGLU_OAI) {
            // gpt-oss: the gate capped at 7, the up clamped to [-7, 7] and shifted by 1.
            for (int i = 0; i < t->n; i++) {
                const float x = fminf(g[i], 7.0f), y = fminf(fmaxf(u[i], -7.0f), 7.0f);
                d[i] = x / (1.0f + expf(-1.702f * x)) * (y + 1.0f);
            }
        } else {
            for (int i = 0; i < t->n; i++) d[i] = gelu(g[i]);
            for (int i = 0; i < t->n; i++) d[i] *= u[i];
        }
    }
}

void ll_glu(ll_context *c, float *dst, const float *gate, const float *up, int n_rows, int n, size_t stride,
            ll_act act) {
    task tk = {.c = c, .src = gate, .src2 = up, .dst = dst, .n_rows = n_rows, .n = n, .stride = stride, .act = act};
    if (act == LL_ACT_GELU) pthread_once(&gelu_once, gelu_init);
    if (!c) glu_task(&tk, 0, 1);
    else ll_run(c, glu_task, &tk, (size_t)n_rows * n * 4); // exp is dearer than a multiply
}

// ---- small helpers --------------------------------------------------------------------------

static void add_bias(float *x, const float *b, int n_tok, int n) {
    if (!b) return;
    for (int t = 0; t < n_tok; t++) gl_vec_add(x + (size_t)t * n, x + (size_t)t * n, b, n);
}

// LL_DUMP_DIR, or NULL when intermediates are not dumped (read once).
static const char *dump_dir(void) {
    static int dir_state = -1;
    static const char *dir;
    if (dir_state < 0) { dir = getenv("LL_DUMP_DIR"); dir_state = dir != NULL; }
    return dir;
}

void ll_dump(const char *name, int l, const float *p, int n_tok, int n) {
    const char *dir = dump_dir();
    if (!dir) return;
    char path[512];
    if (l >= 0) snprintf(path, sizeof path, "%s/%s-%d.bin", dir, name, l);
    else snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    int64_t ne[4] = {n, n_tok, 1, 1};
    fwrite(ne, 8, 4, f);
    fwrite(p, 4, (size_t)n * n_tok, f);
    fclose(f);
}

bool ll_oom(char *err, size_t errlen) {
    if (err && errlen) snprintf(err, errlen, "out of memory (activation or LoRA buffer)");
    return false;
}

// ---- the blocks -----------------------------------------------------------------------------

bool ll_embed(ll_context *c, const ll_token *tokens, int B, int pos0, int *first_layer) {
    const ll_model *m = c->model;
    const int E = m->hp.n_embd;
    *first_layer = c->skip_layers;
    if (c->skip_layers > 0) {
        memcpy(c->x, c->skip_x + (size_t)(pos0 - c->skip_pos0) * E, sizeof(float) * (size_t)B * E);
        return true;
    }
    // Rows decoded from whatever type token_embd has.
    const gl_type_traits *et = gl_get_type_traits(m->tok_embd.type);
    const size_t erow = gl_row_size(m->tok_embd.type, E);
    for (int t = 0; t < B; t++)
        et->to_float((const char *)m->tok_embd.data + (size_t)tokens[t] * erow, c->x + (size_t)t * E, E);
    if (c->n_loras && !ll_lora_embd(c, tokens, B)) return false;
    ll_dump("inp_embd", -1, c->x, B, E);
    if (m->hp.embd_scale > 0) {
        gl_vec_scale(c->x, m->hp.embd_scale, B * E);
        ll_dump("inp_scaled", -1, c->x, B, E);
    }
    return true;
}

void ll_rope_positions(ll_context *c, int B, int pos0) {
    const ll_hparams *hp = &c->model->hp;
    for (int r = 0; r < c->n_ropes; r++)
        for (int t = 0; t < B; t++) ll_rope_cache(&c->rope[r], hp->head_dim, pos0 + t, c->rope_cs[r] + (size_t)t * hp->n_rot);
}

void ll_rmsnorm(ll_context *c, float *dst, const float *src, const float *w, int B) {
    const int E = c->model->hp.n_embd;
    task tk = {.c = c, .src = src, .dst = dst, .w = w, .n_rows = B, .n = E};
    ll_run(c, rmsnorm_task, &tk, (size_t)B * E);
}

// dst row += src row (dst: the residual stream).
static void residual_task(void *arg, int ith, int nth) {
    const task *t = arg;
    int lo, hi;
    ll_split(t->n_rows, ith, nth, &lo, &hi);
    float *x = t->dst + (size_t)lo * t->n;
    if (hi > lo) gl_vec_add(x, x, t->src + (size_t)lo * t->n, (hi - lo) * t->n);
}

void ll_residual(ll_context *c, float *x, const float *y, int B, const char *name, int l) {
    const int E = c->model->hp.n_embd;
    task tk = {.c = c, .src = y, .dst = x, .n_rows = B, .n = E};
    ll_run(c, residual_task, &tk, (size_t)B * E);
    ll_dump(name, l, x, B, E);
}

// Q, K, V of the chunk from the normed input: three matmuls, or one fused matmul split in
// three; then the biases the layer has.
static bool project_qkv(ll_context *c, int l, const float *x, int B) {
    const ll_layer *L = &c->model->layers[l];
    const ll_hparams *hp = &c->model->hp;
    const int q_dim = hp->n_head * hp->head_dim, kv_dim = hp->n_head_kv * hp->head_dim;
    c->act_src = NULL;
    if (L->w[LL_ROLE_ATTN_QKV].data) {
        const int n = q_dim + 2 * kv_dim;
        if (!ll_matmul(c, &L->w[LL_ROLE_ATTN_QKV], ll_lora_slot(l, LL_ROLE_ATTN_QKV), x, B, c->qkv)) return false;
        add_bias(c->qkv, ll_vec(L, LL_ROLE_ATTN_QKV_B), B, n);
        for (int t = 0; t < B; t++) {
            const float *r = c->qkv + (size_t)t * n;
            memcpy(c->q + (size_t)t * q_dim, r, sizeof(float) * q_dim);
            memcpy(c->k + (size_t)t * kv_dim, r + q_dim, sizeof(float) * kv_dim);
            memcpy(c->v + (size_t)t * kv_dim, r + q_dim + kv_dim, sizeof(float) * kv_dim);
        }
    } else if (!ll_matmul(c, &L->w[LL_ROLE_ATTN_Q], ll_lora_slot(l, LL_ROLE_ATTN_Q), x, B, c->q) ||
               !ll_matmul(c, &L->w[LL_ROLE_ATTN_K], ll_lora_slot(l, LL_ROLE_ATTN_K), x, B, c->k) ||
               !ll_matmul(c, &L->w[LL_ROLE_ATTN_V], ll_lora_slot(l, LL_ROLE_ATTN_V), x, B, c->v)) {
        return false;
    }
    add_bias(c->q, ll_vec(L, LL_ROLE_ATTN_Q_B), B, q_dim);
    add_bias(c->k, ll_vec(L, LL_ROLE_ATTN_K_B), B, kv_dim);
    add_bias(c->v, ll_vec(L, LL_ROLE_ATTN_V_B), B, kv_dim);
    return true;
}

// The chunk's queries and keys readied for attention, the tokens split between the threads:
// the per-head q/k norms (where the layer has them), then RoPE, the keys and values into the
// cache, and the queries scaled (families that scale them first).
typedef struct {
    ll_context *c;
    const ll_layer *L;
    int l, n_tok, pos0;
    bool norm, rope; // the stages this run does
} qk_task;

// RMS norm of each of a row's n_heads heads, in place.
static void norm_heads(const ll_hparams *hp, float *x, const float *w, int n_heads) {
    if (!w) return;
    for (int h = 0; h < n_heads; h++) {
        float *head = x + (size_t)h * hp->head_dim;
        gl_rmsnorm(head, head, w, hp->head_dim, hp->rms_eps);
    }
}

static void qk_task_run(void *arg, int ith, int nth) {
    const qk_task *t = arg;
    ll_context *c = t->c;
    const ll_hparams *hp = &c->model->hp;
    const int hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
    const gl_rope_params *rope = &c->rope[t->L->rope].p;
    int lo, hi;
    ll_split(t->n_tok, ith, nth, &lo, &hi);
    for (int r = lo; r < hi; r++) {
        float *q = c->q + (size_t)r * q_dim, *k = c->k + (size_t)r * kv_dim;
        if (t->norm) {
            norm_heads(hp, q, ll_vec(t->L, LL_ROLE_ATTN_Q_NORM), hp->n_head);
            norm_heads(hp, k, ll_vec(t->L, LL_ROLE_ATTN_K_NORM), hp->n_head_kv);
        }
        if (!t->rope) continue;
        const float *cs = c->rope_cs[t->L->rope] + (size_t)r * hp->n_rot;
        gl_rope_apply(rope, cs, q, hp->n_head, hd);
        gl_rope_apply(rope, cs, k, hp->n_head_kv, hd);
        ll_kv_cache_store(&c->kv, t->l, ll_kv_cell(&c->kv, t->l, t->pos0 + r), k, c->v + (size_t)r * kv_dim);
        if (hp->q_scale_first) gl_vec_scale(q, hp->kq_scale, q_dim);
    }
}

bool ll_attention(ll_context *c, int l, const float *x, int B, int pos0, float *out) {
    const ll_model *m = c->model;
    const ll_hparams *hp = &m->hp;
    const ll_layer *L = &m->layers[l];
    const int E = hp->n_embd, hd = hp->head_dim;
    const int q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;

    ll_dump("attn_norm", l, x, B, E);
    if (!project_qkv(c, l, x, B)) return false;
    // q/k norms, RoPE on q and k, and the chunk's keys and values into the cache (a
    // sliding-window layer first drops the rows the chunk's queries no longer see, if it needs
    // the room): one run over the tokens, or two when the normed q and k are dumped between.
    if (L->n_swa > 0) ll_kv_cache_make_room(&c->kv, l, pos0, B, L->n_swa);
    const bool normed = L->w[LL_ROLE_ATTN_Q_NORM].data || L->w[LL_ROLE_ATTN_K_NORM].data;
    const size_t qk_work = (size_t)B * (q_dim + 2 * kv_dim);
    qk_task qk = {c, L, l, B, pos0, .norm = normed, .rope = !dump_dir()};
    if (qk.norm || qk.rope) ll_run(c, qk_task_run, &qk, qk_work);
    ll_dump("Qcur", l, c->q, B, q_dim);
    ll_dump("Kcur", l, c->k, B, kv_dim);
    ll_dump("Vcur", l, c->v, B, kv_dim);
    if (!qk.rope) {
        qk.norm = false, qk.rope = true;
        ll_run(c, qk_task_run, &qk, qk_work);
    }
    ll_dump("Qcur_rope", l, c->q, B, q_dim);
    ll_dump("Kcur_rope", l, c->k, B, kv_dim);

    ll_attend(c, l, B, pos0);
    ll_dump("kqv_merged_cont", l, c->xb, B, q_dim);
    c->act_src = NULL;
    if (!ll_matmul(c, &L->w[LL_ROLE_ATTN_OUT], ll_lora_slot(l, LL_ROLE_ATTN_OUT), c->xb, B, out)) return false;
    add_bias(out, ll_vec(L, LL_ROLE_ATTN_OUT_B), B, E);
    ll_dump("kqv_out", l, out, B, E);
    return true;
}

bool ll_ffn(ll_context *c, int l, const float *x, int B, float *out) {
    const ll_model *m = c->model;
    const ll_layer *L = &m->layers[l];
    const int n_ff = L->n_ff;
    ll_dump("ffn_norm", l, x, B, m->hp.n_embd);
    c->act_src = NULL;
    float *h; // act(gate) * up
    if (!L->w[LL_ROLE_FFN_GATE].data) {
        // gate|up in one matrix: each row of hb is the gates, then the ups
        if (!ll_matmul(c, &L->w[LL_ROLE_FFN_UP], ll_lora_slot(l, LL_ROLE_FFN_UP), x, B, c->hb)) return false;
        add_bias(c->hb, ll_vec(L, LL_ROLE_FFN_UP_B), B, 2 * n_ff);
        ll_glu(c, h = c->hb2, c->hb, c->hb + n_ff, B, n_ff, 2 * (size_t)n_ff, m->hp.ffn_act);
    } else {
        if (!ll_matmul(c, &L->w[LL_ROLE_FFN_GATE], ll_lora_slot(l, LL_ROLE_FFN_GATE), x, B, c->hb) ||
            !ll_matmul(c, &L->w[LL_ROLE_FFN_UP], ll_lora_slot(l, LL_ROLE_FFN_UP), x, B, c->hb2))
            return false;
        add_bias(c->hb, ll_vec(L, LL_ROLE_FFN_GATE_B), B, n_ff);
        add_bias(c->hb2, ll_vec(L, LL_ROLE_FFN_UP_B), B, n_ff);
        ll_dump("ffn_gate", l, c->hb, B, n_ff);
        ll_dump("ffn_up", l, c->hb2, B, n_ff);
        ll_glu(c, h = c->hb, c->hb, c->hb2, B, n_ff, (size_t)n_ff, m->hp.ffn_act);
    }
    ll_dump("ffn_gate_par", l, h, B, n_ff);
    c->act_src = NULL;
    if (!ll_matmul(c, &L->w[LL_ROLE_FFN_DOWN], ll_lora_slot(l, LL_ROLE_FFN_DOWN), h, B, out)) return false;
    add_bias(out, ll_vec(L, LL_ROLE_FFN_DOWN_B), B, m->hp.n_embd);
    ll_dump("ffn_out", l, out, B, m->hp.n_embd);
    return true;
}

bool ll_output(ll_context *c, int B, float *out, bool all_logits) {
    const ll_model *m = c->model;
    const int E = m->hp.n_embd;
    c->n_rows_x = B;
    if (out) {
        // Only the rows whose logits are wanted go through the final norm and the head.
        const int first = all_logits ? 0 : B - 1, n_out = B - first;
        ll_rmsnorm(c, c->xb, c->x + (size_t)first * E, m->output_norm, n_out);
        ll_dump("result_norm", -1, c->xb, n_out, E);
        c->act_src = NULL;
        if (!ll_matmul(c, &m->output, ll_lora_slot_output(m), c->xb, n_out, out)) return false;
        ll_logits_finish(m, out, n_out);
        ll_dump("result_output", -1, out, n_out, (int)m->output.n_out);
    }
    c->act_src = NULL;
    return true;
}
