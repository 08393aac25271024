// Vocabulary loading from GGUF metadata, token lookups, special-token partitioning and the
// public ll_tokenize entry point. The per-type algorithms live in tokenize_spm.c and
// tokenize_bpe.c.
#include "vocab/vocab.h"
#include "util.h"

#include "vocab/pretokenize.h"
#include "vocab/unicode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- string map -------------------------------------------------------------------------------

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static bool strmap_init(ll_strmap *m, uint32_t n_keys) {
    uint32_t cap = 16;
    while (cap < 2u * n_keys + 1) cap <<= 1;
    m->cap = cap;
    m->slots = malloc((size_t)cap * sizeof *m->slots);
    if (!m->slots) return false;
    for (uint32_t i = 0; i < cap; i++) m->slots[i].value = -1;
    return true;
}

static void strmap_free(ll_strmap *m) { free(m->slots); }

// Inserts key (not copied) -> value unless the key is already present (first one wins).
static void strmap_put(ll_strmap *m, const char *s, uint32_t n, int32_t value) {
    uint32_t h = hash_bytes(s, n), i = h & (m->cap - 1);
    for (ll_strmap_slot *e; (e = &m->slots[i])->value >= 0; i = (i + 1) & (m->cap - 1))
        if (e->hash == h && e->len == n && memcmp(e->key, s, n) == 0) return;
    m->slots[i] = (ll_strmap_slot){s, n, h, value};
}

int32_t ll_strmap_get(const ll_strmap *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    uint32_t h = hash_bytes(s, n), i = h & (m->cap - 1);
    for (const ll_strmap_slot *e; (e = &m->slots[i])->value >= 0; i = (i + 1) & (m->cap - 1))
        if (e->hash == h && e->len == n && memcmp(e->key, s, n) == 0) return e->value;
    return -1;
}

ll_token ll_vocab_find(const ll_vocab *v, const char *s, size_t n) {
    return ll_strmap_get(&v->by_text, s, n);
}

bool ll_token_buf_push(ll_token_buf *b, ll_token t) {
    if (b->n == b->cap) {
        int32_t cap = b->cap ? 2 * b->cap : 64;
        ll_token *d = realloc(b->data, (size_t)cap * sizeof(ll_token));
        if (!d) return false;
        b->data = d;
        b->cap = cap;
    }
    b->data[b->n++] = t;
    return true;
}

// ---- loading ----------------------------------------------------------------------------------

static ll_token special_id(const gguf_file *f, const char *key, ll_token def, int32_t n) {
    int64_t i = gguf_find_key(f, key);
    if (i < 0) return def;
    double d;
    if (!gguf_kv_number(f, i, &d) || d < 0 || d >= n) return -1; // absent or out of range
    return (ll_token)d;
}

// Makes t a control token, as the reference does for tokens it recognises by their text
// (an end-of-turn token typed "normal" by a converter would otherwise print as text).
static void make_control(ll_vocab *v, ll_token t) {
    if (t >= 0 && t < v->n_tokens) v->toktype[t] = LL_TOKTYPE_CONTROL;
}

static void add_eog(ll_vocab *v, ll_token t) {
    if (t < 0 || t >= v->n_tokens) return;
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == t) return;
    if (v->n_eog < (int32_t)(sizeof v->eog / sizeof v->eog[0])) v->eog[v->n_eog++] = t;
}

static ll_token find_text(const ll_vocab *v, const char *s) { return ll_vocab_find(v, s, strlen(s)); }

