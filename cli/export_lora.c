// llamalite export-lora: merges LoRA adapters into a copy of the base model,
//   W' = W + sum scale * (alpha / rank) * B·A
// each merged tensor re-quantized to its own type (or --type), everything else copied.
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "lora.h"
#include "progress.h"

static void usage(FILE *out) {
    fputs("usage: llamalite export-lora -m BASE.gguf --lora F [--lora-scaled F S ...] -o OUT.gguf [--type T]\n"
          "Merges LoRA adapters into the base model's weights and writes a new GGUF.\n\noptions:\n"
          "  -o, --output FNAME        the merged model (must not be an input)\n"
          "  --type T                  store merged tensors as T (F32, F16, BF16, Q8_0, Q4_K, ...;\n"
          "                            default: each tensor's own type)\n", out);
    args_print_common_help(out, ARGS_MODEL | ARGS_LORA | ARGS_THREADS | ARGS_LOG);
}

// Whether two paths name the same existing file.
static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_export_lora(int argc, char **argv) {
    const unsigned groups = ARGS_MODEL | ARGS_LORA | ARGS_THREADS | ARGS_LOG;
    cli_params p;
    args_defaults(&p);
    const char *out = NULL, *type = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!args_value(argc, argv, &i, &out)) return 1;
            continue;
        }
        if (!strcmp(a, "--type")) {
            if (!args_value(argc, argv, &i, &type)) return 1;
            continue;
        }
        int r = args_parse_common(argc, argv, &i, &p, groups);
        if (r == ARG_ERROR) return 1;
        if (r == ARG_UNKNOWN) {
            args_unknown("export-lora", a);
            return 1;
        }
    }
    if (!p.model || !out || p.n_lora == 0) {
        fprintf(stderr, "llamalite: export-lora needs %s\n",
                !p.model ? "a base model (-m BASE.gguf)"
                : p.n_lora == 0 ? "at least one adapter (--lora F or --lora-scaled F S)"
                                : "an output file (-o OUT.gguf)");
        return 1;
    }
    // Writing over an input would truncate a file that is mapped while it is read.
    bool clash = same_file(out, p.model);
    for (int i = 0; i < p.n_lora; i++) clash |= same_file(out, p.lora[i].path);
    if (clash) {
        fprintf(stderr, "llamalite: the output '%s' is one of the inputs\n", out);
        return 1;
    }

    char err[512];
    double t0 = cli_now();
    ll_model *model = cli_load_model(p.model, false, NULL);
    if (!model) return 1;
    int rc = 1;
    cli_loras loras;
    if (cli_lora_load(&p, model, &loras)) {
        float scales[ARGS_MAX_LORA];
        for (int i = 0; i < p.n_lora; i++) scales[i] = p.lora[i].scale;
        cli_log(&p, 2, "llamalite: merging %d adapter(s) into %s (%s)...\n", loras.n, p.model, ll_model_desc(model));
        int n = ll_lora_export(model, loras.adapter, scales, loras.n, type, out, p.n_threads, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "llamalite: %s\n", err);
        } else {
            cli_log(&p, 1, "llamalite: wrote %s: %d merged tensor(s)%s%s, %.1f s\n", out, n,
                    type ? " stored as " : "", type ? type : "", cli_now() - t0);
            rc = 0;
        }
        cli_lora_free(&loras);
    }
    ll_model_free(model);
    return rc;
}
