// The interactive chat: `llamalite -m MODEL` on a terminal (or with -i / -cnv).
//
// A line editor reads each message (lineedit.h); slash commands are handled here; everything
// else is a turn of the conversation (chat.h), whose reply streams to stdout. Ctrl-C while a
// reply is generated (or a long message is evaluated) stops it; Ctrl-C twice on an empty line,
// Ctrl-D or /exit leaves. When stdin is not a terminal, lines are read as they come and only the
// replies are printed. llama-cli's interactive flags: -r hands the turn back, --in-prefix /
// --in-suffix wrap each input, -if waits for the first input, -mli gathers lines.
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "chat.h"
#include "commands.h"
#include "lineedit.h"
#include "lora.h"
#include "progress.h"
#include "reasoning.h"
#include "speculative.h"

// ---- flags ----------------------------------------------------------------------------------

static struct {
    const char *tmpl;       // --chat-template NAME
    const char *tmpl_file;  // --chat-template-file F
    const char *system;     // -sys TEXT
    int color;              // -1 auto, 0 --no-color, 1 --color
    bool no_history;
    bool hide_reasoning;    // --reasoning off
} g_opt = {NULL, NULL, NULL, -1, false, false};

static chat_tmpl g_tmpl;    // the template chosen (pick_template)

int repl_parse_arg(int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strcmp(a, "--chat-template")) {
        if (!args_value(argc, argv, i, &g_opt.tmpl)) return ARG_ERROR;
        if (!chat_tmpl_is_jinja(g_opt.tmpl) && !ll_chat_detect(g_opt.tmpl)) {
            fprintf(stderr, "llamalite: unknown chat template '%s' (see 'llamalite template --list')\n", g_opt.tmpl);
            return ARG_ERROR;
        }
        return ARG_DONE;
    }
    if (!strcmp(a, "--chat-template-file"))
        return args_value(argc, argv, i, &g_opt.tmpl_file) ? ARG_DONE : ARG_ERROR;
    if (!strcmp(a, "--jinja")) return ARG_DONE;   // llama-cli's flag: Jinja is our default
    if (!strcmp(a, "--reasoning")) {
        const char *v;
        if (!args_value(argc, argv, i, &v)) return ARG_ERROR;
        if (strcmp(v, "on") && strcmp(v, "off")) {
            fprintf(stderr, "llamalite: --reasoning takes on or off, not '%s'\n", v);
            return ARG_ERROR;
        }
        g_opt.hide_reasoning = !strcmp(v, "off");
        return ARG_DONE;
    }
    if (!strcmp(a, "-sys") || !strcmp(a, "--system-prompt"))
        return args_value(argc, argv, i, &g_opt.system) ? ARG_DONE : ARG_ERROR;
    if (!strcmp(a, "--color")) { g_opt.color = 1; return ARG_DONE; }
    if (!strcmp(a, "--no-color")) { g_opt.color = 0; return ARG_DONE; }
    if (!strcmp(a, "--no-history")) { g_opt.no_history = true; return ARG_DONE; }
    return ARG_UNKNOWN;
}

void repl_print_help(FILE *out) {
    fputs("\nchat (with no -p on a terminal, or with -i / -cnv; -p is then the first message):\n"
          "  --chat-template NAME      use a built-in chat template instead of the model's own\n"
          "                            Jinja template ('llamalite template --list'), or the Jinja\n"
          "                            text given\n"
          "  --chat-template-file F    use the Jinja chat template in file F\n"
          "  --jinja                   accepted for llama-cli users (Jinja templates are the default)\n"
          "  --reasoning on|off        off: hide the thinking of reasoning models (<think>...</think>;\n"
          "                            on, the default, shows it, dimmed in the chat on a terminal)\n"
          "  -sys, --system-prompt T   the system message\n"
          "                            In one-shot, -sys, --chat-template or --chat-template-file\n"
          "                            puts -p through the template as a user message (after\n"
          "                            -sys) and generates the reply; without them -p is plain text\n"
          "  --color, --no-color       colour the prompt and input (default: on a terminal,\n"
          "                            unless NO_COLOR is set)\n"
          "  --no-history              do not read or write the input history\n"
          "                            ($XDG_STATE_HOME/llamalite/history or ~/.llamalite_history)\n", out);
}

