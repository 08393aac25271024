// The grammar as a sampler constraint (sampling.h): which tokens may come next.
//
// Every token's bytes are decoded once (ll_token_to_piece) when the grammar is attached.
// Masking walks the tokens in byte order, so neighbours share prefixes: the matcher states
// along the previous token's bytes are kept per depth, and the next token only advances the
// matcher from where the two part (lcp[] = common prefix with the previous token). A prefix
// that kills every stack rejects, without more work, every following token that shares it.
// With the check() hook, a step usually costs one token's walk: the sampler draws without the
// mask first and masks only when that token is rejected.
// End-of-generation tokens are allowed exactly when the grammar can end here.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample/grammar.h"
#include "llamalite.h"
#include "sample/sampling.h"

enum { TOK_TEXT = 0, TOK_EOG = 1, TOK_NEVER = 2 }; // NEVER: no bytes (control tokens)

// Token bytes and their sorted order: depends only on the vocabulary.
typedef struct {
    const ll_vocab *vocab;
    int32_t n_vocab;
    char *bytes;
    uint32_t *off;    // token t: bytes[off[t] .. off[t + 1])
    uint8_t *kind;
    int32_t *order;   // TOK_TEXT tokens sorted by bytes
    uint32_t *lcp;    // lcp[i]: common prefix length of order[i] and order[i - 1]
    int32_t n_order;
    uint32_t max_len;
    bool has_eog;
} token_table;

typedef struct {
    ll_grammar *g;
    gr_matcher *m;
    token_table *tt;
    gr_set cur;       // the stacks after the accepted tokens
    gr_partial part;  // an incomplete UTF-8 sequence at the end of them
    bool failed;      // a rejected token was accepted
    bool ended;       // an end-of-generation token was accepted
    bool ambiguous;   // the last apply() could not tell (GR_MAX_STACKS or GS_MAX_WORK reached)
    bool oom;         // ... or ran out of memory walking one
    int32_t budget;   // tokens that may still be sampled, this one included (-1: no limit)
    int pinned;       // saved states alive (speculative drafts): no compaction meanwhile
    uint8_t *verdict; // apply(): per token, 0 allowed, 1 rejected, 2 too long for the budget
    // scratch of the walks: states per depth live in work[first[d] .. first[d] + n[d])
    gr_set work;
    uint32_t *first, *n;
    gr_partial *parts;
} gsampler;

static void table_free(token_table *t) {
    if (!t) return;
    free(t->bytes);
    free(t->off);
    free(t->kind);
    free(t->order);
    free(t->lcp);
    free(t);
}

typedef struct {
    const char *p;
    uint32_t len;
    int32_t id;
} tok_key;

