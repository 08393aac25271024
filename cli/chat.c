// A conversation with a model, evaluated incrementally (see chat.h).
#include "chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "json.h"
#include "progress.h"
#include "reasoning.h"
#include "speculative.h"

// ---- small helpers --------------------------------------------------------------------------

typedef struct {
    ll_token *t;
    int n, cap;
} tokvec;

static bool tv_reserve(tokvec *v, int extra) {
    if (v->n + extra <= v->cap) return true;
    int cap = v->cap ? v->cap : 256;
    while (cap < v->n + extra) cap *= 2;
    ll_token *nt = realloc(v->t, sizeof *nt * (size_t)cap);
    if (!nt) return false;
    v->t = nt;
    v->cap = cap;
    return true;
}

// Appends the tokens of s[0..n) (no BOS/EOS); special: parse special-token text.
static bool tokenize_into(const ll_vocab *v, const char *s, size_t n, bool special, tokvec *out) {
    if (n == 0) return true;
    if (n > INT32_MAX / 2) return false;
    int guess = (int)n + 8;
    for (;;) {
        if (!tv_reserve(out, guess)) return false;
        int32_t got = ll_tokenize(v, s, (int32_t)n, out->t + out->n, out->cap - out->n, false, special);
        if (got < 0) return false;
        if (got <= out->cap - out->n) {
            out->n += got;
            return true;
        }
        guess = got;
    }
}


// ---- messages -------------------------------------------------------------------------------

static bool push_msg(chat *c, const char *role, const char *content) {
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? c->cap_msgs * 2 : 16;
        chat_msg *nm = realloc(c->msgs, sizeof *nm * cap);
        if (!nm) return false;
        c->msgs = nm;
        c->cap_msgs = cap;
    }
    chat_msg m = {strdup(role), strdup(content), NULL, -1};
    if (!m.role || !m.content) {
        free(m.role);
        free(m.content);
        return false;
    }
    c->msgs[c->n_msgs++] = m;
    return true;
}

static void remove_msg(chat *c, size_t i) {
    free(c->msgs[i].reasoning);
    free(c->msgs[i].role);
    free(c->msgs[i].content);
    memmove(c->msgs + i, c->msgs + i + 1, sizeof *c->msgs * (c->n_msgs - i - 1));
    c->n_msgs--;
}

static void forget_cache_text(chat *c) {
    free(c->cache_text);
    c->cache_text = NULL;
    c->reply_in_cache = false;
}

const char *chat_system(const chat *c) {
    return c->n_msgs && !strcmp(c->msgs[0].role, "system") ? c->msgs[0].content : NULL;
}

bool chat_set_system(chat *c, const char *text) {
    bool has = chat_system(c) != NULL;
    forget_cache_text(c);
    if (!text || !*text) {
        if (has) remove_msg(c, 0);
        return true;
    }
    if (has) {
        char *t = strdup(text);
        if (!t) return false;
        free(c->msgs[0].content);
        c->msgs[0].content = t;
        return true;
    }
    if (!push_msg(c, "system", text)) return false;
    chat_msg m = c->msgs[c->n_msgs - 1]; // move it to the front
    memmove(c->msgs + 1, c->msgs, sizeof *c->msgs * (c->n_msgs - 1));
    c->msgs[0] = m;
    return true;
}

void chat_clear(chat *c) {
    size_t keep = chat_system(c) ? 1 : 0;
    while (c->n_msgs > keep) remove_msg(c, c->n_msgs - 1);
    forget_cache_text(c);
    c->n_cache = 0;
    ll_kv_clear(c->ctx);
}

// ---- init -----------------------------------------------------------------------------------

bool chat_set_sampling(chat *c, const ll_sampler_params *sp) {
    ll_sampler *s = ll_sampler_new(sp, ll_vocab_n_tokens(c->vocab));
    if (!s) return false;
    if (c->spec && !spec_set_sampling(c->spec, sp)) {
        ll_sampler_free(s);
        return false;
    }
    if (c->smp) ll_sampler_copy_rng(s, c->smp); // a settings change is not a new seed
    ll_sampler_free(c->smp);
    c->smp = s;
    c->sp = *sp;
    return true;
}

