// What templates call: Jinja2's filters (`x|trim`), tests (`x is string`), the Python methods
// of strings, dicts and lists that the sandbox allows (`s.split()`, `d.get()`; the ones that
// change a list or dict are refused, as transformers' immutable sandbox refuses them), and the
// globals range, namespace, dict, raise_exception and strftime_now.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <utf8proc.h>

#include "jinja.h"

// ---- arguments ---------------------------------------------------------------------------------
typedef struct {
    const jv *pos, *kw_names, *kw_vals;
    size_t npos, nkw;
} args;

// Argument i by position, or by name; def when absent.
static jv arg(const args *a, size_t i, const char *name, jv def) {
    if (i < a->npos) return a->pos[i];
    for (size_t k = 0; k < a->nkw; k++)
        if (name && a->kw_names[k].s.n == strlen(name) && !memcmp(a->kw_names[k].s.p, name, a->kw_names[k].s.n))
            return a->kw_vals[k];
    return def;
}

static bool is(const char *a, const char *b) { return !strcmp(a, b); }

static const char *want_str(jinja_eval *e, const jinja_node *n, jv v, const char *what, size_t *len) {
    if (v.t == JV_UNDEF) jinja_fail(e, n, "%s: '%s' is undefined", what, v.undef_name ? v.undef_name : "value");
    if (v.t != JV_STR) jinja_fail(e, n, "%s: expected a string, got '%s'", what, jv_type_name(v));
    *len = v.s.n;
    return v.s.p;
}

static int64_t want_int(jinja_eval *e, const jinja_node *n, jv v, const char *what) {
    if (v.t == JV_INT) return v.i;
    if (v.t == JV_BOOL) return v.b;
    jinja_fail(e, n, "%s: expected an integer, got '%s'", what, jv_type_name(v));
}

// ---- strings -----------------------------------------------------------------------------------
// Strings are UTF-8 and Python's methods work on code points: these read one (bad UTF-8 reads as
// one byte each, as U+FFFD).
static int32_t cp_at(const char *p, size_t n, size_t i, size_t *len) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(n - i), &c);
    if (k <= 0) { *len = 1; return 0xFFFD; }
    *len = (size_t)k;
    return c;
}

