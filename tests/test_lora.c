// LoRA adapters (engine/lora.c, forward_llama.c, lora_export.c):
// - mixed-base-q8_0 + lora-rank8 against the reference's golden run (teacher-forced; the
//   the fidelity policy of test_golden.c for the random models, for every kernel set: 5% per
//   logit, 1% mean, and the reference's argmax unless it is a near tie);
// - scale 0 gives bitwise the base model's logits and matches the base golden;
// - the same adapter loaded twice at 0.5 equals it once at 1.0 (1e-3 relative);
// - F16, BF16 and Q8_0 copies of the adapter agree with the F32 one;
// - a token_embd adapter (A and B flipped, also applied to the tied output head) and the
//   whole adapter merged with ll_lora_export agree with the run-time adapters;
// - every validation error, on adapters crafted with the GGUF writer.
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"
#include "ggml-lite/ggml-lite.h"
#include "tests/golden_file.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

#define MAX_STEPS 64 // steps compared per case (the logit buffers hold this many)
#define MAX_CASES 8

// The golden cases of path, each cut to its first MAX_STEPS steps.
static int load_golden(const char *path, golden_case *cases) {
    int n = golden_load(path, cases, MAX_CASES);
    for (int i = 0; i < n; i++)
        if (cases[i].n_steps > MAX_STEPS) cases[i].n_steps = MAX_STEPS;
    return n;
}

