// Jinja values: the arena they live in, lists and dicts, Python's equality, ordering and
// printing rules, and JSON both ways (json.dumps as transformers' tojson calls it, json.loads
// for the conversation).
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"
#include "util.h"

// ---- arena -------------------------------------------------------------------------------------
struct jinja_chunk {
    jinja_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
};

enum { CHUNK_SIZE = 64 * 1024 };

void *jinja_alloc(jinja_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    jinja_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        if (a->used + cap + sizeof *c > a->limit || !(c = malloc(sizeof *c + cap))) {
            a->over = true;
            longjmp(*a->fail, 1);
        }
        a->used += cap + sizeof *c;
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->mem + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void jinja_arena_free(jinja_arena *a) {
    for (jinja_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
    a->used = 0;
}

void jinja_one_line(char *msg) {
    for (; *msg; msg++)
        if ((unsigned char)*msg < 0x20 || *msg == 0x7f) *msg = ' ';
}

// ---- buffers -----------------------------------------------------------------------------------
void jinja_buf_put(jinja_buf *b, const char *s, size_t n) {
    if (b->over) return;
    if (b->limit && b->n + n > b->limit) {
        b->over = true;
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p;
        if (b->a) {
            p = jinja_alloc(b->a, cap);
            if (b->n) memcpy(p, b->p, b->n);
        } else if (!(p = realloc(b->p, cap))) {
            b->over = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

// ---- construction ------------------------------------------------------------------------------
jv jv_str(jinja_arena *a, const char *s) {
    size_t n = strlen(s);
    char *p = jinja_alloc(a, n + 1);
    memcpy(p, s, n);
    return jv_strn(p, n);
}

jv jv_new_list(jinja_arena *a, size_t cap) {
    jv v = {.t = JV_LIST};
    v.l = jinja_alloc(a, sizeof *v.l);
    if (cap) {
        v.l->v = jinja_alloc(a, cap * sizeof(jv));
        v.l->cap = cap;
    }
    return v;
}

jv jv_new_dict(jinja_arena *a, size_t cap) {
    jv v = {.t = JV_DICT};
    v.d = jinja_alloc(a, sizeof *v.d);
    if (cap) {
        v.d->k = jinja_alloc(a, cap * sizeof(jv));
        v.d->v = jinja_alloc(a, cap * sizeof(jv));
        v.d->cap = cap;
    }
    return v;
}

// The nesting depth of v as an item (namespaces are mutable and print without recursing: 1).
static unsigned item_depth(jinja_arena *a, jv v) {
    unsigned d = v.t == JV_LIST ? v.l->depth + 1 : v.t == JV_DICT ? v.d->depth + 1 : v.t == JV_NS ? 1 : 0;
    if (d > JV_MAX_DEPTH) {
        a->too_deep = true;
        longjmp(*a->fail, 1);
    }
    return d;
}

void jv_list_push(jinja_arena *a, jv_list *l, jv v) {
    unsigned d = item_depth(a, v);
    if (d > l->depth) l->depth = d;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *nv = jinja_alloc(a, cap * sizeof(jv));
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

const jv *jv_dict_get(const jv_dict *d, jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (jv_eq(d->k[i], key)) return &d->v[i];
    return NULL;
}

const jv *jv_dict_find(const jv_dict *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].s.n == n && !memcmp(d->k[i].s.p, key, n)) return &d->v[i];
    return NULL;
}

void jv_dict_set(jinja_arena *a, jv_dict *d, jv key, jv v) {
    unsigned dv = item_depth(a, v), dk = item_depth(a, key);
    if (dv > d->depth) d->depth = dv;
    if (dk > d->depth) d->depth = dk;
    for (size_t i = 0; i < d->n; i++)
        if (jv_eq(d->k[i], key)) {
            d->v[i] = v;
            return;
        }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *nk = jinja_alloc(a, cap * sizeof(jv)), *nv = jinja_alloc(a, cap * sizeof(jv));
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(jv));
            memcpy(nv, d->v, d->n * sizeof(jv));
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = v;
}

// ---- Python semantics --------------------------------------------------------------------------
bool jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0;
    case JV_STR: return v.s.n != 0;
    case JV_LIST: return v.l->n != 0 || v.l->generator;
    case JV_DICT: return v.d->n != 0;
    default: return true;
    }
}

bool jv_is_number(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }

double jv_as_double(jv v) {
    return v.t == JV_FLOAT ? v.f : v.t == JV_INT ? (double)v.i : v.t == JV_BOOL ? v.b : 0;
}

bool jv_eq(jv a, jv b) {
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT)
            return (a.t == JV_INT ? a.i : a.b) == (b.t == JV_INT ? b.i : b.b);
        return jv_as_double(a) == jv_as_double(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.s.n == b.s.n && !memcmp(a.s.p, b.s.p, a.s.n);
    case JV_LIST:
        if (a.l->generator || b.l->generator) return a.l == b.l;
        if (a.l->n != b.l->n || a.l->tuple != b.l->tuple) return false;
        for (size_t i = 0; i < a.l->n; i++)
            if (!jv_eq(a.l->v[i], b.l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a.d->n != b.d->n) return false;
        for (size_t i = 0; i < a.d->n; i++) {
            const jv *o = jv_dict_get(b.d, a.d->k[i]);
            if (!o || !jv_eq(a.d->v[i], *o)) return false;
        }
        return true;
    case JV_NS: return a.d == b.d;
    case JV_MACRO: return a.m == b.m;
    case JV_LOOP: return a.loop == b.loop;
    case JV_FUNC: return !strcmp(a.func, b.func);
    default: return false;
    }
}

int jv_compare(jv a, jv b) {
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.t == JV_INT && b.t == JV_INT) return (a.i > b.i) - (a.i < b.i);
        double x = jv_as_double(a), y = jv_as_double(b);
        return (x > y) - (x < y);
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = a.s.n < b.s.n ? a.s.n : b.s.n;
        int c = memcmp(a.s.p, b.s.p, n);   // UTF-8 byte order is code point order
        if (c) return c < 0 ? -1 : 1;
        return (a.s.n > b.s.n) - (a.s.n < b.s.n);
    }
    if (a.t == JV_LIST && b.t == JV_LIST) {
        for (size_t i = 0; i < a.l->n && i < b.l->n; i++) {
            if (jv_eq(a.l->v[i], b.l->v[i])) continue;
            return jv_compare(a.l->v[i], b.l->v[i]);
        }
        return (a.l->n > b.l->n) - (a.l->n < b.l->n);
    }
    return -2;
}

