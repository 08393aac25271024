// Contexts: the KV cache, scratch buffers sized once, the threadpool, and the decode loop
// that feeds the forward pass n_batch tokens at a time.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attention.h"
#include "context/context.h"
#include "forward/blocks.h"
#include "forward/forward.h"
#include "util.h"

ll_context_params ll_context_default_params(void) {
    ll_context_params p = {
        .n_ctx = 0,
        .n_batch = 512,
        .n_threads = 0,
        .type_k = LL_CACHE_F16,
        .type_v = LL_CACHE_F16,
        .logits_all = false,
        .flash_attn = LL_FLASH_ATTN_AUTO,
    };
    return p;
}

// malloc of a * b * c bytes, NULL on overflow.
static void *alloc3(size_t a, size_t b, size_t c) {
    if (b && a > SIZE_MAX / b) return NULL;
    if (c && a * b > SIZE_MAX / c) return NULL;
    size_t n = a * b * c;
    return malloc(n ? n : 1);
}

// Whether the fused kernel runs (-fa on or auto). It needs
// heads that start on block boundaries; otherwise the two passes read any layout.
static bool use_flash_attn(ll_flash_attn fa, enum gl_type tk, enum gl_type tv, int head_dim) {
    return fa != LL_FLASH_ATTN_OFF && gl_attn_supported(tk, tv, head_dim);
}

