// Session files: the KV cache of a context's first n positions, the tokens they hold, and a
// blob of the caller's (the REPL keeps its conversation state there), so that a later run
// resumes without evaluating them again (--prompt-cache, the REPL's /save and /load).
//
// Layout (little-endian):
//   "LLSESSN\0"  magic, u32 version (1)
//   u64 model    identity of the model and its applied LoRA adapters (context_id)
//   u32 n_layer, n_head_kv, head_dim, type_k, type_v (ggml type ids), n_tokens
//   u64 n_extra
//   i32 tokens[n_tokens]
//   per layer: u32 first position held (0, or a sliding-window layer's first), then the K rows
//              of positions [first, n_tokens), then the V rows (the cache's own row bytes)
//   extra[n_extra]
//   u64 checksum of everything before it
// A file is read like any hostile input: every field is checked against the context before
// anything is read into the cache, sizes against the file's length, and the checksum at the
// end; a file that fails is refused with one line that says why, and the cache is left empty.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/lora.h"
#include "context/context.h"
#include "util.h"

static const char MAGIC[8] = {'L', 'L', 'S', 'E', 'S', 'S', 'N', 0};
enum { VERSION = 1, HEADER_BYTES = 8 + 4 + 8 + 6 * 4 + 8, MAX_EXTRA = 64 << 20 };

// 64-bit FNV-1a over 8-byte words (and the tail byte by byte): cheap over hundreds of MB. Pieces
// are hashed as the writer and the reader both cut them (header, tokens, each row, blob).
typedef struct { uint64_t h; } hasher;
static void hash_bytes(hasher *s, const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = s->h;
    for (; n >= 8; n -= 8, b += 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; n; n--, b++) h = (h ^ *b) * 0x100000001b3ull;
    s->h = h;
}

// What a session must have been made with: the shapes, the size, and a few KB of the first and
// last layers' weights (a re-quantized or fine-tuned file of the same shapes differs there).
static uint64_t model_id(const ll_model *m) {
    hasher s = {0xcbf29ce484222325ull};
    const ll_hparams *hp = &m->hp;
    const int32_t shape[] = {hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ff};
    hash_bytes(&s, m->arch, strlen(m->arch));
    hash_bytes(&s, shape, sizeof shape);
    const uint64_t size = ll_model_size_bytes(m);
    hash_bytes(&s, &size, sizeof size);
    const ll_weight *w[] = {&m->tok_embd, &m->layers[0].w[LL_ROLE_ATTN_K], &m->layers[hp->n_layer - 1].w[LL_ROLE_ATTN_V],
                            &m->layers[hp->n_layer - 1].w[LL_ROLE_FFN_DOWN]};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        if (!w[i]->data || w[i]->n_in <= 0) continue;
        size_t n = gl_row_size(w[i]->type, w[i]->n_in);
        hash_bytes(&s, w[i]->data, n < 4096 ? n : 4096);
    }
    return s.h;
}

// The model and the LoRA adapters applied with their scales: all of them shape the cached rows.
static uint64_t context_id(const ll_context *c) {
    hasher s = {model_id(c->model)};
    for (int i = 0; i < c->n_loras; i++) {
        const ll_lora_use *u = &c->loras[i];
        if (u->scale == 0) continue; // attached but off: the rows are the base model's
        const ll_adapter *a = u->adapter;
        hash_bytes(&s, &u->scale, sizeof u->scale);
        hash_bytes(&s, &a->alpha, sizeof a->alpha);
        hash_bytes(&s, &a->n_pairs, sizeof a->n_pairs);
        for (int k = 0; k < a->n_slots; k++) {
            const ll_weight *w = &a->pairs[k].a;
            if (!w->data || w->n_in <= 0) continue;
            const size_t n = gl_row_size(w->type, w->n_in);
            hash_bytes(&s, &k, sizeof k);
            hash_bytes(&s, w->data, n < 1024 ? n : 1024);
        }
    }
    return s.h;
}

static void put_u32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

// fwrite that also hashes; false on a short write.
static bool put(FILE *f, hasher *s, const void *p, size_t n) {
    hash_bytes(s, p, n);
    return fwrite(p, 1, n, f) == n;
}