// The template (g_tmpl): --chat-template NAME, --chat-template-file F, else the model's own
// Jinja template. False after a message.
static bool pick_template(const ll_model *model, bool quiet) {
    chat_tmpl_free(&g_tmpl);
    return chat_tmpl_pick(&g_tmpl, model, g_opt.tmpl, g_opt.tmpl_file, quiet);
}

char *repl_oneshot_prompt(const ll_model *model, const cli_params *p, bool *failed) {
    *failed = false;
    if (!g_opt.tmpl && !g_opt.tmpl_file && !g_opt.system) return NULL;
    if (!pick_template(model, true)) {
        *failed = true;
        return NULL;
    }
    if (!chat_tmpl_active(&g_tmpl)) {
        fputs("llamalite: -sys needs a chat template, and the model has none (--chat-template NAME or "
              "--chat-template-file F picks one)\n", stderr);
        *failed = true;
        return NULL;
    }
    const ll_vocab *v = ll_model_get_vocab(model);
    ll_token bos = ll_vocab_bos(v), eos = ll_vocab_eos(v);
    const char *bos_text = bos >= 0 ? ll_token_get_text(v, bos) : "";
    const char *eos_text = eos >= 0 ? ll_token_get_text(v, eos) : "";
    chat_msg msgs[2];
    size_t n = 0;
    if (g_opt.system && *g_opt.system) msgs[n++] = (chat_msg){"system", (char *)g_opt.system, NULL, -1};
    msgs[n++] = (chat_msg){"user", (char *)p->prompt, NULL, -1};
    char *out = NULL, err[600], name[300];
    if (chat_tmpl_render(&g_tmpl, msgs, n, true, bos_text, eos_text, &out, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "llamalite: %s\n", err);
        *failed = true;
        return NULL;
    }
    cli_log(p, 2, "prompt through the template %s\n", chat_tmpl_name(&g_tmpl, name, sizeof name));
    return out;
}

bool repl_hide_reasoning(void) { return g_opt.hide_reasoning; }
bool repl_template_harmony(void) { return g_tmpl.harmony; }

// ---- signals --------------------------------------------------------------------------------

static volatile sig_atomic_t g_generating = 0;
static volatile sig_atomic_t g_stop = 0;

// During a reply Ctrl-C stops it; otherwise (or a second time) it leaves at once.
static void on_sigint(int sig) {
    (void)sig;
    if (g_generating && !g_stop) {
        g_stop = 1;
        return;
    }
    le_term_restore();
    _exit(130);
}

// ---- output ---------------------------------------------------------------------------------

typedef struct {
    bool color;
    bool tty;
    bool one_line;       // newlines of the reply become spaces (piped JSON replies)
    bool wrote;          // the reply printed something
    char last;           // its last byte
    bool ok;
    const chat *chat;    // the conversation whose replies these are
    reasoning_filter thinking; // dims (colour) or hides (--reasoning off) <think>...</think>
    bool thinking_ready; // set up for the current reply
} out_state;

static bool emit(void *ud, const char *s, size_t n) {
    out_state *o = ud;
    if (!n) return o->ok;
    size_t start = 0;
    for (size_t i = 0; o->one_line && i < n; i++) {
        if (s[i] != '\n') continue;
        // JSON allows a space wherever it allows a newline.
        if (fwrite(s + start, 1, i - start, stdout) != i - start || fputc(' ', stdout) == EOF) o->ok = false;
        start = i + 1;
    }
    if (fwrite(s + start, 1, n - start, stdout) != n - start || fflush(stdout) != 0) o->ok = false;
    o->wrote = true;
    o->last = o->one_line && s[n - 1] == '\n' ? ' ' : s[n - 1];
    return o->ok;
}

// A piece of the reply through the thinking filter: thinking is dimmed on a colour terminal.
static bool emit_piece(void *ud, const char *s, size_t n, bool thinking) {
    out_state *o = ud;
    if (!thinking || !o->color) return emit(o, s, n);
    if (fputs("\x1b[2m", stdout) == EOF) o->ok = false;
    bool ok = emit(o, s, n);
    if (fputs("\x1b[0m", stdout) == EOF || fflush(stdout) != 0) o->ok = false;
    return ok && o->ok;
}

// chat_turn's emit: the reply streams through the thinking filter, set up at its first piece
// (the chat knows by then whether the prompt opened a <think>).
static bool emit_reply(void *ud, const char *s, size_t n) {
    out_state *o = ud;
    if (!o->thinking_ready) {
        reasoning_mode mode = g_opt.hide_reasoning ? REASONING_HIDE : o->color ? REASONING_DIM : REASONING_SHOW;
        reasoning_init(&o->thinking, mode, NULL, emit_piece, o);
        o->thinking.thinking = o->chat->turn_thinking;
        if (o->chat->tmpl && o->chat->tmpl->harmony) reasoning_set_harmony(&o->thinking);
        o->thinking_ready = true;
    }
    return reasoning_feed(&o->thinking, s, n);
}

