// The size-budget planner (`quantize --target-bpw 4.5` / `--target-size 700M`): a type per
// tensor so that the weights fit the budget with the least expected damage.
//
// Damage is estimated per tensor and candidate type from the importance-weighted squared error
// of its weights, sum over rows and columns of imp[col] * (w - dequant(quant(w)))^2: with an
// imatrix this is the expected squared error of the matmul's output (E |dW x|^2 for inputs of
// those mean squares). It is measured by quantizing an evenly spaced sample of rows with every
// candidate, scaled to the whole tensor. Without an imatrix the importances are estimated from
// the model: after a norm, inputs have unit mean square times the norm's weights; attn_output
// reads what attn_v wrote, ffn_down what silu(gate) * up wrote.
//
// Matmul outputs are not equally harmful, so every error is carried to where it lands: the
// residual stream. attn_output and ffn_down write into it directly. An error in attn_v, ffn_up
// or ffn_gate is an error of the same relative size in what attn_output / ffn_down then add, so
// it counts as its relative error times that tensor's output power. attn_q / attn_k only move
// the attention scores, which matter in proportion to the scores' size (their mean square, up
// to QK_SCORE_CAP). An error that enters the residual at block b is then a relative error of
// what every later block reads, so their outputs err by about as much: block b's damage grows
// by (power added after b) / (residual power up to b), damped by DEPTH_DAMP. The head (output,
// or a tied token_embd) turns the final residual into logits: its relative error counts against
// the residual's power, estimated as the embedding's plus every block's output power; its
// columns weigh as output_norm's squares (the normalized input). An input-only token_embd adds
// its row error to the residual of the token it encodes.
//
// Each tensor's candidates are reduced to their lower convex hull in (bytes, damage); then,
// starting from every tensor's cheapest type, the upgrade that saves the most damage per extra
// byte and still fits is taken until none fits.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantize/quantize.h"
#include "util.h"

enum { SAMPLE_ROWS = 256, MAX_CAND = 16 };

// Score mean squares above this no longer make q/k errors worse (the softmax saturates).
static const double QK_SCORE_CAP = 4.0;
// Share of a residual error's relative size that later blocks pass on (norms and
// nonlinearities absorb the rest); 0.5 did best on a trained and a random model.
static const double DEPTH_DAMP = 0.5;

// Candidates for rows that split into 256-element blocks, and for those that only split into 32.
// The 1- and 2-bit lattice types only where the tensor has importances (or, like IQ3_XXS and
// IQ3_S, do without).
static const enum gl_type CAND_K[] = {GL_TYPE_IQ1_M, GL_TYPE_IQ2_XXS, GL_TYPE_IQ2_S, GL_TYPE_Q2_K,
                                      GL_TYPE_IQ3_XXS, GL_TYPE_IQ3_S, GL_TYPE_Q3_K, GL_TYPE_IQ4_XS,
                                      GL_TYPE_Q4_K, GL_TYPE_Q5_K, GL_TYPE_Q6_K, GL_TYPE_Q8_0, GL_TYPE_F16};
static const enum gl_type CAND_32[] = {GL_TYPE_IQ4_NL, GL_TYPE_Q4_1, GL_TYPE_Q5_0, GL_TYPE_Q5_1,
                                       GL_TYPE_Q8_0, GL_TYPE_F16};

typedef struct {
    int n;
    enum gl_type type[MAX_CAND];
    double bytes[MAX_CAND], err[MAX_CAND];
    double sig, plain;              // importance-weighted and plain sum of squared weights
    int hull[MAX_CAND], n_hull, at; // hull indices by increasing size; current position
} cands;

static uint64_t rows_of(const gguf_tensor *t) {
    uint64_t r = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) r *= (uint64_t)t->ne[d];
    return r;
}

// What a tensor is for the damage estimate.
enum role { R_OTHER, R_Q, R_K, R_V, R_O, R_GATE, R_UP, R_DOWN, R_HEAD, R_EMBD };

