// GGUF inspection for the public API (llamalite info): the validated reader of gguf.c behind
// ll_gguf_*, and value formatting for people (exact numbers, escaped and cut strings,
// abbreviated arrays).
#include "llamalite.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "model/model.h"

struct ll_gguf {
    gguf_file *f;
};

ll_gguf *ll_gguf_open(const char *path, char *err, size_t errlen) {
    gguf_file *f = gguf_open(path, err, errlen);
    if (!f) return NULL;
    ll_gguf *g = malloc(sizeof *g);
    if (!g) {
        gguf_close(f);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    g->f = f;
    return g;
}

void ll_gguf_close(ll_gguf *g) {
    if (!g) return;
    gguf_close(g->f);
    free(g);
}

uint32_t ll_gguf_version(const ll_gguf *g) { return gguf_version(g->f); }
size_t ll_gguf_alignment(const ll_gguf *g) { return gguf_alignment(g->f); }
uint64_t ll_gguf_file_size(const ll_gguf *g) { return gguf_file_size(g->f); }
int64_t ll_gguf_n_kv(const ll_gguf *g) { return gguf_n_kv(g->f); }
const char *ll_gguf_key(const ll_gguf *g, int64_t i) { return gguf_key(g->f, i); }
int64_t ll_gguf_n_tensors(const ll_gguf *g) { return gguf_n_tensors(g->f); }

const char *ll_gguf_kv_type(const ll_gguf *g, int64_t i) {
    static const char *const scalar[GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
    static const char *const array[GGUF_TYPE_COUNT] = {
        "arr[u8]", "arr[i8]", "arr[u16]", "arr[i16]", "arr[u32]", "arr[i32]", "arr[f32]",
        "arr[bool]", "arr[str]", "arr[arr]", "arr[u64]", "arr[i64]", "arr[f64]"};
    enum gguf_vtype t = gguf_kv_type(g->f, i);
    if (t >= GGUF_TYPE_COUNT) return "?";
    if (t != GGUF_TYPE_ARRAY) return scalar[t];
    enum gguf_vtype et = gguf_arr_type(g->f, i);
    return et < GGUF_TYPE_COUNT ? array[et] : "arr";
}

bool ll_gguf_tensor(const ll_gguf *g, int64_t i, ll_gguf_tensor_info *out) {
    const gguf_tensor *t = gguf_get_tensor(g->f, i);
    if (!t) return false;
    out->name = t->name;
    out->type = gl_type_name(t->type);
    out->n_dims = t->n_dims;
    out->n_elements = 1;
    for (int d = 0; d < 4; d++) {
        out->ne[d] = t->ne[d];
        out->n_elements *= (uint64_t)t->ne[d]; // cannot overflow: checked when opened
    }
    out->offset = t->offset;
    out->size = t->size;
    return true;
}

// ---- formatting -----------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} strbuf;

static void sb_put(strbuf *b, const char *p, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) { b->oom = true; return; }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_printf(strbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

// Quoted string with C escapes; control characters (C0, DEL and UTF-8 encoded C1) escaped so
// a hostile file cannot drive the terminal. Cut after max_str bytes (0: never), at a UTF-8
// character boundary.
static void put_quoted(strbuf *b, gguf_str s, size_t max_str) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t n = (size_t)s.len;
    bool cut = max_str && n > max_str;
    if (cut) {
        n = max_str;
        while (n > 0 && (p[n] & 0xC0) == 0x80) n--; // do not split a character
    }
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; sb_put(b, e, 2); }
        else if (c == '\n') sb_put(b, "\\n", 2);
        else if (c == '\t') sb_put(b, "\\t", 2);
        else if (c == '\r') sb_put(b, "\\r", 2);
        else if (c < 0x20 || c == 0x7f) sb_printf(b, "\\x%02x", c);
        else if (c == 0xC2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] < 0xA0) sb_printf(b, "\\u%04x", p[++i]);
        else sb_put(b, (const char *)&c, 1);
    }
    sb_put(b, cut ? "...\"" : "\"", cut ? 4 : 1);
}

