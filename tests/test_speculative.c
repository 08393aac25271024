// Speculative decoding (ll_spec_*):
//  - greedy: the tokens equal plain token-by-token greedy decoding exactly, with a draft model
//    of different weights (mixed-base-q8_0 for mixed-types), with prompt lookup, with
//    penalties (the draft sampler's history is rolled back), for several --draft-max values;
//    the golden prompts are used and the agreement with the golden is printed;
//  - sampling (temperature 0.8): over a fixed set of seeds, the first- and second-token
//    frequencies with a draft (stories260K-f16 for stories260K; also a deliberately different
//    draft distribution, and prompt lookup) agree with plain sampling by a chi-square test,
//    and the same test does tell the draft's own distribution apart (the test has power);
//  - the vocabulary check names the difference.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "tests/test_util.h"

#define MAX_GEN 64

static ll_model *load(const char *shared, const char *name) {
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/models/%s", shared, name);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", path, err);
    return m;
}

static ll_context *new_ctx(ll_model *m) {
    char err[256];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 1;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    return c;
}

static int n_vocab_of(const ll_model *m) { return ll_vocab_n_tokens(ll_model_get_vocab(m)); }

// Plain decoding: the prompt in one batch, then one token at a time.
static int gen_plain(ll_model *m, ll_context *c, const ll_sampler_params *sp, const ll_token *prompt,
                     int n_prompt, int n, ll_token *out) {
    char err[256];
    ll_kv_clear(c);
    ll_sampler *s = ll_sampler_new(sp, n_vocab_of(m));
    for (int i = 0; i < n_prompt; i++) ll_sampler_accept(s, prompt[i]);
    int k = 0;
    if (ll_decode(c, prompt, n_prompt, err, sizeof err) == 0) {
        for (; k < n; k++) {
            out[k] = ll_sampler_sample(s, ll_get_logits(c));
            ll_sampler_accept(s, out[k]);
            if (k + 1 < n && ll_decode(c, &out[k], 1, err, sizeof err) != 0) break;
        }
    }
    ll_sampler_free(s);
    return k;
}

// Speculative decoding with draft model d (or prompt lookup when d is NULL). dsp: the draft
// sampler's parameters (NULL: the target's).
static int gen_spec(ll_model *m, ll_context *c, ll_model *d, ll_context *dc, const ll_spec_params *par,
                    const ll_sampler_params *sp, const ll_sampler_params *dsp, const ll_token *prompt,
                    int n_prompt, int n, ll_token *out, ll_spec_stats *stats) {
    char err[256];
    ll_kv_clear(c);
    if (dc) ll_kv_clear(dc);
    ll_spec *S = ll_spec_new(c, d ? dc : NULL, par, err, sizeof err);
    CHECK(S != NULL, "ll_spec_new: %s", err);
    if (!S) return 0;
    ll_sampler *s = ll_sampler_new(sp, n_vocab_of(m));
    ll_sampler *ds = d ? ll_sampler_new(dsp ? dsp : sp, n_vocab_of(d)) : NULL;
    for (int i = 0; i < n_prompt; i++) {
        ll_sampler_accept(s, prompt[i]);
        if (ds) ll_sampler_accept(ds, prompt[i]);
    }
    int k = 0;
    int rc = ll_spec_feed(S, prompt, n_prompt, err, sizeof err);
    CHECK(rc == 0, "ll_spec_feed: %s", err);
    while (rc == 0 && k < n) {
        int r = ll_spec_step(S, s, ds, -1, out + k, n - k, err, sizeof err);
        CHECK(r > 0 && r <= n - k, "ll_spec_step returned %d: %s", r, err);
        if (r <= 0) break;
        k += r;
        CHECK(ll_spec_n_past(S) == n_prompt + k, "n_past %d, expected %d", ll_spec_n_past(S), n_prompt + k);
    }
    if (stats) {
        ll_spec_stats st = ll_spec_get_stats(S);
        stats->n_steps += st.n_steps;
        stats->n_drafted += st.n_drafted;
        stats->n_accepted += st.n_accepted;
        stats->n_tokens += st.n_tokens;
    }
    ll_sampler_free(s);
    ll_sampler_free(ds);
    ll_spec_free(S);
    return k;
}

static int first_diff(const ll_token *a, const ll_token *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return i;
    return -1;
}

// ---- greedy exactness on the golden prompts ------------------------------------------------

typedef struct {
    ll_token prompt[1024];
    int n_prompt;
    ll_token gold[64];
    int n_gold;
} golden;

