// The mixture-of-experts feed-forward block (Mixtral, Qwen2-MoE, Qwen3-MoE, gpt-oss):
//
//   logits = Wrouter · x (+ bias)                         one score per expert (moe_route.c)
//   choose k experts and their weights w:                 (the family's rule, ll_moe_gating)
//     softmax, then the k largest (renormalized to sum 1 or not), or
//     the k largest logits, then a softmax over those k
//   out = sum over the chosen e of w_e · down_e(act(gate_e x) * up_e x)
//       + sigmoid(v · x) · shared_expert(x)                where the layer has one (Qwen2-MoE)
//
// The experts are stacked in one tensor per matrix (expert e is the e-th block of rows). A chunk
// of tokens is grouped by expert: each expert that any token chose runs once, a batched matmul
// over all its tokens, reading only its own rows; a generated token reads just its k experts'
// rows. The rows are those repacked at load where the stacks fit in memory twice over
// (model_repack.c), else the mapped file's, and then experts no token chooses are never touched
// (never paged in).
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "forward/moe.h"

enum {
    GROUP_ROWS = 16,        // rows per group of a repacked matrix (repack.h)
    PREFETCH_AHEAD = 4096   // bytes of the next expert's rows asked for ahead (as far as the kernels prefetch)
};

// Scratch for one chunk, allocated on the first MoE layer for n_batch tokens. A chunk's
// (token, choice) entries are grouped by expert: expert e's rows of xe, ge, ue, ye start at
// row first[e] (one row per entry; for one token, row j is its j-th choice).
struct ll_moe_buf {
    int n_tok_cap, n_used, n_expert;
    ll_moe_routes r; // the chunk's routes (moe_route.c)
    int *count;     // [n_expert] how many of the chunk's entries chose each expert
    int *first;     // [n_expert] where each expert's entries start in `order` (and its rows)
    int *order;     // [n_tok * k] entries t * k + j (token t's j-th choice), grouped by expert
    int *pos;       // [n_tok * k] the row of entry t * k + j
    int *tok;       // [n_tok * k] the token of each entry in `order` (order[i] / k)
    int *busiest;   // [n_expert] the experts, most entries first (the order they are dealt out in)
    float *xe;      // [n_tok * k][n_embd] each entry's input row
    float *ge, *ue; // [n_tok * k][n_ff] its gate and up projections; ge then act(gate) * up
    float *ye;      // [n_tok * k][n_embd] its expert's output
    // One generated token: its input once in the experts' activation types, and each chosen
    // expert's act(gate) * up row in the down projections'.
    gl_act act_gate, act_up, *act_down; // act_down: [k]
    // Several tokens: every token's input once in the experts' activation types (gate's, up's),
    // and each expert's inputs (gathered from those) and hidden rows in its own activations.
    gl_act act_all_gate, act_all_up;
    gl_act *exp_in, *exp_up, *exp_h;    // [n_expert] each
    // Generation's choices while recorded (ll_moe_trace): [token][layer][k], and how many
    // one-token passes each layer has seen.
    int *trace, trace_tokens, *trace_calls;
};

void ll_moe_free(struct ll_moe_buf *b) {
    if (!b) return;
    free(b->r.logits), free(b->r.probs), free(b->r.margins), free(b->r.sel), free(b->r.w);
    free(b->count), free(b->first), free(b->order);
    free(b->xe), free(b->ge), free(b->ue), free(b->ye);
    gl_act_free(&b->act_gate), gl_act_free(&b->act_up), gl_act_free(&b->act_all_gate), gl_act_free(&b->act_all_up);
    for (int j = 0; b->act_down && j < b->n_used; j++) gl_act_free(&b->act_down[j]);
    free(b->act_down);
    for (int e = 0; b->exp_in && e < b->n_expert; e++)
        gl_act_free(&b->exp_in[e]), gl_act_free(&b->exp_up[e]), gl_act_free(&b->exp_h[e]);
    free(b->exp_in), free(b->exp_up), free(b->exp_h), free(b->pos), free(b->tok), free(b->busiest);
    free(b->trace_calls);
    free(b);
}

