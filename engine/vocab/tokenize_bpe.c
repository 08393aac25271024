// Byte-level BPE (GPT-2 style): pre-tokenize into words, map every byte of a word to its
// printable code point, then merge adjacent symbols by merge rank (lowest first).
#include <stdlib.h>
#include <string.h>

#include "vocab/pretokenize.h"
#include "vocab/unicode.h"
#include "vocab/bigram_queue.h"
#include "vocab/vocab.h"

typedef struct { const char *text; int32_t n, prev, next; } symbol;

typedef struct { char *buf; size_t cap; } scratch;

static char *scratch_get(scratch *s, size_t n) {
    if (n > s->cap) {
        char *b = realloc(s->buf, n);
        if (!b) return NULL;
        s->buf = b;
        s->cap = n;
    }
    return s->buf;
}

static bool add_bigram(const ll_vocab *v, const symbol *sym, int32_t l, int32_t r, ll_bigram_queue *h, scratch *key) {
    if (l < 0 || r < 0) return true;
    size_t n = (size_t)sym[l].n + 1 + (size_t)sym[r].n;
    char *k = scratch_get(key, n);
    if (!k) return false;
    memcpy(k, sym[l].text, (size_t)sym[l].n);
    k[sym[l].n] = ' ';
    memcpy(k + sym[l].n + 1, sym[r].text, (size_t)sym[r].n);
    int32_t rank = ll_strmap_get(&v->merges, k, n);
    if (rank < 0) return true;
    return ll_bigram_push(h, (ll_bigram){l, r, sym[l].n + sym[r].n, -(float)rank}); // lowest rank first
}

static bool push_symbol(const ll_vocab *v, const char *s, size_t n, ll_token_buf *out) {
    ll_token t = ll_vocab_find(v, s, n);
    if (t >= 0) return ll_token_buf_push(out, t);
    for (size_t j = 0; j < n; j++) { // the reference falls back to single bytes
        t = ll_vocab_find(v, s + j, 1);
        if (t >= 0 && !ll_token_buf_push(out, t)) return false;
    }
    return true;
}

static bool bpe_word(const ll_vocab *v, const char *w, size_t n, bool ignore_merges, ll_token_buf *out,
                     symbol **sym, size_t *sym_cap, ll_bigram_queue *h, scratch *key) {
    if (ignore_merges) {
        ll_token t = ll_vocab_find(v, w, n);
        if (t >= 0) return ll_token_buf_push(out, t);
    }
    if (n > *sym_cap) {
        symbol *s = realloc(*sym, n * sizeof(symbol));
        if (!s) return false;
        *sym = s;
        *sym_cap = n;
    }
    symbol *s = *sym;
    int32_t ns = 0;
    for (size_t off = 0; off < n; ns++) {
        uint8_t c = (uint8_t)w[off];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
        if (len > n - off) len = n - off;
        s[ns] = (symbol){w + off, (int32_t)len, ns - 1, off + len == n ? -1 : ns + 1};
        off += len;
    }
    h->n = 0;
    for (int32_t i = 1; i < ns; i++)
        if (!add_bigram(v, s, i - 1, i, h, key)) return false;
    while (h->n) {
        ll_bigram b = ll_bigram_pop(h);
        symbol *l = &s[b.left], *r = &s[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; // outdated
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = b.left;
        if (!add_bigram(v, s, l->prev, b.left, h, key) || !add_bigram(v, s, b.left, l->next, h, key))
            return false;
    }
    for (int32_t i = 0; ns > 0 && i != -1; i = s[i].next)
        if (!push_symbol(v, s[i].text, (size_t)s[i].n, out)) return false;
    return true;
}

bool ll_tokenize_bpe(const ll_vocab *v, const char *text, size_t len, ll_token_buf *out) {
    if (len == 0) return true;
    int recipe = pt_find(v->pre);
    if (recipe < 0) return false; // rejected when the vocab was loaded
    // Invalid UTF-8 becomes U+FFFD, one per bad byte, as in the reference.
    size_t ncp;
    uint32_t *cp = ll_utf8_to_cpts(text, len, &ncp);
    if (!cp) return false;
    pt_words words = {0};
    bool ok = pt_split(recipe, cp, ncp, &words);
    bool ignore = pt_ignore_merges(recipe);
    symbol *sym = NULL;
    size_t sym_cap = 0;
    ll_bigram_queue h = {0};
    scratch key = {0}, word = {0};
    size_t off = 0;
    for (size_t i = 0; ok && i < words.n; i++) {
        // Each code point -> UTF-8 bytes -> one printable code point per byte (<= 2 bytes each).
        char *w = scratch_get(&word, words.len[i] * 8);
        ok = w != NULL;
        size_t wn = 0;
        for (size_t j = 0; ok && j < words.len[i]; j++) {
            char u[4];
            int ul = ll_utf8_encode(cp[off + j], u);
            for (int b = 0; b < ul; b++) wn += (size_t)ll_utf8_encode(ll_byte_to_cpt((uint8_t)u[b]), w + wn);
        }
        off += words.len[i];
        if (ok) ok = bpe_word(v, w, wn, ignore, out, &sym, &sym_cap, &h, &key);
    }
    free(words.len);
    free(sym);
    ll_bigram_queue_free(&h);
    free(key.buf);
    free(word.buf);
    free(cp);
    return ok;
}
