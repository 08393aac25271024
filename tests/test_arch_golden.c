// Golden test of the architectures after Llama: ../shared/models/arch/<name>.gguf against the
// reference engines' greedy runs in ../shared/golden/arch/<name>.jsonl (random-weight models of
// each family; the shared README gives each one's semantics). For every prompt:
//   - our tokenizer gives the golden prompt tokens (BOS as the vocab says, no special parsing);
//   - we decode greedily from them; at every step where our pick is the reference's token, each
//     of the reference's top-8 logits agrees within max(2% |v|, 0.05);
//   - our pick may differ only where the reference's top two are within 0.5% of the top logit
//     (a near tie the reference itself could flip); the prompt's comparison stops there;
//   - mixtures of experts: where the logits disagree after a routing call that came within 2% of
//     choosing another expert (ll_get_route_margin), the paths have parted at a routing near tie
//     (our rounding and the reference's may pick different experts there); that prompt stops too.
// Runs with 1 and 2 threads. The mixtures of experts (llama-moe, qwen2moe, qwen3moe, gpt-oss)
// are here too; gpt-oss reports skipped while ggml-lite has no MXFP4 (its experts' type).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "ggml-lite/ggml-lite.h"
#include "tests/golden_file.h"
#include "tests/test_util.h"

#define MAX_CASES 8

typedef struct {
    int steps, parted, parted_route;
    double max_rel, max_abs;
} stats;

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

