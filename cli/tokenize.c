// llamalite tokenize: the token ids of a text, as llama.cpp's llama-tokenize --ids prints them
// (but space-separated on one line), or one `id 'piece'` line per token with --pieces.
// The text is taken byte for byte (files may hold invalid UTF-8); escapes in -p are processed
// as generation processes them (--no-escape keeps them).
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"

static void usage(FILE *out) {
    fputs("usage: llamalite tokenize -m MODEL.gguf [-p TEXT | -f FILE] [options]\n"
          "Prints the token ids of TEXT (or of standard input) on one line.\n\n"
          "options:\n"
          "  -p, --prompt TEXT         the text\n"
          "  -f, --file FILE           read the text from FILE (byte for byte)\n"
          "  -e, --escape / --no-escape  process \\n, \\t, \\xHH ... in -p, as generation does\n"
          "                            (default: on)\n"
          "  --no-bos                  do not add BOS/EOS even if the vocabulary asks for them\n"
          "  --parse-special           turn special-token text (e.g. <|eot_id|>) into control tokens\n"
          "  --pieces                  one line per token: id 'piece', with newlines, quotes,\n"
          "                            backslashes and bytes that are not UTF-8 text escaped\n"
          "                            (\\n, \\', \\\\, \\xHH)\n", out);
    args_print_common_help(out, ARGS_MODEL | ARGS_LOG);
}

static char *read_stream(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (size_t k; b && (k = fread(b + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    *len = n;
    return b;
}

// Length of the valid UTF-8 sequence at s[0..n) (printable as it is), or 0.
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t k = 1; k < len; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    if (len == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))) return 0;
    if (len == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))) return 0;
    return len;
}

// A piece between single quotes on one line: control characters, quotes, backslashes and
// bytes that are not part of valid UTF-8 (a byte token's lone byte) are escaped.
static void print_piece(const ll_vocab *v, ll_token t) {
    char small[256];
    char *buf = small;
    int32_t n = ll_token_to_piece(v, t, buf, (int32_t)sizeof small, true);
    if (n < 0) {
        buf = malloc((size_t)-n);
        n = buf ? ll_token_to_piece(v, t, buf, -n, true) : 0;
    }
    printf("%6d '", t);
    const unsigned char *u = (const unsigned char *)buf;
    for (size_t i = 0, len; i < (size_t)(n > 0 ? n : 0); i += len) {
        len = utf8_len(u + i, (size_t)n - i);
        if (len > 1 || (len == 1 && u[i] >= 0x20 && u[i] != 0x7F && u[i] != '\'' && u[i] != '\\')) {
            fwrite(u + i, 1, len, stdout);
            continue;
        }
        len = 1;
        switch (u[i]) {
        case '\n': fputs("\\n", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\'': fputs("\\'", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        default: printf("\\x%02X", u[i]);
        }
    }
    fputs("'\n", stdout);
    if (buf != small) free(buf);
}

int cmd_tokenize(int argc, char **argv) {
    const unsigned groups = ARGS_MODEL | ARGS_LOG;
    cli_params p;
    args_defaults(&p);
    const char *prompt = NULL, *file = NULL;
    bool escape = true, no_bos = false, parse_special = false, pieces = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!args_value(argc, argv, &i, &prompt)) return 1;
            file = NULL;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!args_value(argc, argv, &i, &file)) return 1;
            prompt = NULL;
        } else if (!strcmp(a, "-e") || !strcmp(a, "--escape")) {
            escape = true;
        } else if (!strcmp(a, "--no-escape")) {
            escape = false;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = true;
        } else if (!strcmp(a, "--pieces")) {
            pieces = true;
        } else {
            int r = args_parse_common(argc, argv, &i, &p, groups);
            if (r == ARG_ERROR) return 1;
            if (r == ARG_UNKNOWN) {
                args_unknown("tokenize", a);
                return 1;
            }
        }
    }
    if (!p.model) {
        fputs("llamalite: tokenize needs a model (-m MODEL.gguf)\n", stderr);
        return 1;
    }
    if (!prompt && !file && isatty(0)) {
        fputs("llamalite: tokenize needs a text (-p TEXT, -f FILE or standard input)\n", stderr);
        return 1;
    }

    char *text = NULL;
    size_t len = 0;
    if (prompt) {
        text = strdup(prompt);
        if (text && escape) args_unescape(text);
        len = text ? strlen(text) : 0;
    } else if (file) {
        text = args_read_file(file, &len);
        if (!text) return 1; // args_read_file printed why
    } else {
        text = read_stream(stdin, &len);
    }
    if (!text) {
        fputs("llamalite: out of memory\n", stderr);
        return 1;
    }
    if (len > INT32_MAX - 16) {
        fputs("llamalite: the text is too long\n", stderr);
        free(text);
        return 1;
    }

    int rc = 1;
    char err[512];
    ll_token *toks = NULL;
    ll_model_params mp = ll_model_default_params();
    mp.vocab_only = true;
    ll_model *m = ll_model_load(p.model, &mp, err, sizeof err);
    if (!m) {
        fprintf(stderr, "llamalite: %s\n", err);
        goto done;
    }
    const ll_vocab *v = ll_model_get_vocab(m);
    int32_t cap = (int32_t)len + 16; // a token covers at least one byte, plus BOS/EOS
    toks = malloc((size_t)cap * sizeof *toks);
    int32_t n = toks ? ll_tokenize(v, text, (int32_t)len, toks, cap, !no_bos, parse_special) : -1;
    if (n > cap) { // cannot happen with the usual vocabularies; the API allows it
        ll_token *nt = realloc(toks, (size_t)n * sizeof *toks);
        if (nt) {
            toks = nt;
            n = ll_tokenize(v, text, (int32_t)len, toks, n, !no_bos, parse_special);
        } else {
            n = -1;
        }
    }
    if (n < 0) {
        fputs("llamalite: tokenization failed (out of memory)\n", stderr);
        goto done;
    }
    if (pieces) {
        for (int32_t i = 0; i < n; i++) print_piece(v, toks[i]);
    } else {
        for (int32_t i = 0; i < n; i++) printf(i ? " %d" : "%d", toks[i]);
        putchar('\n');
    }
    cli_log(&p, 2, "tokenize: %d tokens\n", n);
    rc = 0; // main checks that stdout was written
done:
    free(toks);
    free(text);
    ll_model_free(m);
    args_free(&p);
    return rc;
}
