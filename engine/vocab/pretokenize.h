// Pre-tokenizers for byte-level BPE, selected by tokenizer.ggml.pre.
#ifndef LLAMALITE_PRETOKENIZE_H
#define LLAMALITE_PRETOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct { size_t *len; size_t n, cap; } pt_words; // word lengths in code points

int pt_find(const char *name);        // recipe id, or -1 for an unknown pre-tokenizer
bool pt_ignore_merges(int recipe_id); // whole words found in the vocab skip the merges
// Splits n code points into words (out->len, out->n; free(out->len)). False on OOM.
bool pt_split(int recipe_id, const uint32_t *cpts, size_t n, pt_words *out);

#endif
