// Command-line flags shared by the llamalite subcommands.
//
// Each subcommand walks argv itself: it first tries its own flags, then hands the flag to
// args_parse_common(), which knows the shared ones (model, prompt, context, sampling, logging)
// in the groups the command asks for. Every numeric value is validated; a bad value, a
// missing value or an unknown flag prints one line such as
//   llamalite: invalid value 'x' for -n
// and the command exits with status 1.
#ifndef LLAMALITE_CLI_ARGS_H
#define LLAMALITE_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "grammar.h"
#include "llamalite.h"

#define ARGS_MAX_REVERSE 16
#define ARGS_MAX_LORA 16
#define ARGS_MAX_LOGIT_BIAS 64

// Which shared flags a command accepts.
enum {
    ARGS_MODEL = 1 << 0,     // -m
    ARGS_PROMPT = 1 << 1,    // -p, -f, -e/--no-escape
    ARGS_GEN = 1 << 2,       // -n, --keep, --no-context-shift, -r, --echo, -i, -cnv, -if, -sp,
                             // --in-prefix, --in-suffix, -mli
    ARGS_CONTEXT = 1 << 3,   // -c, -b, -t, --cache-type-k/-v, -fa, --swa-full
    ARGS_SAMPLING = 1 << 4,  // --temp ... --seed
    ARGS_LOG = 1 << 5,       // -v, --log-disable
    ARGS_THREADS = 1 << 6,   // -t alone (for commands without a context of their own)
    ARGS_LORA = 1 << 7,      // --lora, --lora-scaled (repeatable; loaded by cli/lora.h)
    ARGS_LOAD = 1 << 8,      // --mlock, --no-mmap, --no-warmup, -ngl, -dev (llama-cli's; see
                             // args_check_model)
};

typedef struct {
    const char *model;          // -m
    const char *prompt;         // -p, or the contents of -f (owned: prompt_buf)
    const char *prompt_file;    // -f
    char *prompt_buf;           // malloc'd copy (file contents or unescaped -p)
    bool escape;                // process \n, \t, ... in -p (llama-cli does by default)

    int n_predict;              // -n; -1: until end of generation or the context is full
    int n_keep;                 // --keep; -1: the whole prompt
    bool context_shift;         // false with --no-context-shift
    const char *reverse[ARGS_MAX_REVERSE]; // -r, repeatable
    int n_reverse;
    bool echo;                  // --echo: print the prompt before the generated text
    bool interactive;           // -i
    bool conversation;          // -cnv
    bool interactive_first;     // -if: wait for the user's input first (-p goes in front of it)
    bool special;               // -sp: print special tokens (one-shot)
    bool harmony;               // one-shot: the prompt went through gpt-oss's template, whose reply
                                // has channels (analysis: thinking; final: the answer)
    const char *in_prefix;      // --in-prefix, --in-suffix: around each user input (the chat
    const char *in_suffix;      // then continues plain text, as llama-cli does)
    bool multiline;             // -mli: Enter starts a new line; a line ending in '/' sends

    int n_ctx, n_batch, n_threads; // -c, -b, -t (0: engine default)
    ll_cache_type type_k, type_v;
    ll_flash_attn flash_attn;   // -fa [on|off|auto]
    bool swa_full;              // --swa-full: sliding-window layers keep the whole context
    bool mlock;                 // --mlock: keep the weights in RAM
    bool no_mmap;               // --no-mmap
    const char *gpu_flag;       // -ngl / -dev as given: a CPU engine notes and ignores it

    ll_sampler_params sampling;
    ll_logit_bias logit_bias[ARGS_MAX_LOGIT_BIAS]; // -l (sampling.logit_bias points here)
    bool dry_breakers_given;    // the first --dry-sequence-breaker replaces the defaults
    bool ignore_eos;            // --ignore-eos: never sample end-of-generation tokens
    const char *prompt_cache;   // --prompt-cache FNAME: session file of the evaluated prompt
    bool prompt_cache_all;      // --prompt-cache-all: ... and of the generated tokens
    bool prompt_cache_ro;       // --prompt-cache-ro: read it, never write it
    cli_grammar_opts grammar;   // --grammar, --grammar-file, -j, --json-schema-file, --json

    int verbosity;              // 0 with --log-disable, 1 by default, 2 with -v

    struct {
        const char *path;
        float scale;
    } lora[ARGS_MAX_LORA];      // --lora FILE (scale 1), --lora-scaled FILE S, in order
    int n_lora;
} cli_params;