// The newline after a reply (also when the reply's own newlines are turned into spaces).
static void end_line(out_state *o) {
    const bool one_line = o->one_line;
    o->one_line = false;
    emit(o, "\n", 1);
    o->one_line = one_line;
}

// A note for the user (dim on a colour terminal).
static void note(const out_state *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void note(const out_state *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    FILE *f = o->tty ? stdout : stderr;
    if (o->color) fputs("\x1b[2m", f);
    vfprintf(f, fmt, ap);
    if (o->color) fputs("\x1b[0m", f);
    fflush(f);
    va_end(ap);
}

// ---- slash commands -------------------------------------------------------------------------

static const char *const completions[] = {
    "/help", "/clear", "/system ", "/show", "/stats", "/save ", "/load ", "/exit",
    "/set temp ", "/set top_k ", "/set top_p ", "/set min_p ", "/set typical_p ", "/set repeat_last_n ",
    "/set repeat_penalty ", "/set frequency_penalty ", "/set presence_penalty ", "/set seed ",
    "/set n_predict ", "/lora", "/lora scale ", "/think", "/no_think",
};

static void print_help(void) {
    puts("  /help               this list\n"
         "  /clear              forget the conversation (keeps the system message)\n"
         "  /system [TEXT]      show or set the system message\n"
         "  /set NAME VALUE     temp, top_k, top_p, min_p, typical_p, repeat_last_n, repeat_penalty,\n"
         "                      frequency_penalty, presence_penalty, seed, n_predict\n"
         "  /show               model and settings\n"
         "  /lora [scale N S]   list the LoRA adapters, or set adapter N's scale (the conversation\n"
         "                      is then evaluated again)\n"
         "  /stats              context use and the speed of the last turn\n"
         "  /think, /no_think   reasoning models (Qwen3-style templates): think before replying, or\n"
         "                      not, from the next reply on; with TEXT: send TEXT with the switch\n"
         "  /save FILE          write the conversation as JSON\n"
         "  /load FILE          read a conversation saved with /save\n"
         "  /exit               leave (also Ctrl-D, or Ctrl-C twice on an empty line)\n"
         "Keys: arrows, Ctrl-A/E, Ctrl-Left/Right, Ctrl-K/U/W/Y, Up/Down history, Ctrl-R search,\n"
         "Tab completes commands, Ctrl-L clears. A line ending in \\ continues; \"\"\" opens and\n"
         "closes a multi-line block. Ctrl-C stops a reply.");
}

static void print_settings(const chat *c) {
    const ll_sampler_params *s = &c->sp;
    printf("  temp %.2f  top_k %d  top_p %.2f  min_p %.2f  typical_p %.2f\n"
           "  repeat_last_n %d  repeat_penalty %.2f  frequency_penalty %.2f  presence_penalty %.2f\n"
           "  seed %u  n_predict %d\n",
           s->temp, s->top_k, s->top_p, s->min_p, s->typical_p, s->repeat_last_n, s->repeat_penalty,
           s->freq_penalty, s->presence_penalty, ll_sampler_seed(c->smp), c->n_predict);
}

static void cmd_set(chat *c, char *args) {
    char *name = strtok(args, " \t"), *val = strtok(NULL, " \t");
    if (!name) {
        print_settings(c);
        return;
    }
    if (!val) {
        printf("usage: /set NAME VALUE\n");
        return;
    }
    ll_sampler_params sp = c->sp;
    char *end;
    errno = 0;
    double d = strtod(val, &end);
    if (*end || errno || end == val) {
        printf("not a number: '%s'\n", val);
        return;
    }
    const char *expect = NULL; // the valid range, when val is outside it
    long lv = (long)d;
    const bool prob = d >= 0 && d <= 1;
    if (!strcmp(name, "temp") || !strcmp(name, "temperature")) sp.temp = (float)d;
    else if (!strcmp(name, "top_k") || !strcmp(name, "top-k")) sp.top_k = (int32_t)lv;
    else if (!strcmp(name, "top_p") || !strcmp(name, "top-p")) expect = prob ? NULL : "[0, 1]", sp.top_p = (float)d;
    else if (!strcmp(name, "min_p") || !strcmp(name, "min-p")) expect = prob ? NULL : "[0, 1]", sp.min_p = (float)d;
    else if (!strcmp(name, "typical_p") || !strcmp(name, "typical")) expect = prob ? NULL : "[0, 1]", sp.typical_p = (float)d;
    else if (!strcmp(name, "repeat_last_n")) expect = lv >= -1 ? NULL : ">= -1", sp.repeat_last_n = (int32_t)lv;
    else if (!strcmp(name, "repeat_penalty")) expect = d > 0 ? NULL : "> 0; 1 = off", sp.repeat_penalty = (float)d;
    else if (!strcmp(name, "frequency_penalty") || !strcmp(name, "freq_penalty")) sp.freq_penalty = (float)d;
    else if (!strcmp(name, "presence_penalty")) sp.presence_penalty = (float)d;
    else if (!strcmp(name, "seed")) { // restarts the random stream; -1: a random seed
        if (!(d == -1 || (d >= 0 && d <= 4294967295.0 && d == floor(d)))) {
            printf("invalid value '%s' for seed (expected -1 for random, or 0 to 4294967295)\n", val);
            return;
        }
        c->sp.seed = d < 0 ? LL_DEFAULT_SEED : (uint32_t)d;
        ll_sampler_set_seed(c->smp, c->sp.seed);
        printf("seed = %u\n", ll_sampler_seed(c->smp));
        return;
    }
    else if (!strcmp(name, "n_predict") || !strcmp(name, "n-predict")) {
        if (lv >= -1 && lv <= 1 << 30) printf("n_predict = %d\n", c->n_predict = (int)lv);
        else printf("invalid value '%s' for %s (expected -1 to %d)\n", val, name, 1 << 30);
        return;
    } else {
        printf("unknown setting '%s' (/set shows them)\n", name);
        return;
    }
    if (expect) {
        printf("invalid value '%s' for %s (expected %s)\n", val, name, expect);
        return;
    }
    if (!chat_set_sampling(c, &sp)) printf("out of memory\n");
    else printf("%s = %s\n", name, val);
}

static void cmd_show(const chat *c, const cli_params *p) {
    const ll_model *m = c->model;
    printf("  model     %s (%s)\n", p->model, ll_model_desc(m));
    printf("  params    %.2f M, %d layers, embedding %d, trained context %d\n", (double)ll_model_n_params(m) / 1e6,
           ll_model_n_layer(m), ll_model_n_embd(m), ll_model_n_ctx_train(m));
    printf("  context   %d tokens, %d threads\n", ll_n_ctx(c->ctx), ll_n_threads(c->ctx));
    char name[300];
    printf("  template  %s\n", c->tmpl ? chat_tmpl_name(c->tmpl, name, sizeof name) : "none (plain continuation)");
    const char *sys = chat_system(c);
    printf("  system    %s\n", sys ? sys : "(none)");
    print_settings(c);
}

static void cmd_stats(const chat *c) {
    int n_ctx = ll_n_ctx(c->ctx), used = ll_n_past(c->ctx);
    printf("  context      %d / %d tokens (%.0f%%), %zu message%s\n", used, n_ctx, 100.0 * used / n_ctx, c->n_msgs,
           c->n_msgs == 1 ? "" : "s");
    printf("  last prompt  %d new tokens in %.1f ms (%.1f tokens/s)\n", c->turn_prompt_tokens, c->turn_prompt_ms,
           c->turn_prompt_ms > 0 ? c->turn_prompt_tokens * 1e3 / c->turn_prompt_ms : 0.0);
    printf("  last reply   %d tokens in %.1f ms (%.1f tokens/s)\n", c->turn_gen_tokens, c->turn_gen_ms,
           c->turn_gen_ms > 0 ? c->turn_gen_tokens * 1e3 / c->turn_gen_ms : 0.0);
    ll_timings t = ll_get_timings(c->ctx);
    printf("  total        prompt %d tokens in %.0f ms, generation %d tokens in %.0f ms\n", t.n_prompt,
           t.t_prompt_ms, t.n_gen, t.t_gen_ms);
}

// /lora: lists the adapters; /lora scale N S sets adapter N's scale. The KV cache was computed
// with the old scale, so it is dropped: the next turn evaluates the whole conversation again.
static void cmd_lora(chat *c, char *args) {
    const int n = ll_context_n_adapters(c->ctx);
    if (!*args) {
        if (n == 0) puts("(no LoRA adapters: start with --lora FILE or --lora-scaled FILE S)");
        for (int i = 0; i < n; i++) {
            float s;
            const ll_adapter *a = ll_context_adapter(c->ctx, i, &s);
            printf("  %d: %s  scale %g  (%d weights, rank %d, alpha %g)\n", i + 1, ll_adapter_path(a), s,
                   ll_adapter_n_weights(a), ll_adapter_rank(a), ll_adapter_alpha(a));
        }
        return;
    }
    char *end;
    long idx = 0;
    double scale = 0;
    bool ok = !strncmp(args, "scale", 5) && (args[5] == ' ' || args[5] == '\t');
    if (ok) {
        idx = strtol(args + 6, &end, 10);
        ok = end != args + 6 && (*end == ' ' || *end == '\t');
    }
    if (ok) {
        const char *sv = end + strspn(end, " \t");
        scale = strtod(sv, &end);
        ok = end != sv && *end == 0 && isfinite(scale) && fabs(scale) <= 1e6;
    }
    if (!ok) {
        puts("usage: /lora (list) or /lora scale N S (N as listed, S a number)");
        return;
    }
    if (idx < 1 || idx > n) {
        printf("no LoRA adapter %ld (%d loaded; /lora lists them)\n", idx, n);
        return;
    }
    char err[256];
    ll_adapter *a = ll_context_adapter(c->ctx, (int)idx - 1, NULL);
    if (ll_context_set_adapter(c->ctx, a, (float)scale, err, sizeof err) != 0) {
        printf("%s\n", err);
        return;
    }
    ll_kv_clear(c->ctx);
    c->n_cache = 0; // chat.c then tokenizes and evaluates the whole conversation
    printf("(adapter %ld scale %g; the conversation is evaluated again on the next turn)\n", idx, scale);
}

// /think and /no_think. Qwen3's templates read enable_thinking (false: an empty think block
// ends the generation prompt): without TEXT the switch sets it for the replies to come. With
// TEXT, the model card's soft switch: the message is sent with "/think" or "/no_think" at its end.
// Returns the message to send (malloc'd), or NULL.
static char *cmd_think(chat *c, bool on, const char *text) {
    if (*text) {
        size_t n = strlen(text) + 16;
        char *msg = malloc(n);
        if (msg) snprintf(msg, n, "%s %s", text, on ? "/think" : "/no_think");
        return msg;
    }
    if (!c->tmpl || !c->tmpl->has_enable_thinking) {
        printf("this chat template has no thinking switch (enable_thinking); /%s TEXT sends TEXT with it\n",
               on ? "think" : "no_think");
        return NULL;
    }
    free(c->tmpl->extra_json);
    c->tmpl->extra_json = strdup(on ? "{\"enable_thinking\": true}" : "{\"enable_thinking\": false}");
    printf("(thinking %s from the next reply on)\n", on ? "on" : "off");
    return NULL;
}

// Returns false when the REPL should end.
// /save FILE also writes FILE.kv, a session file of the KV cache and the tokens it holds, and
// /load FILE takes it back when it is there, so that a resumed conversation is not evaluated
// again (the next turn evaluates only what follows the longest common prefix of the
// conversation's tokens and the cache's). A session that does not fit this model and context
// (-c, -ctk/-ctv) is refused with one line; the conversation then is evaluated anew.
static void save_session(chat *c, const char *path) {
    char kv[4096], err[512];
    if (c->n_cache == 0 || c->n_cache != ll_n_past(c->ctx) || snprintf(kv, sizeof kv, "%s.kv", path) >= (int)sizeof kv)
        return;
    if (ll_session_save(c->ctx, kv, c->cache, c->n_cache, NULL, 0, err, sizeof err) != 0) printf("%s\n", err);
    else printf("(saved the cache of %d tokens to %s)\n", c->n_cache, kv);
}

static void load_session(chat *c, const char *path) {
    char kv[4096], err[512];
    if (snprintf(kv, sizeof kv, "%s.kv", path) >= (int)sizeof kv || access(kv, F_OK) != 0) return;
    ll_token *toks = NULL;
    int n = 0;
    c->n_cache = 0;
    if (ll_session_load(c->ctx, kv, &toks, &n, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "llamalite: %s (the conversation will be evaluated again)\n", err);
        return;
    }
    if (n > c->cap_cache) {
        ll_token *grown = realloc(c->cache, sizeof *grown * (size_t)n);
        if (!grown) {
            free(toks);
            ll_kv_clear(c->ctx);
            puts("out of memory (the conversation will be evaluated again)");
            return;
        }
        c->cache = grown;
        c->cap_cache = n;
    }
    memcpy(c->cache, toks, sizeof *toks * (size_t)n);
    c->n_cache = n;
    c->reply_in_cache = false;
    free(toks);
    printf("(loaded the cache of %d tokens from %s)\n", n, kv);
}

static bool slash_command(chat *c, const cli_params *p, char *line, char **send) {
    char *cmd = line, *args = line + strcspn(line, " \t");
    if (*args) *args++ = 0;
    args += strspn(args, " \t");
    size_t al = strlen(args);
    while (al && (args[al - 1] == ' ' || args[al - 1] == '\t' || args[al - 1] == '\n')) args[--al] = 0;
    char err[512];
    if (!strcmp(cmd, "/exit") || !strcmp(cmd, "/quit") || !strcmp(cmd, "/bye")) return false;
    if (!strcmp(cmd, "/help") || !strcmp(cmd, "/?")) print_help();
    else if (!strcmp(cmd, "/clear")) {
        chat_clear(c);
        puts("(conversation cleared)");
    } else if (!strcmp(cmd, "/system")) {
        if (!*args) {
            const char *s = chat_system(c);
            puts(s ? s : "(no system message)");
        } else if (!chat_set_system(c, args)) {
            puts("out of memory");
        } else {
            puts("(system message set)");
        }
    } else if (!strcmp(cmd, "/set")) cmd_set(c, args);
    else if (!strcmp(cmd, "/show")) cmd_show(c, p);
    else if (!strcmp(cmd, "/lora")) cmd_lora(c, args);
    else if (!strcmp(cmd, "/stats")) cmd_stats(c);
    else if (!strcmp(cmd, "/think") || !strcmp(cmd, "/no_think")) *send = cmd_think(c, !strcmp(cmd, "/think"), args);
    else if (!strcmp(cmd, "/save")) {
        if (!*args) puts("usage: /save FILE");
        else if (!chat_save(c, args, err, sizeof err)) printf("%s\n", err);
        else {
            printf("(saved %zu message%s to %s)\n", c->n_msgs, c->n_msgs == 1 ? "" : "s", args);
            save_session(c, args);
        }
    } else if (!strcmp(cmd, "/load")) {
        if (!*args) puts("usage: /load FILE");
        else if (!chat_load(c, args, err, sizeof err)) printf("%s\n", err);
        else {
            printf("(loaded %zu message%s from %s)\n", c->n_msgs, c->n_msgs == 1 ? "" : "s", args);
            load_session(c, args);
        }
    } else {
        printf("unknown command '%s' (/help lists them)\n", cmd);
    }
    fflush(stdout);
    return true;
}

// ---- the loop -------------------------------------------------------------------------------

static bool use_color(void) {
    if (g_opt.color >= 0) return g_opt.color == 1;
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc) return false;
    return isatty(STDOUT_FILENO) != 0;
}

