// Internal model representation: the model as data. A model is an architecture (a row of the
// table in arch.c), its hyperparameters, and per layer an array of weights indexed by role.
// The public side (ll_model_*) is in llamalite.h; context.c and forward/*.c read this.
#ifndef LLAMALITE_MODEL_H
#define LLAMALITE_MODEL_H

#include <stdint.h>

#include "ggml-lite.h"
#include "gguf/gguf.h"
#include "llamalite.h"
#include "ops.h"
#include "repack.h"

// A weight: n_out rows of n_in elements of `type`, row-major (ggml ne = [n_in, n_out]).
// data points into the file mapping, or for vectors (norms, biases: n_out == 1) to an owned
// F32 copy. data == NULL: the model has no such weight. packed: the same rows repacked at load
// for the kernels in use (ggml-lite/repack.h), which the matmuls then read instead of data (whose
// pages are given back; reading data still works, from the file); NULL when not repacked.
typedef struct {
    const void *data;
    enum gl_type type;
    int64_t n_in, n_out;
    const void *packed;
} ll_weight;

// ---- weight roles ----------------------------------------------------------------------------
// What a tensor of a layer is for. The GGUF name of role r in layer i is
// "blk.<i>." + ll_roles[r].name (arch.c); LoRA slots, imatrix entries and the speculative
// layer comparison all loop over roles instead of naming fields.
typedef enum {
    LL_ROLE_ATTN_NORM,      // [n_embd] RMS norm before attention
    LL_ROLE_ATTN_Q,         // [n_embd -> n_head * head_dim]
    LL_ROLE_ATTN_K,         // [n_embd -> n_head_kv * head_dim]
    LL_ROLE_ATTN_V,         // [n_embd -> n_head_kv * head_dim]
    LL_ROLE_ATTN_QKV,       // Q|K|V fused in one matrix (phi3)
    LL_ROLE_ATTN_OUT,       // [n_head * head_dim -> n_embd]
    LL_ROLE_ATTN_Q_B,       // biases of the above (qwen2), F32
    LL_ROLE_ATTN_K_B,
    LL_ROLE_ATTN_V_B,
    LL_ROLE_ATTN_QKV_B,
    LL_ROLE_ATTN_OUT_B,
    LL_ROLE_ATTN_Q_NORM,    // [head_dim] per-head RMS norm of Q and K (qwen3, gemma3)
    LL_ROLE_ATTN_K_NORM,
    LL_ROLE_ATTN_POST_NORM, // [n_embd] RMS norm of the attention output (gemma2/3)
    LL_ROLE_ATTN_SINKS,     // [n_head] an extra logit per head in the softmax (gpt-oss)
    LL_ROLE_FFN_NORM,       // [n_embd] RMS norm before the feed-forward block
    LL_ROLE_FFN_GATE,       // [n_embd -> n_ff]
    LL_ROLE_FFN_UP,         // [n_embd -> n_ff], or gate|up fused: [n_embd -> 2 n_ff] (phi3)
    LL_ROLE_FFN_DOWN,       // [n_ff -> n_embd]
    LL_ROLE_FFN_GATE_B,     // optional feed-forward biases
    LL_ROLE_FFN_UP_B,
    LL_ROLE_FFN_DOWN_B,
    LL_ROLE_FFN_POST_NORM,  // [n_embd] RMS norm of the feed-forward output (gemma2/3)
    // mixture of experts: the router, the experts' stacked matrices, a shared expert
    LL_ROLE_FFN_GATE_INP,       // [n_embd -> n_expert]
    LL_ROLE_FFN_GATE_EXPS,      // [n_embd -> n_ff_exp] x n_expert
    LL_ROLE_FFN_UP_EXPS,
    LL_ROLE_FFN_DOWN_EXPS,      // [n_ff_exp -> n_embd] x n_expert
    LL_ROLE_FFN_GATE_INP_SHEXP, // [n_embd]: the shared expert's gate
    LL_ROLE_FFN_GATE_SHEXP,     // [n_embd -> n_ff_shexp]
    LL_ROLE_FFN_UP_SHEXP,
    LL_ROLE_FFN_DOWN_SHEXP,
    LL_ROLE_FFN_GATE_INP_B,     // [n_expert] router bias (gpt-oss)
    LL_ROLE_FFN_GATE_EXPS_B,    // [n_ff_exp] x n_expert: the experts' biases (gpt-oss)
    LL_ROLE_FFN_UP_EXPS_B,
    LL_ROLE_FFN_DOWN_EXPS_B,    // [n_embd] x n_expert
    LL_ROLE_COUNT
} ll_role;

