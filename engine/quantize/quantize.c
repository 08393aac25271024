// ll_model_quantize: converts a GGUF model's weight matrices to other types.
//   1. decide each tensor's type (the mixture rules of quantize_mix.c, or the size-budget
//      planner of quantize_target.c), refusing what cannot be done before anything is written;
//   2. convert the tensors one after another, rows shared among the threads (the quantizers
//      are pure functions of a row, so the result does not depend on the thread count);
//   3. write the new file: the input's metadata with general.file_type and
//      general.quantization_version set, tensors in llama.cpp's order.
// The converted tensors are held in memory until the file is written (the input stays mapped).
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "threadpool.h"
#include "quantize/quantize.h"
#include "util.h"

enum { QUANT_VERSION = 2 }; // ggml's GGML_QNT_VERSION: block layouts of the current formats

ll_quantize_params ll_quantize_default_params(void) {
    ll_quantize_params p;
    memset(&p, 0, sizeof p);
    return p;
}

void ll_quantize_stats_free(ll_quantize_stats *s) {
    if (!s) return;
    for (int i = 0; i < s->n_tensors; i++) free((char *)s->tensors[i].name);
    free(s->tensors);
    memset(s, 0, sizeof *s);
}

// A type a tensor can be written in: one with a quantizer.
static bool writable(enum gl_type t) {
    const gl_type_traits *tr = gl_get_type_traits(t);
    return tr && tr->from_float_ref && t != GL_TYPE_Q8_1 && t != GL_TYPE_Q8_K;
}

static int type_arg(const char *name, const char *what, char *err, size_t errlen) {
    if (!name) return -1;
    enum gl_type t;
    if (!gl_type_from_name(name, &t) || !writable(t)) {
        ll_set_err(err, errlen, "unknown or unsupported %s type '%s'", what, name);
        return -2;
    }
    return (int)t;
}

// ---- conversion -----------------------------------------------------------------------------

enum { CHUNK_ELEMENTS = 16384 }; // rows handed to a thread at a time, about this many elements

typedef struct {
    const gguf_tensor *t;
    enum gl_type out;
    char *dst;
    size_t in_row, out_row;
    int64_t n_per_row, n_rows, rows_per_slice;
    const float *imatrix;   // n_slices x n_per_row, or NULL
    int64_t chunk, n_chunks;
    float *scratch;         // [n_threads][chunk][n_per_row] decoded rows
} convert_task;

static void convert_run(void *arg, int ith, int nth) {
    const convert_task *c = arg;
    const gl_type_traits *tr = gl_get_type_traits(c->t->type);
    float *buf = c->scratch + (size_t)ith * (size_t)c->chunk * (size_t)c->n_per_row;
    for (int64_t k = ith; k < c->n_chunks; k += nth) {
        const int64_t r0 = k * c->chunk, r1 = r0 + c->chunk < c->n_rows ? r0 + c->chunk : c->n_rows;
        for (int64_t r = r0; r < r1; r++) {
            const char *src = (const char *)c->t->data + (size_t)r * c->in_row;
            float *row = buf + (size_t)(r - r0) * c->n_per_row;
            if (c->t->type == GL_TYPE_F32) memcpy(row, src, (size_t)c->n_per_row * sizeof(float));
            else tr->to_float(src, row, c->n_per_row);
            // experts of a 3-D tensor each have their own importances
            const float *imx = c->imatrix ? c->imatrix + (size_t)(r / c->rows_per_slice) * c->n_per_row : NULL;
            gl_quantize_rows(c->out, row, c->dst + (size_t)r * c->out_row, 1, c->n_per_row, imx);
        }
    }
}

