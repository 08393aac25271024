// Importance matrix: for every weight matrix, the mean over tokens of each input column's
// squared activation, collected by running the model over a text. Quantizers weight each
// column's rounding error by it, so columns that carry large activations are kept closer.
//
// File format: llama.cpp's legacy imatrix.dat, all little-endian int32/float32:
//   n_entries; n_entries x { name_len, name bytes, ncall, nval, nval floats (mean * ncall) };
//   then (optional) the chunk count and { dataset_len, dataset bytes }.
// ncall is the number of matmul calls the means were taken over; a reader divides by it.
// A stack of experts has one entry of n_expert x n_in values (expert e's columns from e * n_in),
// each expert's means over the tokens that chose it, as llama-imatrix collects them; ncall
// counts the layer's passes (an expert no token chose is written as zeros).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/context.h"
#include "adapters/lora.h"
#include "quantize/quantize.h"
#include "util.h"

typedef struct {
    char *name;
    int ncall;       // matmul calls seen
    int nval;
    int n_seg;       // 1, or the experts of a stack: segments of nval / n_seg columns
    double *sum;     // sum over rows of x^2 per column
    double *count;   // [n_seg] rows summed (a loaded entry counts as ncall rows of its means)
    int last_expert; // the expert seen last (a lower one starts the layer's next pass)
    bool loaded;     // from a file: sum holds floats, divided in float as llama.cpp does
    float *mean;     // cache for ll_imatrix_get (NULL: stale)
} im_entry;

struct ll_imatrix {
    im_entry *e;
    int n, cap;
    int n_chunks;
    char *dataset;
    // collection
    ll_context *ctx;
    bool process_output;
};

ll_imatrix *ll_imatrix_new(void) { return calloc(1, sizeof(ll_imatrix)); }

void ll_imatrix_free(ll_imatrix *im) {
    if (!im) return;
    if (im->ctx) ll_imatrix_attach(im, NULL, false);
    for (int i = 0; i < im->n; i++) {
        free(im->e[i].name);
        free(im->e[i].sum);
        free(im->e[i].count);
        free(im->e[i].mean);
    }
    free(im->e);
    free(im->dataset);
    free(im);
}

static im_entry *find(const ll_imatrix *im, const char *name) {
    for (int i = 0; i < im->n; i++)
        if (!strcmp(im->e[i].name, name)) return &im->e[i];
    return NULL;
}