typedef enum {
    LL_KIND_MATRIX,  // multiplied by gl_matmul (adaptable by LoRA, observed by imatrix)
    LL_KIND_VECTOR,  // norm weight or bias, converted to F32 at load
    LL_KIND_EXPERTS, // a stack of matrices, one per expert (ggml ne = [n_in, n_out, n_expert])
    LL_KIND_EXPERT_VECTORS, // one bias per expert, F32 at load (ne = [n_in, n_expert])
} ll_role_kind;

typedef struct {
    const char *name;   // GGUF name after "blk.<i>.", e.g. "attn_q.weight"
    ll_role_kind kind;
} ll_role_info;

extern const ll_role_info ll_roles[LL_ROLE_COUNT];
#define LL_BIT(r) (1ull << (r))

typedef struct {
    ll_weight w[LL_ROLE_COUNT]; // indexed by ll_role; data == NULL where absent
    int n_ff;                   // feed-forward width of this layer
    int n_swa;                  // sliding window: keys at distance >= n_swa are masked (0: none)
    int rope;                   // which rotary setting it uses (index into ll_model.rope)
} ll_layer;

// A layer's vector (norm weight, bias), NULL when absent.
static inline const float *ll_vec(const ll_layer *L, ll_role r) { return (const float *)L->w[r].data; }

// Expert e of a stack of expert matrices: n_out rows of n_in, the e-th block of the tensor (and
// of the repacked stack, model_repack.c).
static inline ll_weight ll_expert(const ll_weight *w, int e) {
    ll_weight x = *w;
    x.data = (const char *)w->data + (size_t)e * gl_row_size(w->type, w->n_in) * (size_t)w->n_out;
    if (w->packed) x.packed = (const char *)w->packed + (size_t)e * gl_repack_size(w->type, w->n_in, w->n_out);
    return x;
}

// ---- rotary position embedding ---------------------------------------------------------------
typedef enum {
    LL_ROPE_SCALING_NONE, LL_ROPE_SCALING_LINEAR, LL_ROPE_SCALING_YARN, LL_ROPE_SCALING_LONGROPE,
    LL_ROPE_SCALING_LLAMA3,
} ll_rope_scaling;

// One rotary setting: the plain parameters ggml-lite rotates with, plus YaRN's extrapolation
// mix and the magnitude scale of cos/sin (ggml's rope_yarn). ext_factor 0 and attn_factor 1 is
// plain RoPE, computed by gl_rope_cache itself.
typedef struct {
    gl_rope_params p;
    float ext_factor;   // YaRN ramp weight (1 with YaRN, else 0)
    float attn_factor;  // cos/sin multiplier (YaRN adds 0.1 ln(1/freq_scale) on top)
    float corr_dims[2]; // YaRN's ramp between these pair indices
} ll_rope;

enum { LL_MAX_ROPES = 2 }; // global layers, local (sliding-window) layers

// ---- hyperparameters -------------------------------------------------------------------------
typedef enum {
    LL_ACT_SILU,
    LL_ACT_GELU,
    LL_ACT_SWIGLU_OAI, // gpt-oss: gate clamped to <= 7, up to [-7, 7], (up + 1) * gate * sigmoid(1.702 gate)
} ll_act;

// How a mixture-of-experts router turns its logits into the chosen experts' weights.
typedef enum {
    LL_MOE_SOFTMAX_TOPK, // softmax over all experts, the k largest (Mixtral, Qwen-MoE)
    LL_MOE_TOPK_SOFTMAX, // the k largest logits, softmax over those k (gpt-oss)
} ll_moe_gating;

