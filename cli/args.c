// Shared flag parsing: validated numbers, one-line errors, llama-cli's flag names.
#include "args.h"
#include "progress.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void args_defaults(cli_params *p) {
    memset(p, 0, sizeof *p);
    p->escape = true;
    p->n_predict = -1;
    p->n_keep = 0;
    p->context_shift = true;
    p->n_batch = 512;
    p->type_k = LL_CACHE_F16;
    p->type_v = LL_CACHE_F16;
    p->sampling = ll_sampler_default_params();
    p->verbosity = 1;
}

void args_free(cli_params *p) {
    free(p->prompt_buf);
    p->prompt_buf = NULL;
    p->prompt = NULL;
}

void cli_log(const cli_params *p, int level, const char *fmt, ...) {
    if (p && p->verbosity < level) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

void args_unknown(const char *cmd, const char *flag) {
    if (cmd)
        fprintf(stderr, "llamalite: unknown option '%s' (try 'llamalite %s --help')\n", flag, cmd);
    else
        fprintf(stderr, "llamalite: unknown option '%s' (try 'llamalite --help')\n", flag);
}

bool args_value(int argc, char **argv, int *i, const char **out) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "llamalite: %s needs a value\n", argv[*i]);
        return false;
    }
    *i += 1;
    *out = argv[*i];
    return true;
}

static void invalid(const char *flag, const char *s) {
    fprintf(stderr, "llamalite: invalid value '%s' for %s\n", s, flag);
}

// "invalid value 'x' for F (expected ...)", the range stated where there is one (limits at
// +-1e9 or the int range count as none).
static void out_of_range(const char *flag, const char *s, const char *what, double min, double max) {
    const bool lo = min > -1e9 && min > INT_MIN, hi = max < 1e9 && max < INT_MAX;
    fprintf(stderr, "llamalite: invalid value '%s' for %s (expected %s", s, flag, what);
    if (lo && hi) fprintf(stderr, " in [%g, %g])\n", min, max);
    else if (lo) fprintf(stderr, " >= %g)\n", min);
    else if (hi) fprintf(stderr, " <= %g)\n", max);
    else fputs(")\n", stderr);
}

bool args_int(const char *flag, const char *s, long min, long max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max || v < INT_MIN || v > INT_MAX) {
        out_of_range(flag, s, "an integer", (double)min, (double)max);
        return false;
    }
    *out = (int)v;
    return true;
}

bool args_float(const char *flag, const char *s, double min, double max, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max) {
        out_of_range(flag, s, "a number", min, max);
        return false;
    }
    *out = (float)v;
    return true;
}