static int32_t cp_before(const char *p, size_t end, size_t *len) {
    size_t st = end - 1;
    while (st > 0 && end - st < 4 && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
    size_t k;
    int32_t c = cp_at(p, end, st, &k);
    if (st + k != end) { *len = 1; return 0xFFFD; }
    *len = k;
    return c;
}

// Python's str.isspace.
static bool py_space(int32_t c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static bool in_chars(int32_t c, jv chars) {
    for (size_t i = 0, k; i < chars.s.n; i += k)
        if (cp_at(chars.s.p, chars.s.n, i, &k) == c) return true;
    return false;
}

// str.strip/lstrip/rstrip: whitespace, or the code points of chars.
static jv strip(jv s, jv chars, bool left, bool right) {
    size_t lo = 0, hi = s.s.n, k;
    bool ws = chars.t != JV_STR;
    while (left && lo < hi) {
        int32_t c = cp_at(s.s.p, hi, lo, &k);
        if (!(ws ? py_space(c) : in_chars(c, chars))) break;
        lo += k;
    }
    while (right && hi > lo) {
        int32_t c = cp_before(s.s.p, hi, &k);
        if (!(ws ? py_space(c) : in_chars(c, chars))) break;
        hi -= k;
    }
    return jv_strn(s.s.p + lo, hi - lo);
}

// 0 lower, 1 upper, 2 capitalize (first upper, rest lower), 3 title (Jinja2's: each word's first
// letter upper, the rest lower; words start after whitespace or one of -({[<).
static jv map_case(jinja_eval *e, jv s, int mode) {
    // A mapped code point takes at most 1.5 times its bytes; a byte of bad UTF-8 becomes U+FFFD
    // (3 bytes): at most 3 times in all.
    char *p = jinja_alloc(e->a, s.s.n * 3 + 4);
    size_t o = 0, k;
    bool word_start = true;
    for (size_t i = 0; i < s.s.n; i += k) {
        int32_t c = cp_at(s.s.p, s.s.n, i, &k);
        bool up = mode == 1 || (mode == 2 && i == 0) || (mode == 3 && word_start);
        int32_t m = up ? utf8proc_toupper(c) : utf8proc_tolower(c);
        if (up && c == 0xDF) {   // Python's full mapping: ß -> SS (the one a template may meet)
            p[o++] = 'S';
            m = 'S';
        }
        o += (size_t)utf8proc_encode_char(m, (utf8proc_uint8_t *)p + o);
        word_start = py_space(c) || (c < 0x80 && strchr("-({[<", (int)c) != NULL && c != 0);
    }
    return jv_strn(p, o);
}

static jv replace(jinja_eval *e, jv s, jv old, jv new_, int64_t count) {
    jinja_buf b = {.a = e->a, .limit = e->lim.max_output};
    jinja_buf_put(&b, "", 0);
    size_t i = 0;
    int64_t done = 0;
    if (old.s.n == 0) {   // Python inserts new_ around every character
        for (; i <= s.s.n && (count < 0 || done < count); done++) {
            jinja_buf_put(&b, new_.s.p, new_.s.n);
            if (i == s.s.n) { i++; break; }
            size_t k = 1;
            while (i + k < s.s.n && ((unsigned char)s.s.p[i + k] & 0xC0) == 0x80) k++;
            jinja_buf_put(&b, s.s.p + i, k);
            i += k;
        }
        if (i < s.s.n) jinja_buf_put(&b, s.s.p + i, s.s.n - i);
    } else {
        while (i < s.s.n) {
            if ((count < 0 || done < count) && i + old.s.n <= s.s.n && !memcmp(s.s.p + i, old.s.p, old.s.n)) {
                jinja_buf_put(&b, new_.s.p, new_.s.n);
                i += old.s.n;
                done++;
            } else {
                jinja_buf_put(&b, s.s.p + i, 1);
                i++;
            }
        }
    }
    if (b.over) jinja_fail(e, NULL, "the result of replace is too large");
    return jv_strn(b.p, b.n);
}

static jv split(jinja_eval *e, jv s, jv sep, int64_t maxsplit) {
    jv l = jv_new_list(e->a, 0);
    const char *p = s.s.p;
    size_t n = s.s.n, i = 0;
    if (sep.t != JV_STR) {   // runs of whitespace, no empty parts
        size_t k;
        for (;;) {
            while (i < n && py_space(cp_at(p, n, i, &k))) i += k;
            if (i >= n) break;
            if (maxsplit >= 0 && (int64_t)l.l->n >= maxsplit) {
                jv_list_push(e->a, l.l, strip(jv_strn(p + i, n - i), jv_none(), false, true));
                break;
            }
            size_t st = i;
            while (i < n && !py_space(cp_at(p, n, i, &k))) i += k;
            jv_list_push(e->a, l.l, jv_strn(p + st, i - st));
        }
        return l;
    }
    size_t st = 0;
    while (i + sep.s.n <= n) {
        if ((maxsplit < 0 || (int64_t)l.l->n < maxsplit) && !memcmp(p + i, sep.s.p, sep.s.n)) {
            jv_list_push(e->a, l.l, jv_strn(p + st, i - st));
            i += sep.s.n;
            st = i;
        } else {
            i++;
        }
    }
    jv_list_push(e->a, l.l, jv_strn(p + st, n - st));
    return l;
}

static bool has_prefix(jv s, jv p, bool suffix) {
    if (p.t != JV_STR || p.s.n > s.s.n) return false;
    return !memcmp(s.s.p + (suffix ? s.s.n - p.s.n : 0), p.s.p, p.s.n);
}

jv jinja_escape(jinja_eval *e, jv s) {
    if (s.markup) return s;
    jinja_buf b = {.a = e->a};
    jinja_buf_put(&b, "", 0);
    for (size_t i = 0; i < s.s.n; i++) {
        switch (s.s.p[i]) {
        case '&': jinja_buf_puts(&b, "&amp;"); break;
        case '<': jinja_buf_puts(&b, "&lt;"); break;
        case '>': jinja_buf_puts(&b, "&gt;"); break;
        case '"': jinja_buf_puts(&b, "&#34;"); break;
        case '\'': jinja_buf_puts(&b, "&#39;"); break;
        default: jinja_buf_put(&b, s.s.p + i, 1);
        }
    }
    jv r = jv_strn(b.p, b.n);
    r.markup = true;
    return r;
}

// Jinja2's indent: every line but the first (and blank ones unless blank) gets the prefix.
static jv indent(jinja_eval *e, jv s, jv width, bool first, bool blank) {
    jv pre = width.t == JV_STR ? width : jv_strn("", 0);
    char *spaces = NULL;
    if (width.t != JV_STR) {
        int64_t w = width.t == JV_INT ? width.i : 4;
        if (w < 0) w = 0;
        if (w > 4096) w = 4096;
        spaces = jinja_alloc(e->a, (size_t)w + 1);
        memset(spaces, ' ', (size_t)w);
        pre = jv_strn(spaces, (size_t)w);
    }
    jinja_buf b = {.a = e->a, .limit = e->lim.max_output};
    jinja_buf_put(&b, "", 0);
    if (first) jinja_buf_put(&b, pre.s.p, pre.s.n);
    size_t st = 0;
    bool first_line = true;
    for (size_t i = 0; i <= s.s.n; i++) {
        if (i < s.s.n && s.s.p[i] != '\n') continue;
        if (!first_line) {
            jinja_buf_puts(&b, "\n");
            if (i > st || blank) jinja_buf_put(&b, pre.s.p, pre.s.n);
        }
        jinja_buf_put(&b, s.s.p + st, i - st);
        first_line = false;
        st = i + 1;
    }
    if (b.over) jinja_fail(e, NULL, "the result of indent is too large");
    return jv_strn(b.p, b.n);
}

// ---- sequences ---------------------------------------------------------------------------------
static jv lower_if(jinja_eval *e, jv v, bool case_sensitive) {
    return !case_sensitive && v.t == JV_STR ? map_case(e, v, 0) : v;
}

// The value of attribute path "a.b" of v (as Jinja2's make_attrgetter).
static jv attr_path(jinja_eval *e, const jinja_node *n, jv v, jv path) {
    if (path.t == JV_INT) return jinja_getattr(e, n, v, path);
    size_t len;
    const char *p = want_str(e, n, path, "attribute", &len);
    size_t st = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '.') continue;
        jv key = jv_strn(p + st, i - st);
        bool digits = i > st;
        for (size_t k = st; k < i; k++) digits &= p[k] >= '0' && p[k] <= '9';
        if (digits) key = jv_int(strtoll(p + st, NULL, 10));
        if (v.t == JV_UNDEF) return v;
        v = jinja_getattr(e, n, v, key);
        st = i + 1;
    }
    return v;
}

// How sort and dictsort order: by the item, an attribute of it, or one half of (key, value)
// pairs; keys compared case-insensitively unless case_sensitive.
typedef struct {
    jv attr;           // JV_NONE: the item itself
    int pair_index;    // dictsort: 0 by key, 1 by value; -1: not pairs
    bool case_sensitive, reverse;
} sort_order;

typedef struct {
    jv key, item;
} keyed;

// Python's sorted(): stable, also with reverse (equal keys keep their order). A merge sort on
// keys computed once.
static jv sorted(jinja_eval *e, const jinja_node *n, jv_list *items, sort_order o) {
    size_t count = items->n;
    for (size_t k = count; k > 1; k >>= 1) jinja_work(e, n, count * sizeof(jv));   // n log n comparisons
    keyed *v = jinja_alloc(e->a, (count ? count : 1) * sizeof *v), *tmp = jinja_alloc(e->a, (count ? count : 1) * sizeof *tmp);
    for (size_t i = 0; i < count; i++) {
        jv key = items->v[i];
        if (o.pair_index >= 0) key = key.l->v[o.pair_index];
        else if (o.attr.t != JV_NONE) key = attr_path(e, n, key, o.attr);
        v[i] = (keyed){lower_if(e, key, o.case_sensitive), items->v[i]};
    }
    for (size_t w = 1; w < count; w *= 2) {
        for (size_t lo = 0; lo < count; lo += 2 * w) {
            size_t mid = lo + w < count ? lo + w : count, hi = lo + 2 * w < count ? lo + 2 * w : count;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c = jv_compare(v[j].key, v[i].key);
                if (c == -2) jinja_fail(e, n, "cannot sort '%s' and '%s'", jv_type_name(v[j].key), jv_type_name(v[i].key));
                tmp[k++] = (o.reverse ? c > 0 : c < 0) ? v[j++] : v[i++];   // ties: the earlier one first
            }
            while (i < mid) tmp[k++] = v[i++];
            while (j < hi) tmp[k++] = v[j++];
        }
        memcpy(v, tmp, count * sizeof *v);
    }
    jv l = jv_new_list(e->a, count);
    for (size_t i = 0; i < count; i++) jv_list_push(e->a, l.l, v[i].item);
    return l;
}