typedef struct {
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int n_ff;            // the largest feed-forward width of the layers
    int head_dim;        // elements per attention head (key_length)
    int n_rot;           // rotated elements per head (rope.dimension_count)
    float rms_eps;
    // rotary embedding, as the file gives it (ll_model.rope holds the settings made from it)
    int rope_type;       // GL_ROPE_NORM or GL_ROPE_NEOX: the architecture's
    ll_rope_scaling rope_scaling;
    float rope_freq_base;
    float rope_freq_scale; // 1 / scaling factor (YaRN, linear)
    int n_ctx_orig;      // rope.scaling.original_context_length (YaRN, LongRoPE, llama3)
    float rope_attn_factor;
    float rope_freq_base_swa, rope_freq_scale_swa; // local layers (gemma3)
    // attention
    float kq_scale;      // attention score scale (1/sqrt(head_dim) unless the family says otherwise)
    bool q_scale_first;  // the scale multiplies Q after RoPE instead of the scores (phi3, gemma2)
    float attn_softcap;  // scores -> c * tanh(scores / c) (0: off)
    int n_swa;           // sliding window of the layers that have one (0: none)
    int swa_pattern;     // 0: every layer has it; 2: even layers (gemma2); n: all but every n-th
    // embedding, feed-forward, output
    float embd_scale;    // the embedding rows are multiplied by this (0: not)
    ll_act ffn_act;      // gate activation of the gated FFN
    bool ffn_fused_gate_up; // ffn_up holds gate|up (phi3)
    float final_softcap; // logits -> c * tanh(logits / c) (0: off)
    // mixture of experts (n_expert 0: a dense model)
    int n_expert;        // expert_count
    int n_expert_used;   // expert_used_count: experts each token runs
    int n_ff_exp;        // an expert's feed-forward width
    int n_ff_shexp;      // the shared expert's (0: none)
    ll_moe_gating moe_gating;
    bool moe_norm_w;     // the chosen experts' weights are renormalized to sum 1
} ll_hparams;

// ---- architectures ---------------------------------------------------------------------------
// Evaluates n_tok (<= n_batch) tokens at positions pos0.. (their K/V land in the cache there)
// and writes logits: for every token into out (n_tok rows) when all_logits, else for the last
// one only (one row), or none when out is NULL. Returns false with err set.
typedef bool (*ll_forward_fn)(ll_context *c, const ll_token *tokens, int n_tok, int pos0, float *out,
                              bool all_logits, char *err, size_t errlen);

typedef struct ll_arch {
    const char *name;         // general.architecture, also the metadata key prefix
    uint64_t required;        // LL_BIT(role) of the tensors every layer must have
    uint64_t optional;        // ... and of those it may have
    int rope_type;            // GL_ROPE_NORM (pairs of neighbours) or GL_ROPE_NEOX (halves)
    // Family-specific hyperparameters, read after the common ones; NULL when none.
    bool (*read_hparams)(ll_model *m, char *err, size_t errlen);
    ll_forward_fn forward;
} ll_arch;

// The architecture named name, or NULL; the supported names as "a, b, c".
const ll_arch *ll_arch_find(const char *name);
const char *ll_arch_names(void);

struct ll_model {
    gguf_file *file;     // kept open: weights live in its mapping
    ll_vocab *vocab;
    bool vocab_only;
    const ll_arch *a;    // NULL for vocab-only loads
    ll_hparams hp;
    char arch[32];
    char desc[64];

    ll_weight tok_embd;  // [n_vocab rows of n_embd]
    const float *output_norm;
    ll_weight output;    // tok_embd when tied
    const float *rope_freqs;       // [n_rot/2] frequency divisors (rope_freqs.weight), or NULL
    const float *rope_long, *rope_short; // LongRoPE divisors (phi3), or NULL
    ll_rope rope[LL_MAX_ROPES];    // rotary settings (the context picks LongRoPE's factors)
    int n_ropes;
    ll_layer *layers;

    float *owned;        // one block holding every float copy (norms, biases, rope factors)
    void *packed;        // one mapping holding every repacked matrix (model_repack.c), or NULL
    size_t packed_size;
    uint64_t n_params;
    uint64_t size_bytes;
    double t_load_ms;
};

// Reads the hyperparameters of m->file for architecture m->a into m->hp (common keys, then the
// family's). Used by loading and by `info`.
bool ll_hparams_load(ll_model *m, char *err, size_t errlen);
// The hyperparameters for people: "name = value" lines, malloc'd.
char *ll_hparams_format(const ll_model *m);
// Whether two models' hyperparameters agree on everything but the layer count.
bool ll_hparams_same(const ll_hparams *a, const ll_hparams *b);
// Helpers for the family readers (arch.c): an optional float key "<arch>.<suffix>".
float ll_arch_f32(const ll_model *m, const char *suffix, float def);
bool ll_arch_has(const ll_model *m, const char *suffix);
// Repacks the matrices the kernels in use have a repacked layout for into m->packed, giving
// back each one's file pages once repacked (model_repack.c). False (and nothing repacked) when
// memory is short.
bool ll_model_repack(ll_model *m);
void ll_model_unpack(ll_model *m);

// The final logits' post-processing (soft-capping), for every place that makes logits.
void ll_logits_finish(const ll_model *m, float *logits, int n_rows);

#endif