static struct ll_moe_buf *moe_buf(ll_context *c) {
    if (c->moe) return c->moe;
    const ll_hparams *hp = &c->model->hp;
    const size_t B = (size_t)c->n_batch, E = (size_t)hp->n_embd, n_exp = (size_t)hp->n_expert,
                 k = (size_t)hp->n_expert_used;
    const size_t ff = (size_t)(hp->n_ff_exp > hp->n_ff_shexp ? hp->n_ff_exp : hp->n_ff_shexp);
    struct ll_moe_buf *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->n_tok_cap = c->n_batch;
    b->n_used = (int)k;
    b->n_expert = (int)n_exp;
    b->act_down = calloc(k, sizeof(gl_act));
    b->exp_in = calloc(n_exp, sizeof(gl_act));
    b->exp_up = calloc(n_exp, sizeof(gl_act));
    b->exp_h = calloc(n_exp, sizeof(gl_act));
    b->pos = malloc(B * k * sizeof(int));
    b->tok = malloc(B * k * sizeof(int));
    b->busiest = malloc(n_exp * sizeof(int));
    const size_t n_thr = (size_t)c->n_threads;
    b->r.logits = malloc(B * n_exp * sizeof(float));
    b->r.probs = malloc(n_thr * n_exp * sizeof(float));
    b->r.margins = malloc(n_thr * sizeof(float));
    b->r.sel = malloc(B * k * sizeof(int));
    b->r.w = malloc(B * k * sizeof(float));
    b->count = malloc(n_exp * sizeof(int));
    b->first = malloc(n_exp * sizeof(int));
    b->order = malloc(B * k * sizeof(int));
    b->xe = malloc(B * k * E * sizeof(float));
    b->ge = malloc(B * k * ff * sizeof(float));
    b->ue = malloc(B * k * ff * sizeof(float));
    b->ye = malloc(B * k * E * sizeof(float));
    if (!b->act_down || !b->exp_in || !b->exp_up || !b->exp_h || !b->pos || !b->tok || !b->busiest || !b->r.logits ||
        !b->r.probs || !b->r.margins || !b->r.sel || !b->r.w || !b->count || !b->first || !b->order || !b->xe ||
        !b->ge || !b->ue || !b->ye) {
        ll_moe_free(b);
        return NULL;
    }
    return c->moe = b;
}

// Adds row e of an [n, n_expert] bias block to each of n_rows rows of n floats.
static void add_expert_bias(float *x, const float *bias, int e, int n_rows, int n) {
    if (!bias) return;
    for (int r = 0; r < n_rows; r++) gl_vec_add(x + (size_t)r * n, x + (size_t)r * n, bias + (size_t)e * n, n);
}

// Expert e over its n tokens, gathered in its rows of xe (from first[e]): its rows of ye =
// down(act(gate xe) * up xe), with its biases (and the adapters and observer of the stacks).
static bool run_expert(ll_context *c, int l, int e, int n, struct ll_moe_buf *b) {
    const ll_hparams *hp = &c->model->hp;
    const ll_layer *L = &c->model->layers[l];
    const int ff = hp->n_ff_exp, E = hp->n_embd;
    float *xe = b->xe + (size_t)b->first[e] * E, *ge = b->ge + (size_t)b->first[e] * ff,
          *ue = b->ue + (size_t)b->first[e] * ff, *ye = b->ye + (size_t)b->first[e] * E;
    c->act_src = NULL; // xe holds this expert's tokens now
    if (!ll_matmul_expert(c, &L->w[LL_ROLE_FFN_GATE_EXPS], ll_lora_slot(l, LL_ROLE_FFN_GATE_EXPS), e, xe, n, ge) ||
        !ll_matmul_expert(c, &L->w[LL_ROLE_FFN_UP_EXPS], ll_lora_slot(l, LL_ROLE_FFN_UP_EXPS), e, xe, n, ue))
        return false;
    add_expert_bias(ge, ll_vec(L, LL_ROLE_FFN_GATE_EXPS_B), e, n, ff);
    add_expert_bias(ue, ll_vec(L, LL_ROLE_FFN_UP_EXPS_B), e, n, ff);
    ll_glu(c, ge, ge, ue, n, ff, (size_t)ff, hp->ffn_act);
    c->act_src = NULL;
    if (!ll_matmul_expert(c, &L->w[LL_ROLE_FFN_DOWN_EXPS], ll_lora_slot(l, LL_ROLE_FFN_DOWN_EXPS), e, ge, n, ye))
        return false;
    add_expert_bias(ye, ll_vec(L, LL_ROLE_FFN_DOWN_EXPS_B), e, n, E);
    return true;
}

