// A conversation with a model: messages, the chat template, and the KV cache kept in step so
// that each turn evaluates only its new tokens.
//
// The cache holds the tokens of `cache_text`, the conversation rendered so far plus the reply
// as generated. A new turn renders the whole conversation again; when that text starts with
// cache_text, only the rest is tokenized and evaluated. When the template only rewrote the last
// reply (e.g. trimmed it), the reply stays as generated and the rest of the turn is added (as
// llama-cli does). Otherwise (a template that rewrites earlier turns, dropped turns, /system,
// /load) the whole text is tokenized and only the tokens after the longest common prefix with
// the cache are evaluated. When the context is full and the oldest turns are dropped, their
// positions are first shifted out of the cache (ll_kv_shift re-rotates the keys after them, as
// the one-shot context shift does), so the kept turns stay cached.
#ifndef LLAMALITE_CLI_CHAT_H
#define LLAMALITE_CLI_CHAT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "chat_tmpl.h"
#include "llamalite.h"

typedef struct {
    ll_model *model;
    ll_context *ctx;
    const ll_vocab *vocab;
    ll_sampler *smp;
    ll_sampler_params sp;
    int n_predict;           // reply length limit, -1: until end of generation
    ll_grammar *grammar;     // constrains every reply when set (owned; --grammar, --json, ...)
    struct cli_spec *spec;   // speculative decoding of the replies when set (not owned; -md, ...)

    chat_tmpl *tmpl;         // the chat template (not owned); NULL or inactive: plain continuation
    bool plain_join;         // plain continuation: a user message follows the reply directly
                             // (llama-cli's interactive mode: -r, --in-prefix/--in-suffix)
    const char *const *reverse; // reverse prompts: a reply stops right after one (-r)
    int n_reverse;
    char *bos, *eos;         // the model's BOS/EOS token texts ("" when it has none)

    chat_msg *msgs;
    size_t n_msgs, cap_msgs;

    ll_token *cache;         // tokens in the KV cache, in order
    int n_cache, cap_cache;
    char *cache_text;        // what they stand for; NULL when unknown
    bool reply_in_cache;     // the cache ends with the last reply, as generated
    bool dropped;            // turns were dropped since the last evaluation: their positions
                             // can be shifted out of the cache (ll_kv_shift)

    char render_err[600];    // why the template failed, when it did
    char **specials;         // texts of control tokens (user text containing one is tokenized apart)
    int n_specials;

    // The last turn, for /stats.
    int turn_prompt_tokens, turn_gen_tokens, turn_dropped;
    double turn_prompt_ms, turn_gen_ms;
    bool turn_thinking;      // the turn's prompt ends inside <think> (a reasoning model's generation
                             // prompt opened it): set before the reply streams
    bool turn_ctx_full;      // the reply stopped because the context was full
    bool turn_reverse;       // the reply stopped at a reverse prompt
    const char *turn_grammar_stuck; // the reply stopped where the grammar allowed no token: why
    int turn_shifted;        // cached tokens of dropped turns shifted out (not re-evaluated)
} chat;

// tmpl: the template (chat_tmpl_pick), NULL for plain continuation. Returns false with err set.
bool chat_init(chat *c, ll_model *m, ll_context *ctx, chat_tmpl *tmpl, const ll_sampler_params *sp,
               int n_predict, char *err, size_t errlen);
void chat_free(chat *c);
// Replaces the sampler settings (a new sampler continuing the old one's random stream). False
// when out of memory.
bool chat_set_sampling(chat *c, const ll_sampler_params *sp);
// Sets (or with NULL/"" removes) the system message.
bool chat_set_system(chat *c, const char *text);
const char *chat_system(const chat *c);
// Forgets every message but the system one, and the cache.
void chat_clear(chat *c);

// Receives the reply as it is generated; returns false to stop (e.g. stdout is gone).
typedef bool (*chat_emit_fn)(void *ud, const char *s, size_t n);
// One exchange: adds the user message, evaluates what is new (dropping the oldest turns when
// the context would overflow; their cached positions are shifted out), and generates the reply,
// streamed through emit, until an end of generation token, n_predict, a full context, a
// reverse prompt or *stop. The reply (also a partial or empty one) joins the conversation.
// Returns 0, or -1 with err set (the user message is then taken back; also when *stop was set
// while the message was evaluated: "interrupted").
int chat_turn(chat *c, const char *user, volatile sig_atomic_t *stop, chat_emit_fn emit, void *ud,
              char *err, size_t errlen);

// The conversation as JSON: {"template": ..., "messages": [{"role", "content"}, ...]}.
bool chat_save(const chat *c, const char *path, char *err, size_t errlen);
// Replaces the conversation with a saved one (an object as above, or a bare message array).
bool chat_load(chat *c, const char *path, char *err, size_t errlen);

#endif
