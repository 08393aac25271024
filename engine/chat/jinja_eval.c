// Jinja evaluator: runs the tree of jinja_parse with Jinja2's semantics as chat templates meet
// them: the lenient Undefined (prints as nothing, is falsy, loops as empty; its attributes and
// arithmetic fail), scopes (a for loop's body has its own, so `set` inside it does not leak out:
// hence namespace()), macros with defaults and caller(), Python's operators.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja.h"

jinja_limits jinja_default_limits(void) {
    return (jinja_limits){
        .max_depth = 200,
        .max_steps = 5 * 1000 * 1000,
        .max_output = 16u << 20,
        .max_memory = 256u << 20,
    };
}

typedef enum { FLOW_NEXT, FLOW_BREAK, FLOW_CONTINUE } flow;

struct jinja_scope {
    jinja_scope *parent;
    size_t n, cap;
    const char **names;
    size_t *lens;
    jv *vals;
};

typedef struct {
    jinja_eval e;
    jinja_buf out;
    const jinja_node *at;   // the node being run, for errors that have no node at hand
    jv vars;                // the template's variables (messages, bos_token, ...)
} render_state;

_Noreturn void jinja_fail(jinja_eval *e, const jinja_node *n, const char *fmt, ...) {
    int k = n ? snprintf(e->err, e->errlen, "line %d, column %d: ", n->line, n->col) : 0;
    if (k < 0 || (size_t)k >= e->errlen) k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err + k, e->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    jinja_one_line(e->err);
    longjmp(e->fail, 1);
}

void jinja_step(jinja_eval *e, const jinja_node *n) {
    if (++e->steps > e->lim.max_steps)
        jinja_fail(e, n, "the template runs too long (more than %lld steps)", (long long)e->lim.max_steps);
}

void jinja_work(jinja_eval *e, const jinja_node *n, size_t bytes) {
    e->steps += (int64_t)(bytes >> 6);
    jinja_step(e, n);
}

size_t jinja_size(jv v) {
    switch (v.t) {
    case JV_STR: return v.s.n;
    case JV_LIST: return v.l->n * sizeof(jv);
    case JV_DICT: case JV_NS: return v.d->n * 2 * sizeof(jv);
    default: return 0;
    }
}

// ---- scopes ------------------------------------------------------------------------------------
static jinja_scope *scope_new(jinja_eval *e, jinja_scope *parent) {
    jinja_scope *s = jinja_alloc(e->a, sizeof *s);
    s->parent = parent;
    return s;
}

static void scope_set(jinja_eval *e, jinja_scope *s, const char *name, size_t len, jv v) {
    for (size_t i = 0; i < s->n; i++)
        if (s->lens[i] == len && !memcmp(s->names[i], name, len)) {
            s->vals[i] = v;
            return;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **nn = jinja_alloc(e->a, cap * sizeof *nn);
        size_t *nl = jinja_alloc(e->a, cap * sizeof *nl);
        jv *nv = jinja_alloc(e->a, cap * sizeof *nv);
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof *nn);
            memcpy(nl, s->lens, s->n * sizeof *nl);
            memcpy(nv, s->vals, s->n * sizeof *nv);
        }
        s->names = nn;
        s->lens = nl;
        s->vals = nv;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->lens[s->n] = len;
    s->vals[s->n++] = v;
}

static const jv *scope_find(const jinja_scope *s, const char *name, size_t len) {
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (s->lens[i] == len && !memcmp(s->names[i], name, len)) return &s->vals[i];
    return NULL;
}

// The render around an evaluation (jinja_eval is render_state's first member).
static render_state *state(jinja_eval *e) { return (render_state *)e; }

static jv lookup(jinja_eval *e, jinja_scope *s, const jinja_node *n) {
    const jv *v = scope_find(s, n->name, n->name_n);
    if (v) return *v;
    v = jv_dict_find(state(e)->vars.d, n->name, n->name_n);
    if (v) return *v;
    if (jinja_is_global(n->name, n->name_n)) {
        jv f = {.t = JV_FUNC};
        char *fn = jinja_alloc(e->a, n->name_n + 1);
        memcpy(fn, n->name, n->name_n);
        f.func = fn;
        return f;
    }
    char *name = jinja_alloc(e->a, n->name_n + 1);
    memcpy(name, n->name, n->name_n);
    return jv_undef(name);
}

// ---- helpers shared with the filters -----------------------------------------------------------
size_t jinja_utf8_len(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)p[i] & 0xC0) != 0x80;
    return k;
}

// The byte offset of code point i (i <= length).
static size_t utf8_offset(const char *p, size_t n, size_t i) {
    size_t b = 0;
    while (i > 0 && b < n) {
        b++;
        while (b < n && ((unsigned char)p[b] & 0xC0) == 0x80) b++;
        i--;
    }
    return b;
}