// ---- one token: every chosen expert in one pass over the threads -------------------------------

// Rows [r0, r0 + n) of expert matrix ex times act (on this thread), from its repacked rows where
// the stack was repacked at load (r0 and n then multiples of 16).
static void expert_matmul(const ll_weight *ex, int64_t r0, int64_t n, const gl_act *act, float *out) {
    if (ex->packed) {
        const size_t group = gl_repack_size(ex->type, ex->n_in, GROUP_ROWS);
        gl_matmul_repacked(NULL, (const char *)ex->packed + (size_t)(r0 / GROUP_ROWS) * group, ex->type, n, act, out);
    } else {
        gl_matmul(NULL, (const char *)ex->data + (size_t)r0 * gl_row_size(ex->type, ex->n_in), ex->type, n, act, out);
    }
}

// Rows of the k chosen experts' matrices, split between the threads: for gate and up together
// (2 k n_ff rows, outputs ge/ue row j), then for down (k n_embd rows, outputs ye row j). The rows
// are taken in the order (matrix, choice, row) and each thread gets one contiguous run of them,
// so it streams its experts' rows front to back (small grabs from a shared counter make both
// threads' streams jump, as for dense weights in repack.c) with one kernel call per expert.
typedef struct {
    const ll_weight *w[2];     // the expert stacks read (gate, up), or (down, NULL)
    const gl_act *act[2];      // their inputs (down: act_down, one per choice)
    float *out[2];             // [k][n_out] each
    const int *sel;            // the k chosen experts
    int k, n_out, n_mats;
    bool per_choice_act;       // act[0] is an array of k activations (down)
} expert_rows;

// Asks for the first few KiB of an expert matrix's rows, so that its stream is under way when
// the one before it ends (the kernels prefetch only within the rows they read).
static void prefetch_rows(const ll_weight *ex) {
    const char *p = ex->packed ? ex->packed : ex->data;
    for (int off = 0; off < PREFETCH_AHEAD; off += 64) __builtin_prefetch(p + off);
}

static void expert_rows_task(void *arg, int ith, int nth) {
    const expert_rows *t = arg;
    // whole groups of repacked rows (n_out is a multiple of them, so every expert's rows start on one)
    const int64_t n_rows = (int64_t)t->n_mats * t->k * t->n_out, n_units = n_rows / GROUP_ROWS;
    const int64_t end = ith == nth - 1 ? n_rows : n_units * (ith + 1) / nth * GROUP_ROWS;
    for (int64_t r = n_units * ith / nth * GROUP_ROWS; r < end;) {
        const int seg = (int)(r / t->n_out), mat = seg / t->k, j = seg % t->k, r0 = (int)(r % t->n_out);
        const int n = end - r < t->n_out - r0 ? (int)(end - r) : t->n_out - r0;
        if (r + n < end) {
            const ll_weight next = ll_expert(t->w[(seg + 1) / t->k], t->sel[(seg + 1) % t->k]);
            prefetch_rows(&next);
        }
        const ll_weight ex = ll_expert(t->w[mat], t->sel[j]);
        const gl_act *act = t->per_choice_act ? &t->act[0][j] : t->act[mat];
        expert_matmul(&ex, r0, n, act, t->out[mat] + (size_t)j * t->n_out + r0);
        r += n;
    }
}

static void run_rows(ll_context *c, expert_rows *t) {
    if (c->n_threads == 1) expert_rows_task(t, 0, 1);
    else gl_threadpool_run(c->tp, expert_rows_task, t);
}

// As many chosen experts for every thread: each runs its experts whole (gate, up, act, down),
// so one pool run serves the layer and no thread waits for the other between gate/up and down.
typedef struct {
    const ll_layer *L;
    const ll_hparams *hp;
    const gl_act *ag, *au; // the token's input for gate and for up
    const int *sel;
    struct ll_moe_buf *b;
    atomic_bool oom;
} whole_experts;

