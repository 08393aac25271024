// Jinja parser: tokens -> tree. Statements as Jinja2 has them ({% if %}, {% for %}, {% set %},
// {% macro %}, {% call %}, {% filter %}, {% with %}, {% break %}/{% continue %}, transformers'
// {% generation %}), expressions with Jinja2's precedence, lowest first:
//   a if c else b  /  or  /  and  /  not  /  == != < <= > >= in, not in  /  + -  /  ~  /
//   * / // %  /  **  /  unary - +  /  primary with .attr [item] [a:b:c] (call) |filter is test
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

typedef struct {
    jinja_arena *a;
    jinja_tok *t;
    size_t n, i;
    int depth, max_depth;
    char *err;
    size_t errlen;
} parser;

static _Noreturn void parse_fail(parser *P, const jinja_tok *t, const char *fmt, ...) {
    int k = snprintf(P->err, P->errlen, "line %d, column %d: ", t->line, t->col);
    if (k < 0 || (size_t)k >= P->errlen) k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P->err + k, P->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    jinja_one_line(P->err);
    longjmp(*P->a->fail, 1);
}

static jinja_tok *cur(parser *P) { return &P->t[P->i]; }
static jinja_tok *next(parser *P) { jinja_tok *t = &P->t[P->i]; if (t->t != TK_EOF) P->i++; return t; }

static bool is_op(const jinja_tok *t, const char *op) {
    return t->t == TK_OP && t->n == strlen(op) && !memcmp(t->p, op, t->n);
}
static bool is_name(const jinja_tok *t, const char *name) {
    return t->t == TK_NAME && t->n == strlen(name) && !memcmp(t->p, name, t->n);
}
static bool accept_op(parser *P, const char *op) { if (!is_op(cur(P), op)) return false; P->i++; return true; }
static bool accept_name(parser *P, const char *name) { if (!is_name(cur(P), name)) return false; P->i++; return true; }

static const char *describe(const jinja_tok *t) {
    switch (t->t) {
    case TK_EOF: return "the end of the template";
    case TK_TEXT: return "text";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_STRING: return "a string";
    case TK_INT: case TK_FLOAT: return "a number";
    default: return NULL;
    }
}

static _Noreturn void unexpected(parser *P, const jinja_tok *t, const char *wanted) {
    const char *d = describe(t);
    if (d) parse_fail(P, t, "expected %s, found %s", wanted, d);
    parse_fail(P, t, "expected %s, found '%.*s'", wanted, (int)(t->n > 40 ? 40 : t->n), t->p);
}

static void expect_op(parser *P, const char *op) {
    if (!accept_op(P, op)) {
        char w[16];
        snprintf(w, sizeof w, "'%s'", op);
        unexpected(P, cur(P), w);
    }
}

static jinja_tok *expect_name(parser *P) {
    if (cur(P)->t != TK_NAME) unexpected(P, cur(P), "a name");
    return next(P);
}

static void expect_block_end(parser *P) {
    if (cur(P)->t != TK_BLOCK_END) unexpected(P, cur(P), "'%}'");
    P->i++;
}

