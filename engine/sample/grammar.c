// GBNF grammars: the parser (text -> compiled rules, see grammar.h) and the pushdown matcher.
//
// The dialect is llama.cpp's (its grammars/README.md): `name ::= alternatives` rules ending at
// a newline (a newline after `|` or inside parentheses continues the rule), string literals,
// character classes with ranges and `^`, `.`, grouping, `*` `+` `?` `{m}` `{m,}` `{m,n}`,
// escapes \n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH, and `#` comments. Repetitions become
// helper rules (S{2,4} -> S S R2, R2 ::= S R1 |, R1 ::= S |), which keeps the matcher small.
// Every error names the line and column (1-based, in characters) where it was found.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/grammar.h"
#include "util.h"

#define MAX_REPEAT 100000u        // largest count in {m,n}
#define MAX_ELEMS (1u << 24)      // a grammar bigger than this is refused
#define MAX_NESTING 1024          // parentheses deeper than this are refused (the parser recurses)

// ---- small growable arrays --------------------------------------------------------------------

typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} u32vec;

static bool u32_push(u32vec *a, uint32_t x) {
    if (a->n == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 16;
        uint32_t *v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return true;
}

bool gr_set_reserve(gr_set *s, uint32_t extra) {
    if (s->n + extra <= s->cap) return true;
    uint32_t cap = s->cap ? s->cap : 64;
    while (cap < s->n + extra) cap *= 2;
    uint32_t *v = realloc(s->v, (size_t)cap * sizeof *v);
    if (!v) return false;
    s->v = v;
    s->cap = cap;
    return true;
}

void gr_set_free(gr_set *s) {
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

// ---- UTF-8 ------------------------------------------------------------------------------------

// Decodes one code point from s[0..n); returns its length, or 0 if it is not valid UTF-8.
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > GR_MAX_CODEPOINT || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

// ---- parser -----------------------------------------------------------------------------------

typedef struct {
    char *name;      // NULL for rules made from groups and repetitions
    size_t name_len;
    size_t def_pos;  // where it was defined (or the group / operator), for errors
    size_t ref_pos;  // where it was first referenced
    bool defined;
    u32vec elems;    // alternatives, each ending with GE_END
    u32vec alts;     // start of each alternative in elems
    uint32_t owner;  // the named rule it was made for (itself for named rules)
} prule;

typedef struct {
    uint32_t lo, hi;
} prange;

typedef struct {
    const char *src;
    size_t len, pos;
    prule *rules;
    uint32_t n_rules, cap_rules;
    prange *ranges; // every set's ranges, concatenated
    uint32_t n_ranges, cap_ranges;
    u32vec set_first; // set i: ranges[set_first[i] .. set_first[i + 1])
    uint32_t *names;  // open addressing over the named rules: rule id + 1, 0 empty
    uint32_t names_mask, n_named;
    int nesting;      // parentheses open around the current position
    size_t total_elems;
    char *err;
    size_t errlen;
    bool failed;
} parser;

static bool fail_at(parser *P, size_t pos, const char *fmt, ...) {
    if (P->failed) return false;
    P->failed = true;
    va_list ap;
    va_start(ap, fmt);
    ll_vset_err_at(P->err, P->errlen, P->src, SIZE_MAX, pos, fmt, ap);
    va_end(ap);
    return false;
}

static bool oom(parser *P) { return fail_at(P, P->pos, "out of memory"); }

static int peek(const parser *P) { return P->pos < P->len ? (unsigned char)P->src[P->pos] : -1; }
static int peek_at(const parser *P, size_t k) {
    return P->pos + k < P->len ? (unsigned char)P->src[P->pos + k] : -1;
}

static bool is_name_char(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

// Skips blanks and comments; newlines too when newline_ok.
static void skip_space(parser *P, bool newline_ok) {
    for (;;) {
        int c = peek(P);
        if (c == ' ' || c == '\t' || (newline_ok && (c == '\n' || c == '\r'))) {
            P->pos++;
        } else if (c == '#') {
            while (P->pos < P->len && P->src[P->pos] != '\n' && P->src[P->pos] != '\r') P->pos++;
        } else {
            return;
        }
    }
}

static uint32_t new_rule(parser *P, const char *name, size_t name_len, size_t pos, uint32_t owner) {
    if (P->n_rules == P->cap_rules) {
        uint32_t cap = P->cap_rules ? P->cap_rules * 2 : 32;
        prule *r = realloc(P->rules, (size_t)cap * sizeof *r);
        if (!r) { oom(P); return UINT32_MAX; }
        P->rules = r;
        P->cap_rules = cap;
    }
    if (P->n_rules >= (1u << 29)) { fail_at(P, pos, "grammar too large"); return UINT32_MAX; }
    prule *r = &P->rules[P->n_rules];
    memset(r, 0, sizeof *r);
    if (name) {
        r->name = malloc(name_len + 1);
        if (!r->name) { oom(P); return UINT32_MAX; }
        memcpy(r->name, name, name_len);
        r->name[name_len] = 0;
        r->name_len = name_len;
    }
    r->def_pos = r->ref_pos = pos;
    r->owner = name ? P->n_rules : owner;
    return P->n_rules++;
}

static uint32_t name_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u; // FNV-1a
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

// Puts rule id into the name table, doubling it when half full (a grammar of 100,000 rules
// must not cost a scan of all names per mention).
static bool name_insert(parser *P, uint32_t id) {
    if ((P->n_named + 1) * 2 > P->names_mask) {
        uint32_t size = P->names_mask ? (P->names_mask + 1) * 2 : 256;
        uint32_t *t = calloc(size, sizeof *t);
        if (!t) return oom(P);
        for (uint32_t i = 0; i <= P->names_mask && P->names; i++) {
            if (!P->names[i]) continue;
            const prule *r = &P->rules[P->names[i] - 1];
            uint32_t h = name_hash(r->name, r->name_len) & (size - 1);
            while (t[h]) h = (h + 1) & (size - 1);
            t[h] = P->names[i];
        }
        free(P->names);
        P->names = t;
        P->names_mask = size - 1;
    }
    const prule *r = &P->rules[id];
    uint32_t h = name_hash(r->name, r->name_len) & P->names_mask;
    while (P->names[h]) h = (h + 1) & P->names_mask;
    P->names[h] = id + 1;
    P->n_named++;
    return true;
}

// The id of the named rule, creating an (undefined) entry at its first mention.
static uint32_t rule_by_name(parser *P, const char *name, size_t len, size_t pos) {
    if (P->names) {
        for (uint32_t h = name_hash(name, len) & P->names_mask; P->names[h]; h = (h + 1) & P->names_mask) {
            const prule *r = &P->rules[P->names[h] - 1];
            if (r->name_len == len && !memcmp(r->name, name, len)) return P->names[h] - 1;
        }
    }
    uint32_t id = new_rule(P, name, len, pos, 0);
    if (id == UINT32_MAX || !name_insert(P, id)) return UINT32_MAX;
    return id;
}

static bool emit(parser *P, u32vec *elems, uint32_t e) {
    if (++P->total_elems > MAX_ELEMS) return fail_at(P, P->pos, "grammar too large");
    return u32_push(elems, e) || oom(P);
}

// ---- character sets ----

static int cmp_prange(const void *a, const void *b) {
    const prange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static bool push_range(parser *P, uint32_t lo, uint32_t hi) {
    if (P->n_ranges == P->cap_ranges) {
        uint32_t cap = P->cap_ranges ? P->cap_ranges * 2 : 64;
        prange *r = realloc(P->ranges, (size_t)cap * sizeof *r);
        if (!r) return oom(P);
        P->ranges = r;
        P->cap_ranges = cap;
    }
    P->ranges[P->n_ranges++] = (prange){ lo, hi };
    return true;
}

// Turns the ranges pushed since `first` into a set (sorted, merged, negated if asked);
// returns its id or UINT32_MAX.
static uint32_t finish_set(parser *P, uint32_t first, bool negate) {
    uint32_t n = P->n_ranges - first, m = 0;
    if (n > 0) { // an empty class ("[]") may come before any range exists
        prange *r = P->ranges + first;
        qsort(r, n, sizeof *r, cmp_prange);
        for (uint32_t i = 0; i < n; i++) {
            if (m > 0 && r[i].lo <= r[m - 1].hi + 1) {
                if (r[i].hi > r[m - 1].hi) r[m - 1].hi = r[i].hi;
            } else {
                r[m++] = r[i];
            }
        }
    }
    P->n_ranges = first + m;
    if (negate) {
        // The complement within [0, max code point], written after the set, then moved down.
        uint32_t next = 0;
        uint32_t base = P->n_ranges;
        for (uint32_t i = 0; i < m; i++) {
            prange x = P->ranges[first + i];
            if (x.lo > next && !push_range(P, next, x.lo - 1)) return UINT32_MAX;
            next = x.hi + 1;
        }
        if (next <= GR_MAX_CODEPOINT && !push_range(P, next, GR_MAX_CODEPOINT)) return UINT32_MAX;
        uint32_t k = P->n_ranges - base;
        memmove(P->ranges + first, P->ranges + base, (size_t)k * sizeof *P->ranges);
        P->n_ranges = first + k;
    }
    uint32_t id = P->set_first.n;
    if (!u32_push(&P->set_first, first)) { oom(P); return UINT32_MAX; }
    return id;
}

// ---- lexical pieces ----

// One character of a literal or a class, escapes included, into *cp.
static bool parse_char(parser *P, uint32_t *cp) {
    size_t start = P->pos;
    int c = peek(P);
    if (c < 0) return fail_at(P, start, "unexpected end of input");
    if (c == '\\') {
        int e = peek_at(P, 1);
        int ndig = 0;
        switch (e) {
        case 'x': ndig = 2; break;
        case 'u': ndig = 4; break;
        case 'U': ndig = 8; break;
        case 'n': *cp = '\n'; P->pos += 2; return true;
        case 'r': *cp = '\r'; P->pos += 2; return true;
        case 't': *cp = '\t'; P->pos += 2; return true;
        case '\\': case '"': case '[': case ']': case '-': case '^':
            *cp = (uint32_t)e;
            P->pos += 2;
            return true;
        case -1: return fail_at(P, start, "unexpected end of input after '\\'");
        default:
            if (e < 0x80 && e >= 0x20) return fail_at(P, start, "unknown escape '\\%c'", e);
            return fail_at(P, start, "unknown escape");
        }
        uint32_t v = 0;
        for (int i = 0; i < ndig; i++) {
            int h = ll_hex_digit(peek_at(P, 2 + (size_t)i));
            if (h < 0) return fail_at(P, start, "expected %d hex digits after '\\%c'", ndig, e);
            v = (v << 4) | (uint32_t)h;
        }
        if (v > GR_MAX_CODEPOINT) return fail_at(P, start, "code point U+%X out of range", v);
        *cp = v;
        P->pos += 2 + (size_t)ndig;
        return true;
    }
    int k = utf8_decode((const unsigned char *)P->src + P->pos, P->len - P->pos, cp);
    if (k == 0) return fail_at(P, start, "invalid UTF-8");
    P->pos += (size_t)k;
    return true;
}

static bool parse_uint(parser *P, uint32_t *out) {
    size_t start = P->pos;
    uint64_t v = 0;
    int c = peek(P);
    if (c < '0' || c > '9') return fail_at(P, start, "expected a number");
    while ((c = peek(P)) >= '0' && c <= '9') {
        v = v * 10 + (uint64_t)(c - '0');
        if (v > MAX_REPEAT) return fail_at(P, start, "repetition count above %u", MAX_REPEAT);
        P->pos++;
    }
    *out = (uint32_t)v;
    return true;
}

// ---- rules ----

static bool parse_alternates(parser *P, uint32_t rule, bool nested);

// Rewrites the symbol elems[from..) of the current alternative as that symbol repeated
// between min and max times (max UINT32_MAX: unbounded).
static bool apply_repeat(parser *P, uint32_t rule_id, size_t from, uint32_t min, uint32_t max,
                         size_t op_pos) {
    u32vec *elems = &P->rules[rule_id].elems;
    uint32_t owner = P->rules[rule_id].owner;
    uint32_t n = elems->n - (uint32_t)from;
    if (n == 0) return true; // an empty symbol ("") repeated is still empty
    uint32_t *sym = malloc((size_t)n * sizeof *sym);
    if (!sym) return oom(P);
    memcpy(sym, elems->v + from, (size_t)n * sizeof *sym);
    bool ok = true;
    elems->n = (uint32_t)from;
    for (uint32_t i = 0; i < min && ok; i++)
        for (uint32_t j = 0; j < n && ok; j++) ok = emit(P, &P->rules[rule_id].elems, sym[j]);
    if (ok && max == UINT32_MAX) {
        // R ::= sym R |
        uint32_t r = new_rule(P, NULL, 0, op_pos, owner);
        if (r == UINT32_MAX) { free(sym); return false; }
        prule *R = &P->rules[r];
        R->defined = true;
        ok = u32_push(&R->alts, 0) || oom(P);
        for (uint32_t j = 0; j < n && ok; j++) ok = emit(P, &P->rules[r].elems, sym[j]);
        ok = ok && emit(P, &P->rules[r].elems, GE_MAKE(GE_REF, r)) && emit(P, &P->rules[r].elems, GE_END);
        ok = ok && (u32_push(&P->rules[r].alts, P->rules[r].elems.n) || oom(P));
        ok = ok && emit(P, &P->rules[r].elems, GE_END);
        ok = ok && emit(P, &P->rules[rule_id].elems, GE_MAKE(GE_REF, r));
    } else if (ok && max > min) {
        // R1 ::= sym |    Rk ::= sym R(k-1) |    then a reference to R(max-min)
        uint32_t prev = UINT32_MAX;
        for (uint32_t k = 1; k <= max - min && ok; k++) {
            uint32_t r = new_rule(P, NULL, 0, op_pos, owner);
            if (r == UINT32_MAX) { free(sym); return false; }
            P->rules[r].defined = true;
            ok = u32_push(&P->rules[r].alts, 0) || oom(P);
            for (uint32_t j = 0; j < n && ok; j++) ok = emit(P, &P->rules[r].elems, sym[j]);
            if (ok && prev != UINT32_MAX) ok = emit(P, &P->rules[r].elems, GE_MAKE(GE_REF, prev));
            ok = ok && emit(P, &P->rules[r].elems, GE_END);
            ok = ok && (u32_push(&P->rules[r].alts, P->rules[r].elems.n) || oom(P));
            ok = ok && emit(P, &P->rules[r].elems, GE_END);
            prev = r;
        }
        ok = ok && emit(P, &P->rules[rule_id].elems, GE_MAKE(GE_REF, prev));
    }
    free(sym);
    return ok;
}

// One alternative: a sequence of symbols, each maybe followed by repetition operators.
static bool parse_sequence(parser *P, uint32_t rule_id, bool nested) {
    size_t last_sym = SIZE_MAX; // where the last symbol's elements start in the alternative
    for (;;) {
        int c = peek(P);
        size_t start = P->pos;
        u32vec *elems = &P->rules[rule_id].elems;
        if (c == '"') {
            P->pos++;
            last_sym = elems->n;
            while (peek(P) != '"') {
                if (peek(P) < 0) return fail_at(P, start, "unterminated string literal");
                uint32_t cp;
                if (!parse_char(P, &cp)) return false;
                uint32_t first = P->n_ranges;
                if (!push_range(P, cp, cp)) return false;
                uint32_t set = finish_set(P, first, false);
                if (set == UINT32_MAX || !emit(P, &P->rules[rule_id].elems, GE_MAKE(GE_CHAR, set)))
                    return false;
            }
            P->pos++;
        } else if (c == '[') {
            P->pos++;
            bool negate = false;
            if (peek(P) == '^') { negate = true; P->pos++; }
            uint32_t first = P->n_ranges;
            while (peek(P) != ']') {
                if (peek(P) < 0) return fail_at(P, start, "unterminated character class");
                uint32_t lo, hi;
                if (!parse_char(P, &lo)) return false;
                hi = lo;
                if (peek(P) == '-' && peek_at(P, 1) != ']' && peek_at(P, 1) >= 0) {
                    size_t rpos = P->pos;
                    P->pos++;
                    if (!parse_char(P, &hi)) return false;
                    if (hi < lo) return fail_at(P, rpos, "range end below its start");
                }
                if (!push_range(P, lo, hi)) return false;
            }
            P->pos++;
            uint32_t set = finish_set(P, first, negate);
            last_sym = elems->n;
            if (set == UINT32_MAX || !emit(P, elems, GE_MAKE(GE_CHAR, set))) return false;
        } else if (c == '.') {
            P->pos++;
            uint32_t first = P->n_ranges;
            if (!push_range(P, 0, GR_MAX_CODEPOINT)) return false;
            uint32_t set = finish_set(P, first, false);
            last_sym = elems->n;
            if (set == UINT32_MAX || !emit(P, &P->rules[rule_id].elems, GE_MAKE(GE_CHAR, set)))
                return false;
        } else if (is_name_char(c)) {
            while (is_name_char(peek(P))) P->pos++;
            uint32_t ref = rule_by_name(P, P->src + start, P->pos - start, start);
            if (ref == UINT32_MAX) return false;
            last_sym = P->rules[rule_id].elems.n;
            if (!emit(P, &P->rules[rule_id].elems, GE_MAKE(GE_REF, ref))) return false;
        } else if (c == '(') {
            if (P->nesting >= MAX_NESTING)
                return fail_at(P, start, "nested too deeply (more than %d levels of parentheses)", MAX_NESTING);
            P->pos++;
            skip_space(P, true);
            uint32_t sub = new_rule(P, NULL, 0, start, P->rules[rule_id].owner);
            if (sub == UINT32_MAX) return false;
            P->rules[sub].defined = true;
            P->nesting++;
            if (!parse_alternates(P, sub, true)) return false;
            P->nesting--;
            if (peek(P) != ')') {
                if (peek(P) < 0) return fail_at(P, start, "unclosed '('");
                return fail_at(P, P->pos, "expected ')'");
            }
            P->pos++;
            last_sym = P->rules[rule_id].elems.n;
            if (!emit(P, &P->rules[rule_id].elems, GE_MAKE(GE_REF, sub))) return false;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last_sym == SIZE_MAX) return fail_at(P, start, "'%c' without an item before it", c);
            uint32_t min, max;
            P->pos++;
            if (c == '*') { min = 0; max = UINT32_MAX; }
            else if (c == '+') { min = 1; max = UINT32_MAX; }
            else if (c == '?') { min = 0; max = 1; }
            else {
                skip_space(P, nested);
                if (!parse_uint(P, &min)) return false;
                skip_space(P, nested);
                max = min;
                if (peek(P) == ',') {
                    P->pos++;
                    skip_space(P, nested);
                    max = UINT32_MAX;
                    int d = peek(P);
                    if (d >= '0' && d <= '9' && !parse_uint(P, &max)) return false;
                    skip_space(P, nested);
                }
                if (peek(P) != '}') return fail_at(P, P->pos, "expected '}' to close '{'");
                P->pos++;
                if (max < min) return fail_at(P, start, "repetition maximum %u below its minimum %u", max, min);
            }
            if (!apply_repeat(P, rule_id, last_sym, min, max, start)) return false;
            // Like llama.cpp, a further operator applies to all of this expansion (x{2}{3} is
            // x{6}); after x{0} there is nothing left for it to repeat.
            if (P->rules[rule_id].elems.n == last_sym) last_sym = SIZE_MAX;
        } else {
            return true;
        }
        skip_space(P, nested);
    }
}

static bool parse_alternates(parser *P, uint32_t rule, bool nested) {
    for (;;) {
        if (!u32_push(&P->rules[rule].alts, P->rules[rule].elems.n)) return oom(P);
        if (!parse_sequence(P, rule, nested)) return false;
        if (!emit(P, &P->rules[rule].elems, GE_END)) return false;
        if (peek(P) != '|') return true;
        P->pos++;
        skip_space(P, true);
    }
}

static bool parse_rule(parser *P) {
    size_t start = P->pos;
    if (!is_name_char(peek(P))) {
        int c = peek(P);
        if (c >= 0x20 && c < 0x7F) return fail_at(P, start, "expected a rule name, found '%c'", c);
        return fail_at(P, start, "expected a rule name");
    }
    while (is_name_char(peek(P))) P->pos++;
    size_t name_len = P->pos - start;
    uint32_t id = rule_by_name(P, P->src + start, name_len, start);
    if (id == UINT32_MAX) return false;
    skip_space(P, false);
    if (!(peek(P) == ':' && peek_at(P, 1) == ':' && peek_at(P, 2) == '=')) {
        return fail_at(P, P->pos, "expected '::=' after rule name '%.*s'", (int)name_len, P->src + start);
    }
    prule *r = &P->rules[id];
    if (r->defined) {
        int line, col;
        ll_line_col(P->src, SIZE_MAX, r->def_pos, &line, &col);
        return fail_at(P, start, "rule '%s' already defined at %d:%d", r->name, line, col);
    }
    r->defined = true;
    r->def_pos = start;
    P->pos += 3;
    skip_space(P, true);
    if (!parse_alternates(P, id, false)) return false;
    int c = peek(P);
    if (c == '\r' || c == '\n' || c < 0) {
        skip_space(P, true);
        return true;
    }
    if (c == ')') return fail_at(P, P->pos, "unmatched ')'");
    if (c >= 0x20 && c < 0x7F) return fail_at(P, P->pos, "unexpected '%c'", c);
    return fail_at(P, P->pos, "unexpected character");
}

// ---- checks after parsing ----

// Left recursion: a rule that can reach itself without consuming input (the matcher would
// expand it forever). First which rules can match the empty string (a worklist fixed point),
// then "may start with" edges (a reference preceded only by nullable ones) and a cycle search.
static bool check_left_recursion(parser *P) {
    uint32_t n = P->n_rules;
    size_t n_el = 0;
    for (uint32_t r = 0; r < n; r++) n_el += P->rules[r].elems.n;
    bool *nullable = calloc(n + 1, sizeof *nullable);
    uint32_t *occ_first = calloc(n + 2, sizeof *occ_first); // uses of rule x: occ[occ_first[x]..]
    uint32_t *occ = malloc((n_el + 1) * sizeof *occ);         // (alternative id) per use
    uint32_t *alt_rule = NULL, *alt_left = NULL, *queue = NULL;
    uint32_t n_alts = 0;
    for (uint32_t r = 0; r < n; r++) n_alts += P->rules[r].alts.n;
    alt_rule = malloc((n_alts + 1) * sizeof *alt_rule);
    alt_left = malloc((n_alts + 1) * sizeof *alt_left); // references not yet known nullable
    queue = malloc((n + 1) * sizeof *queue);
    uint32_t *edge_first = calloc(n + 2, sizeof *edge_first), *edges = NULL;
    uint32_t *stack = malloc((n + 1) * sizeof *stack), *next_edge = malloc((n + 1) * sizeof *next_edge);
    uint8_t *state = calloc(n + 1, 1); // 0 unseen, 1 on the DFS path, 2 finished
    bool ok = nullable && occ_first && occ && alt_rule && alt_left && queue && edge_first && stack &&
              next_edge && state;
    if (!ok) { oom(P); goto out; }

    // Nullable rules.
    uint32_t qn = 0, aid = 0;
    for (uint32_t r = 0; r < n; r++) {
        prule *R = &P->rules[r];
        for (uint32_t a = 0; a < R->alts.n; a++, aid++) {
            alt_rule[aid] = r;
            alt_left[aid] = 0;
            bool has_char = false;
            for (uint32_t i = R->alts.v[a]; R->elems.v[i] != GE_END; i++) {
                uint32_t e = R->elems.v[i];
                if (GE_TYPE(e) == GE_CHAR) has_char = true;
                else { alt_left[aid]++; occ_first[GE_VAL(e) + 1]++; }
            }
            if (has_char) alt_left[aid] = UINT32_MAX; // can never be empty
            else if (alt_left[aid] == 0 && !nullable[r]) { nullable[r] = true; queue[qn++] = r; }
        }
    }
    for (uint32_t x = 0; x < n; x++) occ_first[x + 1] += occ_first[x];
    {
        uint32_t *fill = calloc(n + 1, sizeof *fill);
        if (!fill) { ok = oom(P); goto out; }
        aid = 0;
        for (uint32_t r = 0; r < n; r++) {
            prule *R = &P->rules[r];
            for (uint32_t a = 0; a < R->alts.n; a++, aid++)
                for (uint32_t i = R->alts.v[a]; R->elems.v[i] != GE_END; i++) {
                    uint32_t e = R->elems.v[i];
                    if (GE_TYPE(e) == GE_REF) occ[occ_first[GE_VAL(e)] + fill[GE_VAL(e)]++] = aid;
                }
        }
        free(fill);
    }
    for (uint32_t qi = 0; qi < qn; qi++) {
        uint32_t x = queue[qi];
        for (uint32_t k = occ_first[x]; k < occ_first[x + 1]; k++) {
            uint32_t a = occ[k];
            if (alt_left[a] == UINT32_MAX || alt_left[a] == 0) continue;
            if (--alt_left[a] == 0 && !nullable[alt_rule[a]]) {
                nullable[alt_rule[a]] = true;
                queue[qn++] = alt_rule[a];
            }
        }
    }

    // "May start with" edges, in CSR form.
    for (int pass = 0; pass < 2; pass++) {
        uint32_t ne = 0;
        for (uint32_t r = 0; r < n; r++) {
            prule *R = &P->rules[r];
            if (pass == 1) edge_first[r] = ne;
            for (uint32_t a = 0; a < R->alts.n; a++)
                for (uint32_t i = R->alts.v[a]; R->elems.v[i] != GE_END; i++) {
                    uint32_t e = R->elems.v[i];
                    if (GE_TYPE(e) == GE_CHAR) break;
                    if (pass == 1) edges[ne] = GE_VAL(e);
                    ne++;
                    if (!nullable[GE_VAL(e)]) break;
                }
        }
        if (pass == 0) {
            edges = malloc(((size_t)ne + 1) * sizeof *edges);
            if (!edges) { ok = oom(P); goto out; }
        } else {
            edge_first[n] = ne;
        }
    }

    // Cycle search (iterative DFS).
    for (uint32_t r0 = 0; r0 < n && ok; r0++) {
        if (state[r0]) continue;
        uint32_t depth = 0;
        stack[depth] = r0; next_edge[depth] = edge_first[r0]; depth++;
        state[r0] = 1;
        while (depth > 0) {
            uint32_t r = stack[depth - 1];
            if (next_edge[depth - 1] == edge_first[r + 1]) {
                state[r] = 2;
                depth--;
                continue;
            }
            uint32_t x = edges[next_edge[depth - 1]++];
            if (state[x] == 1) {
                // Report the first named rule on the cycle (groups belong to their owner).
                uint32_t k = depth;
                while (k > 0 && stack[k - 1] != x) k--;
                uint32_t named = UINT32_MAX;
                for (uint32_t j = k; j > 0 && j <= depth && named == UINT32_MAX; j++)
                    if (P->rules[stack[j - 1]].name) named = stack[j - 1];
                if (named == UINT32_MAX) named = P->rules[x].owner;
                ok = fail_at(P, P->rules[named].def_pos, "left recursion in rule '%s'",
                             P->rules[P->rules[named].owner].name);
                break;
            }
            if (state[x] == 0) {
                state[x] = 1;
                stack[depth] = x; next_edge[depth] = edge_first[x]; depth++;
            }
        }
    }
out:
    free(nullable); free(occ_first); free(occ); free(alt_rule); free(alt_left); free(queue);
    free(edge_first); free(edges); free(stack); free(next_edge); free(state);
    return ok;
}

static void parser_free(parser *P) {
    for (uint32_t i = 0; i < P->n_rules; i++) {
        free(P->rules[i].name);
        free(P->rules[i].elems.v);
        free(P->rules[i].alts.v);
    }
    free(P->rules);
    free(P->ranges);
    free(P->set_first.v);
    free(P->names);
}

static uint32_t sat_add(uint32_t a, uint32_t b) { return a + b >= GR_FAR ? GR_FAR : a + b; }

// Bytes of the shortest character a set holds (GR_FAR for an empty set).
static uint32_t charset_min_bytes(const ll_grammar *g, uint32_t set) {
    const gr_charset *cs = &g->sets[set];
    if (!cs->n) return GR_FAR;
    uint32_t lo = g->ranges[cs->first].lo;
    return lo < 0x80 ? 1 : lo < 0x800 ? 2 : lo < 0x10000 ? 3 : 4;
}

typedef struct {
    uint32_t cost, rule;
} heap_item;

static void heap_push(heap_item *h, uint32_t *n, heap_item x) {
    uint32_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2].cost > x.cost) { h[i] = h[(i - 1) / 2]; i = (i - 1) / 2; }
    h[i] = x;
}

static heap_item heap_pop(heap_item *h, uint32_t *n) {
    heap_item top = h[0], last = h[--*n];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1].cost < h[c].cost) c++;
        if (h[c].cost >= last.cost) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