ll_context *ll_context_new(ll_model *m, const ll_context_params *p, char *err, size_t errlen) {
    ll_context_params def = ll_context_default_params();
    if (!p) p = &def;
    if (!m || m->vocab_only) {
        ll_set_err(err, errlen, "cannot make a context: the model has no weights (vocab only)");
        return NULL;
    }
    enum gl_type type_k, type_v;
    if (p->n_ctx < 0 || p->n_batch < 0 || p->n_threads < 0 || !ll_kv_cache_gl_type(p->type_k, &type_k) ||
        !ll_kv_cache_gl_type(p->type_v, &type_v) || (unsigned)p->flash_attn > LL_FLASH_ATTN_OFF) {
        ll_set_err(err, errlen, "invalid context parameters");
        return NULL;
    }
    const ll_hparams *hp = &m->hp;
    ll_context *c = calloc(1, sizeof *c);
    if (!c) {
        ll_set_err(err, errlen, "out of memory");
        return NULL;
    }
    c->model = m;
    c->params = *p;
    c->n_ctx = p->n_ctx ? p->n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    c->n_batch = p->n_batch ? p->n_batch : 512;
    if (c->n_batch > c->n_ctx) c->n_batch = c->n_ctx;
    c->n_threads = p->n_threads ? p->n_threads : gl_physical_cores();
    if (c->n_threads > 512) c->n_threads = 512;
    c->params.n_ctx = c->n_ctx;
    c->params.n_batch = c->n_batch;
    c->params.n_threads = c->n_threads;

    const size_t E = hp->n_embd, q_dim = (size_t)hp->n_head * hp->head_dim,
                 kv_dim = (size_t)hp->n_head_kv * hp->head_dim, NB = c->n_batch;
    bool fused_qkv = false;
    for (int l = 0; l < hp->n_layer; l++) fused_qkv |= m->layers[l].w[LL_ROLE_ATTN_QKV].data != NULL;
    const size_t n_hb = (size_t)hp->n_ff * (hp->ffn_fused_gate_up ? 2 : 1);
    // Sliding-window layers: their window before a chunk, and the chunk (kv_cache.h).
    int *cells = malloc(sizeof *cells * (size_t)hp->n_layer);
    for (int l = 0; cells && l < hp->n_layer; l++) {
        const int n_swa = m->layers[l].n_swa;
        cells[l] = n_swa > 0 && !p->swa_full ? n_swa - 1 + c->n_batch : c->n_ctx;
    }
    const bool kv_ok = cells && ll_kv_cache_init(&c->kv, hp->n_layer, hp->n_head_kv, hp->head_dim, c->n_ctx, cells,
                                                 type_k, type_v, err, errlen);
    if (!cells) ll_set_err(err, errlen, "out of memory");
    free(cells);
    if (!kv_ok) {
        ll_context_free(c);
        return NULL;
    }
    c->flash_attn = use_flash_attn(p->flash_attn, type_k, type_v, hp->head_dim);
    c->x = alloc3(NB, E, sizeof(float));
    c->xb = alloc3(NB, E > q_dim ? E : q_dim, sizeof(float));
    c->xb2 = alloc3(NB, E, sizeof(float));
    c->q = alloc3(NB, q_dim, sizeof(float));
    c->k = alloc3(NB, kv_dim, sizeof(float));
    c->v = alloc3(NB, kv_dim, sizeof(float));
    if (fused_qkv) c->qkv = alloc3(NB, q_dim + 2 * kv_dim, sizeof(float));
    c->hb = alloc3(NB, n_hb, sizeof(float));
    c->hb2 = alloc3(NB, hp->n_ff, sizeof(float));
    c->att = alloc3(c->n_threads, c->n_ctx, sizeof(float));
    c->n_ropes = m->n_ropes;
    bool rope_ok = true;
    for (int r = 0; r < c->n_ropes; r++) rope_ok &= (c->rope_cs[r] = alloc3(NB, hp->n_rot, sizeof(float))) != NULL;
    c->att_scratch_floats = ll_attend_scratch_floats(hp);
    c->att_scratch = alloc3(c->n_threads, c->att_scratch_floats, sizeof(float));
    c->att_part = alloc3(ll_attend_part_floats(hp, c->n_ctx), 1, sizeof(float));
    c->logits_cap = (size_t)hp->n_vocab;
    c->logits = alloc3(c->logits_cap, 1, sizeof(float));
    c->tp = gl_threadpool_create(c->n_threads);
    if (!c->att_part || !c->x || !c->xb || !c->xb2 || !c->q || !c->k || !c->v ||
        (fused_qkv && !c->qkv) || !c->hb || !c->hb2 || !c->att || !c->att_scratch || !rope_ok || !c->logits ||
        !c->tp) {
        ll_set_err(err, errlen, "out of memory for a context of %d tokens", c->n_ctx);
        ll_context_free(c);
        return NULL;
    }
    // The model's rotary settings; LongRoPE's long factors when the context is longer than the
    // original one (as the reference decides, by the context size).
    for (int r = 0; r < c->n_ropes; r++) c->rope[r] = m->rope[r];
    if (m->rope_long && !m->rope_freqs && c->n_ctx > hp->n_ctx_orig) c->rope[0].p.freq_factors = m->rope_long;
    return c;
}

void ll_context_free(ll_context *c) {
    if (!c) return;
    if (c->tp) gl_threadpool_free(c->tp);
    gl_act_free(&c->act);
    gl_act_free(&c->lora_act);
    gl_act_free(&c->lora_act2);
    free(c->loras);
    free(c->lora_tmp);
    free(c->lora_out);
    free(c->lora_out2);
    ll_kv_cache_free(&c->kv);
    free(c->att_part);
    free(c->x);
    free(c->xb);
    free(c->xb2);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->qkv);
    free(c->hb);
    free(c->hb2);
    free(c->att);
    for (int r = 0; r < LL_MAX_ROPES; r++) free(c->rope_cs[r]);
    free(c->att_scratch);
    free(c->logits);
    ll_moe_free(c->moe);
    free(c);
}

int ll_n_ctx(const ll_context *c) { return c->n_ctx; }
int ll_n_past(const ll_context *c) { return c->n_past; }
int ll_n_threads(const ll_context *c) { return c->n_threads; }
float ll_get_route_margin(const ll_context *c) { return c->route_margin; }
const ll_model *ll_context_model(const ll_context *c) { return c->model; }