static char *token_text(const ll_vocab *v, ll_token t) {
    const char *s = t >= 0 ? ll_token_get_text(v, t) : NULL;
    return strdup(s ? s : "");
}

bool chat_init(chat *c, ll_model *m, ll_context *ctx, chat_tmpl *tmpl, const ll_sampler_params *sp,
               int n_predict, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->model = m;
    c->ctx = ctx;
    c->vocab = ll_model_get_vocab(m);
    c->tmpl = tmpl && chat_tmpl_active(tmpl) ? tmpl : NULL;
    c->n_predict = n_predict;
    c->bos = token_text(c->vocab, ll_vocab_bos(c->vocab));
    c->eos = token_text(c->vocab, ll_vocab_eos(c->vocab));
    if (!c->bos || !c->eos || !chat_set_sampling(c, sp)) goto oom;
    // Control-token texts, to keep user text that spells one from becoming that token.
    int nv = ll_vocab_n_tokens(c->vocab);
    for (ll_token t = 0; t < nv; t++) {
        if (!ll_vocab_is_control(c->vocab, t)) continue;
        const char *s = ll_token_get_text(c->vocab, t);
        if (!s || strlen(s) < 2) continue;
        char **ns = realloc(c->specials, sizeof *ns * (size_t)(c->n_specials + 1));
        if (!ns) goto oom;
        c->specials = ns;
        if (!(c->specials[c->n_specials] = strdup(s))) goto oom;
        c->n_specials++;
    }
    return true;
oom:
    snprintf(err, errlen, "out of memory");
    chat_free(c);
    return false;
}

void chat_free(chat *c) {
    if (c->smp) ll_sampler_free(c->smp);
    ll_grammar_free(c->grammar);
    for (size_t i = 0; i < c->n_msgs; i++) {
        free(c->msgs[i].role);
        free(c->msgs[i].content);
        free(c->msgs[i].reasoning);
    }
    free(c->msgs);
    free(c->cache);
    free(c->cache_text);
    for (int i = 0; i < c->n_specials; i++) free(c->specials[i]);
    free(c->specials);
    free(c->bos);
    free(c->eos);
    memset(c, 0, sizeof *c);
}

// ---- rendering and tokenizing ---------------------------------------------------------------

typedef struct {
    char *text;
    size_t len;
    ll_chat_span *spans;
    size_t n_spans;
} rendered;

static void rendered_free(rendered *r) {
    free(r->text);
    free(r->spans);
    memset(r, 0, sizeof *r);
}

// Without a template, the conversation (its first n_msgs messages) is one running text; a user
// message starts on a new line after a reply.
static bool render_plain(const chat *c, size_t n_msgs, rendered *r) {
    size_t cap = 1;
    for (size_t i = 0; i < n_msgs; i++) cap += strlen(c->msgs[i].content) + 1;
    r->text = malloc(cap);
    r->spans = malloc(sizeof *r->spans * (n_msgs ? n_msgs : 1));
    if (!r->text || !r->spans) return false;
    size_t n = 0;
    for (size_t i = 0; i < n_msgs; i++) {
        if (!strcmp(c->msgs[i].role, "user") && n && r->text[n - 1] != '\n' && !c->plain_join) r->text[n++] = '\n';
        size_t l = strlen(c->msgs[i].content);
        r->spans[r->n_spans++] = (ll_chat_span){n, l};
        memcpy(r->text + n, c->msgs[i].content, l);
        n += l;
    }
    r->text[n] = 0;
    r->len = n;
    return true;
}

// The first n messages through the template.
static bool render_n(chat *c, size_t n, bool add_ass, rendered *r) {
    memset(r, 0, sizeof *r);
    if (chat_tmpl_render(c->tmpl, c->msgs, n, add_ass, c->bos, c->eos, &r->text, &r->spans, &r->n_spans,
                         c->render_err, sizeof c->render_err) != 0)
        return false;
    r->len = strlen(r->text);
    return true;
}