static int cmp_tok(const void *a, const void *b) {
    const tok_key *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static token_table *table_new(const ll_vocab *v) {
    int32_t nv = ll_vocab_n_tokens(v);
    if (nv <= 0) return NULL;
    token_table *t = calloc(1, sizeof *t);
    tok_key *keys = NULL;
    if (!t) return NULL;
    t->vocab = v;
    t->n_vocab = nv;
    t->off = malloc(((size_t)nv + 1) * sizeof *t->off);
    t->kind = malloc((size_t)nv);
    size_t cap = (size_t)nv * 8 + 64, len = 0;
    t->bytes = malloc(cap);
    if (!t->off || !t->kind || !t->bytes) goto fail;
    for (int32_t i = 0; i < nv; i++) {
        t->off[i] = (uint32_t)len;
        if (ll_vocab_is_eog(v, i)) { t->kind[i] = TOK_EOG; t->has_eog = true; continue; }
        int32_t k;
        for (;;) {
            k = ll_token_to_piece(v, i, t->bytes + len, (int32_t)(cap - len > INT32_MAX ? INT32_MAX : cap - len), false);
            if (k >= 0) break;
            size_t need = len + (size_t)(-k);
            size_t c2 = cap * 2 > need ? cap * 2 : need + 64;
            char *b = realloc(t->bytes, c2);
            if (!b) goto fail;
            t->bytes = b;
            cap = c2;
        }
        t->kind[i] = k == 0 ? TOK_NEVER : TOK_TEXT;
        len += (size_t)k;
        if ((uint32_t)k > t->max_len) t->max_len = (uint32_t)k;
        if (len > UINT32_MAX / 2) goto fail;
    }
    t->off[nv] = (uint32_t)len;
    int32_t n = 0;
    for (int32_t i = 0; i < nv; i++) n += t->kind[i] == TOK_TEXT;
    keys = malloc(((size_t)n + 1) * sizeof *keys);
    t->order = malloc(((size_t)n + 1) * sizeof *t->order);
    t->lcp = malloc(((size_t)n + 1) * sizeof *t->lcp);
    if (!keys || !t->order || !t->lcp) goto fail;
    n = 0;
    for (int32_t i = 0; i < nv; i++) {
        if (t->kind[i] == TOK_TEXT)
            keys[n++] = (tok_key){ t->bytes + t->off[i], t->off[i + 1] - t->off[i], i };
    }
    qsort(keys, (size_t)n, sizeof *keys, cmp_tok);
    for (int32_t i = 0; i < n; i++) {
        t->order[i] = keys[i].id;
        uint32_t l = 0;
        if (i > 0) {
            uint32_t m = keys[i].len < keys[i - 1].len ? keys[i].len : keys[i - 1].len;
            while (l < m && keys[i].p[l] == keys[i - 1].p[l]) l++;
        }
        t->lcp[i] = l;
    }
    t->n_order = n;
    free(keys);
    return t;
fail:
    free(keys);
    table_free(t);
    return NULL;
}

static void gs_free(void *ud) {
    gsampler *G = ud;
    if (!G) return;
    gr_matcher_free(G->m);
    ll_grammar_free(G->g);
    table_free(G->tt);
    gr_set_free(&G->cur);
    gr_set_free(&G->work);
    free(G->first);
    free(G->n);
    free(G->parts);
    free(G->verdict);
    free(G);
}

// Walks bytes s[0..len) from the current state; true if some stack survives. Leaves the
// result in work[first[len] .. +n[len]) with its partial sequence in parts[len].
static bool walk(gsampler *G, const char *s, uint32_t len) {
    G->work.n = 0;
    if (!gr_set_reserve(&G->work, G->cur.n)) return false;
    memcpy(G->work.v, G->cur.v, (size_t)G->cur.n * sizeof *G->cur.v);
    G->work.n = G->cur.n;
    G->first[0] = 0;
    G->n[0] = G->cur.n;
    G->parts[0] = G->part;
    for (uint32_t d = 0; d < len; d++) {
        gr_partial p = G->parts[d];
        uint32_t before = G->work.n;
        int k = gr_step(G->m, &G->work, G->first[d], G->n[d], &p, (uint8_t)s[d]);
        if (k <= 0) return false;
        G->first[d + 1] = before;
        G->n[d + 1] = (uint32_t)k;
        G->parts[d + 1] = p;
    }
    return true;
}

static bool can_end(const gsampler *G) { return gr_can_end(G->cur.v, G->cur.n, &G->part); }

// The budget guard: with k tokens left (this one included), a token is kept only if the
// grammar can still complete in the k-1 after it. Completing needs at most one token per
// byte (byte tokens), so "fewest bytes to complete <= k-1" is the test. Active only while
// completing in time is still possible at all.
static bool guard_active(gsampler *G) {
    if (G->budget < 0) return false;
    return gr_min_completion(G->m, G->cur.v, G->cur.n, &G->part) <= (uint32_t)G->budget;
}

static bool fits(gsampler *G, uint32_t depth) {
    uint32_t need = gr_min_completion(G->m, G->work.v + G->first[depth], G->n[depth], &G->parts[depth]);
    return need + 1 <= (uint32_t)G->budget;
}

static bool gs_check(void *ud, ll_token t) {
    gsampler *G = ud;
    const token_table *T = G->tt;
    if (t < 0 || t >= T->n_vocab || G->failed) return false;
    if (G->ended) return T->kind[t] == TOK_EOG;
    if (T->kind[t] == TOK_EOG) return can_end(G);
    if (T->kind[t] == TOK_NEVER) return false;
    uint32_t len = T->off[t + 1] - T->off[t];
    if (!walk(G, T->bytes + T->off[t], len)) return false;
    return !guard_active(G) || fits(G, len);
}

// The matcher work (gr_work) one apply() may spend over the whole vocabulary, about a second:
// json.gbnf over a 32,000-token vocabulary needs 0.4 million; a grammar so ambiguous that it
// needs more is refused as too ambiguous rather than taking minutes a token.
#define GS_MAX_WORK (1ull << 27)

static void gs_apply(void *ud, float *logits, int32_t n_vocab) {
    gsampler *G = ud;
    const token_table *T = G->tt;
    G->ambiguous = G->oom = false;
    int32_t nv = n_vocab < T->n_vocab ? n_vocab : T->n_vocab;
    for (int32_t i = nv; i < n_vocab; i++) logits[i] = -INFINITY; // beyond the vocabulary
    bool end_ok = !G->failed && (G->ended || can_end(G));
    for (int32_t i = 0; i < nv; i++) {
        if (T->kind[i] == TOK_NEVER || (T->kind[i] == TOK_EOG && !end_ok)) logits[i] = -INFINITY;
    }
    if (G->failed || G->ended || !gr_can_continue(G->cur.v, G->cur.n)) {
        for (int32_t i = 0; i < nv; i++) if (T->kind[i] == TOK_TEXT) logits[i] = -INFINITY;
        return;
    }
    // Depth 0: the current stacks.
    G->work.n = 0;
    if (!gr_set_reserve(&G->work, G->cur.n)) { G->failed = true; return; }
    memcpy(G->work.v, G->cur.v, (size_t)G->cur.n * sizeof *G->cur.v);
    G->work.n = G->cur.n;
    G->first[0] = 0;
    G->n[0] = G->cur.n;
    G->parts[0] = G->part;
    const bool guard = guard_active(G);
    gr_set_work_limit(G->m, GS_MAX_WORK); // the walk over the vocabulary is bounded
    bool any_fits = false;
    uint32_t valid = 0;        // states 0..valid follow the last walked token's bytes
    uint32_t dead = UINT32_MAX; // depth where that walk found no stack left (<= valid)
    uint32_t run = 0;          // common prefix of the current token and the last walked one
    for (int32_t i = 0; i < T->n_order; i++) {
        if (T->lcp[i] < run) run = T->lcp[i];
        int32_t t = T->order[i];
        if (t >= nv || logits[t] == -INFINITY) continue; // already out: no need to walk
        uint32_t use = run < valid ? run : valid;
        if (dead <= use) { logits[t] = -INFINITY; continue; } // shares a dead prefix
        const char *s = T->bytes + T->off[t];
        uint32_t len = T->off[t + 1] - T->off[t];
        G->work.n = G->first[use] + G->n[use];
        dead = UINT32_MAX;
        uint32_t d = use;
        for (; d < len; d++) {
            gr_partial p = G->parts[d];
            uint32_t before = G->work.n;
            int k = gr_step(G->m, &G->work, G->first[d], G->n[d], &p, (uint8_t)s[d]);
            G->first[d + 1] = before;
            G->n[d + 1] = k > 0 ? (uint32_t)k : 0;
            G->parts[d + 1] = p;
            if (k < 0) { // not "no": "cannot tell" (too ambiguous) or out of memory
                if (gr_too_ambiguous(G->m)) G->ambiguous = true;
                else G->oom = true;
            }
            if (k <= 0) { dead = d + 1; break; }
        }
        if (G->ambiguous || G->oom) break;
        valid = dead != UINT32_MAX ? dead : len;
        run = UINT32_MAX;
        if (dead != UINT32_MAX) logits[t] = -INFINITY;
        else if (guard) {
            G->verdict[t] = fits(G, len) ? 0 : 2;
            any_fits |= G->verdict[t] == 0;
        }
    }
    gr_set_work_limit(G->m, UINT64_MAX);
    if (G->ambiguous || G->oom) { // some token could not be judged: choosing among the rest would be a guess
        for (int32_t i = 0; i < nv; i++) logits[i] = -INFINITY;
        return;
    }
    // Apply the guard only if it leaves a choice (an end token or a token that fits).
    if (guard && (any_fits || (end_ok && T->has_eog))) {
        for (int32_t i = 0; i < T->n_order; i++) {
            int32_t t = T->order[i];
            if (t < nv && logits[t] != -INFINITY && G->verdict[t] == 2) logits[t] = -INFINITY;
        }
    }
}

static void gs_accept(void *ud, ll_token t) {
    gsampler *G = ud;
    const token_table *T = G->tt;
    if (t < 0 || t >= T->n_vocab || G->failed || G->ended) return;
    if (T->kind[t] == TOK_EOG) {
        if (!can_end(G)) G->failed = true;
        G->ended = true;
        return;
    }
    uint32_t len = T->off[t + 1] - T->off[t];
    if (T->kind[t] == TOK_NEVER || !walk(G, T->bytes + T->off[t], len)) {
        G->failed = true;
        return;
    }
    uint32_t k = G->n[len];
    if (!gr_set_reserve(&G->cur, k)) { G->failed = true; return; }
    memcpy(G->cur.v, G->work.v + G->first[len], (size_t)k * sizeof *G->cur.v);
    G->cur.n = k;
    G->part = G->parts[len];
    // The node arena only grows while walking; keep it to what the current stacks use.
    if (!G->pinned && gr_matcher_n_nodes(G->m) > (1u << 20)) gr_matcher_compact(G->m, &G->cur);
}

// Saved states (sampling.h): the stacks and flags. Node ids stay valid because nothing is
// compacted while a copy is alive.
typedef struct {
    gr_set cur;
    gr_partial part;
    bool failed, ended;
} gstate;

static void *gs_save(void *ud) {
    gsampler *G = ud;
    gstate *st = calloc(1, sizeof *st);
    if (!st || !gr_set_reserve(&st->cur, G->cur.n ? G->cur.n : 1)) {
        free(st);
        return NULL;
    }
    memcpy(st->cur.v, G->cur.v, (size_t)G->cur.n * sizeof *G->cur.v);
    st->cur.n = G->cur.n;
    st->part = G->part;
    st->failed = G->failed;
    st->ended = G->ended;
    G->pinned++;
    return st;
}

static void gs_restore(void *ud, const void *state) {
    gsampler *G = ud;
    const gstate *st = state;
    G->cur.n = 0;
    if (!gr_set_reserve(&G->cur, st->cur.n ? st->cur.n : 1)) { G->failed = true; return; }
    memcpy(G->cur.v, st->cur.v, (size_t)st->cur.n * sizeof *G->cur.v);
    G->cur.n = st->cur.n;
    G->part = st->part;
    G->failed = st->failed;
    G->ended = st->ended;
}

static void gs_drop(void *ud, void *state) {
    gsampler *G = ud;
    gstate *st = state;
    if (!st) return;
    gr_set_free(&st->cur);
    free(st);
    if (G->pinned > 0) G->pinned--;
}

static gsampler *ours(const ll_sampler *s) {
    const ll_sampler_constraint *c = ll_sampler_get_constraint(s);
    return c && c->apply == gs_apply ? c->ud : NULL;
}

int ll_sampler_set_grammar(ll_sampler *s, const ll_vocab *v, const ll_grammar *g, char *err,
                           size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!s) return -1;
    if (!g) {
        if (ours(s)) ll_sampler_set_constraint(s, NULL);
        return 0;
    }
    if (!v) {
        if (err && errlen) snprintf(err, errlen, "grammar: no vocabulary");
        return -1;
    }
    gsampler *old = ours(s);
    gsampler *G = calloc(1, sizeof *G);
    if (!G) goto oom;
    // Re-attaching keeps the decoded token table of the same vocabulary.
    if (old && old->tt && old->tt->vocab == v) {
        G->tt = old->tt;
        old->tt = NULL;
    } else {
        G->tt = table_new(v);
    }
    G->g = gr_copy(g);
    G->m = G->g ? gr_matcher_new(G->g) : NULL;
    if (!G->tt || !G->g || !G->m) goto oom;
    uint32_t depth = G->tt->max_len + 1;
    G->first = malloc(depth * sizeof *G->first);
    G->n = malloc(depth * sizeof *G->n);
    G->parts = malloc(depth * sizeof *G->parts);
    G->verdict = calloc((size_t)G->tt->n_vocab, 1);
    G->budget = -1;
    if (!G->first || !G->n || !G->parts || !G->verdict || !gr_start(G->m, &G->cur)) goto oom;
    ll_sampler_constraint c = {
        .apply = gs_apply, .accept = gs_accept, .ud = G, .check = gs_check, .free = gs_free,
        .save = gs_save, .restore = gs_restore, .drop = gs_drop,
    };
    ll_sampler_set_constraint(s, &c);
    return 0;
oom:
    if (G && old && !old->tt && G->tt) { old->tt = G->tt; G->tt = NULL; } // give it back
    gs_free(G);
    if (err && errlen) snprintf(err, errlen, "grammar: out of memory");
    return -1;
}

ll_grammar_status ll_sampler_grammar_status(const ll_sampler *s) {
    const gsampler *G = ours(s);
    if (!G) return LL_GRAMMAR_NONE;
    if (G->failed) return LL_GRAMMAR_FAILED;
    if (G->ended) return LL_GRAMMAR_DONE;
    if (!can_end(G)) return LL_GRAMMAR_MORE;
    return gr_can_continue(G->cur.v, G->cur.n) ? LL_GRAMMAR_CAN_END : LL_GRAMMAR_DONE;
}

bool ll_sampler_grammar_done(const ll_sampler *s) {
    return ll_sampler_grammar_status(s) == LL_GRAMMAR_DONE;
}

const char *ll_sampler_grammar_why(const ll_sampler *s) {
    const gsampler *G = ours(s);
    if (G && G->ambiguous)
        return "the grammar is too ambiguous here (too many partial parses at once: simplify "
               "nested repetitions or alternatives that match the same text)";
    if (G && G->oom) return "the grammar ran out of memory here";
    return "the grammar allows no token here";
}

void ll_sampler_grammar_set_budget(ll_sampler *s, int32_t n_tokens) {
    gsampler *G = ours(s);
    if (G) G->budget = n_tokens < 0 ? -1 : n_tokens;
}
