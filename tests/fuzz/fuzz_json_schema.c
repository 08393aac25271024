// libFuzzer harness for JSON Schema -> GBNF: any text is either refused with one line, or
// translated into a grammar that parses (the translation never emits broken GBNF), with
// warnings one per line. Refusals of the grammar that a schema can honestly cause (a $ref
// cycle that consumes nothing is left recursion; sizes over the limits) are allowed.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) { (void)argc; (void)argv; return 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char err[512] = "", *warnings = NULL;
    char *gbnf = ll_json_schema_to_gbnf_warn(text, &warnings, err, sizeof err);
    if (!gbnf) {
        if (!err[0] || strchr(err, '\n')) { fprintf(stderr, "bad error message: '%s'\n", err); abort(); }
        if (warnings) abort(); // nothing to warn about without a grammar
    } else {
        size_t wl = warnings ? strlen(warnings) : 0;
        if (warnings && (wl == 0 || warnings[wl - 1] != '\n')) abort();
        ll_grammar *g = ll_grammar_parse(gbnf, err, sizeof err);
        if (!g && !strstr(err, "left recursion") && !strstr(err, "too large") && !strstr(err, "too deeply")) {
            fprintf(stderr, "the translation does not parse: %s\n%s\n", err, gbnf);
            abort();
        }
        if (g) ll_grammar_match(g, "{}", 2), ll_grammar_match(g, "[1,\"a\"]", 7);
        ll_grammar_free(g);
    }
    free(gbnf);
    free(warnings);
    free(text);
    return 0;
}
