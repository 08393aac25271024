#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
// GGUF reader and writer. The reader maps the file and validates all of it up front: every
// count, length, type, dimension and offset is checked against the bytes that remain before
// it is used, so a hostile file yields one error line instead of a crash or a huge allocation.
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llamalite.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_MAX_NESTING 8

typedef struct {
    char *key;
    enum gguf_vtype type;
    size_t val_off, val_end;   // the value's bytes in the file (for copying)
    struct { uint64_t u; int64_t i; double f; } num; // the scalar in each representation
    gguf_str str;              // GGUF_TYPE_STRING
    char *str_copy;            // NUL-terminated copy, made on first gguf_get_str
    enum gguf_vtype arr_type;  // GGUF_TYPE_ARRAY
    uint64_t arr_n;
    size_t arr_off;            // first element
    uint64_t *arr_str_off;     // string arrays: offset of each element's length field
} gguf_kv;

struct gguf_file {
    char *path;
    int fd;
    const uint8_t *map; // the file's bytes: mapped, or read into memory (read_in)
    bool read_in;
    size_t size;
    uint32_t version;
    size_t alignment;
    size_t data_off;
    int64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    int64_t *kv_sorted;        // indices sorted by key, for binary search
    int64_t *tensor_sorted;    // indices sorted by name
};

// ---- parsing helpers ----------------------------------------------------------------------

typedef struct {
    const uint8_t *p;
    size_t size, pos;
    char *err;
    size_t errlen;
    const char *path;
    bool failed;
} cursor;

static void fail(cursor *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = true;
    if (!c->err || !c->errlen) return;
    int n = snprintf(c->err, c->errlen, "%s: ", c->path);
    if (n < 0 || (size_t)n >= c->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - n, fmt, ap);
    va_end(ap);
    // Names come from the file: keep the message on one line, and free of terminal controls
    // (C0, DEL, and C1 as UTF-8 such as U+009B CSI), whatever they contain.
    for (unsigned char *q = (unsigned char *)c->err; *q; q++) {
        if (*q < 0x20 || *q == 0x7f) *q = '?';
        else if (*q == 0xC2 && q[1] >= 0x80 && q[1] < 0xA0) q[0] = q[1] = '?';
    }
}

static size_t remaining(const cursor *c) { return c->size - c->pos; }

static bool take(cursor *c, void *out, size_t n, const char *what) {
    if (c->failed) return false;
    if (remaining(c) < n) {
        fail(c, "truncated file while reading %s (offset %zu)", what, c->pos);
        return false;
    }
    if (out) memcpy(out, c->p + c->pos, n);
    c->pos += n;
    return true;
}

static bool take_u32(cursor *c, uint32_t *v, const char *what) { return take(c, v, 4, what); }
static bool take_u64(cursor *c, uint64_t *v, const char *what) { return take(c, v, 8, what); }

static bool take_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t len;
    if (!take_u64(c, &len, what)) return false;
    if (len > remaining(c)) {
        fail(c, "%s: string length %llu exceeds the file", what, (unsigned long long)len);
        return false;
    }
    s->ptr = (const char *)c->p + c->pos;
    s->len = len;
    c->pos += len;
    return true;
}

static char *dup_str(gguf_str s) {
    char *r = malloc(s.len + 1);
    if (!r) return NULL;
    memcpy(r, s.ptr, s.len);
    r[s.len] = 0;
    return r;
}

static size_t scalar_size(enum gguf_vtype t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

// Smallest number of bytes one element of type t can occupy (bounds array counts).
static size_t min_elem_size(enum gguf_vtype t) {
    if (t == GGUF_TYPE_STRING) return 8;
    if (t == GGUF_TYPE_ARRAY) return 12;
    return scalar_size(t);
}

// Reads a scalar stored at p as a number; false for non-numeric types.
static bool load_number(enum gguf_vtype t, const uint8_t *p, int64_t *i, uint64_t *u, double *f) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            float f32; uint64_t u64; int64_t i64; double f64; } v;
    size_t n = scalar_size(t);
    if (!n) return false;
    memcpy(&v, p, n);
    switch (t) {
    case GGUF_TYPE_UINT8: *u = v.u8; *i = v.u8; *f = v.u8; break;
    case GGUF_TYPE_BOOL: *u = v.u8 != 0; *i = v.u8 != 0; *f = v.u8 != 0; break;
    case GGUF_TYPE_INT8: *u = (uint64_t)v.i8; *i = v.i8; *f = v.i8; break;
    case GGUF_TYPE_UINT16: *u = v.u16; *i = v.u16; *f = v.u16; break;
    case GGUF_TYPE_INT16: *u = (uint64_t)v.i16; *i = v.i16; *f = v.i16; break;
    case GGUF_TYPE_UINT32: *u = v.u32; *i = v.u32; *f = v.u32; break;
    case GGUF_TYPE_INT32: *u = (uint64_t)v.i32; *i = v.i32; *f = v.i32; break;
    case GGUF_TYPE_FLOAT32: *f = v.f32; *i = 0; *u = 0; break;
    case GGUF_TYPE_UINT64: *u = v.u64; *i = (int64_t)v.u64; *f = (double)v.u64; break;
    case GGUF_TYPE_INT64: *u = (uint64_t)v.i64; *i = v.i64; *f = (double)v.i64; break;
    case GGUF_TYPE_FLOAT64: *f = v.f64; *i = 0; *u = 0; break;
    default: return false;
    }
    return true;
}