static _Noreturn void fail_undefined(jinja_eval *e, const jinja_node *n, jv v) {
    if (v.undef_name) jinja_fail(e, n, "'%s' is undefined", v.undef_name);
    jinja_fail(e, n, "a value is undefined");
}

jv_list *jinja_iterable(jinja_eval *e, const jinja_node *n, jv v) {
    switch (v.t) {
    case JV_UNDEF: return jv_new_list(e->a, 0).l;
    case JV_LIST: return v.l;
    case JV_DICT: case JV_NS: {
        jv l = jv_new_list(e->a, v.d->n);
        for (size_t i = 0; i < v.d->n; i++) jv_list_push(e->a, l.l, v.d->k[i]);
        return l.l;
    }
    case JV_STR: {
        jv l = jv_new_list(e->a, v.s.n);
        for (size_t i = 0; i < v.s.n;) {
            size_t k = 1;
            while (i + k < v.s.n && ((unsigned char)v.s.p[i + k] & 0xC0) == 0x80) k++;
            jv_list_push(e->a, l.l, jv_strn(v.s.p + i, k));
            i += k;
        }
        return l.l;
    }
    default: jinja_fail(e, n, "'%s' object is not iterable", jv_type_name(v));
    }
}

static jv loop_attr(jinja_eval *e, const jinja_node *n, const struct jinja_loop *L, const char *k, size_t kn) {
    size_t len = L->items->n, i = L->index;
#define IS(s) (kn == sizeof(s) - 1 && !memcmp(k, s, kn))
    if (IS("index")) return jv_int((int64_t)i + 1);
    if (IS("index0")) return jv_int((int64_t)i);
    if (IS("revindex")) return jv_int((int64_t)(len - i));
    if (IS("revindex0")) return jv_int((int64_t)(len - i - 1));
    if (IS("first")) return jv_bool(i == 0);
    if (IS("last")) return jv_bool(i + 1 == len);
    if (IS("length")) return jv_int((int64_t)len);
    if (IS("depth")) return jv_int(L->depth);
    if (IS("depth0")) return jv_int(L->depth - 1);
    if (IS("previtem")) return i > 0 ? L->items->v[i - 1] : jv_undef("previtem");
    if (IS("nextitem")) return i + 1 < len ? L->items->v[i + 1] : jv_undef("nextitem");
#undef IS
    (void)e; (void)n;
    return jv_undef(NULL);
}

// Python-style index into a sequence of len items; false when out of range.
static bool seq_index(jv key, size_t len, size_t *out) {
    if (key.t != JV_INT && key.t != JV_BOOL) return false;
    int64_t i = key.t == JV_INT ? key.i : key.b;
    if (i < 0) i += (int64_t)len;
    if (i < 0 || (uint64_t)i >= len) return false;
    *out = (size_t)i;
    return true;
}

jv jinja_getattr(jinja_eval *e, const jinja_node *n, jv obj, jv key) {
    size_t i;
    switch (obj.t) {
    case JV_UNDEF: fail_undefined(e, n, obj);
    case JV_DICT: case JV_NS: {
        const jv *v = jv_dict_get(obj.d, key);
        if (v) return *v;
        break;
    }
    case JV_LIST:
        if (obj.l->generator) jinja_fail(e, n, "'generator' object is not subscriptable");
        if (seq_index(key, obj.l->n, &i)) return obj.l->v[i];
        break;
    case JV_STR:
        jinja_work(e, n, obj.s.n);
        if (seq_index(key, jinja_utf8_len(obj.s.p, obj.s.n), &i)) {
            size_t b = utf8_offset(obj.s.p, obj.s.n, i), b2 = utf8_offset(obj.s.p, obj.s.n, i + 1);
            return jv_strn(obj.s.p + b, b2 - b);
        }
        break;
    case JV_LOOP:
        if (key.t == JV_STR) return loop_attr(e, n, obj.loop, key.s.p, key.s.n);
        break;
    default: break;
    }
    if (key.t == JV_STR) {
        char *name = jinja_alloc(e->a, key.s.n + 1);
        memcpy(name, key.s.p, key.s.n);
        return jv_undef(name);
    }
    return jv_undef(NULL);
}

static int64_t as_int(jv v) { return v.t == JV_INT ? v.i : v.b; }   // an int or a bool