int ll_decode(ll_context *c, const ll_token *tokens, int n, char *err, size_t errlen) {
    const int n_vocab = c->model->hp.n_vocab;
    if (n <= 0 || !tokens) {
        ll_set_err(err, errlen, "decode: no tokens");
        return -1;
    }
    c->route_margin = INFINITY;
    if (n > c->n_ctx - c->n_past) {
        ll_set_err(err, errlen, "context full: %d cached + %d new tokens exceed n_ctx %d",
                c->n_past, n, c->n_ctx);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            ll_set_err(err, errlen, "decode: token %d out of range [0, %d)", (int)tokens[i], n_vocab);
            return -1;
        }
    }
    const bool all = c->params.logits_all;
    size_t need = (all ? (size_t)n : 1) * (size_t)n_vocab;
    if (need > c->logits_cap) {
        // Grows only when a longer logits_all decode than any before comes in.
        float *nl = realloc(c->logits, need * sizeof(float));
        if (!nl) {
            ll_set_err(err, errlen, "out of memory for the logits of %d tokens", n);
            return -1;
        }
        c->logits = nl;
        c->logits_cap = need;
    }

    double t0 = ll_now_ms();
    int n_past0 = c->n_past;
    c->n_last = 0;
    c->n_logits = 0;
    for (int i = 0; i < n; i += c->n_batch) {
        int nb = n - i < c->n_batch ? n - i : c->n_batch;
        bool last = i + nb == n;
        float *out = c->no_logits ? NULL : all ? c->logits + (size_t)i * n_vocab : (last ? c->logits : NULL);
        if (ll_decode_aborted(c, err, errlen) ||
            !c->model->a->forward(c, tokens + i, nb, c->n_past, out, all, err, errlen)) {
            c->n_past = n_past0; // the cache rows past n_past0 are garbage now
            return -1;
        }
        c->n_past += nb;
    }
    c->n_last = n;
    c->n_logits = c->no_logits ? 0 : all ? n : 1;
    double dt = ll_now_ms() - t0;
    if (n > 1) {
        c->t_prompt_ms += dt;
        c->n_prompt += n;
    } else {
        c->t_gen_ms += dt;
        c->n_gen += 1;
    }
    return 0;
}

void ll_set_abort_callback(ll_context *c, bool (*cb)(void *ud), void *ud) {
    c->abort_cb = cb;
    c->abort_ud = ud;
}

bool ll_decode_aborted(ll_context *c, char *err, size_t errlen) {
    if (!c->abort_cb || !c->abort_cb(c->abort_ud)) return false;
    ll_set_err(err, errlen, "interrupted");
    return true;
}

float *ll_get_logits(ll_context *c) {
    if (c->n_logits == 0) return NULL;
    return c->logits + (size_t)(c->n_logits - 1) * c->model->hp.n_vocab;
}

float *ll_get_logits_ith(ll_context *c, int i) {
    if (i < 0 || i >= c->n_last || c->n_logits == 0) return NULL;
    if (c->n_logits == c->n_last) return c->logits + (size_t)i * c->model->hp.n_vocab;
    return i == c->n_last - 1 ? c->logits : NULL;
}

void ll_set_logits_all(ll_context *c, bool on) { c->params.logits_all = on; }
void ll_set_exact_batches(ll_context *c, bool on) { c->exact_batches = on; }
void ll_set_no_logits(ll_context *c, bool on) { c->no_logits = on; }

int ll_decode_from_layer(ll_context *c, const ll_token *tokens, int n, int n_layers, const float *x,
                         char *err, size_t errlen) {
    if (n_layers < 0 || n_layers > c->model->hp.n_layer || (n_layers > 0 && !x)) {
        ll_set_err(err, errlen, "decode: no residual stream for %d layers", n_layers);
        return -1;
    }
    c->skip_layers = n_layers;
    c->skip_x = x;
    c->skip_pos0 = c->n_past;
    const int rc = ll_decode(c, tokens, n, err, errlen);
    c->skip_layers = 0;
    c->skip_x = NULL;
    return rc;
}

