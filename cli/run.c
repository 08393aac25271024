// llamalite -m MODEL -p PROMPT [-n N] [...]: one-shot generation.
//
// stdout gets only the generated text (plus the prompt with --echo), flushed after every token
// and always valid UTF-8; everything else goes to stderr. Without -p/-f the prompt is read from
// stdin when stdin is not a terminal, otherwise the interactive mode takes over (if built in).
// With -sys or --chat-template the prompt goes through the chat template first. Ctrl-C stops
// (also in the middle of a long prompt) and the exit status is then 130.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "lora.h"
#include "progress.h"
#include "reasoning.h"
#include "speculative.h"

#pragma weak repl_main
#pragma weak repl_parse_arg
#pragma weak repl_print_help
#pragma weak repl_oneshot_prompt
#pragma weak repl_hide_reasoning
#pragma weak repl_template_harmony

static volatile sig_atomic_t g_interrupted = 0;

static void on_sigint(int sig) {
    (void)sig;
    if (g_interrupted) _exit(130); // a second Ctrl-C: give up at once
    g_interrupted = 1;
}

// The decode's abort callback: a long prompt stops between chunks and layers on Ctrl-C.
static bool interrupted(void *ud) {
    (void)ud;
    return g_interrupted != 0;
}

// The generation and chat options, grouped as llama-cli groups them ('llamalite --help').
void run_print_help(FILE *out) {
    fputs("\n----- common params -----\n", out);
    args_print_common_help(out, ARGS_MODEL | ARGS_PROMPT | ARGS_CONTEXT | ARGS_LOAD | ARGS_LORA | ARGS_LOG);
    fputs("\n----- sampling params -----\n", out);
    args_print_common_help(out, ARGS_SAMPLING);
    fputs("\n----- generation params -----\n", out);
    args_print_common_help(out, ARGS_GEN);
    spec_print_help(out);
    if (repl_print_help) repl_print_help(out);
}

static int g_write_errno = 0;
static bool g_wrote = false; // something is on stdout

// Messages during generation start on a fresh line when stdout and stderr share a terminal.
static const char *nl(void) { return g_wrote && isatty(STDOUT_FILENO) ? "\n" : ""; }

// Writes to stdout; false once stdout is gone (e.g. the reader of a pipe quit).
static bool emit(const char *s, size_t n) {
    if ((n && fwrite(s, 1, n, stdout) != n) || fflush(stdout) != 0) {
        g_write_errno = errno;
        return false;
    }
    if (n) g_wrote = true;
    return true;
}

// Writes s with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD, so
// The generated text after the thinking filter (--reasoning off hides <think>...</think>).
static bool emit_answer(void *ud, const char *s, size_t n, bool thinking) {
    (void)ud;
    (void)thinking;
    return emit(s, n);
}

// --echo keeps stdout valid UTF-8 whatever the prompt holds.
static bool emit_utf8(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0, i = 0;
    while (i < n) {
        unsigned c = u[i];
        int len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        bool ok = len > 0 && i + (size_t)len <= n;
        for (int k = 1; ok && k < len; k++) ok = (u[i + k] & 0xC0) == 0x80;
        // No overlongs, no surrogates, nothing above U+10FFFF.
        if (ok && len == 3) ok = !(c == 0xE0 && u[i + 1] < 0xA0) && !(c == 0xED && u[i + 1] >= 0xA0);
        if (ok && len == 4) ok = !(c == 0xF0 && u[i + 1] < 0x90) && !(c == 0xF4 && u[i + 1] >= 0x90);
        if (ok) {
            i += (size_t)len;
            continue;
        }
        if (!emit(s + start, i - start) || !emit("\xEF\xBF\xBD", 3)) return false;
        start = ++i;
    }
    return emit(s + start, n - start);
}

// The tail of the generated text, to find reverse prompts that span several tokens.
typedef struct {
    char buf[1024];
    size_t len;
} text_tail;

static void tail_push(text_tail *t, const char *s, size_t n) {
    if (n >= sizeof t->buf) {
        s += n - (sizeof t->buf - 1);
        n = sizeof t->buf - 1;
    }
    if (t->len + n >= sizeof t->buf) {
        size_t drop = t->len + n - (sizeof t->buf - 1);
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = 0;
}

static char *read_stdin(void) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, stdin);
        n += got;
        if (got == 0) break;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) buf[n] = 0;
    return buf;
}