// Fewest bytes each rule can match, exactly and in O(size log size) whatever the order of
// the rules (Knuth's generalisation of Dijkstra's algorithm): a rule is settled at the
// cheapest alternative whose references are all settled, cheapest first.
static bool rule_min_bytes(const ll_grammar *g, uint32_t *rule_min) {
    const uint32_t n_rules = g->n_rules, n_alts = g->rule_alts[n_rules];
    uint32_t *acc = malloc(((size_t)n_alts + 1) * sizeof *acc);          // cost so far
    uint32_t *pending = malloc(((size_t)n_alts + 1) * sizeof *pending);  // unsettled references
    uint32_t *alt_rule = malloc(((size_t)n_alts + 1) * sizeof *alt_rule);
    uint32_t *use_first = calloc((size_t)n_rules + 3, sizeof *use_first); // uses of rule x:
    uint32_t *uses = malloc(((size_t)g->n_elems + 1) * sizeof *uses);     // uses[use_first[x]..]
    heap_item *heap = malloc(((size_t)n_alts + 1) * sizeof *heap);
    bool *settled = calloc((size_t)n_rules + 1, sizeof *settled);
    bool ok = acc && pending && alt_rule && use_first && uses && heap && settled;
    uint32_t n_heap = 0;
    for (uint32_t r = 0; ok && r < n_rules; r++) {
        rule_min[r] = GR_FAR;
        for (uint32_t a = g->rule_alts[r]; a < g->rule_alts[r + 1]; a++) {
            alt_rule[a] = r;
            acc[a] = 0;
            pending[a] = 0;
            for (uint32_t p = g->alts[a]; g->elems[p] != GE_END; p++) {
                uint32_t e = g->elems[p];
                if (GE_TYPE(e) == GE_REF) { pending[a]++; use_first[GE_VAL(e) + 2]++; }
                else acc[a] = sat_add(acc[a], charset_min_bytes(g, GE_VAL(e)));
            }
            if (pending[a] == 0) heap_push(heap, &n_heap, (heap_item){ acc[a], r });
        }
    }
    // Counted one slot ahead, so that filling moves use_first[x + 1] from x's start to its end.
    for (uint32_t x = 0; ok && x < n_rules; x++) use_first[x + 1] += use_first[x];
    for (uint32_t a = 0; ok && a < n_alts; a++)
        for (uint32_t p = g->alts[a]; g->elems[p] != GE_END; p++)
            if (GE_TYPE(g->elems[p]) == GE_REF) uses[use_first[GE_VAL(g->elems[p]) + 1]++] = a;
    while (ok && n_heap > 0) {
        heap_item it = heap_pop(heap, &n_heap);
        if (settled[it.rule]) continue;
        settled[it.rule] = true;
        rule_min[it.rule] = it.cost;
        for (uint32_t k = use_first[it.rule]; k < use_first[it.rule + 1]; k++) {
            uint32_t a = uses[k];
            acc[a] = sat_add(acc[a], it.cost);
            if (--pending[a] == 0 && !settled[alt_rule[a]]) heap_push(heap, &n_heap, (heap_item){ acc[a], alt_rule[a] });
        }
    }
    free(acc); free(pending); free(alt_rule); free(use_first); free(uses); free(heap); free(settled);
    return ok;
}

