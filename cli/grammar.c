// `llamalite grammar`: check a GBNF grammar or a JSON Schema, print the GBNF, or test
// candidate strings against it; and the grammar flags generation shares (cli/grammar.h).
#include "grammar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "json.h"
#include "llamalite.h"

int cli_grammar_parse_arg(int argc, char **argv, int *i, cli_grammar_opts *o, bool short_g) {
    const char *a = argv[*i];
    const char **dst = NULL;
    if (!strcmp(a, "--grammar")) dst = &o->gbnf;
    else if (!strcmp(a, "--grammar-file") || (short_g && !strcmp(a, "-g"))) dst = &o->gbnf_file;
    else if (!strcmp(a, "-j") || !strcmp(a, "--json-schema")) dst = &o->schema;
    else if (!strcmp(a, "--json-schema-file")) dst = &o->schema_file;
    else if (!strcmp(a, "--json")) { o->any_json = true; return 1; }
    else return 0;
    return args_value(argc, argv, i, dst) ? 1 : -1;
}

bool cli_grammar_wanted(const cli_grammar_opts *o) {
    return o->gbnf || o->gbnf_file || o->schema || o->schema_file || o->any_json;
}

// Translates a schema; what the grammar cannot enforce is named on stderr, one line each.
static char *schema_to_gbnf(const char *schema, const char *from) {
    char err[512], *warnings = NULL;
    char *g = ll_json_schema_to_gbnf_warn(schema, &warnings, err, sizeof err);
    const char *sp = from ? " " : "", *name = from ? from : "";
    if (!g) fprintf(stderr, "llamalite: JSON schema%s%s: %s\n", sp, name, err);
    for (char *line = warnings, *nl; line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        fprintf(stderr, "llamalite: warning: JSON schema%s%s: %.*s\n", sp, name, (int)(nl - line), line);
    }
    free(warnings);
    return g;
}

char *cli_grammar_text(const cli_grammar_opts *o) {
    int n = !!o->gbnf + !!o->gbnf_file + !!o->schema + !!o->schema_file + !!o->any_json;
    if (n > 1) {
        fputs("llamalite: give only one of --grammar, --grammar-file, --json-schema, "
              "--json-schema-file, --json\n", stderr);
        return NULL;
    }
    size_t len;
    if (o->gbnf) {
        char *g = strdup(o->gbnf);
        if (!g) fputs("llamalite: out of memory\n", stderr);
        return g;
    }
    if (o->gbnf_file) return args_read_file(o->gbnf_file, &len);
    if (o->schema) return schema_to_gbnf(o->schema, NULL);
    if (o->any_json) return schema_to_gbnf("{\"type\":\"object\"}", NULL);
    if (o->schema_file) {
        char *s = args_read_file(o->schema_file, &len);
        if (!s) return NULL;
        char *g = schema_to_gbnf(s, o->schema_file);
        free(s);
        return g;
    }
    fputs("llamalite: no grammar given\n", stderr);
    return NULL;
}

static void usage(FILE *out) {
    fputs("usage: llamalite grammar (-g FILE | --grammar GBNF | --json-schema SCHEMA |\n"
          "                          --json-schema-file FILE | --json) [--print] [--check]\n\n"
          "Parses the grammar (or translates the JSON Schema to GBNF) and reports errors as\n"
          "LINE:COLUMN: reason (exit status 1).\n"
          "  --print   write the GBNF (a schema's translation) to stdout\n"
          "  --check   read one JSON-encoded string per line from stdin and print 'accept' or\n"
          "            'reject' for each (the whole string must match)\n", out);
}

// Reads one line of any length from f (without the newline); NULL at the end.
static char *read_line(FILE *f, size_t *len) {
    size_t cap = 256, n = 0;
    char *b = malloc(cap);
    int c;
    while (b && (c = fgetc(f)) != EOF && c != '\n') {
        if (n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); return NULL; }
            b = nb;
        }
        b[n++] = (char)c;
    }
    if (!b || (n == 0 && c == EOF)) { free(b); return NULL; }
    if (n && b[n - 1] == '\r') n--;
    b[n] = 0;
    *len = n;
    return b;
}

static int check_lines(const ll_grammar *g) {
    int status = 0;
    size_t len, lineno = 0;
    char *line;
    while ((line = read_line(stdin, &len))) {
        lineno++;
        size_t k = strspn(line, " \t");
        if (k == len) { free(line); continue; } // blank line
        char err[256];
        json *j = json_parse(line, len, err, sizeof err);
        if (!j || j->type != JSON_STRING) {
            fprintf(stderr, "llamalite: stdin line %zu: expected a JSON string%s%s\n", lineno,
                    j ? "" : ": ", j ? "" : err);
            puts("reject");
            status = 1;
        } else {
            const int m = ll_grammar_match_status(g, j->str, j->str_len);
            if (m < 0) {
                fprintf(stderr, "llamalite: stdin line %zu: cannot check: the grammar is too ambiguous (more than "
                        "65536 partial parses at once) or memory ran out\n", lineno);
                status = 1;
            }
            puts(m == 1 ? "accept" : "reject");
        }
        fflush(stdout);
        json_free(j);
        free(line);
    }
    return status;
}

int cmd_grammar(int argc, char **argv) {
    cli_grammar_opts o = { 0 };
    bool print = false, check = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--print")) { print = true; continue; }
        if (!strcmp(a, "--check")) { check = true; continue; }
        int r = cli_grammar_parse_arg(argc, argv, &i, &o, true);
        if (r < 0) return 1;
        if (r == 0) { args_unknown("grammar", a); return 1; }
    }
    if (!cli_grammar_wanted(&o)) {
        usage(stderr);
        return 1;
    }
    char *text = cli_grammar_text(&o);
    if (!text) return 1;
    char err[512];
    ll_grammar *g = ll_grammar_parse(text, err, sizeof err);
    if (!g) {
        const char *src = o.gbnf_file ? o.gbnf_file : o.gbnf ? "--grammar" : "schema translation";
        fprintf(stderr, "llamalite: grammar %s:%s\n", src, err);
        free(text);
        return 1;
    }
    int status = 0;
    if (print) {
        fputs(text, stdout);
        if (text[0] && text[strlen(text) - 1] != '\n') fputc('\n', stdout);
    }
    if (check) status = check_lines(g);
    if (!print && !check) puts("ok");
    ll_grammar_free(g);
    free(text);
    return status;
}
