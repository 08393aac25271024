// llamalite: dispatches to a subcommand, or runs the model (one-shot or REPL).
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
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
#pragma weak run_print_help

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

#define LLAMALITE_VERSION "0.1.0"

void llamalite_version(FILE *out) {
    fputs("llamalite " LLAMALITE_VERSION "\nbuilt with "
#if defined(__clang__)
          "clang " __clang_version__
#elif defined(__GNUC__)
          "gcc " __VERSION__
#else
          "a C11 compiler"
#endif
          "\n", out);
}

void llamalite_usage(FILE *out) {
    fputs("usage: llamalite -m MODEL.gguf [-p PROMPT] [-n N] [options]   generate or chat\n"
          "       llamalite COMMAND [options]\n\n"
          "With -p/-f the text after PROMPT is generated and only it is printed on stdout. Without\n"
          "them the prompt is read from stdin, or, on a terminal, a chat starts (also -i / -cnv).\n"
          "\ncommands:\n", out);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (subcommands[i].fn) fprintf(out, "  %-12s %s\n", subcommands[i].name, subcommands[i].help);
    fputs("'llamalite COMMAND --help' shows a command's options.\n", out);
    if (run_print_help) run_print_help(out);
    fputs("\nexit status:\n"
          "  0    success (also when stdout is closed early, e.g. '| head')\n"
          "  1    an error: a bad option or value, an unreadable or invalid file, a failed write\n"
          "  2    the output was cut off (-n, a full context) before the grammar / JSON schema\n"
          "       was complete\n"
          "  130  interrupted by Ctrl-C\n", out);
}

// Whether stdout is a pipe or socket whose reader has gone (Linux reports POLLERR or POLLHUP
// on the writing end then): the earlier write failed with EPIPE, whatever errno says now.
static bool reader_gone(void) {
    struct pollfd p = { .fd = fileno(stdout), .events = POLLOUT };
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

// Every command's exit goes through here: what it printed is flushed and checked, so a full
// disk (or >/dev/full) is an error, not an empty success. A reader that went away (`| head`)
// stays quiet and changes nothing, and so does a command that failed already (it said why).
static int finish(int rc) {
    const bool earlier = ferror(stdout) != 0; // a write the command made failed
    int err = 0;
    if (fflush(stdout) != 0) err = errno;
    const bool gone = (earlier || err) && (err == EPIPE || reader_gone());
    if (!err && fclose(stdout) != 0) err = errno;
    if ((!earlier && !err) || gone || rc != 0) return rc;
    fprintf(stderr, "llamalite: cannot write the output%s%s\n", err ? ": " : "", err ? strerror(err) : "");
    return 1;
}

static int dispatch(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        llamalite_usage(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        llamalite_version(stdout);
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

int main(int argc, char **argv) { return finish(dispatch(argc, argv)); }
