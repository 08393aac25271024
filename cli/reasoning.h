// Thinking of reasoning models (Qwen3, QwQ, DeepSeek-R1 and its distills; gpt-oss's channels):
// the text between <think> and </think> in a reply, shown as is, dimmed (the REPL on a colour terminal) or hidden
// (--reasoning off). The filter follows the tags as the reply streams in, holding back the
// bytes that may be the start of a tag split across tokens.
#ifndef LLAMALITE_CLI_REASONING_H
#define LLAMALITE_CLI_REASONING_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { REASONING_SHOW, REASONING_DIM, REASONING_HIDE } reasoning_mode;

// out receives each piece, with whether it is thinking (the tags themselves count as thinking).
typedef bool (*reasoning_out_fn)(void *ud, const char *s, size_t n, bool thinking);

typedef struct {
    reasoning_mode mode;
    bool thinking;       // inside <think>...</think> (harmony: on the analysis/commentary channel)
    char held[16];       // a possible tag start not yet passed on
    size_t n_held;
    reasoning_out_fn out;
    void *ud;
    // gpt-oss's harmony format instead of <think>: "<|channel|>analysis<|message|>...<|end|>
    // <|start|>assistant<|channel|>final<|message|>...<|return|>". The analysis (and commentary)
    // is thinking, the final channel the answer; the markup between messages is never shown.
    bool harmony;
    bool in_markup;      // between messages: collecting "<|start|>assistant<|channel|>NAME<|message|>"
    char markup[96];
    size_t n_markup;
    char last_thought;   // the last byte of thinking passed on in this message (0: none)
} reasoning_filter;

// prompt: the text the reply continues; when it ends inside an open <think> (templates whose
// generation prompt opens it), the reply starts as thinking.
void reasoning_init(reasoning_filter *f, reasoning_mode mode, const char *prompt, reasoning_out_fn out, void *ud);
// Follows the harmony format (gpt-oss) instead of <think> tags; the reply starts between messages
// (the generation prompt ends with "<|start|>assistant").
void reasoning_set_harmony(reasoning_filter *f);
// Returns false when out did (e.g. stdout is gone).
bool reasoning_feed(reasoning_filter *f, const char *s, size_t n);
bool reasoning_flush(reasoning_filter *f);

// Whether text ends inside an open <think> block.
bool reasoning_open_at_end(const char *text);

// Splits a reply into its thinking and its answer: *thinking (malloc'd, NULL when the reply has
// no </think>) gets the text before </think> without the tags and surrounding newlines, and
// the answer starts after </think> and the whitespace after it. Returns the answer (malloc'd).
char *reasoning_split(const char *reply, char **thinking);
// The same for a harmony reply (text with its special tokens): *thinking gets the analysis and
// commentary messages (NULL when there are none), the answer is the final channel's text.
char *reasoning_split_harmony(const char *reply, char **thinking);

#endif