// -mli: adds line to the message being typed; a line ending in '/' completes it: returns the
// whole message (malloc'd; *typed reset), else NULL. Takes line.
static char *gather_lines(char **typed, char *line) {
    size_t l = strlen(line), t = *typed ? strlen(*typed) : 0;
    const bool send = l && line[l - 1] == '/';
    if (send) line[--l] = 0;
    char *all = realloc(*typed, t + l + 2);
    if (!all) {
        free(line);
        return NULL;
    }
    memcpy(all + t, line, l + 1);
    free(line);
    if (!send) {
        memcpy(all + t + l, "\n", 2);
        *typed = all;
        return NULL;
    }
    *typed = NULL;
    return all;
}

// What a typed message sends: with -if the prompt goes first; in llama-cli's plain interactive
// text (-r, --in-prefix/--in-suffix) the input is --in-prefix, the line and its newline, then
// --in-suffix. Malloc'd; NULL when out of memory.
static char *compose_input(const cli_params *p, bool plain_join, const char *lead, const char *text) {
    const char *pre = plain_join && p->in_prefix ? p->in_prefix : "";
    const char *suf = plain_join && p->in_suffix ? p->in_suffix : "";
    const char *lead_sep = lead && !plain_join ? "\n" : "";
    size_t n = (lead ? strlen(lead) : 0) + strlen(lead_sep) + strlen(pre) + strlen(text) + 1 + strlen(suf) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s%s%s%s", lead ? lead : "", lead_sep, pre, text, plain_join ? "\n" : "", suf);
    return s;
}