// Teacher-forced logits: after the prompt and after each reference token, all n_vocab logits
// into out[step][n_vocab].
static bool run_logits(ll_context *c, int n_vocab, const golden_case *g, float *out) {
    char err[256];
    ll_kv_clear(c);
    if (ll_decode(c, g->prompt, g->n_prompt, err, sizeof err) != 0) {
        CHECK(0, "decode: %s", err);
        return false;
    }
    for (int k = 0; k < g->n_steps; k++) {
        memcpy(out + (size_t)k * n_vocab, ll_get_logits(c), (size_t)n_vocab * sizeof(float));
        if (k + 1 < g->n_steps && ll_decode(c, &g->token[k], 1, err, sizeof err) != 0) {
            CHECK(0, "decode: %s", err);
            return false;
        }
    }
    return true;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

// Tolerances. Against the golden files: the fidelity policy for the random (chaotic) models of
// test_golden.c (`issue`: 5% per logit, 1% mean, the reference's argmax unless the reference's
// logit for ours is within 2% of its top). Between our own configurations:
// each of the reference's top-8 logits within `rel` (or 0.05), the mean relative error under
// `mean`, and our argmax the reference's unless within `rel` of its top logit.
// On the trained stories260K, comparisons are tight: every logit within `tight` of the
// largest logit.
typedef struct {
    double rel, mean;   // top-8 policy
    double tight;       // > 0: all logits within tight * max |logit| instead
} tolerance;
static const tolerance issue = {0.05, 0.01, 0};

typedef struct { double max_rel, sum_rel, worst, max_abs; int n; int misses; } cmp_stats;

// Compares one step's logits with the reference's top-8 (ids, ref). report: CHECK each miss.
static void cmp_step(const float *lg, int n_vocab, const ll_token *ids, const float *ref, ll_token ref_tok,
                     const tolerance *tol, cmp_stats *st, bool report, const char *tag, int step) {
    int am = argmax(lg, n_vocab);
    double top1 = ref[0], pick = -1e30;
    for (int j = 0; j < GOLDEN_TOP; j++)
        if (ids[j] == am) pick = ref[j];
    // A different pick only near a tie: the reference's logit for it within 2% of its top
    // (against the golden), or within `rel` (between our configurations).
    const bool near_tie = top1 - pick <= (tol == &issue ? 0.02 : tol->rel) * fabs(top1);
    if (am != ref_tok && !near_tie) {
        st->misses++;
        if (report) CHECK(0, "%s step %d: argmax %d, reference %d", tag, step, am, ref_tok);
    }
    for (int j = 0; j < GOLDEN_TOP; j++) {
        double d = fabs(lg[ids[j]] - ref[j]), rel = d / (fabs(ref[j]) > 1e-6 ? fabs(ref[j]) : 1e-6);
        if (rel > st->max_rel) st->max_rel = rel;
        if (d > st->max_abs) st->max_abs = d;
        st->sum_rel += rel;
        st->n++;
        if (!(d <= 0.05 || rel <= tol->rel)) {
            st->misses++;
            if (report) CHECK(0, "%s step %d: logit of %d is %.5f, reference %.5f", tag, step, ids[j], lg[ids[j]], ref[j]);
        }
    }
}

static double mean_rel(const cmp_stats *st) { return st->n ? st->sum_rel / st->n : 0; }

static void cmp_finish(const cmp_stats *st, const tolerance *tol, const char *tag) {
    if (tol->tight > 0) {
        CHECK(st->worst <= tol->tight, "%s: largest logit difference %.2e of the largest logit (limit %.0e)", tag,
              st->worst, tol->tight);
        printf("%-42s largest difference %.2e of the largest logit\n", tag, st->worst);
        return;
    }
    CHECK(mean_rel(st) <= tol->mean, "%s: mean relative error %.4f above %.4f", tag, mean_rel(st), tol->mean);
    printf("%-42s max rel err %.2e, mean rel err %.2e, misses %d\n", tag, st->max_rel, mean_rel(st), st->misses);
}

// Teacher-forced run of every case against the golden top-8 logits.
static void check_golden(ll_context *c, int n_vocab, const golden_case *cases, int n_cases, const char *tag) {
    cmp_stats st = {0};
    const tolerance *tol = &issue;
    float *lg = malloc((size_t)MAX_STEPS * n_vocab * sizeof(float));
    for (int i = 0; lg && i < n_cases; i++) {
        const golden_case *g = &cases[i];
        if (!run_logits(c, n_vocab, g, lg)) break;
        for (int k = 0; k < g->n_steps; k++)
            cmp_step(lg + (size_t)k * n_vocab, n_vocab, g->top_id[k], g->top_logit[k], g->token[k], tol,
                     &st, true, tag, k);
    }
    free(lg);
    cmp_finish(&st, tol, tag);
}

// Two configurations on the same teacher-forced tokens, a as the reference. report: CHECK
// every miss and the totals (else only measure).
static cmp_stats compare(ll_context *ca, ll_context *cb, int n_vocab, const golden_case *cases, int n_cases,
                         const tolerance *tol, bool report, const char *tag) {
    cmp_stats st = {0};
    size_t n = (size_t)MAX_STEPS * n_vocab;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    for (int i = 0; a && b && i < n_cases; i++) {
        const golden_case *g = &cases[i];
        if (!run_logits(ca, n_vocab, g, a) || !run_logits(cb, n_vocab, g, b)) break;
        for (int k = 0; k < g->n_steps; k++) {
            const float *la = a + (size_t)k * n_vocab, *lb = b + (size_t)k * n_vocab;
            if (tol->tight > 0) {
                double mx = 0, md = 0;
                for (int v = 0; v < n_vocab; v++) {
                    if (fabs(la[v]) > mx) mx = fabs(la[v]);
                    if (fabs(la[v] - lb[v]) > md) md = fabs(la[v] - lb[v]);
                }
                if (md / mx > st.worst) st.worst = md / mx;
                continue;
            }
            ll_token ids[GOLDEN_TOP]; // a's top-8 as the reference
            float ref[GOLDEN_TOP];
            for (int j = 0; j < GOLDEN_TOP; j++) {
                int best = -1;
                for (int v = 0; v < n_vocab; v++) {
                    bool used = false;
                    for (int q = 0; q < j; q++) used |= ids[q] == v;
                    if (!used && (best < 0 || la[v] > la[best])) best = v;
                }
                ids[j] = best;
                ref[j] = la[best];
            }
            cmp_step(lb, n_vocab, ids, ref, ids[0], tol, &st, report, tag, k);
        }
    }
    free(a);
    free(b);
    if (report) cmp_finish(&st, tol, tag);
    return st;
}

static void check_same(ll_context *ca, ll_context *cb, int n_vocab, const golden_case *cases, int n_cases,
                       const tolerance *tol, const char *tag) {
    compare(ca, cb, n_vocab, cases, n_cases, tol, true, tag);
}

static bool g_f32_cache; // F32 KV cache: no F16 rounding flips in tight comparisons

static ll_context *new_ctx(ll_model *m, int n_threads) {
    char err[256];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 512;
    if (g_f32_cache) cp.type_k = cp.type_v = LL_CACHE_F32;
    cp.n_threads = n_threads;
    cp.flash_attn = LL_FLASH_ATTN_OFF; // the goldens' mode: random weights amplify any other rounding (golden_file.h)
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    return c;
}

static ll_adapter *load_adapter(ll_model *m, const char *path) {
    char err[512];
    ll_adapter *a = ll_adapter_load(m, path, err, sizeof err);
    CHECK(a != NULL, "adapter %s: %s", path, err);
    return a;
}

// ---- crafted adapters -----------------------------------------------------------------------

static char g_dir[4096];

// A tensor to write: F32 values, stored as type.
typedef struct {
    const char *name;
    int64_t ne0, ne1;
    enum gl_type type;
    float std;
} spec;

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((float)((*s >> 8) & 0xFFFF) / 65536.0f - 0.5f) * 3.4641f; // unit variance
}

