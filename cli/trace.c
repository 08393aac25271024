// llamalite trace: greedy decoding that prints, as one JSON line, the prompt tokens and for
// every step the chosen token and the largest logits, in the format of the golden files:
//   {"prompt":..., "prompt_tokens":[...], "steps":[{"token":t,"top":[[id,logit],...]},...]}
// Settings follow the reference that made them: context 512, F16 KV cache, no special-token
// parsing in the prompt, BOS as the vocab says.
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "lora.h"
#include "progress.h"

static void usage(FILE *out) {
    fputs("usage: llamalite trace -m MODEL.gguf -p PROMPT -n N [--top K] [options]\n"
          "Greedy-decodes N tokens and prints one JSON line: the prompt tokens, then per step\n"
          "the chosen token and the K largest logits (default 8).\n\noptions:\n"
          "  -n, --n-predict N         greedy steps (default: 16)\n"
          "  --top K                   logits per step (default: 8)\n", out);
    args_print_common_help(out, ARGS_MODEL | ARGS_PROMPT | ARGS_CONTEXT | ARGS_LOG | ARGS_LORA);
}

static void json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*c < 0x20) fprintf(out, "\\u%04x", *c);
            else fputc(*c, out);
        }
    }
    fputc('"', out);
}

// The k largest logits, largest first; ties go to the lower id (as an argmax would).
static void top_k(const float *logits, int n_vocab, int k, int *ids) {
    int n = 0;
    for (int i = 0; i < n_vocab; i++) {
        float x = logits[i];
        if (n == k && !(x > logits[ids[n - 1]])) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && x > logits[ids[j - 1]]) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
}

int cmd_trace(int argc, char **argv) {
    const unsigned groups = ARGS_MODEL | ARGS_PROMPT | ARGS_CONTEXT | ARGS_LOG | ARGS_LORA;
    cli_params p;
    args_defaults(&p);
    p.escape = false; // the prompt is taken literally, as the golden files hold it
    int n_steps = 16, n_top = 8;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!args_value(argc, argv, &i, &v) || !args_int(a, v, 0, INT_MAX, &n_steps)) return 1;
            continue;
        }
        if (!strcmp(a, "--top")) {
            if (!args_value(argc, argv, &i, &v) || !args_int(a, v, 1, 1000000, &n_top)) return 1;
            continue;
        }
        int r = args_parse_common(argc, argv, &i, &p, groups);
        if (r == ARG_ERROR) return 1;
        if (r == ARG_UNKNOWN) {
            args_unknown("trace", a);
            return 1;
        }
    }
    if (!p.model) {
        fputs("llamalite: trace needs a model (-m MODEL.gguf)\n", stderr);
        return 1;
    }
    if (!p.prompt && !p.prompt_file) {
        fputs("llamalite: trace needs a prompt (-p TEXT or -f FILE)\n", stderr);
        return 1;
    }
    if (!args_finish_prompt(&p)) return 1;

    char err[512];
    int rc = 1;
    ll_model *model = NULL;
    ll_context *ctx = NULL;
    ll_token *toks = NULL;
    int *ids = NULL;
    cli_loras loras = {0};

    if (!(model = cli_load_model(p.model, false, NULL))) goto done;
    if (!cli_lora_load(&p, model, &loras)) goto done;
    const ll_vocab *v = ll_model_get_vocab(model);
    const int n_vocab = ll_vocab_n_tokens(v);
    if (n_top > n_vocab) n_top = n_vocab;

    int n_prompt = 0;
    toks = cli_tokenize(v, p.prompt, false, &n_prompt);
    ids = malloc((size_t)n_top * sizeof *ids);
    if (!toks || !ids) {
        fputs("llamalite: out of memory\n", stderr);
        goto done;
    }
    if (n_prompt == 0) {
        fputs("llamalite: the prompt is empty (and the model adds no BOS token)\n", stderr);
        goto done;
    }

    // Context 512 like the reference, or just enough for a longer trace.
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = p.n_ctx > 0 ? p.n_ctx : (n_prompt + n_steps > 512 ? n_prompt + n_steps : 512);
    if (n_prompt + n_steps > cp.n_ctx) {
        fprintf(stderr, "llamalite: the prompt (%d tokens) plus %d steps do not fit in the "
                "context of %d\n", n_prompt, n_steps, cp.n_ctx);
        goto done;
    }
    cp.n_batch = p.n_batch;
    cp.n_threads = p.n_threads;
    cp.type_k = p.type_k;
    cp.type_v = p.type_v;
    cp.flash_attn = p.flash_attn;
    cp.swa_full = p.swa_full;
    ctx = ll_context_new(model, &cp, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "llamalite: %s\n", err);
        goto done;
    }
    if (!cli_lora_attach(&p, &loras, ctx)) goto done;
    if (ll_decode(ctx, toks, n_prompt, err, sizeof err) != 0) {
        fprintf(stderr, "llamalite: %s\n", err);
        goto done;
    }

    // Steps are collected first so a failing decode leaves no half-written JSON line.
    char *line = NULL;
    size_t line_len = 0;
    FILE *out = open_memstream(&line, &line_len);
    if (!out) {
        fputs("llamalite: out of memory\n", stderr);
        goto done;
    }
    fputs("\"steps\":[", out);
    bool ok = true;
    for (int s = 0; s < n_steps; s++) {
        const float *logits = ll_get_logits(ctx);
        top_k(logits, n_vocab, n_top, ids);
        ll_token t = ids[0];
        fprintf(out, "%s{\"token\":%d,\"top\":[", s ? "," : "", t);
        for (int j = 0; j < n_top; j++) {
            float x = logits[ids[j]];
            if (isfinite(x)) fprintf(out, "%s[%d,%.5f]", j ? "," : "", ids[j], x);
            else fprintf(out, "%s[%d,null]", j ? "," : "", ids[j]);
        }
        fputs("]}", out);
        if (s + 1 < n_steps && ll_decode(ctx, &t, 1, err, sizeof err) != 0) {
            fprintf(stderr, "llamalite: %s\n", err);
            ok = false;
            break;
        }
    }
    fputs("]}", out);
    fclose(out);
    if (ok) {
        fputs("{\"prompt\":", stdout);
        json_string(stdout, p.prompt);
        fputs(",\"prompt_tokens\":[", stdout);
        for (int i = 0; i < n_prompt; i++) printf("%s%d", i ? "," : "", toks[i]);
        printf("],%s\n", line);
        rc = 0; // main checks that stdout was written
    }
    free(line);

done:
    free(ids);
    free(toks);
    if (ctx) ll_context_free(ctx);
    cli_lora_free(&loras);
    if (model) ll_model_free(model);
    args_free(&p);
    return rc;
}
