// The model as data: the GGUF names of the weight roles, and the table of architectures -- per
// family the tensors its layers have, its rotary type, what it reads beyond the common
// hyperparameters (model.c), and its forward function (forward/). Key and tensor names are
// the reference loader's (llama.cpp's llama-arch.cpp / llama-model.cpp).
//
// Adding an architecture: a row below (its roles), a reader for the keys only it has, and a
// forward function -- usually an existing one: forward_llama.c runs every pre-norm block with
// a gated FFN, whatever its options (biases, q/k norms, fused matrices, NeoX rotation).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "forward/forward.h"
#include "model/model.h"
#include "util.h"

const ll_role_info ll_roles[LL_ROLE_COUNT] = {
    [LL_ROLE_ATTN_NORM] = {"attn_norm.weight", LL_KIND_VECTOR},
    [LL_ROLE_ATTN_Q] = {"attn_q.weight", LL_KIND_MATRIX},
    [LL_ROLE_ATTN_K] = {"attn_k.weight", LL_KIND_MATRIX},
    [LL_ROLE_ATTN_V] = {"attn_v.weight", LL_KIND_MATRIX},
    [LL_ROLE_ATTN_QKV] = {"attn_qkv.weight", LL_KIND_MATRIX},
    [LL_ROLE_ATTN_OUT] = {"attn_output.weight", LL_KIND_MATRIX},
    [LL_ROLE_ATTN_Q_B] = {"attn_q.bias", LL_KIND_VECTOR},
    [LL_ROLE_ATTN_K_B] = {"attn_k.bias", LL_KIND_VECTOR},
    [LL_ROLE_ATTN_V_B] = {"attn_v.bias", LL_KIND_VECTOR},
    [LL_ROLE_ATTN_QKV_B] = {"attn_qkv.bias", LL_KIND_VECTOR},
    [LL_ROLE_ATTN_OUT_B] = {"attn_output.bias", LL_KIND_VECTOR},
    [LL_ROLE_ATTN_Q_NORM] = {"attn_q_norm.weight", LL_KIND_VECTOR},
    [LL_ROLE_ATTN_K_NORM] = {"attn_k_norm.weight", LL_KIND_VECTOR},
    [LL_ROLE_ATTN_POST_NORM] = {"post_attention_norm.weight", LL_KIND_VECTOR},
    [LL_ROLE_ATTN_SINKS] = {"attn_sinks.weight", LL_KIND_VECTOR},
    [LL_ROLE_FFN_NORM] = {"ffn_norm.weight", LL_KIND_VECTOR},
    [LL_ROLE_FFN_GATE] = {"ffn_gate.weight", LL_KIND_MATRIX},
    [LL_ROLE_FFN_UP] = {"ffn_up.weight", LL_KIND_MATRIX},
    [LL_ROLE_FFN_DOWN] = {"ffn_down.weight", LL_KIND_MATRIX},
    [LL_ROLE_FFN_GATE_B] = {"ffn_gate.bias", LL_KIND_VECTOR},
    [LL_ROLE_FFN_UP_B] = {"ffn_up.bias", LL_KIND_VECTOR},
    [LL_ROLE_FFN_DOWN_B] = {"ffn_down.bias", LL_KIND_VECTOR},
    [LL_ROLE_FFN_POST_NORM] = {"post_ffw_norm.weight", LL_KIND_VECTOR},
    [LL_ROLE_FFN_GATE_INP] = {"ffn_gate_inp.weight", LL_KIND_MATRIX},
    [LL_ROLE_FFN_GATE_EXPS] = {"ffn_gate_exps.weight", LL_KIND_EXPERTS},
    [LL_ROLE_FFN_UP_EXPS] = {"ffn_up_exps.weight", LL_KIND_EXPERTS},
    [LL_ROLE_FFN_DOWN_EXPS] = {"ffn_down_exps.weight", LL_KIND_EXPERTS},
    [LL_ROLE_FFN_GATE_INP_SHEXP] = {"ffn_gate_inp_shexp.weight", LL_KIND_VECTOR},
    [LL_ROLE_FFN_GATE_SHEXP] = {"ffn_gate_shexp.weight", LL_KIND_MATRIX},
    [LL_ROLE_FFN_UP_SHEXP] = {"ffn_up_shexp.weight", LL_KIND_MATRIX},
    [LL_ROLE_FFN_DOWN_SHEXP] = {"ffn_down_shexp.weight", LL_KIND_MATRIX},
    [LL_ROLE_FFN_GATE_INP_B] = {"ffn_gate_inp.bias", LL_KIND_VECTOR},
    [LL_ROLE_FFN_GATE_EXPS_B] = {"ffn_gate_exps.bias", LL_KIND_EXPERT_VECTORS},
    [LL_ROLE_FFN_UP_EXPS_B] = {"ffn_up_exps.bias", LL_KIND_EXPERT_VECTORS},
    [LL_ROLE_FFN_DOWN_EXPS_B] = {"ffn_down_exps.bias", LL_KIND_EXPERT_VECTORS},
};

