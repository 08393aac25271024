// UTF-8 helpers and Unicode categories for the tokenizers (categories come from utf8proc).
#include "vocab/unicode.h"

#include <stdlib.h>
#include <utf8proc.h>

static int is_whitespace(uint32_t c) {
    // Unicode White_Space, the set the reference tokenizer's \s stands for.
    if ((c >= 0x09 && c <= 0x0D) || c == 0x20) return 1;
    if (c < 0x85) return 0;
    if (c >= 0x2000 && c <= 0x200A) return 1;
    switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return 1;
    default:
        return 0;
    }
}

uint16_t ll_cpt_flags(uint32_t cpt) {
    if (cpt > 0x10FFFF) return LL_CPT_UNDEFINED;
    uint16_t f;
    switch (utf8proc_category((utf8proc_int32_t)cpt)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        f = LL_CPT_LETTER; break;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        f = LL_CPT_MARK; break;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        f = LL_CPT_NUMBER; break;
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        f = LL_CPT_PUNCTUATION; break;
    case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC: case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
        f = LL_CPT_SYMBOL; break;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
        f = LL_CPT_SEPARATOR; break;
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        f = LL_CPT_CONTROL; break;
    default:
        f = LL_CPT_UNDEFINED; break;
    }
    if (is_whitespace(cpt)) f |= LL_CPT_WHITESPACE;
    return f;
}

static int cont(unsigned char c) { return (c & 0xC0) == 0x80; }

uint32_t ll_utf8_decode(const char *s, size_t n, size_t *used) {
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[0];
    *used = 1;
    if (c < 0x80) return c;
    if ((c & 0xE0) == 0xC0) {
        if (n < 2 || !cont(u[1])) return 0xFFFD;
        *used = 2;
        return ((c & 0x1F) << 6) | (u[1] & 0x3F);
    }
    if ((c & 0xF0) == 0xE0) {
        if (n < 3 || !cont(u[1]) || !cont(u[2])) return 0xFFFD;
        *used = 3;
        return ((c & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    }
    if ((c & 0xF8) == 0xF0) {
        if (n < 4 || !cont(u[1]) || !cont(u[2]) || !cont(u[3])) return 0xFFFD;
        uint32_t r = ((c & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
                     ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
        if (r > 0x10FFFF) return 0xFFFD; // the reference cannot re-encode these either
        *used = 4;
        return r;
    }
    return 0xFFFD; // continuation byte or 0xF8.. lead
}

int ll_utf8_encode(uint32_t c, char out[4]) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | ((c >> 18) & 0x07));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

// Printable bytes stand for themselves; the other 68 are numbered from U+0100 in byte order:
// 0x00..0x20 -> U+0100..U+0120, 0x7F..0xA0 -> U+0121..U+0142, 0xAD -> U+0143.
uint32_t ll_byte_to_cpt(unsigned char b) {
    if (b <= 0x20) return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0) return 0x121 + (b - 0x7F);
    if (b == 0xAD) return 0x143;
    return b;
}

int ll_cpt_to_byte(uint32_t c) {
    if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)) return (int)c;
    if (c >= 0x100 && c <= 0x120) return (int)(c - 0x100);
    if (c >= 0x121 && c <= 0x142) return (int)(c - 0x121 + 0x7F);
    if (c == 0x143) return 0xAD;
    return -1;
}

uint32_t *ll_utf8_to_cpts(const char *s, size_t n, size_t *n_out) {
    uint32_t *cpts = malloc((n ? n : 1) * sizeof *cpts);
    if (!cpts) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t used;
        cpts[k++] = ll_utf8_decode(s + i, n - i, &used);
        i += used;
    }
    *n_out = k;
    return cpts;
}