const char *jv_type_name(jv v) {
    if (v.t == JV_LIST && v.l->generator) return "generator";
    if (v.t == JV_LIST && v.l->tuple) return "tuple";
    static const char *const names[] = {
        [JV_UNDEF] = "Undefined", [JV_NONE] = "NoneType", [JV_BOOL] = "bool", [JV_INT] = "int",
        [JV_FLOAT] = "float", [JV_STR] = "str", [JV_LIST] = "list", [JV_DICT] = "dict",
        [JV_NS] = "Namespace", [JV_MACRO] = "Macro", [JV_LOOP] = "LoopContext", [JV_FUNC] = "function",
    };
    return names[v.t];
}

// ---- printing ----------------------------------------------------------------------------------
// Python's repr of a float: the shortest digits that read back the same, in fixed notation
// for exponents -4..15 (always with a fraction: "1.0") and "1e+16" style otherwise.
static void put_float(jinja_buf *b, double f, bool json) {
    char s[64];
    if (isnan(f)) { jinja_buf_puts(b, json ? "NaN" : "nan"); return; }
    if (isinf(f)) { jinja_buf_puts(b, f < 0 ? (json ? "-Infinity" : "-inf") : (json ? "Infinity" : "inf")); return; }
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(s, sizeof s, "%.*e", prec - 1, f);
        if (strtod(s, NULL) == f) break;
    }
    snprintf(s, sizeof s, "%.*e", prec - 1, f);
    // s = [-]d[.ddd]e[+-]xx
    char digits[32];
    size_t nd = 0;
    const char *p = s;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = -1; i > exp; i--) out[o++] = '0';
            for (size_t i = 0; i < nd; i++) out[o++] = digits[i];
        } else {
            for (int i = 0; i <= exp; i++) out[o++] = (size_t)i < nd ? digits[i] : '0';
            out[o++] = '.';
            if ((size_t)exp + 1 < nd)
                for (size_t i = (size_t)exp + 1; i < nd; i++) out[o++] = digits[i];
            else
                out[o++] = '0';
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++) out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    jinja_buf_puts(b, out);
}

static void put_int(jinja_buf *b, int64_t i) {
    char s[32];
    snprintf(s, sizeof s, "%lld", (long long)i);
    jinja_buf_puts(b, s);
}