static int run_turn(chat *c, const cli_params *p, le_term *term, out_state *o, const char *text) {
    char err[512] = "";
    o->wrote = false;
    o->last = 0;
    g_stop = 0;
    le_term_quiet(term, true);
    g_generating = 1;
    ll_spec_stats before = {0};
    if (c->spec) before = spec_stats(c->spec);
    o->chat = c;
    o->thinking_ready = false;
    int rc = chat_turn(c, text, &g_stop, emit_reply, o, err, sizeof err);
    if (o->thinking_ready) reasoning_flush(&o->thinking);
    g_generating = 0;
    le_term_quiet(term, false);
    if ((o->wrote && o->last != '\n') || (!o->wrote && o->tty)) end_line(o);
    if (rc != 0 && g_stop) { // Ctrl-C while the message was evaluated
        note(o, "(stopped; the message was not sent)\n");
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "llamalite: %s\n", err);
        return rc;
    }
    if (g_stop) note(o, "(stopped)\n");
    if (c->turn_ctx_full) note(o, "(the context is full: older turns are dropped next time)\n");
    if (c->turn_grammar_stuck) note(o, "(%s)\n", c->turn_grammar_stuck);
    if (c->turn_dropped)
        cli_log(p, 1, "[dropped %d old message%s to make room; %d cached tokens shifted out]\n", c->turn_dropped,
                c->turn_dropped == 1 ? "" : "s", c->turn_shifted);
    cli_log(p, 2, "[prompt: %d new tokens, %.1f ms | reply: %d tokens, %.1f tokens/s | context %d/%d]\n",
            c->turn_prompt_tokens, c->turn_prompt_ms, c->turn_gen_tokens,
            c->turn_gen_ms > 0 ? c->turn_gen_tokens * 1e3 / c->turn_gen_ms : 0.0, ll_n_past(c->ctx), ll_n_ctx(c->ctx));
    if (c->spec && p->verbosity >= 1) spec_print_turn(c->spec, &before, c->turn_gen_tokens, c->turn_gen_ms, stderr);
    return 0;
}

