// Speculative decoding (llamalite.h, ll_spec_*): a drafter proposes up to n_max tokens, the
// target evaluates the last committed token and the draft in one decode, and the tokens are
// checked in order against the target's own sampler:
//   - a drafted token d with draft probability q(d) is accepted with probability
//     min(1, p(d) / q(d)), p being the target sampler's distribution at that position;
//   - the first rejection is replaced by a draw from max(0, p - q), renormalised, and the
//     step ends; when everything is accepted, the target's distribution after the last draft
//     gives one more token for free.
// This is the rejection scheme of Leviathan et al. / Chen et al.: every committed token has
// exactly the target's distribution whatever the drafter does. With greedy samplers p and q
// are one-hot, so it reduces to "keep the drafts equal to the target's argmax, then the
// target's own token": the output is the target's greedy output. A prompt-lookup draft is
// deterministic (q one-hot at the drafted token).
//
// Invariant between steps: hist[0..n_hist) are the committed tokens; the target's cache holds
// all but the last one (or, right after ll_spec_feed, all of them and their last logits are
// kept in `ready`), the draft's cache a prefix hist[0..n_dft) with n_dft < n_hist. Both caches
// are cut back (ll_kv_truncate) to what was accepted.
//
// Exactness: the prompt is decoded as plain generation decodes it (one batch), and the target
// verifies drafts with batch-invariant decodes (ll_set_exact_batches), so every logit the
// target's sampler sees is bitwise the one plain token-by-token decoding computes: greedy
// output is byte-identical to decoding without a draft.
//
// Shared layers: when the draft model is the target's first K layers, byte for byte (as
// layer-skip drafts are made), the draft has already evaluated those layers for every token
// the target verifies. The target then starts at layer K from the draft's residual stream and
// K/V rows. For this to be bitwise what the target computes itself, the draft's cache holds
// the target's own K/V rows for every position the target committed (copied, not decoded),
// and the draft evaluates the rest with one-token arithmetic, as the target's verification
// does.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/context.h"
#include "speculative/draft_head.h"
#include "llamalite.h"
#include "model/model.h"
#include "sample/sampling.h"
#include "util.h"

// llama.cpp's allowance for vocabularies that differ only by a few added tokens at the end.
enum { VOCAB_MAX_SIZE_DIFF = 128 };

struct ll_spec {
    ll_context *tgt, *dft; // dft NULL: prompt lookup
    ll_spec_params par;
    const ll_vocab *vocab;  // the target's
    int32_t n_vocab;        // the target's
    int32_t n_vocab_dft;
    int n_ctx;              // the target's

    ll_token *hist;         // committed tokens
    int n_hist, cap_hist;
    int n_dft;              // committed tokens in the draft's cache (prefix of hist)

    ll_token *draft;        // n_max + 1: the last committed token, then the drafted ones
    float *q;               // n_max rows of n_vocab_dft: the draft's distributions
    float *p;               // n_vocab (+ room for the draft's vocab): the target's distribution
    float *ready;           // n_vocab: the target's logits after the last fed token
    bool has_ready;         // the cache holds every committed token and `ready` is valid
    ll_token *eog;          // end-of-generation tokens of the target vocab (masked with no_eog)
    int n_eog;

    int n_shared;           // the draft is the target's first n_shared layers (0: it is not)
    float *resid;           // n_max + 1 rows of n_embd: the draft's residual stream for
                            // positions n_hist - 1 .. n_hist - 1 + k (the tokens to verify)
    int n_resid;            // rows of resid valid this step

    ll_draft_head *head;    // the draft's logits from a copy of its head (NULL: its own)
    float *dlogits;         // n_vocab_dft: where they go

    ll_spec_stats st;
};

ll_spec_params ll_spec_default_params(void) {
    ll_spec_params p = {.n_max = 16, .n_min = 0, .p_min = 0.75f, .ngram = 3, .no_eog = false, .exact = true};
    return p;
}

// ---- vocabulary check -----------------------------------------------------------------------