// ---- role sets ---------------------------------------------------------------------------------
#define B(r) LL_BIT(LL_ROLE_##r)
#define ATTN_QKV3 (B(ATTN_Q) | B(ATTN_K) | B(ATTN_V))
#define ATTN_BIASES (B(ATTN_Q_B) | B(ATTN_K_B) | B(ATTN_V_B))
#define LLAMA_ATTN (B(ATTN_NORM) | ATTN_QKV3 | B(ATTN_OUT))
#define GLU_FFN (B(FFN_NORM) | B(FFN_GATE) | B(FFN_UP) | B(FFN_DOWN))
#define FFN_BIASES (B(FFN_GATE_B) | B(FFN_UP_B) | B(FFN_DOWN_B))
#define POST_NORMS (B(ATTN_POST_NORM) | B(FFN_POST_NORM))
#define QK_NORMS (B(ATTN_Q_NORM) | B(ATTN_K_NORM))
#define MOE_FFN (B(FFN_NORM) | B(FFN_GATE_INP) | B(FFN_GATE_EXPS) | B(FFN_UP_EXPS) | B(FFN_DOWN_EXPS))
#define SHARED_EXPERT (B(FFN_GATE_INP_SHEXP) | B(FFN_GATE_SHEXP) | B(FFN_UP_SHEXP) | B(FFN_DOWN_SHEXP))
#define EXPERT_BIASES (B(FFN_GATE_INP_B) | B(FFN_GATE_EXPS_B) | B(FFN_UP_EXPS_B) | B(FFN_DOWN_EXPS_B))

// ---- family-specific hyperparameters ---------------------------------------------------------

float ll_arch_f32(const ll_model *m, const char *suffix, float def) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch, suffix);
    return gguf_get_f32(m->file, key, def);
}

bool ll_arch_has(const ll_model *m, const char *suffix) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->arch, suffix);
    return gguf_find_key(m->file, key) >= 0;
}

// A window length key "<arch>.attention.sliding_window" (def when absent and not required).
static bool read_window(ll_model *m, int64_t def, bool required, char *err, size_t errlen) {
    if (!ll_arch_has(m, "attention.sliding_window")) {
        if (required) {
            ll_set_err(err, errlen, "missing metadata '%s.attention.sliding_window'", m->arch);
            return false;
        }
        m->hp.n_swa = (int)def;
        return true;
    }
    const float w = ll_arch_f32(m, "attention.sliding_window", -1);
    if (!(w >= 0 && w <= (1 << 30)) || w != floorf(w)) {
        ll_set_err(err, errlen, "invalid metadata '%s.attention.sliding_window'", m->arch);
        return false;
    }
    m->hp.n_swa = (int)w;
    return true;
}

static bool read_softcap(ll_model *m, const char *suffix, float def, float *out, char *err, size_t errlen) {
    *out = ll_arch_f32(m, suffix, def);
    if (!(*out > 0 && isfinite(*out))) {
        ll_set_err(err, errlen, "invalid metadata '%s.%s'", m->arch, suffix);
        return false;
    }
    return true;
}

// Phi-3: Q scaled after RoPE, gate|up in one matrix, a sliding window over every layer that
// older files leave to the layer count and context (llama.cpp's defaults for them).
static bool phi3_hparams(ll_model *m, char *err, size_t errlen) {
    ll_hparams *hp = &m->hp;
    int64_t def = 0;
    if ((hp->n_layer == 32 || hp->n_layer == 40) && hp->n_ctx_train == 4096) def = 2047;
    else if (hp->n_layer == 32 && hp->n_head_kv == 32 && hp->n_ctx_train == 131072) def = 262144;
    else if (hp->n_layer == 40 && hp->n_ctx_train == 131072) def = 131072;
    if (!read_window(m, def, def == 0, err, errlen)) return false;
    hp->swa_pattern = 0;
    hp->q_scale_first = true;
    hp->ffn_fused_gate_up = true;
    return true;
}

// Gemma 2: embeddings times sqrt(n_embd), GeGLU, post-norms, soft-capped attention scores and
// logits, a sliding window on even layers, Q scaled by 1/sqrt(head_dim) after RoPE (by
// 1/sqrt(n_embd/n_head) for the 46-layer 27B, as the reference decides by layer count).
static bool gemma2_hparams(ll_model *m, char *err, size_t errlen) {
    ll_hparams *hp = &m->hp;
    if (!read_window(m, 4096, false, err, errlen) ||
        !read_softcap(m, "attn_logit_softcapping", 50.0f, &hp->attn_softcap, err, errlen) ||
        !read_softcap(m, "final_logit_softcapping", 30.0f, &hp->final_softcap, err, errlen))
        return false;
    hp->swa_pattern = 2;
    hp->embd_scale = sqrtf((float)hp->n_embd);
    hp->ffn_act = LL_ACT_GELU;
    hp->q_scale_first = true;
    hp->kq_scale = hp->n_layer == 46 ? 1.0f / sqrtf((float)(hp->n_embd / hp->n_head))
                                     : 1.0f / sqrtf((float)hp->head_dim);
    return true;
}