static bool render(chat *c, rendered *r) {
    if (!c->tmpl) {
        memset(r, 0, sizeof *r);
        snprintf(c->render_err, sizeof c->render_err, "out of memory");
        return render_plain(c, c->n_msgs, r);
    }
    return render_n(c, c->n_msgs, true, r);
}

static bool has_special(const chat *c, const char *s, size_t n) {
    for (int i = 0; i < c->n_specials; i++)
        if (memmem(s, n, c->specials[i], strlen(c->specials[i]))) return true;
    return false;
}

// Tokens of r->text[from..): template text may hold special tokens, message contents never do.
// A content span is tokenized on its own only when it spells a special token (so ordinary
// text tokenizes exactly as the whole string would).
static bool tokenize_rendered(const chat *c, const rendered *r, size_t from, tokvec *out) {
    bool special = c->tmpl != NULL;
    size_t run = from;
    for (size_t i = 0; special && i < r->n_spans; i++) {
        size_t s0 = r->spans[i].off, s1 = s0 + r->spans[i].len;
        if (s1 <= from) continue;
        if (s0 < from) s0 = from;
        if (!has_special(c, r->text + s0, s1 - s0)) continue;
        if (!tokenize_into(c->vocab, r->text + run, s0 - run, true, out)) return false;
        if (!tokenize_into(c->vocab, r->text + s0, s1 - s0, false, out)) return false;
        run = s1;
    }
    return tokenize_into(c->vocab, r->text + run, r->len - run, special, out);
}

// The full token sequence, with BOS in front when the vocab wants one and the text had none.
// Plain continuation (no template) tokenizes message by message, each with the separator
// before it, as a later turn tokenizes its own message: then starts[i] says where message i's
// tokens begin, so that old turns can be dropped by position (shift_out_plain).
static bool tokenize_full(const chat *c, const rendered *r, tokvec *out, int *starts) {
    ll_token bos = ll_vocab_bos(c->vocab);
    if (ll_vocab_add_bos(c->vocab) && bos >= 0) {
        if (!tv_reserve(out, 1)) return false;
        out->t[out->n++] = bos;
    }
    int first = out->n;
    if (!c->tmpl && starts && r->n_spans == c->n_msgs) {
        for (size_t i = 0, from = 0; i < r->n_spans; i++) {
            const size_t to = i + 1 < r->n_spans ? r->spans[i].off + r->spans[i].len : r->len;
            starts[i] = out->n;
            if (!tokenize_into(c->vocab, r->text + from, to - from, false, out)) return false;
            from = to;
        }
        return true;
    }
    if (starts) starts[0] = -1; // not known
    if (!tokenize_rendered(c, r, 0, out)) return false;
    if (first == 1 && out->n > 1 && out->t[1] == bos) { // the template wrote BOS itself
        memmove(out->t, out->t + 1, sizeof *out->t * (size_t)(out->n - 1));
        out->n--;
    }
    return true;
}

static bool shift_out_plain(chat *c, size_t f, size_t g);

// Drops the oldest exchange after the system message (never the last message). False when
// there is nothing left to drop.
static bool drop_oldest(chat *c) {
    size_t f = chat_system(c) ? 1 : 0;
    if (f + 1 >= c->n_msgs) return false;
    size_t g = f + 1; // the first message kept after the dropped ones
    while (g + 1 < c->n_msgs && strcmp(c->msgs[g].role, "user") != 0) g++;
    if (!c->tmpl && shift_out_plain(c, f, g)) return true;
    while (g-- > f) remove_msg(c, f);
    forget_cache_text(c);
    c->dropped = true;
    return true;
}