static void whole_experts_task(void *arg, int ith, int nth) {
    whole_experts *t = arg;
    struct ll_moe_buf *b = t->b;
    const int k = t->hp->n_expert_used, ff = t->hp->n_ff_exp, E = t->hp->n_embd;
    const ll_weight *gate = &t->L->w[LL_ROLE_FFN_GATE_EXPS], *up = &t->L->w[LL_ROLE_FFN_UP_EXPS],
                    *down = &t->L->w[LL_ROLE_FFN_DOWN_EXPS];
    const enum gl_type td = gl_get_type_traits(down->type)->vec_dot_type;
    const int j1 = k * (ith + 1) / nth;
    for (int j = k * ith / nth; j < j1; j++) {
        const int e = t->sel[j];
        const ll_weight g = ll_expert(gate, e), u = ll_expert(up, e), d = ll_expert(down, e);
        float *ge = b->ge + (size_t)j * ff, *ue = b->ue + (size_t)j * ff, *ye = b->ye + (size_t)j * E;
        prefetch_rows(&u);
        expert_matmul(&g, 0, ff, t->ag, ge);
        prefetch_rows(&d);
        expert_matmul(&u, 0, ff, t->au, ue);
        add_expert_bias(ge, ll_vec(t->L, LL_ROLE_FFN_GATE_EXPS_B), e, 1, ff);
        add_expert_bias(ue, ll_vec(t->L, LL_ROLE_FFN_UP_EXPS_B), e, 1, ff);
        ll_glu(NULL, ge, ge, ue, 1, ff, (size_t)ff, t->hp->ffn_act);
        if (!gl_act_prepare(&b->act_down[j], NULL, ge, 1, ff, td)) {
            atomic_store(&t->oom, true);
            return;
        }
        if (j + 1 < j1) {
            const ll_weight next = ll_expert(gate, t->sel[j + 1]);
            prefetch_rows(&next);
        }
        expert_matmul(&d, 0, E, &b->act_down[j], ye);
        add_expert_bias(ye, ll_vec(t->L, LL_ROLE_FFN_DOWN_EXPS_B), e, 1, E);
    }
}

// The token's k experts. When the threads can share them out evenly, each thread runs whole
// experts; else gate and up of all of them in one pass over the threads, act, then all downs.
static bool experts_one_token(ll_context *c, const ll_layer *L, const float *x, const int *sel, struct ll_moe_buf *b) {
    const ll_hparams *hp = &c->model->hp;
    const int k = hp->n_expert_used, ff = hp->n_ff_exp, E = hp->n_embd;
    const ll_weight *gate = &L->w[LL_ROLE_FFN_GATE_EXPS], *up = &L->w[LL_ROLE_FFN_UP_EXPS],
                    *down = &L->w[LL_ROLE_FFN_DOWN_EXPS];
    const enum gl_type tg = gl_get_type_traits(gate->type)->vec_dot_type, tu = gl_get_type_traits(up->type)->vec_dot_type,
                       td = gl_get_type_traits(down->type)->vec_dot_type;
    if (!gl_act_prepare(&b->act_gate, NULL, x, 1, E, tg) || (tu != tg && !gl_act_prepare(&b->act_up, NULL, x, 1, E, tu)))
        return false;
    if (k % c->n_threads == 0) {
        whole_experts t = {.L = L, .hp = hp, .ag = &b->act_gate, .au = tu != tg ? &b->act_up : &b->act_gate,
                           .sel = sel, .b = b};
        atomic_init(&t.oom, false);
        if (c->n_threads == 1) whole_experts_task(&t, 0, 1);
        else gl_threadpool_run(c->tp, whole_experts_task, &t);
        return !atomic_load(&t.oom);
    }
    expert_rows gu = {.w = {gate, up}, .act = {&b->act_gate, tu != tg ? &b->act_up : &b->act_gate},
                      .out = {b->ge, b->ue}, .sel = sel, .k = k, .n_out = ff, .n_mats = 2};
    run_rows(c, &gu);
    for (int j = 0; j < k; j++) {
        add_expert_bias(b->ge + (size_t)j * ff, ll_vec(L, LL_ROLE_FFN_GATE_EXPS_B), sel[j], 1, ff);
        add_expert_bias(b->ue + (size_t)j * ff, ll_vec(L, LL_ROLE_FFN_UP_EXPS_B), sel[j], 1, ff);
    }
    ll_glu(c, b->ge, b->ge, b->ue, k, ff, (size_t)ff, hp->ffn_act);
    for (int j = 0; j < k; j++)
        if (!gl_act_prepare(&b->act_down[j], NULL, b->ge + (size_t)j * ff, 1, ff, td)) return false;
    expert_rows dn = {.w = {down, NULL}, .act = {b->act_down, NULL}, .out = {b->ye, NULL}, .sel = sel, .k = k,
                      .n_out = E, .n_mats = 1, .per_choice_act = true};
    run_rows(c, &dn);
    for (int j = 0; j < k; j++) add_expert_bias(b->ye + (size_t)j * E, ll_vec(L, LL_ROLE_FFN_DOWN_EXPS_B), sel[j], 1, E);
    return true;
}