typedef struct {
    double load_ms, prompt_ms, gen_ms;
    int n_prompt, n_gen;
} run_stats;

// The context is full: how many tokens after the kept ones to discard (llama-cli's rule: half),
// or 0 to stop (after a message; *rc set on an error).
static int context_full(const cli_params *p, int n_past, int n_keep, int n_ctx, int *rc) {
    if (p->n_predict < 0) {
        cli_log(p, 1, "%sllamalite: the context is full (%d tokens); stopping "
                "(use -n N to generate past it with context shifts)\n", nl(), n_ctx);
        return 0;
    }
    if (!p->context_shift) {
        cli_log(p, 1, "%sllamalite: the context is full (%d tokens) and context shift "
                "is disabled (--no-context-shift); stopping\n", nl(), n_ctx);
        return 0;
    }
    // Drop half of what follows the kept tokens; the cache re-rotates the rest.
    int n_discard = (n_past - n_keep) / 2;
    if (n_discard <= 0) {
        fprintf(stderr, "%sllamalite: the context is full and --keep %d leaves nothing "
                "to discard\n", nl(), p->n_keep);
        *rc = 1;
        return 0;
    }
    cli_log(p, 2, "%s[context shift: keep %d, discard %d of %d]\n", nl(), n_keep, n_discard, n_past);
    return n_discard;
}

// --prompt-cache: the cache rows of the session file's tokens that start the prompt are taken
// from the file, so only the rest is evaluated (when the whole prompt matches, its last token is
// evaluated again, for its logits, as llama-cli does). No file yet: nothing reused. *n_reuse:
// the prompt tokens now in the cache. False (message printed) when the file is refused.
static bool prompt_cache_load(const cli_params *p, ll_context *ctx, const ll_token *prompt, int n_prompt, int *n_reuse) {
    char err[512];
    *n_reuse = 0;
    if (access(p->prompt_cache, F_OK) != 0) {
        cli_log(p, 1, "llamalite: prompt cache %s: none yet\n", p->prompt_cache);
        return true;
    }
    ll_token *toks = NULL;
    int n_toks = 0;
    if (ll_session_load(ctx, p->prompt_cache, &toks, &n_toks, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "llamalite: %s\n", err);
        return false;
    }
    int n = 0;
    while (n < n_toks && n < n_prompt && toks[n] == prompt[n]) n++;
    if (n == n_prompt) n--; // the last token again, for the logits
    free(toks);
    ll_kv_truncate(ctx, n);
    *n_reuse = n = ll_n_past(ctx); // (sliding-window layers may have had to start over)
    cli_log(p, 1, "llamalite: prompt cache %s: %d of %d prompt tokens reused\n", p->prompt_cache, n, n_prompt);
    return true;
}

static void prompt_cache_save(const cli_params *p, ll_context *ctx, const ll_token *toks, int n) {
    char err[512];
    if (ll_session_save(ctx, p->prompt_cache, toks, n, NULL, 0, err, sizeof err) != 0)
        fprintf(stderr, "%sllamalite: %s\n", nl(), err);
    else cli_log(p, 2, "%sllamalite: prompt cache %s: saved %d tokens\n", nl(), p->prompt_cache, n);
}