// Plain continuation keeps the cache's tokens as the conversation (as llama-cli does): dropping
// messages [f, g) removes their tokens' positions and re-rotates the later keys, and the kept
// text is not tokenized again (it would tokenize differently at its new start, e.g. SPM's
// leading space). False, changing nothing, when the cache does not hold those messages'
// tokens at known places.
static bool shift_out_plain(chat *c, size_t f, size_t g) {
    const size_t last = c->n_msgs - 1; // the new message, not evaluated yet
    if (!c->cache_text || !c->reply_in_cache || c->n_cache != ll_n_past(c->ctx)) return false;
    const int s = c->msgs[f].tok_start;
    const int e = g < last ? c->msgs[g].tok_start : c->n_cache;
    if (s < 0 || e <= s || e > c->n_cache) return false;
    for (size_t i = g; i < last; i++)
        if (c->msgs[i].tok_start < e) return false;
    const int d = e - s;
    if (e < c->n_cache) ll_kv_shift(c->ctx, s, d);
    else ll_kv_truncate(c->ctx, s);
    memmove(c->cache + s, c->cache + e, sizeof *c->cache * (size_t)(c->n_cache - e));
    c->n_cache -= d;
    c->turn_shifted += d;
    for (size_t i = g; i < last; i++) c->msgs[i].tok_start -= d;
    for (size_t i = f; i < g; i++) remove_msg(c, f);
    // The cache now stands for the kept messages before the new one.
    rendered r = {0};
    bool ok = render_plain(c, c->n_msgs - 1, &r);
    free(c->cache_text);
    c->cache_text = ok ? r.text : NULL;
    if (!ok) {
        free(r.text);
        c->reply_in_cache = false;
    }
    free(r.spans);
    return true;
}

// After dropping turns, the cache is P X S and the new conversation P S ...: removes X's
// positions and re-rotates S's keys (ll_kv_shift, as the one-shot context shift does), so that
// only what follows S is evaluated. Leaves the cache alone when it has no such shape (e.g. the
// reply as generated tokenizes differently).
static void shift_out_dropped(chat *c, const tokvec *tv) {
    const ll_token *C = c->cache;
    const int n = c->n_cache;
    int a = 0;
    while (a < n && a < tv->n && C[a] == tv->t[a]) a++;
    if (a == 0 || a >= n) return;
    for (int d = 1; a + d < n; d++) {
        const int s_len = n - a - d;
        if (C[a + d] != tv->t[a] || a + s_len >= tv->n) continue; // keep one token to evaluate
        if (memcmp(C + a + d, tv->t + a, sizeof *C * (size_t)s_len) != 0) continue;
        ll_kv_shift(c->ctx, a, d);
        memmove(c->cache + a, c->cache + a + d, sizeof *C * (size_t)s_len);
        c->n_cache -= d;
        c->turn_shifted += d;
        return;
    }
}

static bool cache_push(chat *c, const ll_token *t, int n) {
    if (c->n_cache + n > c->cap_cache) {
        int cap = c->cap_cache ? c->cap_cache : 512;
        while (cap < c->n_cache + n) cap *= 2;
        ll_token *nc = realloc(c->cache, sizeof *nc * (size_t)cap);
        if (!nc) return false;
        c->cache = nc;
        c->cap_cache = cap;
    }
    memcpy(c->cache + c->n_cache, t, sizeof *t * (size_t)n);
    c->n_cache += n;
    return true;
}

// When the template rewrites the reply it just generated (e.g. trims it), the cache still holds
// the reply as generated (as llama-cli does): what is new is the end of that assistant turn
// in the template (e.g. "<|eot_id|>") and everything after it. Sets *ok and returns true when
// this applies (the template renders the conversation before the new message as a prefix).
static bool tail_delta(chat *c, const rendered *r, tokvec *tv, bool *ok) {
    *ok = true;
    if (!c->tmpl || !c->reply_in_cache || c->n_cache == 0 || c->n_msgs < 2) return false;
    const chat_msg *reply = &c->msgs[c->n_msgs - 2];
    if (strcmp(reply->role, "assistant") != 0) return false;
    rendered a;
    if (!render_n(c, c->n_msgs - 1, false, &a)) return false;
    bool applies = a.n_spans > 0 && a.len < r->len && !memcmp(a.text, r->text, a.len);
    size_t end = 0;
    if (applies) { // the last content span must be (part of) the reply
        const ll_chat_span *sp = &a.spans[a.n_spans - 1];
        end = sp->off + sp->len;
        applies = sp->len > 0 && memmem(reply->content, strlen(reply->content), a.text + sp->off, sp->len);
    }
    if (applies) *ok = tokenize_into(c->vocab, a.text + end, a.len - end, true, tv) && tokenize_rendered(c, r, a.len, tv);
    rendered_free(&a);
    return applies;
}

