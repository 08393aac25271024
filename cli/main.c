// llamalite: dispatches to a subcommand, or runs the model (one-shot or REPL).
#include <stdio.h>
#include <string.h>

#include "commands.h"

// Subcommands not yet built into this binary are weak and NULL.
#pragma weak cmd_run
#pragma weak cmd_info
#pragma weak cmd_tokenize
#pragma weak cmd_trace
#pragma weak cmd_bench
#pragma weak cmd_perplexity
#pragma weak cmd_quantize
#pragma weak cmd_template
#pragma weak cmd_grammar
#pragma weak cmd_export_lora
#pragma weak cmd_imatrix

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} subcommand;

static const subcommand subcommands[] = {
    {"info", cmd_info, "print a GGUF file's metadata and tensor table"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"trace", cmd_trace, "greedy decode and print top logits per step as JSON"},
    {"bench", cmd_bench, "measure prompt processing and generation speed"},
    {"perplexity", cmd_perplexity, "perplexity of a model on a text"},
    {"quantize", cmd_quantize, "convert a model to another weight type"},
    {"imatrix", cmd_imatrix, "compute an importance matrix for quantization"},
    {"template", cmd_template, "render a conversation with a chat template"},
    {"grammar", cmd_grammar, "print or check a GBNF grammar / JSON schema"},
    {"export-lora", cmd_export_lora, "merge LoRA adapters into a model"},
};

static void usage(FILE *out) {
    fputs("usage: llamalite -m MODEL.gguf [-p PROMPT] [-n N] [options]   generate or chat\n"
          "       llamalite COMMAND [options]\n\ncommands:\n", out);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (subcommands[i].fn) fprintf(out, "  %-12s %s\n", subcommands[i].name, subcommands[i].help);
    fputs("\n'llamalite COMMAND --help' shows a command's options.\n", out);
}

int main(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && argv[1][0] != '-') {
        for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
            if (strcmp(argv[1], subcommands[i].name) != 0) continue;
            if (!subcommands[i].fn) {
                fprintf(stderr, "llamalite: '%s' is not available in this build\n", argv[1]);
                return 1;
            }
            return subcommands[i].fn(argc - 1, argv + 1);
        }
        fprintf(stderr, "llamalite: unknown command '%s' (try 'llamalite --help')\n", argv[1]);
        return 1;
    }
    if (!cmd_run) {
        fputs("llamalite: generation is not available in this build\n", stderr);
        return 1;
    }
    return cmd_run(argc, argv);
}
