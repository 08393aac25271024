// libFuzzer harness for the GBNF parser and matcher: any text either parses, and then matching
// any string against it is safe and agrees with itself, or is refused with one line
// "LINE:COL: reason" whose position lies inside the text. The input is "GRAMMAR\x01STRING":
// the part after the first \x01 (if any) is what gets matched.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) { (void)argc; (void)argv; return 0; }

static void check_error(const char *err, const char *text) {
    int line = 0, col = 0, n = 0;
    int lines = 1;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    if (sscanf(err, "%d:%d: %n", &line, &col, &n) != 2 || n == 0 || !err[n] || strchr(err, '\n') ||
        line < 1 || line > lines || col < 1) {
        fprintf(stderr, "bad error message: '%s'\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *cut = memchr(data, 1, size);
    size_t glen = cut ? (size_t)(cut - data) : size;
    char *text = malloc(glen + 1);
    if (!text) return 0;
    memcpy(text, data, glen);
    text[glen] = 0; // an embedded NUL ends the grammar early, as it would for a C string
    char err[512] = "";
    ll_grammar *g = ll_grammar_parse(text, err, sizeof err);
    if (!g) {
        check_error(err, text);
    } else {
        const char *s = cut ? (const char *)cut + 1 : "";
        size_t n = cut ? size - glen - 1 : 0;
        bool whole = ll_grammar_match(g, s, n);
        if (whole != ll_grammar_match(g, s, n)) abort(); // deterministic
        for (size_t k = 0; k < n && k < 8; k++) ll_grammar_match(g, s, k); // prefixes
        ll_grammar_free(g);
    }
    free(text);
    return 0;
}