// Python's slice of a list or string.
static jv slice(jinja_eval *e, const jinja_node *n, jv obj, jv start, jv stop, jv step) {
    int64_t st = 1;
    if (step.t == JV_INT || step.t == JV_BOOL) st = as_int(step);
    else if (step.t != JV_NONE) jinja_fail(e, n, "slice indices must be integers or None");
    if (st == 0) jinja_fail(e, n, "slice step cannot be zero");
    bool is_str = obj.t == JV_STR;
    if (obj.t == JV_UNDEF) fail_undefined(e, n, obj);
    if ((obj.t != JV_LIST && !is_str) || (obj.t == JV_LIST && obj.l->generator))
        return jv_undef(NULL);   // Jinja2's getitem: what cannot be sliced is undefined
    int64_t len = is_str ? (int64_t)jinja_utf8_len(obj.s.p, obj.s.n) : (int64_t)obj.l->n;
    int64_t lo, hi;
    jv bounds[2] = {start, stop};
    int64_t def[2] = {st > 0 ? 0 : len - 1, st > 0 ? len : -1};
    int64_t out[2];
    for (int k = 0; k < 2; k++) {
        jv b = bounds[k];
        if (b.t == JV_NONE) { out[k] = def[k]; continue; }
        if (b.t != JV_INT && b.t != JV_BOOL) jinja_fail(e, n, "slice indices must be integers or None");
        int64_t x = as_int(b);
        if (x < 0) x += len;
        if (st > 0) x = x < 0 ? 0 : x > len ? len : x;
        else x = x < -1 ? -1 : x > len - 1 ? len - 1 : x;
        out[k] = x;
    }
    lo = out[0];
    hi = out[1];
    jinja_work(e, n, jinja_size(obj));
    if (is_str) {
        // the byte offset of every code point, once
        size_t *at = jinja_alloc(e->a, ((size_t)len + 1) * sizeof *at), k = 0;
        for (size_t b = 0; b < obj.s.n; b++)
            if (((unsigned char)obj.s.p[b] & 0xC0) != 0x80) at[k++] = b;
        at[k] = obj.s.n;
        jinja_buf b = {.a = e->a};
        jinja_buf_put(&b, "", 0);
        for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) jinja_buf_put(&b, obj.s.p + at[i], at[i + 1] - at[i]);
        return jv_strn(b.p, b.n);
    }
    jv l = jv_new_list(e->a, 0);
    for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) jv_list_push(e->a, l.l, obj.l->v[i]);
    return l;
}