// "key 'name'" / "tensor 'name'" for messages, with long names cut (not inside a UTF-8
// character).
static void describe(char *buf, size_t n, const char *kind, const char *name) {
    size_t len = strlen(name), keep = len;
    if (len > 48) {
        keep = 45;
        while (keep > 0 && ((unsigned char)name[keep] & 0xC0) == 0x80) keep--;
    }
    snprintf(buf, n, "%s '%.*s%s'", kind, (int)keep, name, keep < len ? "..." : "");
}

// Skips one value of type t, walking nested arrays (depth-limited) and checking every length.
static bool skip_value(cursor *c, enum gguf_vtype t, int depth, const char *what) {
    if (t == GGUF_TYPE_STRING) {
        gguf_str s;
        return take_str(c, &s, what);
    }
    if (t == GGUF_TYPE_ARRAY) {
        if (depth >= GGUF_MAX_NESTING) {
            fail(c, "%s: arrays nested deeper than %d", what, GGUF_MAX_NESTING);
            return false;
        }
        uint32_t et;
        uint64_t n;
        if (!take_u32(c, &et, what) || !take_u64(c, &n, what)) return false;
        if (et >= GGUF_TYPE_COUNT) {
            fail(c, "%s: invalid array element type %u", what, et);
            return false;
        }
        if (n > remaining(c) / min_elem_size((enum gguf_vtype)et)) {
            fail(c, "%s: array of %llu elements exceeds the file", what, (unsigned long long)n);
            return false;
        }
        if (et != GGUF_TYPE_STRING && et != GGUF_TYPE_ARRAY)
            return take(c, NULL, n * scalar_size((enum gguf_vtype)et), what);
        for (uint64_t j = 0; j < n; j++)
            if (!skip_value(c, (enum gguf_vtype)et, depth + 1, what)) return false;
        return true;
    }
    size_t sz = scalar_size(t);
    if (!sz) {
        fail(c, "%s: invalid value type %u", what, (unsigned)t);
        return false;
    }
    return take(c, NULL, sz, what);
}

#define MIN_KV_BYTES 14          // u64 key length, 1-byte key, u32 type, u8 value
#define MIN_TENSOR_INFO_BYTES 33 // u64 name length, 1-byte name, u32 n_dims, one u64 dim,
                                 // u32 type, u64 offset

// Returns the table with room for element i (new elements zero-filled), NULL if out of memory
// (the old table stays valid).
static void *grow(cursor *c, void *tab, size_t *cap, uint64_t i, size_t elem) {
    if (i < *cap) return tab;
    size_t n = *cap ? *cap * 2 : 64;
    char *p = realloc(tab, n * elem);
    if (!p) {
        fail(c, "out of memory");
        return NULL;
    }
    memset(p + *cap * elem, 0, (n - *cap) * elem);
    *cap = n;
    return p;
}