// Per position, the fewest bytes from it to the end of its alternative.
static bool compute_rest_min(ll_grammar *g) {
    uint32_t *rule_min = malloc(((size_t)g->n_rules + 1) * sizeof *rule_min);
    g->rest_min = malloc((size_t)g->n_elems * sizeof *g->rest_min);
    if (!rule_min || !g->rest_min || !rule_min_bytes(g, rule_min)) { free(rule_min); return false; }
    // Suffix sums, walking each alternative backward from its END.
    for (uint32_t p = 0; p < g->n_elems; p++) g->rest_min[p] = 0;
    for (uint32_t a = 0; a < g->rule_alts[g->n_rules]; a++) {
        uint32_t end = g->alts[a];
        while (g->elems[end] != GE_END) end++;
        uint32_t acc = 0;
        for (uint32_t p = end; p-- > g->alts[a];) {
            uint32_t e = g->elems[p];
            uint32_t c;
            if (GE_TYPE(e) == GE_REF) c = rule_min[GE_VAL(e)];
            else c = charset_min_bytes(g, GE_VAL(e));
            acc = sat_add(acc, c);
            g->rest_min[p] = acc;
        }
    }
    free(rule_min);
    return true;
}

// Lays the parsed rules out flat (see grammar.h).
static ll_grammar *build(parser *P, uint32_t root) {
    ll_grammar *g = calloc(1, sizeof *g);
    if (!g) { oom(P); return NULL; }
    uint32_t n_elems = 0, n_alts = 0;
    for (uint32_t r = 0; r < P->n_rules; r++) {
        n_elems += P->rules[r].elems.n;
        n_alts += P->rules[r].alts.n;
    }
    g->n_rules = P->n_rules;
    g->n_elems = n_elems + 1; // a trailing GE_END so position+1 never runs off the end
    g->elems = malloc((size_t)g->n_elems * sizeof *g->elems);
    g->alts = malloc((size_t)(n_alts ? n_alts : 1) * sizeof *g->alts);
    g->rule_alts = malloc((size_t)(P->n_rules + 1) * sizeof *g->rule_alts);
    g->n_sets = P->set_first.n;
    g->sets = calloc(g->n_sets ? g->n_sets : 1, sizeof *g->sets);
    g->n_ranges = P->n_ranges;
    g->ranges = malloc((size_t)(P->n_ranges ? P->n_ranges : 1) * sizeof *g->ranges);
    if (!g->elems || !g->alts || !g->rule_alts || !g->sets || !g->ranges) {
        ll_grammar_free(g);
        oom(P);
        return NULL;
    }
    uint32_t e = 0, a = 0;
    for (uint32_t r = 0; r < P->n_rules; r++) {
        prule *R = &P->rules[r];
        g->rule_alts[r] = a;
        for (uint32_t k = 0; k < R->alts.n; k++) g->alts[a++] = e + R->alts.v[k];
        memcpy(g->elems + e, R->elems.v, (size_t)R->elems.n * sizeof *g->elems);
        e += R->elems.n;
    }
    g->rule_alts[P->n_rules] = a;
    g->elems[e] = GE_END;
    for (uint32_t i = 0; i < P->n_ranges; i++) g->ranges[i] = (gr_range){ P->ranges[i].lo, P->ranges[i].hi };
    for (uint32_t s = 0; s < g->n_sets; s++) {
        gr_charset *cs = &g->sets[s];
        cs->first = P->set_first.v[s];
        uint32_t end = s + 1 < g->n_sets ? P->set_first.v[s + 1] : P->n_ranges;
        // Sets are finished in order, but a negated class may have grown the range list
        // after a later set started: ranges of set s end where set s+1's begin.
        cs->n = end - cs->first;
        for (uint32_t i = 0; i < cs->n; i++) {
            gr_range rg = g->ranges[cs->first + i];
            for (uint32_t c = rg.lo; c <= rg.hi && c < 128; c++) cs->ascii[c >> 6] |= 1ull << (c & 63);
        }
    }
    g->root = root;
    if (!compute_rest_min(g)) {
        ll_grammar_free(g);
        oom(P);
        return NULL;
    }
    return g;
}