// The shared expert over all n_tok tokens, scaled per token by sigmoid(v · x), added to out.
static bool shared_expert(ll_context *c, int l, const float *x, int n_tok, float *out, struct ll_moe_buf *b) {
    const ll_layer *L = &c->model->layers[l];
    const int E = c->model->hp.n_embd, ff = c->model->hp.n_ff_shexp;
    c->act_src = NULL;
    if (!ll_matmul(c, &L->w[LL_ROLE_FFN_GATE_SHEXP], ll_lora_slot(l, LL_ROLE_FFN_GATE_SHEXP), x, n_tok, b->ge) ||
        !ll_matmul(c, &L->w[LL_ROLE_FFN_UP_SHEXP], ll_lora_slot(l, LL_ROLE_FFN_UP_SHEXP), x, n_tok, b->ue))
        return false;
    ll_glu(c, b->ge, b->ge, b->ue, n_tok, ff, (size_t)ff, LL_ACT_SILU);
    c->act_src = NULL;
    if (!ll_matmul(c, &L->w[LL_ROLE_FFN_DOWN_SHEXP], ll_lora_slot(l, LL_ROLE_FFN_DOWN_SHEXP), b->ge, n_tok, b->ye))
        return false;
    const float *v = ll_vec(L, LL_ROLE_FFN_GATE_INP_SHEXP);
    for (int t = 0; t < n_tok; t++) {
        const float *xt = x + (size_t)t * E;
        float g = 0;
        for (int i = 0; i < E; i++) g += v[i] * xt[i];
        gl_vec_mad(out + (size_t)t * E, b->ye + (size_t)t * E, 1.0f / (1.0f + expf(-g)), E);
    }
    return true;
}

// ---- several tokens: grouped by expert -----------------------------------------------------

// Copies the input rows of expert e's tokens to its rows of xe.
static void gather(const float *x, int e, int E, int k, struct ll_moe_buf *b) {
    const int *entries = b->order + b->first[e];
    float *xe = b->xe + (size_t)b->first[e] * E;
    for (int i = 0; i < b->count[e]; i++) memcpy(xe + (size_t)i * E, x + (size_t)(entries[i] / k) * E, sizeof(float) * E);
}

typedef struct {
    const struct ll_moe_buf *b;
    float *out;
    int n_tok, E, k;
} sum_task;

// Out row t = sum over token t's choices j, in their order, of w[t][j] * its expert's output
// row; the tokens split between the threads.
static void sum_choices_task(void *arg, int ith, int nth) {
    const sum_task *s = arg;
    const int E = s->E, k = s->k;
    int t0, t1;
    ll_split(s->n_tok, ith, nth, &t0, &t1);
    for (int t = t0; t < t1; t++) {
        float *o = s->out + (size_t)t * E;
        memset(o, 0, sizeof(float) * E);
        for (int j = 0; j < k; j++) gl_vec_mad(o, s->b->ye + (size_t)s->b->pos[t * k + j] * E, s->b->r.w[t * k + j], E);
    }
}

static void sum_choices(ll_context *c, int n_tok, int E, int k, float *out, const struct ll_moe_buf *b) {
    sum_task s = {b, out, n_tok, E, k};
    ll_run(c, sum_choices_task, &s, (size_t)n_tok * k * E);
}

// Sorts the chunk's (token, choice) entries by expert: order, first, count.
static void group_by_expert(const ll_hparams *hp, int n_tok, struct ll_moe_buf *b) {
    const int n_exp = hp->n_expert, k = hp->n_expert_used;
    for (int e = 0, at = 0; e < n_exp; e++) b->first[e] = at, at += b->count[e];
    memset(b->count, 0, (size_t)n_exp * sizeof(int));
    for (int i = 0; i < n_tok * k; i++) {
        const int e = b->r.sel[i];
        b->pos[i] = b->first[e] + b->count[e];
        b->tok[b->first[e] + b->count[e]] = i / k;
        b->order[b->first[e] + b->count[e]++] = i;
    }
    // the experts by their number of entries, most first (insertion sort: a few dozen)
    for (int e = 0; e < n_exp; e++) {
        int j = e;
        for (; j > 0 && b->count[b->busiest[j - 1]] < b->count[e]; j--) b->busiest[j] = b->busiest[j - 1];
        b->busiest[j] = e;
    }
}