bool args_u32(const char *flag, const char *s, uint32_t *out) {
    char *end;
    errno = 0;
    // -1 is llama-cli's "random seed"; anything else must be a plain unsigned 32-bit number.
    if (!strcmp(s, "-1")) {
        *out = LL_DEFAULT_SEED;
        return true;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > 0xFFFFFFFFull) {
        fprintf(stderr, "llamalite: invalid value '%s' for %s (expected -1 for random, or 0 to 4294967295)\n", s, flag);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool cache_type(const char *flag, const char *s, ll_cache_type *out) {
    if (ll_cache_type_from_name(s, out)) return true;
    fprintf(stderr, "llamalite: invalid value '%s' for %s (expected f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1 or iq4_nl)\n", s, flag);
    return false;
}

// --samplers NAMES (';'-separated, llama.cpp's names) or --sampling-seq LETTERS into the
// sampler's order letters.
static const struct {
    const char *name;
    char letter;
} sampler_names[] = {
    {"penalties", 'e'}, {"dry", 'd'}, {"top_k", 'k'}, {"top-k", 'k'}, {"typ_p", 'y'}, {"typical", 'y'},
    {"typical-p", 'y'}, {"typ-p", 'y'}, {"typ", 'y'}, {"top_p", 'p'}, {"top-p", 'p'}, {"nucleus", 'p'},
    {"min_p", 'm'}, {"min-p", 'm'}, {"xtc", 'x'}, {"temperature", 't'}, {"temp", 't'},
};

static bool sampler_order(const char *flag, const char *v, bool letters, char *order, size_t cap) {
    size_t n = 0;
    for (const char *s = v; *s;) {
        size_t len = letters ? 1 : strcspn(s, ";");
        char letter = 0;
        for (size_t i = 0; i < sizeof sampler_names / sizeof sampler_names[0] && !letter; i++) {
            const char *nm = sampler_names[i].name;
            if (letters ? *s == sampler_names[i].letter : strlen(nm) == len && !strncmp(s, nm, len))
                letter = sampler_names[i].letter;
        }
        if (!letter || n + 1 >= cap) {
            fprintf(stderr, "llamalite: invalid value '%s' for %s (expected %s, at most %zu)\n", v, flag,
                    letters ? "letters of edkypmxt" : "names such as penalties;dry;top_k;typ_p;top_p;min_p;xtc;temperature",
                    cap - 1);
            return false;
        }
        order[n++] = letter;
        s += len;
        if (!letters && *s == ';') s++;
    }
    order[n] = 0;
    if (n == 0) {
        fprintf(stderr, "llamalite: %s needs at least one sampler\n", flag);
        return false;
    }
    return true;
}

// -l TOKEN+BIAS / TOKEN-BIAS (llama-cli's form; BIAS may be inf).
static bool logit_bias(const char *flag, const char *v, cli_params *p) {
    char *end;
    errno = 0;
    long tok = strtol(v, &end, 10);
    float bias;
    bool ok = !errno && end != v && tok >= 0 && tok <= INT_MAX && (*end == '+' || *end == '-');
    if (ok) {
        const char *b = end + 1;
        char *bend;
        double d = strtod(b, &bend);
        ok = bend != b && *bend == 0 && !isnan(d);
        bias = (float)(*end == '-' ? -d : d);
    }
    if (!ok) {
        fprintf(stderr, "llamalite: invalid value '%s' for %s (expected TOKEN_ID+BIAS or TOKEN_ID-BIAS, "
                "e.g. 15043+1 or 2-inf)\n", v, flag);
        return false;
    }
    if (p->sampling.n_logit_bias >= ARGS_MAX_LOGIT_BIAS) {
        fprintf(stderr, "llamalite: too many %s (at most %d)\n", flag, ARGS_MAX_LOGIT_BIAS);
        return false;
    }
    p->logit_bias[p->sampling.n_logit_bias++] = (ll_logit_bias){(ll_token)tok, bias};
    p->sampling.logit_bias = p->logit_bias;
    return true;
}

// --dry-sequence-breaker S: the first replaces the defaults, "none" clears them.
static bool dry_breaker(const char *flag, char *v, cli_params *p) {
    const char **b = p->sampling.dry_breakers;
    if (!p->dry_breakers_given || !strcmp(v, "none")) memset(b, 0, sizeof p->sampling.dry_breakers);
    p->dry_breakers_given = true;
    if (!strcmp(v, "none")) return true;
    args_unescape(v);
    int n = 0;
    while (n < LL_MAX_DRY_BREAKERS && b[n]) n++;
    if (n == LL_MAX_DRY_BREAKERS) {
        fprintf(stderr, "llamalite: too many %s (at most %d)\n", flag, LL_MAX_DRY_BREAKERS);
        return false;
    }
    if (!*v) {
        fprintf(stderr, "llamalite: invalid value '' for %s (expected a non-empty string)\n", flag);
        return false;
    }
    b[n] = v;
    return true;
}

// True when a equals one of the (up to three) names.
static bool is(const char *a, const char *n1, const char *n2, const char *n3) {
    return (n1 && !strcmp(a, n1)) || (n2 && !strcmp(a, n2)) || (n3 && !strcmp(a, n3));
}

int args_parse_common(int argc, char **argv, int *i, cli_params *p, unsigned g) {
    const char *a = argv[*i], *v = NULL;
    ll_sampler_params *s = &p->sampling;
#define VALUE() \
    if (!args_value(argc, argv, i, &v)) return ARG_ERROR
#define CHECKED(expr) return (expr) ? ARG_DONE : ARG_ERROR

    if ((g & ARGS_MODEL) && is(a, "-m", "--model", NULL)) {
        VALUE();
        p->model = v;
        return ARG_DONE;
    }
    if ((g & ARGS_MODEL) && is(a, "--no-repack", NULL, NULL)) {
        cli_load_no_repack(true); // every model loaded from now on (the draft model too)
        return ARG_DONE;
    }
    if (g & ARGS_PROMPT) {
        if (is(a, "-p", "--prompt", NULL)) {
            VALUE();
            p->prompt = v;
            p->prompt_file = NULL;
            return ARG_DONE;
        }
        if (is(a, "-f", "--file", NULL)) {
            VALUE();
            p->prompt_file = v;
            p->prompt = NULL;
            return ARG_DONE;
        }
        if (is(a, "-e", "--escape", NULL)) { p->escape = true; return ARG_DONE; }
        if (is(a, "--no-escape", NULL, NULL)) { p->escape = false; return ARG_DONE; }
    }
    if (g & ARGS_GEN) {
        if (is(a, "-n", "--n-predict", "--predict")) {
            VALUE();
            CHECKED(args_int(a, v, -1, INT_MAX, &p->n_predict));
        }
        if (is(a, "--keep", NULL, NULL)) {
            VALUE();
            CHECKED(args_int(a, v, -1, INT_MAX, &p->n_keep));
        }
        if (is(a, "--no-context-shift", NULL, NULL)) { p->context_shift = false; return ARG_DONE; }
        if (is(a, "--context-shift", NULL, NULL)) { p->context_shift = true; return ARG_DONE; }
        if (is(a, "-r", "--reverse-prompt", NULL)) {
            VALUE();
            if (!*v) {
                invalid(a, v);
                return ARG_ERROR;
            }
            if (p->n_reverse >= ARGS_MAX_REVERSE) {
                fprintf(stderr, "llamalite: too many reverse prompts (at most %d)\n", ARGS_MAX_REVERSE);
                return ARG_ERROR;
            }
            p->reverse[p->n_reverse++] = v;
            return ARG_DONE;
        }
        if (is(a, "--echo", NULL, NULL)) { p->echo = true; return ARG_DONE; }
        if (is(a, "-i", "--interactive", NULL)) { p->interactive = true; return ARG_DONE; }
        if (is(a, "-cnv", "--conversation", NULL)) { p->conversation = true; return ARG_DONE; }
        // Accepted for llama-cli habits: one-shot and a hidden prompt are already the default.
        if (is(a, "-no-cnv", "--no-conversation", NULL)) { p->conversation = false; return ARG_DONE; }
        if (is(a, "--no-display-prompt", NULL, NULL)) { p->echo = false; return ARG_DONE; }
        if (is(a, "-if", "--interactive-first", NULL)) {
            p->interactive = p->interactive_first = true;
            return ARG_DONE;
        }
        if (is(a, "-sp", "--special", NULL)) { p->special = true; return ARG_DONE; }
        if (is(a, "-mli", "--multiline-input", NULL)) { p->multiline = true; return ARG_DONE; }
        if (is(a, "--in-prefix", NULL, NULL)) {
            VALUE();
            p->in_prefix = v;
            return ARG_DONE;
        }
        if (is(a, "--in-suffix", NULL, NULL)) {
            VALUE();
            p->in_suffix = v;
            return ARG_DONE;
        }
        if (is(a, "--prompt-cache", NULL, NULL)) {
            VALUE();
            p->prompt_cache = v;
            return ARG_DONE;
        }
        if (is(a, "--prompt-cache-all", NULL, NULL)) { p->prompt_cache_all = true; return ARG_DONE; }
        if (is(a, "--prompt-cache-ro", NULL, NULL)) { p->prompt_cache_ro = true; return ARG_DONE; }
    }
    if (g & ARGS_CONTEXT) {
        if (is(a, "-c", "--ctx-size", NULL)) {
            VALUE();
            CHECKED(args_int(a, v, 0, 1 << 20, &p->n_ctx));
        }
        if (is(a, "-b", "--batch-size", NULL)) {
            VALUE();
            CHECKED(args_int(a, v, 1, 1 << 20, &p->n_batch));
        }
        if (is(a, "-ctk", "--cache-type-k", NULL)) {
            VALUE();
            CHECKED(cache_type(a, v, &p->type_k));
        }
        if (is(a, "-ctv", "--cache-type-v", NULL)) {
            VALUE();
            CHECKED(cache_type(a, v, &p->type_v));
        }
        if (is(a, "--swa-full", NULL, NULL)) { p->swa_full = true; return ARG_DONE; }
        // -fa alone turns it on (llama-cli of early 2025); -fa on|off|auto (later llama-cli).
        if (is(a, "-fa", "--flash-attn", NULL)) {
            const char *w = *i + 1 < argc ? argv[*i + 1] : "";
            p->flash_attn = LL_FLASH_ATTN_ON;
            if (!strcmp(w, "on") || !strcmp(w, "off") || !strcmp(w, "auto")) {
                ++*i;
                p->flash_attn = !strcmp(w, "on") ? LL_FLASH_ATTN_ON : !strcmp(w, "off") ? LL_FLASH_ATTN_OFF : LL_FLASH_ATTN_AUTO;
            }
            return ARG_DONE;
        }
    }
    if (g & ARGS_LOAD) {
        if (is(a, "--mlock", NULL, NULL)) {
            // mlockall would bring every given-back page of the file back: keep the file's layout
            p->mlock = true;
            cli_load_no_repack(true);
            return ARG_DONE;
        }
        if (is(a, "--no-mmap", NULL, NULL)) { p->no_mmap = true; return ARG_DONE; }
        if (is(a, "--no-warmup", NULL, NULL)) return ARG_DONE; // there is no warm-up run to skip
        if (is(a, "-ngl", "--n-gpu-layers", "--gpu-layers")) {
            int n;
            VALUE();
            if (!args_int(a, v, -1, INT_MAX, &n)) return ARG_ERROR;
            p->gpu_flag = a;
            return ARG_DONE;
        }
        if (is(a, "-dev", "--device", NULL)) {
            VALUE();
            p->gpu_flag = a;
            return ARG_DONE;
        }
    }
    if ((g & (ARGS_CONTEXT | ARGS_THREADS)) && is(a, "-t", "--threads", NULL)) {
        VALUE();
        CHECKED(args_int(a, v, 0, 1024, &p->n_threads));
    }
    if (g & ARGS_SAMPLING) {
        if (is(a, "--temp", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, -1e9, 1e9, &s->temp));
        }
        if (is(a, "--top-k", NULL, NULL)) {
            VALUE();
            CHECKED(args_int(a, v, INT_MIN, INT_MAX, &s->top_k));
        }
        if (is(a, "--top-p", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, 0, 1, &s->top_p));
        }
        if (is(a, "--min-p", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, 0, 1, &s->min_p));
        }
        if (is(a, "--typical", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, 0, 1, &s->typical_p));
        }
        if (is(a, "--repeat-last-n", NULL, NULL)) {
            VALUE();
            CHECKED(args_int(a, v, -1, INT_MAX, &s->repeat_last_n));
        }
        if (is(a, "--repeat-penalty", NULL, NULL)) {
            VALUE(); // llama.cpp divides by it: 1 is off, 0 would divide by zero
            if (!args_float(a, v, -1e9, 1e9, &s->repeat_penalty)) return ARG_ERROR;
            if (s->repeat_penalty > 0) return ARG_DONE;
            fprintf(stderr, "llamalite: invalid value '%s' for %s (expected a number > 0; 1 = off)\n", v, a);
            return ARG_ERROR;
        }
        if (is(a, "--frequency-penalty", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, -1e9, 1e9, &s->freq_penalty));
        }
        if (is(a, "--presence-penalty", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, -1e9, 1e9, &s->presence_penalty));
        }
        if (is(a, "--ignore-eos", NULL, NULL)) { p->ignore_eos = true; return ARG_DONE; }
        if (is(a, "--mirostat", NULL, NULL)) {
            VALUE();
            CHECKED(args_int(a, v, 0, 2, &s->mirostat));
        }
        if (is(a, "--mirostat-lr", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, 0, 1e9, &s->mirostat_eta));
        }
        if (is(a, "--mirostat-ent", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, 0, 1e9, &s->mirostat_tau));
        }
        if (is(a, "--dry-multiplier", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, 0, 1e9, &s->dry_multiplier));
        }
        if (is(a, "--dry-base", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, 1, 1e9, &s->dry_base));
        }
        if (is(a, "--dry-allowed-length", NULL, NULL)) {
            VALUE();
            CHECKED(args_int(a, v, 0, 1 << 20, &s->dry_allowed_length));
        }
        if (is(a, "--dry-penalty-last-n", NULL, NULL)) {
            VALUE();
            CHECKED(args_int(a, v, -1, INT_MAX, &s->dry_penalty_last_n));
        }
        if (is(a, "--dry-sequence-breaker", NULL, NULL)) {
            VALUE();
            CHECKED(dry_breaker(a, argv[*i], p));
        }
        if (is(a, "--xtc-probability", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, 0, 1, &s->xtc_probability));
        }
        if (is(a, "--xtc-threshold", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, 0, 1, &s->xtc_threshold));
        }
        if (is(a, "--top-nsigma", NULL, NULL)) {
            VALUE();
            CHECKED(args_float(a, v, -1, 1e9, &s->top_n_sigma));
        }
        if (is(a, "-l", "--logit-bias", NULL)) {
            VALUE();
            CHECKED(logit_bias(a, v, p));
        }
        if (is(a, "--samplers", NULL, NULL)) {
            VALUE();
            CHECKED(sampler_order(a, v, false, s->order, sizeof s->order));
        }
        if (is(a, "--sampling-seq", "--sampler-seq", NULL)) {
            VALUE();
            CHECKED(sampler_order(a, v, true, s->order, sizeof s->order));
        }
        // Grammar flags: --grammar, --grammar-file, -j/--json-schema, --json-schema-file, --json.
        int gr = cli_grammar_parse_arg(argc, argv, i, &p->grammar, false);
        if (gr != 0) return gr > 0 ? ARG_DONE : ARG_ERROR;
        if (is(a, "-s", "--seed", NULL)) {
            VALUE();
            CHECKED(args_u32(a, v, &s->seed));
        }
    }
    if ((g & ARGS_LORA) && is(a, "--lora", "--lora-scaled", NULL)) {
        // LoRA adapters (cli/lora.c loads them): --lora FILE, --lora-scaled FILE SCALE.
        const bool scaled = !strcmp(a, "--lora-scaled");
        if (scaled && *i + 2 >= argc) {
            fprintf(stderr, "llamalite: --lora-scaled needs a file and a scale (--lora-scaled FNAME S)\n");
            return ARG_ERROR;
        }
        VALUE();
        const char *path = v;
        float scale = 1.0f;
        if (scaled) {
            VALUE();
            if (!args_float(a, v, -1e6, 1e6, &scale)) return ARG_ERROR;
        }
        if (p->n_lora >= ARGS_MAX_LORA) {
            fprintf(stderr, "llamalite: too many LoRA adapters (at most %d)\n", ARGS_MAX_LORA);
            return ARG_ERROR;
        }
        p->lora[p->n_lora].path = path;
        p->lora[p->n_lora++].scale = scale;
        return ARG_DONE;
    }
    if (g & ARGS_LOG) {
        if (is(a, "-v", "--verbose", "--log-verbose")) { p->verbosity = 2; return ARG_DONE; }
        if (is(a, "--log-disable", NULL, NULL)) { p->verbosity = 0; return ARG_DONE; }
    }