static enum role role_of(const char *name, bool has_output) {
    if (!strcmp(name, "output.weight")) return R_HEAD;
    if (!strcmp(name, "token_embd.weight")) return has_output ? R_EMBD : R_HEAD;
    static const struct { const char *part; enum role r; } PARTS[] = {
        {".attn_q.", R_Q}, {".attn_k.", R_K}, {".attn_v.", R_V}, {".attn_output.", R_O},
        {".ffn_gate", R_GATE}, {".ffn_up", R_UP}, {".ffn_down", R_DOWN},
    };
    for (size_t i = 0; i < sizeof PARTS / sizeof PARTS[0]; i++)
        if (strstr(name, PARTS[i].part)) return PARTS[i].r;
    return R_OTHER;
}

static int block_of(const char *name) {
    int b;
    return sscanf(name, "blk.%d.", &b) == 1 && b >= 0 && b < 100000 ? b : -1;
}

typedef struct {
    ll_plan_tensor *ts;
    cands *c;
    int *jobs; int n_jobs;      // job = tensor index * MAX_CAND + candidate
    const float **imp;          // per tensor: column weights when it has no imatrix, or NULL
    float *scratch;             // [n_threads][3][max_ne0]
    int64_t max_ne0;
} measure_task;

static void measure_run(void *arg, int ith, int nth) {
    measure_task *m = arg;
    float *src = m->scratch + (size_t)ith * 3 * (size_t)m->max_ne0;
    float *deq = src + m->max_ne0;
    void *q = deq + m->max_ne0; // any type's row fits in ne0 floats
    for (int j = ith; j < m->n_jobs; j += nth) {
        const int ti = m->jobs[j] / MAX_CAND, ci = m->jobs[j] % MAX_CAND;
        const ll_plan_tensor *p = &m->ts[ti];
        const gguf_tensor *t = p->t;
        const enum gl_type ty = m->c[ti].type[ci];
        const int64_t ne0 = t->ne[0];
        const uint64_t nrows = rows_of(t), ns = nrows < SAMPLE_ROWS ? nrows : SAMPLE_ROWS;
        const size_t in_row = gl_row_size(t->type, ne0);
        const uint64_t per_slice = t->n_dims >= 2 ? (uint64_t)t->ne[1] : 1;
        const gl_type_traits *tin = gl_get_type_traits(t->type), *tq = gl_get_type_traits(ty);
        double err = 0, sig = 0, plain = 0;
        for (uint64_t k = 0; k < ns; k++) {
            const uint64_t r = k * nrows / ns;
            tin->to_float((const char *)t->data + r * in_row, src, ne0);
            const float *imx = p->imatrix ? p->imatrix + (size_t)(r / per_slice) * ne0 : NULL;
            gl_quantize_rows(ty, src, q, 1, ne0, imx);
            tq->to_float(q, deq, ne0);
            const float *w = imx ? imx : m->imp[ti];
            for (int64_t i = 0; i < ne0; i++) {
                const double d = (double)src[i] - deq[i], s2 = (double)src[i] * src[i], wi = w ? w[i] : 1.0;
                err += wi * d * d;
                sig += wi * s2;
                plain += s2;
            }
        }
        const double scale = (double)nrows / (double)ns;
        m->c[ti].err[ci] = err * scale;
        if (ci == 0) { // the same for every candidate: stored once
            m->c[ti].sig = sig * scale;
            m->c[ti].plain = plain * scale;
        }
    }
}

// E[silu(g)^2] for g ~ N(0, var): the mean square of the gate's output.
static double silu_sq_mean(double var) {
    const double sd = sqrt(var > 0 ? var : 0);
    double sum = 0, wsum = 0;
    for (int k = -48; k <= 48; k++) { // Gauss weights on a grid to +-6 sd
        const double z = k / 8.0, g = z * sd, w = exp(-0.5 * z * z), s = g / (1 + exp(-g));
        sum += w * s * s;
        wsum += w;
    }
    return sum / wsum;
}

