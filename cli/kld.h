// KL divergence against a base model's stored log-probabilities (perplexity
// --kl-divergence-base / --kl-divergence), in llama.cpp's file format so base files move
// between the tools: "_logits_", n_ctx, n_vocab, n_chunk (int32), the n_chunk * n_ctx
// evaluated tokens (int32), then for each scored position (the second half of each chunk but
// its last token) n_vocab log-probabilities packed as two floats (scale, minimum) and
// n_vocab + (n_vocab odd) uint16 steps above the minimum (16 nats of range).
#ifndef LLAMALITE_CLI_KLD_H
#define LLAMALITE_CLI_KLD_H

#include <stdbool.h>
#include <stdio.h>

#include "args.h"

typedef struct kld_writer kld_writer;

// Opens the base file and writes its header. NULL after printing a message.
kld_writer *kld_writer_open(const char *path, int n_ctx, int n_vocab, int n_chunk, const ll_token *tokens);
// Appends one scored position's logits (n_vocab floats).
bool kld_writer_row(kld_writer *w, const float *logits);
// complete: puts the file in place; false (after printing a message) when a write failed,
// leaving what was at the path before. !complete: drops what was written (returns false).
bool kld_writer_close(kld_writer *w, bool complete);

// The --kl-divergence run: evaluates the base file's chunks with model and prints the
// statistics (stdout). Returns the exit code.
int kld_compare(const cli_params *p, ll_model *model, const char *base_path, int max_chunks);

#endif