#undef VALUE
#undef CHECKED
    return ARG_UNKNOWN;
}

void args_print_common_help(FILE *out, unsigned g) {
    if (g & ARGS_MODEL)
        fputs("  -m, --model FNAME         model file (GGUF)\n"
              "  --no-repack               keep the weights as the file has them (zero-copy from the\n"
              "                            mapping) instead of repacking them for the kernels at load\n", out);
    if (g & ARGS_PROMPT)
        fputs("  -p, --prompt TEXT         prompt (in a chat: the first message)\n"
              "  -f, --file FNAME          read the prompt from a file\n"
              "  -e, --escape / --no-escape  process escapes (\\n, \\t, ...) in -p (default: on)\n", out);
    if (g & ARGS_GEN)
        fputs("  -n, --n-predict N         tokens to generate (default: -1 = until end of\n"
              "                            generation or a full context)\n"
              "  --keep N                  prompt tokens kept on a context shift (-1: all)\n"
              "  --no-context-shift        stop when the context is full instead of shifting\n"
              "  -r, --reverse-prompt TEXT stop when TEXT is generated; in a chat, your turn\n"
              "                            (repeatable)\n"
              "  --echo                    print the prompt before the generated text\n"
              "  -sp, --special            print special tokens (one-shot)\n"
              "  -i, -cnv                  interactive / conversation mode (-no-cnv: one-shot)\n"
              "  -if, --interactive-first  interactive, waiting for your input first (-p then\n"
              "                            goes in front of it)\n"
              "  --in-prefix TEXT          in a chat, put TEXT before each of your inputs and\n"
              "  --in-suffix TEXT          TEXT after it (a newline ends each input); the chat\n"
              "                            then continues plain text (no chat template)\n"
              "  -mli, --multiline-input   in a chat, Enter starts a new line; end a line with\n"
              "                            '/' to send\n"
              "  --prompt-cache FNAME      file to cache the evaluated prompt in: a later run whose\n"
              "                            prompt starts the same evaluates only the rest\n"
              "  --prompt-cache-all        save the generated tokens too\n"
              "  --prompt-cache-ro         use the prompt cache, do not update it\n", out);
    if (g & ARGS_CONTEXT)
        fputs("  -c, --ctx-size N          context size (default: 0 = the model's, at most 4096)\n"
              "  -b, --batch-size N        prompt tokens per forward chunk (default: 512)\n"
              "  -ctk, --cache-type-k T    KV cache type for K: f32, f16, bf16, q8_0, q4_0, q4_1,\n"
              "                            q5_0, q5_1, iq4_nl (default: f16)\n"
              "  -ctv, --cache-type-v T    KV cache type for V, the same types (default: f16)\n"
              "  -fa, --flash-attn [on|off|auto]  fused attention over the cache (-fa alone: on;\n"
              "                            default auto: on wherever heads start on the cache's\n"
              "                            block boundaries; off: the reference's two passes)\n"
              "  --swa-full                full-size cache on sliding-window layers too (default:\n"
              "                            their window and a batch; more memory, but a rollback or\n"
              "                            prompt-cache reuse can go back further than the window)\n", out);
    if (g & (ARGS_CONTEXT | ARGS_THREADS))
        fputs("  -t, --threads N           threads (default: 0 = physical cores)\n", out);
    if (g & ARGS_LOAD)
        fputs("  --mlock                   keep the weights in RAM (no swapping out)\n"
              "  --no-mmap                 read the model file into memory instead of mapping it\n"
              "  --no-warmup               accepted: there is no warm-up run\n"
              "  -ngl, --n-gpu-layers N, -dev, --device LIST\n"
              "                            accepted and ignored (with a note): a CPU engine\n", out);
    if (g & ARGS_SAMPLING)
        fputs("  --temp N                  temperature (default: 0.8; 0 = greedy)\n"
              "  --top-k N                 top-k (default: 40, 0 = off)\n"
              "  --top-p N                 top-p (default: 0.95, 1 = off)\n"
              "  --min-p N                 min-p (default: 0.05, 0 = off)\n"
              "  --typical N               locally typical p (default: 1 = off)\n"
              "  --repeat-last-n N         penalty window (default: 64, 0 = off, -1 = all)\n"
              "  --repeat-penalty N        repetition penalty, > 0 (default: 1.0 = off)\n"
              "  --frequency-penalty N     frequency penalty (default: 0 = off)\n"
              "  --presence-penalty N      presence penalty (default: 0 = off)\n"
              "  --dry-multiplier N        DRY repetition penalty (default: 0 = off)\n"
              "  --dry-base N              DRY base, >= 1 (default: 1.75)\n"
              "  --dry-allowed-length N    repeats longer than N are penalised (default: 2)\n"
              "  --dry-penalty-last-n N    tokens DRY scans (default: -1 = all, 0 = off)\n"
              "  --dry-sequence-breaker S  a repeat does not span S; the first replaces the\n"
              "                            defaults '\\n' ':' '\"' '*', 'none' clears them\n"
              "  --xtc-probability N       XTC: chance to drop the top tokens (default: 0 = off)\n"
              "  --xtc-threshold N         ... those at or above N but the last (default: 0.1)\n"
              "  --top-nsigma N            keep logits within N standard deviations of the top;\n"
              "                            the chain is then top-k, temperature, top-n-sigma\n"
              "                            (default: -1 = off)\n"
              "  --mirostat N              Mirostat 1 or 2 (default: 0 = off); the chain is\n"
              "                            then temperature, Mirostat\n"
              "  --mirostat-lr N           Mirostat learning rate eta (default: 0.1)\n"
              "  --mirostat-ent N          Mirostat target entropy tau (default: 5.0)\n"
              "  -l, --logit-bias T+B      add B to token T's logit (T-B subtracts; B may be inf)\n"
              "  --samplers LIST           the order, ';'-separated (default: penalties;dry;\n"
              "                            top_k;typ_p;top_p;min_p;xtc;temperature)\n"
              "  --sampling-seq LETTERS    the same in letters (default: edkypmxt)\n"
              "  -s, --seed N              RNG seed (default: -1 = random)\n"
              "  --ignore-eos              never stop on end-of-generation tokens\n"
              CLI_GRAMMAR_HELP, out);
    if (g & ARGS_LORA)
        fputs("  --lora FNAME              apply a LoRA adapter (repeatable)\n"
              "  --lora-scaled FNAME S     apply a LoRA adapter with scale S (repeatable)\n", out);
    if (g & ARGS_LOG)
        fputs("  -v, --verbose             more messages on stderr\n"
              "  --log-disable             no messages on stderr except errors\n", out);
}