static jv items_of(jinja_eval *e, const jinja_node *n, jv d) {
    if (d.t == JV_UNDEF) return jv_new_list(e->a, 0);
    if (d.t != JV_DICT && d.t != JV_NS) jinja_fail(e, n, "items: expected a mapping, got '%s'", jv_type_name(d));
    jv l = jv_new_list(e->a, d.d->n);
    for (size_t i = 0; i < d.d->n; i++) {
        jv pair = jv_new_list(e->a, 2);
        pair.l->tuple = true;
        jv_list_push(e->a, pair.l, d.d->k[i]);
        jv_list_push(e->a, pair.l, d.d->v[i]);
        jv_list_push(e->a, l.l, pair);
    }
    return l;
}

static int64_t length(jinja_eval *e, const jinja_node *n, jv v) {
    switch (v.t) {
    case JV_UNDEF: return 0;
    case JV_STR: return (int64_t)jinja_utf8_len(v.s.p, v.s.n);
    case JV_LIST: if (!v.l->generator) return (int64_t)v.l->n; break;
    case JV_DICT: case JV_NS: return (int64_t)v.d->n;
    default: break;
    }
    jinja_fail(e, n, "object of type '%s' has no len()", jv_type_name(v));
}

// select/reject/selectattr/rejectattr: items whose test (or truth) is `keep`.
static jv select_items(jinja_eval *e, const jinja_node *n, jv in, const args *a, bool by_attr, bool keep) {
    jv_list *items = jv_truthy(in) ? jinja_iterable(e, n, in) : jv_new_list(e->a, 0).l;   // `if seq:` in Jinja2
    size_t first = by_attr ? 1 : 0;
    jv attr = by_attr ? arg(a, 0, NULL, jv_undef(NULL)) : jv_undef(NULL);
    if (by_attr && attr.t == JV_UNDEF) jinja_fail(e, n, "selectattr/rejectattr need an attribute name");
    jv test = a->npos > first ? a->pos[first] : jv_undef(NULL);
    char name[64] = "";
    if (test.t == JV_STR) snprintf(name, sizeof name, "%.*s", (int)(test.s.n > 60 ? 60 : test.s.n), test.s.p);
    else if (test.t != JV_UNDEF) jinja_fail(e, n, "the test to select with must be a name");
    jv out = jv_new_list(e->a, 0);
    for (size_t i = 0; i < items->n; i++) {
        jinja_step(e, n);
        jv v = by_attr ? attr_path(e, n, items->v[i], attr) : items->v[i];
        bool r;
        if (!name[0]) r = jv_truthy(v);
        else if (!jinja_test(e, n, name, v, a->pos + first + 1, a->npos > first + 1 ? a->npos - first - 1 : 0, &r))
            jinja_fail(e, n, "no test named '%s'", name);
        if (r == keep) jv_list_push(e->a, out.l, items->v[i]);
    }
    out.l->generator = true;
    return out;
}

static jv to_json(jinja_eval *e, const jinja_node *n, jv v, const args *a) {
    jv_json_opts o = {.indent = -1, .item_sep = ", ", .key_sep = ": "};
    o.ensure_ascii = jv_truthy(arg(a, 0, "ensure_ascii", jv_bool(false)));
    jv ind = arg(a, 1, "indent", jv_none());
    if (ind.t == JV_INT || ind.t == JV_BOOL) {
        o.indent = (int)(ind.t == JV_INT ? (ind.i < 0 ? 0 : ind.i > 64 ? 64 : ind.i) : ind.b);
        o.item_sep = ",";
    } else if (ind.t != JV_NONE) {
        jinja_fail(e, n, "tojson: indent must be an integer");
    }
    jv sep = arg(a, 2, "separators", jv_none());
    if (sep.t == JV_LIST && sep.l->n == 2 && sep.l->v[0].t == JV_STR && sep.l->v[1].t == JV_STR) {
        jv s0 = sep.l->v[0], s1 = sep.l->v[1];
        char *p0 = jinja_alloc(e->a, s0.s.n + 1), *p1 = jinja_alloc(e->a, s1.s.n + 1);
        memcpy(p0, s0.s.p, s0.s.n);
        memcpy(p1, s1.s.p, s1.s.n);
        o.item_sep = p0;
        o.key_sep = p1;
    } else if (sep.t != JV_NONE) {
        jinja_fail(e, n, "tojson: separators must be two strings");
    }
    o.sort_keys = jv_truthy(arg(a, 3, "sort_keys", jv_bool(false)));
    jinja_buf b = {.a = e->a, .limit = e->lim.max_output};
    jinja_buf_put(&b, "", 0);
    jv bad;
    if (!jv_to_json(&b, v, &o, 0, &bad)) jinja_fail(e, n, "Object of type %s is not JSON serializable", jv_type_name(bad));
    if (b.over) jinja_fail(e, n, "the JSON text is larger than %zu bytes", e->lim.max_output);
    return jv_strn(b.p, b.n);
}

