// Importance matrices of a mixture of experts (../shared/models/arch/llama-moe.gguf): a stack of
// experts gets one entry of n_expert x n_in values, each expert's columns averaged over the
// tokens that chose it (llama-imatrix's layout). Checked here:
//   - the stacks' entries have 8 x n_in values (the dense ones n_in);
//   - gate and up stacks read the same input, so their entries are equal; the router reads it
//     too, and each token adds its squares to the k experts it chose, so the router's means are
//     a weighted average of the experts' (weights: each expert's share of the choices): in every
//     column they lie between the experts' smallest and largest;
//   - single-token decodes add to the experts but not to the dense matrices (as llama.cpp);
//   - the entry survives a save and load with its size.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/llamalite.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    char path[1024], err[512], dir[1024];
    snprintf(path, sizeof path, "%s/models/arch/llama-moe.gguf", shared);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    if (!m) return TEST_SKIP;
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 128;
    cp.n_threads = 2;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    ll_imatrix *im = ll_imatrix_new();
    CHECK(ll_imatrix_attach(im, c, false) == 0, "attach");

    const char *text = "Well, Prince, so Genoa and Lucca are now just family estates of the Buonapartes.";
    ll_token toks[64];
    const int n = ll_tokenize(ll_model_get_vocab(m), text, (int)strlen(text), toks, 64, true, false);
    CHECK(n >= 16, "prompt of %d tokens", n);
    CHECK(ll_decode(c, toks, n, err, sizeof err) == 0, "decode: %s", err);

    int nv_up = 0, nv_gate = 0, nv_down = 0, nv_inp = 0, nv_q = 0;
    const float *up = ll_imatrix_get(im, "blk.0.ffn_up_exps.weight", &nv_up);
    const float *gate = ll_imatrix_get(im, "blk.0.ffn_gate_exps.weight", &nv_gate);
    const float *down = ll_imatrix_get(im, "blk.1.ffn_down_exps.weight", &nv_down);
    const float *inp = ll_imatrix_get(im, "blk.0.ffn_gate_inp.weight", &nv_inp);
    CHECK(ll_imatrix_get(im, "blk.0.attn_q.weight", &nv_q) && nv_q == 64, "attn_q: %d values", nv_q);
    CHECK(up && nv_up == 64 * 8, "ffn_up_exps: %d values, expected 512", nv_up);
    CHECK(gate && nv_gate == 64 * 8, "ffn_gate_exps: %d values", nv_gate);
    CHECK(down && nv_down == 96 * 8, "ffn_down_exps: %d values, expected 768", nv_down);
    CHECK(inp && nv_inp == 64, "ffn_gate_inp: %d values", nv_inp);
    if (up && gate && inp && nv_up == 512 && nv_gate == 512 && nv_inp == 64) {
        CHECK(!memcmp(up, gate, 512 * sizeof(float)), "gate and up stacks differ");
        int bracketed = 0, differ = 0;
        for (int j = 0; j < 64; j++) {
            float lo = INFINITY, hi = -INFINITY;
            for (int e = 0; e < 8; e++) {
                const float v = up[e * 64 + j];
                if (v == 0) continue; // an expert no token chose
                lo = v < lo ? v : lo, hi = v > hi ? v : hi;
            }
            bracketed += inp[j] >= lo * (1 - 1e-5f) && inp[j] <= hi * (1 + 1e-5f);
            differ += hi > lo * 1.01f;
        }
        CHECK(bracketed == 64, "router means outside their experts' range in %d columns", 64 - bracketed);
        CHECK(differ > 32, "the experts' means are alike in %d of 64 columns", 64 - differ);
    }
    int ncall_q0 = 0, ncall_up0 = 0, ncall_q1 = 0, ncall_up1 = 0;
    for (int i = 0; i < ll_imatrix_n_entries(im); i++) {
        int nc;
        const char *name = ll_imatrix_entry(im, i, &nc, NULL);
        if (!strcmp(name, "blk.0.attn_q.weight")) ncall_q0 = nc;
        if (!strcmp(name, "blk.0.ffn_up_exps.weight")) ncall_up0 = nc;
    }
    CHECK(ncall_q0 == 1 && ncall_up0 == 1, "after one decode: ncall %d (attn_q), %d (experts)", ncall_q0, ncall_up0);
    const ll_token next = toks[1];
    CHECK(ll_decode(c, &next, 1, err, sizeof err) == 0, "decode: %s", err);
    for (int i = 0; i < ll_imatrix_n_entries(im); i++) {
        int nc;
        const char *name = ll_imatrix_entry(im, i, &nc, NULL);
        if (!strcmp(name, "blk.0.attn_q.weight")) ncall_q1 = nc;
        if (!strcmp(name, "blk.0.ffn_up_exps.weight")) ncall_up1 = nc;
    }
    CHECK(ncall_q1 == 1 && ncall_up1 == 2, "after a one-token decode: ncall %d (attn_q), %d (experts)", ncall_q1,
          ncall_up1);

    if (scratch_dir_make(dir, sizeof dir, "test_moe_imatrix")) {
        char f[1100];
        snprintf(f, sizeof f, "%s/moe.imatrix", dir);
        CHECK(ll_imatrix_save(im, f, err, sizeof err) == 0, "save: %s", err);
        ll_imatrix *back = ll_imatrix_load(f, err, sizeof err);
        CHECK(back != NULL, "load: %s", err);
        int nv = 0;
        const float *v = back ? ll_imatrix_get(back, "blk.0.ffn_up_exps.weight", &nv) : NULL;
        const float *now = ll_imatrix_get(im, "blk.0.ffn_up_exps.weight", NULL);
        CHECK(v && nv == 512, "reloaded: %d values", nv);
        for (int j = 0; v && now && j < 512; j++)
            CHECK(fabsf(v[j] - now[j]) <= 1e-6f * fabsf(now[j]), "reloaded value %d: %g, was %g", j, v[j], now[j]);
        ll_imatrix_free(back);
        scratch_dir_remove(dir);
    }
    ll_imatrix_free(im);
    ll_context_free(c);
    ll_model_free(m);
    return test_result("test_moe_imatrix");
}