// Writes an adapter with the given metadata (NULL: key left out) and tensors; returns its path.
static const char *write_adapter(const char *file, const char *gtype, const char *atype, const char *arch,
                                 const spec *t, int n) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    gguf_writer *w = gguf_writer_new();
    if (arch) gguf_writer_set_str(w, "general.architecture", arch);
    if (gtype) gguf_writer_set_str(w, "general.type", gtype);
    if (atype) gguf_writer_set_str(w, "adapter.type", atype);
    gguf_writer_set_f32(w, "adapter.lora.alpha", 16.0f);
    void **bufs = calloc((size_t)n, sizeof *bufs);
    unsigned seed = 7;
    for (int i = 0; i < n; i++) {
        size_t ne = (size_t)t[i].ne0 * t[i].ne1;
        float *f = malloc(ne * sizeof(float));
        for (size_t k = 0; k < ne; k++) f[k] = frand(&seed) * t[i].std;
        size_t row = gl_row_size(t[i].type, t[i].ne0), size = row * t[i].ne1;
        bufs[i] = malloc(size);
        gl_quantize_rows(t[i].type, f, bufs[i], t[i].ne1, t[i].ne0, NULL);
        free(f);
        int64_t dims[2] = {t[i].ne0, t[i].ne1};
        gguf_writer_add_tensor(w, t[i].name, t[i].type, 2, dims, bufs[i], size);
    }
    char err[256];
    bool ok = gguf_writer_write(w, path, err, sizeof err);
    CHECK(ok, "write %s: %s", path, err);
    gguf_writer_free(w);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    return path;
}

// A random rank-8 adapter for every matrix of a base GGUF (token_embd flipped as llama.cpp
// has it), A and B of standard deviation std.
static const char *write_full_adapter(const char *base_path, const char *file, float std) {
    char err[512];
    gguf_file *f = gguf_open(base_path, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return "";
    spec *t = calloc(2 * (size_t)gguf_n_tensors(f), sizeof *t);
    char (*names)[96] = calloc(2 * (size_t)gguf_n_tensors(f), sizeof *names);
    int n = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *bt = gguf_get_tensor(f, i);
        if (bt->n_dims != 2) continue;
        const bool embd = !strcmp(bt->name, "token_embd.weight");
        snprintf(names[n], sizeof names[n], "%s.lora_a", bt->name);
        snprintf(names[n + 1], sizeof names[n + 1], "%s.lora_b", bt->name);
        t[n] = (spec){names[n], embd ? 8 : bt->ne[0], embd ? bt->ne[1] : 8, GL_TYPE_F32, std};
        t[n + 1] = (spec){names[n + 1], 8, embd ? bt->ne[0] : bt->ne[1], GL_TYPE_F32, std};
        n += 2;
    }
    const char *path = write_adapter(file, "adapter", "lora", "llama", t, n);
    free(t);
    free(names);
    gguf_close(f);
    return path;
}

// A copy of a model GGUF without output.weight: its head is then token_embd (tied).
static const char *write_tied_copy(const char *base_path, const char *file) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    char err[512];
    gguf_file *f = gguf_open(base_path, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return path;
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        if (strcmp(t->name, "output.weight") != 0)
            gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size);
    }
    bool ok = gguf_writer_write(w, path, err, sizeof err);
    CHECK(ok, "write %s: %s", path, err);
    gguf_writer_free(w);
    gguf_close(f);
    return path;
}

// Copies an adapter with every tensor converted to type (those whose rows allow it).
static const char *convert_adapter(const char *src, const char *file, enum gl_type type, bool a_only) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", g_dir, file);
    char err[512];
    gguf_file *f = gguf_open(src, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return path;
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    int64_t n = gguf_n_tensors(f);
    void **bufs = calloc((size_t)n, sizeof *bufs);
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        bool conv = t->type == GL_TYPE_F32 && (!a_only || strstr(t->name, ".lora_a")) &&
                    gl_row_size(type, t->ne[0]) != 0;
        if (!conv) {
            gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size);
            continue;
        }
        size_t row = gl_row_size(type, t->ne[0]);
        bufs[i] = malloc(row * t->ne[1]);
        gl_quantize_rows(type, t->data, bufs[i], t->ne[1], t->ne[0], NULL);
        gguf_writer_add_tensor(w, t->name, type, t->n_dims, t->ne, bufs[i], row * t->ne[1]);
    }
    bool ok = gguf_writer_write(w, path, err, sizeof err);
    CHECK(ok, "write %s: %s", path, err);
    gguf_writer_free(w);
    for (int64_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    gguf_close(f);
    return path;
}

