// Speculative decoding in the CLI: the flags (-md, --draft-max, --draft-min, --draft-p-min,
// --lookup-ngram), loading the draft model, and a token source for the generation loops.
// The engine does the drafting and verification (ll_spec_* in llamalite.h).
#ifndef LLAMALITE_CLI_SPECULATIVE_H
#define LLAMALITE_CLI_SPECULATIVE_H

#include <stdbool.h>
#include <stdio.h>

#include "args.h"
#include "llamalite.h"

typedef struct cli_spec cli_spec;

// Tries argv[*i] as one of the speculative flags (ARG_DONE, ARG_UNKNOWN or ARG_ERROR, as
// args_parse_common). The values are kept for spec_open.
int spec_parse_arg(int argc, char **argv, int *i);
void spec_print_help(FILE *out);
// A draft model or prompt lookup was asked for.
bool spec_wanted(void);
int spec_draft_max(void); // --draft-max: the most tokens a step drafts

// Loads the draft model (if any) with a context like the target's, checks the vocabularies
// and makes the draft's sampler (p->sampling). NULL after printing a message.
cli_spec *spec_open(const cli_params *p, ll_context *target);
void spec_close(cli_spec *cs);

// The draft's sampler (NULL with prompt lookup): give it the prompt (ll_sampler_accept) and
// the grammar like the target's.
ll_sampler *spec_draft_sampler(cli_spec *cs);

// Feeds the prompt. 0, or -1 with err set.
int spec_feed(cli_spec *cs, const ll_token *toks, int n, char *err, size_t errlen);

enum { SPEC_OK = 0, SPEC_FULL = 1, SPEC_ERROR = -1 };
// The next token, generated (and accepted by smp) a step at a time. budget: tokens that may
// still be generated (-1: no limit), which also caps a step. SPEC_FULL when the context has
// no room for a step: shift with spec_shift (or stop), then ask again.
int spec_next(cli_spec *cs, ll_sampler *smp, int budget, ll_token *t, char *err, size_t errlen);

// Committed tokens (the prompt and what spec_next returned, plus tokens of the current step
// not returned yet).
int spec_n_past(const cli_spec *cs);
// Tokens of the current step not returned yet (the samplers have already accepted them).
bool spec_pending(const cli_spec *cs);
void spec_shift(cli_spec *cs, int n_keep, int n_discard);

// The chat REPL (cli/chat.c) decodes each turn's new tokens itself, then hands over:
// toks[0..n) are what the target's cache now holds (ll_spec_sync). 0, or -1 with err set.
int spec_sync(cli_spec *cs, const ll_token *toks, int n, char *err, size_t errlen);
// Forgets committed tokens from n_keep on, and any not returned yet.
void spec_rewind(cli_spec *cs, int n_keep);
// New sampler settings for the draft (the REPL's /set). False when out of memory.
bool spec_set_sampling(cli_spec *cs, const ll_sampler_params *sp);
ll_spec_stats spec_stats(const cli_spec *cs);
// One reply's statistics since `before`: drafted, accepted, rate, tokens/s.
void spec_print_turn(const cli_spec *cs, const ll_spec_stats *before, int n_tokens, double ms, FILE *out);

// "speculative: drafted N, accepted M (R%), S steps, T tokens/step" on out.
void spec_print_stats(const cli_spec *cs, FILE *out);

#endif
