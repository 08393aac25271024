// JSON Schema -> GBNF. Each schema becomes a GBNF expression; objects, arrays and other
// compound schemas get a rule named after their path (root, root-prop, prop-item, ...), and
// the JSON primitives (string, number, value, ...) are shared rules emitted when used.
//
// What is covered: type (also arrays of types, or inferred from the keywords), const, enum,
// anyOf / oneOf (alternatives; oneOf's exclusivity is not enforced), allOf (merged),
// $ref to anywhere in the document (#/$defs/..., #/definitions/..., recursion allowed);
// objects: properties in schema order, required, additionalProperties (false by default when
// properties are given, as llama.cpp does; extra keys never repeat a declared name),
// minProperties, maxProperties; arrays: items, prefixItems (and draft-07 tuple items /
// additionalItems), minItems, maxItems, contains with minContains (when the items are otherwise
// free); strings: minLength, maxLength, pattern (a common regex subset), format date, time,
// date-time, uuid, ipv4, ipv6, hostname, email, uri; integers: minimum, maximum, exclusiveMinimum, exclusiveMaximum exactly, as
// digit-range rules; numbers: the same bounds, exact for integer bounds (a non-integer bound is
// rounded inward, so output always validates), and no exponent when bounded.
// Keywords a grammar cannot express (not, uniqueItems, if/then/else, maxContains, other
// formats, ...) are reported as warnings (ll_json_schema_to_gbnf_warn), never dropped silently.
// The output has no whitespace after the top-level value, so generation ends at its end.
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/json.h"
#include "llamalite.h"
#include "util.h"

#define MAX_VISIT_DEPTH 128 // nested subschemas, $ref chains included
#define INT_DIGITS_MAX 16 // digits of an unbounded integer part (beyond that, doubles lose it)

// ---- string builder ---------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} sb;

static void sb_addn(sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->len + n + 1) c *= 2;
        char *p = realloc(b->s, c);
        if (!p) { b->oom = true; return; }
        b->s = p;
        b->cap = c;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_add(sb *b, const char *s) { sb_addn(b, s, strlen(s)); }

static void sb_addf(sb *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) { sb_addn(b, tmp, (size_t)k); return; }
    char *big = malloc((size_t)k + 1);
    if (!big) { b->oom = true; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    sb_addn(b, big, (size_t)k);
    free(big);
}