// A token text for a message: quoted, control bytes escaped, cut at 40 bytes.
static void quote(char *out, size_t cap, const char *s) {
    size_t o = 0;
    if (cap < 8) { if (cap) out[0] = 0; return; }
    out[o++] = '\'';
    for (size_t i = 0; s[i] && o + 6 < cap && i < 40; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    out[o++] = '\'';
    out[o] = 0;
}

int ll_spec_check_vocab(const ll_model *target, const ll_model *draft, char *err, size_t errlen) {
    const ll_vocab *vt = ll_model_get_vocab(target), *vd = ll_model_get_vocab(draft);
    if (!vt || !vd) {
        ll_set_err(err, errlen, "draft vocabulary: missing");
        return -1;
    }
    const char *tt = ll_vocab_type_name(vt), *td = ll_vocab_type_name(vd);
    if (strcmp(tt ? tt : "", td ? td : "") != 0) {
        ll_set_err(err, errlen, "draft vocabulary: tokenizer type %s, the target's is %s", td, tt);
        return -1;
    }
    struct { const char *what; long t, d; } same[] = {
        {"BOS token", ll_vocab_bos(vt), ll_vocab_bos(vd)},
        {"EOS token", ll_vocab_eos(vt), ll_vocab_eos(vd)},
        {"EOT token", ll_vocab_eot(vt), ll_vocab_eot(vd)},
        {"add-BOS flag", ll_vocab_add_bos(vt), ll_vocab_add_bos(vd)},
        {"add-EOS flag", ll_vocab_add_eos(vt), ll_vocab_add_eos(vd)},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        if (same[i].t != same[i].d) {
            ll_set_err(err, errlen, "draft vocabulary: %s is %ld, the target's is %ld", same[i].what,
                    same[i].d, same[i].t);
            return -1;
        }
    }
    const int32_t nt = ll_vocab_n_tokens(vt), nd = ll_vocab_n_tokens(vd);
    if (labs((long)nt - nd) > VOCAB_MAX_SIZE_DIFF) {
        ll_set_err(err, errlen, "draft vocabulary: %d tokens, the target has %d (at most %d apart)",
                nd, nt, VOCAB_MAX_SIZE_DIFF);
        return -1;
    }
    const int32_t n = nt < nd ? nt : nd;
    for (ll_token t = 0; t < n; t++) {
        const char *a = ll_token_get_text(vt, t), *b = ll_token_get_text(vd, t);
        if (strcmp(a ? a : "", b ? b : "") != 0) {
            char qa[256], qb[256];
            quote(qa, sizeof qa, b ? b : "");
            quote(qb, sizeof qb, a ? a : "");
            ll_set_err(err, errlen, "draft vocabulary: token %d is %s, the target's is %s", t, qa, qb);
            return -1;
        }
        if (ll_vocab_is_control(vt, t) != ll_vocab_is_control(vd, t) ||
            ll_vocab_is_eog(vt, t) != ll_vocab_is_eog(vd, t)) {
            ll_set_err(err, errlen, "draft vocabulary: token %d is special in one model only", t);
            return -1;
        }
    }
    return 0;
}

// ---- shared layers ---------------------------------------------------------------------------

static bool same_bytes(const void *a, const void *b, size_t n) {
    return a == b || (a && b && memcmp(a, b, n) == 0);
}

static bool same_weight(const ll_weight *a, const ll_weight *b) {
    return a->type == b->type && a->n_in == b->n_in && a->n_out == b->n_out &&
           same_bytes(a->data, b->data, gl_row_size(a->type, a->n_in) * (size_t)a->n_out);
}

// The number of leading layers the draft shares with the target byte for byte (with the same
// shapes, embeddings and rotary settings), so that it evaluates them exactly as the target
// would; 0 when it is not such a prefix.
static int shared_layers(const ll_model *t, const ll_model *d) {
    const ll_hparams *a = &t->hp, *b = &d->hp;
    if (t->a != d->a || b->n_layer > a->n_layer || !ll_hparams_same(a, b) || t->n_ropes != d->n_ropes ||
        !same_weight(&t->tok_embd, &d->tok_embd))
        return 0;
    for (int r = 0; r < t->n_ropes; r++) {
        const ll_rope *x = &t->rope[r], *y = &d->rope[r];
        if (x->p.freq_base != y->p.freq_base || x->p.freq_scale != y->p.freq_scale || x->p.n_rot != y->p.n_rot ||
            x->p.mode != y->p.mode || x->ext_factor != y->ext_factor || x->attn_factor != y->attn_factor ||
            !x->p.freq_factors != !y->p.freq_factors ||
            !same_bytes(x->p.freq_factors, y->p.freq_factors, sizeof(float) * (size_t)(a->n_rot / 2)))
            return 0;
    }
    if (!t->rope_long != !d->rope_long || !same_bytes(t->rope_long, d->rope_long, sizeof(float) * (size_t)(a->n_rot / 2)))
        return 0;
    // Every role of every shared layer: the same presence, shape and bytes.
    for (int l = 0; l < b->n_layer; l++) {
        const ll_layer *x = &t->layers[l], *y = &d->layers[l];
        if (x->n_ff != y->n_ff || x->n_swa != y->n_swa || x->rope != y->rope) return 0;
        for (int r = 0; r < LL_ROLE_COUNT; r++) {
            const ll_weight *wx = &x->w[r], *wy = &y->w[r];
            if (!wx->data != !wy->data) return 0;
            if (!wx->data) continue;
            // A stack of experts is compared whole: n_expert blocks of n_out rows.
            ll_weight sx = *wx, sy = *wy;
            if (ll_roles[r].kind == LL_KIND_EXPERTS) sx.n_out *= a->n_expert, sy.n_out *= a->n_expert;
            if (ll_roles[r].kind == LL_KIND_VECTOR ? wx->n_in != wy->n_in ||
                                                         !same_bytes(wx->data, wy->data, sizeof(float) * (size_t)wx->n_in)
                                                   : !same_weight(&sx, &sy))
                return 0;
        }
    }
    return b->n_layer;
}

// Whether this step may take the shared layers from the draft: nothing else changes what
// either context computes (adapters, activation observers).
static bool sharing(const ll_spec *s) {
    return s->n_shared > 0 && s->tgt->n_loras == 0 && s->dft->n_loras == 0 && !s->tgt->act_hook &&
           !s->dft->act_hook;
}

// ---- lifetime -------------------------------------------------------------------------------

ll_spec *ll_spec_new(ll_context *target, ll_context *draft, const ll_spec_params *p,
                     char *err, size_t errlen) {
    ll_spec_params def = ll_spec_default_params();
    if (!p) p = &def;
    if (!target) {
        ll_set_err(err, errlen, "speculative: no target context");
        return NULL;
    }
    if (p->n_max < 0 || p->n_max > 1024 || p->n_min < 0 || !(p->p_min >= 0.0f && p->p_min <= 1.0f) ||
        !(p->margin_min >= 0.0f && p->margin_min <= 1e30f) ||
        (!draft && p->ngram <= 0)) {
        ll_set_err(err, errlen, "speculative: invalid parameters");
        return NULL;
    }
    if (ll_n_past(target) != 0 || (draft && ll_n_past(draft) != 0)) {
        ll_set_err(err, errlen, "speculative: the contexts must start empty");
        return NULL;
    }
    const ll_model *mt = ll_context_model(target);
    if (draft && ll_spec_check_vocab(mt, ll_context_model(draft), err, errlen) != 0) return NULL;

    ll_spec *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->tgt = target;
    s->dft = draft;
    s->par = *p;
    s->vocab = ll_model_get_vocab(mt);
    s->n_vocab = ll_vocab_n_tokens(s->vocab);
    s->n_vocab_dft = draft ? ll_vocab_n_tokens(ll_model_get_vocab(ll_context_model(draft))) : 0;
    s->n_ctx = ll_n_ctx(target);
    s->cap_hist = s->n_ctx + 1;
    s->hist = malloc((size_t)s->cap_hist * sizeof *s->hist);
    s->draft = malloc((size_t)(p->n_max + 1) * sizeof *s->draft);
    const size_t np = (size_t)(s->n_vocab > s->n_vocab_dft ? s->n_vocab : s->n_vocab_dft);
    s->p = malloc(np * sizeof *s->p);
    s->eog = malloc((size_t)s->n_vocab * sizeof *s->eog);
    s->ready = malloc((size_t)s->n_vocab * sizeof *s->ready);
    if (!s->hist || !s->draft || !s->p || !s->eog || !s->ready) goto oom;
    if (draft && p->n_max > 0) {
        s->q = malloc((size_t)p->n_max * (size_t)s->n_vocab_dft * sizeof *s->q);
        if (!s->q) goto oom;
    }
    for (ll_token t = 0; t < s->n_vocab; t++)
        if (ll_vocab_is_eog(s->vocab, t)) s->eog[s->n_eog++] = t;
    if (draft && p->exact && ll_kv_same_layout(target, draft) && ll_n_ctx(draft) >= s->n_ctx) {
        s->n_shared = shared_layers(mt, ll_context_model(draft));
        if (s->n_shared > 0) {
            s->resid = malloc((size_t)(p->n_max + 1) * (size_t)mt->hp.n_embd * sizeof *s->resid);
            if (!s->resid) goto oom;
        }
    }
    s->st.n_shared_layers = s->n_shared;
    if (draft && !p->full_draft_head && p->n_max > 0 && (s->head = ll_draft_head_new(draft))) {
        s->dlogits = malloc((size_t)s->n_vocab_dft * sizeof *s->dlogits);
        if (!s->dlogits) goto oom;
    }
    s->st.draft_head_copy = s->head != NULL;
    return s;
oom:
    ll_spec_free(s);
    ll_set_err(err, errlen, "speculative: out of memory");
    return NULL;
}

void ll_spec_free(ll_spec *s) {
    if (!s) return;
    ll_draft_head_free(s->head);
    free(s->dlogits);
    free(s->resid);
    free(s->hist);
    free(s->draft);
    free(s->q);
    free(s->p);
    free(s->eog);
    free(s->ready);
    free(s);
}

int ll_spec_n_past(const ll_spec *s) { return s->n_hist; }
const ll_token *ll_spec_tokens(const ll_spec *s) { return s->hist; }
ll_spec_stats ll_spec_get_stats(const ll_spec *s) { return s->st; }

// ---- feeding, shifting, rewinding -----------------------------------------------------------

int ll_spec_feed(ll_spec *s, const ll_token *toks, int n, char *err, size_t errlen) {
    if (n <= 0) return 0;
    if (n > s->n_ctx - s->n_hist) {
        ll_set_err(err, errlen, "context full: %d committed + %d new tokens exceed n_ctx %d",
                s->n_hist, n, s->n_ctx);
        return -1;
    }
    memcpy(s->hist + s->n_hist, toks, (size_t)n * sizeof *toks);
    s->n_hist += n;
    // Everything, in one batch as plain generation does; the last logits are kept for the
    // first step.
    const int have = ll_n_past(s->tgt);
    ll_set_logits_all(s->tgt, false);
    ll_set_exact_batches(s->tgt, false);
    if (ll_decode(s->tgt, s->hist + have, s->n_hist - have, err, errlen) != 0) {
        s->n_hist -= n;
        s->has_ready = false;
        return -1;
    }
    memcpy(s->ready, ll_get_logits(s->tgt), (size_t)s->n_vocab * sizeof *s->ready);
    s->has_ready = true;
    if (s->dft && sharing(s)) return 0; // the draft copies the target's rows when it drafts
    if (s->dft && s->n_hist - 1 > s->n_dft) {
        ll_set_logits_all(s->dft, false);
        if (ll_decode(s->dft, s->hist + s->n_dft, s->n_hist - 1 - s->n_dft, err, errlen) != 0) {
            ll_kv_truncate(s->dft, s->n_dft); // the draft catches up on the next step
            return 0;
        }
        s->n_dft = s->n_hist - 1;
    }
    return 0;
}

void ll_spec_shift(ll_spec *s, int n_keep, int n_discard) {
    if (n_keep < 0) n_keep = 0;
    if (n_keep >= s->n_hist || n_discard <= 0) return;
    if (n_discard > s->n_hist - n_keep) n_discard = s->n_hist - n_keep;
    ll_kv_shift(s->tgt, n_keep, n_discard);
    if (s->has_ready) { // the ready logits belong to the old positions: evaluate again
        s->has_ready = false;
        ll_kv_truncate(s->tgt, s->n_hist - n_discard - 1);
    }
    memmove(s->hist + n_keep, s->hist + n_keep + n_discard,
            (size_t)(s->n_hist - n_keep - n_discard) * sizeof *s->hist);
    s->n_hist -= n_discard;
    if (s->dft) {
        ll_kv_shift(s->dft, n_keep, n_discard); // keeps hist[0..n_keep) when it ends sooner
        s->n_dft = ll_n_past(s->dft);
        if (s->n_dft > s->n_hist - 1) {
            s->n_dft = s->n_hist - 1;
            ll_kv_truncate(s->dft, s->n_dft);
        }
    }
}

void ll_spec_rewind(ll_spec *s, int n_keep) {
    if (n_keep < 0) n_keep = 0;
    if (n_keep >= s->n_hist) return;
    s->n_hist = n_keep;
    const int keep = n_keep > 0 ? n_keep - 1 : 0;
    ll_kv_truncate(s->tgt, keep);
    s->has_ready = false;
    if (s->dft && s->n_dft > keep) {
        s->n_dft = keep;
        ll_kv_truncate(s->dft, keep);
    }
}

int ll_spec_sync(ll_spec *s, const ll_token *toks, int n, char *err, size_t errlen) {
    if (n < 1 || n > s->n_ctx || ll_n_past(s->tgt) != n) {
        ll_set_err(err, errlen, "speculative: the target's cache holds %d tokens, not %d",
                ll_n_past(s->tgt), n);
        return -1;
    }
    int same = 0;
    while (same < s->n_dft && same < n - 1 && s->hist[same] == toks[same]) same++;
    memcpy(s->hist, toks, (size_t)n * sizeof *toks);
    s->n_hist = n;
    memcpy(s->ready, ll_get_logits(s->tgt), (size_t)s->n_vocab * sizeof *s->ready);
    s->has_ready = true;
    if (s->dft) {
        s->n_dft = same < ll_n_past(s->dft) ? same : ll_n_past(s->dft);
        ll_kv_truncate(s->dft, s->n_dft);
    }
    return 0;
}

// ---- drafting -------------------------------------------------------------------------------

// How sure the draft is of its top token: its probability under the plain softmax of
// logits[0..n) (computed only when want_p), and its logit's lead over the runner-up's.
static void confidence(const float *l, int32_t n, bool want_p, float *p, float *lead) {
    float m1 = -INFINITY, m2 = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        if (l[i] > m1) {
            m2 = m1;
            m1 = l[i];
        } else if (l[i] > m2) {
            m2 = l[i];
        }
    }
    *lead = m1 == -INFINITY ? 0.0f : m2 == -INFINITY ? INFINITY : m1 - m2;
    *p = 1.0f;
    if (!want_p) return;
    if (m1 == -INFINITY) {
        *p = 0.0f;
        return;
    }
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) sum += expf(l[i] - m1);
    *p = (float)(1.0 / sum);
}

