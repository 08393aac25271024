// Merging LoRA adapters into a copy of the base model's GGUF (llamalite export-lora):
//   W' = W + sum_i scale_i * (alpha_i / rank_i) * B_i · A_i
// row by row: each merged tensor is decoded to floats a block of rows at a time, the low-rank
// terms are added, and the block is quantized again (to the base type, or to the type asked
// for); an expert stack expert by expert, each with its own A and B. Metadata and untouched
// tensors are copied as they are.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "threadpool.h"
#include "adapters/lora.h"
#include "util.h"

enum { MERGE_ROWS = 16 }; // rows decoded, updated and re-quantized together

// One adapter's contribution to a tensor: row r of the delta is
//   s * sum_k coef[r][k] * basis[k]
// (normal weights: coef = B, basis = A; token_embd: coef = A, basis = Bᵀ).
typedef struct {
    float *coef;         // [n_out][rank]
    const float *basis;  // [rank][n_in]
    float *basis_owned;
    int rank;
    float s;
} merge_term;

typedef struct {
    const ll_weight *w;
    enum gl_type out_type;
    size_t out_row;
    char *dst;
    const merge_term *terms;
    int n_terms;
    float *scratch;      // [n_threads][MERGE_ROWS][n_in]
    int64_t n_blocks;
} merge_task;

static void merge_run(void *arg, int ith, int nth) {
    const merge_task *t = arg;
    const ll_weight *w = t->w;
    const gl_type_traits *tr = gl_get_type_traits(w->type);
    const size_t in_row = gl_row_size(w->type, w->n_in);
    float *buf = t->scratch + (size_t)ith * MERGE_ROWS * (size_t)w->n_in;
    for (int64_t blk = ith; blk < t->n_blocks; blk += nth) {
        const int64_t r0 = blk * MERGE_ROWS, r1 = r0 + MERGE_ROWS < w->n_out ? r0 + MERGE_ROWS : w->n_out;
        for (int64_t r = r0; r < r1; r++) {
            float *row = buf + (size_t)(r - r0) * w->n_in;
            tr->to_float((const char *)w->data + (size_t)r * in_row, row, w->n_in);
            for (int i = 0; i < t->n_terms; i++) {
                const merge_term *m = &t->terms[i];
                for (int k = 0; k < m->rank; k++)
                    gl_vec_mad(row, m->basis + (size_t)k * w->n_in, m->s * m->coef[(size_t)r * m->rank + k],
                               (int)w->n_in);
            }
        }
        gl_quantize_rows(t->out_type, buf, t->dst + (size_t)r0 * t->out_row, r1 - r0, w->n_in, NULL);
    }
}

// A LoRA part decoded to floats (n_out rows of n_in).
static float *decode(const ll_weight *p) {
    float *f = malloc((size_t)p->n_in * (size_t)p->n_out * sizeof(float));
    if (!f) return NULL;
    const gl_type_traits *tr = gl_get_type_traits(p->type);
    const size_t row = gl_row_size(p->type, p->n_in);
    for (int64_t r = 0; r < p->n_out; r++)
        tr->to_float((const char *)p->data + (size_t)r * row, f + (size_t)r * p->n_in, p->n_in);
    return f;
}

static void free_terms(merge_term *terms, int n) {
    for (int i = 0; i < n; i++) {
        free(terms[i].coef);
        free(terms[i].basis_owned);
    }
}

// Matrix e of a stack of n_out-row matrices (an expert of an expert stack; e = 0: the weight).
static ll_weight matrix_of(const ll_weight *w, int64_t e) {
    ll_weight v = *w;
    v.data = (const char *)w->data + (size_t)e * gl_row_size(w->type, w->n_in) * (size_t)w->n_out;
    return v;
}

// Merges the adapters into matrix e of the slot's weight, writing its rows to t->dst.
static bool merge_matrix(const ll_model *m, int slot, int64_t e, ll_adapter *const *ads, const float *scales,
                         int n, gl_threadpool *tp, merge_task *t) {
    const bool embd = slot == ll_lora_slot_embd(m);
    merge_term *terms = calloc((size_t)n, sizeof *terms);
    bool ok = terms != NULL;
    t->terms = terms;
    t->n_terms = 0;
    for (int i = 0; ok && i < n; i++) {
        const ll_lora_pair *p = &ads[i]->pairs[slot];
        if (!p->a.data || scales[i] == 0) continue;
        merge_term *mt = &terms[t->n_terms++];
        mt->rank = p->rank;
        mt->s = scales[i] * p->scale;
        const ll_weight a = matrix_of(&p->a, e), b = matrix_of(&p->b, e);
        if (embd) {
            mt->coef = decode(&a);  // [n_vocab][rank]
            mt->basis = p->bt;      // [rank][n_embd]
        } else {
            mt->coef = decode(&b);  // [n_out][rank]
            mt->basis = mt->basis_owned = decode(&a); // [rank][n_in]
        }
        ok = mt->coef && mt->basis;
    }
    if (ok) {
        t->n_blocks = (t->w->n_out + MERGE_ROWS - 1) / MERGE_ROWS;
        gl_threadpool_run(tp, merge_run, t);
    }
    if (terms) free_terms(terms, t->n_terms);
    free(terms);
    return ok;
}

