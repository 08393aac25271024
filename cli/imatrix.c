// llamalite imatrix: runs the model over a calibration text and writes, for every layer
// matrix, the mean squared input activation of each column (llama.cpp's imatrix.dat format),
// for `llamalite quantize --imatrix` (or llama-quantize). As llama.cpp's imatrix tool: the text
// is tokenized once and cut into chunks of -c tokens, each starting with BOS and evaluated
// from an empty cache; the perplexity of each chunk's second half is shown along the way.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "progress.h"
#include "text_chunks.h"

// The output is checked before the run, not after it: a long calibration should not end in
// "cannot create". Opening it makes only a temporary file beside it, removed again here.
static bool can_create(const char *path) {
    char err[512];
    ll_outfile *o = ll_outfile_open(path, err, sizeof err);
    if (!o) {
        fprintf(stderr, "llamalite: cannot create %s\n", err);
        return false;
    }
    ll_outfile_close(o, false, NULL, 0);
    return true;
}

static void usage(FILE *out) {
    fputs("usage: llamalite imatrix -m MODEL.gguf -f CALIB.txt [-o imatrix.dat] [-c 512] [options]\n"
          "Collects an importance matrix for quantization.\n\n"
          "options:\n"
          "  -o, --output FILE         where to write it (default imatrix.dat)\n"
          "  --chunks N                use at most N chunks of the text (default: all)\n"
          "  --process-output          collect the output head too (only a separate one)\n", out);
    args_print_common_help(out, ARGS_MODEL | ARGS_PROMPT | ARGS_CONTEXT | ARGS_LOG);
}

int cmd_imatrix(int argc, char **argv) {
    const unsigned groups = ARGS_MODEL | ARGS_PROMPT | ARGS_CONTEXT | ARGS_LOG;
    cli_params p;
    args_defaults(&p);
    p.escape = false;
    p.n_ctx = 512;
    int max_chunks = -1;
    bool process_output = false;
    const char *out_path = "imatrix.dat";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            args_free(&p);
            return 0;
        }
        if (!strcmp(a, "--chunks")) {
            if (!args_value(argc, argv, &i, &v) || !args_int(a, v, -1, INT_MAX, &max_chunks)) return 1;
            continue;
        }
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!args_value(argc, argv, &i, &out_path)) return 1;
            continue;
        }
        if (!strcmp(a, "--process-output")) {
            process_output = true;
            continue;
        }
        int r = args_parse_common(argc, argv, &i, &p, groups);
        if (r == ARG_ERROR) return 1;
        if (r == ARG_UNKNOWN) {
            args_unknown("imatrix", a);
            return 1;
        }
    }
    if (!p.model || !p.prompt_file) {
        fprintf(stderr, "llamalite: imatrix needs %s\n", !p.model ? "a model (-m MODEL.gguf)" : "a text (-f FILE)");
        args_free(&p);
        return 1;
    }
    if (p.n_ctx < 16) {
        fprintf(stderr, "llamalite: invalid value '%d' for -c (imatrix needs at least 16)\n", p.n_ctx);
        args_free(&p);
        return 1;
    }
    if (!args_finish_prompt(&p)) return 1;
    if (!can_create(out_path)) {
        args_free(&p);
        return 1;
    }

    char err[512];
    int rc = 1;
    ll_model *model = NULL;
    ll_context *ctx = NULL;
    ll_imatrix *im = NULL;
    ll_token *toks = NULL, *chunk = NULL;
    const int n_ctx = p.n_ctx;

    if (!(model = cli_load_model(p.model, p.verbosity >= 1, NULL))) goto done;
    const ll_vocab *v = ll_model_get_vocab(model);
    const int n_vocab = ll_vocab_n_tokens(v);
    int n_tokens = 0, n_chunks = 0;
    if (!(toks = chunk_tokenize(v, p.prompt, n_ctx, max_chunks, "imatrix", &n_tokens, &n_chunks))) goto done;
    chunk = malloc((size_t)n_ctx * sizeof *chunk);
    im = ll_imatrix_new();
    if (!chunk || !im) {
        fputs("llamalite: out of memory\n", stderr);
        goto done;
    }

    // llama.cpp's micro-batch: one call per 512 tokens.
    if (!(ctx = chunk_context_new(model, &p, n_ctx, 512))) goto done;
    if (ll_imatrix_attach(im, ctx, process_output) != 0) {
        fputs("llamalite: cannot attach the collector\n", stderr);
        goto done;
    }
    cli_log(&p, 1, "imatrix: %d tokens, %d chunks of %d, %d threads\n", n_tokens, n_chunks, n_ctx, ll_n_threads(ctx));

    const int first = n_ctx / 2;
    double nll = 0;
    long count = 0;
    progress bar;
    progress_start(&bar, "imatrix", n_chunks, p.verbosity == 0);
    for (int c = 0; c < n_chunks; c++) {
        if (!chunk_decode(ctx, v, toks, c, n_ctx, chunk)) {
            progress_end(&bar);
            goto done;
        }
        for (int j = first; j < n_ctx - 1; j++) {
            const float *lg = ll_get_logits_ith(ctx, j);
            if (lg) nll += chunk_nll(lg, n_vocab, toks[(size_t)c * n_ctx + j + 1]), count++;
        }
        char extra[64];
        snprintf(extra, sizeof extra, "PPL %.4f", count ? exp(nll / (double)count) : 0.0);
        progress_update(&bar, c + 1, extra);
    }
    progress_end(&bar);
    ll_imatrix_attach(im, NULL, false);
    ll_imatrix_set_info(im, n_chunks, p.prompt_file);
    if (ll_imatrix_save(im, out_path, err, sizeof err) != 0) {
        fprintf(stderr, "llamalite: %s\n", err);
        goto done;
    }
    printf("imatrix: %d entries from %d chunks of %d tokens (PPL %.4f) -> %s\n", ll_imatrix_n_entries(im), n_chunks,
           n_ctx, count ? exp(nll / (double)count) : 0.0, out_path);
    rc = 0; // main checks that stdout was written

done:
    ll_imatrix_free(im);
    free(chunk);
    free(toks);
    if (ctx) ll_context_free(ctx);
    if (model) ll_model_free(model);
    args_free(&p);
    return rc;
}