// attn_output and ffn_down without an imatrix were measured as if their inputs had unit mean
// square. Their inputs are what attn_v and the gated ffn_up produce, whose mean squares are
// known now (measured after the norms): rescale to them (an upper bound for attn_output, whose
// input is v averaged over positions).
static void scale_unread(const ll_plan_tensor *ts, cands *c, int n, bool has_output) {
    for (int i = 0; i < n; i++) {
        if (ts[i].fixed || ts[i].imatrix || !c[i].n) continue;
        const enum role r = role_of(ts[i].t->name, has_output);
        const int b = block_of(ts[i].t->name);
        if (b < 0 || (r != R_O && r != R_DOWN)) continue;
        double pv = 0, pg = 0, pu = 0;
        for (int k = 0; k < n; k++) {
            if (ts[k].fixed || !c[k].n || block_of(ts[k].t->name) != b) continue;
            const double per_row = c[k].sig / (double)rows_of(ts[k].t);
            switch (role_of(ts[k].t->name, has_output)) {
            case R_V: pv = per_row; break;
            case R_GATE: pg = per_row; break;
            case R_UP: pu = per_row; break;
            default: break;
            }
        }
        const double s = r == R_O ? pv : silu_sq_mean(pg) * pu;
        if (!(s > 0)) continue;
        for (int k = 0; k < c[i].n; k++) c[i].err[k] *= s;
        c[i].sig *= s;
    }
}

// Per block: output powers of attn_output and ffn_down, mean squares of q and k outputs.
typedef struct {
    double o, down, q, k;
} block_pow;

// Multiplies every candidate's error of every tensor by how much of it reaches the residual
// stream (see the top of the file). Tensors whose partner is missing keep their own error.
static bool weigh_errors(const ll_plan_tensor *ts, cands *c, int n, bool has_output, int head) {
    int n_blk = 0;
    for (int i = 0; i < n; i++) {
        const int b = block_of(ts[i].t->name);
        if (b >= n_blk) n_blk = b + 1;
    }
    block_pow *bp = calloc((size_t)(n_blk ? n_blk : 1), sizeof *bp);
    if (!bp) return false;
    double embd_pow = 0; // mean squared norm of an embedding row: the residual at the start
    for (int i = 0; i < n; i++) {
        if (ts[i].fixed || !c[i].n) continue;
        const int b = block_of(ts[i].t->name);
        const double per_row = c[i].sig / (double)rows_of(ts[i].t);
        switch (role_of(ts[i].t->name, has_output)) {
        case R_O: if (b >= 0) bp[b].o += c[i].sig; break;
        case R_DOWN: if (b >= 0) bp[b].down += c[i].sig; break;
        case R_Q: if (b >= 0) bp[b].q = per_row; break;
        case R_K: if (b >= 0) bp[b].k = per_row; break;
        default: break;
        }
        if (!strcmp(ts[i].t->name, "token_embd.weight")) embd_pow = c[i].plain / (double)rows_of(ts[i].t);
    }
    // Residual power after each block, and at the end; from it each block's depth gain.
    double resid = embd_pow;
    for (int k = 0; k < n_blk; k++) resid += bp[k].o + bp[k].down;
    double *gain = calloc((size_t)(n_blk ? n_blk : 1), sizeof *gain);
    if (!gain) {
        free(bp);
        return false;
    }
    double upto = embd_pow;
    for (int k = 0; k < n_blk; k++) {
        upto += bp[k].o + bp[k].down;
        gain[k] = upto > 0 ? 1 + DEPTH_DAMP * (resid - upto) / upto : 1;
    }
    const double embd_gain = embd_pow > 0 ? 1 + DEPTH_DAMP * (resid - embd_pow) / embd_pow : 1;
    for (int i = 0; i < n; i++) {
        if (ts[i].fixed || !c[i].n || !(c[i].sig > 0)) continue;
        const int b = block_of(ts[i].t->name);
        const block_pow *p = b >= 0 ? &bp[b] : NULL;
        double f = 1;
        switch (role_of(ts[i].t->name, has_output)) {
        case R_V: if (p && p->o > 0) f = p->o / c[i].sig; break;
        case R_GATE: case R_UP: if (p && p->down > 0) f = p->down / c[i].sig; break;
        case R_Q: case R_K:
            if (p && p->o > 0 && p->q > 0 && p->k > 0) f = fmin(QK_SCORE_CAP, p->q * p->k) * p->o / c[i].sig;
            break;
        case R_HEAD: if (i == head && resid > 0) f = resid / c[i].sig; break;
        case R_EMBD: f = embd_gain / (double)rows_of(ts[i].t); break; // one row per token
        default: break;
        }
        if (b >= 0) f *= gain[b];
        for (int k = 0; k < c[i].n; k++) c[i].err[k] *= f;
    }
    free(gain);
    free(bp);
    return true;
}