static bool parse_kv(cursor *c, gguf_kv *kv, uint64_t idx) {
    gguf_str key;
    if (!take_str(c, &key, "metadata key")) return false;
    if (key.len == 0 || memchr(key.ptr, 0, key.len)) {
        fail(c, "metadata key %llu is empty or contains a NUL byte", (unsigned long long)idx);
        return false;
    }
    kv->key = dup_str(key);
    if (!kv->key) { fail(c, "out of memory"); return false; }
    char what[80];
    describe(what, sizeof what, "key", kv->key);
    uint32_t t;
    if (!take_u32(c, &t, what)) return false;
    if (t >= GGUF_TYPE_COUNT) {
        fail(c, "%s: invalid value type %u", what, t);
        return false;
    }
    kv->type = (enum gguf_vtype)t;
    kv->val_off = c->pos;
    if (kv->type == GGUF_TYPE_STRING) {
        if (!take_str(c, &kv->str, what)) return false;
    } else if (kv->type == GGUF_TYPE_ARRAY) {
        size_t start = c->pos;
        if (!skip_value(c, GGUF_TYPE_ARRAY, 0, what)) return false;
        uint32_t et;
        memcpy(&et, c->p + start, 4);
        memcpy(&kv->arr_n, c->p + start + 4, 8);
        kv->arr_type = (enum gguf_vtype)et;
        kv->arr_off = start + 12;
        if (kv->arr_type == GGUF_TYPE_STRING && kv->arr_n > 0) {
            // Index the strings for O(1) access; the count was bounded by the file size.
            kv->arr_str_off = malloc(kv->arr_n * sizeof(uint64_t));
            if (!kv->arr_str_off) { fail(c, "%s: out of memory", what); return false; }
            size_t pos = kv->arr_off;
            for (uint64_t j = 0; j < kv->arr_n; j++) {
                uint64_t len;
                kv->arr_str_off[j] = pos;
                memcpy(&len, c->p + pos, 8);
                pos += 8 + len; // validated by skip_value
            }
        }
    } else {
        size_t sz = scalar_size(kv->type);
        if (!take(c, NULL, sz, what)) return false;
        load_number(kv->type, c->p + kv->val_off, &kv->num.i, &kv->num.u, &kv->num.f);
    }
    kv->val_end = c->pos;
    return true;
}

static bool parse_tensor_info(cursor *c, gguf_tensor *t, int64_t idx) {
    gguf_str name;
    if (!take_str(c, &name, "tensor name")) return false;
    if (name.len == 0 || memchr(name.ptr, 0, name.len)) {
        fail(c, "tensor %lld: empty name or name with a NUL byte", (long long)idx);
        return false;
    }
    t->name = dup_str(name);
    if (!t->name) { fail(c, "out of memory"); return false; }
    char what[80];
    describe(what, sizeof what, "tensor", t->name);
    if (!take_u32(c, &t->n_dims, what)) return false;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
        fail(c, "%s: %u dimensions (1 to %d allowed)", what, t->n_dims, GGUF_MAX_DIMS);
        return false;
    }
    int64_t nelem = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if ((uint32_t)d >= t->n_dims) continue;
        uint64_t v;
        if (!take_u64(c, &v, what)) return false;
        if (v == 0) {
            fail(c, "%s: dimension %d is 0", what, d);
            return false;
        }
        if (v > (uint64_t)INT64_MAX || (int64_t)v > INT64_MAX / nelem) {
            fail(c, "%s: element count overflows (dimension %d = %llu)", what, d,
                 (unsigned long long)v);
            return false;
        }
        t->ne[d] = (int64_t)v;
        nelem *= t->ne[d];
    }
    uint32_t type;
    if (!take_u32(c, &type, what)) return false;
    const gl_type_traits *tr = type < GL_TYPE_COUNT ? gl_get_type_traits((enum gl_type)type) : NULL;
    if (!tr) {
        fail(c, "%s: unknown or unsupported tensor type %u", what, type);
        return false;
    }
    t->type = (enum gl_type)type;
    if (t->ne[0] % tr->blck_size != 0) {
        fail(c, "%s: row length %lld is not a multiple of the %s block size %d",
             what, (long long)t->ne[0], tr->name, tr->blck_size);
        return false;
    }
    uint64_t nrows = (uint64_t)(nelem / t->ne[0]);
    uint64_t blocks = (uint64_t)(t->ne[0] / tr->blck_size);
    if (blocks > SIZE_MAX / tr->type_size || blocks * tr->type_size > SIZE_MAX / nrows) {
        fail(c, "%s: size in bytes overflows", what);
        return false;
    }
    uint64_t row = blocks * tr->type_size;
    t->size = (size_t)(row * nrows);
    if (!take_u64(c, &t->offset, what)) return false;
    return true;
}

static int cmp_kv_idx(const void *a, const void *b, void *ctx) {
    const gguf_file *f = ctx;
    return strcmp(f->kv[*(const int64_t *)a].key, f->kv[*(const int64_t *)b].key);
}

static int cmp_tensor_idx(const void *a, const void *b, void *ctx) {
    const gguf_file *f = ctx;
    return strcmp(f->tensors[*(const int64_t *)a].name, f->tensors[*(const int64_t *)b].name);
}

static int cmp_tensor_off(const void *a, const void *b, void *ctx) {
    const gguf_file *f = ctx;
    uint64_t x = f->tensors[*(const int64_t *)a].offset, y = f->tensors[*(const int64_t *)b].offset;
    return x < y ? -1 : x > y;
}

// Sorted index 0..n-1 by cmp; NULL on allocation failure.
static int64_t *sorted_index(int64_t n, int (*cmp)(const void *, const void *, void *), void *ctx) {
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!idx) return NULL;
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, (size_t)n, sizeof(int64_t), cmp, ctx);
    return idx;
}

