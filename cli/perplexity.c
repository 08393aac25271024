// llamalite perplexity: the perplexity of a model on a text, computed as llama.cpp's
// perplexity tool does so the numbers compare:
// - the whole text is tokenized once (with BOS if the vocab adds one) and cut into chunks of
//   n_ctx tokens; the first token of every chunk is replaced by BOS;
// - each chunk is evaluated from an empty cache, and only the predictions for its second half
//   are scored (the model always has at least n_ctx/2 tokens of context);
// - PPL = exp(mean NLL); the +/- is the standard error of the mean NLL times PPL.
// stdout gets "Final estimate: PPL = X +/- Y" only; a progress bar goes to stderr on a terminal.
// --kl-divergence-base FILE also stores the base model's log-probabilities of every scored
// position; --kl-divergence then compares another model against them (kld.c).
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "kld.h"
#include "progress.h"
#include "text_chunks.h"

static void usage(FILE *out) {
    fputs("usage: llamalite perplexity -m MODEL.gguf -f TEXT [-c 512] [options]\n"
          "Perplexity of the model on TEXT, in chunks of -c tokens (llama.cpp's method; here -c\n"
          "is 512 by default, and 0 means the model's training context, at most 4096).\n\n"
          "options:\n"
          "  --chunks N                score at most N chunks (default: all)\n"
          "  --kl-divergence-base FILE store the log-probabilities of every scored token in FILE\n"
          "                            (llama.cpp's format), or read them with --kl-divergence\n"
          "  --kl-divergence           compare the model against FILE: mean KL divergence, top-1\n"
          "                            agreement, PPL difference (no -f needed)\n", out);
    args_print_common_help(out, ARGS_MODEL | ARGS_PROMPT | ARGS_CONTEXT | ARGS_LOG);
}

int cmd_perplexity(int argc, char **argv) {
    const unsigned groups = ARGS_MODEL | ARGS_PROMPT | ARGS_CONTEXT | ARGS_LOG;
    cli_params p;
    args_defaults(&p);
    p.escape = false;
    p.n_ctx = 512;
    p.n_batch = 2048;
    int max_chunks = -1;
    const char *kld_base = NULL;
    bool kld_mode = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--chunks")) {
            if (!args_value(argc, argv, &i, &v) || !args_int(a, v, -1, INT_MAX, &max_chunks)) return 1;
            continue;
        }
        if (!strcmp(a, "--kl-divergence-base")) {
            if (!args_value(argc, argv, &i, &kld_base)) return 1;
            continue;
        }
        if (!strcmp(a, "--kl-divergence")) {
            kld_mode = true;
            continue;
        }
        int r = args_parse_common(argc, argv, &i, &p, groups);
        if (r == ARG_ERROR) return 1;
        if (r == ARG_UNKNOWN) {
            args_unknown("perplexity", a);
            return 1;
        }
    }
    if (!p.model) {
        fputs("llamalite: perplexity needs a model (-m MODEL.gguf)\n", stderr);
        return 1;
    }
    if (kld_mode && !kld_base) {
        fputs("llamalite: --kl-divergence needs --kl-divergence-base FILE\n", stderr);
        return 1;
    }
    if (kld_mode) {
        ll_model *km = cli_load_model(p.model, p.verbosity >= 1, NULL);
        if (!km) {
            args_free(&p);
            return 1;
        }
        int krc = kld_compare(&p, km, kld_base, max_chunks);
        ll_model_free(km);
        args_free(&p);
        return krc;
    }
    if (!p.prompt && !p.prompt_file) {
        fputs("llamalite: perplexity needs a text (-f FILE)\n", stderr);
        return 1;
    }
    if (p.n_ctx < 4 && p.n_ctx != 0) {
        fprintf(stderr, "llamalite: invalid value '%d' for -c (perplexity needs 0 or at least 4)\n", p.n_ctx);
        return 1;
    }
    if (!args_finish_prompt(&p)) return 1;

    int rc = 1;
    ll_model *model = NULL;
    ll_context *ctx = NULL;
    ll_token *toks = NULL, *chunk = NULL;
    kld_writer *kw = NULL;
    if (!(model = cli_load_model(p.model, p.verbosity >= 1, NULL))) goto done;
    const int n_train = ll_model_n_ctx_train(model);
    const int n_ctx = p.n_ctx ? p.n_ctx : n_train < 4 ? 4 : n_train > 4096 ? 4096 : n_train; // -c 0
    const ll_vocab *v = ll_model_get_vocab(model);
    const int n_vocab = ll_vocab_n_tokens(v);
    int n_tokens = 0, n_chunks = 0;
    if (!(toks = chunk_tokenize(v, p.prompt, n_ctx, max_chunks, "perplexity", &n_tokens, &n_chunks))) goto done;
    if (!(chunk = malloc((size_t)n_ctx * sizeof *chunk))) {
        fputs("llamalite: out of memory\n", stderr);
        goto done;
    }

    if (!(ctx = chunk_context_new(model, &p, n_ctx, p.n_batch))) goto done;
    if (kld_base && !(kw = kld_writer_open(kld_base, n_ctx, n_vocab, n_chunks, toks))) goto done;
    cli_log(&p, 1, "perplexity: %d tokens, %d chunks of %d, batch %d, %d threads\n", n_tokens,
            n_chunks, n_ctx, p.n_batch < n_ctx ? p.n_batch : n_ctx, ll_n_threads(ctx));

    const int first = n_ctx / 2;
    double nll = 0.0, nll2 = 0.0;
    long count = 0;
    progress bar;
    progress_start(&bar, "perplexity", n_chunks, p.verbosity == 0);
    double t0 = cli_now();
    for (int c = 0; c < n_chunks; c++) {
        if (!chunk_decode(ctx, v, toks, c, n_ctx, chunk)) {
            progress_end(&bar);
            goto done;
        }
        // The logits at position j predict token j + 1 of the original text.
        for (int j = first; j < n_ctx - 1; j++) {
            const float *logits = ll_get_logits_ith(ctx, j);
            if (!logits) {
                progress_end(&bar);
                fputs("llamalite: the engine returned no logits for a chunk position\n", stderr);
                goto done;
            }
            double x = chunk_nll(logits, n_vocab, toks[(size_t)c * n_ctx + j + 1]);
            nll += x;
            nll2 += x * x;
            if (kw && !kld_writer_row(kw, logits)) {
                progress_end(&bar);
                fprintf(stderr, "llamalite: %s: write failed: %s\n", kld_base, strerror(errno));
                goto done;
            }
        }
        count += n_ctx - 1 - first;
        char extra[64];
        snprintf(extra, sizeof extra, "PPL %.4f", exp(nll / (double)count));
        progress_update(&bar, c + 1, extra);
    }
    progress_end(&bar);

    double mean = nll / (double)count;
    double var = nll2 / (double)count - mean * mean;
    double ppl = exp(mean);
    double err_ppl = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) * ppl : 0.0;
    cli_log(&p, 1, "perplexity: %ld tokens scored in %.2f s\n", count, cli_now() - t0);
    if (kw) {
        bool ok = kld_writer_close(kw, true);
        kw = NULL;
        if (!ok) goto done;
    }
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, err_ppl);
    rc = 0; // main checks that stdout was written

done:
    if (kw) kld_writer_close(kw, false); // an incomplete base file would only mislead
    free(chunk);
    free(toks);
    if (ctx) ll_context_free(ctx);
    if (model) ll_model_free(model);
    args_free(&p);
    return rc;
}