ll_grammar *ll_grammar_parse(const char *gbnf, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    parser P = { .src = gbnf ? gbnf : "", .err = err, .errlen = errlen };
    P.len = strlen(P.src);
    ll_grammar *g = NULL;
    skip_space(&P, true);
    while (!P.failed && P.pos < P.len) {
        if (!parse_rule(&P)) break;
    }
    if (P.failed) goto out;
    for (uint32_t r = 0; r < P.n_rules; r++) {
        if (!P.rules[r].defined) {
            fail_at(&P, P.rules[r].ref_pos, "undefined rule '%s'", P.rules[r].name);
            goto out;
        }
    }
    uint32_t root = UINT32_MAX;
    for (uint32_t r = 0; r < P.n_rules; r++)
        if (P.rules[r].name && !strcmp(P.rules[r].name, "root")) root = r;
    if (root == UINT32_MAX) {
        fail_at(&P, P.len, "no 'root' rule (the grammar starts at root ::= ...)");
        goto out;
    }
    if (!check_left_recursion(&P)) goto out;
    g = build(&P, root);
out:
    parser_free(&P);
    return g;
}

void ll_grammar_free(ll_grammar *g) {
    if (!g) return;
    free(g->elems);
    free(g->alts);
    free(g->rule_alts);
    free(g->sets);
    free(g->ranges);
    free(g->rest_min);
    free(g);
}