// Loading path must fail with a message containing every one of the NULL-terminated needles.
static void expect_error(ll_model *m, const char *path, const char *what, ...) {
    char err[512] = "";
    ll_adapter *a = ll_adapter_load(m, path, err, sizeof err);
    CHECK(a == NULL, "%s: loaded", what);
    ll_adapter_free(a);
    CHECK(strchr(err, '\n') == NULL && err[0], "%s: not one line: '%s'", what, err);
    va_list ap;
    va_start(ap, what);
    for (const char *needle; (needle = va_arg(ap, const char *)) != NULL;)
        CHECK(strstr(err, needle) != NULL, "%s: '%s' not in '%s'", what, needle, err);
    va_end(ap);
    printf("%-28s -> %s\n", what, err);
}

static void test_validation(ll_model *m, const char *base_path) {
    const spec good[] = {
        {"blk.0.attn_q.weight.lora_a", 256, 8, GL_TYPE_F32, 0.05f},
        {"blk.0.attn_q.weight.lora_b", 8, 256, GL_TYPE_F32, 0.05f},
    };
    char err[512];
    ll_adapter *a = ll_adapter_load(m, write_adapter("good.gguf", "adapter", "lora", "llama", good, 2), err, sizeof err);
    CHECK(a != NULL, "a valid crafted adapter: %s", err);
    CHECK(a && ll_adapter_n_weights(a) == 1 && ll_adapter_rank(a) == 8 && ll_adapter_alpha(a) == 16.0f,
          "adapter info");
    ll_adapter_free(a);

    expect_error(m, base_path, "a model file", "not a LoRA adapter", NULL);
    expect_error(m, write_adapter("type.gguf", "model", "lora", "llama", good, 2), "general.type model",
                 "not a LoRA adapter", "'model'", NULL);
    expect_error(m, write_adapter("ia3.gguf", "adapter", "ia3", "llama", good, 2), "adapter.type ia3",
                 "'ia3'", "expected 'lora'", NULL);
    expect_error(m, write_adapter("arch.gguf", "adapter", "lora", "qwen2", good, 2), "wrong architecture",
                 "'qwen2'", "'llama'", NULL);
    expect_error(m, write_adapter("noarch.gguf", "adapter", "lora", NULL, good, 2), "no architecture",
                 "architecture", NULL);

    const spec missing[] = {
        {"blk.99.attn_q.weight.lora_a", 256, 8, GL_TYPE_F32, 0.05f},
        {"blk.99.attn_q.weight.lora_b", 8, 256, GL_TYPE_F32, 0.05f},
    };
    expect_error(m, write_adapter("missing.gguf", "adapter", "lora", "llama", missing, 2), "tensor the base lacks",
                 "'blk.99.attn_q.weight'", "not in the model", NULL);
    const spec tied[] = {
        {"output.weight.lora_a", 256, 8, GL_TYPE_F32, 0.05f},
        {"output.weight.lora_b", 8, 32000, GL_TYPE_F32, 0.05f},
    };
    expect_error(m, write_adapter("tied.gguf", "adapter", "lora", "llama", tied, 2), "output of a tied model",
                 "'output.weight'", "not in the model", NULL);
    const spec norm[] = {
        {"blk.0.attn_norm.weight.lora_a", 256, 8, GL_TYPE_F32, 0.05f},
        {"blk.0.attn_norm.weight.lora_b", 8, 1, GL_TYPE_F32, 0.05f},
    };
    expect_error(m, write_adapter("norm.gguf", "adapter", "lora", "llama", norm, 2), "not a matrix",
                 "'blk.0.attn_norm.weight'", "not supported", NULL);

    const spec bad_a[] = {
        {"blk.0.attn_q.weight.lora_a", 128, 8, GL_TYPE_F32, 0.05f},
        {"blk.0.attn_q.weight.lora_b", 8, 256, GL_TYPE_F32, 0.05f},
    };
    expect_error(m, write_adapter("shape_a.gguf", "adapter", "lora", "llama", bad_a, 2), "shape of A",
                 "'blk.0.attn_q.weight.lora_a'", "[128, 8]", "[256, rank]", "[256, 256]", NULL);
    const spec bad_b[] = {
        {"blk.1.ffn_up.weight.lora_a", 256, 8, GL_TYPE_F32, 0.05f},
        {"blk.1.ffn_up.weight.lora_b", 8, 256, GL_TYPE_F32, 0.05f},
    };
    expect_error(m, write_adapter("shape_b.gguf", "adapter", "lora", "llama", bad_b, 2), "shape of B",
                 "'blk.1.ffn_up.weight.lora_b'", "[8, 256]", "[8, 768]", "[256, 768]", NULL);
    const spec bad_rank[] = {
        {"blk.0.attn_k.weight.lora_a", 256, 8, GL_TYPE_F32, 0.05f},
        {"blk.0.attn_k.weight.lora_b", 4, 64, GL_TYPE_F32, 0.05f},
    };
    expect_error(m, write_adapter("rank.gguf", "adapter", "lora", "llama", bad_rank, 2), "ranks of A and B differ",
                 "'blk.0.attn_k.weight.lora_b'", "[4, 64]", "[8, 64]", NULL);
    const spec embd_unflipped[] = {
        {"token_embd.weight.lora_a", 256, 8, GL_TYPE_F32, 0.05f},
        {"token_embd.weight.lora_b", 8, 32000, GL_TYPE_F32, 0.05f},
    };
    expect_error(m, write_adapter("embd.gguf", "adapter", "lora", "llama", embd_unflipped, 2),
                 "token_embd not flipped", "'token_embd.weight.lora_a'", "[256, 8]", "[rank, 32000]", NULL);

    const spec a_only[] = {{"blk.0.attn_q.weight.lora_a", 256, 8, GL_TYPE_F32, 0.05f}};
    expect_error(m, write_adapter("a_only.gguf", "adapter", "lora", "llama", a_only, 1), "A without B",
                 "'blk.0.attn_q.weight.lora_a'", ".lora_b", NULL);
    const spec b_only[] = {{"blk.0.attn_q.weight.lora_b", 8, 256, GL_TYPE_F32, 0.05f}};
    expect_error(m, write_adapter("b_only.gguf", "adapter", "lora", "llama", b_only, 1), "B without A",
                 "'blk.0.attn_q.weight.lora_b'", ".lora_a", NULL);
    const spec stray[] = {
        {"blk.0.attn_q.weight.lora_a", 256, 8, GL_TYPE_F32, 0.05f},
        {"blk.0.attn_q.weight.lora_b", 8, 256, GL_TYPE_F32, 0.05f},
        {"blk.0.attn_q.weight.delta", 256, 256, GL_TYPE_F32, 0.05f},
    };
    expect_error(m, write_adapter("stray.gguf", "adapter", "lora", "llama", stray, 3), "stray tensor",
                 "'blk.0.attn_q.weight.delta'", NULL);
    const spec q4[] = {
        {"blk.0.attn_q.weight.lora_a", 256, 8, GL_TYPE_Q4_0, 0.05f},
        {"blk.0.attn_q.weight.lora_b", 8, 256, GL_TYPE_F32, 0.05f},
    };
    expect_error(m, write_adapter("q4.gguf", "adapter", "lora", "llama", q4, 2), "type Q4_0",
                 "'blk.0.attn_q.weight.lora_a'", "Q4_0", NULL);
}