// ---- operators ---------------------------------------------------------------------------------
static bool contains(jinja_eval *e, const jinja_node *n, jv item, jv in) {
    jinja_work(e, n, jinja_size(in));
    switch (in.t) {
    case JV_UNDEF: return false;
    case JV_STR:
        if (item.t != JV_STR) jinja_fail(e, n, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
        if (item.s.n == 0) return true;
        for (size_t i = 0; i + item.s.n <= in.s.n; i++)
            if (!memcmp(in.s.p + i, item.s.p, item.s.n)) return true;
        return false;
    case JV_LIST:
        for (size_t i = 0; i < in.l->n; i++)
            if (jv_eq(in.l->v[i], item)) return true;
        return false;
    case JV_DICT: case JV_NS: return jv_dict_get(in.d, item) != NULL;
    default: jinja_fail(e, n, "argument of type '%s' is not iterable", jv_type_name(in));
    }
}

static bool compare(jinja_eval *e, const jinja_node *n, const char *op, jv a, jv b) {
    if (op[0] == '=' || op[0] == '!') {
        jinja_work(e, n, jinja_size(a) < jinja_size(b) ? jinja_size(a) : jinja_size(b));
        return op[0] == '=' ? jv_eq(a, b) : !jv_eq(a, b);
    }
    if (!strcmp(op, "in")) return contains(e, n, a, b);
    if (!strcmp(op, "ni")) return !contains(e, n, a, b);
    if (a.t == JV_UNDEF) fail_undefined(e, n, a);
    if (b.t == JV_UNDEF) fail_undefined(e, n, b);
    jinja_work(e, n, jinja_size(a) < jinja_size(b) ? jinja_size(a) : jinja_size(b));
    int c = jv_compare(a, b);
    if (c == -2)
        jinja_fail(e, n, "'%s' not supported between instances of '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
    if (!strcmp(op, "<")) return c < 0;
    if (!strcmp(op, "<=")) return c <= 0;
    if (!strcmp(op, ">")) return c > 0;
    return c >= 0;
}


static jv repeat(jinja_eval *e, const jinja_node *n, jv seq, int64_t k) {
    if (k < 0) k = 0;
    size_t unit = seq.t == JV_STR ? seq.s.n : seq.l->n * sizeof(jv);
    if (unit == 0) k = 0; // "" * 10**18 is "" at once, not 10**18 empty copies
    if (unit && (uint64_t)k > e->lim.max_output / unit) jinja_fail(e, n, "the result of '*' is too large");
    if (seq.t == JV_STR) {
        char *p = jinja_alloc(e->a, seq.s.n * (size_t)k + 1);
        for (int64_t i = 0; i < k; i++) memcpy(p + (size_t)i * seq.s.n, seq.s.p, seq.s.n);
        return jv_strn(p, seq.s.n * (size_t)k);
    }
    if (seq.l->generator) jinja_fail(e, n, "unsupported operand type(s) for *: 'generator' and 'int'");
    jv l = jv_new_list(e->a, seq.l->n * (size_t)k);
    l.l->tuple = seq.l->tuple;
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq.l->n; j++) jv_list_push(e->a, l.l, seq.l->v[j]);
    return l;
}

// x ** y for y >= 0 by squaring: O(log y) steps, so 1 ** 10**18 ends at once. False when the
// result leaves int64 (Python's ints would grow; we report the overflow).
static bool int_pow(int64_t x, int64_t y, int64_t *out) {
    int64_t r = 1, base = x;
    bool base_over = false; // base squared past int64: fine while no later bit of y needs it
    for (; y > 0; y >>= 1) {
        if (y & 1) {
            if (base_over || __builtin_mul_overflow(r, base, &r)) return false;
        }
        if (y > 1 && !base_over) base_over = __builtin_mul_overflow(base, base, &base);
    }
    *out = r;
    return true;
}

static jv arith(jinja_eval *e, const jinja_node *n, const char *op, jv a, jv b) {
    if (a.t == JV_UNDEF) fail_undefined(e, n, a);
    if (b.t == JV_UNDEF) fail_undefined(e, n, b);
    bool ints = (a.t == JV_INT || a.t == JV_BOOL) && (b.t == JV_INT || b.t == JV_BOOL);
    if (op[0] == '+') {
        if (a.t == JV_STR && b.t == JV_STR) {
            // Markup + str escapes the str (and str + Markup): Jinja2's Markup.__add__/__radd__
            if (a.markup != b.markup) {
                if (a.markup) b = jinja_escape(e, b);
                else a = jinja_escape(e, a);
            }
            char *p = jinja_alloc(e->a, a.s.n + b.s.n + 1);
            memcpy(p, a.s.p, a.s.n);
            memcpy(p + a.s.n, b.s.p, b.s.n);
            jv r = jv_strn(p, a.s.n + b.s.n);
            r.markup = a.markup || b.markup;
            return r;
        }
        if (a.t == JV_LIST && b.t == JV_LIST) {
            jv l = jv_new_list(e->a, a.l->n + b.l->n);
            for (size_t i = 0; i < a.l->n; i++) jv_list_push(e->a, l.l, a.l->v[i]);
            for (size_t i = 0; i < b.l->n; i++) jv_list_push(e->a, l.l, b.l->v[i]);
            return l;
        }
    }
    if (op[0] == '*' && !op[1]) {
        if ((a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL)) return repeat(e, n, a, as_int(b));
        if ((b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL)) return repeat(e, n, b, as_int(a));
    }
    if (!jv_is_number(a) || !jv_is_number(b)) {
        if (op[0] == '%' && a.t == JV_STR) jinja_fail(e, n, "string formatting with '%%' is not supported");
        jinja_fail(e, n, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
    }
    if (ints) {
        int64_t x = as_int(a), y = as_int(b), r;
        switch (op[0]) {
        case '+': if (!__builtin_add_overflow(x, y, &r)) return jv_int(r); break;
        case '-': if (!__builtin_sub_overflow(x, y, &r)) return jv_int(r); break;
        case '*':
            if (op[1] == '*') {
                if (y < 0) return jv_float(pow((double)x, (double)y));
                if (int_pow(x, y, &r)) return jv_int(r);
                break;
            }
            if (!__builtin_mul_overflow(x, y, &r)) return jv_int(r);
            break;
        case '/':
            if (y == 0) jinja_fail(e, n, "division by zero");
            if (op[1] == '/') {
                if (x == INT64_MIN && y == -1) break;
                r = x / y;
                if ((x % y != 0) && ((x < 0) != (y < 0))) r--;
                return jv_int(r);
            }
            return jv_float((double)x / (double)y);
        case '%':
            if (y == 0) jinja_fail(e, n, "integer modulo by zero");
            if (x == INT64_MIN && y == -1) return jv_int(0);
            r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            return jv_int(r);
        }
        jinja_fail(e, n, "integer overflow in '%s'", op);
    }
    double x = jv_as_double(a), y = jv_as_double(b);
    switch (op[0]) {
    case '+': return jv_float(x + y);
    case '-': return jv_float(x - y);
    case '*': return jv_float(op[1] ? pow(x, y) : x * y);
    case '/':
        if (y == 0) jinja_fail(e, n, "float division by zero");
        return jv_float(op[1] ? floor(x / y) : x / y);
    default:
        if (y == 0) jinja_fail(e, n, "float modulo");
        double r = fmod(x, y);
        if (r == 0) r = copysign(0.0, y);   // Python: the sign of the divisor, also for zero
        else if ((r < 0) != (y < 0)) r += y;
        return jv_float(r);
    }
}

// ---- expressions -------------------------------------------------------------------------------
static jv eval(jinja_eval *e, const jinja_node *n, jinja_scope *s);
static flow exec(jinja_eval *e, const jinja_node *n, jinja_scope *s, jinja_buf *out);

typedef struct {
    jv *pos, *kw_names, *kw_vals;
    size_t npos, nkw;
} call_args;

static call_args eval_args(jinja_eval *e, const jinja_node *n, jinja_scope *s, jv *first) {
    call_args c = {0};
    size_t extra = first ? 1 : 0;
    c.npos = n->args.n + extra;
    c.pos = jinja_alloc(e->a, (c.npos ? c.npos : 1) * sizeof(jv));
    if (first) c.pos[0] = *first;
    for (size_t i = 0; i < n->args.n; i++) c.pos[i + extra] = eval(e, n->args.v[i], s);
    c.nkw = n->kw.n;
    c.kw_names = jinja_alloc(e->a, (c.nkw ? c.nkw : 1) * sizeof(jv));
    c.kw_vals = jinja_alloc(e->a, (c.nkw ? c.nkw : 1) * sizeof(jv));
    for (size_t i = 0; i < c.nkw; i++) {
        c.kw_names[i] = jv_strn(n->kw.v[i]->name, n->kw.v[i]->name_n);
        c.kw_vals[i] = eval(e, n->kw.v[i]->a, s);
    }
    return c;
}

static bool name_is(const jinja_node *p, jv name) {
    return name.s.n == p->name_n && !memcmp(name.s.p, p->name, p->name_n);
}

// Calls a macro (or a {% call %} body through caller()); returns its output as a string.
static jv call_macro(jinja_eval *e, const jinja_node *at, const jinja_node *m, call_args c,
                     const jinja_node *caller, jinja_scope *caller_scope) {
    const char *mname = m->name ? m->name : "caller";   // a {% call %} body has no name
    int mname_n = m->name ? (int)m->name_n : 6;
    if (c.npos > m->args.n)
        jinja_fail(e, at, "macro '%.*s' takes not more than %zu argument(s)", mname_n, mname, m->args.n);
    jinja_scope *parent = m->t == N_CALL_BLOCK ? e->caller_scope : e->globals;
    jinja_scope *s = scope_new(e, parent);
    for (size_t i = 0; i < c.nkw; i++) {
        bool known = false;
        for (size_t p = 0; p < m->args.n; p++) known |= name_is(m->args.v[p], c.kw_names[i]);
        if (!known)
            jinja_fail(e, at, "macro '%.*s' takes no keyword argument '%.*s'", mname_n, mname,
                       (int)c.kw_names[i].s.n, c.kw_names[i].s.p);
    }
    for (size_t p = 0; p < m->args.n; p++) {
        const jinja_node *param = m->args.v[p];
        jv v = jv_undef(NULL);
        bool set = false;
        if (p < c.npos) { v = c.pos[p]; set = true; }
        for (size_t i = 0; i < c.nkw; i++)
            if (name_is(param, c.kw_names[i])) {
                if (set) jinja_fail(e, at, "macro got multiple values for argument '%.*s'", (int)param->name_n, param->name);
                v = c.kw_vals[i];
                set = true;
            }
        if (!set && m->kw.v[p]) v = eval(e, m->kw.v[p], s);
        if (!set && !m->kw.v[p]) {
            char *name = jinja_alloc(e->a, param->name_n + 1);
            memcpy(name, param->name, param->name_n);
            v = jv_undef(name);
        }
        scope_set(e, s, param->name, param->name_n, v);
    }
    jinja_scope *saved_scope = e->caller_scope;
    if (caller) {
        jv cv = {.t = JV_MACRO};
        cv.m = caller;
        scope_set(e, s, "caller", 6, cv);
        e->caller_scope = caller_scope;
    }
    jinja_buf b = {.a = e->a, .limit = e->lim.max_output};
    jinja_buf_put(&b, "", 0);
    if (exec(e, m->b, s, &b) != FLOW_NEXT) jinja_fail(e, at, "'break' or 'continue' outside a loop");
    if (b.over) jinja_fail(e, at, "the output of a macro is larger than %zu bytes", e->lim.max_output);
    e->caller_scope = saved_scope;
    return jv_strn(b.p, b.n);
}

static jv eval_call(jinja_eval *e, const jinja_node *n, jinja_scope *s, const jinja_node *caller, jinja_scope *caller_scope) {
    const jinja_node *f = n->a;
    if (f->t == N_ATTR) {
        jv obj = eval(e, f->a, s);
        if (obj.t == JV_UNDEF) fail_undefined(e, f, obj);
        // a macro stored in a dict or namespace
        if (obj.t == JV_DICT || obj.t == JV_NS) {
            const jv *m = jv_dict_find(obj.d, f->name, f->name_n);
            if (m && m->t == JV_MACRO) return call_macro(e, n, m->m, eval_args(e, n, s, NULL), caller, caller_scope);
        }
        call_args c = eval_args(e, n, s, NULL);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)f->name_n, f->name);
        jv out;
        if (jinja_method(e, n, obj, name, c.pos, c.npos, c.kw_names, c.kw_vals, c.nkw, &out)) return out;
        jinja_fail(e, n, "'%s' object has no method '%s'", jv_type_name(obj), name);
    }
    if (f->t == N_NAME) {
        const jv *v = scope_find(s, f->name, f->name_n);
        if (!v) v = jv_dict_find(state(e)->vars.d, f->name, f->name_n);
        if (v && v->t == JV_MACRO) return call_macro(e, n, v->m, eval_args(e, n, s, NULL), caller, caller_scope);
        if (v && v->t != JV_UNDEF && v->t != JV_FUNC) jinja_fail(e, n, "'%.*s' is not callable", (int)f->name_n, f->name);
        call_args c = eval_args(e, n, s, NULL);
        char name[64];
        if (v && v->t == JV_FUNC) snprintf(name, sizeof name, "%s", v->func);   // a global set under another name
        else snprintf(name, sizeof name, "%.*s", (int)(f->name_n > 60 ? 60 : f->name_n), f->name);
        jv out;
        if (jinja_global(e, n, name, c.pos, c.npos, c.kw_names, c.kw_vals, c.nkw, &out)) return out;
        jinja_fail(e, n, "'%s' is undefined", name);
    }
    jv callee = eval(e, f, s);
    if (callee.t == JV_MACRO) return call_macro(e, n, callee.m, eval_args(e, n, s, NULL), caller, caller_scope);
    if (callee.t == JV_FUNC) {
        call_args c = eval_args(e, n, s, NULL);
        jv out;
        if (jinja_global(e, n, callee.func, c.pos, c.npos, c.kw_names, c.kw_vals, c.nkw, &out)) return out;
    }
    if (callee.t == JV_UNDEF) fail_undefined(e, n, callee);
    jinja_fail(e, n, "'%s' object is not callable", jv_type_name(callee));
}