static void *dup_mem(const void *p, size_t n) {
    void *q = malloc(n ? n : 1);
    if (q && n) memcpy(q, p, n);
    return q;
}

ll_grammar *gr_copy(const ll_grammar *g) {
    if (!g) return NULL;
    ll_grammar *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    *c = *g;
    c->elems = dup_mem(g->elems, (size_t)g->n_elems * sizeof *g->elems);
    c->alts = dup_mem(g->alts, (size_t)g->rule_alts[g->n_rules] * sizeof *g->alts);
    c->rule_alts = dup_mem(g->rule_alts, (size_t)(g->n_rules + 1) * sizeof *g->rule_alts);
    c->sets = dup_mem(g->sets, (size_t)g->n_sets * sizeof *g->sets);
    c->ranges = dup_mem(g->ranges, (size_t)g->n_ranges * sizeof *g->ranges);
    c->rest_min = dup_mem(g->rest_min, (size_t)g->n_elems * sizeof *g->rest_min);
    if (!c->elems || !c->alts || !c->rule_alts || !c->sets || !c->ranges || !c->rest_min) {
        ll_grammar_free(c);
        return NULL;
    }
    return c;
}

// ---- character set queries ------------------------------------------------------------------

bool gr_charset_has(const ll_grammar *g, uint32_t set, uint32_t cp) {
    const gr_charset *cs = &g->sets[set];
    if (cp < 128) return (cs->ascii[cp >> 6] >> (cp & 63)) & 1;
    return gr_charset_meets(g, set, cp, cp);
}

