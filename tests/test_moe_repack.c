// Stacks of experts repacked at load (engine/model/model_repack.c: each expert's rows in the
// kernels' 16-row groups) against the same model as the file has it (no_repack), on the
// ../shared/models/arch MoE models quantized to Q8_0 and Q4_0 (types with a repacked layout at
// their widths of 64 and 96):
//   - every expert stack of the repacked model is repacked (else the rest tests nothing);
//   - every expert of every stack, read through ll_expert, multiplies one and five activation
//     rows to within float rounding of its plain rows (an expert read at the wrong offset or in
//     the wrong layout is off by its whole size);
//   - a prompt in one batch and the same tokens one at a time, with 1 and 2 threads (2: all 8
//     experts in use, side by side): logits within 1% of the largest logit of the plain model's
//     (the kernels sum in different orders; on these random models a rounding step of a Q8_0
//     activation can move logits by about 1%, as in test_moe_batch);
//   - with exact batches, every row of the repacked batch bitwise the one-token decode (the
//     repacked kernel is batch-invariant, so speculative verification stays exact).
// Skipped where the kernels in use have no repacked layouts (no AVX-512).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/llamalite.h"
#include "engine/model/model.h"
#include "ggml-lite/repack.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

enum { V = 32000, N = 24 };

static float plain[N][V], packed_alone[N][V];

// Every expert stack of every layer repacked.
static bool stacks_repacked(const ll_model *m) {
    static const ll_role stacks[3] = {LL_ROLE_FFN_GATE_EXPS, LL_ROLE_FFN_UP_EXPS, LL_ROLE_FFN_DOWN_EXPS};
    for (int l = 0; l < m->hp.n_layer; l++)
        for (int r = 0; r < 3; r++)
            if (!m->layers[l].w[stacks[r]].packed) return false;
    return true;
}

static ll_context *context(ll_model *m, int n_threads, const char *what) {
    char err[512];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = n_threads;
    cp.logits_all = true;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "%s: context: %s", what, err);
    return c;
}

// Every expert of layer l's stacks: repacked rows against plain rows, n_tok activation rows.
static void check_experts(const ll_model *mr, const ll_model *mf, int l, int n_tok, const char *what) {
    static const ll_role stacks[3] = {LL_ROLE_FFN_GATE_EXPS, LL_ROLE_FFN_UP_EXPS, LL_ROLE_FFN_DOWN_EXPS};
    for (int r = 0; r < 3; r++)
        for (int e = 0; e < mr->hp.n_expert; e++) {
            const ll_weight a = ll_expert(&mr->layers[l].w[stacks[r]], e);
            const ll_weight b = ll_expert(&mf->layers[l].w[stacks[r]], e);
            static float x[8 * 4096], got[8 * 4096], want[8 * 4096];
            if (a.n_in * n_tok > 8 * 4096 || a.n_out * n_tok > 8 * 4096 || !a.packed) return;
            for (int i = 0; i < a.n_in * n_tok; i++) x[i] = sinf(0.37f * (float)i + (float)e);
            gl_act act = {0};
            CHECK(gl_act_prepare(&act, NULL, x, n_tok, a.n_in, gl_get_type_traits(a.type)->vec_dot_type), "act");
            gl_matmul_repacked(NULL, a.packed, a.type, a.n_out, &act, got);
            gl_matmul(NULL, b.data, b.type, b.n_out, &act, want);
            gl_act_free(&act);
            double worst = 0, top = 0;
            for (int i = 0; i < a.n_out * n_tok; i++)
                worst = fmax(worst, fabs((double)got[i] - want[i])), top = fmax(top, fabs((double)want[i]));
            CHECK(top > 0 && worst <= 1e-5 * top,
                  "%s: layer %d %s expert %d, %d tokens: repacked off plain by %.3g of %.3g", what, l,
                  ll_roles[stacks[r]].name, e, n_tok, worst, top);
        }
}

// Logits of the n tokens decoded one at a time into rows.
static void decode_alone(ll_context *c, const ll_token *toks, int n, float (*rows)[V], const char *what) {
    char err[512];
    ll_kv_clear(c);
    for (int i = 0; i < n; i++) {
        CHECK(ll_decode(c, &toks[i], 1, err, sizeof err) == 0, "%s: decode: %s", what, err);
        memcpy(rows[i], ll_get_logits(c), sizeof(float) * V);
    }
}