// Tokens the target must never get from the draft: ids it does not have, and end-of-generation
// tokens when they are banned.
static void mask_logits(const ll_spec *s, float *l, int32_t n) {
    for (int32_t i = s->n_vocab; i < n; i++) l[i] = -INFINITY;
    if (s->par.no_eog)
        for (int i = 0; i < s->n_eog; i++)
            if (s->eog[i] < n) l[s->eog[i]] = -INFINITY;
}

// Prompt lookup: the tokens that followed the most recent earlier occurrence of the last
// ngram committed tokens.
static int draft_lookup(ll_spec *s, int k_max) {
    const int N = s->par.ngram, n = s->n_hist;
    if (n < N + 1) return 0;
    const ll_token *suf = s->hist + n - N;
    for (int j = n - N - 1; j >= 0; j--) {
        if (s->hist[j] != suf[0] || memcmp(s->hist + j, suf, (size_t)N * sizeof *suf) != 0) continue;
        int start = j + N, k = n - start < k_max ? n - start : k_max;
        memcpy(s->draft + 1, s->hist + start, (size_t)k * sizeof *s->hist);
        return k;
    }
    return 0;
}

// Keeps the draft's residual stream for the token it just evaluated as row i (the token at
// position n_hist - 1 + i); rows are valid while they run without a gap from 0.
static void save_resid(ll_spec *s, int i) {
    const int E = s->tgt->model->hp.n_embd;
    const float *x = ll_last_residual(s->dft);
    if (!x || i != s->n_resid) return;
    memcpy(s->resid + (size_t)i * E, x, sizeof(float) * (size_t)E);
    s->n_resid = i + 1;
}