enum { ARG_DONE = 0, ARG_UNKNOWN = 1, ARG_ERROR = -1 };

// Defaults: llama-cli's (n_predict -1, context 0 = model's, batch 512, f16 cache, sampling
// from ll_sampler_default_params, escape on, context shift on).
void args_defaults(cli_params *p);
void args_free(cli_params *p);

// Tries argv[*i] as one of the shared flags in groups. On success consumes its value (advances
// *i past it) and returns ARG_DONE; ARG_UNKNOWN if it is not a shared flag of those groups;
// ARG_ERROR after printing a message.
int args_parse_common(int argc, char **argv, int *i, cli_params *p, unsigned groups);

// Prints the help lines of the shared flags of these groups.
void args_print_common_help(FILE *out, unsigned groups);

// After parsing: loads -f, unescapes -p. Returns false after printing a message.
bool args_finish_prompt(cli_params *p);

// Once the model is loaded: checks the -l token ids against its vocabulary, gives DRY the
// vocabulary (for its sequence breakers), warns when -c exceeds the training context, notes
// -ngl/-dev, locks the weights for --mlock. Returns false after printing a message.
bool args_check_model(cli_params *p, const ll_model *m);

// Helpers for command-specific flags. Each prints the error line itself and returns false.
// args_value: argv[*i + 1] (advancing *i), or an error when there is none.
bool args_value(int argc, char **argv, int *i, const char **out);
bool args_int(const char *flag, const char *s, long min, long max, int *out);
bool args_float(const char *flag, const char *s, double min, double max, float *out);
bool args_u32(const char *flag, const char *s, uint32_t *out);

// Prints "llamalite: unknown option 'x' (try 'llamalite [cmd] --help')".
void args_unknown(const char *cmd, const char *flag);

// Reads a whole file (binary-safe, NUL-terminated). Returns NULL after printing a message.
char *args_read_file(const char *path, size_t *len);

// Replaces \n \t \r \\ \' \" \xHH in s, in place (llama-cli's --escape).
void args_unescape(char *s);

// The interactive mode (REPL / chat) lives in another file that a build may lack: run.c
// declares it weak and calls it when there is no -p/-f and stdin is a terminal, or with -i/-cnv.
// p is already parsed (model, context, sampling...); argv is there for the REPL's own needs.
int repl_main(int argc, char **argv, cli_params *p);
// The interactive mode's own flags (--chat-template, -sys, --color, --no-history...): run.c
// offers each flag it does not know to repl_parse_arg (same results as args_parse_common),
// and --help shows repl_print_help's lines. Both weak, like repl_main.
int repl_parse_arg(int argc, char **argv, int *i);
void repl_print_help(FILE *out);
// One-shot with -sys or --chat-template: -p rendered as a user message (after the system
// message) by the chat template, ending where the reply starts (malloc'd). NULL without those
// flags, or after a message with *failed set. Weak too.
char *repl_oneshot_prompt(const ll_model *m, const cli_params *p, bool *failed);
// --reasoning off: the thinking of reasoning models stays off stdout. Weak too.
bool repl_hide_reasoning(void);
// The template repl_oneshot_prompt used writes gpt-oss's channels (harmony). Weak too.
bool repl_template_harmony(void);

// Tokenizes a NUL-terminated text with BOS/EOS as the vocab says. Returns a malloc'd array
// (count in *n_out), or NULL when out of memory.
ll_token *cli_tokenize(const ll_vocab *v, const char *text, bool parse_special, int *n_out);

// The vocab's end-of-generation tokens (masked before sampling for --ignore-eos): a malloc'd
// array (count in *n_out), or NULL when out of memory.
ll_token *cli_eog_tokens(const ll_vocab *v, int *n_out);

// Whether one of the n reverse prompts occurs in text[0..len) within its last n_new bytes
// (so a stop string is found once, right when its last byte is generated). Inline: the chat
// (chat.c) uses it without the rest of the flags.
static inline bool cli_reverse_hit(const char *text, size_t len, size_t n_new, const char *const *reverse, int n) {
    for (int i = 0; i < n; i++) {
        size_t rl = strlen(reverse[i]);
        size_t from = len > n_new + rl ? len - n_new - rl : 0;
        if (memmem(text + from, len - from, reverse[i], rl)) return true;
    }
    return false;
}

// Logging to stderr at a minimum verbosity (1: normal, 2: verbose).
void cli_log(const cli_params *p, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