static int read_golden(const char *path, golden *g, int max) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return 0;
    static char line[1 << 20];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        char *s = strstr(line, "\"prompt_tokens\"");
        if (!s || !(s = strchr(s, '['))) continue;
        golden *c = &g[n];
        c->n_prompt = c->n_gold = 0;
        s++;
        while (*s && *s != ']' && c->n_prompt < 1024) {
            char *e;
            long v = strtol(s, &e, 10);
            if (e == s) break;
            c->prompt[c->n_prompt++] = (ll_token)v;
            s = e;
            while (*s == ',' || *s == ' ') s++;
        }
        while ((s = strstr(s, "\"token\"")) != NULL && c->n_gold < 64) {
            c->gold[c->n_gold++] = (ll_token)strtol(strchr(s, ':') + 1, NULL, 10);
            s++;
        }
        if (c->n_prompt > 0) n++;
    }
    fclose(f);
    return n;
}

static void test_greedy_golden(const char *shared) {
    ll_model *m = load(shared, "mixed-types.gguf"), *d = load(shared, "mixed-base-q8_0.gguf");
    if (!m || !d) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/mixed-types.jsonl", shared);
    static golden g[8];
    int n_cases = read_golden(path, g, 8);
    CHECK(n_cases == 5, "%d golden cases", n_cases);
    ll_context *c = new_ctx(m), *dc = new_ctx(d);

    ll_sampler_params greedy = ll_sampler_default_params();
    greedy.temp = 0.0f;
    greedy.seed = 1;
    ll_sampler_params penal = greedy; // penalties: the draft sampler must roll back
    penal.repeat_penalty = 1.3f;
    penal.freq_penalty = 0.2f;
    penal.repeat_last_n = 16;

    struct { const char *what; int n_max; float p_min; bool model; const ll_sampler_params *sp; } runs[] = {
        {"draft, --draft-max 16", 16, 0.75f, true, &greedy},
        {"draft, --draft-max 4, p-min 0", 4, 0.0f, true, &greedy},
        {"draft, --draft-max 1", 1, 0.0f, true, &greedy},
        {"draft, penalties", 8, 0.0f, true, &penal},
        {"lookup 3", 16, 0.0f, false, &greedy},
        {"lookup 3, penalties", 16, 0.0f, false, &penal},
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        ll_spec_params par = ll_spec_default_params();
        par.n_max = runs[r].n_max;
        par.p_min = runs[r].p_min;
        ll_spec_stats st = {0};
        int exact = 0;
        for (int i = 0; i < n_cases; i++) {
            ll_token a[MAX_GEN], b[MAX_GEN];
            int na = gen_plain(m, c, runs[r].sp, g[i].prompt, g[i].n_prompt, MAX_GEN, a);
            int nb = gen_spec(m, c, runs[r].model ? d : NULL, dc, &par, runs[r].sp, NULL, g[i].prompt,
                              g[i].n_prompt, MAX_GEN, b, &st);
            CHECK(na == MAX_GEN && nb == MAX_GEN, "%s case %d: %d and %d tokens", runs[r].what, i, na, nb);
            int fd = first_diff(a, b, MAX_GEN);
            CHECK(fd < 0, "%s case %d: speculative differs from plain greedy at token %d (%d vs %d)",
                  runs[r].what, i, fd, fd >= 0 ? b[fd] : 0, fd >= 0 ? a[fd] : 0);
            exact += fd < 0;
            if (r == 0) {
                int n = g[i].n_gold < MAX_GEN ? g[i].n_gold : MAX_GEN;
                int fg = first_diff(g[i].gold, b, n);
                if (fg < 0)
                    printf("mixed-types case %d: the golden's %d steps all reproduced\n", i, n);
                else
                    printf("mixed-types case %d: golden reproduced for %d of %d steps (plain greedy: %d)\n",
                           i, fg, n, first_diff(g[i].gold, a, n) < 0 ? n : first_diff(g[i].gold, a, n));
            }
        }
        printf("greedy %-32s: %d/%d cases identical to plain; drafted %lld, accepted %lld (%.0f%%), "
               "%.2f tokens/step\n", runs[r].what, exact, n_cases, (long long)st.n_drafted,
               (long long)st.n_accepted, st.n_drafted ? 100.0 * st.n_accepted / st.n_drafted : 0.0,
               st.n_steps ? (double)st.n_tokens / st.n_steps : 0.0);
    }
    ll_context_free(c);
    ll_context_free(dc);
    ll_model_free(m);
    ll_model_free(d);
}