// Plain continuation: where the messages' tokens start in the cache, for dropping them later
// (shift_out_plain). Evaluating what followed the cached text, the new message starts where
// that evaluation did; a whole new tokenization says where each starts (tokenize_full).
static void note_plain_starts(chat *c, bool delta, int new_start, const int *starts) {
    if (delta) {
        c->msgs[c->n_msgs - 1].tok_start = new_start;
        return;
    }
    for (size_t i = 0; i < c->n_msgs; i++) c->msgs[i].tok_start = starts && starts[0] >= 0 ? starts[i] : -1;
}

// Brings the KV cache to the rendered conversation: evaluates only what is new.
// Returns 0, -1 on errors, 1 when the tokens and `reserve` more do not fit in the context.
static int evaluate(chat *c, const rendered *r, int reserve, char *err, size_t errlen) {
    const int n_ctx = ll_n_ctx(c->ctx);
    tokvec tv = {0};
    int *starts = NULL; // plain continuation, tokenized anew: where each message starts
    bool ok, delta = c->cache_text && c->n_cache > 0 && r->len > strlen(c->cache_text) &&
                     !strncmp(r->text, c->cache_text, strlen(c->cache_text));
    if (delta) {
        ok = tokenize_rendered(c, r, strlen(c->cache_text), &tv);
    } else if ((delta = tail_delta(c, r, &tv, &ok))) {
        // ok was set by tail_delta
    } else {
        starts = c->tmpl ? NULL : malloc(sizeof *starts * (c->n_msgs ? c->n_msgs : 1));
        ok = (c->tmpl || starts) && tokenize_full(c, r, &tv, starts);
    }
    if (!ok) {
        free(tv.t);
        free(starts);
        snprintf(err, errlen, "cannot tokenize the conversation (out of memory)");
        return -1;
    }
    int total = delta ? c->n_cache + tv.n : tv.n;
    if (total + reserve > n_ctx) {
        free(tv.t);
        free(starts);
        snprintf(err, errlen, "the message needs %d tokens, the context has %d (use a larger -c)", total, n_ctx);
        return 1; // the caller drops a turn and tries again
    }
    double t0 = cli_now();
    int rc = 0;
    ll_token *todo = tv.t;
    int n_todo = tv.n;
    if (!delta) {
        if (c->dropped) shift_out_dropped(c, &tv);
        c->dropped = false;
        int k = 0;
        while (k < c->n_cache && k < tv.n && c->cache[k] == tv.t[k]) k++;
        if (k == tv.n) k--; // re-evaluate the last token for its logits
        if (k < 0) k = 0;
        ll_kv_truncate(c->ctx, k);
        k = ll_n_past(c->ctx); // (sliding-window layers may have had to start over)
        c->n_cache = k;
        todo = tv.t + k;
        n_todo = tv.n - k;
    }
    const int new_start = c->n_cache;
    if (n_todo > 0 && ll_decode(c->ctx, todo, n_todo, err, errlen) != 0) rc = -1;
    else if (!cache_push(c, todo, n_todo)) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc == 0 && !c->tmpl) note_plain_starts(c, delta, new_start, starts);
    free(starts);
    // A failed decode leaves the cache as it was (e.g. Ctrl-C); otherwise its state is unknown:
    // start over next time.
    if (rc != 0 && ll_n_past(c->ctx) != c->n_cache) {
        ll_kv_clear(c->ctx);
        c->n_cache = 0;
        forget_cache_text(c);
    }
    c->turn_prompt_tokens = n_todo;
    c->turn_prompt_ms = (cli_now() - t0) * 1e3;
    free(tv.t);
    return rc;
}