// ---- adapter types, export ------------------------------------------------------------------

// F16, BF16 and Q8_0 (A only where rows are whole blocks: B's rows of 8 never are) copies of an
// F32 adapter against the original.
static void test_types(ll_model *m, const char *lora, const golden_case *cases, int n_cases, int n_vocab,
                       const tolerance *tol) {
    char err[512];
    ll_adapter *ref = load_adapter(m, lora);
    ll_context *ca = new_ctx(m, 2), *cb = new_ctx(m, 2);
    const struct { enum gl_type t; bool a_only; const char *file, *tag; } v[] = {
        {GL_TYPE_F16, false, "f16.gguf", "F16 adapter vs F32"},
        {GL_TYPE_BF16, false, "bf16.gguf", "BF16 adapter vs F32"},
        {GL_TYPE_Q8_0, true, "q8.gguf", "Q8_0 A adapter vs F32"},
    };
    for (size_t i = 0; ref && ca && cb && i < sizeof v / sizeof v[0]; i++) {
        ll_adapter *a = load_adapter(m, convert_adapter(lora, v[i].file, v[i].t, v[i].a_only));
        if (!a) continue;
        CHECK(ll_context_set_adapter(ca, ref, 1.0f, err, sizeof err) == 0, "%s", err);
        CHECK(ll_context_set_adapter(cb, a, 1.0f, err, sizeof err) == 0, "%s", err);
        check_same(ca, cb, n_vocab, cases, n_cases, tol, v[i].tag);
        ll_context_clear_adapters(cb);
        ll_adapter_free(a);
    }
    ll_context_free(ca);
    ll_context_free(cb);
    ll_adapter_free(ref);
}

