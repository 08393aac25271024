// Jinja lexer: template text -> tokens. Text between tags becomes TK_TEXT with the whitespace
// rules applied here, as Jinja2's lexer applies them with transformers' settings:
//   {%- / {{- / {#-   strip all whitespace before the tag
//   -%} / -}} / -#}   strip all whitespace after it
//   lstrip_blocks     spaces and tabs between a line's start and a {% or {# tag go (not with {%+)
//   trim_blocks       the first newline after a %} or #} goes
// Inside {{ }} and {% %} come names, strings, numbers and operators; a }} or %} only ends the
// tag when every bracket opened inside it is closed (as in Jinja2: {{ {'a': {'b': 1}} }}).
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

typedef struct {
    jinja_arena *a;
    const char *s;
    size_t n, pos;
    int line;
    size_t line_start;   // offset of the current line's first byte
    size_t scanned;      // line/line_start are right up to here
    jinja_tok *toks;
    size_t ntok, cap;
    char *err;
    size_t errlen;
} lexer;

// Brings line/line_start up to offset at (offsets only move forward).
static void locate(lexer *L, size_t at, int *line, int *col) {
    if (at < L->line_start) {   // an error pointing back: count again from the start
        L->line = 1;
        L->line_start = L->scanned = 0;
    }
    for (; L->scanned < at && L->scanned < L->n; L->scanned++)
        if (L->s[L->scanned] == '\n') {
            L->line++;
            L->line_start = L->scanned + 1;
        }
    *line = L->line;
    *col = (int)(at - L->line_start) + 1;
}

static _Noreturn void lex_fail(lexer *L, size_t at, const char *fmt, ...) {
    int line, col;
    locate(L, at, &line, &col);
    int k = snprintf(L->err, L->errlen, "line %d, column %d: ", line, col);
    if (k < 0 || (size_t)k >= L->errlen) k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err + k, L->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    jinja_one_line(L->err);
    longjmp(*L->a->fail, 1);
}