int ll_session_save(const ll_context *c, const char *path, const ll_token *tokens, int n_tokens, const void *extra,
                    size_t n_extra, char *err, size_t errlen) {
    const ll_kv_cache *kv = &c->kv;
    bool whole = n_tokens >= 0 && n_tokens <= c->n_past;
    for (int l = 0; l < kv->n_layer && whole; l++)
        whole = ll_kv_cache_can_keep(kv, l, n_tokens, c->model->layers[l].n_swa);
    if (!whole || (n_tokens && !tokens) || n_extra > MAX_EXTRA) {
        ll_set_err(err, errlen, "cannot save a session of %d tokens (the cache holds %d)", n_tokens, c->n_past);
        return -1;
    }
    // Written beside the target and renamed over it, so a failed save never leaves half a file.
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        ll_set_err(err, errlen, "session file name too long");
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        ll_set_err(err, errlen, "cannot write %s", path);
        return -1;
    }
    unsigned char h[HEADER_BYTES];
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, VERSION);
    put_u64(h + 12, context_id(c));
    const uint32_t f32s[] = {(uint32_t)kv->n_layer, (uint32_t)kv->n_head_kv, (uint32_t)kv->head_dim,
                             (uint32_t)kv->type_k, (uint32_t)kv->type_v, (uint32_t)n_tokens};
    for (int i = 0; i < 6; i++) put_u32(h + 20 + 4 * i, f32s[i]);
    put_u64(h + 44, n_extra);
    hasher s = {0xcbf29ce484222325ull};
    bool ok = put(f, &s, h, sizeof h);
    for (int i = 0; i < n_tokens && ok; i++) {
        unsigned char t[4];
        put_u32(t, (uint32_t)tokens[i]);
        ok = put(f, &s, t, 4);
    }
    for (int l = 0; l < kv->n_layer && ok; l++) {
        const int first = kv->base[l] < n_tokens ? kv->base[l] : n_tokens, rows = n_tokens - first;
        unsigned char b[4];
        put_u32(b, (uint32_t)first);
        ok = put(f, &s, b, 4);
        // row by row, as the loader reads (and hashes) them
        for (int r = 0; r < rows && ok; r++) ok = put(f, &s, ll_kv_k(kv, l, r), kv->k_row);
        for (int r = 0; r < rows && ok; r++) ok = put(f, &s, ll_kv_v(kv, l, r), kv->v_row);
    }
    if (ok && n_extra) ok = put(f, &s, extra, n_extra);
    unsigned char sum[8];
    put_u64(sum, s.h);
    ok = ok && fwrite(sum, 1, 8, f) == 8;
    ok = fflush(f) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        ll_set_err(err, errlen, "cannot write %s", path);
        return -1;
    }
    return 0;
}

// fread that also hashes; false on a short read.
static bool get(FILE *f, hasher *s, void *p, size_t n) {
    if (fread(p, 1, n, f) != n) return false;
    hash_bytes(s, p, n);
    return true;
}