// Exports base + adapters (merged at export_scales) and compares the merged model with the
// run-time adapters at scales. report false: only measure. Returns the comparison.
static cmp_stats check_export(ll_model *m, const char *base_path, ll_adapter **ads, const float *scales,
                              const float *export_scales, int n, const char *type, int want_merged,
                              const golden_case *cases, int n_cases, int n_vocab, const tolerance *tol,
                              bool report, const char *tag) {
    char err[512], path[4200];
    cmp_stats st = {0};
    snprintf(path, sizeof path, "%s/merged.gguf", g_dir);
    int k = ll_lora_export(m, ads, export_scales, n, type, path, 2, err, sizeof err);
    CHECK(k == want_merged, "%s: export merged %d tensors, expected %d (%s)", tag, k, want_merged, err);
    if (k < 0) return st;

    // Untouched tensors are byte copies; merged ones have the base type (or `type`).
    gguf_file *fb = gguf_open(base_path, err, sizeof err), *fm = gguf_open(path, err, sizeof err);
    CHECK(fb && fm, "open: %s", err);
    int n_changed = 0;
    for (int64_t i = 0; fb && fm && i < gguf_n_tensors(fb); i++) {
        const gguf_tensor *tb = gguf_get_tensor(fb, i), *tm = gguf_find_tensor(fm, tb->name);
        CHECK(tm != NULL, "%s: merged file lacks %s", tag, tb->name);
        if (!tm) continue;
        bool same = tm->type == tb->type && tm->size == tb->size && !memcmp(tm->data, tb->data, tb->size);
        if (same) continue;
        n_changed++;
        enum gl_type want = tb->type;
        if (type) CHECK(gl_type_from_name(type, &want), "type name");
        CHECK(tm->type == want, "%s: %s is %s", tag, tb->name, gl_type_name(tm->type));
    }
    CHECK(!fb || !fm || gguf_n_tensors(fb) == gguf_n_tensors(fm), "%s: tensor count", tag);
    CHECK(n_changed == want_merged, "%s: %d tensors differ from the base, %d merged", tag, n_changed, want_merged);
    CHECK(!fb || !fm || gguf_n_kv(fb) == gguf_n_kv(fm), "%s: metadata not carried over", tag);
    gguf_close(fb);
    gguf_close(fm);

    ll_model_params mp = ll_model_default_params();
    ll_model *mm = ll_model_load(path, &mp, err, sizeof err);
    CHECK(mm != NULL, "%s: load merged: %s", tag, err);
    ll_context *cr = new_ctx(m, 2), *cm = mm ? new_ctx(mm, 2) : NULL;
    if (cr && cm) {
        for (int i = 0; i < n; i++)
            CHECK(ll_context_set_adapter(cr, ads[i], scales[i], err, sizeof err) == 0, "%s", err);
        st = compare(cr, cm, n_vocab, cases, n_cases, tol, report, tag);
    }
    ll_context_free(cr);
    ll_context_free(cm);
    ll_model_free(mm);
    return st;
}

// Largest |a - b| over every logit of the first case, relative to the largest |a|.
static double logit_change(ll_context *ca, ll_context *cb, int n_vocab, const golden_case *g) {
    size_t n = (size_t)MAX_STEPS * n_vocab;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    double mx = 0, md = 0;
    if (a && b && run_logits(ca, n_vocab, g, a) && run_logits(cb, n_vocab, g, b)) {
        for (size_t i = 0; i < (size_t)g->n_steps * n_vocab; i++) {
            if (fabs(a[i]) > mx) mx = fabs(a[i]);
            if (fabs(a[i] - b[i]) > md) md = fabs(a[i] - b[i]);
        }
    }
    free(a);
    free(b);
    return mx > 0 ? md / mx : 0;
}