// Converts tensor t to type out into a new buffer. NULL when out of memory.
static void *convert(gl_threadpool *tp, const gguf_tensor *t, enum gl_type out, const float *imatrix,
                     size_t *out_size) {
    convert_task c = {.t = t, .out = out, .imatrix = imatrix};
    c.n_per_row = t->ne[0];
    c.n_rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) c.n_rows *= t->ne[d];
    c.rows_per_slice = t->n_dims >= 2 ? t->ne[1] : 1;
    c.in_row = gl_row_size(t->type, c.n_per_row);
    c.out_row = gl_row_size(out, c.n_per_row);
    c.chunk = CHUNK_ELEMENTS / c.n_per_row > 0 ? CHUNK_ELEMENTS / c.n_per_row : 1;
    c.n_chunks = (c.n_rows + c.chunk - 1) / c.chunk;
    const int nth = gl_threadpool_n_threads(tp);
    *out_size = c.out_row * (size_t)c.n_rows;
    c.dst = malloc(*out_size ? *out_size : 1);
    c.scratch = malloc((size_t)nth * (size_t)c.chunk * (size_t)c.n_per_row * sizeof(float));
    if (!c.dst || !c.scratch) {
        free(c.dst);
        free(c.scratch);
        return NULL;
    }
    gl_threadpool_run(tp, convert_run, &c);
    free(c.scratch);
    return c.dst;
}

// ---- the plan ---------------------------------------------------------------------------------

typedef struct {
    const gguf_tensor *t;
    bool convert;           // false: copied as is
    enum gl_type type;
    const float *imatrix;
    bool fallback;
} plan_entry;

static int cmp_entries(const void *a, const void *b) {
    return ll_quant_name_cmp(((const plan_entry *)a)->t->name, ((const plan_entry *)b)->t->name);
}

static uint64_t n_elements(const gguf_tensor *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
    return n;
}

// Reads the architecture numbers the rules need.
static void read_hparams(const gguf_file *f, ll_mix_state *s) {
    const char *arch = gguf_get_str(f, "general.architecture", "llama");
    char key[160];
    snprintf(key, sizeof key, "%s.block_count", arch);
    s->n_layer = (int)gguf_get_u32(f, key, 0);
    snprintf(key, sizeof key, "%s.expert_count", arch);
    s->n_expert = (int)gguf_get_u32(f, key, 0);
    snprintf(key, sizeof key, "%s.attention.head_count", arch);
    uint32_t n_head = gguf_get_u32(f, key, 1);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    uint32_t n_head_kv = gguf_get_u32(f, key, n_head);
    s->n_gqa = n_head_kv ? (int)(n_head / n_head_kv) : 1;
    s->falcon = !strcmp(arch, "falcon");
}

// Looks up and checks t's importances. Returns false with err set on a size mismatch (which
// would quietly quantize against the wrong columns).
static bool find_imatrix(const ll_imatrix *im, const gguf_tensor *t, const float **out, char *err, size_t errlen) {
    *out = NULL;
    int nval = 0;
    const float *v = im ? ll_imatrix_lookup(im, t->name, &nval) : NULL;
    if (!v) return true;
    const int64_t want = t->ne[0] * (t->n_dims >= 3 ? t->ne[2] : 1);
    if (nval == want) {
        *out = v;
        return true;
    }
    if (!strcmp(t->name, "token_embd.weight")) return true; // llama.cpp ignores it too
    ll_set_err(err, errlen, "the imatrix has %d values for '%s', the tensor needs %lld", nval, t->name,
               (long long)want);
    return false;
}