// End-of-turn / end-of-message tokens and the set of tokens that end generation: the ids the
// GGUF names, then the usual texts (the reference's list), which become control tokens.
static void find_eog(ll_vocab *v, const gguf_file *f) {
    static const char *eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                      "<|endoftext|>", "<EOT>", // DeepSeek's <｜end▁of▁sentence｜>:
                                      ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>")};
    static const char *eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                      "<|endoftext|>", "<|eom_id|>", "<EOT>",
                                      "<|return|>", "<|call|>"}; // gpt-oss (harmony)
    // fill-in-the-middle pad / repo / file separator also end generation
    static const char *fim_texts[][4] = {{"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL},
                                         {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"},
                                         {"<|file_sep|>", NULL, NULL, NULL}};
    static const char *fim_keys[] = {"tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id",
                                     "tokenizer.ggml.fim_sep_token_id"};
    for (size_t k = 0; v->eot < 0 && k < sizeof eot_texts / sizeof *eot_texts; k++) {
        v->eot = find_text(v, eot_texts[k]);
        make_control(v, v->eot);
    }
    if (v->eom < 0) {
        v->eom = find_text(v, "<|eom_id|>");
        make_control(v, v->eom);
    }
    for (size_t k = 0; k < 3; k++) {
        ll_token t = special_id(f, fim_keys[k], -1, v->n_tokens);
        for (size_t j = 0; t < 0 && j < 4 && fim_texts[k][j]; j++) {
            t = find_text(v, fim_texts[k][j]);
            make_control(v, t);
        }
        add_eog(v, t);
    }
    for (size_t k = 0; k < sizeof eog_texts / sizeof *eog_texts; k++) {
        ll_token t = find_text(v, eog_texts[k]);
        make_control(v, t);
        add_eog(v, t);
    }
    add_eog(v, v->eos);
    add_eog(v, v->eot);
    add_eog(v, v->eom);
    // gpt-oss's harmony format ends a reply with <|return|> (or <|call|> for a tool call); its
    // <|end|> only ends one message of the reply (the analysis before the final answer).
    ll_token ret = find_text(v, "<|return|>"), call = find_text(v, "<|call|>"), end = find_text(v, "<|end|>");
    if (ret >= 0 && call >= 0 && end >= 0) {
        for (int32_t i = 0; i < v->n_eog; i++)
            if (v->eog[i] == end) v->eog[i--] = v->eog[--v->n_eog];
    }
}

static int cmp_special_len(const void *a, const void *b, void *ctx) {
    const ll_vocab *v = ctx;
    uint32_t la = v->text_len[*(const ll_token *)a], lb = v->text_len[*(const ll_token *)b];
    return la > lb ? -1 : la < lb;
}

static bool load_merges(ll_vocab *v, const gguf_file *f, char *err, size_t errlen) {
    int64_t ki = gguf_find_key(f, "tokenizer.ggml.merges");
    if (ki < 0) return true;
    if (gguf_arr_type(f, ki) != GGUF_TYPE_STRING) {
        ll_set_err(err, errlen, "tokenizer.ggml.merges is not a string array");
        return false;
    }
    uint64_t n = gguf_arr_n(f, ki), total = 0;
    if (n > (1u << 24)) { ll_set_err(err, errlen, "tokenizer.ggml.merges is too large"); return false; } // ranks stay exact as float priorities
    for (uint64_t j = 0; j < n; j++) total += gguf_arr_str(f, ki, j).len + 1;
    if (total > UINT32_MAX) { ll_set_err(err, errlen, "tokenizer.ggml.merges is too large"); return false; }
    v->merge_arena = malloc(total ? total : 1);
    if (!v->merge_arena || !strmap_init(&v->merges, (uint32_t)n)) {
        ll_set_err(err, errlen, "out of memory loading merges");
        return false;
    }
    v->n_merges = (int32_t)n;
    char *t = v->merge_arena;
    for (uint64_t j = 0; j < n; j++) {
        gguf_str s = gguf_arr_str(f, ki, j);
        memcpy(t, s.ptr, s.len);
        t[s.len] = 0;
        strmap_put(&v->merges, t, (uint32_t)s.len, (int32_t)j);
        t += s.len + 1;
    }
    return true;
}

ll_vocab *ll_vocab_load(const gguf_file *f, char *err, size_t errlen) {
    const char *model = gguf_get_str(f, "tokenizer.ggml.model", NULL);
    if (!model) { ll_set_err(err, errlen, "no tokenizer (tokenizer.ggml.model missing)"); return NULL; }
    ll_vocab *v = calloc(1, sizeof *v);
    if (!v) { ll_set_err(err, errlen, "out of memory"); return NULL; }
    if (!strcmp(model, "llama")) v->type = LL_VOCAB_SPM;
    else if (!strcmp(model, "gpt2")) v->type = LL_VOCAB_BPE;
    else {
        ll_set_err(err, errlen, "unsupported tokenizer model '%s' (supported: llama, gpt2)", model);
        free(v);
        return NULL;
    }
    snprintf(v->pre, sizeof v->pre, "%s", gguf_get_str(f, "tokenizer.ggml.pre", "default"));

    int64_t ti = gguf_find_key(f, "tokenizer.ggml.tokens");
    if (ti < 0 || gguf_arr_type(f, ti) != GGUF_TYPE_STRING || gguf_arr_n(f, ti) == 0 ||
        gguf_arr_n(f, ti) > INT32_MAX / 4) {
        ll_set_err(err, errlen, "tokenizer.ggml.tokens is missing or not a string array");
        goto bad;
    }
    int32_t n = (int32_t)gguf_arr_n(f, ti);
    v->n_tokens = n;
    v->text = calloc((size_t)n, sizeof(char *));
    v->text_len = calloc((size_t)n, sizeof(uint32_t));
    v->score = calloc((size_t)n, sizeof(float));
    v->toktype = calloc((size_t)n, 1);
    if (!v->text || !v->text_len || !v->score || !v->toktype || !strmap_init(&v->by_text, (uint32_t)n)) {
        ll_set_err(err, errlen, "out of memory loading the vocabulary");
        goto bad;
    }
    int64_t si = gguf_find_key(f, "tokenizer.ggml.scores");
    int64_t yi = gguf_find_key(f, "tokenizer.ggml.token_type");
    if (si >= 0 && (gguf_arr_n(f, si) != (uint64_t)n || gguf_arr_type(f, si) == GGUF_TYPE_STRING)) {
        ll_set_err(err, errlen, "tokenizer.ggml.scores does not match the %d tokens", n);
        goto bad;
    }
    if (yi >= 0 && (gguf_arr_n(f, yi) != (uint64_t)n || gguf_arr_type(f, yi) == GGUF_TYPE_STRING)) {
        ll_set_err(err, errlen, "tokenizer.ggml.token_type does not match the %d tokens", n);
        goto bad;
    }
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        uint64_t len = gguf_arr_str(f, ti, (uint64_t)i).len;
        if (len > (1u << 20)) { ll_set_err(err, errlen, "token %d is too long", i); goto bad; }
        total += len + 1;
    }
    v->text_arena = malloc(total);
    if (!v->text_arena) { ll_set_err(err, errlen, "out of memory loading the vocabulary"); goto bad; }
    char *t = v->text_arena;
    for (int32_t i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(f, ti, (uint64_t)i);
        memcpy(t, s.ptr, s.len);
        t[s.len] = 0;
        v->text[i] = t;
        t += s.len + 1;
        v->text_len[i] = (uint32_t)s.len;
        v->score[i] = si >= 0 ? (float)gguf_arr_number(f, si, (uint64_t)i) : 0.0f;
        double ty = yi >= 0 ? gguf_arr_number(f, yi, (uint64_t)i) : LL_TOKTYPE_NORMAL;
        v->toktype[i] = (ty >= 1 && ty <= 6) ? (uint8_t)ty : LL_TOKTYPE_NORMAL;
        strmap_put(&v->by_text, v->text[i], (uint32_t)s.len, i);
    }

    bool spm = v->type == LL_VOCAB_SPM;
    v->bos = special_id(f, "tokenizer.ggml.bos_token_id", spm ? 1 : 11, n);
    v->eos = special_id(f, "tokenizer.ggml.eos_token_id", spm ? 2 : 11, n);
    v->unk = special_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n);
    v->pad = special_id(f, "tokenizer.ggml.padding_token_id", -1, n);
    v->eot = special_id(f, "tokenizer.ggml.eot_token_id", -1, n);
    v->eom = special_id(f, "tokenizer.ggml.eom_token_id", -1, n);
    if (v->bos >= n) v->bos = -1;
    if (v->eos >= n) v->eos = -1;
    if (v->unk >= n) v->unk = -1;
    if (!strcmp(v->pre, "chatglm-bpe") && gguf_find_key(f, "tokenizer.ggml.bos_token_id") < 0) v->bos = -1;
    find_eog(v, f);
    // The reference adds BOS by default for SPM and the Llama 3 family of BPE pre-tokenizers.
    bool bos_default = spm || (!spm && pt_ignore_merges(pt_find(v->pre)));
    v->add_bos = gguf_get_bool(f, "tokenizer.ggml.add_bos_token", bos_default);
    v->add_eos = gguf_get_bool(f, "tokenizer.ggml.add_eos_token", false);
    v->add_space_prefix = gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", spm);
    v->spm_words_independent = spm;
    for (int32_t i = 0; spm && i < n && v->spm_words_independent; i++) {
        const char *t = v->text[i];
        size_t tl = v->text_len[i], lead = 0;
        while (lead + 3 <= tl && !memcmp(t + lead, "\xe2\x96\x81", 3)) lead += 3;
        if (tl > lead + 2 && memmem(t + lead, tl - lead, "\xe2\x96\x81", 3))
            v->spm_words_independent = false;
    }

    for (int b = 0; b < 256; b++) {
        char buf[8];
        int len;
        if (spm) len = snprintf(buf, sizeof buf, "<0x%02X>", b);
        else len = ll_utf8_encode(ll_byte_to_cpt((unsigned char)b), buf);
        v->byte_tokens[b] = ll_vocab_find(v, buf, (size_t)len);
        if (spm && v->byte_tokens[b] < 0) { // fall back to the byte itself as text
            buf[0] = (char)b;
            v->byte_tokens[b] = ll_vocab_find(v, buf, 1);
        }
    }
    v->nl = v->byte_tokens['\n'];

    // Tokens matched in text before the tokenizer runs, longest first.
    v->special = malloc((size_t)n * sizeof(ll_token));
    if (!v->special) { ll_set_err(err, errlen, "out of memory"); goto bad; }
    for (int32_t i = 0; i < n; i++) {
        uint8_t ty = v->toktype[i];
        if ((ty == LL_TOKTYPE_CONTROL || ty == LL_TOKTYPE_USER_DEFINED || ty == LL_TOKTYPE_UNKNOWN) &&
            v->text_len[i] > 0)
            v->special[v->n_special++] = i;
    }
    qsort_r(v->special, (size_t)v->n_special, sizeof(ll_token), cmp_special_len, v);
    if (!load_merges(v, f, err, errlen)) goto bad;
    if (v->type == LL_VOCAB_BPE && pt_find(v->pre) < 0) {
        ll_set_err(err, errlen, "unknown pre-tokenizer '%s' (tokenizer.ggml.pre)", v->pre);
        goto bad;
    }
    if (v->type == LL_VOCAB_BPE && v->n_merges == 0) {
        ll_set_err(err, errlen, "BPE tokenizer without tokenizer.ggml.merges");
        goto bad;
    }
    return v;