char *args_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "llamalite: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (ferror(f)) {
            fprintf(stderr, "llamalite: cannot read '%s': %s\n", path, strerror(errno));
            free(buf);
            fclose(f);
            return NULL;
        }
        if (feof(f)) break;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "llamalite: out of memory reading '%s'\n", path);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void args_unescape(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r != '\\' || !r[1]) {
            *w++ = *r;
            continue;
        }
        r++;
        switch (*r) {
        case 'n': *w++ = '\n'; break;
        case 't': *w++ = '\t'; break;
        case 'r': *w++ = '\r'; break;
        case '\\': *w++ = '\\'; break;
        case '\'': *w++ = '\''; break;
        case '"': *w++ = '"'; break;
        case 'x':
            if (hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
                *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
                r += 2;
                break;
            }
            /* fall through */
        default: // unknown escape: keep it as written
            *w++ = '\\';
            *w++ = *r;
        }
    }
    *w = 0;
}

bool args_finish_prompt(cli_params *p) {
    free(p->prompt_buf);
    p->prompt_buf = NULL;
    if (p->prompt_file) {
        size_t n;
        p->prompt_buf = args_read_file(p->prompt_file, &n);
        if (!p->prompt_buf) return false;
        if (strlen(p->prompt_buf) != n) {
            fprintf(stderr, "llamalite: '%s' contains NUL bytes\n", p->prompt_file);
            return false;
        }
        if (n && p->prompt_buf[n - 1] == '\n') p->prompt_buf[n - 1] = 0; // as llama-cli does
        p->prompt = p->prompt_buf;
    } else if (p->prompt && p->escape) {
        p->prompt_buf = strdup(p->prompt);
        if (!p->prompt_buf) {
            fputs("llamalite: out of memory\n", stderr);
            return false;
        }
        args_unescape(p->prompt_buf);
        p->prompt = p->prompt_buf;
    }
    return true;
}