// Expert by expert, each one's matmuls split over the threads (few experts in use, an
// observer or adapter that sees every matmul in turn, or exact batches).
static bool experts_in_turn(ll_context *c, int l, const float *x, struct ll_moe_buf *b) {
    const ll_hparams *hp = &c->model->hp;
    for (int e = 0; e < hp->n_expert; e++) {
        if (!b->count[e]) continue;
        gather(x, e, hp->n_embd, hp->n_expert_used, b);
        if (!run_expert(c, l, e, b->count[e], b)) return false;
    }
    return true;
}

typedef struct {
    ll_context *c;
    const ll_layer *L;
    struct ll_moe_buf *b;
    atomic_int next;  // next expert to take (index into busiest)
    atomic_bool oom;
} side_by_side;

// Whole experts dealt out to the threads, the busiest first (so the last ones taken are short):
// each gathers its tokens' converted input rows, runs the three matmuls on its own (no pool
// inside), all in its own rows.
static void side_by_side_task(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    side_by_side *t = arg;
    struct ll_moe_buf *b = t->b;
    const ll_hparams *hp = &t->c->model->hp;
    const int E = hp->n_embd, ff = hp->n_ff_exp;
    const ll_weight *gate = &t->L->w[LL_ROLE_FFN_GATE_EXPS], *up = &t->L->w[LL_ROLE_FFN_UP_EXPS],
                    *down = &t->L->w[LL_ROLE_FFN_DOWN_EXPS];
    const enum gl_type td = gl_get_type_traits(down->type)->vec_dot_type;
    const bool two = b->act_all_up.n_tok > 0; // up reads another activation type than gate
    for (int i; (i = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed)) < hp->n_expert;) {
        const int e = b->busiest[i], n = b->count[e];
        if (!n) break; // (the rest chose no token either)
        float *ge = b->ge + (size_t)b->first[e] * ff, *ue = b->ue + (size_t)b->first[e] * ff,
              *ye = b->ye + (size_t)b->first[e] * E;
        gl_act *ag = &b->exp_in[e], *au = two ? &b->exp_up[e] : ag, *ah = &b->exp_h[e];
        const int *rows = b->tok + b->first[e];
        if (!gl_act_gather(ag, &b->act_all_gate, rows, n) || (two && !gl_act_gather(au, &b->act_all_up, rows, n))) {
            atomic_store(&t->oom, true);
            return;
        }
        const ll_weight g = ll_expert(gate, e), u = ll_expert(up, e), d = ll_expert(down, e);
        expert_matmul(&g, 0, ff, ag, ge);
        expert_matmul(&u, 0, ff, au, ue);
        add_expert_bias(ge, ll_vec(t->L, LL_ROLE_FFN_GATE_EXPS_B), e, n, ff);
        add_expert_bias(ue, ll_vec(t->L, LL_ROLE_FFN_UP_EXPS_B), e, n, ff);
        ll_glu(NULL, ge, ge, ue, n, ff, (size_t)ff, hp->ffn_act);
        if (!gl_act_prepare(ah, NULL, ge, n, ff, td)) {
            atomic_store(&t->oom, true);
            return;
        }
        expert_matmul(&d, 0, E, ah, ye);
        add_expert_bias(ye, ll_vec(t->L, LL_ROLE_FFN_DOWN_EXPS_B), e, n, E);
    }
}

// Every expert in use at once, one per thread at a time (all on this thread with one thread).
// Each token's input is converted once, for all the experts it chose.
static bool experts_side_by_side(ll_context *c, const ll_layer *L, const float *x, int n_tok, struct ll_moe_buf *b) {
    const int E = c->model->hp.n_embd;
    const enum gl_type tg = gl_get_type_traits(L->w[LL_ROLE_FFN_GATE_EXPS].type)->vec_dot_type,
                       tu = gl_get_type_traits(L->w[LL_ROLE_FFN_UP_EXPS].type)->vec_dot_type;
    b->act_all_up.n_tok = 0;
    if (!gl_act_prepare(&b->act_all_gate, c->tp, x, n_tok, E, tg) ||
        (tu != tg && !gl_act_prepare(&b->act_all_up, c->tp, x, n_tok, E, tu)))
        return false;
    side_by_side t = {.c = c, .L = L, .b = b};
    atomic_init(&t.next, 0);
    atomic_init(&t.oom, false);
    if (c->n_threads > 1) gl_threadpool_run(c->tp, side_by_side_task, &t);
    else side_by_side_task(&t, 0, 1);
    return !atomic_load(&t.oom);
}

