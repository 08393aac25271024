// llamalite bench -md DRAFT: the target alone against speculative decoding (bench_spec.c).
#ifndef LLAMALITE_CLI_BENCH_SPEC_H
#define LLAMALITE_CLI_BENCH_SPEC_H

#include "args.h"
#include "llamalite.h"

// Markdown table header, then one row per call: prompt_text's greedy continuation of n_gen
// tokens, reps alternating runs. Returns 0, or 1 (message printed).
void bench_spec_header(void);
int bench_spec(const cli_params *p, ll_model *model, const char *prompt_text, int n_gen, int n_threads, int reps);

#endif
