// llamalite bench --moe-bound: generation's memory bound on a mixture of experts (bench_moe.c).
#ifndef LLAMALITE_CLI_BENCH_MOE_H
#define LLAMALITE_CLI_BENCH_MOE_H

#include <stdio.h>

#include "llamalite.h"

// After a tg test of n_gen tokens that ran at tg_ts tokens/s on ctx: the bytes its decodes read,
// the replay bound of those reads and tg's share of it, as a few lines to out. The decodes
// measured are the test's own tokens (BOS, then the same pseudo-random ids), from an empty
// cache. Returns 0, or 1 (message naming model_path printed).
int bench_moe_bound(ll_context *ctx, const char *model_path, const ll_token *tokens, int n_gen, double tg_ts,
                    FILE *out);

#endif
