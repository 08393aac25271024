// A draft model's output head in two passes (speculative decoding): approximate logits from a
// 4-bit copy of the head, the best rows recomputed exactly. See draft_head.c.
#ifndef LLAMALITE_DRAFT_HEAD_H
#define LLAMALITE_DRAFT_HEAD_H

#include <stdbool.h>

#include "context/context.h"

typedef struct ll_draft_head ll_draft_head;

// NULL when the copy would not be smaller enough to pay (or memory is short): then the draft
// decodes its logits as usual.
ll_draft_head *ll_draft_head_new(ll_context *c);
void ll_draft_head_free(ll_draft_head *h);
// The logits (n_vocab floats) of the last token c decoded, from its residual stream (decode
// with ll_set_no_logits). False when c has LoRA adapters or memory is short.
bool ll_draft_head_logits(ll_draft_head *h, ll_context *c, float *logits);

#endif