// Merges the adapters of `slot` into a new buffer (*out, *out_size): each of its n_mat matrices
// (the experts of an expert stack, each with its own A and B) in turn. Returns false with err set.
static bool merge_tensor(const ll_model *m, int slot, const char *name, int64_t n_mat, ll_adapter *const *ads,
                         const float *scales, int n, int type, gl_threadpool *tp, void **out,
                         size_t *out_size, enum gl_type *out_type, char *err, size_t errlen) {
    const ll_weight *w = ll_lora_base(m, slot);
    const enum gl_type ot = type >= 0 ? (enum gl_type)type : w->type;
    const gl_type_traits *tr = gl_get_type_traits(ot);
    const size_t out_row = gl_row_size(ot, w->n_in);
    if (!tr || !tr->from_float_ref || !out_row) {
        ll_set_err(err, errlen, "cannot store the merged '%s' (rows of %lld) as %s%s", name,
                   (long long)w->n_in, gl_type_name(ot), type >= 0 ? "" : " (choose another type)");
        return false;
    }
    const size_t mat_size = out_row * (size_t)w->n_out;
    const int nth = gl_threadpool_n_threads(tp);
    float *scratch = malloc((size_t)nth * MERGE_ROWS * (size_t)w->n_in * sizeof(float));
    char *dst = malloc(mat_size * (size_t)n_mat);
    bool ok = scratch && dst;
    for (int64_t e = 0; ok && e < n_mat; e++) {
        const ll_weight we = matrix_of(w, e);
        merge_task t = {.w = &we, .out_type = ot, .out_row = out_row, .dst = dst + (size_t)e * mat_size,
                        .scratch = scratch};
        ok = merge_matrix(m, slot, e, ads, scales, n, tp, &t);
    }
    free(scratch);
    if (!ok) {
        ll_set_err(err, errlen, "out of memory merging '%s'", name);
        free(dst);
        return false;
    }
    *out = dst;
    *out_size = mat_size * (size_t)n_mat;
    *out_type = ot;
    return true;
}

int ll_lora_export(const ll_model *m, ll_adapter *const *ads, const float *scales, int n,
                   const char *type, const char *out_path, int n_threads, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!m || m->vocab_only || !m->layers) {
        ll_set_err(err, errlen, "export-lora needs a model with weights");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!ads[i] || ads[i]->model != m) {
            ll_set_err(err, errlen, "adapter %d was loaded for another model", i + 1);
            return -1;
        }
        if (!isfinite(scales[i])) {
            ll_set_err(err, errlen, "adapter %d: the scale is not a finite number", i + 1);
            return -1;
        }
    }
    int want = -1;
    if (type) {
        enum gl_type t;
        const gl_type_traits *tr = gl_type_from_name(type, &t) ? gl_get_type_traits(t) : NULL;
        if (!tr || !tr->from_float_ref || !tr->vec_dot) {
            ll_set_err(err, errlen, "unknown or unsupported tensor type '%.32s' for merged weights", type);
            return -1;
        }
        want = (int)t;
    }

    const gguf_file *f = m->file;
    const int64_t nt = gguf_n_tensors(f);
    void **owned = calloc((size_t)nt, sizeof *owned);
    gguf_writer *w = gguf_writer_new();
    gl_threadpool *tp = gl_threadpool_create(n_threads > 0 ? n_threads : gl_physical_cores());
    int merged = -1;
    if (!owned || !w || !tp) {
        ll_set_err(err, errlen, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    int count = 0;
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        const int slot = ll_lora_slot_of(m, t->name);
        bool adapted = false;
        for (int k = 0; slot >= 0 && k < n; k++) adapted |= ads[k]->pairs[slot].a.data && scales[k] != 0;
        if (!adapted) {
            gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size);
            continue;
        }
        const int64_t n_mat = t->n_dims > 2 ? (int64_t)t->ne[2] : 1; // experts, each with its own A and B
        size_t size;
        enum gl_type ot;
        if (!merge_tensor(m, slot, t->name, n_mat, ads, scales, n, want, tp, &owned[i], &size, &ot, err, errlen))
            goto done;
        gguf_writer_add_tensor(w, t->name, ot, t->n_dims, t->ne, owned[i], size);
        count++;
    }
    if (!gguf_writer_write(w, out_path, err, errlen)) goto done;
    merged = count;
done:
    if (tp) gl_threadpool_free(tp);
    gguf_writer_free(w);
    for (int64_t i = 0; owned && i < nt; i++) free(owned[i]);
    free(owned);
    return merged;
}
