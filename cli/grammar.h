// Grammar flags shared by `llamalite grammar` and generation (one-shot and REPL).
#ifndef LLAMALITE_CLI_GRAMMAR_H
#define LLAMALITE_CLI_GRAMMAR_H

#include <stdbool.h>

// Where a constraint comes from; at most one of these is set.
typedef struct {
    const char *gbnf;        // --grammar 'GBNF'
    const char *gbnf_file;   // --grammar-file FILE (-g FILE for `llamalite grammar`)
    const char *schema;      // -j / --json-schema 'SCHEMA'
    const char *schema_file; // --json-schema-file FILE
    bool any_json;           // --json: any JSON object
} cli_grammar_opts;

// Tries argv[*i] as one of the grammar flags: 1 consumed (with its value), 0 not one,
// -1 error (printed). `short_g` also accepts -g FILE.
int cli_grammar_parse_arg(int argc, char **argv, int *i, cli_grammar_opts *o, bool short_g);
bool cli_grammar_wanted(const cli_grammar_opts *o);
// The GBNF text the options ask for (malloc'd), or NULL after printing why (including a
// schema's translation errors). More than one source is an error.
char *cli_grammar_text(const cli_grammar_opts *o);
// Help lines of the generation flags (aligned with args_print_common_help).
#define CLI_GRAMMAR_HELP                                                                       \
    "  --grammar GBNF            constrain the output to a GBNF grammar\n"                    \
    "  --grammar-file FILE       ... read from FILE (see grammars/)\n"                         \
    "  -j, --json-schema SCHEMA  constrain the output to JSON matching a JSON Schema\n"       \
    "  --json-schema-file FILE   ... read from FILE\n"                                         \
    "  --json                    constrain the output to a JSON object\n"

#endif