static jv to_int(jv v, jv def) {
    if (v.t == JV_INT) return v;
    if (v.t == JV_BOOL) return jv_int(v.b);
    if (v.t == JV_FLOAT) return isfinite(v.f) && fabs(v.f) < 9e18 ? jv_int((int64_t)v.f) : def;
    if (v.t == JV_STR) {
        char buf[64];
        size_t n = v.s.n < sizeof buf - 1 ? v.s.n : sizeof buf - 1;
        memcpy(buf, v.s.p, n);
        buf[n] = 0;
        char *end;
        long long i = strtoll(buf, &end, 10);
        while (*end && py_space((unsigned char)*end)) end++;
        if (end != buf && !*end) return jv_int(i);
        double f = strtod(buf, &end);
        while (*end && py_space((unsigned char)*end)) end++;
        if (end != buf && !*end && isfinite(f) && fabs(f) < 9e18) return jv_int((int64_t)f);
    }
    return def;
}

bool jinja_filter(jinja_eval *e, const jinja_node *n, const char *name, jv in, const jv *pos,
                  size_t npos, const jv *kw_names, const jv *kw_vals, size_t nkw, jv *out) {
    args A = {pos, kw_names, kw_vals, npos, nkw}, *a = &A;
    size_t len;
    jinja_work(e, n, jinja_size(in));
    if (is(name, "default") || is(name, "d")) {
        bool boolean = jv_truthy(arg(a, 1, "boolean", jv_bool(false)));
        *out = in.t == JV_UNDEF || (boolean && !jv_truthy(in)) ? arg(a, 0, "default_value", jv_strn("", 0)) : in;
    } else if (is(name, "length") || is(name, "count")) {
        *out = jv_int(length(e, n, in));
    } else if (is(name, "string")) {
        *out = jv_to_str(e->a, in);
    } else if (is(name, "tojson")) {
        *out = to_json(e, n, in, a);
    } else if (is(name, "trim")) {
        want_str(e, n, in = jv_to_str(e->a, in), "trim", &len);
        *out = strip(in, arg(a, 0, "chars", jv_none()), true, true);
    } else if (is(name, "lower") || is(name, "upper") || is(name, "capitalize") || is(name, "title")) {
        in = jv_to_str(e->a, in);
        *out = map_case(e, in, is(name, "lower") ? 0 : is(name, "upper") ? 1 : is(name, "capitalize") ? 2 : 3);
    } else if (is(name, "replace")) {
        in = jv_to_str(e->a, in);
        jv old = jv_to_str(e->a, arg(a, 0, "old", jv_undef(NULL))), new_ = jv_to_str(e->a, arg(a, 1, "new", jv_undef(NULL)));
        jv count = arg(a, 2, "count", jv_none());
        *out = replace(e, in, old, new_, count.t == JV_INT ? count.i : -1);
    } else if (is(name, "join")) {
        jv_list *items = jinja_iterable(e, n, in);
        jv sep = jv_to_str(e->a, arg(a, 0, "d", jv_strn("", 0)));
        jv attr = arg(a, 1, "attribute", jv_none());
        jinja_buf b = {.a = e->a, .limit = e->lim.max_output};
        jinja_buf_put(&b, "", 0);
        for (size_t i = 0; i < items->n; i++) {
            if (i) jinja_buf_put(&b, sep.s.p, sep.s.n);
            jv_print(&b, attr.t == JV_NONE ? items->v[i] : attr_path(e, n, items->v[i], attr));
        }
        if (b.over) jinja_fail(e, n, "the result of join is too large");
        *out = jv_strn(b.p, b.n);
    } else if (is(name, "first") || is(name, "last")) {
        jv_list *items = jinja_iterable(e, n, in);
        *out = !items->n ? jv_undef(NULL) : items->v[is(name, "first") ? 0 : items->n - 1];
    } else if (is(name, "list")) {
        jv_list *items = jinja_iterable(e, n, in);
        *out = jv_new_list(e->a, items->n);
        for (size_t i = 0; i < items->n; i++) jv_list_push(e->a, out->l, items->v[i]);
    } else if (is(name, "items")) {
        *out = items_of(e, n, in);
        out->l->generator = true;
    } else if (is(name, "dictsort")) {
        jv items = items_of(e, n, in);
        jv by = arg(a, 1, "by", jv_strn("key", 3));
        sort_order o = {.attr = jv_none(), .case_sensitive = jv_truthy(arg(a, 0, "case_sensitive", jv_bool(false))),
                        .reverse = jv_truthy(arg(a, 2, "reverse", jv_bool(false)))};
        o.pair_index = by.t == JV_STR && by.s.n == 5 && !memcmp(by.s.p, "value", 5) ? 1 : 0;
        *out = sorted(e, n, items.l, o);
    } else if (is(name, "sort")) {
        sort_order o = {.attr = arg(a, 2, "attribute", jv_none()), .pair_index = -1,
                        .case_sensitive = jv_truthy(arg(a, 1, "case_sensitive", jv_bool(false))),
                        .reverse = jv_truthy(arg(a, 0, "reverse", jv_bool(false)))};
        *out = sorted(e, n, jinja_iterable(e, n, in), o);
    } else if (is(name, "unique")) {
        jv_list *items = jinja_iterable(e, n, in);
        bool cs = jv_truthy(arg(a, 0, "case_sensitive", jv_bool(false)));
        jv attr = arg(a, 1, "attribute", jv_none());
        *out = jv_new_list(e->a, 0);
        jv seen = jv_new_list(e->a, 0);
        for (size_t i = 0; i < items->n; i++) {
            jinja_step(e, n);
            jv key = lower_if(e, attr.t == JV_NONE ? items->v[i] : attr_path(e, n, items->v[i], attr), cs);
            jinja_work(e, n, jinja_size(seen));   // a linear search: quadratic in all
            bool dup = false;
            for (size_t k = 0; k < seen.l->n && !dup; k++) dup = jv_eq(seen.l->v[k], key);
            if (dup) continue;
            jv_list_push(e->a, seen.l, key);
            jv_list_push(e->a, out->l, items->v[i]);
        }
        out->l->generator = true;
    } else if (is(name, "reverse")) {
        if (in.t == JV_STR) {
            jv_list *cs = jinja_iterable(e, n, in);
            char *p = jinja_alloc(e->a, in.s.n + 1);
            size_t o = 0;
            for (size_t i = cs->n; i-- > 0;) { memcpy(p + o, cs->v[i].s.p, cs->v[i].s.n); o += cs->v[i].s.n; }
            *out = jv_strn(p, o);
        } else {
            jv_list *items = jinja_iterable(e, n, in);
            *out = jv_new_list(e->a, items->n);
            for (size_t i = items->n; i-- > 0;) jv_list_push(e->a, out->l, items->v[i]);
            out->l->generator = true;   // Python's reversed()
        }
    } else if (is(name, "map")) {
        jv_list *items = jv_truthy(in) ? jinja_iterable(e, n, in) : jv_new_list(e->a, 0).l;
        jv attr = arg(a, npos, "attribute", jv_none());   // only by keyword
        jv def = arg(a, npos, "default", jv_undef(NULL));
        *out = jv_new_list(e->a, items->n);
        for (size_t i = 0; i < items->n; i++) {
            jinja_step(e, n);
            jv v;
            if (attr.t != JV_NONE) {
                v = attr_path(e, n, items->v[i], attr);
                if (v.t == JV_UNDEF && def.t != JV_UNDEF) v = def;
            } else {
                if (!npos || pos[0].t != JV_STR) jinja_fail(e, n, "map needs a filter name or attribute=");
                char f[64];
                snprintf(f, sizeof f, "%.*s", (int)(pos[0].s.n > 60 ? 60 : pos[0].s.n), pos[0].s.p);
                if (is(f, "map")) jinja_fail(e, n, "map of map is not supported");
                if (!jinja_filter(e, n, f, items->v[i], pos + 1, npos - 1, kw_names, kw_vals, nkw, &v))
                    jinja_fail(e, n, "no filter named '%s'", f);
            }
            jv_list_push(e->a, out->l, v);
        }
        out->l->generator = true;
    } else if (is(name, "select") || is(name, "reject")) {
        *out = select_items(e, n, in, a, false, is(name, "select"));
    } else if (is(name, "selectattr") || is(name, "rejectattr")) {
        *out = select_items(e, n, in, a, true, is(name, "selectattr"));
    } else if (is(name, "int")) {
        *out = to_int(in, arg(a, 0, "default", jv_int(0)));
    } else if (is(name, "float")) {
        jv def = arg(a, 0, "default", jv_float(0));
        if (jv_is_number(in)) *out = jv_float(jv_as_double(in));
        else if (in.t == JV_STR) {
            char buf[64];
            size_t k = in.s.n < sizeof buf - 1 ? in.s.n : sizeof buf - 1;
            memcpy(buf, in.s.p, k);
            buf[k] = 0;
            char *end;
            double f = strtod(buf, &end);
            *out = end != buf && !*end ? jv_float(f) : def;
        } else *out = def;
    } else if (is(name, "abs")) {
        if (in.t == JV_FLOAT) *out = jv_float(fabs(in.f));
        else if (in.t == JV_INT && in.i != INT64_MIN) *out = jv_int(in.i < 0 ? -in.i : in.i);
        else if (in.t == JV_BOOL) *out = jv_int(in.b);
        else jinja_fail(e, n, "bad operand type for abs(): '%s'", jv_type_name(in));
    } else if (is(name, "round")) {
        if (!jv_is_number(in)) jinja_fail(e, n, "round: expected a number, got '%s'", jv_type_name(in));
        int64_t prec = want_int(e, n, arg(a, 0, "precision", jv_int(0)), "round");
        jv method = arg(a, 1, "method", jv_strn("common", 6));
        double m = pow(10, (double)(prec < -20 ? -20 : prec > 20 ? 20 : prec)), x = jv_as_double(in) * m;
        if (method.t == JV_STR && method.s.n == 5 && !memcmp(method.s.p, "floor", 5)) x = floor(x);
        else if (method.t == JV_STR && method.s.n == 4 && !memcmp(method.s.p, "ceil", 4)) x = ceil(x);
        else x = nearbyint(x);
        *out = jv_float(x / m);
    } else if (is(name, "sum") || is(name, "min") || is(name, "max")) {
        jv_list *items = jinja_iterable(e, n, in);
        jv attr = arg(a, is(name, "sum") ? 0 : 1, "attribute", jv_none());
        if (is(name, "sum")) {
            jv acc = arg(a, 1, "start", jv_int(0));
            for (size_t i = 0; i < items->n; i++) {
                jv v = attr.t == JV_NONE ? items->v[i] : attr_path(e, n, items->v[i], attr);
                if (!jv_is_number(v) || !jv_is_number(acc)) jinja_fail(e, n, "sum: '%s' is not a number", jv_type_name(v));
                acc = acc.t == JV_INT && v.t != JV_FLOAT && !__builtin_add_overflow(acc.i, v.t == JV_INT ? v.i : v.b, &acc.i)
                          ? acc : jv_float(jv_as_double(acc) + jv_as_double(v));
            }
            *out = acc;
        } else {
            bool cs = jv_truthy(arg(a, 0, "case_sensitive", jv_bool(false)));
            *out = jv_undef(NULL);
            jv best_key = jv_undef(NULL);
            for (size_t i = 0; i < items->n; i++) {
                jv key = lower_if(e, attr.t == JV_NONE ? items->v[i] : attr_path(e, n, items->v[i], attr), cs);
                int c = i ? jv_compare(key, best_key) : 0;
                if (c == -2) jinja_fail(e, n, "%s: cannot compare '%s' and '%s'", name, jv_type_name(key), jv_type_name(best_key));
                if (!i || (is(name, "min") ? c < 0 : c > 0)) { *out = items->v[i]; best_key = key; }
            }
        }
    } else if (is(name, "indent")) {
        in = jv_to_str(e->a, in);
        *out = indent(e, in, arg(a, 0, "width", jv_int(4)), jv_truthy(arg(a, 1, "first", jv_bool(false))),
                      jv_truthy(arg(a, 2, "blank", jv_bool(false))));
    } else if (is(name, "batch")) {
        jv_list *items = jinja_iterable(e, n, in);
        int64_t size = want_int(e, n, arg(a, 0, "linecount", jv_undef(NULL)), "batch");
        jv fill = arg(a, 1, "fill_with", jv_none());
        if (size <= 0) jinja_fail(e, n, "batch: the size must be positive");
        *out = jv_new_list(e->a, 0);
        jv cur = jv_new_list(e->a, 0);
        for (size_t i = 0; i < items->n; i++) {
            jv_list_push(e->a, cur.l, items->v[i]);
            if ((int64_t)cur.l->n == size) { jv_list_push(e->a, out->l, cur); cur = jv_new_list(e->a, 0); }
        }
        if (cur.l->n) {
            while (fill.t != JV_NONE && (int64_t)cur.l->n < size) jv_list_push(e->a, cur.l, fill);
            jv_list_push(e->a, out->l, cur);
        }
    } else if (is(name, "safe")) {
        *out = jv_to_str(e->a, in);
        out->markup = true;
    } else if (is(name, "escape") || is(name, "e") || is(name, "forceescape")) {
        *out = jinja_escape(e, jv_to_str(e->a, in));
    } else if (is(name, "attr")) {   // an attribute only, never an item: dicts have none
        *out = in.t == JV_DICT || in.t == JV_NS ? jv_undef(NULL) : jinja_getattr(e, n, in, arg(a, 0, "name", jv_undef(NULL)));
    } else if (is(name, "pprint")) {
        jinja_buf b = {.a = e->a};
        jinja_buf_put(&b, "", 0);
        jv_repr(&b, in);
        *out = jv_strn(b.p, b.n);
    } else if (is(name, "wordcount")) {
        *out = jv_int((int64_t)split(e, jv_to_str(e->a, in), jv_none(), -1).l->n);
    } else if (is(name, "center")) {
        in = jv_to_str(e->a, in);
        int64_t w = want_int(e, n, arg(a, 0, "width", jv_int(80)), "center"), l = length(e, n, in);
        if (w > 4096) w = 4096;
        if (w <= l) { *out = in; return true; }
        int64_t left = (w - l) / 2 + ((w - l) & w & 1), right = w - l - left;   // as Python's str.center
        char *p = jinja_alloc(e->a, (size_t)(w - l) + in.s.n + 1);
        memset(p, ' ', (size_t)left);
        memcpy(p + left, in.s.p, in.s.n);
        memset(p + left + in.s.n, ' ', (size_t)right);
        *out = jv_strn(p, (size_t)(w - l) + in.s.n);
    } else {
        return false;
    }
    return true;
}