// Lower convex hull of the candidates in (bytes, error), cheapest first.
static void make_hull(cands *c) {
    int idx[MAX_CAND];
    for (int i = 0; i < c->n; i++) idx[i] = i;
    for (int i = 1; i < c->n; i++) // by size (the lists are nearly sorted)
        for (int k = i; k > 0 && c->bytes[idx[k]] < c->bytes[idx[k - 1]]; k--) {
            int tmp = idx[k]; idx[k] = idx[k - 1]; idx[k - 1] = tmp;
        }
    int h = 0;
    for (int k = 0; k < c->n; k++) {
        const int i = idx[k];
        if (h && c->bytes[i] <= c->bytes[c->hull[h - 1]]) { // same size: keep the better one
            if (c->err[i] < c->err[c->hull[h - 1]]) c->hull[h - 1] = i;
            continue;
        }
        if (h && c->err[i] >= c->err[c->hull[h - 1]]) continue; // more bytes, no better
        // drop points above the segment from their predecessor to i
        while (h >= 2) {
            const int a = c->hull[h - 2], b = c->hull[h - 1];
            const double s_ab = (c->err[a] - c->err[b]) / (c->bytes[b] - c->bytes[a]);
            const double s_bi = (c->err[b] - c->err[i]) / (c->bytes[i] - c->bytes[b]);
            if (s_bi >= s_ab) h--; // b saves less per byte than what follows it
            else break;
        }
        c->hull[h++] = i;
    }
    c->n_hull = h;
    c->at = 0;
}