// The n rows of the repacked model's logits (the batch's, or the one-token decodes') against want.
static void compare(const char *what, float (*want)[V], ll_context *c, int n, bool batch) {
    double worst = 0, top = 0;
    for (int i = 0; i < n; i++) {
        const float *lg = batch ? ll_get_logits_ith(c, i) : packed_alone[i];
        for (int v = 0; lg && v < V; v++) {
            worst = fmax(worst, fabs((double)lg[v] - want[i][v]));
            top = fmax(top, fabs((double)want[i][v]));
        }
    }
    printf("%s: max |repacked - plain| %.3g over %d tokens (largest logit %.3g)\n", what, worst, n, top);
    CHECK(top > 0 && worst <= 1e-2 * top, "%s: repacked and plain logits differ by %.3g", what, worst);
}

static void check_model(const char *shared, const char *dir, const char *name, const char *qtype) {
    char in[1024], path[1100], what[128], err[512];
    snprintf(in, sizeof in, "%s/models/arch/%s.gguf", shared, name);
    snprintf(path, sizeof path, "%s/%s-%s.gguf", dir, name, qtype);
    snprintf(what, sizeof what, "%s %s", name, qtype);
    ll_quantize_params qp = ll_quantize_default_params();
    qp.type = qtype;
    qp.allow_requantize = true; // token_embd is Q8_0 in the files
    qp.n_threads = 1;
    if (ll_model_quantize(in, path, &qp, NULL, err, sizeof err) != 0) {
        CHECK(false, "%s: quantize: %s", what, err);
        return;
    }
    ll_model_params mp = ll_model_default_params();
    ll_model *mr = ll_model_load(path, &mp, err, sizeof err);
    mp.no_repack = true;
    ll_model *mf = ll_model_load(path, &mp, err, sizeof err);
    CHECK(mr && mf, "%s: load: %s", what, err);
    if (mr && mf && stacks_repacked(mr)) {
        for (int l = 0; l < mr->hp.n_layer; l++) check_experts(mr, mf, l, 1, what), check_experts(mr, mf, l, 5, what);
        const char *text = "The experts of a mixture each see only the tokens that chose them, and no others.";
        ll_token toks[N];
        const int n = ll_tokenize(ll_model_get_vocab(mr), text, (int)strlen(text), toks, N, true, false);
        for (int nt = 1; nt <= 2; nt++) {
            ll_context *cf = context(mf, nt, what), *cr = context(mr, nt, what);
            if (cf && cr) {
                char label[192];
                decode_alone(cf, toks, n, plain, what);
                decode_alone(cr, toks, n, packed_alone, what);
                snprintf(label, sizeof label, "%s threads %d, one token at a time", what, nt);
                compare(label, plain, cr, n, false);
                for (int exact = 0; exact <= 1; exact++) {
                    ll_kv_clear(cr);
                    ll_set_exact_batches(cr, exact);
                    CHECK(ll_decode(cr, toks, n, err, sizeof err) == 0, "%s: batch decode: %s", what, err);
                    snprintf(label, sizeof label, "%s threads %d, batch (exact %d)", what, nt, exact);
                    compare(label, plain, cr, n, true);
                    int differ = 0;
                    for (int i = 0; exact && i < n; i++)
                        differ += memcmp(ll_get_logits_ith(cr, i), packed_alone[i], sizeof(float) * V) != 0;
                    CHECK(differ == 0, "%s: %d exact-batch rows differ from their one-token decodes", label, differ);
                }
            }
            ll_context_free(cf);
            ll_context_free(cr);
        }
    } else if (mr) {
        CHECK(false, "%s: expert stacks not repacked", what);
    }
    ll_model_free(mr);
    ll_model_free(mf);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    if (!gl_repack_available(GL_TYPE_Q8_0, 64, 64) || !gl_repack_available(GL_TYPE_Q4_0, 64, 64)) {
        printf("kernels %s: no repacked layouts\n", gl_simd_name());
        return TEST_SKIP;
    }
    char probe_path[1024], dir[1024];
    snprintf(probe_path, sizeof probe_path, "%s/models/arch/qwen3moe.gguf", shared);
    FILE *probe = fopen(probe_path, "rb");
    if (!probe) return TEST_SKIP;
    fclose(probe);
    if (!scratch_dir_make(dir, sizeof dir, "test_moe_repack")) return 1;
    check_model(shared, dir, "qwen3moe", "Q8_0");
    check_model(shared, dir, "qwen2moe", "Q4_0");
    check_model(shared, dir, "llama-moe", "Q8_0");
    const int rc = test_result("test_moe_repack");
    if (rc == 0) scratch_dir_remove(dir);
    return rc;
}