// ---- tests -------------------------------------------------------------------------------------
bool jinja_test(jinja_eval *e, const jinja_node *n, const char *name, jv v, const jv *pos, size_t npos, bool *out) {
    jv other = npos ? pos[0] : jv_undef(NULL);
    jinja_work(e, n, jinja_size(v) + jinja_size(other));
    if (is(name, "defined")) *out = v.t != JV_UNDEF;
    else if (is(name, "undefined")) *out = v.t == JV_UNDEF;
    else if (is(name, "none")) *out = v.t == JV_NONE;
    else if (is(name, "boolean")) *out = v.t == JV_BOOL;
    else if (is(name, "true")) *out = v.t == JV_BOOL && v.b;
    else if (is(name, "false")) *out = v.t == JV_BOOL && !v.b;
    else if (is(name, "integer")) *out = v.t == JV_INT;
    else if (is(name, "float")) *out = v.t == JV_FLOAT;
    else if (is(name, "number")) *out = jv_is_number(v);
    else if (is(name, "string")) *out = v.t == JV_STR;
    else if (is(name, "mapping")) *out = v.t == JV_DICT;
    else if (is(name, "iterable")) *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF;
    else if (is(name, "sequence")) *out = v.t == JV_STR || (v.t == JV_LIST && !v.l->generator) || v.t == JV_DICT || v.t == JV_UNDEF;
    else if (is(name, "callable")) *out = v.t == JV_MACRO || v.t == JV_FUNC;
    else if (is(name, "escaped")) *out = false;
    else if (is(name, "sameas")) *out = v.t == other.t && jv_eq(v, other);
    else if (is(name, "eq") || is(name, "equalto") || is(name, "==")) *out = jv_eq(v, other);
    else if (is(name, "ne") || is(name, "!=")) *out = !jv_eq(v, other);
    else if (is(name, "lt") || is(name, "lessthan") || is(name, "<") || is(name, "le") || is(name, "<=") ||
             is(name, "gt") || is(name, "greaterthan") || is(name, ">") || is(name, "ge") || is(name, ">=")) {
        int c = jv_compare(v, other);
        if (c == -2) jinja_fail(e, n, "cannot compare '%s' and '%s'", jv_type_name(v), jv_type_name(other));
        bool lt = name[0] == 'l' || name[0] == '<', or_equal = is(name, "le") || is(name, "ge") || name[1] == '=';
        *out = lt ? (or_equal ? c <= 0 : c < 0) : (or_equal ? c >= 0 : c > 0);
    } else if (is(name, "in")) {
        if (other.t == JV_STR && v.t == JV_STR) {
            *out = false;
            for (size_t i = 0; i + v.s.n <= other.s.n && !*out; i++) *out = !memcmp(other.s.p + i, v.s.p, v.s.n);
        } else if (other.t == JV_LIST || other.t == JV_DICT) {
            *out = false;
            jv_list *items = jinja_iterable(e, n, other);
            for (size_t i = 0; i < items->n && !*out; i++) *out = jv_eq(items->v[i], v);
        } else {
            jinja_fail(e, n, "argument of type '%s' is not iterable", jv_type_name(other));
        }
    } else if (is(name, "odd") || is(name, "even") || is(name, "divisibleby")) {
        int64_t x = want_int(e, n, v, name), d = is(name, "divisibleby") ? want_int(e, n, other, name) : 2;
        if (d == 0) jinja_fail(e, n, "integer modulo by zero");
        bool div = d == -1 || x % d == 0;
        *out = is(name, "odd") ? !div : div;
    } else if (is(name, "lower") || is(name, "upper")) {
        size_t len;
        const char *s = want_str(e, n, v, name, &len);
        bool any = false, ok = true;
        for (size_t i = 0; i < len; i++) {
            bool lo = s[i] >= 'a' && s[i] <= 'z', up = s[i] >= 'A' && s[i] <= 'Z';
            any |= lo || up;
            if (is(name, "lower") ? up : lo) ok = false;
        }
        *out = any && ok;
    } else {
        return false;
    }
    return true;
}