static void put_py_string(jinja_buf *b, const char *p, size_t n) {
    bool has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jinja_buf_put(b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        char esc[8];
        if (c == '\\') jinja_buf_puts(b, "\\\\");
        else if (c == (unsigned char)q) { esc[0] = '\\'; esc[1] = q; jinja_buf_put(b, esc, 2); }
        else if (c == '\n') jinja_buf_puts(b, "\\n");
        else if (c == '\r') jinja_buf_puts(b, "\\r");
        else if (c == '\t') jinja_buf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f) { snprintf(esc, sizeof esc, "\\x%02x", c); jinja_buf_puts(b, esc); }
        else jinja_buf_put(b, (const char *)&p[i], 1);
    }
    jinja_buf_put(b, &q, 1);
}

void jv_repr(jinja_buf *b, jv v) {
    switch (v.t) {
    case JV_STR: put_py_string(b, v.s.p, v.s.n); return;
    case JV_LIST:
        if (v.l->generator) {
            jinja_buf_puts(b, "<generator object>");
            return;
        }
        jinja_buf_puts(b, v.l->tuple ? "(" : "[");
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) jinja_buf_puts(b, ", ");
            jv_repr(b, v.l->v[i]);
        }
        jinja_buf_puts(b, v.l->tuple ? (v.l->n == 1 ? ",)" : ")") : "]");
        return;
    case JV_DICT:
        jinja_buf_puts(b, "{");
        for (size_t i = 0; i < v.d->n; i++) {
            if (i) jinja_buf_puts(b, ", ");
            jv_repr(b, v.d->k[i]);
            jinja_buf_puts(b, ": ");
            jv_repr(b, v.d->v[i]);
        }
        jinja_buf_puts(b, "}");
        return;
    case JV_UNDEF: jinja_buf_puts(b, "Undefined"); return;
    default: jv_print(b, v);
    }
}

void jv_print(jinja_buf *b, jv v) {
    switch (v.t) {
    case JV_UNDEF: return;
    case JV_NONE: jinja_buf_puts(b, "None"); return;
    case JV_BOOL: jinja_buf_puts(b, v.b ? "True" : "False"); return;
    case JV_INT: put_int(b, v.i); return;
    case JV_FLOAT: put_float(b, v.f, false); return;
    case JV_STR: jinja_buf_put(b, v.s.p, v.s.n); return;
    case JV_LIST: case JV_DICT: jv_repr(b, v); return;
    case JV_NS: jinja_buf_puts(b, "<Namespace>"); return;
    case JV_MACRO:
        jinja_buf_puts(b, "<Macro '");
        if (v.m->name) jinja_buf_put(b, v.m->name, v.m->name_n);
        else jinja_buf_puts(b, "caller");
        jinja_buf_puts(b, "'>");
        return;
    case JV_LOOP: {
        char s[64];
        snprintf(s, sizeof s, "<LoopContext %zu/%zu>", v.loop->index + 1, v.loop->items->n);
        jinja_buf_puts(b, s);
        return;
    }
    case JV_FUNC: jinja_buf_puts(b, "<function "); jinja_buf_puts(b, v.func); jinja_buf_puts(b, ">"); return;
    }
}

jv jv_to_str(jinja_arena *a, jv v) {
    if (v.t == JV_STR) return v;
    jinja_buf b = {.a = a};
    jv_print(&b, v);
    return jv_strn(b.p ? b.p : "", b.n);
}

// ---- JSON out ----------------------------------------------------------------------------------
// Writes the code point starting at p[*i] as \uXXXX (a surrogate pair above U+FFFF), leaving
// *i on its last byte. Bad UTF-8 is written as U+FFFD, one byte at a time.
static void put_json_escaped_utf8(jinja_buf *b, const char *p, size_t n, size_t *i) {
    const unsigned char *s = (const unsigned char *)p + *i;
    size_t left = n - *i, len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
    unsigned cp = 0xFFFD;
    if (len > 1 && len <= left) {
        cp = s[0] & (0x3F >> (len - 1));
        for (size_t k = 1; k < len; k++) cp = cp << 6 | (s[k] & 63);
        *i += len - 1;
    }
    char u[16];
    if (cp >= 0x10000) {
        cp -= 0x10000;
        snprintf(u, sizeof u, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
    } else {
        snprintf(u, sizeof u, "\\u%04x", cp);
    }
    jinja_buf_puts(b, u);
}

static void put_json_string(jinja_buf *b, const char *p, size_t n, bool ensure_ascii) {
    jinja_buf_puts(b, "\"");
    size_t run = 0;   // plain bytes not yet written
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            } else if (c >= 0x80 && ensure_ascii) {
                jinja_buf_put(b, p + run, i - run);
                put_json_escaped_utf8(b, p, n, &i);
                run = i + 1;
                continue;
            }
        }
        if (!esc) continue;
        jinja_buf_put(b, p + run, i - run);
        jinja_buf_puts(b, esc);
        run = i + 1;
    }
    jinja_buf_put(b, p + run, n - run);
    jinja_buf_puts(b, "\"");
}