static bool validate_layout(gguf_file *f, cursor *c) {
    f->kv_sorted = sorted_index(f->n_kv, cmp_kv_idx, f);
    f->tensor_sorted = sorted_index(f->n_tensors, cmp_tensor_idx, f);
    int64_t *by_off = sorted_index(f->n_tensors, cmp_tensor_off, f);
    if (!f->kv_sorted || !f->tensor_sorted || !by_off) {
        free(by_off);
        fail(c, "out of memory");
        return false;
    }
    bool ok = true;
    char what[80];
    for (int64_t i = 1; ok && i < f->n_kv; i++)
        if (!strcmp(f->kv[f->kv_sorted[i]].key, f->kv[f->kv_sorted[i - 1]].key)) {
            describe(what, sizeof what, "metadata key", f->kv[f->kv_sorted[i]].key);
            fail(c, "duplicate %s", what);
            ok = false;
        }
    for (int64_t i = 1; ok && i < f->n_tensors; i++)
        if (!strcmp(f->tensors[f->tensor_sorted[i]].name, f->tensors[f->tensor_sorted[i - 1]].name)) {
            describe(what, sizeof what, "tensor name", f->tensors[f->tensor_sorted[i]].name);
            fail(c, "duplicate %s", what);
            ok = false;
        }
    size_t data_size = f->size - f->data_off;
    for (int64_t k = 0; ok && k < f->n_tensors; k++) {
        gguf_tensor *t = &f->tensors[by_off[k]];
        if (t->offset % f->alignment != 0) {
            describe(what, sizeof what, "tensor", t->name);
            fail(c, "%s: offset %llu is not a multiple of the alignment %zu", what,
                 (unsigned long long)t->offset, f->alignment);
            ok = false;
        } else if (t->offset > data_size || t->size > data_size - t->offset) {
            describe(what, sizeof what, "tensor", t->name);
            fail(c, "%s: data (offset %llu, %zu bytes) lies outside the file", what,
                 (unsigned long long)t->offset, t->size);
            ok = false;
        } else if (k > 0) {
            const gguf_tensor *prev = &f->tensors[by_off[k - 1]];
            if (prev->offset + prev->size > t->offset) {
                char what2[80];
                describe(what, sizeof what, "tensor", prev->name);
                describe(what2, sizeof what2, "tensor", t->name);
                fail(c, "%s and %s overlap", what, what2);
                ok = false;
            }
        }
        if (ok) t->data = f->map + f->data_off + t->offset;
    }
    free(by_off);
    return ok;
}

static bool parse(gguf_file *f, cursor *c) {
    char magic[4];
    if (!take(c, magic, 4, "magic")) return false;
    if (memcmp(magic, GGUF_MAGIC, 4) != 0) {
        fail(c, "not a GGUF file (bad magic)");
        return false;
    }
    if (!take_u32(c, &f->version, "version")) return false;
    if (f->version == 1) {
        fail(c, "GGUF version 1 is not supported (only 2 and 3)");
        return false;
    }
    if (f->version != 2 && f->version != 3) {
        uint32_t v = f->version;
        uint32_t swapped = v >> 24 | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | v << 24;
        if (swapped == 2 || swapped == 3)
            fail(c, "big-endian GGUF files are not supported");
        else
            fail(c, "unknown GGUF version %u (only 2 and 3)", v);
        return false;
    }
    uint64_t n_tensors, n_kv;
    if (!take_u64(c, &n_tensors, "tensor count") || !take_u64(c, &n_kv, "metadata count"))
        return false;
    // Bound counts by the smallest encoding of an entry (a one-byte key with a u8 value; a
    // one-byte name with one dimension) before anything is allocated.
    if (n_kv > remaining(c) / MIN_KV_BYTES) {
        fail(c, "metadata count %llu is larger than the file can hold", (unsigned long long)n_kv);
        return false;
    }
    if (n_tensors > remaining(c) / MIN_TENSOR_INFO_BYTES) {
        fail(c, "tensor count %llu is larger than the file can hold", (unsigned long long)n_tensors);
        return false;
    }
    // The tables grow as entries parse, so memory follows what the file really contains.
    size_t cap_kv = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = grow(c, f->kv, &cap_kv, i, sizeof *kv);
        if (!kv) return false;
        f->kv = kv;
        f->n_kv = (int64_t)i + 1;
        if (!parse_kv(c, &f->kv[i], i)) return false;
    }
    if (n_tensors > remaining(c) / MIN_TENSOR_INFO_BYTES) {
        fail(c, "tensor count %llu is larger than the rest of the file can hold",
             (unsigned long long)n_tensors);
        return false;
    }
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (int64_t i = 0; i < f->n_kv; i++) {
        if (strcmp(f->kv[i].key, "general.alignment") != 0) continue;
        if (f->kv[i].type != GGUF_TYPE_UINT32 || f->kv[i].num.u == 0 ||
            (f->kv[i].num.u & (f->kv[i].num.u - 1)) != 0) {
            fail(c, "general.alignment must be a power of two stored as uint32");
            return false;
        }
        f->alignment = (size_t)f->kv[i].num.u;
    }
    size_t cap_t = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        gguf_tensor *t = grow(c, f->tensors, &cap_t, i, sizeof *t);
        if (!t) return false;
        f->tensors = t;
        f->n_tensors = (int64_t)i + 1;
        if (!parse_tensor_info(c, &f->tensors[i], (int64_t)i)) return false;
    }
    size_t data_off = (c->pos + f->alignment - 1) / f->alignment * f->alignment;
    if (n_tensors > 0 && data_off > f->size) {
        fail(c, "truncated file: tensor data section missing");
        return false;
    }
    f->data_off = data_off > f->size ? f->size : data_off;
    return validate_layout(f, c);
}