// stories260K (trained, not chaotic): an adapter on every matrix, token_embd and output
// included; its F16/BF16/Q8_0 copies; merges as F32 and F16, into the F16 model, and into a
// tied copy of the model (the token_embd adapter then also changes the head).
static void test_stories(const char *shared) {
    char path[1024], path16[1024], gpath[1024], err[512];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", shared);
    snprintf(path16, sizeof path16, "%s/models/stories260K-f16.gguf", shared);
    snprintf(gpath, sizeof gpath, "%s/golden/stories260K.jsonl", shared);
    static golden_case cases[MAX_CASES];
    int n_cases = load_golden(gpath, cases);
    if (n_cases > 3) n_cases = 3;
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "%s", err);
    if (!m || !n_cases) return;
    const int n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m));
    g_f32_cache = true;
    const char *lora = write_full_adapter(path, "stories-lora.gguf", 0.03f);
    ll_adapter *ad = load_adapter(m, lora);
    if (ad) {
        CHECK(ll_adapter_n_weights(ad) == 5 * 7 + 2, "stories adapter: %d weights", ll_adapter_n_weights(ad));
        ll_context *c0 = new_ctx(m, 2), *c1 = new_ctx(m, 2);
        if (c0 && c1 && ll_context_set_adapter(c1, ad, 1.0f, err, sizeof err) == 0) {
            double ch = logit_change(c0, c1, n_vocab, &cases[0]);
            CHECK(ch > 0.05, "the stories adapter hardly changes the logits (%.2e)", ch);
            printf("%-42s changes the logits by %.2e of the largest\n", "stories adapter", ch);
        }
        ll_context_free(c0);
        ll_context_free(c1);

        const tolerance t16 = {0, 0, 5e-3}, t32 = {0, 0, 1e-5}, tq = {0, 0, 5e-3};
        test_types(m, lora, cases, n_cases, n_vocab, &tq);
        float one = 1.0f, half = 0.5f;
        check_export(m, path, &ad, &one, &one, 1, NULL, 37, cases, n_cases, n_vocab, &t32, true,
                     "stories merged F32 vs run-time");
        check_export(m, path, &ad, &one, &one, 1, "F16", 37, cases, n_cases, n_vocab, &t16, true,
                     "stories merged as F16 vs run-time");
        // The test can fail: a merge at the wrong scale is far outside the tolerance.
        cmp_stats bad = check_export(m, path, &ad, &one, &half, 1, NULL, 37, cases, 1, n_vocab, &t32, false,
                                     "stories merged at 0.5 vs run-time at 1");
        CHECK(bad.worst > 100 * t32.tight, "a wrong merge is not detected (%.2e)", bad.worst);
    }
    ll_adapter_free(ad);
    ll_model_free(m);

    // The F16 model: merged tensors re-quantized to F16.
    m = ll_model_load(path16, &mp, err, sizeof err);
    CHECK(m != NULL, "%s", err);
    ad = m ? load_adapter(m, lora) : NULL;
    if (ad) {
        const tolerance t16 = {0, 0, 5e-3};
        float one = 1.0f;
        check_export(m, path16, &ad, &one, &one, 1, NULL, 37, cases, n_cases, n_vocab, &t16, true,
                     "stories-f16 merged (F16) vs run-time");
    }
    ll_adapter_free(ad);
    ll_model_free(m);

    // Tied head: no output.weight, so the token_embd adapter applies to the logits too.
    const char *tied = write_tied_copy(path, "stories-tied.gguf");
    m = ll_model_load(tied, &mp, err, sizeof err);
    CHECK(m != NULL, "%s", err);
    const char *lora_tied = write_full_adapter(tied, "stories-tied-lora.gguf", 0.03f);
    ad = m ? load_adapter(m, lora_tied) : NULL;
    if (ad) {
        const tolerance t32 = {0, 0, 1e-5};
        float one = 1.0f;
        check_export(m, tied, &ad, &one, &one, 1, NULL, 36, cases, n_cases, n_vocab, &t32, true,
                     "stories tied merged F32 vs run-time");
    }
    ll_adapter_free(ad);
    ll_model_free(m);
    g_f32_cache = false;
}

// The random model: lora-rank8 merged into Q8_0 weights, against the run-time adapter.
static void test_export_q8(ll_model *m, const char *base_path, const char *lora, const golden_case *cases,
                           int n_cases, int n_vocab) {
    char err[512], path[4200];
    ll_adapter *ad = load_adapter(m, lora);
    if (!ad) return;
    float one = 1.0f, zero = 0.0f;
    // Re-quantizing W + delta to Q8_0 moves each weight by up to half a Q8_0 step, the size of the
    // base's own quantization error; the chaotic model turns that into a few % on the logits.
    const tolerance q8 = {0.10, 0.025, 0};
    check_export(m, base_path, &ad, &one, &one, 1, NULL, 42, cases, n_cases, n_vocab, &q8, true,
                 "merged (Q8_0) vs run-time");
    check_export(m, base_path, &ad, &zero, &zero, 1, NULL, 0, cases, 1, n_vocab, &(tolerance){0, 0, 1e-30}, true,
                 "merged at scale 0 vs base (bitwise)");
    snprintf(path, sizeof path, "%s/bad.gguf", g_dir);
    CHECK(ll_lora_export(m, &ad, &one, 1, "Q9_9", path, 1, err, sizeof err) < 0 && strstr(err, "Q9_9"),
          "unknown export type: '%s'", err);
    ll_adapter_free(ad);
}

