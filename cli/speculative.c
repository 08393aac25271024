// Speculative decoding flags and the token source used by one-shot generation (cli/run.c)
// and the chat REPL (cli/chat.c).
// Flag names and defaults follow llama.cpp (--draft-max 16, --draft-min 0, --draft-p-min
// 0.75); --lookup-ngram N drafts by prompt lookup instead of a model; --draft-margin M (ours)
// ends a draft at the draft's near ties.
#include "speculative.h"

#include <stdlib.h>
#include <string.h>

#include "progress.h"

static struct {
    const char *model; // -md
    ll_spec_params par;
    bool lookup;       // --lookup-ngram given
    bool init;
} g_opt;

static void opt_init(void) {
    if (g_opt.init) return;
    g_opt.par = ll_spec_default_params();
    g_opt.init = true;
}

int spec_parse_arg(int argc, char **argv, int *i) {
    opt_init();
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-md") || !strcmp(a, "--model-draft")) {
        if (!args_value(argc, argv, i, &v)) return ARG_ERROR;
        g_opt.model = v;
        return ARG_DONE;
    }
    if (!strcmp(a, "--draft-max") || !strcmp(a, "--draft") || !strcmp(a, "--draft-n")) {
        if (!args_value(argc, argv, i, &v) || !args_int(a, v, 0, 1024, &g_opt.par.n_max)) return ARG_ERROR;
        return ARG_DONE;
    }
    if (!strcmp(a, "--draft-min") || !strcmp(a, "--draft-n-min")) {
        if (!args_value(argc, argv, i, &v) || !args_int(a, v, 0, 1024, &g_opt.par.n_min)) return ARG_ERROR;
        return ARG_DONE;
    }
    if (!strcmp(a, "--draft-p-min")) {
        if (!args_value(argc, argv, i, &v) || !args_float(a, v, 0.0, 1.0, &g_opt.par.p_min)) return ARG_ERROR;
        return ARG_DONE;
    }
    if (!strcmp(a, "--draft-margin")) {
        if (!args_value(argc, argv, i, &v) || !args_float(a, v, 0.0, 1e30, &g_opt.par.margin_min)) return ARG_ERROR;
        return ARG_DONE;
    }
    if (!strcmp(a, "--draft-full-head")) {
        g_opt.par.full_draft_head = true;
        return ARG_DONE;
    }
    if (!strcmp(a, "--verify-batched")) {
        g_opt.par.exact = false;
        return ARG_DONE;
    }
    if (!strcmp(a, "--lookup-ngram")) {
        if (!args_value(argc, argv, i, &v) || !args_int(a, v, 1, 64, &g_opt.par.ngram)) return ARG_ERROR;
        g_opt.lookup = true;
        return ARG_DONE;
    }
    return ARG_UNKNOWN;
}

void spec_print_help(FILE *out) {
    fputs("\nspeculative decoding (faster; the same output when greedy, the same distribution\n"
          "otherwise, though not the same text for a given seed):\n"
          "  -md, --model-draft FILE  draft model with the target's vocabulary\n"
          "  --draft-max N            tokens drafted per step (default 16)\n"
          "  --draft-min N            drafts shorter than N are not used (default 0)\n"
          "  --draft-p-min P          stop drafting after a token the draft gives less than P\n"
          "                           (default 0.75)\n"
          "  --draft-margin M         stop drafting after a token whose logit leads the next\n"
          "                           best by less than M (default 0: off); for drafts close to\n"
          "                           the target (its first layers), which miss at near ties\n"
          "  --draft-full-head        the draft's logits from its whole output head (default:\n"
          "                           a 4-bit copy of a big head, its best 32 rows exact)\n"
          "  --lookup-ngram N         no draft model: draft what followed the last N tokens\n"
          "                           earlier in the context (prompt lookup)\n"
          "  --verify-batched         verify drafts with the batched kernels: faster for long\n"
          "                           drafts, but greedy output may differ from plain decoding\n"
          "                           where rounding flips a near tie (default: exact)\n", out);
}

