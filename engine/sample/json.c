// A small strict JSON parser (recursive descent with a depth limit) and compact writer.
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/json.h"
#include "util.h"

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
    bool failed;
} jparser;

static bool jfail(jparser *P, const char *fmt, ...) {
    if (P->failed) return false;
    P->failed = true;
    va_list ap;
    va_start(ap, fmt);
    ll_vset_err_at(P->err, P->errlen, P->s, P->len, P->pos, fmt, ap);
    va_end(ap);
    return false;
}

static void jspace(jparser *P) {
    while (P->pos < P->len) {
        char c = P->s[P->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        P->pos++;
    }
}

static bool buf_reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    char *b = realloc(*buf, c);
    if (!b) return false;
    *buf = b;
    *cap = c;
    return true;
}

static bool buf_put(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (!buf_reserve(buf, cap, *len + n + 1)) return false;
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return true;
}

static size_t utf8_put(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Length of the valid UTF-8 sequence at s[0..n) (shortest form, no surrogates, at most
// U+10FFFF), or 0 when it is not one. JSON text is UTF-8 (RFC 8259); what is built from a
// string (a grammar literal, say) must be able to rely on that.
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return len;
}

// Parses a string literal at P->pos (the opening quote) into a malloc'd buffer.
static bool jstring(jparser *P, char **out, size_t *out_len) {
    size_t cap = 0, len = 0;
    char *b = NULL;
    P->pos++; // opening quote
    for (;;) {
        if (P->pos >= P->len) { free(b); return jfail(P, "unterminated string"); }
        unsigned char c = (unsigned char)P->s[P->pos];
        if (c == '"') { P->pos++; break; }
        if (c < 0x20) { free(b); return jfail(P, "control character in string"); }
        if (c == '\\') {
            if (P->pos + 1 >= P->len) { free(b); return jfail(P, "unterminated string"); }
            char e = P->s[P->pos + 1], ch = 0;
            switch (e) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': break;
            default: free(b); return jfail(P, "invalid escape");
            }
            if (e != 'u') {
                if (!buf_put(&b, &len, &cap, &ch, 1)) { free(b); return jfail(P, "out of memory"); }
                P->pos += 2;
                continue;
            }
            int v = P->pos + 6 <= P->len ? ll_hex4(P->s + P->pos + 2) : -1;
            if (v < 0) { free(b); return jfail(P, "invalid \\u escape"); }
            uint32_t cp = (uint32_t)v;
            P->pos += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = P->pos + 6 <= P->len && P->s[P->pos] == '\\' && P->s[P->pos + 1] == 'u'
                             ? ll_hex4(P->s + P->pos + 2) : -1;
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    P->pos += 6;
                } else {
                    cp = 0xFFFD; // a lone surrogate
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            char u[4];
            if (!buf_put(&b, &len, &cap, u, utf8_put(u, cp))) { free(b); return jfail(P, "out of memory"); }
            continue;
        }
        // A run of plain bytes.
        size_t start = P->pos;
        while (P->pos < P->len) {
            unsigned char d = (unsigned char)P->s[P->pos];
            if (d == '"' || d == '\\' || d < 0x20) break;
            size_t k = utf8_valid_len((const unsigned char *)P->s + P->pos, P->len - P->pos);
            if (k == 0) { free(b); return jfail(P, "invalid UTF-8 in string"); }
            P->pos += k;
        }
        if (!buf_put(&b, &len, &cap, P->s + start, P->pos - start)) { free(b); return jfail(P, "out of memory"); }
    }
    if (!b && !buf_put(&b, &len, &cap, "", 0)) return jfail(P, "out of memory");
    *out = b;
    *out_len = len;
    return true;
}

