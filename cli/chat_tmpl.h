// Which chat template a conversation goes through, and rendering with it.
//
// By default the model's own Jinja template (tokenizer.chat_template) rendered by the engine's
// interpreter, as Hugging Face transformers renders it; --chat-template-file F reads another;
// --chat-template NAME picks one of the built-in families instead. When the Jinja template
// fails (to parse, or on a conversation: e.g. it raises for a system message), a warning says
// why and the built-in family it resembles takes over.
#ifndef LLAMALITE_CLI_CHAT_TMPL_H
#define LLAMALITE_CLI_CHAT_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "llamalite.h"

typedef struct {
    char *role, *content;
    char *reasoning;         // reasoning_content (thinking kept apart), or NULL
    int tok_start;           // chat.c, plain continuation: where its tokens start in the cache, -1 unknown
} chat_msg;

typedef struct {
    ll_chat_jinja *jinja;    // NULL: the built-in family
    const char *family;      // the built-in family, or what the Jinja text resembles; NULL: none
    char *origin;            // where the template came from, for messages
    bool reads_reasoning;    // the Jinja text reads messages' reasoning_content
    bool harmony;            // gpt-oss's channels (<|channel|>): replies split into thinking and answer
    bool has_enable_thinking;
    char *extra_json;        // further variables for the template (e.g. {"enable_thinking": false})
} chat_tmpl;

// Picks the template: name (--chat-template: a built-in name, or Jinja text) first, then file
// (--chat-template-file), then the model's. With none of them usable, t is left without a template (chat_tmpl_active false).
// Returns false after printing one line (a bad --chat-template name, an unreadable file, a
// Jinja file with no built-in family to fall back on).
bool chat_tmpl_pick(chat_tmpl *t, const ll_model *m, const char *name, const char *file, bool quiet);
bool chat_tmpl_active(const chat_tmpl *t);
// Whether a --chat-template value is Jinja text rather than a name (llama-cli takes both).
bool chat_tmpl_is_jinja(const char *s);
// The name to show: the family, or "jinja (ORIGIN)".
const char *chat_tmpl_name(const chat_tmpl *t, char *buf, size_t n);
void chat_tmpl_free(chat_tmpl *t);

// Renders msgs[0..n) (add_gen: end with the start of the assistant's turn). *spans are the byte
// ranges of *out that hold message contents, as far as they can be found. Returns 0, or -1 with
// err set. A Jinja failure prints a warning and falls back to the family for good.
int chat_tmpl_render(chat_tmpl *t, const chat_msg *msgs, size_t n, bool add_gen, const char *bos,
                     const char *eos, char **out, ll_chat_span **spans, size_t *n_spans, char *err,
                     size_t errlen);

// The conversation as the JSON array the Jinja templates get (role, content, and the thinking
// as reasoning_key: "reasoning_content", or gpt-oss's "thinking").
char *chat_tmpl_messages_json(const chat_msg *msgs, size_t n, const char *reasoning_key);

#endif