// A scalar stored little-endian at p, printed exactly (floats in their shortest round-trip form).
static void put_scalar(strbuf *b, enum gguf_vtype t, const void *p) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            float f32; uint64_t u64; int64_t i64; double f64; } v;
    memset(&v, 0, sizeof v);
    switch (t) {
    case GGUF_TYPE_UINT8: memcpy(&v.u8, p, 1); sb_printf(b, "%u", v.u8); break;
    case GGUF_TYPE_INT8: memcpy(&v.i8, p, 1); sb_printf(b, "%d", v.i8); break;
    case GGUF_TYPE_UINT16: memcpy(&v.u16, p, 2); sb_printf(b, "%u", v.u16); break;
    case GGUF_TYPE_INT16: memcpy(&v.i16, p, 2); sb_printf(b, "%d", v.i16); break;
    case GGUF_TYPE_UINT32: memcpy(&v.u32, p, 4); sb_printf(b, "%u", v.u32); break;
    case GGUF_TYPE_INT32: memcpy(&v.i32, p, 4); sb_printf(b, "%d", v.i32); break;
    case GGUF_TYPE_UINT64: memcpy(&v.u64, p, 8); sb_printf(b, "%llu", (unsigned long long)v.u64); break;
    case GGUF_TYPE_INT64: memcpy(&v.i64, p, 8); sb_printf(b, "%lld", (long long)v.i64); break;
    case GGUF_TYPE_BOOL: memcpy(&v.u8, p, 1); sb_printf(b, "%s", v.u8 ? "true" : "false"); break;
    case GGUF_TYPE_FLOAT32: {
        memcpy(&v.f32, p, 4);
        char tmp[48];
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, v.f32);
            if (strtof(tmp, NULL) == v.f32) break;
        }
        sb_printf(b, "%s", tmp);
        break;
    }
    case GGUF_TYPE_FLOAT64: {
        memcpy(&v.f64, p, 8);
        char tmp[48];
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, v.f64);
            if (strtod(tmp, NULL) == v.f64) break;
        }
        sb_printf(b, "%s", tmp);
        break;
    }
    default: sb_put(b, "?", 1); break;
    }
}

static size_t elem_size(enum gguf_vtype t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    default: return 8;
    }
}

static void put_array(strbuf *b, const gguf_file *f, int64_t i, size_t max_items, size_t max_str) {
    enum gguf_vtype et = gguf_arr_type(f, i);
    uint64_t n = gguf_arr_n(f, i);
    if (et == GGUF_TYPE_ARRAY) { // nested arrays are validated but not exposed element-wise
        sb_printf(b, "[%llu arrays]", (unsigned long long)n);
        return;
    }
    uint64_t shown = max_items && n > max_items ? max_items : n;
    const uint8_t *data = et == GGUF_TYPE_STRING ? NULL : gguf_arr_data(f, i);
    sb_put(b, "[", 1);
    for (uint64_t j = 0; j < shown; j++) {
        if (j) sb_put(b, ", ", 2);
        if (et == GGUF_TYPE_STRING) put_quoted(b, gguf_arr_str(f, i, j), max_str);
        else put_scalar(b, et, data + j * elem_size(et));
    }
    if (shown < n) sb_printf(b, "%s... %llu items", shown ? ", " : "", (unsigned long long)n);
    sb_put(b, "]", 1);
}

char *ll_gguf_kv_format(const ll_gguf *g, int64_t i, size_t max_items, size_t max_str) {
    strbuf b = {0};
    sb_put(&b, "", 0);
    enum gguf_vtype t = gguf_kv_type(g->f, i);
    if (t == GGUF_TYPE_STRING) put_quoted(&b, gguf_kv_string(g->f, i), max_str);
    else if (t == GGUF_TYPE_ARRAY) put_array(&b, g->f, i, max_items, max_str);
    else if (t < GGUF_TYPE_COUNT) put_scalar(&b, t, gguf_kv_data(g->f, i));
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

// ---- hyperparameters --------------------------------------------------------------------------

char *ll_gguf_hparams(const ll_gguf *g, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    // Vocabulary files and adapters have no hyperparameters of their own (err stays empty).
    if (gguf_n_tensors(g->f) == 0 || !strcmp(gguf_get_str(g->f, "general.type", ""), "adapter")) return NULL;
    const char *arch = gguf_get_str(g->f, "general.architecture", "");
    const ll_arch *a = ll_arch_find(arch);
    if (!a) {
        if (err && errlen)
            snprintf(err, errlen, "architecture '%.40s' is not one the engine runs (supported: %s)", arch,
                     ll_arch_names());
        return NULL;
    }
    // A model without weights or vocabulary: just what the hyperparameter readers need.
    ll_model m = {.file = g->f, .a = a};
    snprintf(m.arch, sizeof m.arch, "%s", arch);
    char *s = NULL;
    if (ll_hparams_load(&m, err, errlen)) s = ll_hparams_format(&m);
    free(m.layers);
    return s;
}