static jv eval_filter(jinja_eval *e, const jinja_node *n, jinja_scope *s, jv in) {
    call_args c = eval_args(e, n, s, NULL);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(n->name_n > 60 ? 60 : n->name_n), n->name);
    jv out;
    if (!jinja_filter(e, n, name, in, c.pos, c.npos, c.kw_names, c.kw_vals, c.nkw, &out))
        jinja_fail(e, n, "no filter named '%s'", name);
    return out;
}

static jv eval(jinja_eval *e, const jinja_node *n, jinja_scope *s) {
    if (++e->depth > e->lim.max_depth) jinja_fail(e, n, "the template recurses too deeply");
    state(e)->at = n;
    jv r;
    switch (n->t) {
    case N_CONST: r = n->value; break;
    case N_NAME: r = lookup(e, s, n); break;
    case N_ATTR: r = jinja_getattr(e, n, eval(e, n->a, s), jv_strn(n->name, n->name_n)); break;
    case N_ITEM: {
        jv obj = eval(e, n->a, s);
        r = jinja_getattr(e, n, obj, eval(e, n->b, s));
        break;
    }
    case N_SLICE: {
        jv obj = eval(e, n->a, s);
        jv a = n->b ? eval(e, n->b, s) : jv_none(), b = n->c ? eval(e, n->c, s) : jv_none(),
           c = n->d ? eval(e, n->d, s) : jv_none();
        r = slice(e, n, obj, a, b, c);
        break;
    }
    case N_CALL: r = eval_call(e, n, s, NULL, NULL); break;
    case N_FILTER: r = eval_filter(e, n, s, eval(e, n->a, s)); break;
    case N_TEST: {
        jv in = eval(e, n->a, s);
        call_args c = eval_args(e, n, s, NULL);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(n->name_n > 60 ? 60 : n->name_n), n->name);
        bool b;
        if (!jinja_test(e, n, name, in, c.pos, c.npos, &b)) jinja_fail(e, n, "no test named '%s'", name);
        r = jv_bool(b != n->negate);
        break;
    }
    case N_NOT: r = jv_bool(!jv_truthy(eval(e, n->a, s))); break;
    case N_NEG: case N_POS: {
        jv v = eval(e, n->a, s);
        if (v.t == JV_UNDEF) fail_undefined(e, n, v);
        if (!jv_is_number(v)) jinja_fail(e, n, "bad operand type for unary %c: '%s'", n->t == N_NEG ? '-' : '+', jv_type_name(v));
        if (n->t == N_POS) r = v.t == JV_BOOL ? jv_int(v.b) : v;
        else if (v.t == JV_FLOAT) r = jv_float(-v.f);
        else if (v.t == JV_INT && v.i == INT64_MIN) jinja_fail(e, n, "integer overflow");
        else r = jv_int(-as_int(v));
        break;
    }
    case N_BINARY: {
        jv a = eval(e, n->a, s);
        r = arith(e, n, n->op, a, eval(e, n->b, s));
        break;
    }
    case N_AND: r = eval(e, n->a, s); if (jv_truthy(r)) r = eval(e, n->b, s); break;
    case N_OR: r = eval(e, n->a, s); if (!jv_truthy(r)) r = eval(e, n->b, s); break;
    case N_COMPARE: {
        jv left = eval(e, n->a, s);
        r = jv_bool(true);
        for (size_t i = 0; i < n->ops.n; i++) {
            jv right = eval(e, n->ops.v[i]->a, s);
            if (!compare(e, n->ops.v[i], n->ops.v[i]->op, left, right)) { r = jv_bool(false); break; }
            left = right;
        }
        break;
    }
    case N_COND:
        if (jv_truthy(eval(e, n->b, s))) r = eval(e, n->a, s);
        else r = n->c ? eval(e, n->c, s) : jv_undef(NULL);
        break;
    case N_LIST: case N_TUPLE:
        r = jv_new_list(e->a, n->args.n);
        r.l->tuple = n->t == N_TUPLE;
        for (size_t i = 0; i < n->args.n; i++) jv_list_push(e->a, r.l, eval(e, n->args.v[i], s));
        break;
    case N_DICT:
        r = jv_new_dict(e->a, n->args.n);
        for (size_t i = 0; i < n->args.n; i++) {
            jv k = eval(e, n->args.v[i], s);
            if (k.t == JV_LIST || k.t == JV_DICT || k.t == JV_NS) jinja_fail(e, n->args.v[i], "unhashable type: '%s'", jv_type_name(k));
            jv_dict_set(e->a, r.d, k, eval(e, n->kw.v[i], s));
        }
        break;
    case N_CONCAT: {
        jinja_buf b = {.a = e->a, .limit = e->lim.max_output};
        jinja_buf_put(&b, "", 0);
        for (size_t i = 0; i < n->args.n; i++) jv_print(&b, eval(e, n->args.v[i], s));
        if (b.over) jinja_fail(e, n, "a string is larger than %zu bytes", e->lim.max_output);
        r = jv_strn(b.p, b.n);
        break;
    }
    default: jinja_fail(e, n, "not an expression");
    }
    e->depth--;
    return r;
}