// ---- methods -----------------------------------------------------------------------------------
static const char *const mutating[] = {
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault",
    "popitem", "__setitem__", "__delitem__", NULL,
};

static jv str_find(jv s, jv sub, bool last) {
    if (sub.s.n > s.s.n) return jv_int(-1);
    int64_t found = -1;
    for (size_t i = 0; i + sub.s.n <= s.s.n; i++)
        if (!memcmp(s.s.p + i, sub.s.p, sub.s.n)) {
            found = (int64_t)jinja_utf8_len(s.s.p, i);
            if (!last) break;
        }
    return jv_int(found);
}

static bool string_method(jinja_eval *e, const jinja_node *n, jv s, const char *name, const args *a, jv *out) {
    size_t len;
    if (is(name, "strip") || is(name, "lstrip") || is(name, "rstrip")) {
        jv chars = arg(a, 0, "chars", jv_none());
        if (chars.t != JV_NONE && chars.t != JV_STR) jinja_fail(e, n, "%s arg must be None or str", name);
        *out = strip(s, chars, name[0] != 'r', name[0] != 'l');
    } else if (is(name, "split") || is(name, "rsplit")) {
        jv sep = arg(a, 0, "sep", jv_none());
        if (sep.t != JV_NONE) want_str(e, n, sep, name, &len);
        if (sep.t == JV_STR && sep.s.n == 0) jinja_fail(e, n, "empty separator");
        int64_t max = want_int(e, n, arg(a, 1, "maxsplit", jv_int(-1)), name);
        if (is(name, "rsplit") && max >= 0) {
            // split from the right: split fully, then join the leading parts back
            jv all = split(e, s, sep, -1);
            if ((int64_t)all.l->n - 1 <= max) { *out = all; return true; }
            size_t keep = all.l->n - (size_t)max;
            if (sep.t != JV_STR) jinja_fail(e, n, "rsplit with maxsplit and no separator is not supported");
            jinja_buf b = {.a = e->a};
            jinja_buf_put(&b, "", 0);
            for (size_t i = 0; i < keep; i++) {
                if (i) jinja_buf_put(&b, sep.s.p, sep.s.n);
                jinja_buf_put(&b, all.l->v[i].s.p, all.l->v[i].s.n);
            }
            *out = jv_new_list(e->a, (size_t)max + 1);
            jv_list_push(e->a, out->l, jv_strn(b.p, b.n));
            for (size_t i = keep; i < all.l->n; i++) jv_list_push(e->a, out->l, all.l->v[i]);
        } else {
            *out = split(e, s, sep, max);
        }
    } else if (is(name, "splitlines")) {
        *out = split(e, s, jv_strn("\n", 1), -1);
        if (out->l->n && out->l->v[out->l->n - 1].s.n == 0) out->l->n--;
    } else if (is(name, "startswith") || is(name, "endswith")) {
        jv p = arg(a, 0, "prefix", jv_undef(NULL));
        bool suffix = name[0] == 'e';
        if (p.t == JV_LIST) {
            *out = jv_bool(false);
            for (size_t i = 0; i < p.l->n; i++)
                if (has_prefix(s, p.l->v[i], suffix)) *out = jv_bool(true);
        } else {
            want_str(e, n, p, name, &len);
            *out = jv_bool(has_prefix(s, p, suffix));
        }
    } else if (is(name, "replace")) {
        jv old = arg(a, 0, "old", jv_undef(NULL)), new_ = arg(a, 1, "new", jv_undef(NULL));
        want_str(e, n, old, name, &len);
        want_str(e, n, new_, name, &len);
        *out = replace(e, s, old, new_, want_int(e, n, arg(a, 2, "count", jv_int(-1)), name));
    } else if (is(name, "lower") || is(name, "upper") || is(name, "capitalize") || is(name, "title")) {
        *out = map_case(e, s, is(name, "lower") ? 0 : is(name, "upper") ? 1 : is(name, "capitalize") ? 2 : 3);
    } else if (is(name, "find") || is(name, "rfind") || is(name, "index") || is(name, "rindex") || is(name, "count")) {
        jv sub = arg(a, 0, "sub", jv_undef(NULL));
        want_str(e, n, sub, name, &len);
        if (is(name, "count")) {
            int64_t c = 0;
            if (!sub.s.n) c = (int64_t)jinja_utf8_len(s.s.p, s.s.n) + 1;
            else for (size_t i = 0; i + sub.s.n <= s.s.n;)
                if (!memcmp(s.s.p + i, sub.s.p, sub.s.n)) { c++; i += sub.s.n; } else i++;
            *out = jv_int(c);
        } else {
            *out = str_find(s, sub, name[0] == 'r');
            if (name[name[0] == 'r'] == 'i' && out->i < 0) jinja_fail(e, n, "substring not found");
        }
    } else if (is(name, "join")) {
        jv_list *items = jinja_iterable(e, n, arg(a, 0, "iterable", jv_undef(NULL)));
        jinja_buf b = {.a = e->a, .limit = e->lim.max_output};
        jinja_buf_put(&b, "", 0);
        for (size_t i = 0; i < items->n; i++) {
            if (items->v[i].t != JV_STR) jinja_fail(e, n, "sequence item %zu: expected str instance, %s found", i, jv_type_name(items->v[i]));
            if (i) jinja_buf_put(&b, s.s.p, s.s.n);
            jinja_buf_put(&b, items->v[i].s.p, items->v[i].s.n);
        }
        if (b.over) jinja_fail(e, n, "the result of join is too large");
        *out = jv_strn(b.p, b.n);
    } else if (is(name, "removeprefix") || is(name, "removesuffix")) {
        jv p = arg(a, 0, "prefix", jv_undef(NULL));
        want_str(e, n, p, name, &len);
        bool suffix = name[6] == 's';
        *out = has_prefix(s, p, suffix) ? jv_strn(s.s.p + (suffix ? 0 : p.s.n), s.s.n - p.s.n) : s;
    } else if (is(name, "isdigit") || is(name, "isalpha") || is(name, "isalnum") || is(name, "isspace") ||
               is(name, "islower") || is(name, "isupper")) {
        if (is(name, "islower") || is(name, "isupper")) {
            bool r;
            jinja_test(e, n, name + 2, s, NULL, 0, &r);
            *out = jv_bool(r);
            return true;
        }
        bool ok = s.s.n > 0;
        for (size_t i = 0; i < s.s.n && ok; i++) {
            unsigned char c = (unsigned char)s.s.p[i];
            bool d = c >= '0' && c <= '9', al = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            ok = is(name, "isdigit") ? d : is(name, "isalpha") ? al : is(name, "isalnum") ? d || al : py_space(c);
        }
        *out = jv_bool(ok);
    } else if (is(name, "format")) {
        jinja_fail(e, n, "str.format is not supported");
    } else {
        return false;
    }
    return true;
}