bool gr_charset_meets(const ll_grammar *g, uint32_t set, uint32_t lo, uint32_t hi) {
    const gr_charset *cs = &g->sets[set];
    const gr_range *r = g->ranges + cs->first;
    // The first range whose end reaches lo; it meets [lo, hi] if it starts by hi.
    uint32_t a = 0, b = cs->n;
    while (a < b) {
        uint32_t m = (a + b) / 2;
        if (r[m].hi < lo) a = m + 1;
        else b = m;
    }
    return a < cs->n && r[a].lo <= hi;
}

// ---- matcher ----------------------------------------------------------------------------------

typedef struct {
    uint32_t p, parent;
} gr_item;

struct gr_matcher {
    const ll_grammar *g;
    uint32_t *pos, *parent; // node i: (element position, parent node); node 0: the empty stack
    uint32_t *mark;         // mark[i] == gen: node i is already in the set being built
    uint32_t *minrest;      // fewest bytes that complete stack i (UINT32_MAX: not known yet)
    uint32_t n_nodes, cap_nodes;
    uint32_t *table;        // open addressing: node ids, 0 empty
    uint32_t table_mask;
    uint32_t gen;
    gr_item *work;          // expand's pending (element, parent) pairs
    uint32_t n_work, cap_work;
    bool oom;
    bool too_ambiguous; // the last step passed GR_MAX_STACKS
    uint64_t visits;    // work items expanded and stacks stepped, ever (gr_work)
    uint64_t visit_limit; // past it a step stops as too ambiguous (gr_set_work_limit)
};

