// Every block format's decoder against llama.cpp: the first 4 rows of token_embd and of each
// blk.N.attn_q.weight of mixed-types.gguf (one layer per format), decoded by the reference
// engine into golden/dequant-mixed-types.json, must match ours to 1e-6 relative.
//
// Self-contained: a minimal GGUF tensor-table walker and a reader for the golden file's
// fixed shape ({"name": {"type": "Q4_0", "ne": [..], "rows_0_3": [[..], ..]}, ..}).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-lite/ggml-lite.h"
#include "ggml-lite/quants.h"
#include "tests/test_util.h"

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
            else { buf[n] = 0; *len = (size_t)n; }
        }
    }
    fclose(f);
    return buf;
}

// ---- minimal GGUF walker ------------------------------------------------------------------------

typedef struct { const uint8_t *p, *end; bool ok; } cursor;

static uint64_t take(cursor *c, int nbytes) {
    if (!c->ok || c->end - c->p < nbytes) { c->ok = false; return 0; }
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++) v |= (uint64_t)c->p[i] << (8 * i);
    c->p += nbytes;
    return v;
}

static void skip(cursor *c, uint64_t n) {
    if (!c->ok || (uint64_t)(c->end - c->p) < n) { c->ok = false; return; }
    c->p += n;
}

static const int scalar_size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static void skip_value(cursor *c, uint32_t type, uint32_t *alignment, bool is_alignment) {
    if (type == 8) { skip(c, take(c, 8)); return; }             // string
    if (type == 9) {                                              // array
        uint32_t et = (uint32_t)take(c, 4);
        uint64_t n = take(c, 8);
        if (et == 9 || et > 12) { c->ok = false; return; }
        for (uint64_t i = 0; i < n && c->ok; i++) {
            if (et == 8) skip(c, take(c, 8));
            else skip(c, (uint64_t)scalar_size[et]);
        }
        return;
    }
    if (type > 12) { c->ok = false; return; }
    uint64_t v = take(c, scalar_size[type]);
    if (is_alignment && type == 4) *alignment = (uint32_t)v;
}

typedef struct {
    char name[128];
    enum gl_type type;
    int64_t ne0;
    uint64_t offset;
} tensor_info;

typedef struct {
    char *buf;
    size_t len;
    size_t data_start;
    int n;
    tensor_info *t;
} gguf_lite;

static bool gguf_lite_open(const char *path, gguf_lite *g) {
    memset(g, 0, sizeof *g);
    g->buf = read_file(path, &g->len);
    if (!g->buf || g->len < 24 || memcmp(g->buf, "GGUF", 4)) return false;
    cursor c = {(const uint8_t *)g->buf + 4, (const uint8_t *)g->buf + g->len, true};
    take(&c, 4); // version
    uint64_t n_tensors = take(&c, 8), n_kv = take(&c, 8);
    uint32_t alignment = 32;
    for (uint64_t i = 0; i < n_kv && c.ok; i++) {
        uint64_t klen = take(&c, 8);
        const char *key = (const char *)c.p;
        skip(&c, klen);
        bool is_al = c.ok && klen == 17 && memcmp(key, "general.alignment", 17) == 0;
        skip_value(&c, (uint32_t)take(&c, 4), &alignment, is_al);
    }
    if (!c.ok || n_tensors > 100000 || alignment == 0) return false;
    g->t = calloc(n_tensors ? n_tensors : 1, sizeof *g->t);
    for (uint64_t i = 0; i < n_tensors && c.ok; i++) {
        uint64_t nlen = take(&c, 8);
        const char *name = (const char *)c.p;
        skip(&c, nlen);
        if (!c.ok || nlen >= sizeof g->t[i].name) return false;
        memcpy(g->t[i].name, name, nlen);
        uint32_t nd = (uint32_t)take(&c, 4);
        if (nd == 0 || nd > 4) return false;
        g->t[i].ne0 = (int64_t)take(&c, 8);
        for (uint32_t d = 1; d < nd; d++) take(&c, 8);
        g->t[i].type = (enum gl_type)take(&c, 4);
        g->t[i].offset = take(&c, 8);
        g->n++;
    }
    if (!c.ok) return false;
    size_t pos = (size_t)(c.p - (const uint8_t *)g->buf);
    g->data_start = (pos + alignment - 1) / alignment * alignment;
    return true;
}

static const tensor_info *gguf_lite_find(const gguf_lite *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->t[i].name, name) == 0) return &g->t[i];
    return NULL;
}

// ---- decoders by type ---------------------------------------------------------------------------

