// KL divergence of a model against a base model's stored log-probabilities: the way to see
// what a quantization cost. Numbers computed as llama.cpp's perplexity tool computes them:
// per scored token, KL(base || model) over the tokens whose base log-probability is above
// -16, whether both agree on the most likely token, and the probability each gives the
// actual next token.
#include "kld.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "text_chunks.h"

struct kld_writer {
    ll_outfile *out; // replaces the file at path only when complete
    FILE *f;
    char *path;
    int n_vocab, nv;   // nv: uint16 slots per row (2 floats + the steps, padded to even)
    uint16_t *row;
    bool ok;
};

static int slots(int n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

kld_writer *kld_writer_open(const char *path, int n_ctx, int n_vocab, int n_chunk, const ll_token *tokens) {
    kld_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    char err[512] = "out of memory";
    w->out = ll_outfile_open(path, err, sizeof err);
    w->path = strdup(path);
    w->n_vocab = n_vocab;
    w->nv = slots(n_vocab);
    w->row = calloc((size_t)w->nv, sizeof *w->row);
    if (!w->out || !w->path || !w->row) {
        fprintf(stderr, "llamalite: cannot create %s\n", w->out ? path : err);
        ll_outfile_close(w->out, false, NULL, 0);
        free(w->path);
        free(w->row);
        free(w);
        return NULL;
    }
    w->f = ll_outfile_stream(w->out);
    const int32_t hdr[3] = {n_ctx, n_vocab, n_chunk};
    w->ok = fwrite("_logits_", 1, 8, w->f) == 8 && fwrite(hdr, 4, 3, w->f) == 3 &&
            fwrite(tokens, sizeof *tokens, (size_t)n_chunk * n_ctx, w->f) == (size_t)n_chunk * n_ctx;
    return w;
}

bool kld_writer_row(kld_writer *w, const float *logits) {
    const int n = w->n_vocab;
    float max = logits[0], min = logits[0];
    for (int i = 1; i < n; i++) {
        if (logits[i] > max) max = logits[i];
        if (logits[i] < min) min = logits[i];
    }
    if (min < max - 16) min = max - 16; // 16 nats below the top is as good as zero
    double sum = 0;
    for (int i = 0; i < n; i++) sum += expf(logits[i] - max);
    const float log_sum = (float)log(sum);
    const float scale = (max - min) / 65535.0f;
    float head[2] = {scale, min - max - log_sum};
    memcpy(w->row, head, sizeof head);
    uint16_t *q = w->row + 4;
    if (scale > 0) {
        const float inv = 1 / scale;
        for (int i = 0; i < n; i++) {
            const long k = logits[i] > min ? lrintf(inv * (logits[i] - min)) : 0;
            q[i] = (uint16_t)(k > 65535 ? 65535 : k);
        }
    } else {
        memset(q, 0, (size_t)n * sizeof *q);
    }
    w->ok = w->ok && fwrite(w->row, sizeof *w->row, (size_t)w->nv, w->f) == (size_t)w->nv;
    return w->ok;
}

bool kld_writer_close(kld_writer *w, bool complete) {
    char err[512];
    // ok is only false after a failed fwrite, which the stream's error flag reports too.
    bool ok = ll_outfile_close(w->out, complete, err, sizeof err);
    if (complete && !ok) fprintf(stderr, "llamalite: %s\n", err);
    free(w->path);
    free(w->row);
    free(w);
    return ok;
}

// ---- comparison -------------------------------------------------------------------------------

typedef struct {
    double nll, nll2, nll_base, nll_base2, nll_nll_base, kld, kld2, dp, dp2, dp4;
    long same_top, count;
} sums;

// One scored position: model logits against the stored base row. Returns the KL divergence;
// *dp = p(next token) - p_base(next token).
static double compare_row(const float *logits, int n, const uint16_t *base, ll_token tok, sums *s, float *dp) {
    float max = logits[0];
    int imax = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > max) max = logits[i], imax = i;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += expf(logits[i] - max);
    const float log_sum = (float)log(sum);
    float head[2];
    memcpy(head, base, sizeof head);
    const float scale = head[0], min_lp = head[1];
    const uint16_t *q = base + 4;

    const float nll = max + log_sum - logits[tok];
    const float nll_base = -(scale * q[tok] + min_lp);
    s->nll += nll, s->nll2 += (double)nll * nll;
    s->nll_base += nll_base, s->nll_base2 += (double)nll_base * nll_base;
    s->nll_nll_base += (double)nll * nll_base;

    const float norm = max + log_sum; // model log-prob of i: logits[i] - norm
    double kl = 0;
    int imax_base = 0;
    float lp_base_max = 0;
    for (int i = 0; i < n; i++) {
        const float lp_base = scale * q[i] + min_lp;
        if (i == 0 || lp_base > lp_base_max) lp_base_max = lp_base, imax_base = i;
        if (lp_base > -16.f) kl += expf(lp_base) * (lp_base - (logits[i] - norm));
    }
    s->kld += kl, s->kld2 += kl * kl;
    s->same_top += imax == imax_base;
    s->count++;
    *dp = expf(-nll) - expf(-nll_base);
    s->dp += *dp, s->dp2 += (double)*dp * *dp, s->dp4 += (double)*dp * *dp * *dp * *dp;
    return kl;
}

