// The low-bit mixtures' per-tensor choices against llama-quantize's: the table below is what
// llama.cpp's llama-quantize (Feb 2025) gave a 16-layer Llama (dim 256, 8 heads / 2 KV heads,
// FFN 256, untied head) with an imatrix (generated from its files: tests/test_lowbit_mix.inc), per file type: token_embd, output, and per layer
// attn_q attn_k attn_v attn_output ffn_gate ffn_up ffn_down. The same walk goes through
// ll_mix_type here. Also: the types that need an importance matrix are refused without one,
// with a line that says how to make one.
#include <stdio.h>
#include <string.h>

#include "engine/llamalite.h"
#include "engine/quantize/quantize.h"
#include "tests/test_util.h"

typedef struct { const char *ftype, *embd, *output, *layer[16]; } mix_case;

static const mix_case cases[] = {
#include "tests/test_lowbit_mix.inc"
};

static const char *const roles[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

// Walks a 16-layer model's weights in llama.cpp's order (non-layer tensors first, then each
// layer's names sorted) and checks each choice.
static void check_case(const mix_case *c) {
    const ll_ftype_info *ft = ll_ftype_find(c->ftype);
    CHECK(ft != NULL, "file type %s unknown", c->ftype);
    if (!ft) return;
    ll_mix_state s = {.ft = ft, .output_type = -1, .embd_type = -1, .has_output = true, .has_imatrix = true,
                      .n_layer = 16, .n_gqa = 4, .n_attn_v = 16};
    char err[256];
    bool fb;
    const char *got = gl_type_name((enum gl_type)ll_mix_type(&s, "token_embd.weight", 256, &fb, err, sizeof err));
    CHECK(!strcmp(got, c->embd), "%s token_embd: %s, llama-quantize %s", c->ftype, got, c->embd);
    got = gl_type_name((enum gl_type)ll_mix_type(&s, "output.weight", 256, &fb, err, sizeof err));
    CHECK(!strcmp(got, c->output), "%s output: %s, llama-quantize %s", c->ftype, got, c->output);
    // sorted names within a layer
    static const int order[7] = {1, 3, 0, 2, 6, 4, 5}; // attn_k attn_output attn_q attn_v ffn_down ffn_gate ffn_up
    for (int l = 0; l < 16; l++) {
        char want[7][16];
        sscanf(c->layer[l], "%15s %15s %15s %15s %15s %15s %15s", want[0], want[1], want[2], want[3], want[4], want[5],
               want[6]);
        for (int k = 0; k < 7; k++) {
            const int r = order[k];
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, roles[r]);
            got = gl_type_name((enum gl_type)ll_mix_type(&s, name, 256, &fb, err, sizeof err));
            CHECK(!strcmp(got, want[r]), "%s %s: %s, llama-quantize %s", c->ftype, name, got, want[r]);
        }
    }
}

// Without an imatrix the 1- and 2-bit types are refused, naming the tensor and the way out.
static void check_refusal(void) {
    const char *shared = test_shared_dir();
    if (!shared) return;
    char in[1024], err[512];
    snprintf(in, sizeof in, "%s/models/mixed-base-q8_0.gguf", shared);
    static const char *const need[] = {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        ll_quantize_params p = ll_quantize_default_params();
        p.type = need[i];
        p.allow_requantize = true;
        p.n_threads = 1;
        const int rc = ll_model_quantize(in, "/nonexistent-dir/out.gguf", &p, NULL, err, sizeof err);
        CHECK(rc != 0 && strstr(err, "importance matrix") && strstr(err, "llamalite imatrix") && strstr(err, "blk.") &&
                  !strchr(err, '\n'),
              "%s without an imatrix: %s", need[i], rc ? err : "accepted");
    }
    CHECK(!ll_type_needs_imatrix(GL_TYPE_IQ1_M, "token_embd.weight") && ll_type_needs_imatrix(GL_TYPE_IQ1_M, "blk.0.attn_q.weight") &&
              !ll_type_needs_imatrix(GL_TYPE_IQ3_XXS, "blk.0.attn_q.weight"),
          "which types need an imatrix");
}

int main(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i]);
    check_refusal();
    return test_result("test_lowbit_mix");
}