bool args_check_model(cli_params *p, const ll_model *m) {
    const ll_vocab *v = ll_model_get_vocab(m);
    const int n_vocab = ll_vocab_n_tokens(v);
    for (int i = 0; i < p->sampling.n_logit_bias; i++) {
        if (p->logit_bias[i].token < n_vocab) continue;
        fprintf(stderr, "llamalite: --logit-bias token %d is out of range (the vocabulary has tokens 0 to %d)\n",
                p->logit_bias[i].token, n_vocab - 1);
        return false;
    }
    p->sampling.vocab = v; // DRY's sequence breakers are found in it
    const int n_train = ll_model_n_ctx_train(m);
    if (n_train > 0 && p->n_ctx > n_train)
        cli_log(p, 1, "llamalite: warning: -c %d is larger than the model's training context (%d); "
                "the output may degrade past %d tokens\n", p->n_ctx, n_train, n_train);
    if (p->gpu_flag) cli_log(p, 1, "llamalite: %s ignored: llamalite runs every layer on the CPU\n", p->gpu_flag);
    // --mlock: locks every page the process has now, the weights (mapped or read in) among them.
    if (p->mlock && mlockall(MCL_CURRENT) != 0)
        cli_log(p, 1, "llamalite: warning: --mlock failed: %s (the limit is 'ulimit -l')\n", strerror(errno));
    return true;
}