const float *ll_last_residual(const ll_context *c) {
    return c->n_rows_x > 0 ? c->x + (size_t)(c->n_rows_x - 1) * c->model->hp.n_embd : NULL;
}

// (Contexts whose layers all hold every position: rows are copied position for position.)
static bool all_full(const ll_context *c) {
    for (int l = 0; l < c->kv.n_layer; l++)
        if (c->kv.cells[l] < c->kv.n_cells) return false;
    return true;
}

bool ll_kv_same_layout(const ll_context *a, const ll_context *b) {
    return a->kv.type_k == b->kv.type_k && a->kv.type_v == b->kv.type_v && a->kv.kv_dim == b->kv.kv_dim &&
           all_full(a) && all_full(b);
}

void ll_kv_copy_rows(ll_context *dst, const ll_context *src, int n_layers, int p0, int p1) {
    const ll_kv_cache *s = &src->kv;
    ll_kv_cache *d = &dst->kv;
    if (p0 < 0 || p1 > src->n_ctx || p1 > dst->n_ctx || p0 >= p1 || n_layers > s->n_layer || n_layers > d->n_layer)
        return;
    if (!all_full(src) || !all_full(dst)) return;
    for (int l = 0; l < n_layers; l++) {
        memcpy(ll_kv_k(d, l, p0), ll_kv_k(s, l, p0), (size_t)(p1 - p0) * s->k_row);
        memcpy(ll_kv_v(d, l, p0), ll_kv_v(s, l, p0), (size_t)(p1 - p0) * s->v_row);
    }
    if (dst->n_past >= p0 && dst->n_past < p1) dst->n_past = p1;
}

void ll_kv_clear(ll_context *c) {
    c->n_past = 0;
    for (int l = 0; l < c->kv.n_layer; l++) c->kv.base[l] = 0;
}

void ll_kv_truncate(ll_context *c, int n_keep) {
    if (n_keep < 0) n_keep = 0;
    if (n_keep >= c->n_past) return;
    for (int l = 0; l < c->kv.n_layer; l++)
        if (!ll_kv_cache_can_keep(&c->kv, l, n_keep, c->model->layers[l].n_swa)) {
            ll_kv_clear(c); // the window's rows before n_keep are gone
            return;
        }
    c->n_past = n_keep;
}

typedef struct {
    ll_context *c;
    int n_keep, n_discard;
} shift_task;

// Each thread moves the rows of whole layers: keys are re-rotated by -n_discard on the way,
// with the rotary setting of their layer.
static void kv_shift_task(void *arg, int ith, int nth) {
    const shift_task *st = arg;
    ll_context *c = st->c;
    for (int l = ith; l < c->kv.n_layer; l += nth)
        ll_kv_cache_shift_layer(&c->kv, l, c->n_past, st->n_keep, st->n_discard, &c->rope[c->model->layers[l].rope]);
}

void ll_kv_shift(ll_context *c, int n_keep, int n_discard) {
    if (n_keep < 0) n_keep = 0;
    if (n_keep >= c->n_past || n_discard <= 0) return;
    if (n_discard > c->n_past - n_keep) n_discard = c->n_past - n_keep;
    shift_task st = {c, n_keep, n_discard};
    gl_threadpool_run(c->tp, kv_shift_task, &st);
    c->n_past -= n_discard;
}

ll_timings ll_get_timings(const ll_context *c) {
    ll_timings t = {
        .t_load_ms = c->model->t_load_ms,
        .t_prompt_ms = c->t_prompt_ms, .n_prompt = c->n_prompt,
        .t_gen_ms = c->t_gen_ms, .n_gen = c->n_gen,
    };
    return t;
}

void ll_reset_timings(ll_context *c) {
    c->t_prompt_ms = c->t_gen_ms = 0;
    c->n_prompt = c->n_gen = 0;
}
