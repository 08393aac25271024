// UTF-8 decoding as the tokenizers need it, the byte-level BPE byte<->unicode mapping, and
// Unicode category flags (from utf8proc) with the reference tokenizer's whitespace set.
#ifndef LLAMALITE_UNICODE_H
#define LLAMALITE_UNICODE_H

#include <stddef.h>
#include <stdint.h>

// Category flags of a code point (one category bit, plus LL_CPT_WHITESPACE).
enum {
    LL_CPT_UNDEFINED   = 0x0001, // unassigned (Cn), or beyond U+10FFFF
    LL_CPT_NUMBER      = 0x0002, // \p{N}
    LL_CPT_LETTER      = 0x0004, // \p{L}
    LL_CPT_SEPARATOR   = 0x0008, // \p{Z}
    LL_CPT_MARK        = 0x0010, // \p{M}
    LL_CPT_PUNCTUATION = 0x0020, // \p{P}
    LL_CPT_SYMBOL      = 0x0040, // \p{S}
    LL_CPT_CONTROL     = 0x0080, // \p{C}
    LL_CPT_WHITESPACE  = 0x0100, // \s (Unicode White_Space)
};

uint16_t ll_cpt_flags(uint32_t cpt);

// Length of the UTF-8 sequence a lead byte announces (1 for continuation bytes and invalid
// leads: the tokenizers walk bytes this way without validating).
static inline size_t ll_utf8_len(unsigned char lead) {
    static const unsigned char len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[lead >> 4];
}

// Decodes one code point at s[0..n) (n >= 1), the way the reference does: continuation bytes
// are checked but overlong forms and surrogates are accepted; anything invalid (and values
// beyond U+10FFFF) gives U+FFFD and consumes one byte. *used gets the bytes consumed.
uint32_t ll_utf8_decode(const char *s, size_t n, size_t *used);

// Encodes cpt (<= U+10FFFF) into out, returns the byte count (1..4).
int ll_utf8_encode(uint32_t cpt, char out[4]);

// Byte-level BPE: each byte stands for a printable code point (GPT-2's bytes_to_unicode).
uint32_t ll_byte_to_cpt(unsigned char b);
// The inverse; -1 when cpt stands for no byte.
int ll_cpt_to_byte(uint32_t cpt);

// Decodes the whole of s[0..n) into code points with ll_utf8_decode. Returns a malloc'd
// array (count in *n_out), NULL when out of memory.
uint32_t *ll_utf8_to_cpts(const char *s, size_t n, size_t *n_out);

#endif