// Prompt in, tokens out until -n, an end-of-generation token, a reverse prompt or a full
// context. With cs, the tokens come from speculative decoding (cli/speculative.c). Returns
// the exit code.
static int generate(const cli_params *p, ll_context *ctx, const ll_vocab *v, cli_spec *cs,
                    run_stats *st) {
    char err[512];
    int n_prompt = 0;
    ll_token *prompt = cli_tokenize(v, p->prompt, true, &n_prompt);
    if (!prompt) {
        fputs("llamalite: cannot tokenize the prompt (out of memory)\n", stderr);
        return 1;
    }
    // A chat template that writes BOS itself (-sys, --chat-template): one BOS, not two.
    const ll_token bos = ll_vocab_bos(v);
    if (n_prompt >= 2 && bos >= 0 && prompt[0] == bos && prompt[1] == bos)
        memmove(prompt, prompt + 1, sizeof *prompt * (size_t)--n_prompt);
    const int n_ctx = ll_n_ctx(ctx);
    if (n_prompt == 0) {
        fputs("llamalite: the prompt is empty (and the model adds no BOS token)\n", stderr);
        free(prompt);
        return 1;
    }
    if (n_prompt > n_ctx - 4) {
        fprintf(stderr, "llamalite: the prompt is %d tokens, too long for the context of %d "
                "(use a larger -c)\n", n_prompt, n_ctx);
        free(prompt);
        return 1;
    }
    if (p->verbosity >= 2) {
        fprintf(stderr, "prompt: %d tokens:", n_prompt);
        for (int i = 0; i < n_prompt; i++) fprintf(stderr, " %d", prompt[i]);
        fputc('\n', stderr);
    }

    // Tokens kept at the start on a context shift: llama-cli's rule (--keep counts the prompt
    // tokens after BOS; BOS itself is always kept; -1 keeps the whole prompt).
    const bool has_bos = ll_vocab_bos(v) >= 0 && prompt[0] == ll_vocab_bos(v);
    int n_keep = p->n_keep;
    if (n_keep < 0 || n_keep + (has_bos ? 1 : 0) > n_prompt) n_keep = n_prompt;
    else n_keep += has_bos ? 1 : 0;

    // --ignore-eos: the end-of-generation tokens, whose logits are masked before sampling.
    int n_vocab = ll_vocab_n_tokens(v), n_eog = 0;
    ll_token *eog = NULL;
    if (p->ignore_eos && !(eog = cli_eog_tokens(v, &n_eog))) {
        fputs("llamalite: out of memory\n", stderr);
        free(prompt);
        return 1;
    }

    ll_sampler *smp = ll_sampler_new(&p->sampling, n_vocab);
    if (!smp) {
        fputs("llamalite: cannot create the sampler (out of memory)\n", stderr);
        free(prompt);
        free(eog);
        return 1;
    }
    cli_log(p, 2, "sampling: temp %.2f, top-k %d, top-p %.2f, min-p %.2f, typical %.2f, "
            "repeat-last-n %d, repeat %.2f, frequency %.2f, presence %.2f, seed %u\n",
            p->sampling.temp, p->sampling.top_k, p->sampling.top_p, p->sampling.min_p,
            p->sampling.typical_p, p->sampling.repeat_last_n, p->sampling.repeat_penalty,
            p->sampling.freq_penalty, p->sampling.presence_penalty, ll_sampler_seed(smp));
    cli_log(p, 2, "sampling: dry %.2f, xtc %.2f/%.2f, top-n-sigma %.2f, mirostat %d, %d logit biases, order %s\n",
            p->sampling.dry_multiplier, p->sampling.xtc_probability, p->sampling.xtc_threshold,
            p->sampling.top_n_sigma, p->sampling.mirostat, p->sampling.n_logit_bias,
            p->sampling.order[0] ? p->sampling.order : "edkypmxt");
    for (int i = 0; i < n_prompt; i++) ll_sampler_accept(smp, prompt[i]);
    // The draft's sampler mirrors the target's: same prompt, same grammar.
    ll_sampler *dsmp = cs ? spec_draft_sampler(cs) : NULL;
    for (int i = 0; dsmp && i < n_prompt; i++) ll_sampler_accept(dsmp, prompt[i]);

    int rc = 0;
    // Grammar / JSON constraint (cli/grammar.c), attached after the prompt so that only the
    // generated tokens reach it; the sampler keeps its own copy.
    const bool constrained = cli_grammar_wanted(&p->grammar);
    if (constrained) {
        char *gtext = cli_grammar_text(&p->grammar);
        ll_grammar *gr = gtext ? ll_grammar_parse(gtext, err, sizeof err) : NULL;
        if (gtext && !gr) {
            fprintf(stderr, "llamalite: grammar %s:%s\n",
                    p->grammar.gbnf_file ? p->grammar.gbnf_file : p->grammar.gbnf ? "--grammar" : "(from the schema)", err);
        }
        int set = gr ? ll_sampler_set_grammar(smp, v, gr, err, sizeof err) : -1;
        if (set == 0 && dsmp) set = ll_sampler_set_grammar(dsmp, v, gr, err, sizeof err);
        if (gr && set != 0) fprintf(stderr, "llamalite: %s\n", err);
        ll_grammar_free(gr);
        free(gtext);
        if (set != 0) {
            rc = 1;
            goto done;
        }
    }
    bool out_ok = true;
    if (p->echo) out_ok = emit_utf8(p->prompt, strlen(p->prompt));
    reasoning_filter thinking; // the prompt may have opened a <think> (a reasoning model's template)
    const bool hide = repl_hide_reasoning && repl_hide_reasoning();
    reasoning_init(&thinking, hide ? REASONING_HIDE : REASONING_SHOW, p->prompt, emit_answer, NULL);
    const bool harmony = p->harmony && !p->special; // (-sp: the reply as generated, tags and all)
    if (harmony) reasoning_set_harmony(&thinking);

    // --prompt-cache (not with a draft model, whose cache would have to follow)
    const bool pcache = p->prompt_cache && !cs;
    int n_reuse = 0;
    if (p->prompt_cache && cs) cli_log(p, 1, "llamalite: --prompt-cache is not used with speculative decoding\n");
    if (pcache && !prompt_cache_load(p, ctx, prompt, n_prompt, &n_reuse)) {
        rc = 1;
        goto done;
    }
    // --prompt-cache-all: the tokens in the cache (prompt, then generated), until a context shift
    ll_token *hist = pcache && p->prompt_cache_all && !p->prompt_cache_ro ? malloc(sizeof *hist * (size_t)n_ctx) : NULL;
    int n_hist = 0;
    if (hist) memcpy(hist, prompt, sizeof *hist * (size_t)(n_hist = n_prompt));

    double t0 = cli_now();
    if (cs ? spec_feed(cs, prompt, n_prompt, err, sizeof err) != 0
           : ll_decode(ctx, prompt + n_reuse, n_prompt - n_reuse, err, sizeof err) != 0) {
        if (g_interrupted) cli_log(p, 1, "%sllamalite: interrupted\n", nl());
        else fprintf(stderr, "llamalite: %s\n", err);
        rc = g_interrupted ? 130 : 1;
        free(hist);
        goto done;
    }
    st->prompt_ms = (cli_now() - t0) * 1e3;
    st->n_prompt = n_prompt - n_reuse;
    if (pcache && !p->prompt_cache_ro && !p->prompt_cache_all) prompt_cache_save(p, ctx, prompt, n_prompt);

    ll_detok dt = {0};
    text_tail tail = {.len = 0};
    char piece[1024]; // longer than any token of a real vocab
    double t1 = cli_now();
    while (out_ok && !g_interrupted) {
        if (p->n_predict >= 0 && st->n_gen >= p->n_predict) break;
        // Tokens left (this one included): the grammar plans to finish in them, and a
        // speculative step makes no more than these.
        const int n_past = cs ? spec_n_past(cs) - 1 : ll_n_past(ctx);
        int left = p->n_predict >= 0 ? p->n_predict - st->n_gen : INT_MAX;
        if (p->n_predict < 0 || !p->context_shift) {
            int ctx_left = n_ctx - n_past + 1;
            if (ctx_left < left) left = ctx_left;
        }
        ll_token t;
        if (cs) {
            int r = spec_next(cs, smp, left == INT_MAX ? -1 : left, &t, err, sizeof err);
            if (r == SPEC_FULL) {
                int n_discard = context_full(p, n_past, n_keep, n_ctx, &rc);
                if (n_discard <= 0) break;
                spec_shift(cs, n_keep, n_discard);
                continue;
            }
            if (r != SPEC_OK) {
                if (!g_interrupted) fprintf(stderr, "%sllamalite: %s\n", nl(), err);
                rc = g_interrupted ? 0 : 1; // 130 below
                break;
            }
        } else {
            float *logits = ll_get_logits(ctx);
            for (int i = 0; i < n_eog; i++) logits[eog[i]] = -INFINITY;
            if (constrained) ll_sampler_grammar_set_budget(smp, left == INT_MAX ? -1 : left);
            t = ll_sampler_sample(smp, logits);
            if (t < 0) { // only a constraint can forbid every token
                fprintf(stderr, "%sllamalite: %s\n", nl(), ll_sampler_grammar_why(smp));
                rc = 1;
                break;
            }
            ll_sampler_accept(smp, t);
        }
        if (ll_vocab_is_eog(v, t)) {
            cli_log(p, 2, "%s[end of text]\n", nl());
            break;
        }
        st->n_gen++;
        size_t n = ll_detok_push(&dt, v, t, p->special || harmony, piece, sizeof piece);
        out_ok = reasoning_feed(&thinking, piece, n);
        if (p->n_reverse) {
            tail_push(&tail, piece, n);
            if (cli_reverse_hit(tail.buf, tail.len, n, p->reverse, p->n_reverse)) break;
        }
        // Complete, nothing can follow. (A speculative step has already fed its tokens to the
        // sampler; it ends right after a completing token, so look at its last one.)
        if (constrained && !(cs && spec_pending(cs)) && ll_sampler_grammar_done(smp)) break;
        if (p->n_predict >= 0 && st->n_gen >= p->n_predict) break;
        if (cs) continue; // the next step evaluates t

        if (ll_n_past(ctx) >= n_ctx) {
            int n_discard = context_full(p, ll_n_past(ctx), n_keep, n_ctx, &rc);
            if (n_discard <= 0) break;
            ll_kv_shift(ctx, n_keep, n_discard);
            free(hist); // the cache no longer starts with the prompt's positions as they were
            hist = NULL;
            if (pcache && p->prompt_cache_all) cli_log(p, 1, "%sllamalite: context shifted: the prompt cache is not updated\n", nl());
        }
        if (hist) hist[n_hist++] = t;
        if (ll_decode(ctx, &t, 1, err, sizeof err) != 0) {
            if (!g_interrupted) fprintf(stderr, "%sllamalite: %s\n", nl(), err);
            rc = g_interrupted ? 0 : 1; // 130 below
            break;
        }
    }
    if (out_ok) {
        size_t n = ll_detok_flush(&dt, piece, sizeof piece);
        out_ok = reasoning_feed(&thinking, piece, n) && reasoning_flush(&thinking);
    }
    st->gen_ms = (cli_now() - t1) * 1e3;
    if (hist && n_hist == ll_n_past(ctx)) prompt_cache_save(p, ctx, hist, n_hist);
    free(hist);
    // Constrained output cut short (-n, a full context...) must not pass as complete.
    if (constrained && rc == 0 && !g_interrupted && ll_sampler_grammar_status(smp) == LL_GRAMMAR_MORE) {
        fprintf(stderr, "%sllamalite: the output was cut off before the grammar completed "
                "(raise -n or -c)\n", nl());
        rc = 2;
    }
    if (g_interrupted) {
        cli_log(p, 1, "%sllamalite: interrupted\n", nl());
        if (rc == 0) rc = 130; // as a shell reports a program killed by SIGINT
    }
    // A closed stdout (e.g. '| head') is the reader's choice, not an error.
    if (!out_ok && g_write_errno != EPIPE) {
        fprintf(stderr, "llamalite: cannot write the output: %s\n", strerror(g_write_errno));
        rc = 1;
    }
done:
    ll_sampler_free(smp);
    free(prompt);
    free(eog);
    return rc;
}

