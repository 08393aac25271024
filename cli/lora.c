// LoRA adapters named on the command line: load, attach, free.
#include "lora.h"

#include <string.h>

bool cli_lora_load(const cli_params *p, const ll_model *m, cli_loras *out) {
    memset(out, 0, sizeof *out);
    char err[512];
    for (int i = 0; i < p->n_lora; i++) {
        ll_adapter *a = ll_adapter_load(m, p->lora[i].path, err, sizeof err);
        if (!a) {
            fprintf(stderr, "llamalite: %s\n", err);
            cli_lora_free(out);
            return false;
        }
        out->adapter[out->n++] = a;
        cli_log(p, 2, "LoRA adapter %s: %d weights, rank %d, alpha %g, scale %g\n", p->lora[i].path,
                ll_adapter_n_weights(a), ll_adapter_rank(a), ll_adapter_alpha(a), p->lora[i].scale);
    }
    return true;
}

bool cli_lora_attach(const cli_params *p, const cli_loras *l, ll_context *ctx) {
    char err[512];
    for (int i = 0; i < l->n; i++) {
        if (ll_context_set_adapter(ctx, l->adapter[i], p->lora[i].scale, err, sizeof err) != 0) {
            fprintf(stderr, "llamalite: %s: %s\n", p->lora[i].path, err);
            return false;
        }
    }
    return true;
}

void cli_lora_free(cli_loras *l) {
    for (int i = 0; i < l->n; i++) ll_adapter_free(l->adapter[i]);
    l->n = 0;
}