typedef struct { enum gl_type type; const char *name; int blck; size_t size; gl_to_float_fn dequant; } decoder;

static const decoder decoders[] = {
    {GL_TYPE_F32, "F32", 1, 4, gl_dequant_row_f32},
    {GL_TYPE_F16, "F16", 1, 2, gl_dequant_row_f16},
    {GL_TYPE_BF16, "BF16", 1, 2, gl_dequant_row_bf16},
    {GL_TYPE_Q4_0, "Q4_0", 32, sizeof(block_q4_0), gl_dequant_row_q4_0},
    {GL_TYPE_Q4_1, "Q4_1", 32, sizeof(block_q4_1), gl_dequant_row_q4_1},
    {GL_TYPE_Q5_0, "Q5_0", 32, sizeof(block_q5_0), gl_dequant_row_q5_0},
    {GL_TYPE_Q5_1, "Q5_1", 32, sizeof(block_q5_1), gl_dequant_row_q5_1},
    {GL_TYPE_Q8_0, "Q8_0", 32, sizeof(block_q8_0), gl_dequant_row_q8_0},
    {GL_TYPE_Q2_K, "Q2_K", 256, sizeof(block_q2_K), gl_dequant_row_q2_K},
    {GL_TYPE_Q3_K, "Q3_K", 256, sizeof(block_q3_K), gl_dequant_row_q3_K},
    {GL_TYPE_Q4_K, "Q4_K", 256, sizeof(block_q4_K), gl_dequant_row_q4_K},
    {GL_TYPE_Q5_K, "Q5_K", 256, sizeof(block_q5_K), gl_dequant_row_q5_K},
    {GL_TYPE_Q6_K, "Q6_K", 256, sizeof(block_q6_K), gl_dequant_row_q6_K},
    {GL_TYPE_IQ4_NL, "IQ4_NL", 32, sizeof(block_iq4_nl), gl_dequant_row_iq4_nl},
    {GL_TYPE_IQ4_XS, "IQ4_XS", 256, sizeof(block_iq4_xs), gl_dequant_row_iq4_xs},
};

static const decoder *find_decoder(enum gl_type type) {
    for (size_t i = 0; i < sizeof decoders / sizeof decoders[0]; i++)
        if (decoders[i].type == type) return &decoders[i];
    return NULL;
}

// ---- golden JSON (fixed shape) --------------------------------------------------------------------

static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    return p;
}

// Reads a "string" into out; returns the position after it or NULL.
static const char *str(const char *p, char *out, size_t cap) {
    p = ws(p);
    if (*p != '"') return NULL;
    const char *e = strchr(p + 1, '"');
    if (!e || (size_t)(e - p - 1) >= cap) return NULL;
    memcpy(out, p + 1, (size_t)(e - p - 1));
    out[e - p - 1] = 0;
    return e + 1;
}

// Reads a flat array of numbers; returns the position after ']' or NULL.
static const char *num_array(const char *p, double *out, int cap, int *n) {
    p = ws(p);
    if (*p != '[') return NULL;
    p = ws(p + 1);
    *n = 0;
    if (*p == ']') return p + 1;
    for (;;) {
        char *e;
        double v = strtod(p, &e);
        if (e == p || *n >= cap) return NULL;
        out[(*n)++] = v;
        p = ws(e);
        if (*p == ']') return p + 1;
        if (*p != ',') return NULL;
        p = ws(p + 1);
    }
}

enum { MAX_ROW = 4096, MAX_ROWS = 4 };

typedef struct {
    char name[128], type[16];
    int nrows, ncols;
    double rows[MAX_ROWS][MAX_ROW];
} golden_entry;