static jinja_node *node(parser *P, jinja_node_type type, const jinja_tok *at) {
    jinja_node *n = jinja_alloc(P->a, sizeof *n);
    n->t = type;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static void add(parser *P, jinja_nodes *list, jinja_node *n) {
    if ((list->n & (list->n - 1)) == 0) {   // at 0, 1, 2, 4, 8, ... grow to the next power of two
        size_t cap = list->n ? list->n * 2 : 1;
        jinja_node **v = jinja_alloc(P->a, cap * sizeof *v);
        if (list->n) memcpy(v, list->v, list->n * sizeof *v);
        list->v = v;
    }
    list->v[list->n++] = n;
}

static void enter(parser *P) {
    if (++P->depth > P->max_depth) parse_fail(P, cur(P), "the template is nested too deeply");
}

// ---- expressions -------------------------------------------------------------------------------
static jinja_node *parse_expr(parser *P);
static jinja_node *parse_unary(parser *P, bool with_filter);
static jinja_node *parse_primary(parser *P);

// Arguments of a call, filter or test after its '(': positional and name=value.
static void parse_args(parser *P, jinja_node *n) {
    while (!accept_op(P, ")")) {
        if (n->args.n || n->kw.n) expect_op(P, ",");
        if (accept_op(P, ")")) break;   // a trailing comma
        if (cur(P)->t == TK_NAME && is_op(&P->t[P->i + 1], "=")) {
            jinja_tok *name = next(P);
            P->i++;
            jinja_node *k = node(P, N_NAME, name);
            k->name = name->p;
            k->name_n = name->n;
            k->a = parse_expr(P);
            add(P, &n->kw, k);
        } else {
            if (is_op(cur(P), "*") || is_op(cur(P), "**")) parse_fail(P, cur(P), "*args and **kwargs are not supported");
            if (n->kw.n) parse_fail(P, cur(P), "a positional argument after a keyword argument");
            add(P, &n->args, parse_expr(P));
        }
    }
}

static jinja_node *parse_postfix(parser *P, jinja_node *n) {
    for (;;) {
        jinja_tok *t = cur(P);
        if (accept_op(P, ".")) {
            jinja_tok *k = next(P);
            jinja_node *a;
            if (k->t == TK_NAME) {
                a = node(P, N_ATTR, k);
                a->name = k->p;
                a->name_n = k->n;
            } else if (k->t == TK_INT) {   // foo.0 is foo[0]
                a = node(P, N_ITEM, k);
                a->b = node(P, N_CONST, k);
                a->b->value = jv_int(k->i);
            } else {
                unexpected(P, k, "an attribute name");
            }
            a->a = n;
            n = a;
        } else if (accept_op(P, "[")) {
            // item or slice: [i], [a:b], [a:b:c], [:], [::-1]
            jinja_node *parts[3] = {0};
            int colons = 0;
            for (;;) {
                if (is_op(cur(P), ":")) {
                    if (++colons > 2) parse_fail(P, cur(P), "too many ':' in a slice");
                    P->i++;
                    continue;
                }
                if (is_op(cur(P), "]")) break;
                if (parts[colons]) unexpected(P, cur(P), "']'");
                parts[colons] = parse_expr(P);
            }
            P->i++;
            jinja_node *s;
            if (colons == 0) {
                if (!parts[0]) parse_fail(P, t, "empty subscript");
                s = node(P, N_ITEM, t);
                s->b = parts[0];
            } else {
                s = node(P, N_SLICE, t);
                s->b = parts[0];
                s->c = parts[1];
                s->d = parts[2];
            }
            s->a = n;
            n = s;
        } else if (accept_op(P, "(")) {
            jinja_node *c = node(P, N_CALL, t);
            c->a = n;
            parse_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

static jinja_node *parse_filter(parser *P, jinja_node *in, const jinja_tok *at) {
    jinja_tok *name = expect_name(P);
    jinja_node *f = node(P, N_FILTER, at);
    f->a = in;
    f->name = name->p;
    f->name_n = name->n;
    if (accept_op(P, "(")) parse_args(P, f);
    return f;
}

static jinja_node *parse_test(parser *P, jinja_node *in, const jinja_tok *at) {
    jinja_node *t = node(P, N_TEST, at);
    t->a = in;
    t->negate = accept_name(P, "not");
    jinja_tok *name = expect_name(P);
    t->name = name->p;
    t->name_n = name->n;
    if (accept_op(P, "(")) {
        parse_args(P, t);
    } else {
        // one argument without parentheses: `is divisibleby 3`, `is sameas false`
        jinja_tok *c = cur(P);
        bool starts = c->t == TK_NAME || c->t == TK_STRING || c->t == TK_INT || c->t == TK_FLOAT ||
                      is_op(c, "[") || is_op(c, "{");
        if (starts && !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and") &&
            !is_name(c, "if") && !is_name(c, "in") && !is_name(c, "not") && !is_name(c, "is") &&
            !is_name(c, "recursive"))
            add(P, &t->args, parse_postfix(P, parse_primary(P)));
    }
    return t;
}

static jinja_node *parse_filter_expr(parser *P, jinja_node *n) {
    for (;;) {
        jinja_tok *t = cur(P);
        if (accept_op(P, "|")) n = parse_filter(P, n, t);
        else if (accept_name(P, "is")) n = parse_test(P, n, t);
        else if (is_op(t, "(")) n = parse_postfix(P, n);
        else return n;
    }
}

static jinja_node *parse_primary(parser *P) {
    enter(P);
    jinja_tok *t = next(P);
    jinja_node *n;
    switch (t->t) {
    case TK_NAME:
        n = node(P, N_CONST, t);
        if (is_name(t, "true") || is_name(t, "True")) n->value = jv_bool(true);
        else if (is_name(t, "false") || is_name(t, "False")) n->value = jv_bool(false);
        else if (is_name(t, "none") || is_name(t, "None")) n->value = jv_none();
        else {
            n->t = N_NAME;
            n->name = t->p;
            n->name_n = t->n;
        }
        break;
    case TK_STRING: {
        // adjacent string literals join: "a" "b"
        size_t len = t->n, k = P->i;
        while (P->t[k].t == TK_STRING) len += P->t[k++].n;
        char *s = jinja_alloc(P->a, len + 1);
        memcpy(s, t->p, t->n);
        size_t o = t->n;
        while (cur(P)->t == TK_STRING) {
            jinja_tok *u = next(P);
            memcpy(s + o, u->p, u->n);
            o += u->n;
        }
        n = node(P, N_CONST, t);
        n->value = jv_strn(s, len);
        break;
    }
    case TK_INT: n = node(P, N_CONST, t); n->value = jv_int(t->i); break;
    case TK_FLOAT: n = node(P, N_CONST, t); n->value = jv_float(t->f); break;
    case TK_OP:
        if (is_op(t, "(")) {
            if (accept_op(P, ")")) { n = node(P, N_TUPLE, t); break; }
            n = parse_expr(P);
            if (is_op(cur(P), ",")) {   // a tuple
                jinja_node *tu = node(P, N_TUPLE, t);
                add(P, &tu->args, n);
                while (accept_op(P, ",")) {
                    if (is_op(cur(P), ")")) break;
                    add(P, &tu->args, parse_expr(P));
                }
                n = tu;
            }
            expect_op(P, ")");
            break;
        }
        if (is_op(t, "[")) {
            n = node(P, N_LIST, t);
            while (!accept_op(P, "]")) {
                if (n->args.n) expect_op(P, ",");
                if (accept_op(P, "]")) break;
                add(P, &n->args, parse_expr(P));
            }
            break;
        }
        if (is_op(t, "{")) {
            n = node(P, N_DICT, t);
            while (!accept_op(P, "}")) {
                if (n->args.n) expect_op(P, ",");
                if (accept_op(P, "}")) break;
                add(P, &n->args, parse_expr(P));
                expect_op(P, ":");
                add(P, &n->kw, parse_expr(P));
            }
            break;
        }
        /* fall through */
    default:
        P->i--;
        unexpected(P, t, "an expression");
    }
    P->depth--;
    return n;
}

static jinja_node *parse_unary(parser *P, bool with_filter) {
    enter(P);
    jinja_tok *t = cur(P);
    jinja_node *n;
    if (accept_op(P, "-")) {
        n = node(P, N_NEG, t);
        n->a = parse_unary(P, false);
    } else if (accept_op(P, "+")) {
        n = node(P, N_POS, t);
        n->a = parse_unary(P, false);
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (with_filter) n = parse_filter_expr(P, n);
    P->depth--;
    return n;
}

static jinja_node *binary(parser *P, const jinja_tok *t, const char *op, jinja_node *l, jinja_node *r) {
    jinja_node *n = node(P, N_BINARY, t);
    snprintf(n->op, sizeof n->op, "%s", op);
    n->a = l;
    n->b = r;
    return n;
}

static jinja_node *parse_pow(parser *P) {
    jinja_node *l = parse_unary(P, true);
    while (is_op(cur(P), "**")) {
        jinja_tok *t = next(P);
        l = binary(P, t, "**", l, parse_unary(P, true));
    }
    return l;
}

static jinja_node *parse_math2(parser *P) {
    jinja_node *l = parse_pow(P);
    for (;;) {
        jinja_tok *t = cur(P);
        const char *op = is_op(t, "*") ? "*" : is_op(t, "/") ? "/" : is_op(t, "//") ? "//" : is_op(t, "%") ? "%" : NULL;
        if (!op) return l;
        P->i++;
        l = binary(P, t, op, l, parse_pow(P));
    }
}

static jinja_node *parse_concat(parser *P) {
    jinja_node *l = parse_math2(P);
    if (!is_op(cur(P), "~")) return l;
    jinja_node *c = node(P, N_CONCAT, cur(P));
    add(P, &c->args, l);
    while (accept_op(P, "~")) add(P, &c->args, parse_math2(P));
    return c;
}

static jinja_node *parse_math1(parser *P) {
    jinja_node *l = parse_concat(P);
    for (;;) {
        jinja_tok *t = cur(P);
        const char *op = is_op(t, "+") ? "+" : is_op(t, "-") ? "-" : NULL;
        if (!op) return l;
        P->i++;
        l = binary(P, t, op, l, parse_concat(P));
    }
}

static jinja_node *parse_compare(parser *P) {
    jinja_node *first = parse_math1(P);
    jinja_node *c = NULL;
    for (;;) {
        jinja_tok *t = cur(P);
        const char *op = NULL;
        static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
        for (size_t k = 0; k < 6; k++)
            if (is_op(t, ops[k])) op = ops[k];
        if (op) P->i++;
        else if (accept_name(P, "in")) op = "in";
        else if (is_name(t, "not") && is_name(&P->t[P->i + 1], "in")) { P->i += 2; op = "ni"; }
        else break;
        if (!c) {
            c = node(P, N_COMPARE, t);
            c->a = first;
        }
        jinja_node *o = node(P, N_BINARY, t);
        snprintf(o->op, sizeof o->op, "%s", op);
        o->a = parse_math1(P);
        add(P, &c->ops, o);
    }
    return c ? c : first;
}

static jinja_node *parse_not(parser *P) {
    jinja_tok *t = cur(P);
    if (accept_name(P, "not")) {
        enter(P);
        jinja_node *n = node(P, N_NOT, t);
        n->a = parse_not(P);
        P->depth--;
        return n;
    }
    return parse_compare(P);
}

static jinja_node *parse_and(parser *P) {
    jinja_node *l = parse_not(P);
    while (is_name(cur(P), "and")) {
        jinja_node *n = node(P, N_AND, next(P));
        n->a = l;
        n->b = parse_not(P);
        l = n;
    }
    return l;
}

static jinja_node *parse_or(parser *P) {
    jinja_node *l = parse_and(P);
    while (is_name(cur(P), "or")) {
        jinja_node *n = node(P, N_OR, next(P));
        n->a = l;
        n->b = parse_and(P);
        l = n;
    }
    return l;
}

static jinja_node *parse_expr(parser *P) {
    enter(P);
    jinja_node *n = parse_or(P);
    while (is_name(cur(P), "if")) {
        jinja_node *c = node(P, N_COND, next(P));
        c->a = n;
        c->b = parse_or(P);
        if (accept_name(P, "else")) c->c = parse_expr(P);
        n = c;
    }
    P->depth--;
    return n;
}

// expr or expr, expr, ... (a tuple without parentheses)
static jinja_node *parse_tuple(parser *P) {
    jinja_tok *t = cur(P);
    jinja_node *n = parse_expr(P);
    if (!is_op(cur(P), ",")) return n;
    jinja_node *tu = node(P, N_TUPLE, t);
    add(P, &tu->args, n);
    while (accept_op(P, ",")) {
        if (cur(P)->t == TK_BLOCK_END || cur(P)->t == TK_VAR_END) break;
        add(P, &tu->args, parse_expr(P));
    }
    return tu;
}

// ---- statements --------------------------------------------------------------------------------
static jinja_node *parse_body(parser *P, const char *const *ends, const jinja_tok **end_tok);

// Names to assign to: a, b, (a, b), or ns.attr when allow_attr.
static void parse_targets(parser *P, jinja_node *n, bool allow_attr) {
    bool paren = accept_op(P, "(");
    do {
        jinja_tok *t = expect_name(P);
        jinja_node *name = node(P, N_NAME, t);
        name->name = t->p;
        name->name_n = t->n;
        if (allow_attr && !paren && accept_op(P, ".")) {
            jinja_tok *attr = expect_name(P);
            jinja_node *a = node(P, N_ATTR, attr);
            a->a = name;
            a->name = attr->p;
            a->name_n = attr->n;
            add(P, &n->targets, a);
            return;
        }
        add(P, &n->targets, name);
    } while (accept_op(P, ","));
    if (paren) expect_op(P, ")");
}

// (a, b=default, ...) of a macro or a call block.
static void parse_params(parser *P, jinja_node *n) {
    expect_op(P, "(");
    while (!accept_op(P, ")")) {
        if (n->args.n) expect_op(P, ",");
        if (accept_op(P, ")")) break;
        jinja_tok *t = expect_name(P);
        jinja_node *p = node(P, N_NAME, t);
        p->name = t->p;
        p->name_n = t->n;
        add(P, &n->args, p);
        add(P, &n->kw, accept_op(P, "=") ? parse_expr(P) : NULL);
    }
}

static jinja_node *parse_statement(parser *P) {
    jinja_tok *begin = next(P);   // {%
    jinja_tok *t = expect_name(P);
    jinja_node *n;
    const jinja_tok *end;
    enter(P);
    if (is_name(t, "if")) {
        n = node(P, N_IF, t);
        n->a = parse_tuple(P);
        expect_block_end(P);
        static const char *const ends[] = {"elif", "else", "endif", NULL};
        n->b = parse_body(P, ends, &end);
        jinja_node *last = n;
        while (is_name(end, "elif")) {
            jinja_node *e = node(P, N_IF, end);
            e->a = parse_tuple(P);
            expect_block_end(P);
            e->b = parse_body(P, ends, &end);
            last->c = e;
            last = e;
        }
        if (is_name(end, "else")) {
            expect_block_end(P);
            static const char *const endif[] = {"endif", NULL};
            last->c = parse_body(P, endif, &end);
        }
    } else if (is_name(t, "for")) {
        n = node(P, N_FOR, t);
        parse_targets(P, n, false);
        if (!accept_name(P, "in")) unexpected(P, cur(P), "'in'");
        // the iterable: no conditional expression (its `if` filters the loop)
        jinja_tok *it = cur(P);
        n->a = parse_or(P);
        if (is_op(cur(P), ",")) {
            jinja_node *tu = node(P, N_TUPLE, it);
            add(P, &tu->args, n->a);
            while (accept_op(P, ",")) add(P, &tu->args, parse_or(P));
            n->a = tu;
        }
        if (accept_name(P, "if")) n->d = parse_expr(P);
        if (is_name(cur(P), "recursive")) parse_fail(P, cur(P), "recursive loops are not supported");
        expect_block_end(P);
        static const char *const ends[] = {"else", "endfor", NULL};
        n->b = parse_body(P, ends, &end);
        if (is_name(end, "else")) {
            expect_block_end(P);
            static const char *const endfor[] = {"endfor", NULL};
            n->c = parse_body(P, endfor, &end);
        }
    } else if (is_name(t, "set")) {
        n = node(P, N_SET, t);
        parse_targets(P, n, true);
        if (accept_op(P, "=")) {
            n->a = parse_tuple(P);
            expect_block_end(P);
        } else {
            if (n->targets.n != 1 || n->targets.v[0]->t != N_NAME) unexpected(P, cur(P), "'='");
            n->t = N_SET_BLOCK;
            jinja_node *filter = NULL;
            while (is_op(cur(P), "|")) filter = parse_filter(P, filter, next(P));
            n->a = filter;
            expect_block_end(P);
            static const char *const ends[] = {"endset", NULL};
            n->b = parse_body(P, ends, &end);
            expect_block_end(P);
        }
        P->depth--;
        return n;   // expect_block_end done above
    } else if (is_name(t, "macro")) {
        n = node(P, N_MACRO, t);
        jinja_tok *name = expect_name(P);
        n->name = name->p;
        n->name_n = name->n;
        parse_params(P, n);
        expect_block_end(P);
        static const char *const ends[] = {"endmacro", NULL};
        n->b = parse_body(P, ends, &end);
    } else if (is_name(t, "call")) {
        n = node(P, N_CALL_BLOCK, t);
        if (is_op(cur(P), "(")) parse_params(P, n);
        n->a = parse_expr(P);
        if (n->a->t != N_CALL) parse_fail(P, t, "{%% call %%} needs a macro call");
        expect_block_end(P);
        static const char *const ends[] = {"endcall", NULL};
        n->b = parse_body(P, ends, &end);
    } else if (is_name(t, "filter")) {
        n = node(P, N_FILTER_BLOCK, t);
        jinja_node *filter = NULL;
        do filter = parse_filter(P, filter, cur(P)); while (accept_op(P, "|"));
        n->a = filter;
        expect_block_end(P);
        static const char *const ends[] = {"endfilter", NULL};
        n->b = parse_body(P, ends, &end);
    } else if (is_name(t, "with")) {
        // {% with a = 1, b = x %}...{% endwith %}: a scope of its own
        n = node(P, N_WITH, t);
        while (cur(P)->t != TK_BLOCK_END) {
            if (n->kw.n) expect_op(P, ",");
            jinja_tok *name = expect_name(P);
            jinja_node *k = node(P, N_NAME, name);
            k->name = name->p;
            k->name_n = name->n;
            expect_op(P, "=");
            k->a = parse_expr(P);
            add(P, &n->kw, k);
        }
        expect_block_end(P);
        static const char *const ends[] = {"endwith", NULL};
        n->b = parse_body(P, ends, &end);
    } else if (is_name(t, "generation")) {
        // transformers' assistant-mask tag: renders its body
        expect_block_end(P);
        static const char *const ends[] = {"endgeneration", NULL};
        n = parse_body(P, ends, &end);
    } else if (is_name(t, "break") || is_name(t, "continue")) {
        n = node(P, is_name(t, "break") ? N_BREAK : N_CONTINUE, t);
    } else {
        parse_fail(P, t, "unknown or unsupported tag '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p);
    }
    (void)begin;
    expect_block_end(P);
    P->depth--;
    return n;
}

// Statements up to one of the block tags named in ends (NULL-terminated; NULL ends: up to the
// end of the template). *end_tok is that tag's name; the parser stands after it.
static jinja_node *parse_body(parser *P, const char *const *ends, const jinja_tok **end_tok) {
    jinja_node *body = node(P, N_BODY, cur(P));
    for (;;) {
        jinja_tok *t = cur(P);
        switch (t->t) {
        case TK_EOF:
            if (ends) parse_fail(P, t, "the template ends before '{%% %s %%}'", ends[ends[1] && ends[2] ? 2 : ends[1] ? 1 : 0]);
            return body;
        case TK_TEXT: {
            jinja_node *x = node(P, N_TEXT, t);
            x->value = jv_strn(t->p, t->n);
            add(P, &body->args, x);
            P->i++;
            break;
        }
        case TK_VAR_BEGIN: {
            jinja_node *o = node(P, N_OUTPUT, t);
            P->i++;
            o->a = parse_tuple(P);
            if (cur(P)->t != TK_VAR_END) unexpected(P, cur(P), "'}}'");
            P->i++;
            add(P, &body->args, o);
            break;
        }
        case TK_BLOCK_BEGIN: {
            jinja_tok *name = &P->t[P->i + 1];
            if (name->t == TK_NAME && ends)
                for (const char *const *e = ends; *e; e++)
                    if (is_name(name, *e)) {
                        P->i += 2;
                        *end_tok = name;
                        return body;
                    }
            if (name->t == TK_NAME && (is_name(name, "elif") || is_name(name, "else") ||
                                       (name->n > 3 && !memcmp(name->p, "end", 3))))
                parse_fail(P, name, "unexpected '{%% %.*s %%}'", (int)(name->n > 40 ? 40 : name->n), name->p);
            add(P, &body->args, parse_statement(P));
            break;
        }
        default:
            unexpected(P, t, "text or a tag");
        }
    }
}

jinja_template *jinja_parse(const char *src, size_t len, const jinja_limits *lim, char *err, size_t errlen) {
    jinja_limits L = lim ? *lim : jinja_default_limits();
    jmp_buf fail;
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->arena.limit = L.max_memory;
    t->arena.fail = &fail;
    if (setjmp(fail)) {
        if (t->arena.over) snprintf(err, errlen, "the template needs more than %zu MB of memory to parse", L.max_memory >> 20);
        jinja_free(t);
        return NULL;
    }
    // Jinja2 reads \r\n and \r as \n, and drops one newline at the very end (keep_trailing_newline=False).
    char *s = jinja_alloc(&t->arena, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    jinja_tok *toks;
    size_t ntok = jinja_lex(&t->arena, s, n, &toks, err, errlen);
    parser P = {.a = &t->arena, .t = toks, .n = ntok, .max_depth = L.max_depth, .err = err, .errlen = errlen};
    t->root = parse_body(&P, NULL, NULL);
    t->arena.fail = NULL;
    return t;
}

void jinja_free(jinja_template *t) {
    if (!t) return;
    jinja_arena_free(&t->arena);
    free(t);
}