// ---- a turn ---------------------------------------------------------------------------------

// The reply joins the conversation as the template expects it: templates that read
// reasoning_content get the thinking there and the answer as the content; the others get the
// reply as generated (reasoning templates drop the thinking of earlier turns themselves).
static bool push_reply(chat *c, const char *reply) {
    const bool harmony = c->tmpl && c->tmpl->harmony; // gpt-oss: channels, and the template refuses them in content
    if (!harmony && (!c->tmpl || !c->tmpl->reads_reasoning || !strstr(reply, "</think>")))
        return push_msg(c, "assistant", reply);
    char *thinking, *answer = harmony ? reasoning_split_harmony(reply, &thinking) : reasoning_split(reply, &thinking);
    if (harmony && answer && !thinking) { // no analysis: the answer alone
        bool ok = push_msg(c, "assistant", answer);
        free(answer);
        return ok;
    }
    bool ok = answer && thinking && push_msg(c, "assistant", answer);
    if (ok) c->msgs[c->n_msgs - 1].reasoning = thinking;
    else free(thinking);
    free(answer);
    return ok;
}

typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

static bool sb_add(strbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) return false;
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return true;
}

// The decode's abort callback: ud is chat_turn's stop flag.
static bool stop_requested(void *ud) { return *(volatile sig_atomic_t *)ud != 0; }

// Renders the conversation with the new user message and brings the cache to it, dropping the
// oldest turns while it does not fit. Returns 0 (r holds the rendering), or -1 with err set.
static int evaluate_turn(chat *c, rendered *r, char *err, size_t errlen) {
    const int n_ctx0 = ll_n_ctx(c->ctx);
    // Room kept for the reply; only given up when no older turn is left to drop.
    int reserve = c->n_predict > 0 ? (c->n_predict < n_ctx0 / 2 ? c->n_predict : n_ctx0 / 2) : n_ctx0 / 4;
    for (;;) {
        if (!render(c, r)) {
            rendered_free(r);
            snprintf(err, errlen, "cannot render the conversation: %s", c->render_err);
            return -1;
        }
        int e = evaluate(c, r, reserve, err, errlen);
        if (e == 0) return 0;
        rendered_free(r);
        if (e > 0 && drop_oldest(c)) {
            c->turn_dropped++;
            continue;
        }
        if (e > 0 && reserve > 4) {
            reserve = 4;
            continue;
        }
        forget_cache_text(c);
        return -1;
    }
}

