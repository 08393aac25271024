// Quantization mixtures of a mixture of experts (../shared/models/arch/qwen2moe.gguf: 8 experts
// and a shared expert, 2 layers, rows of 64 and 128) follow llama-quantize's expert rules:
//   - 8 experts: attn_k and attn_v at Q8_0, attn_output at Q5_K (here its fallback Q5_1);
//   - ffn_down's layer is read from the name, so a layer's ffn_down_exps and ffn_down_shexp get
//     the same choice (Q4_K_M: more bits in the last layer: Q6_K, here its fallback Q8_0; else
//     Q4_K, here Q5_0), where counting ffn_down tensors would give layer 0's shared expert the
//     second slot's choice;
//   - routers stay F32.
// (The same types as llama-quantize of Feb 2025 gives this file.)
#include <stdio.h>
#include <string.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"
#include "ggml-lite/ggml-lite.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    char in[1024], out[1100], dir[1024], err[512];
    snprintf(in, sizeof in, "%s/models/arch/qwen2moe.gguf", shared);
    FILE *probe = fopen(in, "rb");
    if (!probe) return TEST_SKIP;
    fclose(probe);
    if (!scratch_dir_make(dir, sizeof dir, "test_moe_quantize")) return 1;
    snprintf(out, sizeof out, "%s/q4_k_m.gguf", dir);
    ll_quantize_params p = ll_quantize_default_params();
    p.type = "Q4_K_M";
    p.allow_requantize = true; // token_embd and output are Q8_0 in the file
    p.n_threads = 1;
    CHECK(ll_model_quantize(in, out, &p, NULL, err, sizeof err) == 0, "quantize: %s", err);
    static const struct { const char *name; enum gl_type type; } WANT[] = {
        {"blk.0.attn_k.weight", GL_TYPE_Q8_0},         {"blk.1.attn_v.weight", GL_TYPE_Q8_0},
        {"blk.0.attn_output.weight", GL_TYPE_Q5_1},    {"blk.0.ffn_down_exps.weight", GL_TYPE_Q5_0},
        {"blk.0.ffn_down_shexp.weight", GL_TYPE_Q5_0}, {"blk.1.ffn_down_exps.weight", GL_TYPE_Q8_0},
        {"blk.1.ffn_down_shexp.weight", GL_TYPE_Q8_0}, {"blk.0.ffn_up_exps.weight", GL_TYPE_Q5_0},
        {"blk.1.ffn_gate_inp.weight", GL_TYPE_F32},    {"blk.1.ffn_gate_inp_shexp.weight", GL_TYPE_F32},
    };
    gguf_file *f = gguf_open(out, err, sizeof err);
    CHECK(f != NULL, "open %s: %s", out, err);
    for (size_t i = 0; f && i < sizeof WANT / sizeof WANT[0]; i++) {
        const gguf_tensor *t = gguf_find_tensor(f, WANT[i].name);
        CHECK(t != NULL, "%s missing", WANT[i].name);
        if (t)
            CHECK(t->type == WANT[i].type, "%s is %s, expected %s", WANT[i].name, gl_type_name(t->type),
                  gl_type_name(WANT[i].type));
    }
    if (f) {
        const gguf_tensor *t = gguf_find_tensor(f, "blk.0.ffn_gate_exps.weight");
        CHECK(t && t->n_dims == 3 && t->ne[2] == 8, "the expert stack lost its shape");
        gguf_close(f);
    }
    // The quantized model runs.
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(out, &mp, err, sizeof err);
    CHECK(m != NULL, "load: %s", err);
    ll_model_free(m);
    const int rc = test_result("test_moe_quantize");
    if (rc == 0) scratch_dir_remove(dir);
    return rc;
}