// mean and standard error of the mean
static void mean_err(double sum, double sum2, long n, double *mean, double *err) {
    *mean = n ? sum / (double)n : 0;
    double var = n ? sum2 / (double)n - *mean * *mean : 0;
    *err = var > 0 && n > 10 ? sqrt(var / (double)(n - 1)) : 0;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float percentile(const float *v, long n, double frac) {
    double pos = frac * (double)(n - 1);
    long i = (long)pos;
    double t = pos - (double)i;
    return (float)((1 - t) * v[i] + t * v[i + 1 < n ? i + 1 : n - 1]);
}

static bool rd(FILE *f, void *p, size_t size, size_t n) { return fread(p, size, n, f) == n; }

int kld_compare(const cli_params *p, ll_model *model, const char *base_path, int max_chunks) {
    const ll_vocab *v = ll_model_get_vocab(model);
    const int n_vocab = ll_vocab_n_tokens(v);
    FILE *f = fopen(base_path, "rb");
    if (!f) {
        fprintf(stderr, "llamalite: %s: %s\n", base_path, strerror(errno));
        return 1;
    }
    int rc = 1;
    char magic[8];
    int32_t hdr[3];
    ll_token *toks = NULL, *chunk = NULL;
    uint16_t *base = NULL;
    float *klds = NULL, *dps = NULL;
    ll_context *ctx = NULL;
    if (!rd(f, magic, 1, 8) || memcmp(magic, "_logits_", 8) != 0 || !rd(f, hdr, 4, 3)) {
        fprintf(stderr, "llamalite: %s is not a file of base log-probabilities (--kl-divergence-base)\n", base_path);
        goto done;
    }
    const int n_ctx = hdr[0], nv_base = hdr[1];
    int n_chunk = hdr[2];
    if (n_ctx < 4 || n_ctx > (1 << 20) || n_chunk < 1 || n_chunk > (1 << 20)) {
        fprintf(stderr, "llamalite: %s: bad header (context %d, %d chunks)\n", base_path, n_ctx, n_chunk);
        goto done;
    }
    if (nv_base != n_vocab) {
        fprintf(stderr, "llamalite: %s was made with a vocabulary of %d tokens, the model has %d\n", base_path,
                nv_base, n_vocab);
        goto done;
    }
    const int first = n_ctx / 2, n_scored = n_ctx - 1 - first, nv = slots(n_vocab);
    toks = malloc((size_t)n_chunk * n_ctx * sizeof *toks);
    chunk = malloc((size_t)n_ctx * sizeof *chunk);
    base = malloc((size_t)n_scored * nv * sizeof *base);
    if (!toks || !chunk || !base) {
        fputs("llamalite: out of memory\n", stderr);
        goto done;
    }
    if (!rd(f, toks, sizeof *toks, (size_t)n_chunk * n_ctx)) {
        fprintf(stderr, "llamalite: %s: truncated tokens\n", base_path);
        goto done;
    }
    for (long i = 0; i < (long)n_chunk * n_ctx; i++)
        if (toks[i] < 0 || toks[i] >= n_vocab) {
            fprintf(stderr, "llamalite: %s: token %ld is out of the vocabulary\n", base_path, i);
            goto done;
        }
    if (max_chunks >= 0 && max_chunks < n_chunk) n_chunk = max_chunks;
    klds = malloc((size_t)n_chunk * n_scored * sizeof *klds);
    dps = malloc((size_t)n_chunk * n_scored * sizeof *dps);
    if (!klds || !dps) {
        fputs("llamalite: out of memory\n", stderr);
        goto done;
    }

    if (!(ctx = chunk_context_new(model, p, n_ctx, p->n_batch))) goto done;
    sums s = {0};
    progress bar;
    progress_start(&bar, "kl-divergence", n_chunk, p->verbosity == 0);
    for (int c = 0; c < n_chunk; c++) {
        if (!rd(f, base, sizeof *base, (size_t)n_scored * nv)) {
            progress_end(&bar);
            fprintf(stderr, "llamalite: %s: truncated at chunk %d\n", base_path, c + 1);
            goto done;
        }
        if (!chunk_decode(ctx, v, toks, c, n_ctx, chunk)) {
            progress_end(&bar);
            goto done;
        }
        for (int j = 0; j < n_scored; j++) {
            const float *lg = ll_get_logits_ith(ctx, first + j);
            const size_t k = (size_t)c * n_scored + j;
            klds[k] = (float)compare_row(lg, n_vocab, base + (size_t)j * nv, toks[(size_t)c * n_ctx + first + j + 1], &s, &dps[k]);
        }
        char extra[64];
        snprintf(extra, sizeof extra, "KLD %.6f", s.kld / (double)s.count);
        progress_update(&bar, c + 1, extra);
    }
    progress_end(&bar);

    const long n = s.count;
    double lp, lp_err, lb, lb_err, kl, kl_err, dp, dp_err, ms, ms_err;
    mean_err(s.nll, s.nll2, n, &lp, &lp_err);
    mean_err(s.nll_base, s.nll_base2, n, &lb, &lb_err);
    mean_err(s.kld, s.kld2, n, &kl, &kl_err);
    mean_err(s.dp, s.dp2, n, &dp, &dp_err);
    mean_err(s.dp2, s.dp4, n, &ms, &ms_err);
    const double cov = n >= 10 ? (s.nll_nll_base / n - (s.nll / n) * (s.nll_base / n)) / (double)(n - 1) : 0;
    const double ratio_err = sqrt(fmax(0, lp_err * lp_err + lb_err * lb_err - 2 * cov));
    const double ppl = exp(lp), ppl_base = exp(lb);
    const double dppl_err = sqrt(fmax(0, ppl * ppl * lp_err * lp_err + ppl_base * ppl_base * lb_err * lb_err -
                                          2 * ppl * ppl_base * cov));
    qsort(klds, (size_t)n, sizeof *klds, cmp_float);
    const double top = (double)s.same_top / (double)n;
    printf("tokens scored             : %ld (%d chunks of %d)\n", n, n_chunk, n_ctx);
    printf("Mean PPL(Q)               : %12.6f +/- %.6f\n", ppl, ppl * lp_err);
    printf("Mean PPL(base)            : %12.6f +/- %.6f\n", ppl_base, ppl_base * lb_err);
    printf("Mean ln(PPL(Q)/PPL(base)) : %12.6f +/- %.6f\n", lp - lb, ratio_err);
    printf("Mean PPL(Q)-PPL(base)     : %12.6f +/- %.6f\n", ppl - ppl_base, dppl_err);
    printf("Mean KLD                  : %12.6f +/- %.6f\n", kl, kl_err);
    printf("Maximum KLD               : %12.6f\n", klds[n - 1]);
    printf("99.9%% KLD                 : %12.6f\n", percentile(klds, n, 0.999));
    printf("99.0%% KLD                 : %12.6f\n", percentile(klds, n, 0.99));
    printf("Median KLD                : %12.6f\n", percentile(klds, n, 0.5));
    printf("Mean dp                   : %11.3f%% +/- %.3f%%\n", 100 * dp, 100 * dp_err);
    printf("RMS dp                    : %11.3f%% +/- %.3f%%\n", 100 * sqrt(ms), ms > 0 ? 100 * 0.5 / sqrt(ms) * ms_err : 0);
    printf("Same top p                : %11.3f%% +/- %.3f%%\n", 100 * top, n > 1 ? 100 * sqrt(top * (1 - top) / (double)(n - 1)) : 0);
    rc = 0; // main checks that stdout was written
done:
    free(klds);
    free(dps);
    free(base);
    free(chunk);
    free(toks);
    if (ctx) ll_context_free(ctx);
    fclose(f);
    return rc;
}