static bool jnumber(jparser *P, jv_value *v) {
    size_t start = P->pos;
    const char *s = P->s;
    size_t i = P->pos;
    if (i < P->len && s[i] == '-') i++;
    if (i < P->len && s[i] == '0') i++;
    else if (i < P->len && s[i] >= '1' && s[i] <= '9') { while (i < P->len && s[i] >= '0' && s[i] <= '9') i++; }
    else return jfail(P, "invalid number");
    if (i < P->len && s[i] == '.') {
        i++;
        if (!(i < P->len && s[i] >= '0' && s[i] <= '9')) { P->pos = i; return jfail(P, "invalid number"); }
        while (i < P->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < P->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < P->len && (s[i] == '+' || s[i] == '-')) i++;
        if (!(i < P->len && s[i] >= '0' && s[i] <= '9')) { P->pos = i; return jfail(P, "invalid number"); }
        while (i < P->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    v->type = JV_NUMBER;
    v->len = i - start;
    v->text = malloc(v->len + 1);
    if (!v->text) return jfail(P, "out of memory");
    memcpy(v->text, s + start, v->len);
    v->text[v->len] = 0;
    v->number = strtod(v->text, NULL);
    P->pos = i;
    return true;
}

static bool push_item(jv_value *v, size_t *cap, jv_value *item, char *key, size_t key_len) {
    if (v->n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        jv_value **it = realloc(v->items, c * sizeof *it);
        if (!it) return false;
        v->items = it;
        if (v->type == JV_OBJECT) {
            char **k = realloc(v->keys, c * sizeof *k);
            if (!k) return false;
            v->keys = k;
            size_t *kl = realloc(v->key_lens, c * sizeof *kl);
            if (!kl) return false;
            v->key_lens = kl;
        }
        *cap = c;
    }
    v->items[v->n] = item;
    if (v->type == JV_OBJECT) {
        v->keys[v->n] = key;
        v->key_lens[v->n] = key_len;
    }
    v->n++;
    return true;
}

static jv_value *jvalue(jparser *P, int depth);

static bool jword(jparser *P, const char *w) {
    size_t n = strlen(w);
    if (P->len - P->pos < n || memcmp(P->s + P->pos, w, n) != 0) return jfail(P, "invalid literal");
    P->pos += n;
    return true;
}

static jv_value *jvalue(jparser *P, int depth) {
    if (depth > JV_MAX_DEPTH) { jfail(P, "nested too deeply"); return NULL; }
    jspace(P);
    if (P->pos >= P->len) { jfail(P, "unexpected end of input"); return NULL; }
    jv_value *v = calloc(1, sizeof *v);
    if (!v) { jfail(P, "out of memory"); return NULL; }
    char c = P->s[P->pos];
    bool ok = true;
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        v->type = obj ? JV_OBJECT : JV_ARRAY;
        size_t cap = 0;
        P->pos++;
        jspace(P);
        if (P->pos < P->len && P->s[P->pos] == (obj ? '}' : ']')) {
            P->pos++;
            return v;
        }
        for (;;) {
            char *key = NULL;
            size_t key_len = 0;
            if (obj) {
                jspace(P);
                if (P->pos >= P->len || P->s[P->pos] != '"') { ok = jfail(P, "expected a member name"); break; }
                if (!jstring(P, &key, &key_len)) { ok = false; break; }
                jspace(P);
                if (P->pos >= P->len || P->s[P->pos] != ':') { free(key); ok = jfail(P, "expected ':'"); break; }
                P->pos++;
            }
            jv_value *item = jvalue(P, depth + 1);
            if (!item) { free(key); ok = false; break; }
            if (!push_item(v, &cap, item, key, key_len)) {
                jv_free(item);
                free(key);
                ok = jfail(P, "out of memory");
                break;
            }
            jspace(P);
            if (P->pos < P->len && P->s[P->pos] == ',') { P->pos++; continue; }
            if (P->pos < P->len && P->s[P->pos] == (obj ? '}' : ']')) { P->pos++; break; }
            ok = jfail(P, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            break;
        }
    } else if (c == '"') {
        v->type = JV_STRING;
        ok = jstring(P, &v->text, &v->len);
    } else if (c == 't') {
        v->type = JV_BOOL;
        v->boolean = true;
        ok = jword(P, "true");
    } else if (c == 'f') {
        v->type = JV_BOOL;
        ok = jword(P, "false");
    } else if (c == 'n') {
        v->type = JV_NULL;
        ok = jword(P, "null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        ok = jnumber(P, v);
    } else {
        ok = jfail(P, "unexpected character");
    }
    if (!ok) {
        jv_free(v);
        return NULL;
    }
    return v;
}

jv_value *jv_parse(const char *text, size_t len, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    jparser P = { .s = text ? text : "", .len = text ? len : 0, .err = err, .errlen = errlen };
    jv_value *v = jvalue(&P, 0);
    if (!v) return NULL;
    jspace(&P);
    if (P.pos < P.len) {
        jfail(&P, "unexpected text after the value");
        jv_free(v);
        return NULL;
    }
    return v;
}

void jv_free(jv_value *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        jv_free(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    free(v->text);
    free(v);
}

const jv_value *jv_get(const jv_value *v, const char *key) {
    if (!v || v->type != JV_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->n; i++)
        if (v->key_lens[i] == n && !memcmp(v->keys[i], key, n)) return v->items[i];
    return NULL;
}

bool jv_is_integer(const jv_value *v) {
    return v && v->type == JV_NUMBER && isfinite(v->number) && floor(v->number) == v->number &&
           fabs(v->number) <= 9007199254740992.0;
}

bool jv_equal(const jv_value *a, const jv_value *b) {
    if (!a || !b || a->type != b->type) return false;
    switch (a->type) {
    case JV_NULL: return true;
    case JV_BOOL: return a->boolean == b->boolean;
    case JV_NUMBER: return a->number == b->number;
    case JV_STRING: return a->len == b->len && !memcmp(a->text, b->text, a->len);
    case JV_ARRAY:
    case JV_OBJECT:
        if (a->n != b->n) return false;
        for (size_t i = 0; i < a->n; i++) {
            if (a->type == JV_OBJECT &&
                (a->key_lens[i] != b->key_lens[i] || memcmp(a->keys[i], b->keys[i], a->key_lens[i])))
                return false;
            if (!jv_equal(a->items[i], b->items[i])) return false;
        }
        return true;
    }
    return false;
}

bool jv_write_string(const char *s, size_t n, char **buf, size_t *len, size_t *cap) {
    if (!buf_put(buf, len, cap, "\"", 1)) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *out = NULL;
        size_t k = 0;
        switch (c) {
        case '"': out = "\\\""; k = 2; break;
        case '\\': out = "\\\\"; k = 2; break;
        case '\n': out = "\\n"; k = 2; break;
        case '\r': out = "\\r"; k = 2; break;
        case '\t': out = "\\t"; k = 2; break;
        case '\b': out = "\\b"; k = 2; break;
        case '\f': out = "\\f"; k = 2; break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                out = esc;
                k = 6;
            }
        }
        if (out) {
            if (!buf_put(buf, len, cap, out, k)) return false;
        } else if (!buf_put(buf, len, cap, (const char *)&s[i], 1)) {
            return false;
        }
    }
    return buf_put(buf, len, cap, "\"", 1);
}

bool jv_write(const jv_value *v, char **buf, size_t *len, size_t *cap) {
    switch (v->type) {
    case JV_NULL: return buf_put(buf, len, cap, "null", 4);
    case JV_BOOL: return v->boolean ? buf_put(buf, len, cap, "true", 4) : buf_put(buf, len, cap, "false", 5);
    case JV_NUMBER: return buf_put(buf, len, cap, v->text, v->len);
    case JV_STRING: return jv_write_string(v->text, v->len, buf, len, cap);
    case JV_ARRAY:
    case JV_OBJECT: {
        bool obj = v->type == JV_OBJECT;
        if (!buf_put(buf, len, cap, obj ? "{" : "[", 1)) return false;
        for (size_t i = 0; i < v->n; i++) {
            if (i && !buf_put(buf, len, cap, ",", 1)) return false;
            if (obj && (!jv_write_string(v->keys[i], v->key_lens[i], buf, len, cap) ||
                        !buf_put(buf, len, cap, ":", 1)))
                return false;
            if (!jv_write(v->items[i], buf, len, cap)) return false;
        }
        return buf_put(buf, len, cap, obj ? "}" : "]", 1);
    }
    }
    return false;
}