// Takes the string out of the builder (never NULL unless out of memory).
static char *sb_take(sb *b) {
    if (b->oom) { free(b->s); return NULL; }
    if (!b->s) return calloc(1, 1);
    char *s = b->s;
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

// A GBNF string literal for bytes s[0..n).
static void sb_lit(sb *b, const char *s, size_t n) {
    sb_add(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') sb_add(b, "\\\"");
        else if (c == '\\') sb_add(b, "\\\\");
        else if (c == '\n') sb_add(b, "\\n");
        else if (c == '\r') sb_add(b, "\\r");
        else if (c == '\t') sb_add(b, "\\t");
        else if (c < 0x20 || c == 0x7F) sb_addf(b, "\\x%02X", c);
        else sb_addn(b, (const char *)&s[i], 1);
    }
    sb_add(b, "\"");
}

// ---- converter state --------------------------------------------------------------------------

typedef struct {
    char *name;
    char *body; // NULL while reserved (a $ref being translated)
} srule;

typedef struct {
    char *ref;
    char *name;
} sref;

typedef struct {
    const jv_value *doc;
    srule *rules;
    size_t n_rules, cap_rules;
    sref *refs;
    size_t n_refs, cap_refs;
    jv_value **temps; // merged schemas made by allOf, freed at the end
    size_t n_temps, cap_temps;
    int depth;
    char *err;
    size_t errlen;
    bool failed;
    sb warnings; // one line per keyword the grammar ignores
    int n_warnings;
} conv;

static bool cfail(conv *C, const char *where, const char *fmt, ...) {
    if (C->failed) return false;
    C->failed = true;
    if (!C->err || !C->errlen) return false;
    int k = snprintf(C->err, C->errlen, "%s: ", where ? where : "schema");
    if (k >= 0 && (size_t)k < C->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(C->err + k, C->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    // One line, whatever the schema's strings quoted in it hold.
    for (char *p = C->err; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    return false;
}

#define MAX_WARNINGS 20

// Notes that what fmt names (a keyword, a format) is not enforced by the grammar at hint.
static void warn(conv *C, const char *hint, const char *fmt, ...) {
    if (++C->n_warnings > MAX_WARNINGS) return;
    if (C->n_warnings == MAX_WARNINGS) { sb_add(&C->warnings, "(more keywords not enforced)\n"); return; }
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    sb_addf(&C->warnings, "%s: %s is not enforced (ignored)\n", hint ? hint : "schema", what);
}

// Keywords that constrain instances in ways a grammar cannot express (or this translation
// does not): they are reported, not silently dropped.
static void warn_unsupported(conv *C, const jv_value *s, const char *hint) {
    static const char *const KW[] = { "not", "uniqueItems", "if", "then", "else", "dependentRequired",
                                      "dependentSchemas", "dependencies", "patternProperties",
                                      "propertyNames", "multipleOf", "unevaluatedProperties",
                                      "unevaluatedItems", "maxContains", NULL };
    for (int i = 0; KW[i]; i++)
        if (jv_get(s, KW[i])) warn(C, hint, "'%s'", KW[i]);
}

static srule *find_rule(conv *C, const char *name) {
    for (size_t i = 0; i < C->n_rules; i++)
        if (!strcmp(C->rules[i].name, name)) return &C->rules[i];
    return NULL;
}

static const char *const PRIMS[] = { "space", "char", "string", "number", "integer", "boolean",
                                     "null", "value", "object", "array", "date", "time",
                                     "date-time", "uuid", "ipv4", "ipv4-octet", "ipv6", "ipv6-h16",
                                     "ipv6-ls32", "hostname", "hostname-label", "email", "email-atom",
                                     "uri", "root", NULL };

static bool is_prim_name(const char *s) {
    for (int i = 0; PRIMS[i]; i++) if (!strcmp(PRIMS[i], s)) return true;
    return false;
}

// Adds a rule named after hint (made a valid, unused name); body may be NULL (reserved).
// Returns the name (owned by C) or NULL.
static const char *add_rule(conv *C, const char *hint, const char *body, bool exact) {
    sb nb = { 0 };
    for (const char *p = hint; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        sb_addn(&nb, ok ? &c : "-", 1);
    }
    if (nb.len == 0) sb_add(&nb, "x");
    char *base = sb_take(&nb);
    if (!base) { cfail(C, hint, "out of memory"); return NULL; }
    char *name = NULL;
    for (int k = 1; !C->failed; k++) {
        sb t = { 0 };
        sb_add(&t, base);
        if (k > 1) sb_addf(&t, "-%d", k);
        name = sb_take(&t);
        if (!name) { cfail(C, hint, "out of memory"); break; }
        if (!find_rule(C, name) && (exact || !is_prim_name(name))) break;
        free(name);
        name = NULL;
    }
    free(base);
    if (!name) return NULL;
    if (C->n_rules == C->cap_rules) {
        size_t c = C->cap_rules ? C->cap_rules * 2 : 32;
        srule *r = realloc(C->rules, c * sizeof *r);
        if (!r) { free(name); cfail(C, hint, "out of memory"); return NULL; }
        C->rules = r;
        C->cap_rules = c;
    }
    char *b = NULL;
    if (body && !(b = strdup(body))) { free(name); cfail(C, hint, "out of memory"); return NULL; }
    C->rules[C->n_rules++] = (srule){ name, b };
    return name;
}

static void set_body(conv *C, const char *name, char *body) {
    srule *r = find_rule(C, name);
    if (r) { free(r->body); r->body = body; }
    else free(body);
}

// The shared primitive rules, emitted on first use (with what they use).
static const char *prim(conv *C, const char *name) {
    if (find_rule(C, name)) return name;
    static const struct { const char *name, *body, *deps; } P[] = {
        { "space", "( \" \" | \"\\n\" [ \\t]{0,20} )?", "" },
        { "char", "[^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )", "" },
        { "string", "\"\\\"\" char* \"\\\"\"", "char" },
        { "number", "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?", "" },
        { "integer", "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} )", "" },
        { "boolean", "\"true\" | \"false\"", "" },
        { "null", "\"null\"", "" },
        { "value", "object | array | string | number | boolean | null",
          "object array string number boolean null" },
        { "object", "\"{\" space ( string space \":\" space value space ( \",\" space string space \":\" space value space )* )? \"}\"",
          "space string value" },
        { "array", "\"[\" space ( value space ( \",\" space value space )* )? \"]\"", "space value" },
        { "date", "[0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" ( \"0\" [1-9] | [12] [0-9] | \"3\" [01] )", "" },
        { "time", "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,6} )? "
                  "( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )", "" },
        { "date-time", "date \"T\" time", "date time" },
        { "uuid", "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{12}", "" },
        // The formats below follow their RFCs' syntax (not every length limit): hostname
        // labels of 1 to 63 letters, digits and inner hyphens; an e-mail's local part is a
        // dot-atom (RFC 5322, no quoted forms); IPv6 with "::" and an IPv4 tail (RFC 4291);
        // a URI is a scheme, ':' and URI characters (RFC 3986, not the parts' structure).
        { "ipv4", "ipv4-octet \".\" ipv4-octet \".\" ipv4-octet \".\" ipv4-octet", "ipv4-octet" },
        { "ipv4-octet", "\"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9] [0-9] | [0-9]", "" },
        { "ipv6", "( ipv6-h16 \":\" ){6} ipv6-ls32 | \"::\" ( ipv6-h16 \":\" ){5} ipv6-ls32 | "
                  "ipv6-h16? \"::\" ( ipv6-h16 \":\" ){4} ipv6-ls32 | "
                  "( ( ipv6-h16 \":\" )? ipv6-h16 )? \"::\" ( ipv6-h16 \":\" ){3} ipv6-ls32 | "
                  "( ( ipv6-h16 \":\" ){0,2} ipv6-h16 )? \"::\" ( ipv6-h16 \":\" ){2} ipv6-ls32 | "
                  "( ( ipv6-h16 \":\" ){0,3} ipv6-h16 )? \"::\" ipv6-h16 \":\" ipv6-ls32 | "
                  "( ( ipv6-h16 \":\" ){0,4} ipv6-h16 )? \"::\" ipv6-ls32 | "
                  "( ( ipv6-h16 \":\" ){0,5} ipv6-h16 )? \"::\" ipv6-h16 | "
                  "( ( ipv6-h16 \":\" ){0,6} ipv6-h16 )? \"::\"", "ipv6-h16 ipv6-ls32" },
        { "ipv6-h16", "[0-9a-fA-F]{1,4}", "" },
        { "ipv6-ls32", "ipv6-h16 \":\" ipv6-h16 | ipv4", "ipv6-h16 ipv4" },
        { "hostname", "hostname-label ( \".\" hostname-label )*", "hostname-label" },
        { "hostname-label", "[a-zA-Z0-9] ( [a-zA-Z0-9-]{0,61} [a-zA-Z0-9] )?", "" },
        { "email", "email-atom ( \".\" email-atom )* \"@\" hostname", "email-atom hostname" },
        { "email-atom", "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+", "" },
        { "uri", "[a-zA-Z] [a-zA-Z0-9+.-]* \":\" [a-zA-Z0-9._~:/?#\\[\\]@!$&'()*+,;=%-]*", "" },
    };
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        if (strcmp(P[i].name, name)) continue;
        if (!add_rule(C, name, P[i].body, true)) return NULL;
        // Dependencies, one word at a time (after adding ourselves: value <-> object cycle).
        const char *d = P[i].deps;
        while (*d) {
            char w[32];
            size_t k = 0;
            while (*d && *d != ' ' && k < sizeof w - 1) w[k++] = *d++;
            w[k] = 0;
            while (*d == ' ') d++;
            if (!prim(C, w)) return NULL;
        }
        return name;
    }
    cfail(C, name, "internal: no primitive rule");
    return NULL;
}

// ---- helpers over schemas ---------------------------------------------------------------------

static bool num_of(const jv_value *s, const char *key, double *out) {
    const jv_value *v = jv_get(s, key);
    if (!v || v->type != JV_NUMBER) return false;
    *out = v->number;
    return true;
}

static char *joinhint(const char *a, const char *b) {
    sb t = { 0 };
    bool digits = b[0] != 0 && strspn(b, "0123456789") == strlen(b);
    if (!strcmp(a, "root") && !digits) sb_add(&t, b);
    else { sb_add(&t, a); sb_add(&t, "-"); sb_add(&t, b); }
    return sb_take(&t);
}

static char *dupstr(const char *s) {
    char *d = malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

static char *body_of(conv *C, const jv_value *s, const char *hint);

// A rule (name) for schema s: its body when that is a single identifier already, else a new
// rule named after hint. Returns a malloc'd name.
static char *rule_of(conv *C, const jv_value *s, const char *hint) {
    char *b = body_of(C, s, hint);
    if (!b) return NULL;
    bool ident = b[0] != 0;
    for (const char *p = b; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'))
            ident = false;
    if (ident) return b;
    const char *name = add_rule(C, hint, b, false);
    free(b);
    return name ? dupstr(name) : NULL;
}

// ---- integers as digit ranges -----------------------------------------------------------------

// Digits of x and y (equal length L, x <= y): every string of L digits between them.
static void digits_range(sb *o, const char *x, const char *y, size_t L) {
    if (L == 0) return;
    if (x[0] == y[0]) {
        sb_addf(o, "\"%c\"", x[0]);
        if (L > 1) { sb_add(o, " "); digits_range(o, x + 1, y + 1, L - 1); }
        return;
    }
    bool x_zeros = true, y_nines = true;
    for (size_t i = 1; i < L; i++) {
        if (x[i] != '0') x_zeros = false;
        if (y[i] != '9') y_nines = false;
    }
    char lo = x_zeros ? x[0] : (char)(x[0] + 1);
    char hi = y_nines ? y[0] : (char)(y[0] - 1);
    sb_add(o, "(");
    bool first = true;
    if (!x_zeros) {
        // x0 followed by x[1..] up to 9...9
        char nines[24];
        memset(nines, '9', L - 1);
        sb_addf(o, "\"%c\" (", x[0]);
        digits_range(o, x + 1, nines, L - 1);
        sb_add(o, ")");
        first = false;
    }
    if (lo <= hi) {
        if (!first) sb_add(o, " | ");
        if (lo == hi) sb_addf(o, "[%c]", lo);
        else sb_addf(o, "[%c-%c]", lo, hi);
        if (L > 2) sb_addf(o, " [0-9]{%zu}", L - 1);
        else if (L == 2) sb_add(o, " [0-9]");
        first = false;
    }
    if (!y_nines) {
        char zeros[24];
        memset(zeros, '0', L - 1);
        if (!first) sb_add(o, " | ");
        sb_addf(o, "\"%c\" (", y[0]);
        digits_range(o, zeros, y + 1, L - 1);
        sb_add(o, ")");
    }
    sb_add(o, ")");
}

// Non-negative integers in [lo, hi] (hi < 0: unbounded, up to INT_DIGITS_MAX digits), without
// leading zeros, as one GBNF group.
static void uint_range(sb *o, int64_t lo, int64_t hi) {
    char a[24], b[24];
    int la = snprintf(a, sizeof a, "%lld", (long long)lo);
    int lb = hi >= 0 ? snprintf(b, sizeof b, "%lld", (long long)hi) : INT_DIGITS_MAX;
    sb_add(o, "(");
    bool first = true;
    for (int L = la; L <= lb; L++) {
        char x[24], y[24];
        if (L == la) memcpy(x, a, (size_t)L);
        else { x[0] = '1'; memset(x + 1, '0', (size_t)L - 1); }
        if (hi >= 0 && L == lb) memcpy(y, b, (size_t)L);
        else memset(y, '9', (size_t)L);
        if (!first) sb_add(o, " | ");
        first = false;
        if (hi < 0 && L == la + 1) {
            // every longer length at once
            sb_addf(o, "[1-9] [0-9]{%d,%d}", la, INT_DIGITS_MAX - 1);
            break;
        }
        digits_range(o, x, y, (size_t)L);
    }
    sb_add(o, ")");
}

// Integers in [lo, hi]; has_lo / has_hi false means unbounded on that side.
static void int_range(sb *o, bool has_lo, int64_t lo, bool has_hi, int64_t hi) {
    bool pos = !has_hi || hi >= 0, neg = !has_lo || lo < 0;
    sb_add(o, "(");
    if (pos) uint_range(o, has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1);
    if (neg) {
        if (pos) sb_add(o, " | ");
        sb_add(o, "\"-\" ");
        uint_range(o, has_hi && hi < 0 ? -hi : 1, has_lo ? -lo : -1);
    }
    sb_add(o, ")");
}

#define FRAC_ANY "( \".\" [0-9]{1,16} )?"
#define FRAC_ZERO "( \".\" \"0\"{1,16} )?"
#define FRAC_NONZERO "\".\" \"0\"{0,15} [1-9] [0-9]{0,15}"

// Non-negative decimals in [a, b] with integer a >= 0 and b (b < 0: unbounded); a_excl /
// b_excl make the bounds exclusive. Returns false if no number qualifies.
static bool unum_range(sb *o, int64_t a, bool a_excl, int64_t b, bool b_excl) {
    bool any = false;
    int64_t i_lo = a_excl ? a + 1 : a;
    int64_t i_hi = b < 0 ? -1 : b - 1; // integer parts with any fraction
    sb_add(o, "(");
    if (b < 0 || i_lo <= i_hi) {
        uint_range(o, i_lo, i_hi);
        sb_add(o, " " FRAC_ANY);
        any = true;
    }
    if (b >= 0 && !b_excl && (b > a || !a_excl)) { // exactly b
        sb_addf(o, "%s\"%lld\" " FRAC_ZERO, any ? " | " : "", (long long)b);
        any = true;
    }
    if (a_excl && (b < 0 || a < b)) { // just above a
        sb_addf(o, "%s\"%lld\" " FRAC_NONZERO, any ? " | " : "", (long long)a);
        any = true;
    }
    sb_add(o, ")");
    return any;
}

// ---- regular expressions (the common subset) -> GBNF -----------------------------------------

typedef struct {
    const char *s;
    size_t pos, len;
    conv *C;
    const char *where;
    bool failed;
} rx;

static bool rx_fail(rx *R, const char *msg) {
    if (!R->failed) cfail(R->C, R->where, "pattern at offset %zu: %s", R->pos, msg);
    R->failed = true;
    return false;
}

// The JSON-string form of code point c as a GBNF piece (quotes, backslashes and control
// characters appear escaped inside a JSON string).
static void rx_char(sb *o, uint32_t c) {
    char u[8];
    size_t n;
    switch (c) {
    case '"': sb_add(o, "\"\\\\\\\"\""); return;   // \"  -> GBNF "\\\""
    case '\\': sb_add(o, "\"\\\\\\\\\""); return;  // \\  -> GBNF "\\\\"
    case '\n': sb_add(o, "\"\\\\n\""); return;
    case '\r': sb_add(o, "\"\\\\r\""); return;
    case '\t': sb_add(o, "\"\\\\t\""); return;
    default: break;
    }
    if (c < 0x20) { sb_addf(o, "\"\\\\u%04x\"", c); return; }
    if (c < 0x80) { u[0] = (char)c; n = 1; }
    else if (c < 0x800) { u[0] = (char)(0xC0 | (c >> 6)); u[1] = (char)(0x80 | (c & 0x3F)); n = 2; }
    else if (c < 0x10000) { u[0] = (char)(0xE0 | (c >> 12)); u[1] = (char)(0x80 | ((c >> 6) & 0x3F)); u[2] = (char)(0x80 | (c & 0x3F)); n = 3; }
    else { u[0] = (char)(0xF0 | (c >> 18)); u[1] = (char)(0x80 | ((c >> 12) & 0x3F)); u[2] = (char)(0x80 | ((c >> 6) & 0x3F)); u[3] = (char)(0x80 | (c & 0x3F)); n = 4; }
    sb_lit(o, u, n);
}

// A code point inside a GBNF class: escaped unless plainly alphanumeric.
static void rx_class_cp(sb *o, uint32_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) sb_addf(o, "%c", (char)c);
    else if (c < 0x80) sb_addf(o, "\\x%02X", c);
    else if (c < 0x10000) sb_addf(o, "\\u%04X", c);
    else sb_addf(o, "\\U%08X", c);
}

static int rx_peek(rx *R) { return R->pos < R->len ? (unsigned char)R->s[R->pos] : -1; }

static uint32_t rx_utf8(rx *R) {
    const unsigned char *p = (const unsigned char *)R->s + R->pos;
    size_t left = R->len - R->pos;
    uint32_t c = p[0];
    size_t n = 1;
    if (c >= 0xC0 && c < 0xE0 && left >= 2) { c = ((c & 0x1F) << 6) | (p[1] & 0x3F); n = 2; }
    else if (c >= 0xE0 && c < 0xF0 && left >= 3) { c = ((c & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F); n = 3; }
    else if (c >= 0xF0 && left >= 4) { c = ((c & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F); n = 4; }
    R->pos += n;
    return c;
}

typedef struct { uint32_t lo, hi; } crange;
typedef struct { crange r[64]; int n; bool neg; } cclass;

static bool cls_add(rx *R, cclass *k, uint32_t lo, uint32_t hi) {
    if (k->n == 64) return rx_fail(R, "character class too large");
    k->r[k->n++] = (crange){ lo, hi };
    return true;
}

// A backslash escape that stands for a class (\d \w \s and negations): adds it to k.
// Returns 1 if it was one, 0 if not, -1 on error.
static int rx_class_escape(rx *R, char e, cclass *k, bool *negated) {
    *negated = e == 'D' || e == 'W' || e == 'S';
    switch (e) {
    case 'd': case 'D': return cls_add(R, k, '0', '9') ? 1 : -1;
    case 'w': case 'W':
        return cls_add(R, k, '0', '9') && cls_add(R, k, 'A', 'Z') && cls_add(R, k, 'a', 'z') &&
               cls_add(R, k, '_', '_') ? 1 : -1;
    case 's': case 'S':
        return cls_add(R, k, ' ', ' ') && cls_add(R, k, '\t', '\r') ? 1 : -1;
    default: return 0;
    }
}

// nd hex digits at the cursor: their value, or -1.
static int64_t rx_hex(rx *R, int nd) {
    uint32_t v = 0;
    for (int i = 0; i < nd; i++) {
        int d = ll_hex_digit(rx_peek(R));
        if (d < 0) { rx_fail(R, "bad hex escape"); return -1; }
        v = v * 16 + (uint32_t)d;
        R->pos++;
    }
    return v;
}

// After \u: its code point, a surrogate pair \uD8xx\uDCxx read as one. A lone surrogate is no
// character (in UTF-8 it would be invalid bytes), and is refused.
static int64_t rx_unicode_escape(rx *R) {
    int64_t v = rx_hex(R, 4);
    if (v < 0xD800 || v > 0xDFFF) return v;
    if (v <= 0xDBFF && R->pos + 1 < R->len && R->s[R->pos] == '\\' && R->s[R->pos + 1] == 'u') {
        R->pos += 2;
        int64_t lo = rx_hex(R, 4);
        if (lo >= 0xDC00 && lo <= 0xDFFF) return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        if (lo < 0) return -1;
    }
    rx_fail(R, "lone surrogate in a \\u escape");
    return -1;
}

// A literal escape (\n, \., \uHHHH ...) after the backslash: its code point, or -1.
static int64_t rx_literal_escape(rx *R, char e) {
    switch (e) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'f': return '\f';
    case 'v': return '\v';
    case '0': return 0;
    case 'x': return rx_hex(R, 2);
    case 'u': return rx_unicode_escape(R);
    default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
            rx_fail(R, "unsupported escape (backreferences, \\b and the like)");
            return -1;
        }
        return (unsigned char)e; // an escaped metacharacter
    }
}

// Writes a class as GBNF: positive classes match the plain characters plus the JSON escapes
// of any quote, backslash or control character in them; negated classes never match those.
static void rx_emit_class(sb *o, const cclass *k) {
    if (k->neg) {
        sb_add(o, "[^");
        for (int i = 0; i < k->n; i++) {
            rx_class_cp(o, k->r[i].lo);
            if (k->r[i].hi != k->r[i].lo) { sb_add(o, "-"); rx_class_cp(o, k->r[i].hi); }
        }
        sb_add(o, "\"\\\\\\x00-\\x1F]");
        return;
    }
    sb plain = { 0 }, extra = { 0 };
    for (int i = 0; i < k->n; i++) {
        uint32_t lo = k->r[i].lo, hi = k->r[i].hi;
        // Split off the characters JSON escapes.
        for (uint32_t c = lo; c <= hi && c < 0x20; c++) { sb_add(&extra, " | "); rx_char(&extra, c); }
        if (lo < 0x20) lo = 0x20;
        if (lo > hi) continue;
        uint32_t cut[2] = { '"', '\\' };
        for (int j = 0; j < 2; j++) {
            if (cut[j] >= lo && cut[j] <= hi) { sb_add(&extra, " | "); rx_char(&extra, cut[j]); }
        }
        // [lo, hi] minus the two cut points (cut[] is ascending)
        uint32_t a = lo;
        for (int j = 0; j < 2; j++) {
            if (cut[j] < a || cut[j] > hi) continue;
            if (a < cut[j]) {
                rx_class_cp(&plain, a);
                if (cut[j] - 1 != a) { sb_add(&plain, "-"); rx_class_cp(&plain, cut[j] - 1); }
            }
            a = cut[j] + 1;
        }
        if (a <= hi) {
            rx_class_cp(&plain, a);
            if (hi != a) { sb_add(&plain, "-"); rx_class_cp(&plain, hi); }
        }
    }
    sb_add(o, "(");
    if (plain.len) { sb_add(o, "["); sb_add(o, plain.s); sb_add(o, "]"); }
    else sb_add(o, "[^\\x00-\\U0010FFFF]"); // matches nothing
    if (extra.len) sb_add(o, extra.s);
    sb_add(o, ")");
    free(plain.s);
    free(extra.s);
}

static bool rx_alt(rx *R, sb *o, int depth);

static bool rx_atom(rx *R, sb *o, int depth) {
    int c = rx_peek(R);
    if (c == '(') {
        R->pos++;
        if (rx_peek(R) == '?') {
            if (R->pos + 1 < R->len && R->s[R->pos + 1] == ':') R->pos += 2;
            else return rx_fail(R, "unsupported group (lookaround or named group)");
        }
        sb_add(o, "(");
        if (!rx_alt(R, o, depth + 1)) return false;
        if (rx_peek(R) != ')') return rx_fail(R, "expected ')'");
        R->pos++;
        sb_add(o, ")");
        return true;
    }
    if (c == '[') {
        R->pos++;
        cclass k = { .n = 0 };
        if (rx_peek(R) == '^') { k.neg = true; R->pos++; }
        bool first = true;
        while (rx_peek(R) != ']' || first) {
            first = false;
            if (rx_peek(R) < 0) return rx_fail(R, "unterminated class");
            uint32_t lo;
            if (rx_peek(R) == '\\') {
                R->pos++;
                if (rx_peek(R) < 0) return rx_fail(R, "dangling backslash");
                char e = (char)R->s[R->pos++];
                bool negated;
                int r = rx_class_escape(R, e, &k, &negated);
                if (r < 0) return false;
                if (r == 1) {
                    if (negated) return rx_fail(R, "negated class escape inside a class");
                    continue;
                }
                int64_t v = e == 'b' ? '\b' : rx_literal_escape(R, e);
                if (v < 0) return false;
                lo = (uint32_t)v;
            } else {
                lo = rx_utf8(R);
            }
            uint32_t hi = lo;
            if (rx_peek(R) == '-' && R->pos + 1 < R->len && R->s[R->pos + 1] != ']') {
                R->pos++;
                if (rx_peek(R) == '\\') {
                    R->pos++;
                    if (rx_peek(R) < 0) return rx_fail(R, "dangling backslash");
                    int64_t v = rx_literal_escape(R, (char)R->s[R->pos++]);
                    if (v < 0) return false;
                    hi = (uint32_t)v;
                } else {
                    hi = rx_utf8(R);
                }
                if (hi < lo) return rx_fail(R, "bad range in class");
            }
            if (!cls_add(R, &k, lo, hi)) return false;
        }
        R->pos++;
        rx_emit_class(o, &k);
        return true;
    }
    if (c == '.') {
        R->pos++;
        sb_add(o, "[^\"\\\\\\x00-\\x1F]");
        return true;
    }
    if (c == '\\') {
        R->pos++;
        if (rx_peek(R) < 0) return rx_fail(R, "dangling backslash");
        char e = (char)R->s[R->pos++];
        cclass k = { .n = 0 };
        bool negated;
        int r = rx_class_escape(R, e, &k, &negated);
        if (r < 0) return false;
        if (r == 1) {
            if (e == 's') { sb_add(o, "( \" \" | \"\\\\t\" | \"\\\\n\" | \"\\\\r\" | \"\\\\f\" )"); return true; }
            k.neg = negated;
            rx_emit_class(o, &k);
            return true;
        }
        int64_t v = rx_literal_escape(R, e);
        if (v < 0) return false;
        rx_char(o, (uint32_t)v);
        return true;
    }
    if (c == '^' || c == '$') { // anchors inside: taken as matching the empty string
        R->pos++;
        sb_add(o, "\"\"");
        return true;
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') return rx_fail(R, "quantifier without an item");
    rx_char(o, rx_utf8(R));
    return true;
}

static bool rx_seq(rx *R, sb *o, int depth) {
    if (depth > 64) return rx_fail(R, "nested too deeply");
    bool any = false;
    for (;;) {
        int c = rx_peek(R);
        if (c < 0 || c == '|' || c == ')') break;
        // the final $ of an anchored pattern is handled by the caller
        if (c == '$' && depth == 0 && R->pos + 1 == R->len) break;
        sb atom = { 0 };
        if (!rx_atom(R, &atom, depth)) { free(atom.s); return false; }
        c = rx_peek(R);
        long min = -1, max = -1;
        if (c == '*') { min = 0; max = -1; R->pos++; }
        else if (c == '+') { min = 1; max = -1; R->pos++; }
        else if (c == '?') { min = 0; max = 1; R->pos++; }
        else if (c == '{' && R->pos + 1 < R->len && R->s[R->pos + 1] >= '0' && R->s[R->pos + 1] <= '9') {
            R->pos++;
            char *end;
            min = strtol(R->s + R->pos, &end, 10);
            R->pos = (size_t)(end - R->s);
            max = min;
            if (rx_peek(R) == ',') {
                R->pos++;
                max = -1;
                if (rx_peek(R) >= '0' && rx_peek(R) <= '9') {
                    max = strtol(R->s + R->pos, &end, 10);
                    R->pos = (size_t)(end - R->s);
                }
            }
            if (rx_peek(R) != '}') { free(atom.s); return rx_fail(R, "expected '}'"); }
            R->pos++;
            if (min > 10000 || max > 10000 || (max >= 0 && max < min)) { free(atom.s); return rx_fail(R, "bad repetition count"); }
        } else {
            min = -2; // no quantifier
        }
        if (min != -2 && (rx_peek(R) == '?' || rx_peek(R) == '+')) R->pos++; // lazy / possessive
        if (any) sb_add(o, " ");
        any = true;
        if (min == -2) {
            sb_add(o, atom.s ? atom.s : "\"\"");
        } else {
            sb_add(o, "(");
            sb_add(o, atom.s ? atom.s : "\"\"");
            if (min == 0 && max == -1) sb_add(o, ")*");
            else if (min == 1 && max == -1) sb_add(o, ")+");
            else if (min == 0 && max == 1) sb_add(o, ")?");
            else if (max == -1) sb_addf(o, "){%ld,}", min);
            else if (min == max) sb_addf(o, "){%ld}", min);
            else sb_addf(o, "){%ld,%ld}", min, max);
        }
        free(atom.s);
    }
    if (!any) sb_add(o, "\"\"");
    return true;
}

static bool rx_alt(rx *R, sb *o, int depth) {
    if (!rx_seq(R, o, depth)) return false;
    while (rx_peek(R) == '|') {
        R->pos++;
        sb_add(o, " | ");
        if (!rx_seq(R, o, depth)) return false;
    }
    return true;
}

// The GBNF for the contents of a JSON string matching pattern (search semantics: an
// unanchored side may have any characters).
static char *pattern_body(conv *C, const char *pat, size_t len, const char *where) {
    rx R = { .s = pat, .len = len, .C = C, .where = where };
    bool anchored_start = len > 0 && pat[0] == '^';
    bool anchored_end = len > 0 && pat[len - 1] == '$' && (len < 2 || pat[len - 2] != '\\');
    if (anchored_start) R.pos = 1;
    sb o = { 0 };
    if (!prim(C, "char")) return NULL;
    sb_add(&o, "\"\\\"\" ");
    if (!anchored_start) sb_add(&o, "char* ");
    sb_add(&o, "(");
    if (!rx_alt(&R, &o, 0)) { free(o.s); return NULL; }
    if (R.pos < len && !(anchored_end && R.pos == len - 1)) {
        rx_fail(&R, "unexpected ')'");
        free(o.s);
        return NULL;
    }
    sb_add(&o, ")");
    if (!anchored_end) sb_add(&o, " char*");
    sb_add(&o, " \"\\\"\"");
    return sb_take(&o);
}

// ---- schema kinds -----------------------------------------------------------------------------

static char *literal_of(conv *C, const jv_value *v) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!jv_write(v, &buf, &len, &cap)) { free(buf); cfail(C, NULL, "out of memory"); return NULL; }
    sb o = { 0 };
    sb_lit(&o, buf, len);
    free(buf);
    return sb_take(&o);
}

static char *string_body(conv *C, const jv_value *s, const char *hint) {
    const jv_value *pat = jv_get(s, "pattern");
    if (pat && pat->type == JV_STRING) {
        if (jv_get(s, "minLength") || jv_get(s, "maxLength")) warn(C, hint, "minLength/maxLength next to pattern");
        if (jv_get(s, "format")) warn(C, hint, "format next to pattern");
        return pattern_body(C, pat->text, pat->len, hint);
    }
    const jv_value *fmt = jv_get(s, "format");
    if (fmt && fmt->type == JV_STRING) {
        const char *f = fmt->text;
        static const char *const FORMATS[] = { "date", "time", "date-time", "uuid", "ipv4", "ipv6",
                                               "hostname", "email", "uri", NULL };
        for (int i = 0; FORMATS[i]; i++) {
            if (strcmp(f, FORMATS[i])) continue;
            if (!prim(C, f)) return NULL;
            if (jv_get(s, "minLength") || jv_get(s, "maxLength")) warn(C, hint, "minLength/maxLength next to format");
            sb o = { 0 };
            sb_addf(&o, "\"\\\"\" %s \"\\\"\"", f);
            return sb_take(&o);
        }
        warn(C, hint, "format '%s'", f); // any string
    }
    double mn = 0, mx = -1;
    num_of(s, "minLength", &mn);
    num_of(s, "maxLength", &mx);
    if (mn < 0 || mn > 100000 || mx > 100000) { cfail(C, hint, "string length bounds out of range"); return NULL; }
    if (mx >= 0 && mx < mn) { cfail(C, hint, "maxLength below minLength"); return NULL; }
    if (!prim(C, "char")) return NULL;
    if (mn == 0 && mx < 0) return prim(C, "string") ? dupstr("string") : NULL;
    sb o = { 0 };
    long a = (long)ceil(mn), b = mx < 0 ? -1 : (long)floor(mx);
    if (b < 0) sb_addf(&o, "\"\\\"\" char{%ld,} \"\\\"\"", a);
    else sb_addf(&o, "\"\\\"\" char{%ld,%ld} \"\\\"\"", a, b);
    return sb_take(&o);
}

// Bounds of a number schema: each side may be missing; exclusive bounds come either as
// exclusiveMinimum: N (draft 6+) or as exclusiveMinimum: true next to minimum (draft 4).
static void get_bounds(const jv_value *s, bool *has_lo, double *lo, bool *lo_ex, bool *has_hi,
                       double *hi, bool *hi_ex) {
    *has_lo = num_of(s, "minimum", lo);
    *has_hi = num_of(s, "maximum", hi);
    *lo_ex = *hi_ex = false;
    const jv_value *e = jv_get(s, "exclusiveMinimum");
    if (e && e->type == JV_NUMBER && (!*has_lo || e->number >= *lo)) { *has_lo = true; *lo = e->number; *lo_ex = true; }
    else if (e && e->type == JV_BOOL && e->boolean && *has_lo) *lo_ex = true;
    e = jv_get(s, "exclusiveMaximum");
    if (e && e->type == JV_NUMBER && (!*has_hi || e->number <= *hi)) { *has_hi = true; *hi = e->number; *hi_ex = true; }
    else if (e && e->type == JV_BOOL && e->boolean && *has_hi) *hi_ex = true;
    // Bounds beyond what the digit rules cover are no bounds.
    if (*has_lo && fabs(*lo) >= 1e15) *has_lo = false;
    if (*has_hi && fabs(*hi) >= 1e15) *has_hi = false;
}

static char *integer_body(conv *C, const jv_value *s, const char *hint) {
    bool has_lo, has_hi, lo_ex, hi_ex;
    double lo, hi;
    get_bounds(s, &has_lo, &lo, &lo_ex, &has_hi, &hi, &hi_ex);
    if (!has_lo && !has_hi) return prim(C, "integer") ? dupstr("integer") : NULL;
    int64_t a = 0, b = 0;
    if (has_lo) a = (int64_t)(lo_ex ? floor(lo) + 1 : ceil(lo));
    if (has_hi) b = (int64_t)(hi_ex ? ceil(hi) - 1 : floor(hi));
    if (has_lo && has_hi && a > b) { cfail(C, hint, "no integer between minimum and maximum"); return NULL; }
    sb o = { 0 };
    int_range(&o, has_lo, a, has_hi, b);
    return sb_take(&o);
}

static char *number_body(conv *C, const jv_value *s, const char *hint) {
    bool has_lo, has_hi, lo_ex, hi_ex;
    double lo, hi;
    get_bounds(s, &has_lo, &lo, &lo_ex, &has_hi, &hi, &hi_ex);
    if (!has_lo && !has_hi) return prim(C, "number") ? dupstr("number") : NULL;
    // Non-integer bounds are rounded inward (stricter), inclusive.
    if (has_lo && floor(lo) != lo) { lo = ceil(lo); lo_ex = false; }
    if (has_hi && floor(hi) != hi) { hi = floor(hi); hi_ex = false; }
    if (has_lo && has_hi && (lo > hi || (lo == hi && (lo_ex || hi_ex)))) {
        cfail(C, hint, "no number between minimum and maximum");
        return NULL;
    }
    int64_t a = has_lo ? (int64_t)lo : 0, b = has_hi ? (int64_t)hi : 0; // within ±1e15 when set
    sb o = { 0 };
    bool any = false;
    sb_add(&o, "(");
    // x >= 0 part
    if (!has_hi || b >= 0) {
        bool a_ex = has_lo && a >= 0 ? lo_ex : false;
        int64_t a0 = has_lo && a >= 0 ? a : 0;
        // with a negative part present, zero belongs here (inclusive)
        sb part = { 0 };
        if (unum_range(&part, a0, a_ex, has_hi ? b : -1, hi_ex)) {
            sb_add(&o, part.s);
            any = true;
        }
        free(part.s);
    }
    // x < 0 part: y = -x > 0
    if (!has_lo || a < 0) {
        int64_t ya;
        bool ya_ex;
        if (has_hi && b < 0) { ya = -b; ya_ex = hi_ex; }
        else { ya = 0; ya_ex = true; }
        sb part = { 0 };
        if (unum_range(&part, ya, ya_ex, has_lo ? -a : -1, lo_ex)) {
            if (any) sb_add(&o, " | ");
            sb_add(&o, "\"-\" ");
            sb_add(&o, part.s);
            any = true;
        }
        free(part.s);
    }
    sb_add(&o, ")");
    if (!any) { free(o.s); cfail(C, hint, "no number between minimum and maximum"); return NULL; }
    return sb_take(&o);
}

// ---- objects ----

typedef struct {
    const char *key;
    size_t key_len;
    const jv_value *schema;
    bool required;
} prop;

// Extra keys must differ from every declared one: a trie over the declared names, where
// leaving the trie anywhere (or stopping where no name ends) is allowed.
typedef struct knode {
    uint32_t c;
    bool end;
    struct knode *kids;
    size_t n_kids;
} knode;

static void knode_free(knode *k) {
    for (size_t i = 0; i < k->n_kids; i++) knode_free(&k->kids[i]);
    free(k->kids);
}

static bool knode_insert(knode *k, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        const unsigned char *p = (const unsigned char *)s + i;
        uint32_t c = p[0];
        size_t l = 1;
        if (c >= 0xF0 && i + 3 < n) { c = ((c & 7) << 18) | ((p[1] & 63) << 12) | ((p[2] & 63) << 6) | (p[3] & 63); l = 4; }
        else if (c >= 0xE0 && i + 2 < n) { c = ((c & 15) << 12) | ((p[1] & 63) << 6) | (p[2] & 63); l = 3; }
        else if (c >= 0xC0 && i + 1 < n) { c = ((c & 31) << 6) | (p[1] & 63); l = 2; }
        i += l;
        size_t j = 0;
        while (j < k->n_kids && k->kids[j].c != c) j++;
        if (j == k->n_kids) {
            knode *kk = realloc(k->kids, (k->n_kids + 1) * sizeof *kk);
            if (!kk) return false;
            k->kids = kk;
            memset(&kk[k->n_kids], 0, sizeof *kk);
            kk[k->n_kids].c = c;
            k->n_kids++;
        }
        k = &k->kids[j];
    }
    k->end = true;
    return true;
}

static void knode_emit(sb *o, const knode *k) {
    sb_add(o, "( ( [^\"\\\\\\x00-\\x1F");
    for (size_t i = 0; i < k->n_kids; i++) rx_class_cp(o, k->kids[i].c);
    sb_add(o, "] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} ) ) char*");
    for (size_t i = 0; i < k->n_kids; i++) {
        sb_add(o, " | ");
        rx_char(o, k->kids[i].c);
        sb_add(o, " ");
        knode_emit(o, &k->kids[i]);
    }
    if (!k->end) sb_add(o, " | ");
    sb_add(o, ")");
}

// minProperties / maxProperties into *lo and *hi (-1: no maximum). False after an error.
static bool member_counts(conv *C, const jv_value *s, long *lo, long *hi, const char *hint) {
    double mn = 0, mx = -1;
    num_of(s, "minProperties", &mn);
    num_of(s, "maxProperties", &mx);
    if (mn < 0 || mn > 10000 || mx > 10000) return cfail(C, hint, "minProperties/maxProperties out of range (0 to 10000)");
    *lo = (long)ceil(mn);
    *hi = mx < 0 ? -1 : (long)floor(mx);
    if (*hi >= 0 && *lo > *hi) return cfail(C, hint, "maxProperties below minProperties");
    return true;
}

// GBNF repetition suffix for a..b times (b < 0: unbounded).
static void sb_repeat(sb *o, long a, long b) {
    if (b < 0) sb_addf(o, a == 0 ? "*" : a == 1 ? "+" : "{%ld,}", a);
    else sb_addf(o, "{%ld,%ld}", a, b);
}

#define MAX_COUNT_STATES 4096 // rules a counted object may need

// Members of an object with minProperties / maxProperties. State (i, c): the members from
// declared property i on, c already written; c stops at lo when there is no maximum (past the
// minimum the count no longer matters). Each reachable state from which the bounds can still
// be met becomes a rule: take property i (then (i+1, c+1)) or, if optional, skip it; after the
// last declared property, the extra members (extra_kv, NULL: none allowed) make up the count.
static char *members_counted(conv *C, const prop *P, char *const *kv, size_t np, const char *extra_kv,
                             long lo, long hi, const char *hint) {
    const long cap = hi >= 0 ? hi : lo;
    const size_t width = (size_t)cap + 1, n_states = (np + 1) * width;
    if (n_states > MAX_COUNT_STATES) {
        cfail(C, hint, "minProperties/maxProperties need too many rules (%zu properties, count up to %ld)", np, cap);
        return NULL;
    }
    size_t *req_after = calloc(np + 1, sizeof *req_after);
    char **name = calloc(n_states, sizeof *name);
    bool *reach = calloc(n_states, sizeof *reach);
    char *result = NULL;
    if (!req_after || !name || !reach) { cfail(C, hint, "out of memory"); goto out; }
    for (size_t i = np; i-- > 0;) req_after[i] = req_after[i + 1] + P[i].required;
#define FEASIBLE(i, c) ((hi < 0 || (c) + (long)req_after[i] <= hi) && (extra_kv || (c) + (long)(np - (i)) >= lo))
#define NEXT(c) (hi >= 0 || (c) < lo ? (c) + 1 : (c))
    if (!FEASIBLE(0, 0L)) { cfail(C, hint, "no object satisfies minProperties/maxProperties"); goto out; }
    reach[0] = true;
    for (size_t i = 0; i < np; i++)
        for (long c = 0; c <= cap; c++) {
            if (!reach[i * width + (size_t)c]) continue;
            if (FEASIBLE(i + 1, NEXT(c))) reach[(i + 1) * width + (size_t)NEXT(c)] = true;
            if (!P[i].required && FEASIBLE(i + 1, c)) reach[(i + 1) * width + (size_t)c] = true;
        }
    for (size_t k = 0; k < n_states; k++) {
        if (!reach[k]) continue;
        char nm[64];
        snprintf(nm, sizeof nm, "-n%zu-%zu", k / width, k % width);
        sb h = { 0 };
        sb_add(&h, hint);
        sb_add(&h, nm);
        char *hn = sb_take(&h);
        const char *r = hn ? add_rule(C, hn, NULL, false) : NULL;
        free(hn);
        if (!r || !(name[k] = dupstr(r))) { cfail(C, hint, "out of memory"); goto out; }
    }
    for (size_t k = 0; k < n_states; k++) {
        if (!reach[k]) continue;
        size_t i = k / width;
        long c = (long)(k % width);
        const char *comma = c > 0 ? "\",\" space " : "";
        sb o = { 0 };
        if (i < np) {
            long n = NEXT(c);
            bool take = FEASIBLE(i + 1, n), skip = !P[i].required && FEASIBLE(i + 1, c);
            if (take) sb_addf(&o, "%s%s space %s", comma, kv[i], name[(i + 1) * width + (size_t)n]);
            if (skip) sb_addf(&o, "%s%s", take ? " | " : "", name[(i + 1) * width + (size_t)c]);
        } else {
            long a = lo > c ? lo - c : 0, b = hi >= 0 ? hi - c : -1;
            if (!extra_kv || b == 0) sb_add(&o, "\"\"");
            else if (c > 0) {
                sb_addf(&o, "( \",\" space %s space )", extra_kv);
                sb_repeat(&o, a, b);
            } else {
                // the first extra member has no comma before it
                if (a == 0) sb_add(&o, "( ");
                sb_addf(&o, "%s space", extra_kv);
                if (b != 1) {
                    sb_addf(&o, " ( \",\" space %s space )", extra_kv);
                    sb_repeat(&o, a > 1 ? a - 1 : 0, b < 0 ? -1 : b - 1);
                }
                if (a == 0) sb_add(&o, " )?");
            }
        }
        char *body = sb_take(&o);
        if (!body) { cfail(C, hint, "out of memory"); goto out; }
        set_body(C, name[k], body);
    }
#undef FEASIBLE
#undef NEXT
    sb o = { 0 };
    sb_addf(&o, "\"{\" space %s \"}\"", name[0]);
    result = sb_take(&o);
    if (!result) cfail(C, hint, "out of memory");
out:
    for (size_t k = 0; name && k < n_states; k++) free(name[k]);
    free(name);
    free(reach);
    free(req_after);
    return result;
}

static char *object_body(conv *C, const jv_value *s, const char *hint) {
    const jv_value *props = jv_get(s, "properties");
    const jv_value *req = jv_get(s, "required");
    const jv_value *addl = jv_get(s, "additionalProperties");
    if (props && props->type != JV_OBJECT) { cfail(C, hint, "properties must be an object"); return NULL; }
    if (req && req->type != JV_ARRAY) { cfail(C, hint, "required must be an array"); return NULL; }
    bool addl_false = addl && addl->type == JV_BOOL && !addl->boolean;
    long lo = 0, hi = -1; // minProperties, maxProperties (-1: none)
    if (!member_counts(C, s, &lo, &hi, hint)) return NULL;
    const bool counted = lo > 0 || hi >= 0;
    if (!props && !req && !counted) {
        if (addl_false) return prim(C, "space") ? dupstr("\"{\" space \"}\"") : NULL;
        if (!addl || (addl->type == JV_BOOL) || (addl->type == JV_OBJECT && addl->n == 0))
            return prim(C, "object") ? dupstr("object") : NULL;
    }
    // The declared properties in schema order, then required names not among them.
    size_t n = (props ? props->n : 0) + (req ? req->n : 0);
    prop *P = calloc(n ? n : 1, sizeof *P);
    if (!P) { cfail(C, hint, "out of memory"); return NULL; }
    size_t np = 0;
    for (size_t i = 0; props && i < props->n; i++)
        P[np++] = (prop){ props->keys[i], props->key_lens[i], props->items[i], false };
    for (size_t i = 0; req && i < req->n; i++) {
        const jv_value *r = req->items[i];
        if (r->type != JV_STRING) continue;
        size_t j = 0;
        while (j < np && !(P[j].key_len == r->len && !memcmp(P[j].key, r->text, r->len))) j++;
        if (j == np) P[np++] = (prop){ r->text, r->len, NULL, true };
        else P[j].required = true;
    }
    // Allow extra members when additionalProperties is true or a schema, or when nothing
    // was declared at all.
    bool extra = (addl && !addl_false) || (!props && !addl);
    char *extra_kv = NULL;
    bool ok = prim(C, "space") != NULL;
    char **kv = calloc(np ? np : 1, sizeof *kv);
    if (!kv) ok = cfail(C, hint, "out of memory");
    for (size_t i = 0; ok && i < np; i++) {
        char key[512];
        snprintf(key, sizeof key, "%.*s", (int)(P[i].key_len > 200 ? 200 : P[i].key_len), P[i].key);
        char *h = joinhint(hint, key);
        char *v = NULL;
        if (h) v = P[i].schema ? rule_of(C, P[i].schema, h) : (prim(C, "value") ? dupstr("value") : NULL);
        ok = h && v;
        if (ok) {
            char *buf = NULL;
            size_t bl = 0, bc = 0;
            ok = jv_write_string(P[i].key, P[i].key_len, &buf, &bl, &bc);
            sb body = { 0 };
            if (ok) sb_lit(&body, buf, bl);
            sb_addf(&body, " space \":\" space %s", v);
            free(buf);
            char *b = sb_take(&body);
            sb kn = { 0 };
            sb_add(&kn, h);
            sb_add(&kn, "-kv");
            char *kname = sb_take(&kn);
            const char *name = b && kname ? add_rule(C, kname, b, false) : NULL;
            free(kname);
            free(b);
            kv[i] = name ? dupstr(name) : NULL;
            ok = kv[i] != NULL;
        }
        free(h);
        free(v);
    }
    if (ok && extra) {
        char *h = joinhint(hint, "additional");
        char *v = NULL;
        if (h) {
            if (addl && addl->type == JV_OBJECT && addl->n > 0) v = rule_of(C, addl, h);
            else v = prim(C, "value") ? dupstr("value") : NULL;
        }
        knode root = { 0 };
        for (size_t i = 0; ok && i < np; i++) ok = knode_insert(&root, P[i].key, P[i].key_len);
        if (ok && h && v && prim(C, "char")) {
            sb body = { 0 };
            sb_add(&body, "\"\\\"\" ");
            if (np) knode_emit(&body, &root);
            else sb_add(&body, "char*");
            sb_addf(&body, " \"\\\"\" space \":\" space %s", v);
            char *b = sb_take(&body);
            sb kn = { 0 };
            sb_add(&kn, h);
            sb_add(&kn, "-kv");
            char *kname = sb_take(&kn);
            const char *name = b && kname ? add_rule(C, kname, b, false) : NULL;
            free(kname);
            free(b);
            extra_kv = name ? dupstr(name) : NULL;
        }
        ok = ok && extra_kv != NULL;
        knode_free(&root);
        free(h);
        free(v);
    }
    char *result = NULL;
    if (ok && counted) {
        result = members_counted(C, P, kv, np, extra ? extra_kv : NULL, lo, hi, hint);
    } else if (ok) {
        // after(i): members i.. when one was already written (each preceded by a comma);
        // start(i): members i.. when none was written yet.
        sb o = { 0 };
        sb_add(&o, "\"{\" space ");
        // Build start(0) iteratively: open a group for each optional member before the first
        // required one.
        size_t opens = 0;
        for (size_t i = 0; i <= np; i++) {
            if (i == np) {
                if (extra) sb_addf(&o, "( %s space ( \",\" space %s space )* )?", extra_kv, extra_kv);
                break;
            }
            if (P[i].required) {
                sb_addf(&o, "%s space", kv[i]);
                for (size_t j = i + 1; j < np; j++) {
                    if (P[j].required) sb_addf(&o, " \",\" space %s space", kv[j]);
                    else sb_addf(&o, " ( \",\" space %s space )?", kv[j]);
                }
                if (extra) sb_addf(&o, " ( \",\" space %s space )*", extra_kv);
                break;
            }
            // optional member i: either it comes first, or start(i+1)
            sb_addf(&o, "( %s space", kv[i]);
            for (size_t j = i + 1; j < np; j++) {
                if (P[j].required) sb_addf(&o, " \",\" space %s space", kv[j]);
                else sb_addf(&o, " ( \",\" space %s space )?", kv[j]);
            }
            if (extra) sb_addf(&o, " ( \",\" space %s space )*", extra_kv);
            sb_add(&o, " | ");
            opens++;
        }
        for (size_t i = 0; i < opens; i++) sb_add(&o, " )");
        sb_add(&o, " \"}\"");
        result = sb_take(&o);
        if (!result) cfail(C, hint, "out of memory");
    }
    for (size_t i = 0; kv && i < np; i++) free(kv[i]);
    free(kv);
    free(extra_kv);
    free(P);
    return result;
}

// ---- arrays ----

// contains with minContains (default 1), for an array whose items are otherwise free: at
// least m items match, written as "any items, then a match" m times, then any items. Returns
// NULL with *handled false when this does not apply (m is 0, or other item keywords are there,
// which a grammar cannot intersect with it: then contains is reported as not enforced).
static char *contains_body(conv *C, const jv_value *s, const jv_value *contains, const char *hint,
                           bool *handled) {
    *handled = false;
    double dm = 1;
    num_of(s, "minContains", &dm);
    if (dm < 0 || dm > 1000) {
        *handled = true;
        cfail(C, hint, "minContains out of range (0 to 1000)");
        return NULL;
    }
    const long m = (long)ceil(dm);
    if (m == 0) return NULL;
    const jv_value *items = jv_get(s, "items");
    bool free_items = !items || (items->type == JV_BOOL && items->boolean) || (items->type == JV_OBJECT && items->n == 0);
    if (!free_items || jv_get(s, "prefixItems") || jv_get(s, "minItems") || jv_get(s, "maxItems")) {
        warn(C, hint, "'contains' next to items, prefixItems, minItems or maxItems");
        return NULL;
    }
    *handled = true;
    char *h = joinhint(hint, "contains");
    char *match = h ? rule_of(C, contains, h) : NULL;
    free(h);
    if (!match || !prim(C, "value") || !prim(C, "space")) { free(match); return NULL; }
    sb o = { 0 };
    sb_addf(&o, "\"[\" space ( value space \",\" space )* %s space", match);
    if (m > 1) sb_addf(&o, " ( \",\" space ( value space \",\" space )* %s space ){%ld}", match, m - 1);
    sb_add(&o, " ( \",\" space value space )* \"]\"");
    free(match);
    char *r = sb_take(&o);
    if (!r) cfail(C, hint, "out of memory");
    return r;
}

static char *array_body(conv *C, const jv_value *s, const char *hint) {
    const jv_value *contains = jv_get(s, "contains");
    if (contains) {
        bool handled;
        char *r = contains_body(C, s, contains, hint, &handled);
        if (handled) return r;
    }
    const jv_value *items = jv_get(s, "items");
    const jv_value *prefix = jv_get(s, "prefixItems");
    const jv_value *rest = items;
    if (!prefix && items && items->type == JV_ARRAY) { // draft 2019 and older tuples
        prefix = items;
        rest = jv_get(s, "additionalItems");
    }
    if (prefix && prefix->type != JV_ARRAY) { cfail(C, hint, "prefixItems must be an array"); return NULL; }
    size_t k = prefix ? prefix->n : 0;
    bool rest_ok = prefix ? (rest && !(rest->type == JV_BOOL && !rest->boolean)) :
                            !(rest && rest->type == JV_BOOL && !rest->boolean);
    double dmin = 0, dmax = -1;
    bool has_min = num_of(s, "minItems", &dmin), has_max = num_of(s, "maxItems", &dmax);
    if (dmin < 0 || dmin > 100000 || dmax > 100000) { cfail(C, hint, "item counts out of range"); return NULL; }
    long lo = has_min ? (long)ceil(dmin) : (prefix ? (long)k : 0);
    long hi = has_max ? (long)floor(dmax) : -1; // -1: unbounded
    if (!rest_ok) hi = hi < 0 || hi > (long)k ? (long)k : hi;
    if (prefix && !has_min && lo > hi && hi >= 0) lo = hi;
    if (hi >= 0 && lo > hi) { cfail(C, hint, "no array satisfies minItems/maxItems"); return NULL; }
    if (!prim(C, "space")) return NULL;

    char **el = calloc(k + 1, sizeof *el); // el[i]: rule of position i; el[k]: the rest
    bool ok = el != NULL;
    for (size_t i = 0; ok && i < k; i++) {
        char idx[32];
        snprintf(idx, sizeof idx, "%zu", i);
        char *h = joinhint(hint, idx);
        ok = h && (el[i] = rule_of(C, prefix->items[i], h)) != NULL;
        free(h);
    }
    if (ok && rest_ok && (hi < 0 || hi > (long)k)) {
        char *h = joinhint(hint, "item");
        if (rest && !(rest->type == JV_BOOL)) el[k] = h ? rule_of(C, rest, h) : NULL;
        else el[k] = prim(C, "value") ? dupstr("value") : NULL;
        free(h);
        ok = el[k] != NULL;
    }
    char *result = NULL;
    if (ok) {
        sb o = { 0 };
        sb_add(&o, "\"[\" space ");
        if (hi != 0) {
            // Positions 0..k-1 nest as optional groups past lo; the rest is one repetition.
            size_t opens = 0;
            for (size_t i = 0; i < k && (hi < 0 || (long)i < hi); i++) {
                if ((long)i >= lo) { sb_add(&o, "( "); opens++; }
                if (i > 0) sb_add(&o, "\",\" space ");
                sb_addf(&o, "%s space ", el[i]);
            }
            if (el[k] && (hi < 0 || hi > (long)k)) {
                long a = lo > (long)k ? lo - (long)k : 0, b = hi < 0 ? -1 : hi - (long)k;
                if (k == 0) {
                    // first item, then the others with commas
                    if (lo == 0) { sb_add(&o, "( "); opens++; }
                    sb_addf(&o, "%s space ", el[k]);
                    a = a > 0 ? a - 1 : 0;
                    b = b < 0 ? -1 : b - 1;
                }
                if (b != 0) {
                    sb_addf(&o, "( \",\" space %s space )", el[k]);
                    if (b < 0) sb_addf(&o, a == 0 ? "*" : a == 1 ? "+" : "{%ld,}", a);
                    else sb_addf(&o, "{%ld,%ld}", a, b);
                    sb_add(&o, " ");
                }
            }
            for (size_t i = 0; i < opens; i++) sb_add(&o, ")? ");
        }
        sb_add(&o, "\"]\"");
        result = sb_take(&o);
        if (!result) cfail(C, hint, "out of memory");
    }
    for (size_t i = 0; el && i <= k; i++) free(el[i]);
    free(el);
    return result;
}

// ---- dispatch ---------------------------------------------------------------------------------

static const jv_value *resolve_ref(conv *C, const char *ref, const char *hint) {
    if (ref[0] != '#') { cfail(C, hint, "only local $ref (#/...) are supported: '%s'", ref); return NULL; }
    const jv_value *v = C->doc;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        sb seg = { 0 };
        while (*p && *p != '/') {
            if (p[0] == '~' && p[1] == '0') { sb_add(&seg, "~"); p += 2; }
            else if (p[0] == '~' && p[1] == '1') { sb_add(&seg, "/"); p += 2; }
            else { sb_addn(&seg, p, 1); p++; }
        }
        char *name = sb_take(&seg);
        if (!name) { cfail(C, hint, "out of memory"); return NULL; }
        const jv_value *next = NULL;
        if (v->type == JV_OBJECT) next = jv_get(v, name);
        else if (v->type == JV_ARRAY) {
            char *end;
            unsigned long idx = strtoul(name, &end, 10);
            if (*end == 0 && idx < v->n) next = v->items[idx];
        }
        free(name);
        if (!next) { cfail(C, hint, "$ref '%s' does not resolve", ref); return NULL; }
        v = next;
    }
    if (*p) { cfail(C, hint, "bad $ref '%s'", ref); return NULL; }
    return v;
}

static char *typed_body(conv *C, const jv_value *s, const char *t, const char *hint) {
    if (!strcmp(t, "string")) return string_body(C, s, hint);
    if (!strcmp(t, "integer")) return integer_body(C, s, hint);
    if (!strcmp(t, "number")) return number_body(C, s, hint);
    if (!strcmp(t, "boolean")) return prim(C, "boolean") ? dupstr("boolean") : NULL;
    if (!strcmp(t, "null")) return prim(C, "null") ? dupstr("null") : NULL;
    if (!strcmp(t, "object")) return object_body(C, s, hint);
    if (!strcmp(t, "array")) return array_body(C, s, hint);
    cfail(C, hint, "unknown type '%s'", t);
    return NULL;
}

static const char *infer_type(const jv_value *s) {
    static const struct { const char *key, *type; } K[] = {
        { "properties", "object" }, { "additionalProperties", "object" }, { "required", "object" },
        { "minProperties", "object" }, { "maxProperties", "object" },
        { "items", "array" }, { "prefixItems", "array" }, { "minItems", "array" }, { "maxItems", "array" },
        { "contains", "array" },
        { "minLength", "string" }, { "maxLength", "string" }, { "pattern", "string" }, { "format", "string" },
        { "minimum", "number" }, { "maximum", "number" }, { "exclusiveMinimum", "number" },
        { "exclusiveMaximum", "number" },
    };
    for (size_t i = 0; i < sizeof K / sizeof K[0]; i++)
        if (jv_get(s, K[i].key)) return K[i].type;
    return NULL;
}

static bool keep_temp(conv *C, jv_value *v) {
    if (C->n_temps == C->cap_temps) {
        size_t c = C->cap_temps ? C->cap_temps * 2 : 8;
        jv_value **t = realloc(C->temps, c * sizeof *t);
        if (!t) return false;
        C->temps = t;
        C->cap_temps = c;
    }
    C->temps[C->n_temps++] = v;
    return true;
}

// Frees a merged schema made by allOf: it borrows its members' values.
static void temp_free(jv_value *v) {
    if (!v) return;
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    free(v);
}

static bool obj_put(jv_value *o, const char *key, size_t klen, jv_value *val) {
    for (size_t i = 0; i < o->n; i++)
        if (o->key_lens[i] == klen && !memcmp(o->keys[i], key, klen)) { o->items[i] = val; return true; }
    jv_value **it = realloc(o->items, (o->n + 1) * sizeof *it);
    if (!it) return false;
    o->items = it;
    char **k = realloc(o->keys, (o->n + 1) * sizeof *k);
    if (!k) return false;
    o->keys = k;
    size_t *kl = realloc(o->key_lens, (o->n + 1) * sizeof *kl);
    if (!kl) return false;
    o->key_lens = kl;
    o->items[o->n] = val;
    o->keys[o->n] = (char *)key;
    o->key_lens[o->n] = klen;
    o->n++;
    return true;
}

// allOf: one schema with every member's keywords; properties and required are unions
// (properties in order of appearance), other keywords: the last one wins.
static const jv_value *merge_all_of(conv *C, const jv_value *s, const char *hint) {
    jv_value *m = calloc(1, sizeof *m), *props = calloc(1, sizeof *props), *req = calloc(1, sizeof *req);
    if (!m || !props || !req || !keep_temp(C, m)) {
        free(m); free(props); free(req);
        cfail(C, hint, "out of memory");
        return NULL;
    }
    m->type = props->type = JV_OBJECT;
    req->type = JV_ARRAY;
    if (!keep_temp(C, props) || !keep_temp(C, req)) { temp_free(props); temp_free(req); cfail(C, hint, "out of memory"); return NULL; }
    // the schema itself (minus allOf) and each member, $refs followed
    const jv_value *all = jv_get(s, "allOf");
    size_t n_parts = 1 + (all && all->type == JV_ARRAY ? all->n : 0);
    for (size_t pi = 0; pi < n_parts; pi++) {
        const jv_value *part = pi == 0 ? s : all->items[pi - 1];
        for (int guard = 0; part && part->type == JV_OBJECT && guard < 32; guard++) {
            const jv_value *ref = jv_get(part, "$ref");
            if (!ref || ref->type != JV_STRING) break;
            part = resolve_ref(C, ref->text, hint);
        }
        if (!part) return NULL;
        if (part->type != JV_OBJECT) continue;
        if (pi > 0 && jv_get(part, "allOf")) part = merge_all_of(C, part, hint);
        if (!part) return NULL;
        bool ok = true;
        for (size_t i = 0; ok && i < part->n; i++) {
            const char *k = part->keys[i];
            jv_value *v = part->items[i];
            if (!strcmp(k, "allOf") || !strcmp(k, "$ref")) continue;
            if (!strcmp(k, "properties") && v->type == JV_OBJECT) {
                for (size_t j = 0; ok && j < v->n; j++) ok = obj_put(props, v->keys[j], v->key_lens[j], v->items[j]);
            } else if (!strcmp(k, "required") && v->type == JV_ARRAY) {
                for (size_t j = 0; ok && j < v->n; j++) {
                    jv_value **it = realloc(req->items, (req->n + 1) * sizeof *it);
                    if (!it) { ok = false; break; }
                    req->items = it;
                    req->items[req->n++] = v->items[j];
                }
            } else {
                ok = obj_put(m, k, part->key_lens[i], v);
            }
        }
        if (!ok) { cfail(C, hint, "out of memory"); return NULL; }
    }
    if ((props->n && !obj_put(m, "properties", 10, props)) || (req->n && !obj_put(m, "required", 8, req))) {
        cfail(C, hint, "out of memory");
        return NULL;
    }
    return m;
}

static char *alternatives(conv *C, const jv_value *list, const char *hint, const char *kw) {
    if (list->type != JV_ARRAY || list->n == 0) { cfail(C, hint, "%s must be a non-empty array", kw); return NULL; }
    sb o = { 0 };
    sb_add(&o, "( ");
    for (size_t i = 0; i < list->n; i++) {
        char idx[32];
        snprintf(idx, sizeof idx, "%zu", i);
        char *h = joinhint(hint, idx);
        char *r = h ? rule_of(C, list->items[i], h) : NULL;
        free(h);
        if (!r) { free(o.s); return NULL; }
        if (i) sb_add(&o, " | ");
        sb_add(&o, r);
        free(r);
    }
    sb_add(&o, " )");
    return sb_take(&o);
}

static char *body_of(conv *C, const jv_value *s, const char *hint) {
    if (C->failed) return NULL;
    if (C->depth >= MAX_VISIT_DEPTH) {
        cfail(C, hint, "schema nested too deeply (more than %d levels, $ref chains included)", MAX_VISIT_DEPTH);
        return NULL;
    }
    C->depth++;
    char *r = NULL;
    if (s->type == JV_BOOL) {
        if (s->boolean) r = prim(C, "value") ? dupstr("value") : NULL;
        else cfail(C, hint, "schema 'false' matches nothing");
        goto done;
    }
    if (s->type != JV_OBJECT) { cfail(C, hint, "a schema must be an object or a boolean"); goto done; }
    warn_unsupported(C, s, hint);
    const jv_value *v;
    if ((v = jv_get(s, "$ref"))) {
        if (v->type != JV_STRING) { cfail(C, hint, "$ref must be a string"); goto done; }
        for (size_t i = 0; i < C->n_refs; i++)
            if (!strcmp(C->refs[i].ref, v->text)) { r = dupstr(C->refs[i].name); goto done; }
        const jv_value *target = resolve_ref(C, v->text, hint);
        if (!target) goto done;
        const char *last = strrchr(v->text, '/');
        last = last && last[1] ? last + 1 : "ref";
        const char *name = add_rule(C, last, NULL, false);
        if (!name) goto done;
        char *ref = dupstr(v->text), *nm = dupstr(name);
        if (C->n_refs == C->cap_refs) {
            size_t c = C->cap_refs ? C->cap_refs * 2 : 8;
            sref *t = realloc(C->refs, c * sizeof *t);
            if (t) { C->refs = t; C->cap_refs = c; }
        }
        if (!ref || !nm || C->n_refs == C->cap_refs) { free(ref); free(nm); cfail(C, hint, "out of memory"); goto done; }
        C->refs[C->n_refs++] = (sref){ ref, nm };
        char *b = body_of(C, target, nm);
        if (!b) goto done;
        set_body(C, nm, b);
        r = dupstr(nm);
        goto done;
    }
    if ((v = jv_get(s, "const"))) { r = literal_of(C, v); goto done; }
    if ((v = jv_get(s, "enum"))) {
        if (v->type != JV_ARRAY || v->n == 0) { cfail(C, hint, "enum must be a non-empty array"); goto done; }
        sb o = { 0 };
        sb_add(&o, "( ");
        for (size_t i = 0; i < v->n; i++) {
            char *lit = literal_of(C, v->items[i]);
            if (!lit) { free(o.s); goto done; }
            if (i) sb_add(&o, " | ");
            sb_add(&o, lit);
            free(lit);
        }
        sb_add(&o, " )");
        r = sb_take(&o);
        goto done;
    }
    if ((v = jv_get(s, "anyOf")) || (v = jv_get(s, "oneOf"))) {
        r = alternatives(C, v, hint, jv_get(s, "anyOf") ? "anyOf" : "oneOf");
        goto done;
    }
    if ((v = jv_get(s, "allOf"))) {
        if (v->type != JV_ARRAY) { cfail(C, hint, "allOf must be an array"); goto done; }
        const jv_value *m = merge_all_of(C, s, hint);
        if (m) r = body_of(C, m, hint);
        goto done;
    }
    v = jv_get(s, "type");
    if (v && v->type == JV_ARRAY) {
        if (v->n == 0) { cfail(C, hint, "type must not be an empty array"); goto done; }
        sb o = { 0 };
        sb_add(&o, "( ");
        for (size_t i = 0; i < v->n; i++) {
            if (v->items[i]->type != JV_STRING) { free(o.s); cfail(C, hint, "type must name types"); goto done; }
            char *h = joinhint(hint, v->items[i]->text);
            char *b = h ? typed_body(C, s, v->items[i]->text, h) : NULL;
            free(h);
            if (!b) { free(o.s); goto done; }
            if (i) sb_add(&o, " | ");
            sb_add(&o, b);
            free(b);
        }
        sb_add(&o, " )");
        r = sb_take(&o);
        goto done;
    }
    if (v && v->type != JV_STRING) { cfail(C, hint, "type must be a string or an array"); goto done; }
    const char *t = v ? v->text : infer_type(s);
    if (t) r = typed_body(C, s, t, hint);
    else r = prim(C, "value") ? dupstr("value") : NULL;
done:
    C->depth--;
    if (!r && !C->failed) cfail(C, hint, "out of memory");
    return r;
}

char *ll_json_schema_to_gbnf(const char *schema, char *err, size_t errlen) {
    return ll_json_schema_to_gbnf_warn(schema, NULL, err, errlen);
}

char *ll_json_schema_to_gbnf_warn(const char *schema, char **warnings, char *err, size_t errlen) {
    if (warnings) *warnings = NULL;
    if (err && errlen) err[0] = 0;
    char jerr[200];
    jv_value *doc = jv_parse(schema ? schema : "", schema ? strlen(schema) : 0, jerr, sizeof jerr);
    if (!doc) {
        if (err && errlen) snprintf(err, errlen, "schema is not valid JSON: %s", jerr);
        return NULL;
    }
    conv C = { .doc = doc, .err = err, .errlen = errlen };
    char *out = NULL;
    const char *root = add_rule(&C, "root", NULL, true);
    char *b = root ? body_of(&C, doc, "root") : NULL;
    if (b) {
        set_body(&C, "root", b);
        sb o = { 0 };
        for (size_t i = 0; i < C.n_rules; i++) {
            if (!C.rules[i].body) continue;
            sb_addf(&o, "%s ::= %s\n", C.rules[i].name, C.rules[i].body);
        }
        out = sb_take(&o);
        if (!out) cfail(&C, NULL, "out of memory");
    }
    for (size_t i = 0; i < C.n_rules; i++) { free(C.rules[i].name); free(C.rules[i].body); }
    free(C.rules);
    for (size_t i = 0; i < C.n_refs; i++) { free(C.refs[i].ref); free(C.refs[i].name); }
    free(C.refs);
    for (size_t i = 0; i < C.n_temps; i++) temp_free(C.temps[i]);
    free(C.temps);
    jv_free(doc);
    if (out && warnings && C.warnings.len) *warnings = sb_take(&C.warnings);
    free(C.warnings.s);
    return out;
}