// The entry for name with nval columns in n_seg segments, created empty when new; NULL when out
// of memory or when an entry of that name has another size.
static im_entry *entry(ll_imatrix *im, const char *name, int nval, int n_seg) {
    im_entry *e = find(im, name);
    if (e) return e->nval == nval && e->n_seg == n_seg ? e : NULL;
    if (im->n == im->cap) {
        int cap = im->cap ? 2 * im->cap : 64;
        im_entry *ne = realloc(im->e, (size_t)cap * sizeof *ne);
        if (!ne) return NULL;
        im->e = ne;
        im->cap = cap;
    }
    e = &im->e[im->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    e->sum = calloc((size_t)nval, sizeof *e->sum);
    e->count = calloc((size_t)n_seg, sizeof *e->count);
    if (!e->name || !e->sum || !e->count) {
        free(e->name);
        free(e->sum);
        free(e->count);
        return NULL;
    }
    e->nval = nval;
    e->n_seg = n_seg;
    e->last_expert = n_seg;
    im->n++;
    return e;
}

int ll_imatrix_n_entries(const ll_imatrix *im) { return im ? im->n : 0; }

const char *ll_imatrix_entry(const ll_imatrix *im, int i, int *ncall, int *nval) {
    if (!im || i < 0 || i >= im->n) return NULL;
    if (ncall) *ncall = im->e[i].ncall;
    if (nval) *nval = im->e[i].nval;
    return im->e[i].name;
}

static const float *means(im_entry *e) {
    if (!e->mean) {
        e->mean = malloc((size_t)e->nval * sizeof *e->mean);
        if (!e->mean) return NULL;
        const int seg = e->nval / e->n_seg;
        for (int j = 0; j < e->nval; j++) {
            const double n = e->count[j / seg];
            e->mean[j] = n <= 0 ? 0.0f : e->loaded ? (float)e->sum[j] / (float)n : (float)(e->sum[j] / n);
        }
    }
    return e->mean;
}

const float *ll_imatrix_lookup(const ll_imatrix *im, const char *name, int *nval) {
    im_entry *e = im ? find(im, name) : NULL;
    if (!e) return NULL;
    if (nval) *nval = e->nval;
    return means(e);
}

const float *ll_imatrix_get(const ll_imatrix *im, const char *name, int *nval) {
    return ll_imatrix_lookup(im, name, nval);
}

int ll_imatrix_n_chunks(const ll_imatrix *im) { return im ? im->n_chunks : 0; }
const char *ll_imatrix_dataset(const ll_imatrix *im) { return im && im->dataset ? im->dataset : ""; }

void ll_imatrix_set_info(ll_imatrix *im, int n_chunks, const char *dataset) {
    if (!im) return;
    im->n_chunks = n_chunks;
    char *d = dataset ? strdup(dataset) : NULL;
    if (dataset && !d) return;
    free(im->dataset);
    im->dataset = d;
}

// ---- collection ------------------------------------------------------------------------------

static void observe(void *ud, int slot, int expert, const float *x, int n_tok, int n_in) {
    ll_imatrix *im = ud;
    const ll_model *m = im->ctx->model;
    // As llama.cpp's collector: decodes of fewer than 16 tokens (generation) are not
    // representative, except for the experts (collected whatever the batch); the output head
    // only on request, and only when it is its own matrix (a tied head reads token_embd, which
    // llama.cpp never collects).
    if (n_tok < 16 && expert < 0) return;
    char name[96];
    if (slot == ll_lora_slot_output(m)) {
        if (!im->process_output || m->output.data == m->tok_embd.data) return;
        snprintf(name, sizeof name, "output.weight");
    } else if (slot >= 0 && slot < ll_lora_slot_output(m)) {
        snprintf(name, sizeof name, "blk.%d.%s", slot / LL_ROLE_COUNT, ll_roles[slot % LL_ROLE_COUNT].name);
    } else {
        return;
    }
    const int n_seg = expert >= 0 ? m->hp.n_expert : 1, seg = expert >= 0 ? expert : 0;
    im_entry *e = entry(im, name, n_in * n_seg, n_seg);
    if (!e) return; // out of memory: the entry stays incomplete rather than wrong
    double *sum = e->sum + (size_t)seg * n_in;
    for (int t = 0; t < n_tok; t++) {
        const float *r = x + (size_t)t * n_in;
        for (int j = 0; j < n_in; j++) sum[j] += (double)r[j] * r[j];
    }
    e->count[seg] += n_tok;
    // The experts of one pass come in increasing order: one call per pass.
    if (seg <= e->last_expert) e->ncall++;
    e->last_expert = seg;
    e->loaded = false;
    free(e->mean);
    e->mean = NULL;
}

int ll_imatrix_attach(ll_imatrix *im, ll_context *c, bool process_output) {
    if (!im) return -1;
    if (im->ctx) {
        im->ctx->act_hook = NULL;
        im->ctx->act_hook_ud = NULL;
        im->ctx = NULL;
    }
    if (!c) return 0;
    if (c->act_hook) return -1; // another collector is attached
    im->ctx = c;
    im->process_output = process_output;
    c->act_hook = observe;
    c->act_hook_ud = im;
    return 0;
}

// ---- file ------------------------------------------------------------------------------------

static bool put_i32(FILE *f, int32_t v) { return fwrite(&v, 4, 1, f) == 1; }

int ll_imatrix_save(const ll_imatrix *im, const char *path, char *err, size_t errlen) {
    ll_outfile *out = ll_outfile_open(path, err, errlen);
    if (!out) return -1;
    FILE *f = ll_outfile_stream(out);
    int n = 0;
    for (int i = 0; i < im->n; i++) n += im->e[i].ncall > 0 || im->e[i].loaded;
    bool ok = put_i32(f, n);
    float *tmp = NULL;
    bool oom = false;
    for (int i = 0; ok && i < im->n; i++) {
        const im_entry *e = &im->e[i];
        if (!(e->ncall > 0 || e->loaded)) continue;
        const int32_t len = (int32_t)strlen(e->name);
        float *nt = realloc(tmp, (size_t)e->nval * sizeof *tmp);
        if (!nt) {
            ok = false;
            oom = true;
            break;
        }
        tmp = nt;
        // Stored as mean * ncall, which readers divide by ncall again.
        const int seg = e->nval / e->n_seg;
        for (int j = 0; j < e->nval; j++) {
            const double n = e->count[j / seg];
            tmp[j] = n > 0 ? (float)(e->sum[j] / n * e->ncall) : 0.0f;
        }
        ok = put_i32(f, len) && fwrite(e->name, 1, (size_t)len, f) == (size_t)len && put_i32(f, e->ncall) &&
             put_i32(f, e->nval) && fwrite(tmp, sizeof *tmp, (size_t)e->nval, f) == (size_t)e->nval;
    }
    free(tmp);
    const char *ds = im->dataset ? im->dataset : "";
    const int32_t dl = (int32_t)strlen(ds);
    ok = ok && put_i32(f, im->n_chunks) && put_i32(f, dl) && fwrite(ds, 1, (size_t)dl, f) == (size_t)dl;
    if (oom) {
        ll_set_err(err, errlen, "%s: out of memory", path);
        ll_outfile_close(out, false, NULL, 0);
        return -1;
    }
    // A failed write (the stream's error flag) leaves whatever was at path before untouched.
    return ll_outfile_close(out, true, err, errlen) ? 0 : -1;
}

static bool get_i32(FILE *f, int32_t *v) { return fread(v, 4, 1, f) == 1; }

ll_imatrix *ll_imatrix_load(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ll_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    ll_imatrix *im = ll_imatrix_new();
    float *tmp = NULL;
    char *name = NULL;
    int32_t n = 0;
    if (!im) goto oom;
    if (!get_i32(f, &n) || n < 1 || n > 1000000) {
        ll_set_err(err, errlen, "%s: not an imatrix file (no entries)", path);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        int32_t len, ncall, nval;
        if (!get_i32(f, &len) || len < 1 || len > 4096) {
            ll_set_err(err, errlen, "%s: entry %d: bad name length", path, i + 1);
            goto fail;
        }
        name = malloc((size_t)len + 1);
        if (!name) goto oom;
        if (fread(name, 1, (size_t)len, f) != (size_t)len || !get_i32(f, &ncall) || !get_i32(f, &nval)) {
            ll_set_err(err, errlen, "%s: entry %d: truncated", path, i + 1);
            goto fail;
        }
        name[len] = 0;
        if (strlen(name) != (size_t)len || nval < 1 || nval > (1 << 24) || ncall < 0) {
            ll_set_err(err, errlen, "%s: entry %d: bad name or size", path, i + 1);
            goto fail;
        }
        float *nt = realloc(tmp, (size_t)nval * sizeof *tmp);
        if (!nt) goto oom;
        tmp = nt;
        if (fread(tmp, sizeof *tmp, (size_t)nval, f) != (size_t)nval) {
            ll_set_err(err, errlen, "%s: entry '%s': truncated values", path, name);
            goto fail;
        }
        for (int j = 0; j < nval; j++)
            if (!isfinite(tmp[j]) || tmp[j] < 0) {
                ll_set_err(err, errlen, "%s: entry '%s': value %d is not a finite non-negative number",
                           path, name, j);
                goto fail;
            }
        if (find(im, name)) {
            ll_set_err(err, errlen, "%s: entry '%s' appears twice", path, name);
            goto fail;
        }
        im_entry *e = entry(im, name, nval, 1);
        if (!e) goto oom;
        // As llama.cpp reads it: the mean is value / ncall (a value as is when ncall is 0).
        const double c = ncall > 0 ? ncall : 1;
        for (int j = 0; j < nval; j++) e->sum[j] = tmp[j];
        e->count[0] = c;
        e->ncall = ncall;
        e->loaded = true;
        free(name);
        name = NULL;
    }
    int32_t chunks, dl;
    if (get_i32(f, &chunks) && get_i32(f, &dl) && dl >= 0 && dl <= 65536) {
        char *ds = malloc((size_t)dl + 1);
        if (!ds) goto oom;
        if (fread(ds, 1, (size_t)dl, f) == (size_t)dl) {
            ds[dl] = 0;
            im->n_chunks = chunks;
            im->dataset = ds;
        } else {
            free(ds);
        }
    }
    free(tmp);
    fclose(f);
    return im;
oom:
    ll_set_err(err, errlen, "%s: out of memory", path);
fail:
    free(name);
    free(tmp);
    ll_imatrix_free(im);
    fclose(f);
    return NULL;
}