int cmd_run(int argc, char **argv) {
    const unsigned groups = ARGS_MODEL | ARGS_PROMPT | ARGS_GEN | ARGS_CONTEXT | ARGS_LOAD | ARGS_SAMPLING |
                            ARGS_LOG | ARGS_LORA;
    cli_params p;
    args_defaults(&p);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            llamalite_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            llamalite_version(stdout);
            return 0;
        }
        int r = args_parse_common(argc, argv, &i, &p, groups);
        if (r == ARG_UNKNOWN) r = spec_parse_arg(argc, argv, &i); // -md, --draft-max, ...
        if (r == ARG_UNKNOWN && repl_parse_arg) r = repl_parse_arg(argc, argv, &i); // chat flags
        if (r == ARG_ERROR) return 1;
        if (r == ARG_UNKNOWN) {
            args_unknown(NULL, argv[i]);
            return 1;
        }
    }
    if (!p.model) {
        fputs("llamalite: no model given (use -m MODEL.gguf; 'llamalite --help' for more)\n", stderr);
        return 1;
    }
    if (!args_finish_prompt(&p)) {
        args_free(&p);
        return 1;
    }

    if (p.interactive || p.conversation || (!p.prompt && isatty(STDIN_FILENO))) {
        if (repl_main) {
            int rc = repl_main(argc, argv, &p);
            args_free(&p);
            return rc;
        }
        fputs(p.prompt || p.interactive || p.conversation
                  ? "llamalite: interactive mode is not available in this build\n"
                  : "llamalite: no prompt given (use -p TEXT or -f FILE, or pipe it on stdin)\n",
              stderr);
        args_free(&p);
        return 1;
    }
    if (!p.prompt) { // piped in
        p.prompt_buf = read_stdin();
        if (!p.prompt_buf) {
            fputs("llamalite: cannot read the prompt from stdin\n", stderr);
            return 1;
        }
        size_t n = strlen(p.prompt_buf);
        if (n && p.prompt_buf[n - 1] == '\n') p.prompt_buf[n - 1] = 0; // like -f
        p.prompt = p.prompt_buf;
    }

    // Ctrl-C stops the generation (and still prints the summary); SIGPIPE becomes EPIPE.
    signal(SIGINT, on_sigint);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    run_stats st = {0};
    double t0 = cli_now();
    cli_load_read_in(p.no_mmap); // the draft model (-md) too
    ll_model *model = cli_load_model(p.model, p.verbosity >= 1, NULL);
    if (!model || !args_check_model(&p, model)) {
        ll_model_free(model);
        args_free(&p);
        return 1;
    }
    // -sys / --chat-template: the prompt goes through the chat template (tokenized with its
    // special tokens, as generation tokenizes every prompt).
    bool failed = false;
    char *templated = repl_oneshot_prompt ? repl_oneshot_prompt(model, &p, &failed) : NULL;
    if (failed) {
        ll_model_free(model);
        args_free(&p);
        return 1;
    }
    if (templated) {
        free(p.prompt_buf);
        p.prompt = p.prompt_buf = templated;
        p.harmony = repl_template_harmony && repl_template_harmony();
    }
    ll_context_params cp = ll_context_default_params();
    if (p.n_ctx > 0) cp.n_ctx = p.n_ctx;
    cp.n_batch = p.n_batch;
    cp.n_threads = p.n_threads;
    cp.type_k = p.type_k;
    cp.type_v = p.type_v;
    cp.flash_attn = p.flash_attn;
    cp.swa_full = p.swa_full;
    cli_loras loras; // --lora, --lora-scaled
    if (!cli_lora_load(&p, model, &loras)) {
        ll_model_free(model);
        args_free(&p);
        return 1;
    }
    ll_context *ctx = ll_context_new(model, &cp, err, sizeof err);
    if (ctx) ll_set_abort_callback(ctx, interrupted, NULL);
    if (!ctx || !cli_lora_attach(&p, &loras, ctx)) {
        if (!ctx) fprintf(stderr, "llamalite: %s\n", err);
        ll_context_free(ctx);
        cli_lora_free(&loras);
        ll_model_free(model);
        args_free(&p);
        return 1;
    }
    st.load_ms = (cli_now() - t0) * 1e3;
    cli_log(&p, 2, "model: %s (%s), %.2f M params, %d layers, context %d, threads %d\n",
            p.model, ll_model_desc(model), ll_model_n_params(model) / 1e6, ll_model_n_layer(model),
            ll_n_ctx(ctx), ll_n_threads(ctx));

    cli_spec *cs = NULL;
    if (spec_wanted()) {
        cs = spec_open(&p, ctx);
        if (!cs) {
            ll_context_free(ctx);
            cli_lora_free(&loras);
            ll_model_free(model);
            args_free(&p);
            return 1;
        }
    }
    int rc = generate(&p, ctx, ll_model_get_vocab(model), cs, &st);

    if (p.verbosity >= 1 && (st.n_prompt || st.n_gen)) {
        fprintf(stderr, "%sllamalite: load %.0f ms | prompt %d tokens, %.1f tokens/s | "
                "generation %d tokens, %.1f tokens/s\n", nl(), st.load_ms, st.n_prompt,
                st.prompt_ms > 0 ? st.n_prompt * 1e3 / st.prompt_ms : 0.0, st.n_gen,
                st.gen_ms > 0 ? st.n_gen * 1e3 / st.gen_ms : 0.0);
    }
    if (cs && p.verbosity >= 1) spec_print_stats(cs, stderr);
    spec_close(cs);
    ll_context_free(ctx);
    cli_lora_free(&loras);
    ll_model_free(model);
    args_free(&p);
    return rc;
}