int ll_session_load(ll_context *c, const char *path, ll_token **tokens_out, int *n_tokens_out, void **extra_out,
                    size_t *n_extra_out, char *err, size_t errlen) {
    ll_kv_cache *kv = &c->kv;
    *tokens_out = NULL;
    *n_tokens_out = 0;
    if (extra_out) *extra_out = NULL;
    if (n_extra_out) *n_extra_out = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        ll_set_err(err, errlen, "cannot open session file %s", path);
        return -1;
    }
    long long file_size = -1;
    if (fseek(f, 0, SEEK_END) == 0) file_size = ftell(f);
    rewind(f);
    hasher s = {0xcbf29ce484222325ull};
    unsigned char h[HEADER_BYTES];
    ll_token *tokens = NULL;
    char *extra = NULL;
    const char *why = NULL;
    char whybuf[200];
    if (file_size < HEADER_BYTES + 8 || !get(f, &s, h, sizeof h) || memcmp(h, MAGIC, 8) != 0) {
        why = "not a session file";
        goto fail;
    }
    if (get_u32(h + 8) != VERSION) {
        snprintf(whybuf, sizeof whybuf, "session version %u, expected %d", get_u32(h + 8), VERSION), why = whybuf;
        goto fail;
    }
    if (get_u64(h + 12) != context_id(c)) {
        why = "made with another model (or other LoRA adapters or scales)";
        goto fail;
    }
    const uint32_t n_layer = get_u32(h + 20), n_head_kv = get_u32(h + 24), head_dim = get_u32(h + 28);
    const uint32_t type_k = get_u32(h + 32), type_v = get_u32(h + 36), n_tokens = get_u32(h + 40);
    const uint64_t n_extra = get_u64(h + 44);
    if (n_layer != (uint32_t)kv->n_layer || n_head_kv != (uint32_t)kv->n_head_kv || head_dim != (uint32_t)kv->head_dim) {
        snprintf(whybuf, sizeof whybuf, "cache shape %u layers x %u x %u, this model has %d x %d x %d", n_layer, n_head_kv,
                 head_dim, kv->n_layer, kv->n_head_kv, kv->head_dim), why = whybuf;
        goto fail;
    }
    if (type_k != (uint32_t)kv->type_k || type_v != (uint32_t)kv->type_v) {
        snprintf(whybuf, sizeof whybuf, "cache types %s/%s, this context uses %s/%s (-ctk/-ctv)",
                 gl_type_name((enum gl_type)(type_k < GL_TYPE_COUNT ? type_k : GL_TYPE_COUNT)),
                 gl_type_name((enum gl_type)(type_v < GL_TYPE_COUNT ? type_v : GL_TYPE_COUNT)), gl_type_name(kv->type_k),
                 gl_type_name(kv->type_v)), why = whybuf;
        goto fail;
    }
    if (n_tokens > (uint32_t)c->n_ctx) {
        snprintf(whybuf, sizeof whybuf, "%u tokens, more than the context of %d (-c)", n_tokens, c->n_ctx), why = whybuf;
        goto fail;
    }
    // the size within what the header allows (each layer holds up to n_tokens rows)
    const unsigned long long least = (unsigned long long)HEADER_BYTES + 4ull * n_tokens + 4ull * n_layer + n_extra + 8;
    const unsigned long long most = least + (unsigned long long)n_layer * n_tokens * (kv->k_row + kv->v_row);
    if (n_extra > MAX_EXTRA || (unsigned long long)file_size < least || (unsigned long long)file_size > most) {
        snprintf(whybuf, sizeof whybuf, "%lld bytes, its header says %llu to %llu (truncated or corrupt)", file_size, least,
                 most), why = whybuf;
        goto fail;
    }
    tokens = malloc(sizeof *tokens * (n_tokens ? n_tokens : 1));
    extra = malloc(n_extra + 1);
    if (!tokens || !extra) {
        why = "out of memory";
        goto fail;
    }
    for (uint32_t i = 0; i < n_tokens; i++) {
        unsigned char t[4];
        if (!get(f, &s, t, 4)) {
            why = "truncated";
            goto fail;
        }
        tokens[i] = (ll_token)get_u32(t);
        if (tokens[i] < 0 || tokens[i] >= c->model->hp.n_vocab) {
            snprintf(whybuf, sizeof whybuf, "token %u is %d, outside the vocabulary", i, (int)tokens[i]), why = whybuf;
            goto fail;
        }
    }
    // From here the cache is overwritten: a failure leaves it empty.
    c->n_past = 0;
    for (uint32_t l = 0; l < n_layer; l++) {
        unsigned char b[4];
        if (!get(f, &s, b, 4)) {
            why = "truncated";
            goto fail;
        }
        // A layer holds [first, n_tokens); a sliding-window layer with fewer cells takes the
        // last rows (the file may come from a context with more), and must get its window.
        const uint32_t first = get_u32(b), n_swa = (uint32_t)c->model->layers[l].n_swa;
        const uint32_t window = n_swa > 0 && n_tokens + 1 > n_swa ? n_tokens + 1 - n_swa : 0;
        if (first > n_tokens || (n_swa == 0 && first != 0) || first > window) {
            snprintf(whybuf, sizeof whybuf, "layer %u holds positions from %u of %u, its window needs %u", l, first,
                     n_tokens, window), why = whybuf;
            goto fail;
        }
        const uint32_t rows = n_tokens - first, cells = (uint32_t)kv->cells[l];
        const uint32_t skip = rows > cells ? rows - cells : 0;
        kv->base[l] = (int)(first + skip);
        // K rows then V rows; the skipped ones pass through one cell and are overwritten
        for (int part = 0; part < 2; part++) {
            const size_t row = part ? kv->v_row : kv->k_row;
            for (uint32_t r = 0; r < rows; r++) {
                const int cell = r < skip ? 0 : (int)(r - skip);
                if (!get(f, &s, part ? ll_kv_v(kv, (int)l, cell) : ll_kv_k(kv, (int)l, cell), row)) {
                    why = "truncated";
                    goto fail;
                }
            }
        }
    }
    unsigned char sum[8];
    if ((n_extra && !get(f, &s, extra, n_extra)) || fread(sum, 1, 8, f) != 8) {
        why = "truncated";
        goto fail;
    }
    if (fgetc(f) != EOF) {
        why = "bytes after the end (corrupt)";
        goto fail;
    }
    if (get_u64(sum) != s.h) {
        why = "checksum mismatch (corrupt)";
        goto fail;
    }
    fclose(f);
    extra[n_extra] = 0;
    c->n_past = (int)n_tokens;
    *tokens_out = tokens;
    *n_tokens_out = (int)n_tokens;
    if (extra_out) *extra_out = extra;
    else free(extra);
    if (n_extra_out) *n_extra_out = n_extra;
    return 0;
fail:
    fclose(f);
    ll_kv_clear(c);
    free(tokens);
    free(extra);
    ll_set_err(err, errlen, "session file %s: %s", path, why);
    return -1;
}