// The whole file in a page-aligned buffer (the alignment a mapping has, so tensor data keeps
// the alignment the file gives it), read in chunks with progress.
static void *read_whole(int fd, size_t size, const gguf_load *how, cursor *c) {
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, size) != 0) {
        fail(c, "cannot read %zu bytes into memory: out of memory", size);
        return NULL;
    }
    enum { CHUNK = 64 << 20 };
    size_t done = 0;
    while (done < size) {
        const size_t want = size - done < CHUNK ? size - done : CHUNK;
        const ssize_t got = pread(fd, (char *)buf + done, want, (off_t)done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            fail(c, "read failed at byte %zu of %zu: %s", done, size, got < 0 ? strerror(errno) : "the file got shorter");
            free(buf);
            return NULL;
        }
        done += (size_t)got;
        if (how->progress) how->progress(how->progress_ud, done, size);
    }
    return buf;
}

gguf_file *gguf_open_with(const char *path, const gguf_load *how, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        if (err) snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    f->fd = -1;
    f->path = strdup(path);
    cursor c = {.err = err, .errlen = errlen, .path = path};
    struct stat st;
    f->fd = open(path, O_RDONLY);
    if (f->fd < 0 || fstat(f->fd, &st) != 0) {
        fail(&c, "%s", strerror(errno));
        goto bad;
    }
    if (!S_ISREG(st.st_mode)) {
        fail(&c, "not a regular file");
        goto bad;
    }
    f->size = (size_t)st.st_size;
    if (f->size < 24) {
        fail(&c, "file too small to be GGUF (%zu bytes)", f->size);
        goto bad;
    }
    if (how && how->read_in) {
        f->map = read_whole(f->fd, f->size, how, &c);
        if (!f->map) goto bad;
        f->read_in = true;
        close(f->fd); // everything is in memory
        f->fd = -1;
    } else {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_SHARED, f->fd, 0);
        if (m == MAP_FAILED) {
            fail(&c, "cannot map: %s", strerror(errno));
            goto bad;
        }
        f->map = m;
    }
    c.p = f->map;
    c.size = f->size;
    if (!f->path || !parse(f, &c)) {
        if (!c.failed) fail(&c, "out of memory");
        goto bad;
    }
    return f;
bad:
    gguf_close(f);
    return NULL;
}

gguf_file *gguf_open(const char *path, char *err, size_t errlen) { return gguf_open_with(path, NULL, err, errlen); }

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->n_kv; i++) {
        free(f->kv[i].key);
        free(f->kv[i].str_copy);
        free(f->kv[i].arr_str_off);
    }
    for (int64_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->kv);
    free(f->tensors);
    free(f->kv_sorted);
    free(f->tensor_sorted);
    if (f->map && f->read_in) free((void *)f->map);
    else if (f->map) munmap((void *)f->map, f->size);
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(f);
}

uint32_t gguf_version(const gguf_file *f) { return f->version; }
const char *gguf_path(const gguf_file *f) { return f->path; }
size_t gguf_alignment(const gguf_file *f) { return f->alignment; }
size_t gguf_file_size(const gguf_file *f) { return f->size; }

// ---- metadata access ----------------------------------------------------------------------

int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }

