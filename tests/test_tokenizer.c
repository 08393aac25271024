// Tokenizers against llama.cpp's test vectors (../shared/tokenizer): every .inp/.out case,
// War and Peace tokenized whole, and detokenize(tokenize(x)) == x round trips.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "tests/test_util.h"

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

static ll_token *tokenize(const ll_vocab *v, const char *s, size_t n, int32_t *count) {
    int32_t cap = (int32_t)n + 16;
    ll_token *t = malloc((size_t)cap * sizeof(ll_token));
    *count = ll_tokenize(v, s, (int32_t)n, t, cap, false, false);
    return t;
}

// Concatenated pieces of the tokens.
static char *detokenize(const ll_vocab *v, const ll_token *t, int32_t n, size_t *len) {
    size_t cap = 64, o = 0;
    char *out = malloc(cap);
    for (int32_t i = 0; i < n; i++) {
        char piece[512];
        int32_t k = ll_token_to_piece(v, t[i], piece, sizeof piece, false);
        if (k < 0) k = 0;
        while (o + (size_t)k + 1 > cap) out = realloc(out, cap *= 2);
        memcpy(out + o, piece, (size_t)k);
        o += (size_t)k;
    }
    out[o] = 0;
    *len = o;
    return out;
}

static void check_vectors(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", dir, name);
    char err[512] = "";
    ll_model_params mp = ll_model_default_params();
    mp.vocab_only = true;
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "%s: %s", name, err);
    if (!m) return;
    const ll_vocab *v = ll_model_get_vocab(m);
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf.inp", dir, name);
    char *inp = read_file(path, NULL);
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf.out", dir, name);
    char *out = read_file(path, NULL);
    CHECK(inp && out, "%s: cannot read test vectors", name);
    const char *sep = "\n__ggml_vocab_test__\n";
    char *p = inp, *line = out;
    int cases = 0, failed = 0;
    while (p && line && *p) {
        char *end = strstr(p, sep);
        if (!end) break;
        char *eol = strchr(line, '\n');
        if (!eol) break;
        *eol = 0;
        int32_t n;
        ll_token *t = tokenize(v, p, (size_t)(end - p), &n);
        char got[16384] = "";
        size_t o = 0;
        for (int32_t i = 0; i < n && o + 16 < sizeof got; i++) o += (size_t)snprintf(got + o, sizeof got - o, " %d", t[i]);
        if (strcmp(got, line) != 0) {
            failed++;
            CHECK(0, "%s case %d '%.*s': got '%s' want '%s'", name, cases, (int)(end - p), p, got, line);
        } else { // round trip (SPM adds a leading space)
            size_t dl;
            char *d = detokenize(v, t, n, &dl);
            const char *cmp = d;
            if (!strcmp(ll_vocab_type_name(v), "spm") && dl > 0 && d[0] == ' ') cmp++, dl--;
            CHECK(dl == (size_t)(end - p) && memcmp(cmp, p, dl) == 0, "%s case %d: round trip differs", name, cases);
            free(d);
        }
        free(t);
        cases++;
        p = end + strlen(sep);
        line = eol + 1;
    }
    fprintf(stderr, "%-14s %d cases, %d failed\n", name, cases, failed);
    CHECK(cases >= 40, "%s: only %d cases read", name, cases);
    free(inp);
    free(out);
    ll_model_free(m);
}