// ---- statements --------------------------------------------------------------------------------
static void assign(jinja_eval *e, const jinja_node *n, jinja_scope *s, const jinja_nodes *targets, jv v) {
    if (targets->n == 1 && targets->v[0]->t == N_ATTR) {   // {% set ns.attr = v %}
        const jinja_node *t = targets->v[0];
        jv ns = lookup(e, s, t->a);
        if (ns.t != JV_NS) jinja_fail(e, t, "cannot assign attribute on non-namespace object");
        jv_dict_set(e->a, ns.d, jv_strn(t->name, t->name_n), v);
        return;
    }
    if (targets->n == 1) {
        scope_set(e, s, targets->v[0]->name, targets->v[0]->name_n, v);
        return;
    }
    jv_list *items = jinja_iterable(e, n, v);
    if (items->n != targets->n)
        jinja_fail(e, n, "cannot unpack %zu values into %zu names", items->n, targets->n);
    for (size_t i = 0; i < targets->n; i++) scope_set(e, s, targets->v[i]->name, targets->v[i]->name_n, items->v[i]);
}

static flow exec_for(jinja_eval *e, const jinja_node *n, jinja_scope *s, jinja_buf *out) {
    jv_list *items = jinja_iterable(e, n->a, eval(e, n->a, s));
    jinja_scope *body = scope_new(e, s);
    if (n->d) {   // {% for x in xs if cond %}: the loop sees only the items that pass
        jv kept = jv_new_list(e->a, 0);
        for (size_t i = 0; i < items->n; i++) {
            jinja_step(e, n);
            assign(e, n, body, &n->targets, items->v[i]);
            if (jv_truthy(eval(e, n->d, body))) jv_list_push(e->a, kept.l, items->v[i]);
        }
        items = kept.l;
    }
    struct jinja_loop *L = jinja_alloc(e->a, sizeof *L);
    L->items = items;
    L->depth = 1;   // deeper only in recursive loops, which are not supported
    jv loop = {.t = JV_LOOP};
    loop.loop = L;
    for (size_t i = 0; i < items->n; i++) {
        jinja_step(e, n);
        L->index = i;
        body->n = 0;   // as in Jinja2, what one iteration sets the next does not see
        scope_set(e, body, "loop", 4, loop);
        assign(e, n, body, &n->targets, items->v[i]);
        if (exec(e, n->b, body, out) == FLOW_BREAK) break;
    }
    if (!items->n && n->c) return exec(e, n->c, s, out);
    return FLOW_NEXT;
}