int64_t gguf_find_key(const gguf_file *f, const char *key) {
    int64_t lo = 0, hi = f->n_kv - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int r = strcmp(f->kv[f->kv_sorted[mid]].key, key);
        if (r == 0) return f->kv_sorted[mid];
        if (r < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

const char *gguf_key(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_kv ? f->kv[i].key : NULL;
}

enum gguf_vtype gguf_kv_type(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_kv ? f->kv[i].type : GGUF_TYPE_COUNT;
}

static const gguf_kv *kv_by_key(const gguf_file *f, const char *key) {
    int64_t i = gguf_find_key(f, key);
    return i < 0 ? NULL : &f->kv[i];
}

static bool is_int_type(enum gguf_vtype t) {
    return scalar_size(t) && t != GGUF_TYPE_FLOAT32 && t != GGUF_TYPE_FLOAT64;
}

static bool is_signed(enum gguf_vtype t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

uint64_t gguf_get_u64(const gguf_file *f, const char *key, uint64_t def) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || !is_int_type(kv->type) || (is_signed(kv->type) && kv->num.i < 0)) return def;
    return kv->num.u;
}

uint32_t gguf_get_u32(const gguf_file *f, const char *key, uint32_t def) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || !is_int_type(kv->type) || (is_signed(kv->type) && kv->num.i < 0) ||
        kv->num.u > UINT32_MAX)
        return def;
    return (uint32_t)kv->num.u;
}

int32_t gguf_get_i32(const gguf_file *f, const char *key, int32_t def) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || !is_int_type(kv->type)) return def;
    if (kv->type == GGUF_TYPE_UINT64 && kv->num.u > INT32_MAX) return def;
    if (kv->num.i < INT32_MIN || kv->num.i > INT32_MAX) return def;
    return (int32_t)kv->num.i;
}

float gguf_get_f32(const gguf_file *f, const char *key, float def) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || !scalar_size(kv->type) || kv->type == GGUF_TYPE_BOOL) return def;
    return (float)kv->num.f;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool def) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || !is_int_type(kv->type)) return def;
    return kv->num.u != 0;
}

const char *gguf_get_str(const gguf_file *f, const char *key, const char *def) {
    int64_t i = gguf_find_key(f, key);
    if (i < 0 || f->kv[i].type != GGUF_TYPE_STRING) return def;
    gguf_kv *kv = &f->kv[i];
    if (!kv->str_copy) kv->str_copy = dup_str(kv->str); // lazily, owned by the file
    return kv->str_copy ? kv->str_copy : def;
}

bool gguf_kv_number(const gguf_file *f, int64_t i, double *out) {
    if (i < 0 || i >= f->n_kv || !scalar_size(f->kv[i].type)) return false;
    *out = f->kv[i].num.f;
    return true;
}

const void *gguf_kv_data(const gguf_file *f, int64_t i) {
    if (i < 0 || i >= f->n_kv || !scalar_size(f->kv[i].type)) return NULL;
    return f->map + f->kv[i].val_off;
}

gguf_str gguf_kv_string(const gguf_file *f, int64_t i) {
    gguf_str none = {"", 0};
    if (i < 0 || i >= f->n_kv || f->kv[i].type != GGUF_TYPE_STRING) return none;
    return f->kv[i].str;
}

enum gguf_vtype gguf_arr_type(const gguf_file *f, int64_t i) {
    if (i < 0 || i >= f->n_kv || f->kv[i].type != GGUF_TYPE_ARRAY) return GGUF_TYPE_COUNT;
    return f->kv[i].arr_type;
}

uint64_t gguf_arr_n(const gguf_file *f, int64_t i) {
    if (i < 0 || i >= f->n_kv || f->kv[i].type != GGUF_TYPE_ARRAY) return 0;
    return f->kv[i].arr_n;
}

const void *gguf_arr_data(const gguf_file *f, int64_t i) {
    if (i < 0 || i >= f->n_kv || f->kv[i].type != GGUF_TYPE_ARRAY) return NULL;
    if (!scalar_size(f->kv[i].arr_type)) return NULL;
    return f->map + f->kv[i].arr_off;
}

gguf_str gguf_arr_str(const gguf_file *f, int64_t i, uint64_t j) {
    gguf_str s = {"", 0};
    if (i < 0 || i >= f->n_kv || f->kv[i].type != GGUF_TYPE_ARRAY ||
        f->kv[i].arr_type != GGUF_TYPE_STRING || j >= f->kv[i].arr_n)
        return s;
    size_t pos = (size_t)f->kv[i].arr_str_off[j];
    memcpy(&s.len, f->map + pos, 8);
    s.ptr = (const char *)f->map + pos + 8;
    return s;
}

double gguf_arr_number(const gguf_file *f, int64_t i, uint64_t j) {
    if (i < 0 || i >= f->n_kv || f->kv[i].type != GGUF_TYPE_ARRAY || j >= f->kv[i].arr_n)
        return 0;
    enum gguf_vtype t = f->kv[i].arr_type;
    size_t sz = scalar_size(t);
    if (!sz) return 0;
    int64_t iv;
    uint64_t uv;
    double fv;
    load_number(t, f->map + f->kv[i].arr_off + j * sz, &iv, &uv, &fv);
    return fv;
}