bad:
    ll_vocab_free(v);
    return NULL;
}

void ll_vocab_free(ll_vocab *v) {
    if (!v) return;
    free(v->text_arena);
    free(v->merge_arena);
    free(v->text);
    free(v->text_len);
    free(v->score);
    free(v->toktype);
    free(v->special);
    strmap_free(&v->by_text);
    strmap_free(&v->merges);
    free(v);
}

// ---- public getters ---------------------------------------------------------------------------

int32_t ll_vocab_n_tokens(const ll_vocab *v) { return v->n_tokens; }
ll_token ll_vocab_bos(const ll_vocab *v) { return v->bos; }
ll_token ll_vocab_eos(const ll_vocab *v) { return v->eos; }
ll_token ll_vocab_eot(const ll_vocab *v) { return v->eot; }
bool ll_vocab_add_bos(const ll_vocab *v) { return v->add_bos && v->bos >= 0; }
bool ll_vocab_add_eos(const ll_vocab *v) { return v->add_eos && v->eos >= 0; }
const char *ll_vocab_type_name(const ll_vocab *v) { return v->type == LL_VOCAB_SPM ? "spm" : "bpe"; }

bool ll_vocab_is_eog(const ll_vocab *v, ll_token t) {
    for (int32_t i = 0; t >= 0 && i < v->n_eog; i++)
        if (v->eog[i] == t) return true;
    return false;
}

