// Internal model representation: hyperparameters and weight views into the mapped GGUF.
// The public side (ll_model_*) is in llamalite.h; context.c and forward_*.c read this.
#ifndef LLAMALITE_MODEL_H
#define LLAMALITE_MODEL_H

#include <stdint.h>

#include "ggml-lite.h"
#include "gguf/gguf.h"
#include "llamalite.h"

// A 2-D weight: n_out rows of n_in elements of `type`, row-major (ggml ne = [n_in, n_out]).
// data points into the file mapping (or, for norms and biases, to an owned float copy).
typedef struct {
    const void *data;
    enum gl_type type;
    int64_t n_in, n_out;
} ll_weight;

typedef struct {
    const float *attn_norm;             // [n_embd]
    ll_weight wq, wk, wv, wo;
    const float *bq, *bk, *bv, *bo;     // optional biases (NULL when absent)
    const float *ffn_norm;              // [n_embd]
    ll_weight w_gate, w_up, w_down;
} ll_layer;

typedef struct {
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int n_ff;
    int head_dim;        // elements per attention head (key_length)
    int n_rot;           // rotated elements per head (rope.dimension_count)
    float rms_eps;
    float rope_freq_base;
    float rope_freq_scale; // 1 / linear scaling factor
} ll_hparams;

struct ll_model {
    gguf_file *file;     // kept open: weights live in its mapping
    ll_vocab *vocab;
    bool vocab_only;
    ll_hparams hp;
    char arch[32];
    char desc[64];

    ll_weight tok_embd;  // [n_vocab rows of n_embd]
    const float *output_norm;
    ll_weight output;    // tok_embd when tied
    const float *rope_freqs; // [n_rot/2] frequency divisors, or NULL
    ll_layer *layers;

    float *owned;        // one block holding every float copy (norms, biases, rope_freqs)
    uint64_t n_params;
    uint64_t size_bytes;
    double t_load_ms;
};

#endif