// Gemma 3: as Gemma 2 with q/k norms instead of soft-capping; five local layers (window,
// RoPE base 10000 unscaled) to one global layer (the file's base and scaling).
static bool gemma3_hparams(ll_model *m, char *err, size_t errlen) {
    ll_hparams *hp = &m->hp;
    if (!read_window(m, 0, true, err, errlen)) return false;
    hp->swa_pattern = 6;
    hp->rope_freq_base_swa = ll_arch_f32(m, "rope.freq_base_swa", 10000.0f);
    hp->rope_freq_scale_swa = 1.0f;
    if (!(hp->rope_freq_base_swa > 0 && isfinite(hp->rope_freq_base_swa))) {
        ll_set_err(err, errlen, "invalid metadata '%s.rope.freq_base_swa'", m->arch);
        return false;
    }
    hp->embd_scale = sqrtf((float)hp->n_embd);
    hp->ffn_act = LL_ACT_GELU;
    hp->kq_scale = hp->n_layer == 62 ? 1.0f / sqrtf((float)(hp->n_embd / hp->n_head))
                                     : 1.0f / sqrtf((float)hp->head_dim);
    return true;
}

// Qwen2-MoE: the routed experts' weights are the softmax over all experts, not renormalized
// over the chosen ones; older files leave the expert width to n_ff / n_expert_used.
static bool qwen2moe_hparams(ll_model *m, char *err, size_t errlen) {
    (void)err, (void)errlen;
    ll_hparams *hp = &m->hp;
    hp->moe_norm_w = false;
    if (!ll_arch_has(m, "expert_feed_forward_length")) hp->n_ff_exp = hp->n_ff / hp->n_expert_used;
    return true;
}

// gpt-oss: a sliding window on even layers, top-k of the router logits then a softmax over the
// k, the clamped SwiGLU, scores scaled by 1/sqrt(n_rot).
static bool gptoss_hparams(ll_model *m, char *err, size_t errlen) {
    ll_hparams *hp = &m->hp;
    if (!read_window(m, 0, true, err, errlen)) return false;
    hp->swa_pattern = 2;
    hp->ffn_act = LL_ACT_SWIGLU_OAI;
    hp->moe_gating = LL_MOE_TOPK_SOFTMAX;
    hp->moe_norm_w = false;
    hp->kq_scale = 1.0f / sqrtf((float)hp->n_rot);
    return true;
}

// ---- the table ---------------------------------------------------------------------------------
static const ll_arch ARCHS[] = {
    {"llama", LLAMA_ATTN | GLU_FFN, ATTN_BIASES | B(ATTN_OUT_B) | FFN_BIASES | B(ATTN_QKV), GL_ROPE_NORM,
     NULL, ll_forward_llama},
    {"qwen2", LLAMA_ATTN | ATTN_BIASES | GLU_FFN, B(ATTN_OUT_B), GL_ROPE_NEOX, NULL, ll_forward_llama},
    {"qwen3", LLAMA_ATTN | QK_NORMS | GLU_FFN, B(ATTN_OUT_B), GL_ROPE_NEOX, NULL, ll_forward_llama},
    {"phi3", B(ATTN_NORM) | B(ATTN_QKV) | B(ATTN_OUT) | B(FFN_NORM) | B(FFN_UP) | B(FFN_DOWN),
     ATTN_BIASES | B(ATTN_QKV_B) | B(ATTN_OUT_B), GL_ROPE_NEOX, phi3_hparams, ll_forward_llama},
    {"gemma2", LLAMA_ATTN | POST_NORMS | GLU_FFN, 0, GL_ROPE_NEOX, gemma2_hparams, ll_forward_gemma},
    {"gemma3", LLAMA_ATTN | QK_NORMS | POST_NORMS | GLU_FFN, 0, GL_ROPE_NEOX, gemma3_hparams, ll_forward_gemma},
    {"qwen2moe", LLAMA_ATTN | ATTN_BIASES | MOE_FFN | SHARED_EXPERT, B(ATTN_OUT_B), GL_ROPE_NEOX, qwen2moe_hparams,
     ll_forward_llama},
    {"qwen3moe", LLAMA_ATTN | QK_NORMS | MOE_FFN, B(ATTN_OUT_B), GL_ROPE_NEOX, NULL, ll_forward_llama},
    // gpt-oss names its FFN norm post_attention_norm (ll_forward_gptoss reads it as such).
    {"gpt-oss", LLAMA_ATTN | ATTN_BIASES | B(ATTN_OUT_B) | B(ATTN_SINKS) | B(ATTN_POST_NORM) |
                    ((MOE_FFN & ~B(FFN_NORM)) | EXPERT_BIASES), 0, GL_ROPE_NEOX, gptoss_hparams, ll_forward_gptoss},
};

const ll_arch *ll_arch_find(const char *name) {
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (!strcmp(ARCHS[i].name, name)) return &ARCHS[i];
    return NULL;
}

const char *ll_arch_names(void) {
    static char names[256];
    if (!names[0]) {
        size_t k = 0;
        for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
            k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", ARCHS[i].name);
    }
    return names;
}