bool jinja_method(jinja_eval *e, const jinja_node *n, jv obj, const char *name, const jv *pos, size_t npos,
                  const jv *kw_names, const jv *kw_vals, size_t nkw, jv *out) {
    args A = {pos, kw_names, kw_vals, npos, nkw}, *a = &A;
    jinja_work(e, n, jinja_size(obj));
    if (obj.t == JV_STR) return string_method(e, n, obj, name, a, out);
    if (obj.t == JV_LIST || obj.t == JV_DICT)
        for (const char *const *m = mutating; *m; m++)
            if (is(name, *m)) jinja_fail(e, n, "access to attribute '%s' of '%s' object is unsafe", name, jv_type_name(obj));
    if (obj.t == JV_DICT || obj.t == JV_NS) {
        if (is(name, "get")) {
            const jv *v = jv_dict_get(obj.d, arg(a, 0, "key", jv_undef(NULL)));
            *out = v ? *v : arg(a, 1, "default", jv_none());
        } else if (is(name, "items")) {
            *out = items_of(e, n, obj);
        } else if (is(name, "keys") || is(name, "values")) {
            *out = jv_new_list(e->a, obj.d->n);
            for (size_t i = 0; i < obj.d->n; i++) jv_list_push(e->a, out->l, name[0] == 'k' ? obj.d->k[i] : obj.d->v[i]);
        } else if (is(name, "copy")) {
            *out = jv_new_dict(e->a, obj.d->n);
            for (size_t i = 0; i < obj.d->n; i++) jv_dict_set(e->a, out->d, obj.d->k[i], obj.d->v[i]);
        } else {
            return false;
        }
        return true;
    }
    if (obj.t == JV_LIST) {
        jv x = arg(a, 0, "value", jv_undef(NULL));
        if (is(name, "index")) {
            for (size_t i = 0; i < obj.l->n; i++)
                if (jv_eq(obj.l->v[i], x)) { *out = jv_int((int64_t)i); return true; }
            jinja_fail(e, n, "value is not in list");
        } else if (is(name, "count")) {
            int64_t c = 0;
            for (size_t i = 0; i < obj.l->n; i++) c += jv_eq(obj.l->v[i], x);
            *out = jv_int(c);
        } else {
            return false;
        }
        return true;
    }
    if (obj.t == JV_LOOP && is(name, "cycle")) {
        if (!npos) jinja_fail(e, n, "no items for cycling given");
        *out = pos[obj.loop->index % npos];
        return true;
    }
    return false;
}