// Whether the head copy makes the draft's logits (not with adapters on the draft: they may
// adapt its head); then its decodes skip their own.
static bool head_copy_on(const ll_spec *s) { return s->head && s->dft->n_loras == 0; }

// The draft's logits for the token it decoded last.
static float *draft_logits(ll_spec *s) {
    if (head_copy_on(s) && ll_draft_head_logits(s->head, s->dft, s->dlogits)) return s->dlogits;
    return ll_get_logits(s->dft);
}

// The draft model proposes up to k_max tokens into draft[1..], its distributions into q.
// Random draws come from smp (the draft sampler's RNG is never used, so the two streams
// cannot be correlated). Returns the count, or -1 on a decode error.
static int draft_model(ll_spec *s, ll_sampler *smp, ll_sampler *dsmp, int k_max, int budget,
                       char *err, size_t errlen) {
    // Catch up with the committed tokens the draft has not seen (at least the last one).
    ll_set_logits_all(s->dft, false);
    const bool share = sharing(s);
    if (share) {
        // The target's own rows for what it holds; the rest with one-token arithmetic.
        const int tp = ll_n_past(s->tgt), upto = tp < s->n_hist - 1 ? tp : s->n_hist - 1;
        if (s->n_dft < upto) {
            ll_kv_truncate(s->dft, s->n_dft);
            ll_kv_copy_rows(s->dft, s->tgt, s->n_shared, s->n_dft, upto);
            s->n_dft = ll_n_past(s->dft);
        }
        ll_set_exact_batches(s->dft, true);
    }
    ll_set_no_logits(s->dft, head_copy_on(s));
    const int rc = ll_decode(s->dft, s->hist + s->n_dft, s->n_hist - s->n_dft, err, errlen);
    ll_set_no_logits(s->dft, false);
    ll_set_exact_batches(s->dft, false);
    if (rc != 0) return -1;
    s->n_dft = s->n_hist;
    if (share) {
        if (ll_n_past(s->tgt) >= s->n_hist) { // the target holds the last token too: its row
            ll_kv_copy_rows(s->dft, s->tgt, s->n_shared, s->n_hist - 1, s->n_hist);
            s->n_resid = 1; // (row 0 is not verified then)
        } else {
            save_resid(s, 0);
        }
    }
    // Roll the draft sampler back afterwards (penalty history, grammar state); when it cannot
    // save, it just does not see the drafted tokens (worse drafts, same output distribution).
    ll_sampler_state *saved = ll_sampler_has_state(dsmp) ? ll_sampler_save(dsmp) : NULL;
    const int32_t nv = s->n_vocab_dft;
    int k = 0;
    while (k < k_max) {
        float *l = draft_logits(s);
        if (!l) break; // (the head copy could not get memory, and the decode made no logits)
        mask_logits(s, l, nv);
        float conf, lead;
        confidence(l, nv, s->par.p_min > 0.0f, &conf, &lead);
        float *q = s->q + (size_t)k * nv;
        if (budget >= 0) ll_sampler_grammar_set_budget(dsmp, budget - k > 0 ? budget - k : 0);
        ll_sampler_probs(dsmp, l, q);
        ll_token d = ll_sampler_draw(smp, q, nv);
        if (d < 0) break; // the draft's grammar allows nothing
        s->draft[1 + k++] = d;
        const bool last = k == k_max || conf < s->par.p_min || lead < s->par.margin_min ||
                          ll_vocab_is_eog(s->vocab, d);
        // With shared layers the last draft is evaluated too: the target takes its rows.
        if (last && !share) break;
        if (saved) ll_sampler_accept(dsmp, d);
        ll_set_no_logits(s->dft, last || head_copy_on(s)); // (the last one's would go unused)
        const int drc = ll_decode(s->dft, &d, 1, err, errlen);
        ll_set_no_logits(s->dft, false);
        if (drc != 0) { // e.g. a smaller draft context
            k = share && last ? k : -1;
            break;
        }
        if (share) save_resid(s, k);
        if (last) break;
    }
    if (saved) {
        ll_sampler_restore(dsmp, saved);
        ll_sampler_state_free(dsmp, saved);
    }
    return k;
}

