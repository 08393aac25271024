// The size-budget planner (`quantize --target-bpw 4.5` / `--target-size 700M`): a type per
// tensor so that the file fits the budget with the least expected damage.
//
// Damage is estimated per tensor and candidate type as the importance-weighted squared error of
// its weights, sum over rows and columns of imp[col] * (w - dequant(quant(w)))^2: with an
// imatrix this is the expected squared error of the matmul's output (E |dW x|^2 for inputs of
// those mean squares). It is measured by quantizing an evenly spaced sample of rows with every
// candidate, scaled to the whole tensor. Each tensor's candidates are reduced to their lower
// convex hull in (bytes, error); then, starting from every tensor's cheapest type, the upgrade
// that saves the most error per extra byte and still fits is taken until none fits.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantize.h"
#include "util.h"

enum { SAMPLE_ROWS = 256, MAX_CAND = 8 };

// Candidates for rows that split into 256-element blocks, and for those that only split into 32.
static const enum gl_type CAND_K[] = {GL_TYPE_Q2_K, GL_TYPE_Q3_K, GL_TYPE_IQ4_XS, GL_TYPE_Q4_K,
                                      GL_TYPE_Q5_K, GL_TYPE_Q6_K, GL_TYPE_Q8_0, GL_TYPE_F16};
static const enum gl_type CAND_32[] = {GL_TYPE_IQ4_NL, GL_TYPE_Q4_1, GL_TYPE_Q5_0, GL_TYPE_Q5_1,
                                       GL_TYPE_Q8_0, GL_TYPE_F16};

typedef struct {
    int n;
    enum gl_type type[MAX_CAND];
    double bytes[MAX_CAND], err[MAX_CAND];
    int hull[MAX_CAND], n_hull, at; // hull indices by increasing size; current position
} cands;

static uint64_t rows_of(const gguf_tensor *t) {
    uint64_t r = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) r *= (uint64_t)t->ne[d];
    return r;
}

typedef struct {
    ll_plan_tensor *ts;
    cands *c;
    int *jobs; int n_jobs;      // job = tensor index * MAX_CAND + candidate
    double default_imp;
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
        double err = 0;
        for (uint64_t k = 0; k < ns; k++) {
            const uint64_t r = k * nrows / ns;
            tin->to_float((const char *)t->data + r * in_row, src, ne0);
            const float *imx = p->imatrix ? p->imatrix + (size_t)(r / per_slice) * ne0 : NULL;
            gl_quantize_rows(ty, src, q, 1, ne0, imx);
            tq->to_float(q, deq, ne0);
            for (int64_t i = 0; i < ne0; i++) {
                const double d = (double)src[i] - deq[i];
                err += (imx ? imx[i] : m->default_imp) * d * d;
            }
        }
        m->c[ti].err[ci] = err * (double)nrows / (double)ns;
    }
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
    bool ok = false;
    if (!c || !jobs) goto oom;

    // Tensors without importances (e.g. token_embd) weigh their columns by a typical importance.
    double sum_imp = 0;
    int n_imp = 0;
    uint64_t fixed = 0;
    for (int i = 0; i < n; i++) {
        const gguf_tensor *t = ts[i].t;
        if (ts[i].fixed) {
            fixed += (uint64_t)gl_row_size(ts[i].type, t->ne[0]) * rows_of(t);
            continue;
        }
        if (t->ne[0] > m.max_ne0) m.max_ne0 = t->ne[0];
        if (ts[i].imatrix) {
            double s = 0;
            for (int64_t j = 0; j < t->ne[0]; j++) s += ts[i].imatrix[j];
            sum_imp += s / (double)t->ne[0];
            n_imp++;
        }
        const enum gl_type *list = t->ne[0] % QK_K == 0 ? CAND_K : CAND_32;
        const int nl = t->ne[0] % QK_K == 0 ? (int)(sizeof CAND_K / sizeof CAND_K[0]) : (int)(sizeof CAND_32 / sizeof CAND_32[0]);
        for (int k = 0; k < nl; k++) {
            if (gl_row_size(list[k], t->ne[0]) == 0) continue;
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
    m.default_imp = n_imp ? sum_imp / n_imp : 1.0;
    const int nth = gl_threadpool_n_threads(tp);
    m.scratch = malloc((size_t)nth * 3 * (size_t)(m.max_ne0 ? m.max_ne0 : 1) * sizeof(float));
    if (!m.scratch) goto oom;
    gl_threadpool_run(tp, measure_run, &m);

    double used = (double)fixed;
    for (int i = 0; i < n; i++) {
        if (ts[i].fixed) continue;
        make_hull(&c[i]);
        used += c[i].bytes[c[i].hull[0]];
    }
    if (used > (double)budget) {
        ll_set_err(err, errlen, "the budget of %llu bytes is below the smallest mixture (%.0f bytes)",
                   (unsigned long long)budget, used);
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
    free(m.scratch);
    free(jobs);
    free(c);
    return ok;
}
