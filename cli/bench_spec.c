// llamalite bench with -md DRAFT (or --lookup-ngram N): greedy generation of a text prompt by the
// target alone and with speculative decoding, run after run in turn (alone, then speculative,
// -r times), so a machine whose memory speed drifts between runs shifts both alike. Reports
// the median tokens/s of each, the median of the per-run ratios, and the draft's acceptance;
// warns when the two outputs differ (with exact verification they must not).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench_spec.h"
#include "progress.h"
#include "speculative.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The prompt, then n_gen greedy tokens (the end-of-generation tokens eog never chosen) into
// out; returns the generation's milliseconds (prompt excluded), or -1 (message printed).
static double run_alone(ll_context *ctx, const ll_sampler_params *sp, int n_vocab, const ll_token *eog, int n_eog,
                        const ll_token *prompt, int n_prompt, int n_gen, ll_token *out) {
    char err[512] = "out of memory";
    ll_sampler *smp = ll_sampler_new(sp, n_vocab);
    if (!smp) goto fail;
    ll_kv_clear(ctx);
    if (ll_decode(ctx, prompt, n_prompt, err, sizeof err) != 0) goto fail;
    double t0 = cli_now();
    for (int i = 0; i < n_gen; i++) {
        float *logits = ll_get_logits(ctx);
        for (int k = 0; k < n_eog; k++) logits[eog[k]] = -INFINITY;
        out[i] = ll_sampler_sample(smp, logits);
        ll_sampler_accept(smp, out[i]);
        if (i + 1 < n_gen && ll_decode(ctx, &out[i], 1, err, sizeof err) != 0) goto fail;
    }
    ll_sampler_free(smp);
    return (cli_now() - t0) * 1e3;
fail:
    ll_sampler_free(smp);
    fprintf(stderr, "llamalite: %s\n", err);
    return -1;
}

// The same through speculative decoding (the spec's caches rewound to empty, fresh samplers).
static double run_spec(cli_spec *cs, const ll_sampler_params *sp, int n_vocab, const ll_token *prompt,
                       int n_prompt, int n_gen, ll_token *out) {
    char err[512] = "out of memory";
    ll_sampler *smp = ll_sampler_new(sp, n_vocab);
    if (!smp || !spec_set_sampling(cs, sp)) goto fail;
    spec_rewind(cs, 0);
    if (spec_feed(cs, prompt, n_prompt, err, sizeof err) != 0) goto fail;
    double t0 = cli_now();
    for (int i = 0; i < n_gen; i++)
        if (spec_next(cs, smp, n_gen - i, &out[i], err, sizeof err) != SPEC_OK) goto fail;
    ll_sampler_free(smp);
    return (cli_now() - t0) * 1e3;
fail:
    ll_sampler_free(smp);
    fprintf(stderr, "llamalite: speculative: %s\n", err);
    return -1;
}

int bench_spec(const cli_params *params, ll_model *model, const char *prompt_text, int n_gen, int n_threads,
               int reps) {
    char err[512];
    cli_params p = *params;
    p.sampling.temp = 0; // greedy: the outputs can be compared
    p.ignore_eos = true;
    const ll_vocab *v = ll_model_get_vocab(model);
    const int n_vocab = ll_vocab_n_tokens(v);
    int n_prompt = 0, n_eog = 0, rc = 1;
    ll_token *prompt = cli_tokenize(v, prompt_text, true, &n_prompt), *eog = cli_eog_tokens(v, &n_eog);
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = n_prompt + n_gen + 1 + spec_draft_max(); // the last step's draft past the end
    cp.n_batch = p.n_batch;
    cp.n_threads = n_threads;
    cp.type_k = p.type_k;
    cp.type_v = p.type_v;
    cp.flash_attn = p.flash_attn;
    cp.swa_full = p.swa_full;
    ll_context *alone = NULL, *target = NULL;
    cli_spec *cs = NULL;
    ll_token *a_out = malloc(sizeof(ll_token) * (size_t)n_gen * 2), *s_out = a_out ? a_out + n_gen : NULL;
    double *t_alone = malloc(sizeof(double) * (size_t)reps * 3), *t_spec = t_alone ? t_alone + reps : NULL,
           *ratio = t_alone ? t_alone + 2 * reps : NULL;
    if (!prompt || n_prompt < 1 || !eog || !a_out || !t_alone) {
        fprintf(stderr, "llamalite: bench: %s\n", prompt ? "out of memory or empty prompt" : "cannot tokenize the prompt");
        goto done;
    }
    if (!(alone = ll_context_new(model, &cp, err, sizeof err)) || !(target = ll_context_new(model, &cp, err, sizeof err))) {
        fprintf(stderr, "llamalite: %s\n", err);
        goto done;
    }
    if (!(cs = spec_open(&p, target))) goto done;
    // Warm-up (page faults, caches, thread start-up), then the timed pairs.
    if (run_alone(alone, &p.sampling, n_vocab, eog, n_eog, prompt, n_prompt, n_gen, a_out) < 0 ||
        run_spec(cs, &p.sampling, n_vocab, prompt, n_prompt, n_gen, s_out) < 0)
        goto done;
    const ll_spec_stats st0 = spec_stats(cs);
    int n_differ = 0;
    for (int k = 0; k < reps; k++) {
        t_alone[k] = run_alone(alone, &p.sampling, n_vocab, eog, n_eog, prompt, n_prompt, n_gen, a_out);
        t_spec[k] = t_alone[k] < 0 ? -1 : run_spec(cs, &p.sampling, n_vocab, prompt, n_prompt, n_gen, s_out);
        if (t_spec[k] < 0) goto done;
        if (memcmp(a_out, s_out, sizeof(ll_token) * (size_t)n_gen) != 0) n_differ++;
        ratio[k] = t_alone[k] / t_spec[k];
        t_alone[k] = n_gen * 1e3 / t_alone[k];
        t_spec[k] = n_gen * 1e3 / t_spec[k];
        cli_log(&p, 2, "bench: tg%d run %d/%d: alone %.2f t/s, speculative %.2f t/s (%.2fx)\n", n_gen, k + 1, reps,
                t_alone[k], t_spec[k], ratio[k]);
    }
    const ll_spec_stats st = spec_stats(cs);
    const long long drafted = st.n_drafted - st0.n_drafted, accepted = st.n_accepted - st0.n_accepted;
    printf("| %-14s | %7d | %7d | %11.2f | %17.2f | %6.2fx | %9.1f%% | %6s |\n", "tg", n_gen, ll_n_threads(target),
           median(t_alone, reps), median(t_spec, reps), median(ratio, reps),
           drafted ? 100.0 * accepted / drafted : 0.0, n_differ ? "DIFFER" : "same");
    if (n_differ)
        fprintf(stderr, "llamalite: bench: the speculative output differed from the target's own in %d of %d runs\n",
                n_differ, reps);
    rc = 0;
done:
    spec_close(cs);
    ll_context_free(target);
    ll_context_free(alone);
    free(prompt);
    free(eog);
    free(a_out);
    free(t_alone);
    return rc;
}

void bench_spec_header(void) {
    printf("| %-14s | %7s | %7s | %11s | %17s | %7s | %10s | %6s |\n", "test", "n_gen", "threads", "alone t/s",
           "speculative t/s", "speedup", "accepted", "output");
    printf("| -------------- | ------: | ------: | ----------: | ----------------: | ------: | ---------: | ------ |\n");
}
