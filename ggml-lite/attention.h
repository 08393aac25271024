// Fused attention over a KV cache of any cache type: keys and values are read in their stored
// type (the key type's dot kernel against the query converted to its activation type; value
// rows decoded one at a time and accumulated in float), with an online softmax, so one pass over
// the keys serves a block of queries. Knows nothing of models: the caller hands it one KV head's
// rows, a block of queries that share them, and the key range each query sees.
#ifndef GGML_LITE_ATTENTION_H
#define GGML_LITE_ATTENTION_H

#include "ggml-lite.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GL_ATTN_TILE 32 // keys per step of the online softmax

// One KV head: key j's head_dim elements start at k + j * k_stride (bytes), value j's at
// v + j * v_stride. head_dim must be a multiple of both types' block sizes.
typedef struct {
    int head_dim;
    enum gl_type k_type, v_type;
    const char *k, *v;
    size_t k_stride, v_stride;
    float scale;   // score = scale * q·k
    float softcap; // > 0: score -> softcap * tanh(score / softcap)
    int grid;      // tiles of keys start where (key index + grid) % GL_ATTN_TILE == 0
} gl_attn_kv;

// A block of n_q queries and their running softmax state: query i (converted by
// gl_attn_convert_q, at q + i * q_stride bytes) sees the keys [lo[i], hi[i]). m[i] is the
// largest score so far, l[i] the sum of e^(score - m[i]), acc[i * head_dim ..] the values
// weighted by e^(score - m[i]).
typedef struct {
    int n_q;
    const char *q;
    size_t q_stride;
    const int *lo, *hi;
    float *m, *l, *acc;
} gl_attn_state;

// Bytes of one query converted for keys of type k_type (head_dim elements).
size_t gl_attn_q_size(enum gl_type k_type, int head_dim);
// The query in the key type's activation type (F16 for F16 keys, Q8_0 for Q8_0 keys, ...).
void gl_attn_convert_q(enum gl_type k_type, const float *q, void *dst, int head_dim);
// Whether both types can be read head by head (blocks do not straddle heads).
bool gl_attn_supported(enum gl_type k_type, enum gl_type v_type, int head_dim);

// Empty state: m = -inf, l = 0, acc = 0.
void gl_attn_begin(gl_attn_state *st, int head_dim);
// Takes keys [j0, j1) into the state. scratch: gl_attn_scratch_floats(n_q, head_dim) floats.
void gl_attn_keys(const gl_attn_kv *kv, gl_attn_state *st, int j0, int j1, float *scratch);
size_t gl_attn_scratch_floats(int n_q, int head_dim);
// Folds state b (the same queries over other keys) into a.
void gl_attn_merge(gl_attn_state *a, const gl_attn_state *b, int head_dim);
// An attention sink (gpt-oss): one more logit, sink, in query i's softmax, weighing no value.
void gl_attn_sink(gl_attn_state *st, int i, float sink, int head_dim);
// out[0 .. head_dim) = acc[i] / l[i], query i's attention output (zeros if it saw no key).
void gl_attn_end(const gl_attn_state *st, int i, int head_dim, float *out);

#ifdef __cplusplus
}
#endif
#endif