static inline uint32_t hash2(uint32_t a, uint32_t b) {
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

static bool table_rebuild(gr_matcher *m, uint32_t size) {
    uint32_t *t = calloc(size, sizeof *t);
    if (!t) return false;
    free(m->table);
    m->table = t;
    m->table_mask = size - 1;
    for (uint32_t i = 1; i < m->n_nodes; i++) {
        uint32_t h = hash2(m->pos[i], m->parent[i]) & m->table_mask;
        while (t[h]) h = (h + 1) & m->table_mask;
        t[h] = i;
    }
    return true;
}

static bool nodes_grow(gr_matcher *m) {
    uint32_t cap = m->cap_nodes ? m->cap_nodes * 2 : 1024;
    uint32_t *p = realloc(m->pos, (size_t)cap * sizeof *p);
    if (!p) return false;
    m->pos = p;
    p = realloc(m->parent, (size_t)cap * sizeof *p);
    if (!p) return false;
    m->parent = p;
    p = realloc(m->mark, (size_t)cap * sizeof *p);
    if (!p) return false;
    memset(p + m->cap_nodes, 0, (size_t)(cap - m->cap_nodes) * sizeof *p);
    m->mark = p;
    p = realloc(m->minrest, (size_t)cap * sizeof *p);
    if (!p) return false;
    m->minrest = p;
    m->cap_nodes = cap;
    return true;
}

// The node for stack (position, parent), made if new. 0 when out of memory (sets oom).
static uint32_t intern(gr_matcher *m, uint32_t pos, uint32_t parent) {
    uint32_t h = hash2(pos, parent) & m->table_mask;
    for (uint32_t id; (id = m->table[h]) != 0; h = (h + 1) & m->table_mask) {
        if (m->pos[id] == pos && m->parent[id] == parent) return id;
    }
    if (m->n_nodes == m->cap_nodes && !nodes_grow(m)) { m->oom = true; return 0; }
    uint32_t id = m->n_nodes++;
    m->pos[id] = pos;
    m->parent[id] = parent;
    m->mark[id] = 0;
    m->minrest[id] = UINT32_MAX;
    m->table[h] = id;
    if ((uint64_t)m->n_nodes * 2 > m->table_mask) {
        if (!table_rebuild(m, (m->table_mask + 1) * 2)) { m->oom = true; m->n_nodes--; return 0; }
    }
    return id;
}

gr_matcher *gr_matcher_new(const ll_grammar *g) {
    gr_matcher *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->g = g;
    if (!nodes_grow(m) || !table_rebuild(m, 2048)) {
        gr_matcher_free(m);
        return NULL;
    }
    m->n_nodes = 1;
    m->pos[0] = m->parent[0] = 0;
    m->minrest[0] = 0;
    m->gen = 1;
    m->visit_limit = UINT64_MAX;
    return m;
}

void gr_matcher_free(gr_matcher *m) {
    if (!m) return;
    free(m->pos);
    free(m->parent);
    free(m->mark);
    free(m->minrest);
    free(m->table);
    free(m->work);
    free(m);
}

uint32_t gr_matcher_n_nodes(const gr_matcher *m) { return m->n_nodes; }

static void set_add(gr_matcher *m, gr_set *out, uint32_t id) {
    if (m->mark[id] == m->gen) return;
    if (!gr_set_reserve(out, 1)) { m->oom = true; return; }
    m->mark[id] = m->gen;
    out->v[out->n++] = id;
}

#define EMPTY_STACK UINT32_MAX // a work item that stands for stack 0 (the grammar is done)

static bool work_push(gr_matcher *m, uint32_t p, uint32_t parent) {
    if (m->n_work == m->cap_work) {
        uint32_t cap = m->cap_work ? m->cap_work * 2 : 256;
        gr_item *w = realloc(m->work, (size_t)cap * sizeof *w);
        if (!w) { m->oom = true; return false; }
        m->work = w;
        m->cap_work = cap;
    }
    m->work[m->n_work++] = (gr_item){ p, parent };
    return true;
}

// Continuing with stack s: the element its top points at (if any) is the one to match next.
static bool push_resume(gr_matcher *m, uint32_t s) {
    return s == 0 ? work_push(m, EMPTY_STACK, 0) : work_push(m, m->pos[s], m->parent[s]);
}

// Adds every stack reachable from (element at p, then parent) whose top is a character.
// An explicit work list instead of recursion: a chain of 100,000 rules is as fine as one of
// ten. Alternatives are pushed last-first so they come out in the grammar's order.
static void expand(gr_matcher *m, uint32_t p0, uint32_t parent0, gr_set *out) {
    const ll_grammar *g = m->g;
    uint32_t base = m->n_work;
    if (!work_push(m, p0, parent0)) return;
    while (m->n_work > base && !m->oom) {
        gr_item it = m->work[--m->n_work];
        if (++m->visits > m->visit_limit) {
            m->too_ambiguous = m->oom = true;
            break;
        }
        if (it.p == EMPTY_STACK) { set_add(m, out, 0); continue; }
        uint32_t e = g->elems[it.p];
        if (GE_TYPE(e) == GE_CHAR) {
            uint32_t id = intern(m, it.p, it.parent);
            if (id) set_add(m, out, id);
            continue;
        }
        // A reference expanded before in this step (same position, same stack below) adds
        // nothing new: without this, a chain of nullable rules (x????...) takes 2^n paths.
        // Its node's mark says so (only character nodes are ever set members).
        uint32_t self = intern(m, it.p, it.parent);
        if (!self) break;
        if (m->mark[self] == m->gen) continue;
        m->mark[self] = m->gen;
        // Push where to come back (unless the rule is in tail position), then try each
        // alternative of the referenced rule.
        uint32_t ret = it.parent;
        if (g->elems[it.p + 1] != GE_END && !(ret = intern(m, it.p + 1, it.parent))) break;
        uint32_t r = GE_VAL(e);
        for (uint32_t a = g->rule_alts[r + 1]; a-- > g->rule_alts[r];) {
            uint32_t start = g->alts[a];
            if (g->elems[start] == GE_END) push_resume(m, ret);
            else work_push(m, start, ret);
        }
    }
    m->n_work = base;
}

static void resume(gr_matcher *m, uint32_t s, gr_set *out) {
    if (s == 0) set_add(m, out, 0);
    else expand(m, m->pos[s], m->parent[s], out);
}

bool gr_start(gr_matcher *m, gr_set *out) {
    const ll_grammar *g = m->g;
    m->gen++;
    m->oom = false;
    for (uint32_t a = g->rule_alts[g->root]; a < g->rule_alts[g->root + 1]; a++) {
        uint32_t start = g->alts[a];
        if (g->elems[start] == GE_END) set_add(m, out, 0);
        else expand(m, start, 0, out);
    }
    return !m->oom;
}

// Code point c taken by every stack of io[first..first+n) that can: appended to io.
static void accept_cp(gr_matcher *m, gr_set *io, uint32_t first, uint32_t n, uint32_t c) {
    const ll_grammar *g = m->g;
    const uint32_t before = io->n;
    m->visits += n;
    for (uint32_t i = first; i < first + n; i++) {
        if (io->n - before > GR_MAX_STACKS || m->visits > m->visit_limit) {
            m->too_ambiguous = m->oom = true;
            return;
        }
        uint32_t s = io->v[i]; // re-read: io->v moves when it grows
        if (s == 0) continue;
        uint32_t p = m->pos[s];
        if (!gr_charset_has(g, GE_VAL(g->elems[p]), c)) continue;
        if (g->elems[p + 1] == GE_END) resume(m, m->parent[s], io);
        else expand(m, p + 1, m->parent[s], io);
    }
}

int gr_step(gr_matcher *m, gr_set *io, uint32_t first, uint32_t n, gr_partial *p, uint8_t b) {
    const ll_grammar *g = m->g;
    uint32_t before = io->n;
    if (++m->gen == 0) { // wrapped: clear the marks once every 4 billion steps
        memset(m->mark, 0, (size_t)m->cap_nodes * sizeof *m->mark);
        m->gen = 1;
    }
    m->oom = m->too_ambiguous = false;
    if (p->n_remain == 0) {
        if (b < 0x80) {
            accept_cp(m, io, first, n, b);
            return m->oom ? -1 : (int)(io->n - before);
        }
        if (b >= 0xC2 && b <= 0xDF) *p = (gr_partial){ b & 0x1Fu, 1, 0x80 };
        else if (b >= 0xE0 && b <= 0xEF) *p = (gr_partial){ b & 0x0Fu, 2, 0x800 };
        else if (b >= 0xF0 && b <= 0xF4) *p = (gr_partial){ b & 0x07u, 3, 0x10000 };
        else return 0; // a continuation byte or a byte UTF-8 never uses
    } else {
        if ((b & 0xC0) != 0x80) return 0;
        p->value = (p->value << 6) | (b & 0x3Fu);
        p->n_remain--;
        if (p->n_remain == 0) {
            uint32_t cp = p->value;
            if (cp < p->min || cp > GR_MAX_CODEPOINT || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
            accept_cp(m, io, first, n, cp);
            return m->oom ? -1 : (int)(io->n - before);
        }
    }
    // Still inside a sequence: keep the stacks whose character could be its completion.
    uint32_t shift = 6u * (uint32_t)p->n_remain;
    uint32_t lo = p->value << shift, hi = lo | ((1u << shift) - 1);
    if (lo < p->min) lo = p->min;
    if (hi > GR_MAX_CODEPOINT) hi = GR_MAX_CODEPOINT;
    if (lo > hi) return 0;
    if (!gr_set_reserve(io, n)) return -1;
    for (uint32_t i = first; i < first + n; i++) {
        uint32_t s = io->v[i];
        if (s != 0 && gr_charset_meets(g, GE_VAL(g->elems[m->pos[s]]), lo, hi)) io->v[io->n++] = s;
    }
    return (int)(io->n - before);
}

bool gr_too_ambiguous(const gr_matcher *m) { return m->too_ambiguous; }

uint64_t gr_work(const gr_matcher *m) { return m->visits; }

void gr_set_work_limit(gr_matcher *m, uint64_t more) {
    m->visit_limit = more > UINT64_MAX - m->visits ? UINT64_MAX : m->visits + more;
}

bool gr_can_end(const uint32_t *in, uint32_t n, const gr_partial *p) {
    if (p->n_remain != 0) return false;
    for (uint32_t i = 0; i < n; i++) if (in[i] == 0) return true;
    return false;
}

bool gr_can_continue(const uint32_t *in, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) if (in[i] != 0) return true;
    return false;
}

// Re-interns s (and its tail) into m's fresh arena; map[] remembers old -> new.
static uint32_t reintern(gr_matcher *m, const uint32_t *opos, const uint32_t *opar, uint32_t *map,
                         uint32_t s) {
    if (s == 0) return 0;
    if (map[s]) return map[s];
    // Iterative: collect the chain down to a mapped node or the bottom, then build upward.
    uint32_t chain_len = 0;
    for (uint32_t t = s; t != 0 && !map[t]; t = opar[t]) chain_len++;
    uint32_t *chain = malloc((size_t)chain_len * sizeof *chain);
    if (!chain) { m->oom = true; return 0; }
    uint32_t k = 0;
    for (uint32_t t = s; t != 0 && !map[t]; t = opar[t]) chain[k++] = t;
    uint32_t below = opar[chain[chain_len - 1]];
    uint32_t nb = below ? map[below] : 0;
    for (uint32_t i = chain_len; i-- > 0;) {
        nb = intern(m, opos[chain[i]], nb);
        if (!nb) break;
        map[chain[i]] = nb;
    }
    free(chain);
    return nb;
}

bool gr_matcher_compact(gr_matcher *m, gr_set *cur) {
    uint32_t old_n = m->n_nodes;
    uint32_t *opos = m->pos, *opar = m->parent, *omark = m->mark, *otable = m->table, *omin = m->minrest;
    uint32_t ocap = m->cap_nodes, omask = m->table_mask;
    uint32_t *map = calloc(old_n, sizeof *map);
    if (!map) return false;
    m->pos = m->parent = m->mark = m->table = m->minrest = NULL;
    m->cap_nodes = 0;
    m->n_nodes = 0;
    m->oom = false;
    if (!nodes_grow(m) || !table_rebuild(m, 2048)) goto fail;
    m->n_nodes = 1;
    m->pos[0] = m->parent[0] = 0;
    m->minrest[0] = 0;
    uint32_t *newv = malloc((size_t)(cur->n ? cur->n : 1) * sizeof *newv);
    if (!newv) goto fail;
    for (uint32_t i = 0; i < cur->n; i++) {
        newv[i] = reintern(m, opos, opar, map, cur->v[i]);
        if (m->oom) { free(newv); goto fail; }
    }
    memcpy(cur->v, newv, (size_t)cur->n * sizeof *newv);
    free(newv);
    free(map);
    free(opos); free(opar); free(omark); free(otable); free(omin);
    m->gen = 1;
    return true;
fail:
    free(m->pos); free(m->parent); free(m->mark); free(m->table); free(m->minrest);
    m->pos = opos; m->parent = opar; m->mark = omark; m->table = otable; m->minrest = omin;
    m->cap_nodes = ocap; m->table_mask = omask; m->n_nodes = old_n;
    m->oom = false;
    free(map);
    return false;
}

static uint32_t stack_minrest(gr_matcher *m, uint32_t s) {
    if (m->minrest[s] != UINT32_MAX) return m->minrest[s];
    // Down to a known node, remembering the way (stacks can be deep: no recursion), then
    // back up, each node from the one below it.
    uint32_t base = m->n_work;
    for (uint32_t t = s; m->minrest[t] == UINT32_MAX; t = m->parent[t])
        if (!work_push(m, t, 0)) { m->n_work = base; m->oom = false; return GR_FAR; }
    while (m->n_work > base) {
        uint32_t t = m->work[--m->n_work].p;
        m->minrest[t] = sat_add(m->g->rest_min[m->pos[t]], m->minrest[m->parent[t]]);
    }
    return m->minrest[s];
}

uint32_t gr_min_completion(gr_matcher *m, const uint32_t *in, uint32_t n, const gr_partial *p) {
    uint32_t best = GR_FAR;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = in[i], c;
        if (s == 0) c = p->n_remain ? GR_FAR : 0;
        else if (p->n_remain == 0) c = stack_minrest(m, s);
        else // the pending bytes finish the top character; then the rest after it
            c = sat_add((uint32_t)p->n_remain,
                        sat_add(m->g->rest_min[m->pos[s] + 1], stack_minrest(m, m->parent[s])));
        if (c < best) best = c;
    }
    return best;
}