// ---- main -----------------------------------------------------------------------------------

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    if (!scratch_dir_make(g_dir, sizeof g_dir, "test_lora")) return 1;
    char base[1024], lora[1024], gpath[1024], err[512];
    snprintf(base, sizeof base, "%s/models/mixed-base-q8_0.gguf", shared);
    snprintf(lora, sizeof lora, "%s/models/lora-rank8.gguf", shared);

    static golden_case g_lora[MAX_CASES], g_base[MAX_CASES];
    snprintf(gpath, sizeof gpath, "%s/golden/mixed-base-q8_0+lora.jsonl", shared);
    int n_lora = load_golden(gpath, g_lora);
    snprintf(gpath, sizeof gpath, "%s/golden/mixed-base-q8_0.jsonl", shared);
    int n_base = load_golden(gpath, g_base);

    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(base, &mp, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", base, err);
    if (!m) return test_result("test_lora");
    const int n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m));
    const tolerance bitwise = {0, 0, 1e-30};

    ll_adapter *ad = load_adapter(m, lora), *ad2 = load_adapter(m, lora);
    ll_context *c1 = new_ctx(m, 1), *c2 = new_ctx(m, 2);
    if (ad && ad2 && c1 && c2) {
        CHECK(ll_adapter_n_weights(ad) == 3 * 14 && ll_adapter_rank(ad) == 8, "adapter info: %d weights, rank %d",
              ll_adapter_n_weights(ad), ll_adapter_rank(ad));

        // the golden run with the adapter, 1 and 2 threads
        CHECK(ll_context_set_adapter(c1, ad, 1.0f, err, sizeof err) == 0, "%s", err);
        CHECK(ll_context_set_adapter(c2, ad, 1.0f, err, sizeof err) == 0, "%s", err);
        check_golden(c1, n_vocab, g_lora, n_lora, "lora golden, 1 thread");
        check_golden(c2, n_vocab, g_lora, n_lora, "lora golden, 2 threads");

        // scale 0: the base golden, and bitwise the base's logits
        CHECK(ll_context_set_adapter(c2, ad, 0.0f, err, sizeof err) == 0, "%s", err);
        CHECK(ll_context_n_adapters(c2) == 1, "set_adapter again changes the scale");
        check_golden(c2, n_vocab, g_base, n_base, "scale 0 vs base golden");
        ll_context_clear_adapters(c1);
        check_same(c1, c2, n_vocab, g_base, 1, &bitwise, "scale 0 vs no adapter (bitwise)");

        // twice at 0.5 == once at 1.0 (the adapters' products are summed before the add)
        CHECK(ll_context_set_adapter(c1, ad, 1.0f, err, sizeof err) == 0, "%s", err);
        CHECK(ll_context_set_adapter(c2, ad, 0.5f, err, sizeof err) == 0, "%s", err);
        CHECK(ll_context_set_adapter(c2, ad2, 0.5f, err, sizeof err) == 0, "%s", err);
        check_same(c1, c2, n_vocab, g_lora, n_lora, &(tolerance){0, 0, 1e-3}, "twice at 0.5 vs once at 1.0");
        CHECK(ll_context_remove_adapter(c2, ad2) && !ll_context_remove_adapter(c2, ad2), "remove");
        CHECK(ll_context_n_adapters(c2) == 1, "one adapter left");
        float s = 0;
        CHECK(ll_context_adapter(c2, 0, &s) == ad && s == 0.5f && !ll_context_adapter(c2, 1, NULL), "list");
        CHECK(ll_context_set_adapter(c2, ad, NAN, err, sizeof err) != 0, "NaN scale accepted");

        // exact batches (speculative verification): a prompt decoded at once gives bitwise the
        // logits of one-token decodes, adapters included
        CHECK(ll_context_set_adapter(c1, ad, 1.0f, err, sizeof err) == 0, "%s", err);
        CHECK(ll_context_set_adapter(c2, ad, 1.0f, err, sizeof err) == 0, "%s", err);
        ll_set_exact_batches(c2, true);
        ll_set_logits_all(c2, true);
        const golden_case *g = &g_base[n_base - 1]; // the longest prompt
        ll_kv_clear(c1);
        ll_kv_clear(c2);
        bool same = ll_decode(c2, g->prompt, g->n_prompt, err, sizeof err) == 0;
        for (int t = 0; same && t < g->n_prompt; t++) {
            same = ll_decode(c1, &g->prompt[t], 1, err, sizeof err) == 0 &&
                   !memcmp(ll_get_logits(c1), ll_get_logits_ith(c2, t), (size_t)n_vocab * sizeof(float));
        }
        CHECK(same, "exact batches with an adapter differ from one-token decodes");
        ll_set_exact_batches(c2, false);
        ll_set_logits_all(c2, false);
        ll_context_clear_adapters(c2);
    }
    ll_context_free(c1);
    ll_context_free(c2);
    ll_adapter_free(ad);
    ll_adapter_free(ad2);

    test_export_q8(m, base, lora, g_lora, n_lora, n_vocab);
    test_validation(m, base);
    ll_model_free(m);
    test_stories(shared);
    int rc = test_result("test_lora");
    if (rc == 0) scratch_dir_remove(g_dir);
    return rc;
}