static void check_wp200k(const char *dir, const char *name) {
    char path[4096], err[512] = "";
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", dir, name);
    ll_model_params mp = ll_model_default_params();
    mp.vocab_only = true;
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "%s: %s", name, err);
    if (!m) return;
    size_t len;
    snprintf(path, sizeof path, "%s/text/war-and-peace-200k.txt", dir);
    char *text = read_file(path, &len);
    snprintf(path, sizeof path, "%s/tokenizer/wp-200k.%s.tok", dir, name);
    char *want = read_file(path, NULL);
    CHECK(text && want, "cannot read war and peace files");
    if (!text || !want) return;
    int32_t n;
    ll_token *t = tokenize(ll_model_get_vocab(m), text, len, &n);
    int32_t i = 0, first_diff = -1;
    for (char *p = want; *p; i++) {
        char *e;
        long id = strtol(p, &e, 10);
        if (e == p) break;
        if (first_diff < 0 && (i >= n || t[i] != id)) first_diff = i;
        p = e;
        while (*p == '\n' || *p == ' ' || *p == '\r') p++;
    }
    CHECK(first_diff < 0 && i == n, "%s: war and peace: %d tokens, reference %d, first difference at %d",
          name, n, i, first_diff);
    fprintf(stderr, "%-14s war-and-peace-200k: %d tokens (reference %d)\n", name, n, i);
    free(t);
    free(text);
    free(want);
    ll_model_free(m);
}

// Random valid UTF-8 survives tokenize -> detokenize for a byte-level vocab, and invalid bytes
// never crash either tokenizer.
static void check_random(const char *dir) {
    const char *names[] = {"llama-bpe", "llama-spm"};
    uint32_t seed = 12345;
    for (int k = 0; k < 2; k++) {
        char path[4096], err[512];
        snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", dir, names[k]);
        ll_model_params mp = ll_model_default_params();
        mp.vocab_only = true;
        ll_model *m = ll_model_load(path, &mp, err, sizeof err);
        if (!m) continue;
        const ll_vocab *v = ll_model_get_vocab(m);
        for (int iter = 0; iter < 300; iter++) {
            char s[600];
            size_t n = 0;
            while (n < 500) {
                seed = seed * 1664525u + 1013904223u;
                uint32_t r = seed >> 8, cp;
                switch (r % 4) {
                case 0: cp = 0x20 + r % 95; break;
                case 1: cp = 0xA0 + r % 0x700; break;
                case 2: cp = 0x3000 + r % 0x6000; break;
                default: cp = 0x1F300 + r % 0x300; break;
                }
                if (cp < 0x80) s[n++] = (char)cp;
                else if (cp < 0x800) { s[n++] = (char)(0xC0 | cp >> 6); s[n++] = (char)(0x80 | (cp & 63)); }
                else if (cp < 0x10000) { s[n++] = (char)(0xE0 | cp >> 12); s[n++] = (char)(0x80 | (cp >> 6 & 63)); s[n++] = (char)(0x80 | (cp & 63)); }
                else { s[n++] = (char)(0xF0 | cp >> 18); s[n++] = (char)(0x80 | (cp >> 12 & 63)); s[n++] = (char)(0x80 | (cp >> 6 & 63)); s[n++] = (char)(0x80 | (cp & 63)); }
            }
            int32_t nt;
            ll_token *t = tokenize(v, s, n, &nt);
            size_t dl;
            char *d = detokenize(v, t, nt, &dl);
            const char *cmp = d;
            if (k == 1 && dl && d[0] == ' ') cmp++, dl--;
            CHECK(dl == n && memcmp(cmp, s, n) == 0, "%s: random UTF-8 round trip %d differs", names[k], iter);
            free(d);
            free(t);
            // Invalid UTF-8: random bytes.
            for (size_t j = 0; j < n; j++) { seed = seed * 1664525u + 1013904223u; s[j] = (char)(seed >> 24); }
            t = tokenize(v, s, n, &nt);
            CHECK(nt > 0, "%s: random bytes gave no tokens", names[k]);
            free(t);
        }
        ll_model_free(m);
    }
}

int main(void) {
    const char *dir = test_shared_dir();
    if (!dir) return TEST_SKIP;
    const char *vocabs[] = {"llama-spm", "llama-bpe", "gpt-2", "deepseek-llm", "falcon"};
    for (size_t i = 0; i < sizeof vocabs / sizeof *vocabs; i++) check_vectors(dir, vocabs[i]);
    check_wp200k(dir, "llama-spm");
    check_wp200k(dir, "llama-bpe");
    check_random(dir);
    return test_result("test_tokenizer");
}