// ---- globals -----------------------------------------------------------------------------------
static const char *const globals[] = {"raise_exception", "strftime_now", "range", "namespace", "dict", NULL};

bool jinja_is_global(const char *name, size_t n) {
    for (const char *const *g = globals; *g; g++)
        if (strlen(*g) == n && !memcmp(*g, name, n)) return true;
    return false;
}

bool jinja_global(jinja_eval *e, const jinja_node *n, const char *name, const jv *pos, size_t npos,
                  const jv *kw_names, const jv *kw_vals, size_t nkw, jv *out) {
    args A = {pos, kw_names, kw_vals, npos, nkw}, *a = &A;
    if (is(name, "raise_exception")) {
        jv msg = jv_to_str(e->a, arg(a, 0, "message", jv_strn("", 0)));
        jinja_fail(e, n, "the template raised an error: %.*s", (int)(msg.s.n > 400 ? 400 : msg.s.n), msg.s.p);
    } else if (is(name, "strftime_now")) {
        size_t len;
        const char *f = want_str(e, n, arg(a, 0, "format", jv_undef(NULL)), "strftime_now", &len);
        char fmt[256], buf[512];
        if (len >= sizeof fmt) jinja_fail(e, n, "strftime_now: the format is too long");
        memcpy(fmt, f, len);
        fmt[len] = 0;
        time_t t = (time_t)e->now;
        struct tm tm;
        localtime_r(&t, &tm);
        size_t k = strftime(buf, sizeof buf, fmt, &tm);
        char *p = jinja_alloc(e->a, k + 1);
        memcpy(p, buf, k);
        *out = jv_strn(p, k);
    } else if (is(name, "range")) {
        int64_t start = 0, stop, step = 1;
        if (npos == 1) stop = want_int(e, n, pos[0], "range");
        else if (npos == 2 || npos == 3) {
            start = want_int(e, n, pos[0], "range");
            stop = want_int(e, n, pos[1], "range");
            if (npos == 3) step = want_int(e, n, pos[2], "range");
        } else jinja_fail(e, n, "range expects 1 to 3 integers");
        if (step == 0) jinja_fail(e, n, "range() arg 3 must not be zero");
        double count = ceil(((double)stop - (double)start) / (double)step);
        if (count > (double)e->lim.max_steps) jinja_fail(e, n, "range() is too long (more than %lld items)", (long long)e->lim.max_steps);
        *out = jv_new_list(e->a, count > 0 ? (size_t)count : 0);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            jv_list_push(e->a, out->l, jv_int(i));
            if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
        }
    } else if (is(name, "namespace") || is(name, "dict")) {
        *out = jv_new_dict(e->a, nkw);
        if (npos == 1 && (pos[0].t == JV_DICT || pos[0].t == JV_NS))
            for (size_t i = 0; i < pos[0].d->n; i++) jv_dict_set(e->a, out->d, pos[0].d->k[i], pos[0].d->v[i]);
        else if (npos) jinja_fail(e, n, "%s() takes a mapping and keyword arguments", name);
        for (size_t i = 0; i < nkw; i++) jv_dict_set(e->a, out->d, kw_names[i], kw_vals[i]);
        if (is(name, "namespace")) out->t = JV_NS;
    } else {
        return false;
    }
    return true;
}