int repl_main(int argc, char **argv, cli_params *p) {
    (void)argc;
    (void)argv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    cli_load_read_in(p->no_mmap); // the draft model (-md) too
    ll_model *model = cli_load_model(p->model, p->verbosity >= 1, NULL);
    if (!model || !args_check_model(p, model)) {
        ll_model_free(model);
        return 1;
    }
    ll_context_params cp = ll_context_default_params();
    if (p->n_ctx > 0) cp.n_ctx = p->n_ctx;
    cp.n_batch = p->n_batch;
    cp.n_threads = p->n_threads;
    cp.type_k = p->type_k;
    cp.type_v = p->type_v;
    cp.flash_attn = p->flash_attn;
    cp.swa_full = p->swa_full;
    // What is set up so far, released in reverse order at `release`.
    int rc = 1;
    ll_context *ctx = NULL;
    cli_spec *cs = NULL;
    bool have_loras = false, have_chat = false;
    chat c;
    cli_loras loras; // --lora, --lora-scaled: /lora lists them and changes their scales
    if (!(have_loras = cli_lora_load(p, model, &loras))) goto release;
    ctx = ll_context_new(model, &cp, err, sizeof err);
    if (!ctx || !cli_lora_attach(p, &loras, ctx)) {
        if (!ctx) fprintf(stderr, "llamalite: %s\n", err);
        goto release;
    }
    // -md / --lookup-ngram: replies come from speculative decoding (same text, faster).
    if (spec_wanted() && !(cs = spec_open(p, ctx))) goto release;

    // --in-prefix / --in-suffix wrap raw text: plain continuation, as llama-cli does.
    const bool wrapped = p->in_prefix || p->in_suffix;
    if (!wrapped && !pick_template(model, p->verbosity < 1)) goto release;
    chat_tmpl *tmpl = wrapped ? NULL : &g_tmpl;
    if (!(have_chat = chat_init(&c, model, ctx, tmpl, &p->sampling, p->n_predict, err, sizeof err))) {
        fprintf(stderr, "llamalite: %s\n", err);
        goto release;
    }
    c.spec = cs;
    c.reverse = p->reverse;
    c.n_reverse = p->n_reverse;
    c.plain_join = wrapped || p->n_reverse > 0; // llama-cli's interactive text: no added newline
    if (cli_grammar_wanted(&p->grammar)) { // every reply follows the grammar / schema
        char *gtext = cli_grammar_text(&p->grammar);
        const bool have_text = gtext != NULL; // cli_grammar_text reports its own errors
        c.grammar = have_text ? ll_grammar_parse(gtext, err, sizeof err) : NULL;
        free(gtext);
        if (!c.grammar) {
            if (have_text) fprintf(stderr, "llamalite: grammar: %s\n", err);
            goto release;
        }
    }
    // -p is the first message (with -if it goes in front of the first one typed).
    const char *first_input = p->prompt && *p->prompt ? p->prompt : NULL;
    const char *lead = p->interactive_first ? first_input : NULL;
    if (lead) first_input = NULL;
    if (g_opt.system && !chat_set_system(&c, g_opt.system)) {
        fputs("llamalite: out of memory\n", stderr);
        goto release;
    }

    le_term term;
    le_term_init(&term, STDIN_FILENO, STDOUT_FILENO, use_color());
    // Piped JSON replies stay one per line.
    const bool json = p->grammar.schema || p->grammar.schema_file || p->grammar.any_json;
    out_state o = {.color = term.color, .tty = term.tty, .one_line = !term.tty && json, .ok = true};
    le_history hist;
    le_history_init(&hist, 1000);
    char *hist_path = NULL;
    if (term.tty && !g_opt.no_history) {
        hist_path = le_history_default_path();
        if (hist_path) le_history_load(&hist, hist_path);
    }
    le_state ed;
    le_init(&ed, &hist);
    le_set_completions(&ed, completions, (int)(sizeof completions / sizeof completions[0]));

    char tmpl_name[300];
    if (term.tty)
        note(&o, "llamalite chat: %s, template %s. /help for commands, Ctrl-D to leave.\n", ll_model_desc(model),
             c.tmpl ? chat_tmpl_name(c.tmpl, tmpl_name, sizeof tmpl_name) : "none (plain continuation)");

    rc = 0;
    int empty_interrupts = 0;
    bool turn_failed = false; // piped: a failed turn (e.g. a line too long) ends only itself
    if (first_input && run_turn(&c, p, &term, &o, first_input) != 0) turn_failed = true;
    char *typed = NULL; // -mli: the lines so far of a message
    while (o.ok) {
        char *line = NULL;
        le_result r = le_readline(&term, &ed, typed ? ". " : "> ", &line);
        if (r == LE_EOF) break;
        if (r == LE_INTERRUPT) {
            if (ed.len == 0 && ++empty_interrupts >= 2) break;
            if (ed.len == 0) note(&o, "(Ctrl-C again or Ctrl-D to leave)\n");
            else empty_interrupts = 0;
            continue;
        }
        empty_interrupts = 0;
        if (term.tty && ed.len) {
            le_history_add(&hist, ed.buf);
            if (hist_path) le_history_save(&hist, hist_path);
        }
        size_t skip = strspn(line, " \t\n");
        if (line[skip] == 0 && !typed) {
            free(line);
            continue;
        }
        if (!typed && line[0] == '/' && line[1] != '/' && line[1] != ' ' && line[1]) {
            char *send = NULL;   // a command that sends a message (/no_think TEXT)
            bool go_on = slash_command(&c, p, line, &send);
            free(line);
            if (!go_on) break;
            if (!send) continue;
            line = send;
        }
        if (p->multiline && !(line = gather_lines(&typed, line))) continue; // more lines to come
        // "//text" sends "/text".
        const char *text = line[0] == '/' && line[1] == '/' ? line + 1 : line;
        char *input = compose_input(p, c.plain_join, lead, text);
        lead = NULL;
        if (!input) fputs("llamalite: out of memory\n", stderr);
        if (!input || (run_turn(&c, p, &term, &o, input) != 0 && !term.tty)) turn_failed = true;
        free(input);
        free(line);
    }
    free(typed);
    if (turn_failed) rc = 1;

    le_free(&ed);
    le_history_free(&hist);
    free(hist_path);
    le_term_restore();

release:
    if (have_chat) chat_free(&c);
    chat_tmpl_free(&g_tmpl);
    spec_close(cs);
    ll_context_free(ctx);
    if (have_loras) cli_lora_free(&loras);
    ll_model_free(model);
    return rc;
}