// ---- tensors ------------------------------------------------------------------------------

int64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_tensor *gguf_get_tensor(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int r = strcmp(f->tensors[f->tensor_sorted[mid]].name, name);
        if (r == 0) return &f->tensors[f->tensor_sorted[mid]];
        if (r < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

// ---- writer ---------------------------------------------------------------------------------

typedef struct {
    char *key;
    uint32_t type;
    uint8_t *val; // encoded value (what follows the type field)
    size_t len;
} wkv;

typedef struct {
    char *name;
    enum gl_type type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    size_t size;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    char err[256]; // the first problem met while building; reported by gguf_writer_write
};

gguf_writer *gguf_writer_new(void) { return calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) { free(w->kv[i].key); free(w->kv[i].val); }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

static void writer_error(gguf_writer *w, const char *fmt, ...) {
    if (w->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
}

// Stores an encoded value under key, replacing an existing one. Takes ownership of val.
static void put_kv(gguf_writer *w, const char *key, uint32_t type, uint8_t *val, size_t len) {
    if (!val) { writer_error(w, "out of memory"); return; }
    if (!key || !*key) { free(val); writer_error(w, "empty metadata key"); return; }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].type = type; w->kv[i].val = val; w->kv[i].len = len;
            return;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *n = realloc(w->kv, cap * sizeof(wkv));
        if (!n) { free(val); writer_error(w, "out of memory"); return; }
        w->kv = n; w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) { free(val); writer_error(w, "out of memory"); return; }
    w->kv[w->n_kv++] = (wkv){k, type, val, len};
}

void gguf_writer_set_scalar(gguf_writer *w, const char *key, enum gguf_vtype type, const void *v) {
    size_t n = scalar_size(type);
    if (!n) { writer_error(w, "key '%s': %d is not a scalar type", key, (int)type); return; }
    uint8_t *b = malloc(n);
    if (b) memcpy(b, v, n);
    put_kv(w, key, type, b, n);
}

void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { gguf_writer_set_scalar(w, key, GGUF_TYPE_UINT32, &v); }
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) { gguf_writer_set_scalar(w, key, GGUF_TYPE_INT32, &v); }
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) { gguf_writer_set_scalar(w, key, GGUF_TYPE_UINT64, &v); }
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v) { gguf_writer_set_scalar(w, key, GGUF_TYPE_FLOAT32, &v); }
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    gguf_writer_set_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

static void encode_str(uint8_t *dst, const char *s, uint64_t len) {
    memcpy(dst, &len, 8);
    memcpy(dst + 8, s, len);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    uint64_t len = strlen(v);
    uint8_t *b = malloc(8 + len);
    if (b) encode_str(b, v, len);
    put_kv(w, key, GGUF_TYPE_STRING, b, 8 + len);
}

void gguf_writer_set_arr_data(gguf_writer *w, const char *key, enum gguf_vtype type,
                              const void *data, uint64_t n) {
    size_t es = scalar_size(type);
    if (!es) { writer_error(w, "key '%s': arrays of type %d need their own setter", key, (int)type); return; }
    if (n > (SIZE_MAX - 12) / es) { writer_error(w, "key '%s': array too large", key); return; }
    size_t len = 12 + es * n;
    uint8_t *b = malloc(len);
    if (b) {
        uint32_t t = type;
        memcpy(b, &t, 4);
        memcpy(b + 4, &n, 8);
        if (n) memcpy(b + 12, data, es * n);
    }
    put_kv(w, key, GGUF_TYPE_ARRAY, b, len);
}

void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    size_t len = 12;
    for (uint64_t i = 0; i < n; i++) len += 8 + strlen(v[i]);
    uint8_t *b = malloc(len);
    if (b) {
        uint32_t t = GGUF_TYPE_STRING;
        memcpy(b, &t, 4);
        memcpy(b + 4, &n, 8);
        size_t pos = 12;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t l = strlen(v[i]);
            encode_str(b + pos, v[i], l);
            pos += 8 + l;
        }
    }
    put_kv(w, key, GGUF_TYPE_ARRAY, b, len);
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, int64_t i) {
    if (i < 0 || i >= src->n_kv) { writer_error(w, "copy of metadata key %lld: no such key", (long long)i); return; }
    const gguf_kv *kv = &src->kv[i];
    // The value's bytes were validated when the file was opened: copy them as they are.
    size_t len = kv->val_end - kv->val_off;
    uint8_t *b = malloc(len ? len : 1);
    if (b) memcpy(b, src->map + kv->val_off, len);
    put_kv(w, kv->key, kv->type, b, len);
}

