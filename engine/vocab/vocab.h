// Internal vocabulary: token texts, scores and types from GGUF, lookup tables, and the
// tokenizer entry points per vocabulary type.
#ifndef LLAMALITE_VOCAB_H
#define LLAMALITE_VOCAB_H

#include "gguf/gguf.h"
#include "llamalite.h"

// GGUF tokenizer.ggml.token_type values.
enum { LL_TOKTYPE_NORMAL = 1, LL_TOKTYPE_UNKNOWN = 2, LL_TOKTYPE_CONTROL = 3,
       LL_TOKTYPE_USER_DEFINED = 4, LL_TOKTYPE_UNUSED = 5, LL_TOKTYPE_BYTE = 6 };

typedef enum { LL_VOCAB_SPM, LL_VOCAB_BPE } ll_vocab_type;

// Open-addressing map from byte strings to int32 values (keys are not copied). One slot holds
// everything a probe needs, so a lookup touches one cache line until the key compare.
typedef struct {
    const char *key;
    uint32_t len, hash;
    int32_t value;     // -1: empty slot
} ll_strmap_slot;
typedef struct {
    ll_strmap_slot *slots;
    uint32_t cap;      // power of two
} ll_strmap;

struct ll_vocab {
    ll_vocab_type type;
    char pre[64];            // tokenizer.ggml.pre
    int32_t n_tokens;
    char **text;             // NUL-terminated copies (in text_arena)
    char *text_arena;
    uint32_t *text_len;
    float *score;
    uint8_t *toktype;
    ll_strmap by_text;
    ll_token byte_tokens[256]; // SPM <0xNN>, BPE the byte's unicode char; -1 if absent
    ll_token bos, eos, eot, eom, unk, pad, nl;
    ll_token eog[16];        // end-of-generation tokens (eos, eot, eom, <|im_end|>, ...)
    int32_t n_eog;
    bool add_bos, add_eos, add_space_prefix;
    // SPM: no token has U+2581 after anything but a leading run of U+2581, so no merge can
    // cross the start of a word and each word can be merged on its own (same result, faster).
    bool spm_words_independent;
    ll_token *special;       // control / user-defined / unknown tokens, longest text first
    int32_t n_special;
    // BPE merges: "left right" -> rank
    ll_strmap merges;
    char *merge_arena;       // the merge strings, NUL-separated
    int32_t n_merges;
};

ll_vocab *ll_vocab_load(const gguf_file *f, char *err, size_t errlen);
void ll_vocab_free(ll_vocab *v);

int32_t ll_strmap_get(const ll_strmap *m, const char *s, size_t n); // -1 if absent
ll_token ll_vocab_find(const ll_vocab *v, const char *s, size_t n);

// Appends the tokens of one raw-text fragment (no special tokens in it) to out.
// Returns false on allocation failure. `first` tells SPM whether to add the space prefix.
typedef struct { ll_token *data; int32_t n, cap; } ll_token_buf;
bool ll_token_buf_push(ll_token_buf *b, ll_token t);
bool ll_tokenize_spm(const ll_vocab *v, const char *text, size_t len, ll_token_buf *out);
bool ll_tokenize_bpe(const ll_vocab *v, const char *text, size_t len, ll_token_buf *out);

#endif
