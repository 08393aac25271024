// LoRA on expert stacks (../shared/models/arch/llama-moe.gguf, 8 experts, 2 used): an adapter
// with A [n_in, rank, 8] and B [rank, n_out, 8] for two stacks (llama.cpp's layout) changes
// expert e by (alpha / rank) B_e·A_e. Its logits, for a prompt (experts grouped, 1 and 2
// threads) and for generated tokens (one token at a time), must match the model whose stacks
// hold the merged F32 matrices, and differ from the base model's. A stack adapter with the
// wrong expert count is refused in one line; export-lora merges the stacks to what the test
// merged itself. (The merged stacks are F32 where the base is F16:
// their activations are not rounded, so the two agree to about 1%, not exactly.)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"
#include "ggml-lite/ggml-lite.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

enum { RANK = 4, N_EXP = 8, N_STEPS = 6 };
static const char *const TARGETS[2] = {"blk.0.ffn_up_exps.weight", "blk.1.ffn_down_exps.weight"};
static const float ALPHA = 8.0f;

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / (float)(1 << 24) - 0.5f) * 0.5f;
}

// Writes the adapter (n_exp experts per stack) and, when merged_path, the base with the stacks
// merged in F32.
static bool write_files(const char *base_path, const char *lora_path, const char *merged_path, int n_exp) {
    char err[512];
    gguf_file *f = gguf_open(base_path, err, sizeof err);
    if (!f) return false;
    gguf_writer *la = gguf_writer_new(), *mw = merged_path ? gguf_writer_new() : NULL;
    gguf_writer_set_str(la, "general.architecture", "llama");
    gguf_writer_set_str(la, "general.type", "adapter");
    gguf_writer_set_str(la, "adapter.type", "lora");
    gguf_writer_set_f32(la, "adapter.lora.alpha", ALPHA);
    for (int64_t i = 0; mw && i < gguf_n_kv(f); i++) gguf_writer_copy_kv(mw, f, i);
    static float bufs[2][3][96 * 64 * N_EXP]; // A, B, merged per target
    unsigned seed = 7;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        int k = -1;
        for (int j = 0; j < 2; j++)
            if (!strcmp(t->name, TARGETS[j])) k = j;
        if (k < 0) {
            if (mw) gguf_writer_add_tensor(mw, t->name, t->type, t->n_dims, t->ne, t->data, t->size);
            continue;
        }
        const int64_t n_in = t->ne[0], n_out = t->ne[1];
        float *A = bufs[k][0], *B = bufs[k][1], *W = bufs[k][2];
        for (int64_t j = 0; j < n_in * RANK * n_exp; j++) A[j] = frand(&seed);
        for (int64_t j = 0; j < RANK * n_out * n_exp; j++) B[j] = frand(&seed);
        char name[128];
        const int64_t ne_a[3] = {n_in, RANK, n_exp}, ne_b[3] = {RANK, n_out, n_exp};
        snprintf(name, sizeof name, "%s.lora_a", t->name);
        gguf_writer_add_tensor(la, name, GL_TYPE_F32, 3, ne_a, A, sizeof(float) * (size_t)(n_in * RANK * n_exp));
        snprintf(name, sizeof name, "%s.lora_b", t->name);
        gguf_writer_add_tensor(la, name, GL_TYPE_F32, 3, ne_b, B, sizeof(float) * (size_t)(RANK * n_out * n_exp));
        if (!mw) continue;
        // W_e[r][c] += (alpha / rank) sum_k B_e[r][k] A_e[k][c]
        gl_get_type_traits(t->type)->to_float(t->data, W, n_in * n_out * N_EXP);
        for (int e = 0; e < N_EXP; e++)
            for (int64_t r = 0; r < n_out; r++)
                for (int64_t c = 0; c < n_in; c++) {
                    double d = 0;
                    for (int q = 0; q < RANK; q++)
                        d += (double)B[(e * n_out + r) * RANK + q] * A[(e * RANK + q) * n_in + c];
                    W[(e * n_out + r) * n_in + c] += (float)(ALPHA / RANK * d);
                }
        gguf_writer_add_tensor(mw, t->name, GL_TYPE_F32, 3, t->ne, W, sizeof(float) * (size_t)(n_in * n_out * N_EXP));
    }
    bool ok = gguf_writer_write(la, lora_path, err, sizeof err);
    CHECK(ok, "write %s: %s", lora_path, err);
    if (mw) {
        const bool okm = gguf_writer_write(mw, merged_path, err, sizeof err);
        CHECK(okm, "write %s: %s", merged_path, err);
        ok = ok && okm;
        gguf_writer_free(mw);
    }
    gguf_writer_free(la);
    gguf_close(f);
    return ok;
}

