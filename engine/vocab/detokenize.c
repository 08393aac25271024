// Tokens back to bytes, and a streaming detokenizer that only ever releases valid UTF-8.
#include <stdlib.h>
#include <string.h>

#include "vocab/unicode.h"
#include "vocab/vocab.h"
#include "util.h"

// Decodes one UTF-8 code point at s (n bytes available); returns its length or 0 if invalid.
static int utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    int len;
    uint32_t v;
    if (c < 0x80) { *cp = c; return 1; }
    else if (c >= 0xc2 && c <= 0xdf) { len = 2; v = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; v = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; v = c & 0x07; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) || (len == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    *cp = v;
    return len;
}

static int32_t copy_out(const char *src, int32_t n, char *buf, int32_t size) {
    if (n > size) return -n;
    if (n) memcpy(buf, src, (size_t)n);
    return n;
}

int32_t ll_token_to_piece(const ll_vocab *v, ll_token t, char *buf, int32_t size, bool special) {
    if (t < 0 || t >= v->n_tokens) return 0;
    uint8_t ty = v->toktype[t];
    const char *text = v->text[t];
    int32_t tl = (int32_t)v->text_len[t];
    if (ty == LL_TOKTYPE_CONTROL || ty == LL_TOKTYPE_UNKNOWN)
        return special ? copy_out(text, tl, buf, size) : 0;
    if (ty == LL_TOKTYPE_USER_DEFINED) return copy_out(text, tl, buf, size);
    if (ty == LL_TOKTYPE_BYTE) {
        char b = 0;
        if (tl == 6 && ll_hex_digit((unsigned char)text[3]) >= 0 && ll_hex_digit((unsigned char)text[4]) >= 0)
            b = (char)(ll_hex_digit((unsigned char)text[3]) * 16 + ll_hex_digit((unsigned char)text[4]));
        else if (tl == 1) b = text[0];
        return copy_out(&b, 1, buf, size);
    }
    if (ty != LL_TOKTYPE_NORMAL) return 0;
    int32_t n = 0;
    if (v->type == LL_VOCAB_SPM) { // U+2581 -> space
        for (int32_t i = 0; i < tl;) {
            bool sp = i + 2 < tl && !memcmp(text + i, "\xe2\x96\x81", 3);
            if (n < size) buf[n] = sp ? ' ' : text[i];
            n++;
            i += sp ? 3 : 1;
        }
    } else { // each code point stands for one byte
        for (int32_t i = 0; i < tl;) {
            uint32_t cp;
            int l = utf8_decode((const uint8_t *)text + i, (size_t)(tl - i), &cp);
            int b = l ? ll_cpt_to_byte(cp) : -1;
            if (b < 0) { // not a mapped byte: keep the text as it is
                int k = l ? l : 1;
                for (int j = 0; j < k; j++, n++) if (n < size) buf[n] = text[i + j];
                i += k;
                continue;
            }
            if (n < size) buf[n] = (char)b;
            n++;
            i += l;
        }
    }
    return n <= size ? n : -n;
}

// Appends s[0..n) at out + *o if it fits. Once something did not fit, nothing more is
// appended: the output stays a prefix of whole characters (the rest is lost).
static void put(char *out, size_t cap, size_t *o, bool *full, const char *s, size_t n) {
    if (*full || *o + n > cap) {
        *full = true;
        return;
    }
    memcpy(out + *o, s, n);
    *o += n;
}

// Releases the complete, valid sequences of s; keeps a trailing incomplete one in d.
static size_t emit(ll_detok *d, const uint8_t *s, size_t n, char *out, size_t cap, bool final) {
    size_t o = 0, i = 0;
    bool full = false;
    d->n_pending = 0;
    while (i < n) {
        uint32_t cp;
        int l = utf8_decode(s + i, n - i, &cp);
        if (l) {
            put(out, cap, &o, &full, (const char *)s + i, (size_t)l);
            i += (size_t)l;
            continue;
        }
        // An incomplete but so far valid sequence at the end waits for more bytes.
        uint8_t c = s[i];
        int want = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
        bool prefix = want && n - i < (size_t)want;
        for (size_t j = i + 1; prefix && j < n; j++) prefix = (s[j] & 0xc0) == 0x80;
        if (prefix && !final) {
            memcpy(d->pending, s + i, n - i);
            d->n_pending = (int)(n - i);
            break;
        }
        put(out, cap, &o, &full, "\xef\xbf\xbd", 3); // U+FFFD for one bad byte
        i++;
    }
    return o;
}

size_t ll_detok_push(ll_detok *d, const ll_vocab *v, ll_token t, bool special, char *out, size_t cap) {
    char small[256];
    int32_t n = ll_token_to_piece(v, t, small, sizeof small, special);
    char *piece = small;
    if (n < 0) {
        piece = malloc((size_t)-n);
        if (!piece) return 0;
        n = ll_token_to_piece(v, t, piece, -n, special);
    }
    size_t total = (size_t)d->n_pending + (size_t)n;
    uint8_t stack[512];
    uint8_t *joined = total <= sizeof stack ? stack : malloc(total);
    size_t o = 0;
    if (joined) {
        memcpy(joined, d->pending, (size_t)d->n_pending);
        if (n) memcpy(joined + d->n_pending, piece, (size_t)n);
        o = emit(d, joined, total, out, cap, false);
    }
    if (joined != stack) free(joined);
    if (piece != small) free(piece);
    return o;
}

size_t ll_detok_flush(ll_detok *d, char *out, size_t cap) {
    uint8_t tmp[8];
    size_t n = (size_t)d->n_pending;
    memcpy(tmp, d->pending, n);
    return emit(d, tmp, n, out, cap, true);
}