// Prompt lookup on a repetitive prompt (stories260K partly retells what it was told):
// identical to plain greedy, and lookup drafts do get accepted.
static void test_lookup_repetitive(const char *shared) {
    ll_model *m = load(shared, "stories260K.gguf");
    if (!m) return;
    ll_context *c = new_ctx(m);
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play with her ball. "
                       "One day, Lily went to the park with her ball. She saw a big tree. Once upon a time, "
                       "there was a little girl named Lily. She loved to";
    ll_token prompt[256];
    int np = ll_tokenize(ll_model_get_vocab(m), text, (int)strlen(text), prompt, 256, true, false);
    CHECK(np > 10 && np < 256, "tokenize: %d", np);
    ll_sampler_params greedy = ll_sampler_default_params();
    greedy.temp = 0.0f;
    for (int ng = 1; ng <= 3; ng++) {
        ll_spec_params par = ll_spec_default_params();
        par.ngram = ng;
        ll_token a[MAX_GEN], b[MAX_GEN];
        ll_spec_stats st = {0};
        int na = gen_plain(m, c, &greedy, prompt, np, MAX_GEN, a);
        int nb = gen_spec(m, c, NULL, NULL, &par, &greedy, NULL, prompt, np, MAX_GEN, b, &st);
        CHECK(na == nb && first_diff(a, b, na) < 0, "lookup %d: differs from plain at %d", ng, first_diff(a, b, na));
        CHECK(st.n_accepted > 0, "lookup %d: no drafted token accepted", ng);
        printf("lookup-ngram %d on a repetitive prompt: identical to plain; drafted %lld, accepted %lld, "
               "%.2f tokens/step\n", ng, (long long)st.n_drafted, (long long)st.n_accepted,
               (double)st.n_tokens / (double)st.n_steps);
    }
    ll_context_free(c);
    ll_model_free(m);
}

// ---- sampling: the output distribution is the target's ------------------------------------

enum { N_RUNS = 1500 };
static ll_spec_stats *g_stats; // where sample_runs adds up the speculative statistics

typedef struct {
    int *first, *second; // counts per token
} freq;

// Two-sample chi-square over the categories with enough counts (the rest pooled). Returns the
// statistic divided by its 0.1% critical value (> 1: the distributions differ).
static double chi2_ratio(const int *a, const int *b, int n, int *df_out) {
    double stat = 0.0, pa = 0, pb = 0;
    int df = -1;
    for (int i = 0; i < n; i++) {
        if (a[i] + b[i] >= 10) {
            double d = a[i] - b[i];
            stat += d * d / (a[i] + b[i]);
            df++;
        } else {
            pa += a[i];
            pb += b[i];
        }
    }
    if (pa + pb > 0) {
        stat += (pa - pb) * (pa - pb) / (pa + pb);
        df++;
    }
    if (df < 1) df = 1;
    // Wilson-Hilferty: the 0.999 quantile of chi-square with df degrees of freedom.
    const double z = 3.090, h = 2.0 / (9.0 * df);
    double crit = df * pow(1.0 - h + z * sqrt(h), 3.0);
    *df_out = df;
    return stat / crit;
}

static void sample_runs(ll_model *m, ll_context *c, ll_model *d, ll_context *dc, const ll_spec_params *par,
                        const ll_sampler_params *dsp, const ll_token *prompt, int np, bool spec, freq *f) {
    int nv = n_vocab_of(m);
    for (int r = 0; r < N_RUNS; r++) {
        ll_sampler_params sp = ll_sampler_default_params(); // temp 0.8, top-k 40, top-p 0.95, min-p 0.05
        sp.seed = 1000u + (uint32_t)r;
        ll_token out[2];
        int n = spec ? gen_spec(m, c, d, dc, par, &sp, dsp, prompt, np, 2, out, g_stats)
                     : gen_plain(m, c, &sp, prompt, np, 2, out);
        CHECK(n == 2, "run %d: %d tokens", r, n);
        if (n == 2 && out[0] >= 0 && out[0] < nv && out[1] >= 0 && out[1] < nv) {
            f->first[out[0]]++;
            f->second[out[1]]++;
        }
    }
}

// The draft's own distribution (what the target would produce if every draft were accepted).
static void draft_runs(ll_model *d, ll_context *dc, const ll_sampler_params *dsp, const ll_token *prompt,
                       int np, freq *f) {
    for (int r = 0; r < N_RUNS; r++) {
        ll_sampler_params sp = *dsp;
        sp.seed = 5000u + (uint32_t)r;
        ll_token out[2];
        if (gen_plain(d, dc, &sp, prompt, np, 2, out) == 2) {
            f->first[out[0]]++;
            f->second[out[1]]++;
        }
    }
}