bool ll_vocab_is_control(const ll_vocab *v, ll_token t) {
    return t >= 0 && t < v->n_tokens && v->toktype[t] == LL_TOKTYPE_CONTROL;
}

const char *ll_token_get_text(const ll_vocab *v, ll_token t) {
    return t >= 0 && t < v->n_tokens ? v->text[t] : "";
}

// ---- tokenize: special-token partition, then the vocab's algorithm per text fragment ----------

typedef struct { int32_t start, len; ll_token token; } fragment; // token -1: raw text

static bool frag_push(fragment **f, int32_t *n, int32_t *cap, fragment x) {
    if (*n == *cap) {
        int32_t c = *cap ? 2 * *cap : 16;
        fragment *d = realloc(*f, (size_t)c * sizeof(fragment));
        if (!d) return false;
        *f = d;
        *cap = c;
    }
    (*f)[(*n)++] = x;
    return true;
}

// Splits the text around every occurrence of special tokens (longest first). Without
// parse_special only user-defined tokens are split out, as the reference does.
static fragment *partition(const ll_vocab *v, const char *text, int32_t len, bool parse_special,
                           int32_t *n_out) {
    int32_t n = 0;
    fragment *fr = malloc(sizeof(fragment));
    if (!fr) return NULL;
    if (len > 0) fr[n++] = (fragment){0, len, -1}; // empty text has no fragments at all
    // Which bytes and byte pairs occur in the text: most special tokens can be skipped without
    // a search (vocabularies can have thousands of user-defined tokens).
    uint64_t pairs[65536 / 64] = {0}, bytes[4] = {0};
    for (int32_t i = 0; i < len; i++) {
        uint8_t a = (uint8_t)text[i];
        bytes[a >> 6] |= 1ull << (a & 63);
        if (i + 1 < len) {
            unsigned pr = (unsigned)a << 8 | (uint8_t)text[i + 1];
            pairs[pr >> 6] |= 1ull << (pr & 63);
        }
    }
    for (int32_t s = 0; s < v->n_special; s++) {
        ll_token tok = v->special[s];
        if (!parse_special && v->toktype[tok] != LL_TOKTYPE_USER_DEFINED) continue;
        const char *st = v->text[tok];
        int32_t sl = (int32_t)v->text_len[tok];
        bool may_occur = sl <= len;
        if (may_occur && sl == 1) may_occur = bytes[(uint8_t)st[0] >> 6] >> ((uint8_t)st[0] & 63) & 1;
        for (int32_t i = 0; may_occur && i + 1 < sl; i++) {
            unsigned pr = (unsigned)(uint8_t)st[i] << 8 | (uint8_t)st[i + 1];
            may_occur = pairs[pr >> 6] >> (pr & 63) & 1;
        }
        if (!may_occur) continue;
        fragment *next = NULL;
        int32_t nn = 0, ncap = 0;
        for (int32_t i = 0; i < n; i++) {
            fragment f = fr[i];
            if (f.token >= 0 || f.len < sl) {
                if (!frag_push(&next, &nn, &ncap, f)) goto oom;
                continue;
            }
            int32_t pos = f.start, end = f.start + f.len;
            while (pos < end) {
                const char *hit = memmem(text + pos, (size_t)(end - pos), st, (size_t)sl);
                if (!hit) break;
                int32_t h = (int32_t)(hit - text);
                if (h > pos && !frag_push(&next, &nn, &ncap, (fragment){pos, h - pos, -1})) goto oom;
                if (!frag_push(&next, &nn, &ncap, (fragment){h, sl, tok})) goto oom;
                pos = h + sl;
            }
            if (pos < end && !frag_push(&next, &nn, &ncap, (fragment){pos, end - pos, -1})) goto oom;
        }
        free(fr);
        fr = next;
        n = nn;
        continue;
    oom:
        free(next);
        free(fr);
        return NULL;
    }
    *n_out = n;
    return fr;
}