// Parses the next entry of the top-level object; returns the position after it or NULL.
static const char *next_entry(const char *p, golden_entry *g) {
    memset(g->name, 0, sizeof g->name);
    g->type[0] = 0;
    g->nrows = 0;
    g->ncols = -1;
    p = str(p, g->name, sizeof g->name);
    if (!p || *(p = ws(p)) != ':') return NULL;
    p = ws(p + 1);
    if (*p != '{') return NULL;
    p = ws(p + 1);
    while (*p != '}') {
        char key[32];
        p = str(p, key, sizeof key);
        if (!p || *(p = ws(p)) != ':') return NULL;
        p = ws(p + 1);
        if (strcmp(key, "type") == 0) {
            p = str(p, g->type, sizeof g->type);
        } else if (strcmp(key, "ne") == 0) {
            double ne[4];
            int n;
            p = num_array(p, ne, 4, &n);
        } else if (strcmp(key, "rows_0_3") == 0) {
            if (*p != '[') return NULL;
            p = ws(p + 1);
            while (p && *p != ']') {
                int n;
                if (g->nrows >= MAX_ROWS) return NULL;
                p = num_array(p, g->rows[g->nrows], MAX_ROW, &n);
                if (!p || (g->ncols >= 0 && n != g->ncols)) return NULL;
                g->ncols = n;
                g->nrows++;
                p = ws(p);
                if (*p == ',') p = ws(p + 1);
            }
            if (!p) return NULL;
            p++;
        } else {
            return NULL;
        }
        if (!p) return NULL;
        p = ws(p);
        if (*p == ',') p = ws(p + 1);
    }
    p = ws(p + 1);
    if (*p == ',') p++;
    return p;
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) {
        fprintf(stderr, "test_quant_golden: shared data not found, skipping\n");
        return TEST_SKIP;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/dequant-mixed-types.json", shared);
    size_t jlen;
    char *json = read_file(path, &jlen);
    CHECK(json != NULL, "cannot read %s", path);
    snprintf(path, sizeof path, "%s/models/mixed-types.gguf", shared);
    gguf_lite g;
    bool opened = gguf_lite_open(path, &g);
    CHECK(opened, "cannot parse %s", path);
    if (!json || !opened) return test_result("test_quant_golden");

    static golden_entry e;
    static float y[MAX_ROWS * MAX_ROW];
    bool seen[GL_TYPE_COUNT] = {false};
    int entries = 0;
    const char *p = ws(json);
    CHECK(*p == '{', "golden: not an object");
    p = ws(p + 1);
    while (p && *p && *p != '}') {
        p = next_entry(p, &e);
        CHECK(p != NULL, "golden: parse error after %d entries", entries);
        if (!p) break;
        entries++;
        const tensor_info *t = gguf_lite_find(&g, e.name);
        CHECK(t != NULL, "%s: not in the model", e.name);
        if (!t) continue;
        const decoder *d = find_decoder(t->type);
        CHECK(d != NULL, "%s: type %d has no decoder", e.name, (int)t->type);
        if (!d) continue;
        CHECK(strcmp(d->name, e.type) == 0, "%s: model type %s, golden %s", e.name, d->name, e.type);
        CHECK(e.ncols == t->ne0 && e.nrows == MAX_ROWS, "%s: golden has %d x %d", e.name, e.nrows, e.ncols);
        const size_t row_bytes = (size_t)(t->ne0 / d->blck) * d->size;
        const size_t start = g.data_start + t->offset;
        if (e.ncols != t->ne0 || t->ne0 % d->blck || t->ne0 > MAX_ROW ||
            start > g.len || g.len - start < MAX_ROWS * row_bytes)
            continue;
        d->dequant(g.buf + start, y, MAX_ROWS * t->ne0);
        double worst = 0;
        int bad = 0;
        for (int r = 0; r < MAX_ROWS; r++)
            for (int c = 0; c < e.ncols; c++) {
                const double want = e.rows[r][c], got = y[r * e.ncols + c];
                const double err = fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1.0);
                if (!(err <= 1e-6)) {
                    if (bad++ < 5)
                        fprintf(stderr, "%s row %d col %d: got %.9g want %.9g\n", e.name, r, c, got, want);
                }
                if (err > worst) worst = err;
            }
        printf("%-22s %-7s max rel err %.2e\n", e.name, d->name, worst);
        CHECK(bad == 0, "%s (%s): %d values off by more than 1e-6 relative", e.name, d->name, bad);
        seen[t->type] = true;
    }
    CHECK(entries == 15, "golden: %d entries, expected 15", entries);
    // The file covers these formats; each must have been checked.
    const enum gl_type want_types[] = {GL_TYPE_Q4_0, GL_TYPE_Q4_1, GL_TYPE_Q5_0, GL_TYPE_Q5_1, GL_TYPE_Q8_0,
                                       GL_TYPE_Q2_K, GL_TYPE_Q3_K, GL_TYPE_Q4_K, GL_TYPE_Q5_K, GL_TYPE_Q6_K,
                                       GL_TYPE_F16, GL_TYPE_BF16, GL_TYPE_IQ4_NL, GL_TYPE_IQ4_XS};
    for (size_t i = 0; i < sizeof want_types / sizeof want_types[0]; i++)
        CHECK(seen[want_types[i]], "type %s not covered", find_decoder(want_types[i])->name);
    free(g.t);
    free(g.buf);
    free(json);
    return test_result("test_quant_golden");
}
