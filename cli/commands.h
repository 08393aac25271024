// Subcommands of the llamalite binary. Each returns the process exit code.
#ifndef LLAMALITE_CLI_COMMANDS_H
#define LLAMALITE_CLI_COMMANDS_H

#include <stdio.h>

// argv[0] is the subcommand name (or "llamalite" for the default run).
int cmd_run(int argc, char **argv);        // one-shot generation and the REPL (run.c)
int cmd_info(int argc, char **argv);       // info.c
int cmd_tokenize(int argc, char **argv);   // tokenize.c
int cmd_trace(int argc, char **argv);      // trace.c
int cmd_bench(int argc, char **argv);      // bench.c
int cmd_perplexity(int argc, char **argv); // perplexity.c
int cmd_quantize(int argc, char **argv);   // quantize.c
int cmd_template(int argc, char **argv);   // template.c
int cmd_grammar(int argc, char **argv);    // grammar.c
int cmd_export_lora(int argc, char **argv);// export_lora.c
int cmd_imatrix(int argc, char **argv);    // imatrix.c

// The one help of the binary (main.c): usage, commands, every generation and chat option
// (run_print_help, run.c) and the exit codes.
void llamalite_usage(FILE *out);
void llamalite_version(FILE *out); // --version
void run_print_help(FILE *out);

#endif