static jinja_tok *push(lexer *L, jinja_tok_type t, size_t at, const char *p, size_t n) {
    if (L->ntok == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jinja_tok *nt = jinja_alloc(L->a, cap * sizeof *nt);
        if (L->ntok) memcpy(nt, L->toks, L->ntok * sizeof *nt);
        L->toks = nt;
        L->cap = cap;
    }
    jinja_tok *k = &L->toks[L->ntok++];
    memset(k, 0, sizeof *k);
    k->t = t;
    k->p = p;
    k->n = n;
    locate(L, at, &k->line, &k->col);
    return k;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Where the next tag ({{, {% or {#) starts at or after from; L->n when there is none.
static size_t next_tag(const lexer *L, size_t from) {
    for (size_t i = from; i + 1 < L->n; i++) {
        if (L->s[i] != '{') continue;
        char c = L->s[i + 1];
        if (c == '{' || c == '%' || c == '#') return i;
    }
    return L->n;
}

// Adds the text s[from, to) after the whitespace rules for the tag that follows it.
static void add_text(lexer *L, size_t from, size_t to, char tag, char sign, bool line_starting) {
    if (sign == '-') {
        while (to > from && is_space(L->s[to - 1])) to--;
    } else if (sign != '+' && (tag == '%' || tag == '#') && to > from) {
        // lstrip_blocks: only spaces/tabs between the line's start and the tag
        size_t l = to;
        while (l > from && L->s[l - 1] != '\n') l--;
        bool at_line_start = l > from || line_starting;
        bool blank = true;
        for (size_t i = l; i < to; i++)
            if (!is_space(L->s[i])) blank = false;
        if (at_line_start && blank) to = l;
    }
    if (to > from) push(L, TK_TEXT, from, L->s + from, to - from);
}

// Python's unicode-escape decoding of a string literal's body (Jinja2 reads them so).
static void add_string(lexer *L, size_t at, size_t from, size_t to) {
    char *o = jinja_alloc(L->a, to - from + 1);
    size_t k = 0;
    for (size_t i = from; i < to; i++) {
        char c = L->s[i];
        if (c != '\\' || i + 1 >= to) { o[k++] = c; continue; }
        char e = L->s[++i];
        switch (e) {
        case 'n': o[k++] = '\n'; break;
        case 't': o[k++] = '\t'; break;
        case 'r': o[k++] = '\r'; break;
        case '\\': o[k++] = '\\'; break;
        case '\'': o[k++] = '\''; break;
        case '"': o[k++] = '"'; break;
        case 'a': o[k++] = '\a'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'v': o[k++] = '\v'; break;
        case '\n': break;   // a backslash-newline continues the line
        case 'x': case 'u': case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            unsigned cp = 0;
            if (i + (size_t)digits >= to) lex_fail(L, i - 1, "truncated \\%c escape in a string", e);
            for (int d = 0; d < digits; d++) {
                char h = L->s[++i];
                cp <<= 4;
                if (is_digit(h)) cp |= (unsigned)(h - '0');
                else if (h >= 'a' && h <= 'f') cp |= (unsigned)(h - 'a' + 10);
                else if (h >= 'A' && h <= 'F') cp |= (unsigned)(h - 'A' + 10);
                else lex_fail(L, i, "bad \\%c escape in a string", e);
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) lex_fail(L, i, "bad code point in a string");
            // UTF-8; the escape took at least 4 bytes, so it fits
            if (cp < 0x80) o[k++] = (char)cp;
            else if (cp < 0x800) { o[k++] = (char)(0xC0 | cp >> 6); o[k++] = (char)(0x80 | (cp & 63)); }
            else if (cp < 0x10000) {
                o[k++] = (char)(0xE0 | cp >> 12); o[k++] = (char)(0x80 | (cp >> 6 & 63));
                o[k++] = (char)(0x80 | (cp & 63));
            } else {
                o[k++] = (char)(0xF0 | cp >> 18); o[k++] = (char)(0x80 | (cp >> 12 & 63));
                o[k++] = (char)(0x80 | (cp >> 6 & 63)); o[k++] = (char)(0x80 | (cp & 63));
            }
            break;
        }
        default:
            if (e >= '0' && e <= '7') {   // octal, up to 3 digits
                unsigned v = (unsigned)(e - '0');
                for (int d = 0; d < 2 && i + 1 < to && L->s[i + 1] >= '0' && L->s[i + 1] <= '7'; d++)
                    v = v * 8 + (unsigned)(L->s[++i] - '0');
                if (v < 0x80) o[k++] = (char)v;
                else { o[k++] = (char)(0xC0 | v >> 6); o[k++] = (char)(0x80 | (v & 63)); }
            } else {
                o[k++] = '\\';   // unknown escapes stay as written
                o[k++] = e;
            }
        }
    }
    push(L, TK_STRING, at, o, k);
}

// Lexes the inside of a tag from L->pos up to its end; returns whether the end stripped or
// consumed text up to a newline (for lstrip_blocks' line start).
static bool lex_tag(lexer *L, char kind, size_t tag_at) {
    char close = kind == '{' ? '}' : '%';
    int depth = 0;   // brackets open inside the tag
    for (;;) {
        while (L->pos < L->n && is_space(L->s[L->pos])) L->pos++;
        if (L->pos >= L->n)
            lex_fail(L, tag_at, "this %s is never closed", kind == '{' ? "{{" : "{%");
        size_t at = L->pos;
        const char *p = L->s + at;
        size_t left = L->n - at;
        // the end of the tag
        if (depth == 0) {
            bool minus = p[0] == '-' && left >= 3 && p[1] == close && p[2] == '}';
            if (minus || (left >= 2 && p[0] == close && p[1] == '}')) {
                push(L, kind == '{' ? TK_VAR_END : TK_BLOCK_END, at, p, minus ? 3 : 2);
                L->pos = at + (minus ? 3 : 2);
                if (minus) {
                    size_t q = L->pos;
                    while (L->pos < L->n && is_space(L->s[L->pos])) L->pos++;
                    return L->pos > q && L->s[L->pos - 1] == '\n';
                }
                if (kind == '%' && L->pos < L->n && L->s[L->pos] == '\n') { // trim_blocks
                    L->pos++;
                    return true;
                }
                return false;
            }
        }
        if (is_name_start(*p)) {
            size_t k = 1;
            while (k < left && (is_name_start(p[k]) || is_digit(p[k]))) k++;
            push(L, TK_NAME, at, p, k);
            L->pos += k;
        } else if (is_digit(*p)) {
            size_t k = 0;
            bool is_float = false;
            while (k < left && (is_digit(p[k]) || (p[k] == '_' && k + 1 < left && is_digit(p[k + 1])))) k++;
            bool after_dot = at > 0 && L->s[at - 1] == '.';   // foo.0 is an attribute, not a float
            if (!after_dot && k + 1 < left && p[k] == '.' && is_digit(p[k + 1])) {
                is_float = true;
                k++;
                while (k < left && (is_digit(p[k]) || (p[k] == '_' && k + 1 < left && is_digit(p[k + 1])))) k++;
            }
            if (!after_dot && k < left && (p[k] == 'e' || p[k] == 'E')) {
                size_t e = k + 1;
                if (e < left && (p[e] == '+' || p[e] == '-')) e++;
                if (e < left && is_digit(p[e])) {
                    is_float = true;
                    k = e;
                    while (k < left && is_digit(p[k])) k++;
                }
            }
            char num[64];
            size_t m = 0;
            for (size_t i = 0; i < k && m + 1 < sizeof num; i++)
                if (p[i] != '_') num[m++] = p[i];
            num[m] = 0;
            jinja_tok *t = push(L, is_float ? TK_FLOAT : TK_INT, at, p, k);
            if (is_float) {
                t->f = strtod(num, NULL);
            } else {
                errno = 0;
                long long v = strtoll(num, NULL, 10);
                if (errno || k >= sizeof num) lex_fail(L, at, "integer %.*s is too large", (int)k, p);
                t->i = v;
            }
            L->pos += k;
        } else if (*p == '\'' || *p == '"') {
            size_t k = 1;
            while (k < left && p[k] != *p) k += p[k] == '\\' ? 2 : 1;
            if (k >= left) lex_fail(L, at, "this string is never closed");
            add_string(L, at, at + 1, at + k);
            L->pos += k + 1;
        } else {
            static const char *const two[] = {"//", "**", "==", "!=", ">=", "<="};
            size_t k = 0;
            for (size_t i = 0; i < sizeof two / sizeof *two; i++)
                if (left >= 2 && p[0] == two[i][0] && p[1] == two[i][1]) k = 2;
            if (!k && strchr("+-/*%~[](){}><=.:|,;", *p)) k = 1;
            if (!k) lex_fail(L, at, "unexpected character '%c' in a tag", *p);
            if (k == 1 && strchr("([{", *p)) depth++;
            if (k == 1 && strchr(")]}", *p)) {
                if (depth == 0) lex_fail(L, at, "unexpected '%c'", *p);
                depth--;
            }
            push(L, TK_OP, at, p, k);
            L->pos += k;
        }
    }
}

// {% raw %}...{% endraw %}: the text in between, as written. Returns true if the tag at `at`
// (pointing at "{%") is a raw tag and was handled.
static bool lex_raw(lexer *L, size_t at, bool *line_starting) {
    size_t i = at + 2;
    if (i < L->n && (L->s[i] == '-' || L->s[i] == '+')) i++;
    while (i < L->n && is_space(L->s[i])) i++;
    if (L->n - i < 3 || memcmp(L->s + i, "raw", 3) || (i + 3 < L->n && (is_name_start(L->s[i + 3]) || is_digit(L->s[i + 3]))))
        return false;
    i += 3;
    while (i < L->n && is_space(L->s[i])) i++;
    if (i < L->n && L->s[i] == '-') i++;
    if (L->n - i < 2 || L->s[i] != '%' || L->s[i + 1] != '}') lex_fail(L, at, "bad {%% raw %%} tag");
    bool strip_after = L->s[i - 1] == '-';
    i += 2;
    if (strip_after) while (i < L->n && is_space(L->s[i])) i++;
    else if (i < L->n && L->s[i] == '\n') i++;
    // find {% endraw %}
    for (size_t j = i; j + 1 < L->n; j++) {
        if (L->s[j] != '{' || L->s[j + 1] != '%') continue;
        size_t k = j + 2;
        bool strip_before = k < L->n && L->s[k] == '-';
        if (k < L->n && (L->s[k] == '-' || L->s[k] == '+')) k++;
        while (k < L->n && is_space(L->s[k])) k++;
        if (L->n - k < 6 || memcmp(L->s + k, "endraw", 6)) continue;
        k += 6;
        while (k < L->n && is_space(L->s[k])) k++;
        bool strip_end = k < L->n && L->s[k] == '-';
        if (strip_end) k++;
        if (L->n - k < 2 || L->s[k] != '%' || L->s[k + 1] != '}') continue;
        size_t end = j;
        if (strip_before) while (end > i && is_space(L->s[end - 1])) end--;
        if (end > i) push(L, TK_TEXT, i, L->s + i, end - i);
        L->pos = k + 2;
        *line_starting = false;
        if (strip_end) {
            while (L->pos < L->n && is_space(L->s[L->pos])) L->pos++;
            *line_starting = L->pos > k + 2 && L->s[L->pos - 1] == '\n';
        } else if (L->pos < L->n && L->s[L->pos] == '\n') {
            L->pos++;
            *line_starting = true;
        }
        return true;
    }
    lex_fail(L, at, "this {%% raw %%} is never closed");
}

size_t jinja_lex(jinja_arena *a, const char *src, size_t len, jinja_tok **out, char *err, size_t errlen) {
    lexer L = {.a = a, .s = src, .n = len, .line = 1, .err = err, .errlen = errlen};
    bool line_starting = true;
    while (L.pos < L.n) {
        size_t at = next_tag(&L, L.pos);
        char tag = at < L.n ? L.s[at + 1] : 0;
        char sign = at + 2 < L.n ? L.s[at + 2] : 0;
        if (sign != '-' && sign != '+') sign = 0;
        add_text(&L, L.pos, at, tag, sign, line_starting);
        if (at >= L.n) break;
        if (tag == '%' && lex_raw(&L, at, &line_starting)) continue;
        if (tag == '#') {
            const char *end = NULL;
            for (size_t i = at + 2; i + 1 < L.n; i++)
                if (L.s[i] == '#' && L.s[i + 1] == '}') { end = L.s + i; break; }
            if (!end) lex_fail(&L, at, "this {# comment is never closed");
            size_t e = (size_t)(end - L.s);
            L.pos = e + 2;
            line_starting = false;
            if (e > at + 3 && L.s[e - 1] == '-') {   // -#} (not the - of the opening {#-)
                while (L.pos < L.n && is_space(L.s[L.pos])) L.pos++;
                line_starting = L.pos > e + 2 && L.s[L.pos - 1] == '\n';
            } else if (L.pos < L.n && L.s[L.pos] == '\n') {
                L.pos++;
                line_starting = true;
            }
            continue;
        }
        push(&L, tag == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, at, L.s + at, 2);
        L.pos = at + 2 + (sign ? 1 : 0);
        line_starting = lex_tag(&L, tag, at);
    }
    push(&L, TK_EOF, L.n, L.s + L.n, 0);
    *out = L.toks;
    return L.ntok;
}