static void put_newline_indent(jinja_buf *b, int indent, int depth) {
    jinja_buf_puts(b, "\n");
    for (int i = 0; i < indent * depth; i++) jinja_buf_puts(b, " ");
}

static int cmp_keys(const void *x, const void *y) {
    int c = jv_compare(*(const jv *)x, *(const jv *)y);
    return c == -2 ? 0 : c;
}

bool jv_to_json(jinja_buf *b, jv v, const jv_json_opts *o, int depth, jv *bad) {
    if (depth > 256) { *bad = v; return false; }
    switch (v.t) {
    case JV_NONE: jinja_buf_puts(b, "null"); return true;
    case JV_BOOL: jinja_buf_puts(b, v.b ? "true" : "false"); return true;
    case JV_INT: put_int(b, v.i); return true;
    case JV_FLOAT: put_float(b, v.f, true); return true;
    case JV_STR: put_json_string(b, v.s.p, v.s.n, o->ensure_ascii); return true;
    case JV_LIST:
        if (v.l->generator) { *bad = v; return false; }
        if (!v.l->n) { jinja_buf_puts(b, "[]"); return true; }
        jinja_buf_puts(b, "[");
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) jinja_buf_puts(b, o->item_sep);
            if (o->indent >= 0) put_newline_indent(b, o->indent, depth + 1);
            if (!jv_to_json(b, v.l->v[i], o, depth + 1, bad)) return false;
        }
        if (o->indent >= 0) put_newline_indent(b, o->indent, depth);
        jinja_buf_puts(b, "]");
        return true;
    case JV_DICT: case JV_NS: {
        if (!v.d->n) { jinja_buf_puts(b, "{}"); return true; }
        // Keys in insertion order, or sorted (sort_keys); Python's json turns number, bool and
        // None keys into strings and refuses others.
        size_t n = v.d->n;
        size_t *order = b->a ? jinja_alloc(b->a, n * sizeof *order) : malloc(n * sizeof *order);
        if (!order) { *bad = v; return false; }
        for (size_t i = 0; i < n; i++) order[i] = i;
        if (o->sort_keys) {
            // insertion sort on the indices (dicts in templates are small)
            for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && cmp_keys(&v.d->k[order[j - 1]], &v.d->k[order[j]]) > 0; j--) {
                    size_t t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
                }
        }
        jinja_buf_puts(b, "{");
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            jv k = v.d->k[order[i]];
            if (i) jinja_buf_puts(b, o->item_sep);
            if (o->indent >= 0) put_newline_indent(b, o->indent, depth + 1);
            if (k.t == JV_STR) put_json_string(b, k.s.p, k.s.n, o->ensure_ascii);
            else if (k.t == JV_INT || k.t == JV_FLOAT || k.t == JV_BOOL || k.t == JV_NONE) {
                jinja_buf_puts(b, "\"");
                if (k.t == JV_BOOL) jinja_buf_puts(b, k.b ? "true" : "false");
                else if (k.t == JV_NONE) jinja_buf_puts(b, "null");
                else jv_to_json(b, k, o, depth + 1, bad);
                jinja_buf_puts(b, "\"");
            } else {
                *bad = k;
                ok = false;
                break;
            }
            jinja_buf_puts(b, o->key_sep);
            ok = jv_to_json(b, v.d->v[order[i]], o, depth + 1, bad);
        }
        if (!b->a) free(order);
        if (!ok) return false;
        if (o->indent >= 0) put_newline_indent(b, o->indent, depth);
        jinja_buf_puts(b, "}");
        return true;
    }
    default: *bad = v; return false;
    }
}

// ---- JSON in -----------------------------------------------------------------------------------
typedef struct {
    jinja_arena *a;
    const char *s;
    size_t n, i;
    int depth;
} json_in;