// ---- the step -------------------------------------------------------------------------------

int ll_spec_step(ll_spec *s, ll_sampler *smp, ll_sampler *dsmp, int budget, ll_token *out,
                 int n_out, char *err, size_t errlen) {
    const int n = s->n_hist;
    if (n < 1) {
        ll_set_err(err, errlen, "speculative: nothing fed yet");
        return -1;
    }
    if (n > s->n_ctx) {
        ll_set_err(err, errlen, "context full: %d tokens for n_ctx %d", n, s->n_ctx);
        return -1;
    }
    if (n_out < 1) return 0;
    if (s->dft && !dsmp) {
        ll_set_err(err, errlen, "speculative: the draft model needs its sampler");
        return -1;
    }
    // Room: the target decodes n-1+1+k <= n_ctx; at most n_out tokens are committed.
    int k_max = s->par.n_max;
    if (k_max > s->n_ctx - n) k_max = s->n_ctx - n;
    if (k_max > n_out - 1) k_max = n_out - 1;
    if (s->dft && k_max > ll_n_ctx(s->dft) - n) k_max = ll_n_ctx(s->dft) - n;
    if (budget >= 0 && k_max > budget - 1) k_max = budget - 1 > 0 ? budget - 1 : 0;

    double t0 = ll_now_ms();
    int k = 0;
    s->n_resid = 0; // (the draft fills these rows when it runs)
    if (k_max > 0) {
        k = s->dft ? draft_model(s, smp, dsmp, k_max, budget, err, errlen) : draft_lookup(s, k_max);
        if (k < 0) return -1;
        if (k < s->par.n_min) k = 0;
    }
    double t1 = ll_now_ms();
    s->st.t_draft_ms += t1 - t0;

    // Verify: the last committed token (unless its logits are ready) and the draft in one
    // batch-invariant decode. Row j of it gives the distribution at position n + j - off.
    const int off = s->has_ready ? 0 : 1;
    s->draft[0] = s->hist[n - 1];
    if (k + off > 0) {
        ll_set_logits_all(s->tgt, k + off > 1);
        ll_set_exact_batches(s->tgt, s->par.exact);
        int rc;
        const int r0 = 1 - off; // resid row of the first token to verify
        if (s->dft && sharing(s) && s->n_resid >= k + 1 && ll_n_past(s->tgt) == n - off) {
            // The draft evaluated the shared layers for all of them: their rows, its stream.
            ll_kv_copy_rows(s->tgt, s->dft, s->n_shared, n - off, n + k);
            ll_kv_truncate(s->tgt, n - off);
            rc = ll_decode_from_layer(s->tgt, s->draft + 1 - off, k + off, s->n_shared,
                                      s->resid + (size_t)r0 * s->tgt->model->hp.n_embd, err, errlen);
        } else {
            rc = ll_decode(s->tgt, s->draft + 1 - off, k + off, err, errlen);
        }
        ll_set_exact_batches(s->tgt, false); // the context is left as it came (logits_all off)
        ll_set_logits_all(s->tgt, false);
        if (rc != 0) return -1;
    }

    int n_new = 0, n_acc = 0, rc = 0;
    for (int i = 0; i <= k; i++) {
        const int row = i - 1 + off;
        float *l = row < 0 ? s->ready : k + off > 1 ? ll_get_logits_ith(s->tgt, row) : ll_get_logits(s->tgt);
        mask_logits(s, l, s->n_vocab);
        if (budget >= 0) ll_sampler_grammar_set_budget(smp, budget - n_new > 0 ? budget - n_new : 0);
        ll_token t;
        bool accepted = false;
        if (i < k) {
            const ll_token d = s->draft[1 + i];
            ll_sampler_probs(smp, l, s->p);
            const float qd = s->dft ? s->q[(size_t)i * s->n_vocab_dft + d] : 1.0f;
            const float pd = s->p[d];
            // Accept with probability min(1, p/q); u < 1 always, so p >= q always accepts.
            accepted = qd > 0.0f && ll_sampler_uniform(smp) * qd < pd;
            if (accepted) {
                t = d;
            } else {
                // The residual max(0, p - q); q is one-hot at d for a lookup draft.
                if (s->dft) {
                    const float *q = s->q + (size_t)i * s->n_vocab_dft;
                    const int32_t m = s->n_vocab < s->n_vocab_dft ? s->n_vocab : s->n_vocab_dft;
                    for (int32_t j = 0; j < m; j++) s->p[j] = s->p[j] > q[j] ? s->p[j] - q[j] : 0.0f;
                } else {
                    s->p[d] = 0.0f;
                }
                t = ll_sampler_draw(smp, s->p, s->n_vocab);
                // Rounding can empty the residual when p and q nearly agree: then p itself.
                if (t < 0) {
                    ll_sampler_probs(smp, l, s->p);
                    t = ll_sampler_draw(smp, s->p, s->n_vocab);
                }
            }
        } else {
            t = ll_sampler_sample(smp, l); // after the whole draft: the target's own token
        }
        if (t < 0) {
            ll_set_err(err, errlen, "%s", ll_sampler_grammar_why(smp));
            rc = -1;
            break;
        }
        ll_sampler_accept(smp, t);
        out[n_new++] = t;
        s->hist[s->n_hist++] = t;
        if (accepted) n_acc++;
        if (!accepted || n_new == n_out || ll_vocab_is_eog(s->vocab, t) ||
            ll_sampler_grammar_status(smp) == LL_GRAMMAR_DONE)
            break;
    }
    if (dsmp)
        for (int i = 0; i < n_new; i++) ll_sampler_accept(dsmp, out[i]);

    // The target holds hist[0..n) + draft[1..k]; keep what was committed but the last.
    ll_kv_truncate(s->tgt, s->n_hist - 1);
    s->has_ready = false;
    if (s->dft) {
        // The draft decoded hist[0..n) + its first drafts; the accepted ones stay valid.
        int keep = n + n_acc;
        if (keep > ll_n_past(s->dft)) keep = ll_n_past(s->dft);
        if (keep > s->n_hist - 1) keep = s->n_hist - 1;
        s->n_dft = keep;
        ll_kv_truncate(s->dft, keep);
    }
    s->st.n_steps++;
    s->st.n_drafted += k;
    s->st.n_accepted += n_acc;
    s->st.n_tokens += n_new;
    s->st.t_verify_ms += ll_now_ms() - t1;
    return rc < 0 ? -1 : n_new;
}