int ll_model_quantize(const char *in_path, const char *out_path, const ll_quantize_params *pp,
                      ll_quantize_stats *stats, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (stats) memset(stats, 0, sizeof *stats);
    ll_quantize_params p = pp ? *pp : ll_quantize_default_params();
    const bool target = p.target_bpw > 0 || p.target_bytes > 0;
    const ll_ftype_info *ft = NULL;
    if (!target) {
        ft = ll_ftype_find(p.type);
        if (!ft) {
            ll_set_err(err, errlen, "unknown quantization type '%s'", p.type ? p.type : "(none)");
            return -1;
        }
    }
    const int out_type = type_arg(p.output_type, "output tensor", err, errlen);
    const int embd_type = type_arg(p.token_embd_type, "token embedding", err, errlen);
    if (out_type == -2 || embd_type == -2) return -1;

    struct stat si, so; // writing over the mapped input would pull the floor from under it
    if (stat(in_path, &si) == 0 && stat(out_path, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
        ll_set_err(err, errlen, "%s: the output would overwrite the input", out_path);
        return -1;
    }
    char msg[256];
    gguf_file *f = gguf_open(in_path, msg, sizeof msg);
    if (!f) {
        ll_set_err(err, errlen, "%s", msg);
        return -1;
    }
    const int n = (int)gguf_n_tensors(f);
    plan_entry *plan = calloc((size_t)(n ? n : 1), sizeof *plan);
    void **bufs = calloc((size_t)(n ? n : 1), sizeof *bufs);
    size_t *sizes = calloc((size_t)(n ? n : 1), sizeof *sizes);
    ll_plan_tensor *pt = target ? calloc((size_t)(n ? n : 1), sizeof *pt) : NULL;
    gguf_writer *w = gguf_writer_new();
    gl_threadpool *tp = gl_threadpool_create(p.n_threads > 0 ? p.n_threads : gl_physical_cores());
    int rc = -1;
    const double t0 = ll_now_ms();
    if (!plan || !bufs || !sizes || (target && !pt) || !w || !tp) {
        ll_set_err(err, errlen, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) plan[i].t = gguf_get_tensor(f, i);
    qsort(plan, (size_t)n, sizeof *plan, cmp_entries);

    ll_mix_state ms = {.ft = ft, .pure = p.pure, .output_type = out_type, .embd_type = embd_type,
                       .has_imatrix = p.imatrix && ll_imatrix_n_entries(p.imatrix) > 0};
    read_hparams(f, &ms);
    for (int i = 0; i < n; i++) {
        const char *name = plan[i].t->name;
        if (strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight") || strstr(name, "attn_kv_b.weight"))
            ms.n_attn_v++;
        else if (!strcmp(name, "output.weight"))
            ms.has_output = true;
    }

    // 1. types
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        plan_entry *e = &plan[i];
        const gguf_tensor *t = e->t;
        total += n_elements(t);
        e->type = t->type;
        e->convert = ll_quant_wanted(t->name, t->n_dims, p.leave_output);
        if (e->convert && !find_imatrix(p.imatrix, t, &e->imatrix, err, errlen)) goto done;
        if (target) {
            pt[i] = (ll_plan_tensor){.t = t, .imatrix = e->imatrix, .fixed = !e->convert, .type = t->type};
            // Explicit head/embedding types are kept out of the budget search.
            if (e->convert && ((embd_type >= 0 && !strcmp(t->name, "token_embd.weight")) ||
                               (out_type >= 0 && !strcmp(t->name, "output.weight")))) {
                pt[i].fixed = true;
                pt[i].type = e->type = (enum gl_type)(!strcmp(t->name, "output.weight") ? out_type : embd_type);
            }
            continue;
        }
        if (!e->convert) continue;
        int ty = ll_mix_type(&ms, t->name, t->ne[0], &e->fallback, err, errlen);
        if (ty < 0) goto done;
        e->type = (enum gl_type)ty;
    }
    if (target) {
        uint64_t budget = p.target_bytes ? p.target_bytes : (uint64_t)(p.target_bpw * (double)total / 8.0);
        if (!ll_plan_budget(pt, n, budget, tp, err, errlen)) goto done;
        for (int i = 0; i < n; i++) plan[i].type = pt[i].type;
    }
    for (int i = 0; i < n; i++) {
        plan_entry *e = &plan[i];
        if (e->convert && e->type == e->t->type) e->convert = false; // already that type
        if (e->convert && !e->imatrix && ll_type_needs_imatrix(e->type, e->t->name)) {
            ll_set_err(err, errlen, "'%s' needs an importance matrix for %s (the result would be garbage): "
                       "make one with 'llamalite imatrix -m MODEL -f TEXT -o imatrix.dat' and pass --imatrix imatrix.dat",
                       e->t->name, gl_type_name(e->type));
            goto done;
        }
        if (!e->convert) {
            e->type = e->t->type;
            continue;
        }
        const gl_type_traits *tr = gl_get_type_traits(e->t->type);
        if (tr->is_quantized && !p.allow_requantize) {
            ll_set_err(err, errlen, "'%s' is already quantized (%s); requantizing loses quality: "
                       "use --allow-requantize to do it anyway", e->t->name, gl_type_name(e->t->type));
            goto done;
        }
        if (!tr->to_float || !writable(e->type) || gl_row_size(e->type, e->t->ne[0]) == 0) {
            ll_set_err(err, errlen, "cannot convert '%s' from %s to %s", e->t->name, gl_type_name(e->t->type),
                       gl_type_name(e->type));
            goto done;
        }
    }

    // 2. conversion
    uint64_t done_el = 0;
    if (p.progress) p.progress(p.progress_ud, 0, total);
    for (int i = 0; i < n; i++) {
        plan_entry *e = &plan[i];
        if (e->convert) {
            bufs[i] = convert(tp, e->t, e->type, e->imatrix, &sizes[i]);
            if (!bufs[i]) {
                ll_set_err(err, errlen, "out of memory converting '%s'", e->t->name);
                goto done;
            }
        } else {
            sizes[i] = e->t->size;
        }
        done_el += n_elements(e->t);
        if (p.progress) p.progress(p.progress_ud, done_el, total);
    }

    // 3. the file
    int ftype = ft ? ft->ftype : -1;
    if (target) { // named after the type holding the most weights
        uint64_t by_type[GL_TYPE_COUNT] = {0};
        for (int i = 0; i < n; i++)
            if (plan[i].convert || ll_quant_wanted(plan[i].t->name, plan[i].t->n_dims, p.leave_output))
                by_type[plan[i].type] += n_elements(plan[i].t);
        int best = GL_TYPE_F16;
        for (int ty = 0; ty < GL_TYPE_COUNT; ty++)
            if (by_type[ty] > by_type[best]) best = ty;
        ftype = ll_ftype_of_base((enum gl_type)best);
        if (ftype < 0) ftype = LL_FTYPE_F16;
    }
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_key(f, i);
        if (!strcmp(key, "split.no") || !strcmp(key, "split.count") || !strcmp(key, "split.tensors.count")) continue;
        // set below, at the end, where llama.cpp puts them (same files byte for byte)
        if (!strcmp(key, "general.quantization_version") || !strcmp(key, "general.file_type")) continue;
        gguf_writer_copy_kv(w, f, i);
    }
    gguf_writer_set_u32(w, "general.quantization_version", QUANT_VERSION);
    gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype);
    if (ms.has_imatrix) {
        if (p.imatrix_file) gguf_writer_set_str(w, "quantize.imatrix.file", p.imatrix_file);
        const char *ds = ll_imatrix_dataset(p.imatrix);
        if (ds[0]) gguf_writer_set_str(w, "quantize.imatrix.dataset", ds);
        gguf_writer_set_i32(w, "quantize.imatrix.entries_count", ll_imatrix_n_entries(p.imatrix));
        if (ll_imatrix_n_chunks(p.imatrix) > 0)
            gguf_writer_set_i32(w, "quantize.imatrix.chunks_count", ll_imatrix_n_chunks(p.imatrix));
    }
    for (int i = 0; i < n; i++) {
        const gguf_tensor *t = plan[i].t;
        gguf_writer_add_tensor(w, t->name, plan[i].type, t->n_dims, t->ne, bufs[i] ? bufs[i] : t->data, sizes[i]);
    }
    if (!gguf_writer_write(w, out_path, msg, sizeof msg)) {
        ll_set_err(err, errlen, "%s", msg);
        goto done;
    }

    if (stats) {
        stats->tensors = calloc((size_t)(n ? n : 1), sizeof *stats->tensors);
        if (!stats->tensors) {
            ll_set_err(err, errlen, "out of memory");
            goto done;
        }
        stats->ftype = ftype;
        stats->n_tensors = n;
        for (int i = 0; i < n; i++) {
            const gguf_tensor *t = plan[i].t;
            ll_quantize_tensor *q = &stats->tensors[i];
            q->name = strdup(t->name);
            q->type_in = gl_type_name(t->type);
            q->type_out = gl_type_name(plan[i].type);
            q->n_dims = t->n_dims;
            memcpy(q->ne, t->ne, sizeof q->ne);
            q->n_elements = n_elements(t);
            q->size_in = t->size;
            q->size_out = sizes[i];
            q->fallback = plan[i].fallback;
            stats->n_elements += q->n_elements;
            stats->size_in += q->size_in;
            stats->size_out += q->size_out;
            stats->n_fallback += q->fallback;
        }
        stats->t_ms = ll_now_ms() - t0;
    }
    rc = 0;

done:
    if (bufs)
        for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(sizes);
    free(plan);
    free(pt);
    gguf_writer_free(w);
    if (tp) gl_threadpool_free(tp);
    gguf_close(f);
    return rc;
}