static jv render_body(jinja_eval *e, const jinja_node *at, const jinja_node *body, jinja_scope *s) {
    jinja_buf b = {.a = e->a, .limit = e->lim.max_output};
    jinja_buf_put(&b, "", 0);
    flow f = exec(e, body, s, &b);
    if (f != FLOW_NEXT) jinja_fail(e, at, "'break' or 'continue' outside a loop");
    if (b.over) jinja_fail(e, at, "the text of a block is larger than %zu bytes", e->lim.max_output);
    return jv_strn(b.p, b.n);
}

// Applies a chain of filters whose innermost input is NULL (block set, filter block) to v.
static jv apply_filters(jinja_eval *e, const jinja_node *f, jinja_scope *s, jv v) {
    if (!f) return v;
    return eval_filter(e, f, s, apply_filters(e, f->a, s, v));
}

static flow exec(jinja_eval *e, const jinja_node *n, jinja_scope *s, jinja_buf *out) {
    if (++e->depth > e->lim.max_depth) jinja_fail(e, n, "the template recurses too deeply");
    state(e)->at = n;
    flow f = FLOW_NEXT;
    switch (n->t) {
    case N_BODY:
        for (size_t i = 0; i < n->args.n && f == FLOW_NEXT; i++) f = exec(e, n->args.v[i], s, out);
        break;
    case N_TEXT: jinja_buf_put(out, n->value.s.p, n->value.s.n); break;
    case N_OUTPUT: jv_print(out, eval(e, n->a, s)); break;
    case N_IF:
        jinja_step(e, n);
        if (jv_truthy(eval(e, n->a, s))) f = exec(e, n->b, s, out);
        else if (n->c) f = exec(e, n->c, s, out);
        break;
    case N_FOR: f = exec_for(e, n, s, out); break;
    case N_SET: jinja_step(e, n); assign(e, n, s, &n->targets, eval(e, n->a, s)); break;
    case N_SET_BLOCK:
        assign(e, n, s, &n->targets, apply_filters(e, n->a, s, render_body(e, n, n->b, s)));
        break;
    case N_MACRO: {
        jv m = {.t = JV_MACRO};
        m.m = n;
        scope_set(e, s, n->name, n->name_n, m);
        break;
    }
    case N_CALL_BLOCK: jv_print(out, eval_call(e, n->a, s, n, s)); break;
    case N_FILTER_BLOCK: jv_print(out, apply_filters(e, n->a, s, render_body(e, n, n->b, s))); break;
    case N_WITH: {
        jinja_scope *w = scope_new(e, s);
        for (size_t i = 0; i < n->kw.n; i++) scope_set(e, w, n->kw.v[i]->name, n->kw.v[i]->name_n, eval(e, n->kw.v[i]->a, s));
        f = exec(e, n->b, w, out);
        break;
    }
    case N_BREAK: f = FLOW_BREAK; break;
    case N_CONTINUE: f = FLOW_CONTINUE; break;
    default: jinja_fail(e, n, "not a statement");
    }
    if (out->over) jinja_fail(e, n, "the output is larger than %zu bytes", out->limit);
    e->depth--;
    return f;
}