bool spec_wanted(void) { return g_opt.model || g_opt.lookup; }

int spec_draft_max(void) {
    opt_init();
    return g_opt.par.n_max;
}

struct cli_spec {
    ll_context *target;
    ll_model *model;   // the draft model, or NULL (lookup)
    ll_context *ctx;
    ll_sampler *smp;
    ll_spec *spec;
    ll_token *buf;     // tokens of the current step not returned yet: buf[i_buf .. n_buf)
    int n_buf, i_buf;
};

cli_spec *spec_open(const cli_params *p, ll_context *target) {
    opt_init();
    if (p->sampling.mirostat) { // it learns from each drawn token, which a draft check does not draw
        fputs("llamalite: --mirostat does not combine with speculative decoding (-md, --lookup-ngram)\n", stderr);
        return NULL;
    }
    char err[512];
    cli_spec *cs = calloc(1, sizeof *cs);
    if (!cs) goto oom;
    cs->target = target;
    cs->buf = malloc(((size_t)g_opt.par.n_max + 1) * sizeof *cs->buf);
    if (!cs->buf) goto oom;
    ll_spec_params sp = g_opt.par;
    sp.no_eog = p->ignore_eos;
    if (g_opt.model) {
        if (g_opt.lookup) cli_log(p, 1, "llamalite: --lookup-ngram is ignored with a draft model\n");
        if (!(cs->model = cli_load_model(g_opt.model, p->verbosity >= 1, "draft model"))) goto fail;
        if (ll_spec_check_vocab(ll_context_model(target), cs->model, err, sizeof err) != 0) {
            fprintf(stderr, "llamalite: %s cannot draft for %s: %s\n", g_opt.model,
                    p->model ? p->model : "the model", err);
            goto fail;
        }
        ll_context_params cp = ll_context_default_params();
        cp.n_ctx = ll_n_ctx(target);
        cp.n_batch = p->n_batch;
        cp.n_threads = ll_n_threads(target);
        cp.type_k = p->type_k;
        cp.type_v = p->type_v;
        cp.flash_attn = p->flash_attn;
        cp.swa_full = p->swa_full;
        cs->ctx = ll_context_new(cs->model, &cp, err, sizeof err);
        if (!cs->ctx) {
            fprintf(stderr, "llamalite: draft model: %s\n", err);
            goto fail;
        }
        cs->smp = ll_sampler_new(&p->sampling, ll_vocab_n_tokens(ll_model_get_vocab(cs->model)));
        if (!cs->smp) goto oom;
        cli_log(p, 2, "draft: %s (%s), %d layers; draft-max %d, draft-min %d, p-min %.2f, margin %g\n",
                g_opt.model, ll_model_desc(cs->model), ll_model_n_layer(cs->model), sp.n_max,
                sp.n_min, sp.p_min, sp.margin_min);
    } else {
        cli_log(p, 2, "prompt lookup: n-gram %d, draft-max %d, draft-min %d\n", sp.ngram,
                sp.n_max, sp.n_min);
    }
    cs->spec = ll_spec_new(target, cs->ctx, &sp, err, sizeof err);
    if (!cs->spec) {
        fprintf(stderr, "llamalite: %s\n", err);
        goto fail;
    }
    return cs;
oom:
    fputs("llamalite: out of memory (speculative decoding)\n", stderr);
fail:
    spec_close(cs);
    return NULL;
}

void spec_close(cli_spec *cs) {
    if (!cs) return;
    ll_spec_free(cs->spec);
    ll_sampler_free(cs->smp);
    ll_context_free(cs->ctx);
    ll_model_free(cs->model);
    free(cs->buf);
    free(cs);
}

ll_sampler *spec_draft_sampler(cli_spec *cs) { return cs->smp; }

int spec_feed(cli_spec *cs, const ll_token *toks, int n, char *err, size_t errlen) {
    return ll_spec_feed(cs->spec, toks, n, err, errlen);
}

