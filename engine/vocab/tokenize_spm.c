// SentencePiece (BPE-by-score) tokenization as llama.cpp does it: split into UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the highest-scoring
// vocab token, then map each symbol to its token or, failing that, to byte tokens.
#include <stdlib.h>
#include <string.h>

#include "vocab/bigram_queue.h"
#include "vocab/vocab.h"

typedef struct { const char *text; int32_t n, prev, next; } symbol;

static bool try_bigram(const ll_vocab *v, const symbol *s, int32_t l, int32_t r, ll_bigram_queue *h) {
    if (l < 0 || r < 0) return true;
    int32_t size = s[l].n + s[r].n;
    ll_token t = ll_vocab_find(v, s[l].text, (size_t)size); // the two are contiguous
    if (t < 0) return true;
    return ll_bigram_push(h, (ll_bigram){l, r, size, v->score[t]});
}

static int utf8_len(uint8_t c) {
    static const int lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}

static bool is_space(const symbol *s) { return s->n == 3 && !memcmp(s->text, "\xe2\x96\x81", 3); }

bool ll_tokenize_spm(const ll_vocab *v, const char *raw, size_t raw_len, ll_token_buf *out) {
    if (raw_len == 0) return true;
    // Escape spaces as U+2581 (3 bytes each).
    size_t n_sp = 0;
    for (size_t i = 0; i < raw_len; i++) n_sp += raw[i] == ' ';
    size_t len = raw_len + 2 * n_sp;
    char *text = malloc(len);
    symbol *sym = malloc(len * sizeof(symbol));
    ll_bigram_queue h = {0};
    bool ok = text && sym;
    if (ok) {
        size_t o = 0;
        for (size_t i = 0; i < raw_len; i++) {
            if (raw[i] == ' ') { memcpy(text + o, "\xe2\x96\x81", 3); o += 3; }
            else text[o++] = raw[i];
        }
    }
    int32_t ns = 0;
    for (size_t off = 0; ok && off < len; ns++) {
        size_t n = (size_t)utf8_len((uint8_t)text[off]);
        if (n > len - off) n = len - off;
        sym[ns] = (symbol){text + off, (int32_t)n, ns - 1, off + n == len ? -1 : ns + 1};
        off += n;
    }
    // Merge word by word when the vocab allows it (see spm_words_independent): a word starts
    // at a U+2581 symbol that does not follow another. Otherwise the whole text is one word.
    for (int32_t w0 = 0, w1; ok && w0 < ns; w0 = w1) {
        for (w1 = w0 + 1; v->spm_words_independent && w1 < ns; w1++)
            if (is_space(&sym[w1]) && !is_space(&sym[w1 - 1])) break;
        if (!v->spm_words_independent) w1 = ns;
        sym[w0].prev = -1;
        sym[w1 - 1].next = -1;
        h.n = 0;
        for (int32_t i = w0 + 1; ok && i < w1; i++) ok = try_bigram(v, sym, i - 1, i, &h);
        while (ok && h.n) {
            ll_bigram b = ll_bigram_pop(&h);
            symbol *l = &sym[b.left], *r = &sym[b.right];
            if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; // stale pair
            l->n += r->n;
            r->n = 0;
            l->next = r->next;
            if (r->next >= 0) sym[r->next].prev = b.left;
            ok = try_bigram(v, sym, l->prev, b.left, &h) && try_bigram(v, sym, b.left, l->next, &h);
        }
        for (int32_t i = w0; ok && i != -1; i = sym[i].next) {
            ll_token t = ll_vocab_find(v, sym[i].text, (size_t)sym[i].n);
            if (t >= 0) { ok = ll_token_buf_push(out, t); continue; }
            for (int32_t j = 0; ok && j < sym[i].n; j++) {
                ll_token bt = v->byte_tokens[(uint8_t)sym[i].text[j]];
                if (bt < 0) bt = v->unk;
                if (bt >= 0) ok = ll_token_buf_push(out, bt);
            }
        }
    }
    ll_bigram_queue_free(&h);
    free(sym);
    free(text);
    return ok;
}