// ---- whole-string match -----------------------------------------------------------------------

// Matcher work a whole-string match may spend: ordinary grammars need tens to hundreds of
// visits a byte; an ambiguous one that needs far more is reported as "cannot tell" (-1)
// instead of taking seconds or minutes (a fuzzer's grammar of nested options over '.').
// The fuzz build lowers both (tests/fuzz/CMakeLists.txt) so such inputs cost milliseconds.
#ifndef MATCH_WORK_PER_BYTE
#define MATCH_WORK_PER_BYTE (1ull << 16)
#endif
#ifndef MATCH_WORK_MIN
#define MATCH_WORK_MIN (1ull << 22)
#endif

int ll_grammar_match_status(const ll_grammar *g, const char *s, size_t n) {
    if (!g || (!s && n)) return 0;
    gr_matcher *m = gr_matcher_new(g);
    gr_set a = { 0 };
    if (m) gr_set_work_limit(m, MATCH_WORK_MIN + MATCH_WORK_PER_BYTE * (uint64_t)(n < (1u << 30) ? n : (1u << 30)));
    int status = m && gr_start(m, &a) ? 1 : -1;
    gr_partial p = { 0, 0, 0 };
    for (size_t i = 0; status == 1 && i < n; i++) {
        uint32_t n_in = a.n;
        int k = gr_step(m, &a, 0, n_in, &p, (uint8_t)s[i]);
        if (k <= 0) { status = k; break; }
        memmove(a.v, a.v + n_in, (size_t)k * sizeof *a.v);
        a.n = (uint32_t)k;
        if (gr_matcher_n_nodes(m) > (1u << 20) && !gr_matcher_compact(m, &a)) status = -1;
    }
    if (status == 1 && !gr_can_end(a.v, a.n, &p)) status = 0;
    gr_set_free(&a);
    gr_matcher_free(m);
    return status;
}

bool ll_grammar_match(const ll_grammar *g, const char *s, size_t n) { return ll_grammar_match_status(g, s, n) == 1; }