static void skip_ws(json_in *j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r')) j->i++;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static const char *json_string(json_in *j, jv *out) {
    j->i++;   // the quote
    size_t start = j->i;
    // the unescaped text is never longer than the escaped one
    size_t end = start;
    while (end < j->n && j->s[end] != '"') end += j->s[end] == '\\' ? 2 : 1;
    if (end >= j->n) return "unterminated string";
    char *o = jinja_alloc(j->a, end - start + 1);
    size_t k = 0;
    while (j->i < end) {
        unsigned char c = (unsigned char)j->s[j->i];
        if (c < 0x20) return "control character in string";
        if (c != '\\') { o[k++] = (char)c; j->i++; continue; }
        char e = j->s[j->i + 1];
        j->i += 2;
        switch (e) {
        case '"': o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; break;
        case '/': o[k++] = '/'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u': {
            if (j->i + 4 > end) return "bad \\u escape";
            int cp = ll_hex4(j->s + j->i);
            if (cp < 0) return "bad \\u escape";
            j->i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && j->i + 6 <= end && j->s[j->i] == '\\' && j->s[j->i + 1] == 'u') {
                int lo = ll_hex4(j->s + j->i + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    j->i += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;   // a lone surrogate
            k += put_utf8(o + k, (unsigned)cp);
            break;
        }
        default: return "bad escape in string";
        }
    }
    j->i = end + 1;
    *out = jv_strn(o, k);
    return NULL;
}

static const char *json_value(json_in *j, jv *out);

static const char *json_number(json_in *j, jv *out) {
    size_t st = j->i;
    bool is_float = false;
    if (j->s[j->i] == '-') j->i++;
    if (j->i >= j->n || j->s[j->i] < '0' || j->s[j->i] > '9') return "bad number";
    while (j->i < j->n) {
        char c = j->s[j->i];
        if (c >= '0' && c <= '9') j->i++;
        else if (c == '.' || c == 'e' || c == 'E' || ((c == '+' || c == '-') && is_float)) { is_float = true; j->i++; }
        else break;
    }
    char buf[64];
    size_t len = j->i - st;
    if (len >= sizeof buf) is_float = true, len = sizeof buf - 1;
    memcpy(buf, j->s + st, len);
    buf[len] = 0;
    char *endp;
    if (!is_float) {
        long long v = strtoll(buf, &endp, 10);
        if (*endp == 0 && !(v == LLONG_MAX || v == LLONG_MIN)) { *out = jv_int(v); return NULL; }
    }
    double f = strtod(buf, &endp);
    if (*endp) return "bad number";
    *out = jv_float(f);
    return NULL;
}

static const char *json_value(json_in *j, jv *out) {
    skip_ws(j);
    if (j->i >= j->n) return "unexpected end";
    char c = j->s[j->i];
    if (c == '"') return json_string(j, out);
    if (c == '-' || (c >= '0' && c <= '9')) return json_number(j, out);
    static const struct { const char *w; jv_type t; bool b; } words[] = {
        {"null", JV_NONE, false}, {"true", JV_BOOL, true}, {"false", JV_BOOL, false}};
    for (size_t k = 0; k < 3; k++) {
        size_t wl = strlen(words[k].w);
        if (j->n - j->i >= wl && !memcmp(j->s + j->i, words[k].w, wl)) {
            j->i += wl;
            *out = words[k].t == JV_NONE ? jv_none() : jv_bool(words[k].b);
            return NULL;
        }
    }
    if (c != '[' && c != '{') return "unexpected character";
    if (++j->depth > 128) return "nested too deeply";
    j->i++;
    bool obj = c == '{';
    *out = obj ? jv_new_dict(j->a, 0) : jv_new_list(j->a, 0);
    skip_ws(j);
    if (j->i < j->n && j->s[j->i] == (obj ? '}' : ']')) {
        j->i++;
        j->depth--;
        return NULL;
    }
    for (;;) {
        jv key, val;
        const char *e;
        if (obj) {
            skip_ws(j);
            if (j->i >= j->n || j->s[j->i] != '"') return "expected a string key";
            if ((e = json_string(j, &key))) return e;
            skip_ws(j);
            if (j->i >= j->n || j->s[j->i] != ':') return "expected ':'";
            j->i++;
        }
        if ((e = json_value(j, &val))) return e;
        if (obj) jv_dict_set(j->a, out->d, key, val);
        else jv_list_push(j->a, out->l, val);
        skip_ws(j);
        if (j->i >= j->n) return "unexpected end";
        if (j->s[j->i] == ',') { j->i++; continue; }
        if (j->s[j->i] == (obj ? '}' : ']')) { j->i++; break; }
        return obj ? "expected ',' or '}'" : "expected ',' or ']'";
    }
    j->depth--;
    return NULL;
}

const char *jv_from_json(jinja_arena *a, const char *s, size_t n, jv *out, size_t *pos) {
    json_in j = {.a = a, .s = s, .n = n};
    const char *e = json_value(&j, out);
    if (!e) {
        skip_ws(&j);
        if (j.i < n) e = "text after the value";
    }
    *pos = j.i;
    return e;
}