int chat_turn(chat *c, const char *user, volatile sig_atomic_t *stop, chat_emit_fn emit, void *ud,
              char *err, size_t errlen) {
    c->turn_prompt_tokens = c->turn_gen_tokens = c->turn_dropped = c->turn_shifted = 0;
    c->turn_prompt_ms = c->turn_gen_ms = 0;
    c->turn_ctx_full = c->turn_reverse = c->turn_thinking = false;
    c->turn_grammar_stuck = NULL;
    if (!push_msg(c, "user", user)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    // *stop, once set during the evaluation of the message, also abandons it (between chunks
    // and layers of a long one).
    if (!*stop) ll_set_abort_callback(c->ctx, stop_requested, (void *)stop);
    rendered r;
    const int e = evaluate_turn(c, &r, err, errlen);
    ll_set_abort_callback(c->ctx, NULL, NULL);
    if (e != 0) {
        remove_msg(c, c->n_msgs - 1);
        return -1;
    }

    // Penalties look at the conversation so far. With speculative decoding the draft's sampler
    // mirrors the target's, and the drafter takes over from the tokens now in the cache.
    cli_spec *cs = c->spec;
    ll_sampler *dsmp = cs ? spec_draft_sampler(cs) : NULL;
    ll_sampler_reset(c->smp);
    for (int i = 0; i < c->n_cache; i++) ll_sampler_accept(c->smp, c->cache[i]);
    if (dsmp) {
        ll_sampler_reset(dsmp);
        for (int i = 0; i < c->n_cache; i++) ll_sampler_accept(dsmp, c->cache[i]);
    }
    // Each reply starts the grammar afresh; it sees only the reply's tokens.
    if ((c->grammar && (ll_sampler_set_grammar(c->smp, c->vocab, c->grammar, err, errlen) != 0 ||
                        (dsmp && ll_sampler_set_grammar(dsmp, c->vocab, c->grammar, err, errlen) != 0))) ||
        (cs && spec_sync(cs, c->cache, c->n_cache, err, errlen) != 0)) {
        remove_msg(c, c->n_msgs - 1);
        rendered_free(&r);
        return -1;
    }

    c->turn_thinking = c->tmpl && reasoning_open_at_end(r.text);
    strbuf reply = {0};
    ll_detok dt = {0};
    char piece[256];
    const int n_ctx = ll_n_ctx(c->ctx);
    int rc = 0;
    bool out_ok = true;
    double t0 = cli_now();
    const int reply_start = c->n_cache;
    sb_add(&reply, "", 0);
    while (out_ok && !*stop) {
        if (c->n_predict >= 0 && c->turn_gen_tokens >= c->n_predict) break;
        if (c->n_cache >= n_ctx) { // the cache holds every token so far (speculative: but one)
            c->turn_ctx_full = true;
            break;
        }
        // Tokens left for the reply: the grammar plans to finish in them, a speculative step
        // makes no more than these.
        int left = n_ctx - c->n_cache;
        if (c->n_predict >= 0 && c->n_predict - c->turn_gen_tokens < left) left = c->n_predict - c->turn_gen_tokens;
        ll_token t;
        if (cs) { // the samplers have accepted t
            int sr = spec_next(cs, c->smp, left, &t, err, errlen);
            if (sr != SPEC_OK) {
                if (c->grammar && strstr(err, "grammar")) { // allows nothing here, as below
                    c->turn_grammar_stuck = ll_sampler_grammar_why(c->smp);
                    break;
                }
                rc = -1;
                break;
            }
        } else {
            if (c->grammar) ll_sampler_grammar_set_budget(c->smp, left);
            t = ll_sampler_sample(c->smp, ll_get_logits(c->ctx));
            if (t < 0) { // the grammar allows nothing here (or cannot tell)
                c->turn_grammar_stuck = ll_sampler_grammar_why(c->smp);
                break;
            }
            ll_sampler_accept(c->smp, t);
        }
        if (ll_vocab_is_eog(c->vocab, t)) break;
        // (harmony replies keep their special tokens: they mark the channels, for the filter and the split)
        size_t n = ll_detok_push(&dt, c->vocab, t, c->tmpl && c->tmpl->harmony, piece, sizeof piece);
        if (!sb_add(&reply, piece, n)) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        out_ok = emit(ud, piece, n);
        if (!cs && ll_decode(c->ctx, &t, 1, err, errlen) != 0) {
            rc = -1;
            break;
        }
        cache_push(c, &t, 1);
        c->turn_gen_tokens++;
        if (cli_reverse_hit(reply.s, reply.n, n, c->reverse, c->n_reverse)) { // -r: the user's turn
            c->turn_reverse = true;
            break;
        }
        // Complete, nothing can follow (a speculative step ends right after a completing token).
        if (c->grammar && !(cs && spec_pending(cs)) && ll_sampler_grammar_done(c->smp)) break;
    }
    if (cs && rc == 0) {
        // Leave the cache as plain generation does: every reply token in it, none after (an
        // end of generation, tokens of a step not shown). The step left the last one out.
        spec_rewind(cs, c->n_cache);
        if (ll_n_past(c->ctx) == c->n_cache - 1 && ll_decode(c->ctx, &c->cache[c->n_cache - 1], 1, err, errlen) != 0)
            rc = -1;
    }
    if (cs && rc != 0) { // the cache is in an unknown state: start over next time
        ll_kv_clear(c->ctx);
        c->n_cache = 0;
    }
    size_t n = ll_detok_flush(&dt, piece, sizeof piece);
    if (n) {
        sb_add(&reply, piece, n);
        if (out_ok) emit(ud, piece, n);
    }
    c->turn_gen_ms = (cli_now() - t0) * 1e3;

    // The cache now stands for the rendered prompt plus the reply as generated.
    forget_cache_text(c);
    if (rc == 0 && reply.s && c->n_cache == ll_n_past(c->ctx)) {
        c->cache_text = malloc(r.len + reply.n + 1);
        if (c->cache_text) {
            memcpy(c->cache_text, r.text, r.len);
            memcpy(c->cache_text + r.len, reply.s, reply.n + 1);
        }
    }
    if (!push_reply(c, reply.s ? reply.s : "")) forget_cache_text(c);
    else c->reply_in_cache = rc == 0 && c->n_cache == ll_n_past(c->ctx);
    if (c->reply_in_cache) c->msgs[c->n_msgs - 1].tok_start = reply_start;
    free(reply.s);
    rendered_free(&r);
    return rc;
}

// ---- save / load ----------------------------------------------------------------------------

bool chat_save(const chat *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return false;
    }
    fputs("{\n  \"template\": ", f);
    if (c->tmpl) json_write_string(f, c->tmpl->jinja ? "jinja" : c->tmpl->family);   // what rendered it
    else fputs("null", f);
    fputs(",\n  \"messages\": [", f);
    for (size_t i = 0; i < c->n_msgs; i++) {
        fputs(i ? ",\n    {\"role\": " : "\n    {\"role\": ", f);
        json_write_string(f, c->msgs[i].role);
        fputs(", \"content\": ", f);
        json_write_string(f, c->msgs[i].content);
        if (c->msgs[i].reasoning) {
            fputs(", \"reasoning_content\": ", f);
            json_write_string(f, c->msgs[i].reasoning);
        }
        fputs("}", f);
    }
    fputs(c->n_msgs ? "\n  ]\n}\n" : "]\n}\n", f);
    bool ok = fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok) snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return ok;
}

