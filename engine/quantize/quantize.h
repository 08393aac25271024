// Internals of `llamalite quantize`: the file types (llama.cpp's LLAMA_FTYPE numbers, as
// stored in general.file_type), the per-tensor type rules of the mixtures (quantize_mix.c),
// the importance matrix (imatrix.c) and the size-budget planner (quantize_target.c).
#ifndef LLAMALITE_QUANTIZE_H
#define LLAMALITE_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "ggml-lite.h"
#include "threadpool.h"
#include "gguf/gguf.h"
#include "llamalite.h"

// llama.cpp's llama_ftype values for the types we make.
enum {
    LL_FTYPE_F32 = 0, LL_FTYPE_F16 = 1, LL_FTYPE_Q4_0 = 2, LL_FTYPE_Q4_1 = 3, LL_FTYPE_Q8_0 = 7,
    LL_FTYPE_Q5_0 = 8, LL_FTYPE_Q5_1 = 9, LL_FTYPE_Q2_K = 10, LL_FTYPE_Q3_K_S = 11,
    LL_FTYPE_Q3_K_M = 12, LL_FTYPE_Q3_K_L = 13, LL_FTYPE_Q4_K_S = 14, LL_FTYPE_Q4_K_M = 15,
    LL_FTYPE_Q5_K_S = 16, LL_FTYPE_Q5_K_M = 17, LL_FTYPE_Q6_K = 18, LL_FTYPE_IQ4_NL = 25,
    LL_FTYPE_IQ4_XS = 30, LL_FTYPE_BF16 = 32,
    // the low-bit mixtures
    LL_FTYPE_IQ2_XXS = 19, LL_FTYPE_IQ2_XS = 20, LL_FTYPE_IQ3_XS = 22, LL_FTYPE_IQ3_XXS = 23,
    LL_FTYPE_IQ1_S = 24, LL_FTYPE_IQ3_S = 26, LL_FTYPE_IQ3_M = 27, LL_FTYPE_IQ2_S = 28,
    LL_FTYPE_IQ2_M = 29, LL_FTYPE_IQ1_M = 31, LL_FTYPE_TQ1_0 = 36, LL_FTYPE_TQ2_0 = 37,
    LL_FTYPE_MXFP4 = 38,
};

// Whether a tensor of this type must be quantized with an importance matrix (llama.cpp refuses
// otherwise: the result would be garbage). IQ1_M only outside the embedding and the head.
bool ll_type_needs_imatrix(enum gl_type type, const char *name);

typedef struct {
    const char *name;   // "Q4_K_M"
    int ftype;          // LL_FTYPE_*
    enum gl_type base;  // the type most tensors get
} ll_ftype_info;

// By name, case-insensitive ("Q4_K" and "Q5_K" are llama.cpp's aliases of the _M mixtures,
// "Q3_K" of Q3_K_M); NULL when unknown.
const ll_ftype_info *ll_ftype_find(const char *name);
// The NULL-terminated list of names (the aliases left out).
const char *const *ll_ftype_names(void);
// The plain file type whose base is `type` (Q4_K -> Q4_K_M); -1 when none.
int ll_ftype_of_base(enum gl_type type);

// Whether a tensor is a weight the quantizer converts (2-D or more, named "*weight", not a
// norm, not the output head when leave_output, ...), as llama.cpp decides.
bool ll_quant_wanted(const char *name, uint32_t n_dims, bool leave_output);

// State of the mixture rules while walking the tensors in llama.cpp's order (non-layer tensors
// first, then layer by layer, names sorted within each): some rules count attn_v / ffn_down
// tensors seen so far.
typedef struct {
    const ll_ftype_info *ft;
    bool pure;              // every tensor gets the base type
    int output_type;        // forced type of output.weight (-1: the rules decide)
    int embd_type;          // forced type of token_embd.weight (-1: the rules decide)
    bool has_output;        // the model has output.weight (else token_embd is the head)
    bool has_imatrix;
    bool falcon;
    int n_layer, n_gqa;     // n_head / n_head_kv
    int n_expert;           // experts per MoE layer (0: dense)
    int n_attn_v, i_attn_v, i_ffn_down, i_ffn_gate, i_ffn_up;
    int n_fallback;
} ll_mix_state;

// The type for a tensor that ll_quant_wanted accepted, whose rows have ne0 elements.
// *fallback tells that the rows did not fit the first choice. -1 when no type fits
// (err set).
int ll_mix_type(ll_mix_state *s, const char *name, int64_t ne0, bool *fallback, char *err, size_t errlen);

// Order in which llama.cpp's quantizer walks tensors: a < b. Non-layer tensors first.
int ll_quant_name_cmp(const char *a, const char *b);

// ---- importance matrix (imatrix.c) ---------------------------------------------------------
// Mean squared activations for `name` (nval floats), NULL when absent.
const float *ll_imatrix_lookup(const ll_imatrix *im, const char *name, int *nval);

// ---- size budget (quantize_target.c) -------------------------------------------------------
typedef struct {
    const gguf_tensor *t;
    const float *imatrix;   // ne[0] importances, or NULL
    bool fixed;             // not quantized: keeps its type and size
    enum gl_type type;      // fixed: its type; out: the chosen type
} ll_plan_tensor;

// Chooses a type per tensor so that the tensor data fit in budget bytes with the least total
// estimated error: each tensor's importance-weighted squared error is measured on a sample of
// its rows for every candidate type, then upgrades are taken greedily by error saved per byte.
// Returns false with err set (budget below the smallest mixture, out of memory).
bool ll_plan_budget(ll_plan_tensor *ts, int n, uint64_t budget, gl_threadpool *tp, char *err,
                    size_t errlen);

#endif