bool jinja_render(const jinja_template *t, jinja_arena *a, jv vars, const jinja_limits *lim,
                  char **out, size_t *out_n, char *err, size_t errlen) {
    render_state *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    jinja_eval *e = &r->e;
    e->a = a;
    e->lim = lim ? *lim : jinja_default_limits();
    e->err = err;
    e->errlen = errlen;
    r->vars = vars;
    r->out.limit = e->lim.max_output;
    jmp_buf *saved = a->fail;
    a->fail = &e->fail;
    a->over = a->too_deep = false;
    const char *epoch = getenv("SOURCE_DATE_EPOCH");   // reproducible builds' convention
    e->now = epoch && *epoch ? strtoll(epoch, NULL, 10) : (int64_t)time(NULL);
    if (setjmp(e->fail)) {
        const jinja_node *at = r->at;
        if (a->over)
            snprintf(err, errlen, "line %d, column %d: the template needs more than %zu MB of memory",
                     at ? at->line : 1, at ? at->col : 1, a->limit >> 20);
        else if (a->too_deep)
            snprintf(err, errlen, "line %d, column %d: lists or dicts nested more than %d deep", at ? at->line : 1,
                     at ? at->col : 1, JV_MAX_DEPTH);
        a->fail = saved;
        free(r->out.p);
        free(r);
        return false;
    }
    e->globals = scope_new(e, NULL);
    if (exec(e, t->root, e->globals, &r->out) != FLOW_NEXT)
        jinja_fail(e, r->at, "'break' or 'continue' outside a loop");
    a->fail = saved;
    if (!r->out.p) r->out.p = calloc(1, 1);
    *out = r->out.p;
    if (out_n) *out_n = r->out.n;
    free(r);
    return *out != NULL;
}