bool ll_plan_budget(ll_plan_tensor *ts, int n, uint64_t budget, gl_threadpool *tp, char *err, size_t errlen) {
    cands *c = calloc((size_t)(n ? n : 1), sizeof *c);
    int *jobs = malloc((size_t)(n ? n : 1) * MAX_CAND * sizeof *jobs);
    measure_task m = {.ts = ts, .c = c, .jobs = jobs};
    float **norms = calloc((size_t)(n ? n : 1), sizeof *norms); // squared norm weights, by tensor
    m.imp = calloc((size_t)(n ? n : 1), sizeof *m.imp);
    bool ok = false;
    if (!c || !jobs || !norms || !m.imp) goto oom;

    bool has_output = false;
    int head = -1;
    for (int i = 0; i < n; i++) {
        if (!strcmp(ts[i].t->name, "output.weight")) has_output = true;
    }
    for (int i = 0; i < n; i++)
        if (!ts[i].fixed && role_of(ts[i].t->name, has_output) == R_HEAD) head = i;
    uint64_t fixed = 0;
    for (int i = 0; i < n; i++) {
        const gguf_tensor *t = ts[i].t;
        if (ts[i].fixed) {
            fixed += (uint64_t)gl_row_size(ts[i].type, t->ne[0]) * rows_of(t);
            continue;
        }
        if (t->ne[0] > m.max_ne0) m.max_ne0 = t->ne[0];
        const enum gl_type *list = t->ne[0] % QK_K == 0 ? CAND_K : CAND_32;
        const int nl = t->ne[0] % QK_K == 0 ? (int)(sizeof CAND_K / sizeof CAND_K[0]) : (int)(sizeof CAND_32 / sizeof CAND_32[0]);
        for (int k = 0; k < nl; k++) {
            if (gl_row_size(list[k], t->ne[0]) == 0) continue;
            if (!ts[i].imatrix && ll_type_needs_imatrix(list[k], t->name)) continue;
            c[i].type[c[i].n] = list[k];
            c[i].bytes[c[i].n] = (double)gl_row_size(list[k], t->ne[0]) * (double)rows_of(t);
            jobs[m.n_jobs++] = i * MAX_CAND + c[i].n;
            c[i].n++;
        }
        if (!c[i].n) { // rows of an odd length: only floats fit
            c[i].type[0] = GL_TYPE_F32;
            c[i].bytes[0] = 4.0 * (double)t->ne[0] * (double)rows_of(t);
            c[i].n = 1;
        }
    }
    // Without an imatrix, what a matmul reads after a norm has about unit mean square times the
    // norm's weights: the head after output_norm, q/k/v after attn_norm, gate/up after ffn_norm.
    for (int i = 0; i < n; i++) {
        if (ts[i].fixed || ts[i].t->n_dims < 2 || ts[i].imatrix) continue;
        char want[160];
        const int b = block_of(ts[i].t->name);
        const enum role r = role_of(ts[i].t->name, has_output);
        if (i == head) snprintf(want, sizeof want, "output_norm.weight");
        else if (b >= 0 && (r == R_Q || r == R_K || r == R_V)) snprintf(want, sizeof want, "blk.%d.attn_norm.weight", b);
        else if (b >= 0 && (r == R_GATE || r == R_UP)) snprintf(want, sizeof want, "blk.%d.ffn_norm.weight", b);
        else continue;
        for (int k = 0; k < n; k++) {
            const gguf_tensor *nt = ts[k].t;
            if (strcmp(nt->name, want) || nt->n_dims != 1 || nt->ne[0] != ts[i].t->ne[0] ||
                !gl_get_type_traits(nt->type)->to_float)
                continue;
            if (!norms[k]) {
                norms[k] = malloc((size_t)nt->ne[0] * sizeof **norms);
                if (!norms[k]) goto oom;
                gl_get_type_traits(nt->type)->to_float(nt->data, norms[k], nt->ne[0]);
                for (int64_t j = 0; j < nt->ne[0]; j++) norms[k][j] *= norms[k][j];
            }
            m.imp[i] = norms[k];
            break;
        }
    }
    const int nth = gl_threadpool_n_threads(tp);
    m.scratch = malloc((size_t)nth * 3 * (size_t)(m.max_ne0 ? m.max_ne0 : 1) * sizeof(float));
    if (!m.scratch) goto oom;
    gl_threadpool_run(tp, measure_run, &m);
    scale_unread(ts, c, n, has_output);
    if (!weigh_errors(ts, c, n, has_output, head)) goto oom;

    double used = (double)fixed;
    for (int i = 0; i < n; i++) {
        if (ts[i].fixed) continue;
        make_hull(&c[i]);
        used += c[i].bytes[c[i].hull[0]];
    }
    if (used > (double)budget) {
        double n_el = 0; // for the message in bits per weight too
        for (int i = 0; i < n; i++) {
            double e = 1;
            for (uint32_t d = 0; d < ts[i].t->n_dims; d++) e *= (double)ts[i].t->ne[d];
            n_el += e;
        }
        n_el = n_el > 0 ? n_el : 1;
        ll_set_err(err, errlen, "the budget (%llu bytes, %.2f bits per weight) is below the smallest mixture "
                   "(%.0f bytes, %.2f bits per weight)", (unsigned long long)budget, 8.0 * (double)budget / n_el,
                   used, 8.0 * used / n_el);
        goto done;
    }
    for (;;) {
        int best = -1;
        double best_ratio = -1;
        for (int i = 0; i < n; i++) {
            const cands *ci = &c[i];
            if (ts[i].fixed || ci->at + 1 >= ci->n_hull) continue;
            const int a = ci->hull[ci->at], b = ci->hull[ci->at + 1];
            const double extra = ci->bytes[b] - ci->bytes[a];
            if (used + extra > (double)budget) continue;
            const double ratio = (ci->err[a] - ci->err[b]) / extra;
            if (ratio > best_ratio) best_ratio = ratio, best = i;
        }
        if (best < 0) break;
        cands *cb = &c[best];
        used += cb->bytes[cb->hull[cb->at + 1]] - cb->bytes[cb->hull[cb->at]];
        cb->at++;
    }
    for (int i = 0; i < n; i++)
        if (!ts[i].fixed) ts[i].type = c[i].type[c[i].hull[c[i].at]];
    ok = true;
    goto done;
oom:
    ll_set_err(err, errlen, "out of memory");
done:
    if (norms)
        for (int i = 0; i < n; i++) free(norms[i]);
    free(norms);
    free(m.imp);
    free(m.scratch);
    free(jobs);
    free(c);
    return ok;
}