bool chat_load(chat *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return false;
    }
    strbuf b = {0};
    char chunk[65536];
    size_t got;
    bool ok = sb_add(&b, "", 0);
    while (ok && (got = fread(chunk, 1, sizeof chunk, f)) > 0) ok = sb_add(&b, chunk, got);
    fclose(f);
    if (!ok) {
        free(b.s);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    char jerr[200];
    json *j = json_parse(b.s, b.n, jerr, sizeof jerr);
    free(b.s);
    if (!j) {
        snprintf(err, errlen, "%s: %s", path, jerr);
        return false;
    }
    const json *arr = j->type == JSON_OBJECT ? json_get(j, "messages") : j;
    if (!arr || arr->type != JSON_ARRAY) {
        snprintf(err, errlen, "%s: expected a \"messages\" array", path);
        json_free(j);
        return false;
    }
    for (size_t i = 0; i < arr->n; i++) {
        const char *role = json_str(json_get(&arr->items[i], "role"));
        const char *content = json_str(json_get(&arr->items[i], "content"));
        if (!role || !content) {
            snprintf(err, errlen, "%s: message %zu needs string \"role\" and \"content\"", path, i);
            json_free(j);
            return false;
        }
    }
    // Valid: replace the conversation.
    while (c->n_msgs) remove_msg(c, c->n_msgs - 1);
    forget_cache_text(c);
    for (size_t i = 0; i < arr->n && ok; i++) {
        ok = push_msg(c, json_str(json_get(&arr->items[i], "role")), json_str(json_get(&arr->items[i], "content")));
        const char *reasoning = json_str(json_get(&arr->items[i], "reasoning_content"));
        if (ok && reasoning) ok = (c->msgs[c->n_msgs - 1].reasoning = strdup(reasoning)) != NULL;
    }
    json_free(j);
    if (!ok) snprintf(err, errlen, "out of memory");
    return ok;
}