// Appends code point u as UTF-8.
static size_t put_utf8(char *o, unsigned u) {
    if (u < 0x80) { o[0] = (char)u; return 1; }
    if (u < 0x800) { o[0] = (char)(0xC0 | u >> 6); o[1] = (char)(0x80 | (u & 63)); return 2; }
    if (u < 0x10000) {
        o[0] = (char)(0xE0 | u >> 12); o[1] = (char)(0x80 | (u >> 6 & 63)); o[2] = (char)(0x80 | (u & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | u >> 18); o[1] = (char)(0x80 | (u >> 12 & 63));
    o[2] = (char)(0x80 | (u >> 6 & 63)); o[3] = (char)(0x80 | (u & 63));
    return 4;
}

// The "prompt" string of a golden line, JSON escapes decoded, into out (cap bytes). Its length, or -1.
static int prompt_text(const char *line, char *out, size_t cap) {
    const char *s = strstr(line, "\"prompt\"");
    if (!s || !(s = strchr(s + 8, '"'))) return -1;
    size_t n = 0;
    for (s++; *s && *s != '"'; s++) {
        if (n + 8 > cap) return -1;
        if (*s != '\\') { out[n++] = *s; continue; }
        s++;
        switch (*s) {
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'u': {
            unsigned u = (unsigned)strtoul((char[5]){s[1], s[2], s[3], s[4], 0}, NULL, 16);
            s += 4;
            if (u >= 0xD800 && u < 0xDC00 && s[1] == '\\' && s[2] == 'u') {
                unsigned lo = (unsigned)strtoul((char[5]){s[3], s[4], s[5], s[6], 0}, NULL, 16);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
            n += put_utf8(out + n, u);
            break;
        }
        default: out[n++] = *s; break;
        }
    }
    out[n] = 0;
    return (int)n;
}

// Relative tolerance of a logit (2%, see above; one model differs, see its entry in main).
static double rel_tol = 0.02;

static void run_case(ll_context *c, int n_vocab, const golden_case *g, stats *st, const char *tag) {
    char err[256];
    ll_kv_clear(c);
    int rc = ll_decode(c, g->prompt, g->n_prompt, err, sizeof err);
    CHECK(rc == 0, "%s: decode of the prompt failed: %s", tag, err);
    if (rc) return;
    float route_margin = ll_get_route_margin(c); // the closest routing call so far
    for (int k = 0; k < g->n_steps; k++) {
        const float *lg = ll_get_logits(c);
        CHECK(lg != NULL, "%s: no logits", tag);
        if (!lg) return;
        const ll_token am = argmax(lg, n_vocab);
        st->steps++;
        if (am != g->token[k]) {
            const double top1 = g->top_logit[k][0], top2 = g->top_logit[k][1];
            const bool near_tie = top1 - top2 < 0.005 * fabs(top1);
            CHECK(near_tie, "%s step %d: argmax %d (%.4f), reference %d (ours %.4f); reference margin %.4f",
                  tag, k, am, lg[am], g->token[k], lg[g->token[k]], top1 - top2);
            st->parted++;
            return; // the paths part here: nothing after is comparable
        }
        bool agree = true;
        for (int j = 0; j < GOLDEN_TOP; j++) {
            const ll_token id = g->top_id[k][j];
            if (id < 0 || id >= n_vocab) continue;
            const double ref = g->top_logit[k][j], d = fabs(lg[id] - ref);
            agree &= d <= 0.05 || d <= rel_tol * fabs(ref);
        }
        if (!agree && route_margin < 0.02) {
            st->parted_route++;
            return; // other experts ran from here on: nothing after is comparable
        }
        for (int j = 0; j < GOLDEN_TOP; j++) {
            const ll_token id = g->top_id[k][j];
            if (id < 0 || id >= n_vocab) continue;
            const double ref = g->top_logit[k][j], d = fabs(lg[id] - ref);
            const double rel = d / (fabs(ref) > 1e-6 ? fabs(ref) : 1e-6);
            if (d > st->max_abs) st->max_abs = d;
            if (rel > st->max_rel) st->max_rel = rel;
            CHECK(d <= 0.05 || rel <= rel_tol, "%s step %d: logit of %d is %.5f, reference %.5f", tag, k, id, lg[id], ref);
        }
        rc = ll_decode(c, &am, 1, err, sizeof err);
        CHECK(rc == 0, "%s step %d: decode failed: %s", tag, k, err);
        if (rc) return;
        route_margin = fminf(route_margin, ll_get_route_margin(c));
    }
}

static void run_model(const char *shared, const char *name) {
    char path[1024], gpath[1024], err[512];
    // gpt-oss's experts are MXFP4 (GGUF type 39): skipped until ggml-lite decodes it.
    if (!strcmp(name, "gpt-oss") && !gl_get_type_traits((enum gl_type)39)) {
        printf("%-12s skipped: tensor type 39 (MXFP4) is not supported\n", name);
        return;
    }
    snprintf(path, sizeof path, "%s/models/arch/%s.gguf", shared, name);
    snprintf(gpath, sizeof gpath, "%s/golden/arch/%s.jsonl", shared, name);
    static golden_case cases[MAX_CASES];
    const int n_cases = golden_load(gpath, cases, MAX_CASES);
    if (!n_cases) return;

    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", path, err);
    if (!m) return;
    const ll_vocab *v = ll_model_get_vocab(m);
    const int n_vocab = ll_vocab_n_tokens(v);

    // The tokenizer (and its pre-tokenizer) against the golden prompt tokens.
    FILE *f = fopen(gpath, "rb");
    static char line[1 << 20], text[1 << 16];
    ll_token toks[GOLDEN_MAX_TOK];
    for (int i = 0; f && i < n_cases && fgets(line, sizeof line, f);) {
        if (!strchr(line, '{')) continue;
        const int len = prompt_text(line, text, sizeof text);
        CHECK(len >= 0, "%s case %d: prompt text does not parse", name, i);
        if (len >= 0) {
            const int n = ll_tokenize(v, text, len, toks, GOLDEN_MAX_TOK, true, false);
            bool same = n == cases[i].n_prompt && !memcmp(toks, cases[i].prompt, sizeof(ll_token) * (size_t)n);
            CHECK(same, "%s case %d: tokenizer gives %d tokens (first %d), reference %d (first %d)", name, i, n,
                  n > 0 ? toks[0] : -1, cases[i].n_prompt, cases[i].prompt[0]);
        }
        i++;
    }
    if (f) fclose(f);

    const ll_flash_attn modes[] = {LL_FLASH_ATTN_OFF, LL_FLASH_ATTN_AUTO}; // two passes, fused
    for (int fa = 0; fa < 2; fa++)
        for (int nt = 1; nt <= 2; nt++) {
            ll_context *c = golden_context(m, nt, modes[fa]);
            if (!c) continue;
            stats st = {0};
            char tag[160];
            for (int i = 0; i < n_cases; i++) {
                snprintf(tag, sizeof tag, "%s case %d threads %d -fa %s", name, i, nt, golden_fa_name[modes[fa]]);
                run_case(c, n_vocab, &cases[i], &st, tag);
            }
            printf("%-12s threads %d -fa %-4s: %d cases, %d steps, %d parted at near ties (%d in routing), max rel err "
                   "%.2e, max abs err %.2e\n", name, nt, golden_fa_name[modes[fa]], n_cases, st.steps, st.parted,
                   st.parted_route, st.max_rel, st.max_abs);
            ll_context_free(c);
        }
    ll_model_free(m);
}

int main(int argc, char **argv) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    static const char *const models[] = {"llama31", "qwen2",  "qwen2-yarn", "qwen3",    "phi3",
                                         "gemma2",  "gemma3", "llama-moe",  "qwen2moe", "qwen3moe", "gpt-oss"};
    if (argc > 1) { // one model by name, for debugging
        for (int i = 1; i < argc; i++) run_model(shared, argv[i]);
        return test_result("test_arch_golden");
    }
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        // qwen3moe's golden is ik_llama.cpp's, whose arithmetic differs from llama.cpp's (which
        // we follow) in one known place: it quantizes the activations of Q8_0-family weights with
        // block scales in bf16 (its Q8_2_X4), llama.cpp in f16. On this 2-layer model that alone
        // puts one logit of 1272 (case 3, step 11) 2.14% away; rounding our scales to bf16 as ik
        // does brings it to 1.19% (and moves the llama.cpp goldens away: llama31 0.47% -> 0.99%).
        // So the extra 0.5% is the two references' difference, not a defect.
        rel_tol = !strcmp(models[i], "qwen3moe") ? 0.025 : 0.02;
        run_model(shared, models[i]);
    }
    return test_result("test_arch_golden");
}