int spec_next(cli_spec *cs, ll_sampler *smp, int budget, ll_token *t, char *err, size_t errlen) {
    if (cs->i_buf == cs->n_buf) {
        int n_out = g_opt.par.n_max + 1;
        if (budget >= 0 && budget < n_out) n_out = budget;
        if (n_out < 1) n_out = 1;
        // The step decodes the last committed token at position n_past - 1.
        if (ll_spec_n_past(cs->spec) - 1 >= ll_n_ctx(cs->target)) return SPEC_FULL;
        int n = ll_spec_step(cs->spec, smp, cs->smp, budget, cs->buf, n_out, err, errlen);
        if (n <= 0) {
            if (n == 0 && err && errlen) snprintf(err, errlen, "speculative step made no token");
            return SPEC_ERROR;
        }
        cs->n_buf = n;
        cs->i_buf = 0;
    }
    *t = cs->buf[cs->i_buf++];
    return SPEC_OK;
}

int spec_n_past(const cli_spec *cs) { return ll_spec_n_past(cs->spec); }
bool spec_pending(const cli_spec *cs) { return cs->i_buf < cs->n_buf; }

void spec_shift(cli_spec *cs, int n_keep, int n_discard) {
    ll_spec_shift(cs->spec, n_keep, n_discard);
}

void spec_print_stats(const cli_spec *cs, FILE *out) {
    ll_spec_stats st = ll_spec_get_stats(cs->spec);
    fprintf(out, "llamalite: speculative (%s): drafted %lld, accepted %lld (%.1f%%), %lld steps, "
            "%.2f tokens/step | draft %.0f ms, verify %.0f ms",
            cs->model ? "draft model" : "prompt lookup", (long long)st.n_drafted,
            (long long)st.n_accepted, st.n_drafted ? 100.0 * st.n_accepted / st.n_drafted : 0.0,
            (long long)st.n_steps, st.n_steps ? (double)st.n_tokens / st.n_steps : 0.0,
            st.t_draft_ms, st.t_verify_ms);
    if (st.n_shared_layers > 0) // the draft is the target's first layers: verified from there
        fprintf(out, " | layers 0-%d shared with the draft", st.n_shared_layers - 1);
    if (st.draft_head_copy) fputs(" | draft head: 4-bit copy", out);
    fputc('\n', out);
}

int spec_sync(cli_spec *cs, const ll_token *toks, int n, char *err, size_t errlen) {
    cs->i_buf = cs->n_buf = 0;
    return ll_spec_sync(cs->spec, toks, n, err, errlen);
}

void spec_rewind(cli_spec *cs, int n_keep) {
    cs->i_buf = cs->n_buf = 0;
    ll_spec_rewind(cs->spec, n_keep);
}

bool spec_set_sampling(cli_spec *cs, const ll_sampler_params *sp) {
    if (!cs->model) return true; // prompt lookup has no draft sampler
    ll_sampler *smp = ll_sampler_new(sp, ll_vocab_n_tokens(ll_model_get_vocab(cs->model)));
    if (!smp) return false;
    ll_sampler_free(cs->smp);
    cs->smp = smp;
    return true;
}

ll_spec_stats spec_stats(const cli_spec *cs) { return ll_spec_get_stats(cs->spec); }

void spec_print_turn(const cli_spec *cs, const ll_spec_stats *before, int n_tokens, double ms, FILE *out) {
    ll_spec_stats st = ll_spec_get_stats(cs->spec);
    long long drafted = st.n_drafted - before->n_drafted, accepted = st.n_accepted - before->n_accepted;
    fprintf(out, "[speculative (%s): drafted %lld, accepted %lld (%.1f%%), %d tokens, %.1f tokens/s]\n",
            cs->model ? "draft model" : "prompt lookup", drafted, accepted,
            drafted ? 100.0 * accepted / drafted : 0.0, n_tokens, ms > 0 ? n_tokens * 1e3 / ms : 0.0);
}
