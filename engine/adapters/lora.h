// LoRA adapters inside the engine: loading and validation (lora.c), run-time application in
// the forward pass (forward/matmul.c) and merging into a new GGUF (lora_export.c).
//
// An adapter adds to a base matrix W (n_out rows of n_in) the low-rank product
//   delta = scale * (alpha / rank) * B · A,   A: rank rows of n_in, B: n_out rows of rank
// (GGUF dims: A [n_in, rank], B [rank, n_out]). The forward pass never forms delta: it
// computes W·x + s·B·(A·x), two thin matmuls per adapted weight. token_embd is the exception
// of llama.cpp's layout: there A is [rank, n_vocab] and B is [rank, n_embd], so the delta of
// token t's embedding row is B·A[t].
#ifndef LLAMALITE_LORA_H
#define LLAMALITE_LORA_H

#include "model/model.h"

// The weights of a model, numbered: slot = layer * LL_ROLE_COUNT + role (model.h), then the
// output head, then the token embedding. Adapters can change any matrix role.
static inline int ll_lora_slot(int layer, ll_role role) { return layer * LL_ROLE_COUNT + (int)role; }
static inline int ll_lora_slot_output(const ll_model *m) { return m->hp.n_layer * LL_ROLE_COUNT; }
static inline int ll_lora_slot_embd(const ll_model *m) { return m->hp.n_layer * LL_ROLE_COUNT + 1; }
static inline int ll_lora_n_slots(const ll_model *m) { return m->hp.n_layer * LL_ROLE_COUNT + 2; }

// The slot of a base tensor name ("blk.3.attn_q.weight", "output.weight", ...), or -1 when the
// name is not an adaptable weight of m.
int ll_lora_slot_of(const ll_model *m, const char *name);
// The base weight of a slot (token_embd for the embedding slot); NULL for output when tied.
const ll_weight *ll_lora_base(const ll_model *m, int slot);

typedef struct {
    ll_weight a;   // rank rows of n_in elements; token_embd: n_vocab rows of rank
    ll_weight b;   // n_out rows of rank elements; token_embd: n_embd rows of rank
    float *bt;     // B transposed: rank rows of B's n_out floats. One token's B·t is then rank
                   // vector adds instead of n_out dot products of rank elements.
    float *at;     // token_embd only: A transposed (rank rows of n_vocab floats), for a tied head
    int rank;
    float scale;   // alpha / rank, or 1 when the adapter has no alpha (as llama.cpp)
} ll_lora_pair;

struct ll_adapter {
    const ll_model *model;
    gguf_file *file;       // kept open: A and B point into its mapping
    char *path;
    float alpha;
    int n_slots;
    ll_lora_pair *pairs;   // [n_slots]; a.data == NULL where the adapter leaves the weight alone
    int n_pairs, max_rank;
};

// One adapter attached to a context, with its user scale.
typedef struct {
    ll_adapter *adapter;
    float scale;
} ll_lora_use;

#endif
