// The priority queue of candidate merges shared by the SentencePiece and BPE tokenizers:
// the highest priority pops first, and among equal priorities the leftmost pair.
#ifndef LLAMALITE_BIGRAM_QUEUE_H
#define LLAMALITE_BIGRAM_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int32_t left, right; // symbol indices
    int32_t size;        // bytes of the merged text (to detect stale pairs)
    float priority;      // SPM: the merged token's score; BPE: -rank (exact below 2^24)
} ll_bigram;

typedef struct { ll_bigram *a; int32_t n, cap; } ll_bigram_queue;

bool ll_bigram_push(ll_bigram_queue *q, ll_bigram b); // false when out of memory
ll_bigram ll_bigram_pop(ll_bigram_queue *q);          // q->n must be > 0
void ll_bigram_queue_free(ll_bigram_queue *q);

#endif