ll_token *cli_tokenize(const ll_vocab *v, const char *text, bool parse_special, int *n_out) {
    int len = (int)strlen(text);
    int cap = len + 16;
    ll_token *toks = malloc((size_t)cap * sizeof *toks);
    if (!toks) return NULL;
    int n = ll_tokenize(v, text, len, toks, cap, true, parse_special);
    if (n > cap) { // cannot happen for the usual tokenizers, but the API allows it
        ll_token *nt = realloc(toks, (size_t)n * sizeof *toks);
        if (!nt) {
            free(toks);
            return NULL;
        }
        toks = nt;
        n = ll_tokenize(v, text, len, toks, n, true, parse_special);
    }
    if (n < 0) {
        free(toks);
        return NULL;
    }
    *n_out = n;
    return toks;
}

ll_token *cli_eog_tokens(const ll_vocab *v, int *n_out) {
    const int n_vocab = ll_vocab_n_tokens(v);
    ll_token *eog = malloc(sizeof *eog * (size_t)(n_vocab > 0 ? n_vocab : 1));
    if (!eog) return NULL;
    int n = 0;
    for (ll_token t = 0; t < n_vocab; t++)
        if (ll_vocab_is_eog(v, t)) eog[n++] = t;
    *n_out = n;
    return eog;
}
