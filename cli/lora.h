// LoRA adapters from the command line (--lora, --lora-scaled): loading them for a model and
// attaching them to a context, shared by run, the REPL and trace.
#ifndef LLAMALITE_CLI_LORA_H
#define LLAMALITE_CLI_LORA_H

#include <stdbool.h>

#include "args.h"

typedef struct {
    ll_adapter *adapter[ARGS_MAX_LORA];
    int n;
} cli_loras;

// Loads every adapter of p for m (the same file twice loads twice: it counts twice). On
// failure prints "llamalite: ..." and returns false with nothing left loaded.
bool cli_lora_load(const cli_params *p, const ll_model *m, cli_loras *out);
// Attaches them to ctx with p's scales. Prints the error and returns false on failure.
bool cli_lora_attach(const cli_params *p, const cli_loras *l, ll_context *ctx);
// Frees the adapters (after the contexts that use them, before the model).
void cli_lora_free(cli_loras *l);

#endif