void gguf_writer_add_tensor(gguf_writer *w, const char *name, enum gl_type type,
                            uint32_t n_dims, const int64_t *ne, const void *data, size_t size) {
    if (!name || !*name) { writer_error(w, "tensor with an empty name"); return; }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        writer_error(w, "tensor '%s': %u dimensions (1 to %d allowed)", name, n_dims, GGUF_MAX_DIMS);
        return;
    }
    // The size must be what a reader derives from type and dims, or the file is unreadable.
    const gl_type_traits *tr = gl_get_type_traits(type);
    uint64_t nrows = 1;
    for (uint32_t d = 1; d < n_dims; d++) {
        if (ne[d] <= 0 || nrows > UINT64_MAX / (uint64_t)ne[d]) nrows = 0;
        else nrows *= (uint64_t)ne[d];
    }
    size_t row = tr && ne[0] > 0 ? gl_row_size(type, ne[0]) : 0;
    if (!tr || !row || !nrows || row > SIZE_MAX / nrows || row * nrows != size) {
        writer_error(w, "tensor '%s': %zu bytes do not match its type %s and dimensions", name,
                     size, gl_type_name(type));
        return;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) { writer_error(w, "duplicate tensor name '%s'", name); return; }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *n = realloc(w->t, cap * sizeof(wtensor));
        if (!n) { writer_error(w, "out of memory"); return; }
        w->t = n; w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    t->name = strdup(name);
    if (!t->name) { writer_error(w, "out of memory"); return; }
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t->data = data;
    t->size = size;
    w->n_t++;
}

static bool wr(FILE *fp, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, fp) == n; }

static bool pad_to(FILE *fp, uint64_t *pos, size_t align) {
    static const uint8_t zeros[256];
    size_t pad = (size_t)((align - *pos % align) % align);
    *pos += pad;
    while (pad) {
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        if (!wr(fp, zeros, n)) return false;
        pad -= n;
    }
    return true;
}

// The alignment the file will declare: general.alignment when set (it must be valid, since
// readers reject a file whose alignment is not a power of two), else the default.
static bool writer_alignment(gguf_writer *w, size_t *align) {
    *align = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t a = 0;
        if (w->kv[i].type == GGUF_TYPE_UINT32) memcpy(&a, w->kv[i].val, 4);
        if (!a || (a & (a - 1))) {
            writer_error(w, "general.alignment must be a power of two stored as uint32");
            return false;
        }
        *align = a;
    }
    return true;
}

bool gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t errlen) {
    size_t align;
    if (w->err[0] || !writer_alignment(w, &align)) {
        snprintf(err, errlen, "%s: %s", path, w->err);
        return false;
    }
    ll_outfile *out = ll_outfile_open(path, err, errlen);
    if (!out) return false;
    FILE *fp = ll_outfile_stream(out);
    // Layout: header, metadata, tensor infos, padding to the alignment, then each tensor's
    // data padded to the alignment (offsets are relative to the start of the data section).
    bool ok = true;
    uint64_t pos = 0;
    uint32_t version = 3;
    uint64_t n_t = w->n_t, n_kv = w->n_kv;
    ok = ok && wr(fp, GGUF_MAGIC, 4) && wr(fp, &version, 4) && wr(fp, &n_t, 8) && wr(fp, &n_kv, 8);
    pos += 24;
    for (size_t i = 0; ok && i < w->n_kv; i++) {
        uint64_t kl = strlen(w->kv[i].key);
        ok = wr(fp, &kl, 8) && wr(fp, w->kv[i].key, kl) && wr(fp, &w->kv[i].type, 4) &&
             wr(fp, w->kv[i].val, w->kv[i].len);
        pos += 8 + kl + 4 + w->kv[i].len;
    }
    uint64_t off = 0;
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint64_t nl = strlen(t->name);
        uint32_t type = t->type;
        ok = wr(fp, &nl, 8) && wr(fp, t->name, nl) && wr(fp, &t->n_dims, 4) &&
             wr(fp, t->ne, 8 * t->n_dims) && wr(fp, &type, 4) && wr(fp, &off, 8);
        pos += 8 + nl + 4 + 8 * t->n_dims + 4 + 8;
        off += (t->size + align - 1) / align * align;
    }
    ok = ok && pad_to(fp, &pos, align);
    for (size_t i = 0; ok && i < w->n_t; i++) {
        ok = wr(fp, w->t[i].data, w->t[i].size);
        pos += w->t[i].size;
        ok = ok && pad_to(fp, &pos, align);
    }
    // A failed write (the stream's error flag) leaves whatever was at path before untouched.
    return ll_outfile_close(out, true, err, errlen);
}
