// A small recursive-descent JSON reader (see json.h). Input is treated as hostile: nesting is
// bounded, every read is bounds-checked, and strings must be valid UTF-8.
#include "json.h"

#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 128

typedef struct {
    const char *s, *end, *p;
    char *err;
    size_t errlen;
    bool failed;
} parser;

static void fail(parser *ps, const char *why) {
    if (ps->failed) return;
    ps->failed = true;
    int line = 1, col = 1;
    for (const char *q = ps->s; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (ps->err && ps->errlen) snprintf(ps->err, ps->errlen, "line %d, column %d: %s", line, col, why);
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
    ps->p += n;
    return true;
}

static int hex4(parser *ps) {
    if (ps->end - ps->p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    ps->p += 4;
    return v;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Length of a valid UTF-8 sequence at p (raw, not escaped), 0 if invalid.
static size_t utf8_valid(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; min = 0x10000; }
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    unsigned cp = c & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

// Parses a string literal (ps->p at the opening quote) into a malloc'd buffer.
static char *parse_string(parser *ps, size_t *out_len) {
    ps->p++; // "
    // The decoded text is never longer than the literal.
    const char *q = ps->p;
    while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    char *o = malloc((size_t)(q - ps->p) + 1);
    if (!o) {
        fail(ps, "out of memory");
        return NULL;
    }
    size_t n = 0;
    for (;;) {
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            o[n] = 0;
            *out_len = n;
            return o;
        }
        if (c < 0x20) {
            fail(ps, "control character in string");
            break;
        }
        if (c != '\\') {
            size_t k = utf8_valid((const unsigned char *)ps->p, (const unsigned char *)ps->end);
            if (!k) {
                fail(ps, "invalid UTF-8 in string");
                break;
            }
            memcpy(o + n, ps->p, k);
            n += k;
            ps->p += k;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            break;
        }
        char e = *ps->p++;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            int hi = hex4(ps);
            if (hi < 0) {
                fail(ps, "bad \\u escape");
                goto bad;
            }
            unsigned cp = (unsigned)hi;
            if (hi >= 0xD800 && hi <= 0xDBFF) { // a high surrogate needs its low half
                int lo = -1;
                if (ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                    ps->p += 2;
                    lo = hex4(ps);
                }
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    fail(ps, "unpaired surrogate in \\u escape");
                    goto bad;
                }
                cp = 0x10000 + (((unsigned)hi - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
            } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
                fail(ps, "unpaired surrogate in \\u escape");
                goto bad;
            }
            // \u0000 is kept as a NUL byte (str_len counts it).
            n += put_utf8(o + n, cp);
            break;
        }
        default:
            fail(ps, "bad escape in string");
            goto bad;
        }
    }
bad:
    free(o);
    return NULL;
}

static bool parse_value(parser *ps, json *v, int depth);

static bool parse_number(parser *ps, json *v) {
    const char *start = ps->p, *q = ps->p;
    if (q < ps->end && *q == '-') q++;
    if (q >= ps->end || !(*q >= '0' && *q <= '9')) {
        fail(ps, "bad number");
        return false;
    }
    if (*q == '0') q++;
    else while (q < ps->end && *q >= '0' && *q <= '9') q++;
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) { ps->p = q; fail(ps, "bad number"); return false; }
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || !(*q >= '0' && *q <= '9')) { ps->p = q; fail(ps, "bad number"); return false; }
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    char tmp[64];
    size_t n = (size_t)(q - start);
    if (n >= sizeof tmp) n = sizeof tmp - 1; // strtod needs a NUL; long digits lose nothing useful
    memcpy(tmp, start, n);
    tmp[n] = 0;
    v->type = JSON_NUMBER;
    v->num = strtod(tmp, NULL);
    ps->p = q;
    return true;
}

static bool grow(parser *ps, json *v, size_t *cap, bool keys) {
    if (v->n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 4;
    json *ni = realloc(v->items, sizeof *ni * nc);
    if (!ni) { fail(ps, "out of memory"); return false; }
    v->items = ni;
    if (keys) {
        char **nk = realloc(v->keys, sizeof *nk * nc);
        if (!nk) { fail(ps, "out of memory"); return false; }
        v->keys = nk;
    }
    *cap = nc;
    return true;
}

static bool parse_value(parser *ps, json *v, int depth) {
    memset(v, 0, sizeof *v);
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end of input");
        return false;
    }
    if (depth > JSON_MAX_DEPTH) {
        fail(ps, "nested too deeply");
        return false;
    }
    char c = *ps->p;
    if (c == '"') {
        v->type = JSON_STRING;
        v->str = parse_string(ps, &v->str_len);
        return v->str != NULL;
    }
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        v->type = obj ? JSON_OBJECT : JSON_ARRAY;
        ps->p++;
        size_t cap = 0;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
            ps->p++;
            return true;
        }
        for (;;) {
            if (!grow(ps, v, &cap, obj)) return false;
            char *key = NULL;
            if (obj) {
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != '"') { fail(ps, "expected a string key"); return false; }
                size_t kl;
                key = parse_string(ps, &kl);
                if (!key) return false;
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') { free(key); fail(ps, "expected ':'"); return false; }
                ps->p++;
                v->keys[v->n] = key;
            }
            bool ok = parse_value(ps, &v->items[v->n], depth + 1);
            v->n++; // counted even on failure, so json_free releases what was parsed
            if (!ok) return false;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
                ps->p++;
                return true;
            }
            fail(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            return false;
        }
    }
    if (literal(ps, "true")) { v->type = JSON_BOOL; v->b = true; return true; }
    if (literal(ps, "false")) { v->type = JSON_BOOL; return true; }
    if (literal(ps, "null")) { v->type = JSON_NULL; return true; }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps, v);
    fail(ps, "unexpected character");
    return false;
}

static void free_value(json *v) {
    free(v->str);
    for (size_t i = 0; i < v->n; i++) {
        free_value(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

json *json_parse(const char *s, size_t len, char *err, size_t errlen) {
    parser ps = {s, s + len, s, err, errlen, false};
    json *v = malloc(sizeof *v);
    if (!v) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bool ok = parse_value(&ps, v, 0);
    if (ok) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            fail(&ps, "unexpected text after the value");
            ok = false;
        }
    }
    if (!ok) {
        free_value(v);
        free(v);
        return NULL;
    }
    return v;
}

void json_free(json *j) {
    if (!j) return;
    free_value(j);
    free(j);
}

const json *json_get(const json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = obj->n; i-- > 0;)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

const char *json_str(const json *j) { return j && j->type == JSON_STRING ? j->str : NULL; }

void json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
    }
    fputc('"', f);
}