// text: a prompt whose next token has many likely choices. lookup: test prompt lookup (the
// prompt repeats itself) instead of the draft model.
static void test_sampling_distribution(const char *shared, const char *text, bool lookup) {
    ll_model *m = load(shared, "stories260K.gguf"), *d = load(shared, "stories260K-f16.gguf");
    if (!m || !d) return;
    ll_context *c = new_ctx(m), *dc = new_ctx(d);
    const int nv = n_vocab_of(m);
    ll_token prompt[64];
    int np = ll_tokenize(ll_model_get_vocab(m), text, (int)strlen(text), prompt, 64, true, false);

    freq plain = {calloc(nv, sizeof(int)), calloc(nv, sizeof(int))};
    sample_runs(m, c, NULL, NULL, NULL, NULL, prompt, np, false, &plain);

    // A draft sampler much flatter than the target's: many rejections, so the residual draws
    // carry real weight.
    ll_sampler_params flat = ll_sampler_default_params();
    flat.temp = 1.6f;
    flat.top_k = 0;
    flat.top_p = 1.0f;
    flat.min_p = 0.0f;
    ll_spec_params par = ll_spec_default_params();
    par.n_max = 4;
    par.p_min = 0.0f;
    struct { const char *what; ll_model *d; const ll_sampler_params *dsp; } variants[] = {
        {"draft stories260K-f16, same sampler", d, NULL},
        {"draft stories260K-f16, flat temp-1.6 sampler", d, &flat},
    }, lookups[] = {
        {"prompt lookup 2", NULL, NULL},
    };
    const size_t n_var = lookup ? 1 : 2;
    for (size_t v = 0; v < n_var; v++) {
        if (lookup) variants[v] = lookups[v];
        freq sf = {calloc(nv, sizeof(int)), calloc(nv, sizeof(int))};
        ll_spec_params pv = par;
        pv.ngram = 2;
        ll_spec_stats st = {0};
        g_stats = &st;
        sample_runs(m, c, variants[v].d, dc, &pv, variants[v].dsp, prompt, np, true, &sf);
        int df1, df2;
        double r1 = chi2_ratio(plain.first, sf.first, nv, &df1);
        double r2 = chi2_ratio(plain.second, sf.second, nv, &df2);
        g_stats = NULL;
        printf("sampling, %-45s: chi2/crit(0.1%%) first token %.2f (df %d), second %.2f (df %d); "
               "drafted %lld, accepted %lld\n", variants[v].what, r1, df1, r2, df2,
               (long long)st.n_drafted, (long long)st.n_accepted);
        // The F16 copy agrees almost always; the flat sampler and the lookup get rejections.
        CHECK(st.n_drafted > N_RUNS / 2 && st.n_accepted > 0 && (v == 0 || st.n_accepted < st.n_drafted),
              "%s: the test should see accepted (and rejected) drafts", variants[v].what);
        CHECK(r1 < 1.0 && r2 < 1.0, "%s: token frequencies differ from plain sampling (%.2f, %.2f)",
              variants[v].what, r1, r2);
        free(sf.first);
        free(sf.second);
    }
    // Power: the flat draft's own distribution is told apart at once.
    if (lookup) goto done;
    freq df = {calloc(nv, sizeof(int)), calloc(nv, sizeof(int))};
    draft_runs(d, dc, &flat, prompt, np, &df);
    int d1, d2;
    double p1 = chi2_ratio(plain.first, df.first, nv, &d1), p2 = chi2_ratio(plain.second, df.second, nv, &d2);
    printf("sampling, the flat draft's own distribution (control)        : chi2/crit first %.2f, second %.2f\n", p1, p2);
    CHECK(p1 > 1.0 && p2 > 1.0, "the chi-square test cannot tell the draft's distribution apart (%.2f, %.2f)", p1, p2);
    free(df.first);
    free(df.second);
done:
    free(plain.first);
    free(plain.second);
    ll_context_free(c);
    ll_context_free(dc);
    ll_model_free(m);
    ll_model_free(d);
}

// ---- vocabulary check -----------------------------------------------------------------------

static void test_vocab_check(const char *shared) {
    ll_model *a = load(shared, "mixed-types.gguf"), *b = load(shared, "stories260K.gguf"),
             *c = load(shared, "mixed-base-q8_0.gguf");
    if (!a || !b || !c) return;
    char err[256] = "";
    CHECK(ll_spec_check_vocab(a, c, err, sizeof err) == 0, "same vocab rejected: %s", err);
    CHECK(ll_spec_check_vocab(a, b, err, sizeof err) != 0, "different vocab accepted");
    CHECK(strstr(err, "512") && strstr(err, "32000"), "message does not name the sizes: %s", err);
    printf("vocab mismatch: %s\n", err);
    ll_context *ca = new_ctx(a), *cb = new_ctx(b);
    ll_spec *s = ll_spec_new(ca, cb, NULL, err, sizeof err);
    CHECK(s == NULL && strstr(err, "draft vocabulary"), "ll_spec_new took a mismatched draft: %s", err);
    ll_spec_free(s);
    ll_context_free(ca);
    ll_context_free(cb);
    ll_model_free(a);
    ll_model_free(b);
    ll_model_free(c);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    test_vocab_check(shared);
    test_greedy_golden(shared);
    test_lookup_repetitive(shared);
    test_sampling_distribution(shared, "She saw a", false); // some 15 likely next tokens
    test_sampling_distribution(shared, "Tom saw a bird. Tom saw a", true);
    return test_result("test_speculative");
}
