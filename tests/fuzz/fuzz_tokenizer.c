// libFuzzer harness for the tokenizers: every shared vocabulary (../shared/tokenizer, or
// $LLAMALITE_SHARED/tokenizer) tokenizes any bytes into ids inside the vocabulary, and every
// id turns back into a piece, whatever the flags. The first input byte picks the vocabulary
// (low bits) and the flags add_special (bit 4) and parse_special (bit 5); the rest is the text.
// LLAMALITE_FUZZ_VOCAB=NAME (e.g. gpt-2) loads that vocabulary alone: a campaign per vocabulary.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"

static const char *const VOCABS[] = { "llama-spm", "llama-bpe", "gpt-2", "falcon", "deepseek-llm" };
#define N_VOCABS (sizeof VOCABS / sizeof VOCABS[0])
static ll_model *models[N_VOCABS];
static int n_models;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    const char *shared = getenv("LLAMALITE_SHARED");
    if (!shared || !*shared) shared = "../shared";
    const char *only = getenv("LLAMALITE_FUZZ_VOCAB");
    if (only && !*only) only = NULL;
    for (size_t i = 0; i < N_VOCABS; i++) {
        if (only && strcmp(only, VOCABS[i]) != 0) continue;
        char path[4096], err[512];
        snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", shared, VOCABS[i]);
        ll_model_params mp = ll_model_default_params();
        mp.vocab_only = true;
        ll_model *m = ll_model_load(path, &mp, err, sizeof err);
        if (!m) { fprintf(stderr, "fuzz_tokenizer: %s\n", err); continue; }
        models[n_models++] = m;
    }
    if (only && n_models == 0) fprintf(stderr, "fuzz_tokenizer: no vocabulary named '%s'\n", only);
    return n_models == (only ? 1 : (int)N_VOCABS) ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || n_models == 0) return 0;
    const ll_vocab *v = ll_model_get_vocab(models[data[0] % n_models]);
    const bool add_special = data[0] & 16, parse_special = data[0] & 32;
    const char *text = (const char *)data + 1;
    const int32_t len = (int32_t)(size - 1);
    int32_t cap = len + 8;
    ll_token *t = malloc((size_t)cap * sizeof *t);
    if (!t) return 0;
    int32_t n = ll_tokenize(v, text, len, t, cap, add_special, parse_special);
    if (n < 0) abort(); // only out of memory may fail
    if (n > cap) { // the buffer was short: n is the count needed
        ll_token *nt = realloc(t, (size_t)n * sizeof *t);
        if (!nt) { free(t); return 0; }
        t = nt;
        if (ll_tokenize(v, text, len, t, n, add_special, parse_special) != n) abort();
    }
    const int32_t n_vocab = ll_vocab_n_tokens(v);
    char piece[16];
    for (int32_t i = 0; i < n; i++) {
        if (t[i] < 0 || t[i] >= n_vocab) abort();
        int32_t k = ll_token_to_piece(v, t[i], piece, sizeof piece, parse_special);
        if (k < 0) { // short buffer: -k bytes needed, and then they fit
            char *big = malloc((size_t)-k);
            if (big && ll_token_to_piece(v, t[i], big, -k, parse_special) != -k) abort();
            free(big);
        }
    }
    free(t);
    return 0;
}