// Greedy logits of N_STEPS steps after the prompt (all rows, n_vocab each), into out.
static bool run(const char *model, const char *lora, int n_threads, float *out, int n_vocab) {
    char err[512];
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(model, &mp, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", model, err);
    if (!m) return false;
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 128;
    cp.n_threads = n_threads;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    ll_adapter *a = lora ? ll_adapter_load(m, lora, err, sizeof err) : NULL;
    CHECK(!lora || a, "adapter: %s", err);
    if (a) CHECK(ll_context_set_adapter(c, a, 1.0f, err, sizeof err) == 0, "attach: %s", err);
    const char *text = "Once upon a time, in a land far away, there lived";
    ll_token toks[64];
    const int n = ll_tokenize(ll_model_get_vocab(m), text, (int)strlen(text), toks, 64, true, false);
    bool ok = ll_decode(c, toks, n, err, sizeof err) == 0;
    for (int s = 0; ok && s < N_STEPS; s++) {
        const float *lg = ll_get_logits(c);
        memcpy(out + (size_t)s * n_vocab, lg, sizeof(float) * n_vocab);
        int best = 0;
        for (int i = 1; i < n_vocab; i++) best = lg[i] > lg[best] ? i : best;
        ll_token t = best;
        ok = ll_decode(c, &t, 1, err, sizeof err) == 0;
    }
    CHECK(ok, "decode: %s", err);
    ll_context_free(c);
    ll_adapter_free(a);
    ll_model_free(m);
    return ok;
}

// The largest |x - y| over the rows, relative to the largest |y|.
static double rel_diff(const float *x, const float *y, size_t n) {
    double d = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)x[i] - y[i]));
        mx = fmax(mx, fabs((double)y[i]));
    }
    return d / mx;
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    char base[1024], dir[1024], lora[1100], merged[1100], bad[1100];
    snprintf(base, sizeof base, "%s/models/arch/llama-moe.gguf", shared);
    FILE *probe = fopen(base, "rb");
    if (!probe) return TEST_SKIP;
    fclose(probe);
    if (!scratch_dir_make(dir, sizeof dir, "test_moe_lora")) return 1;
    snprintf(lora, sizeof lora, "%s/experts.lora.gguf", dir);
    snprintf(merged, sizeof merged, "%s/merged.gguf", dir);
    snprintf(bad, sizeof bad, "%s/experts4.lora.gguf", dir);
    if (!write_files(base, lora, merged, N_EXP) || !write_files(base, bad, NULL, 4)) return test_result("test_moe_lora");

    enum { V = 32000 };
    static float with[N_STEPS * V], ref[N_STEPS * V], plain[N_STEPS * V];
    const size_t n = (size_t)N_STEPS * V;
    if (run(merged, NULL, 1, ref, V) && run(base, NULL, 1, plain, V)) {
        for (int nt = 1; nt <= 2; nt++) {
            if (!run(base, lora, nt, with, V)) continue;
            const double d = rel_diff(with, ref, n), moved = rel_diff(plain, ref, n);
            printf("threads %d: adapter vs merged %.2e, base vs merged %.2e\n", nt, d, moved);
            CHECK(d < 2e-2, "threads %d: adapter logits differ from the merged model's by %.3g", nt, d);
            CHECK(moved > 20 * d, "threads %d: the adapter hardly changes the logits (%.3g)", nt, moved);
        }
    }
    char err[512];
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(base, &mp, err, sizeof err);
    if (m) {
        ll_adapter *a = ll_adapter_load(m, bad, err, sizeof err);
        CHECK(a == NULL, "an adapter with 4 experts per stack loaded");
        CHECK(strstr(err, "blk.0.ffn_up_exps.weight.lora_a' has shape [64, 4, 4], expected [64, rank, 8]"),
              "error: '%s'", err);
        CHECK(strchr(err, '\n') == NULL, "error has several lines");
        ll_adapter_free(a);
        // export-lora merges expert by expert (each with its own A and B): the merged file gives
        // the logits of the test's own merged model.
        char exported[1100];
        snprintf(exported, sizeof exported, "%s/exported.gguf", dir);
        a = ll_adapter_load(m, lora, err, sizeof err);
        CHECK(a != NULL, "%s", err);
        const float one = 1.0f;
        const int k = a ? ll_lora_export(m, &a, &one, 1, "F32", exported, 2, err, sizeof err) : -1;
        CHECK(k == 2, "export-lora merged %d expert stacks, expected 2 (%s)", k, err);
        if (k == 2 && run(exported, NULL, 1, with, V)) {
            const double d = rel_diff(with, ref, n);
            printf("export-lora into the expert stacks vs merged by the test: %.2e\n", d);
            CHECK(d < 1e-4, "the exported model's logits differ from the merged model's by %.3g", d);
        }
        ll_adapter_free(a);
        ll_model_free(m);
    }
    const int rc = test_result("test_moe_lora");
    if (rc == 0) scratch_dir_remove(dir);
    return rc;
}