int32_t ll_tokenize(const ll_vocab *v, const char *text, int32_t len, ll_token *out,
                    int32_t n_max, bool add_special, bool parse_special) {
    if (len < 0) return -1;
    int32_t nf = 0;
    fragment *fr = partition(v, text, len, parse_special, &nf);
    if (!fr) return -1;
    ll_token_buf buf = {0};
    bool ok = true;
    if (add_special && ll_vocab_add_bos(v)) ok = ll_token_buf_push(&buf, v->bos);
    bool prev_special = true; // SPM: the first raw fragment gets the space prefix
    for (int32_t i = 0; ok && i < nf; i++) {
        if (fr[i].token >= 0) {
            ok = ll_token_buf_push(&buf, fr[i].token);
            prev_special = true;
            continue;
        }
        const char *t = text + fr[i].start;
        if (v->type == LL_VOCAB_SPM) {
            // The space prefix goes before raw text that follows BOS or a special token.
            char *tmp = NULL;
            size_t tl = (size_t)fr[i].len;
            if (v->add_space_prefix && prev_special) {
                tmp = malloc(tl + 1);
                if (!tmp) { ok = false; break; }
                tmp[0] = ' ';
                memcpy(tmp + 1, t, tl);
                t = tmp;
                tl++;
            }
            ok = ll_tokenize_spm(v, t, tl, &buf);
            free(tmp);
        } else {
            ok = ll_tokenize_bpe(v, t, (size_t)fr[i].len, &buf);
        }
        prev_special = false;
    }
    if (ok && add_special && ll_vocab_add_eos(v)) ok = ll_token_buf_push(&buf, v->eos);
    free(fr);
    if (!ok) { free(buf.data); return -1; }
    int32_t n = buf.n;
    if (n_max > 0 && n > 0) memcpy(out, buf.data, (size_t)(n < n_max ? n : n_max) * sizeof(ll_token));
    free(buf.data);
    return n;
}