// Whether an attached adapter changes layer l's experts.
static bool experts_adapted(const ll_context *c, int l) {
    static const ll_role stacks[3] = {LL_ROLE_FFN_GATE_EXPS, LL_ROLE_FFN_UP_EXPS, LL_ROLE_FFN_DOWN_EXPS};
    for (int i = 0; i < c->n_loras; i++)
        for (int r = 0; r < 3; r++)
            if (c->loras[i].adapter->pairs[ll_lora_slot(l, stacks[r])].a.data && c->loras[i].scale != 0) return true;
    return false;
}

bool ll_moe_trace(ll_context *c, int *buf, int n_tokens) {
    struct ll_moe_buf *b = moe_buf(c);
    if (!b) return false;
    if (!b->trace_calls && !(b->trace_calls = malloc(sizeof(int) * (size_t)c->model->hp.n_layer))) return false;
    memset(b->trace_calls, 0, sizeof(int) * (size_t)c->model->hp.n_layer);
    b->trace = buf;
    b->trace_tokens = buf ? n_tokens : 0;
    return true;
}

bool ll_moe(ll_context *c, int l, const float *x, int n_tok, float *out) {
    const ll_model *m = c->model;
    const ll_hparams *hp = &m->hp;
    const ll_layer *L = &m->layers[l];
    const int E = hp->n_embd, n_exp = hp->n_expert, k = hp->n_expert_used;
    struct ll_moe_buf *b = moe_buf(c);
    if (!b || n_tok > b->n_tok_cap) return false;
    ll_dump("ffn_norm", l, x, n_tok, E);

    // Route every token.
    if (!ll_moe_route_chunk(c, l, x, n_tok, &b->r)) return false;
    memset(b->count, 0, (size_t)n_exp * sizeof(int));
    for (int i = 0; i < n_tok * k; i++) b->count[b->r.sel[i]]++;
    ll_dump("ffn_moe_logits", l, b->r.logits, n_tok, n_exp);

    // One token (generation): its k experts' rows in two passes over the threads, summed in the
    // order of its choices. Observers and adapters of the expert stacks see each expert's
    // matmuls in turn instead.
    const bool plain = !c->act_hook && !experts_adapted(c, l);
    if (n_tok == 1 && b->trace && b->trace_calls[l] < b->trace_tokens)
        memcpy(b->trace + ((size_t)b->trace_calls[l]++ * hp->n_layer + l) * k, b->r.sel, sizeof(int) * k);
    if (n_tok == 1 && plain) {
        if (!experts_one_token(c, L, x, b->r.sel, b)) return false;
        memset(out, 0, sizeof(float) * E);
        for (int j = 0; j < k; j++) gl_vec_mad(out, b->ye + (size_t)j * E, b->r.w[j], E);
    } else {
        // Several tokens: each expert in use runs once over all its tokens. With one thread, or
        // many experts in use, the threads take whole experts (one pool wake-up per layer instead
        // of several per expert); with few, or an observer (imatrix), or exact batches (each row
        // as a one-token decode computes it), each expert's matmuls are split. Every token's
        // outputs are then summed in the order of its choices.
        group_by_expert(hp, n_tok, b);
        int n_used = 0;
        for (int e = 0; e < n_exp; e++) n_used += b->count[e] > 0;
        const bool side = plain && !c->exact_batches && (c->n_threads == 1 || n_used >= 4 * c->n_threads);
        if (!(side ? experts_side_by_side(c, L, x, n_tok, b) : experts_in_turn(c, l, x, b))) return false;
        sum_choices(c, n_tok, E, k, out, b);
    }
    ll_dump("ffn_moe_out", l, out, n_tok, E);
    if (L->w[LL_ROLE_FFN_GATE_SHEXP].data && !shared_expert(c, l, x, n_tok, out, b)) return false;
    c->act_src = NULL;
    ll_dump("ffn_out", l, out, n_tok, E);
    return true;
}
