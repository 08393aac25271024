// Session files (engine/context/session.c): a saved cache, loaded into a fresh context, continues
// exactly as the original (bitwise logits, F16 and Q8_0 caches, with the caller's blob); and a
// session file is hostile input: every truncation, a flipped byte anywhere (header, tokens, rows,
// blob, checksum), another model, other cache types, a smaller context, an empty or missing file
// are refused with one line naming the file, and leave the cache empty.
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/llamalite.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

static ll_context *new_ctx(ll_model *m, int n_ctx, ll_cache_type t) {
    char err[256];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 2;
    cp.type_k = cp.type_v = t;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    return c;
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*n ? *n : 1);
    if (b && fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

static void write_all(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(b, 1, n, f);
    fclose(f);
}

// A load that must fail: -1, a message naming the file, an empty cache.
static void refused(ll_context *c, const char *path, const char *what) {
    char err[512] = "";
    ll_token *toks = NULL;
    int n = -1;
    const int rc = ll_session_load(c, path, &toks, &n, NULL, NULL, err, sizeof err);
    CHECK(rc == -1 && strstr(err, path) && !strchr(err, '\n') && ll_n_past(c) == 0 && !toks && n == 0,
          "%s: rc %d, n_past %d, message '%s'", what, rc, ll_n_past(c), err);
}

static void round_trip(ll_model *m, ll_cache_type t, const char *dir) {
    char err[512], path[1200];
    snprintf(path, sizeof path, "%s/s-%s.bin", dir, ll_cache_type_name(t));
    const int n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m));
    ll_token toks[40];
    for (int i = 0; i < 40; i++) toks[i] = (ll_token)(i == 0 ? 1 : (i * 37 + 11) % n_vocab);
    ll_context *a = new_ctx(m, 128, t), *b = new_ctx(m, 128, t);
    if (!a || !b) goto done;
    CHECK(ll_decode(a, toks, 30, err, sizeof err) == 0, "%s", err);
    const char blob[] = "the caller's own state";
    CHECK(ll_session_save(a, path, toks, 30, blob, sizeof blob, err, sizeof err) == 0, "save: %s", err);
    ll_token *got = NULL;
    void *extra = NULL;
    size_t n_extra = 0;
    int n = 0;
    CHECK(ll_session_load(b, path, &got, &n, &extra, &n_extra, err, sizeof err) == 0, "load: %s", err);
    CHECK(n == 30 && ll_n_past(b) == 30 && got && memcmp(got, toks, sizeof *toks * 30) == 0, "tokens back: %d", n);
    CHECK(n_extra == sizeof blob && extra && memcmp(extra, blob, sizeof blob) == 0, "blob back");
    free(got);
    free(extra);
    // Both go on with the same tokens: the same logits, to the bit.
    int same = 0;
    for (int i = 30; i < 40; i++) {
        CHECK(ll_decode(a, &toks[i], 1, err, sizeof err) == 0 && ll_decode(b, &toks[i], 1, err, sizeof err) == 0, "%s", err);
        same += memcmp(ll_get_logits(a), ll_get_logits(b), sizeof(float) * n_vocab) == 0;
    }
    CHECK(same == 10, "%s cache: %d of 10 steps after the load equal the original's", ll_cache_type_name(t), same);
    printf("%-5s session: 30 tokens saved and loaded, next 10 steps bitwise equal: %d/10\n", ll_cache_type_name(t), same);
done:
    ll_context_free(a);
    ll_context_free(b);
}

static void hostile(ll_model *m, ll_model *other, const char *dir) {
    char err[512], path[1200], bad[1200];
    snprintf(path, sizeof path, "%s/good.bin", dir);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    ll_token toks[20];
    for (int i = 0; i < 20; i++) toks[i] = (ll_token)(i + 1);
    ll_context *a = new_ctx(m, 64, LL_CACHE_F16);
    if (!a) return;
    CHECK(ll_decode(a, toks, 20, err, sizeof err) == 0, "%s", err);
    CHECK(ll_session_save(a, path, toks, 20, "x", 1, err, sizeof err) == 0, "save: %s", err);
    size_t n = 0;
    unsigned char *good = read_all(path, &n);
    CHECK(good && n > 100, "read back");
    if (!good) goto done;
    // every truncation (all lengths through the header, then in steps)
    int n_cut = 0;
    for (size_t len = 0; len < n; len += len < 128 ? 1 : 97, n_cut++) {
        write_all(bad, good, len);
        CHECK(ll_decode(a, toks, 1, err, sizeof err) == 0, "%s", err); // something in the cache
        refused(a, bad, "truncated");
    }
    // a flipped byte anywhere
    int n_flip = 0;
    for (size_t at = 0; at < n; at += at < 128 ? 1 : 61, n_flip++) {
        good[at] ^= 0x41;
        write_all(bad, good, n);
        good[at] ^= 0x41;
        refused(a, bad, "flipped byte");
    }
    // one byte too many
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, good, n);
    longer[n] = 0;
    write_all(bad, longer, n + 1);
    free(longer);
    refused(a, bad, "trailing byte");
    // not ours to read: another model, other cache types, a smaller context, no file
    ll_context *o = new_ctx(other, 64, LL_CACHE_F16), *q = new_ctx(m, 64, LL_CACHE_Q8_0), *s = new_ctx(m, 16, LL_CACHE_F16);
    if (o) refused(o, path, "another model");
    if (q) refused(q, path, "other cache types");
    if (s) refused(s, path, "a smaller context");
    snprintf(bad, sizeof bad, "%s/none.bin", dir);
    refused(a, bad, "missing file");
    char msg[512];
    ll_token *t = NULL;
    int nt = 0;
    if (o && ll_session_load(o, path, &t, &nt, NULL, NULL, msg, sizeof msg) != 0) printf("another model: %s\n", msg);
    if (q && ll_session_load(q, path, &t, &nt, NULL, NULL, msg, sizeof msg) != 0) printf("other types: %s\n", msg);
    ll_context_free(o);
    ll_context_free(q);
    ll_context_free(s);
    // and the good file still loads
    ll_token *got = NULL;
    int n_got = 0;
    CHECK(ll_session_load(a, path, &got, &n_got, NULL, NULL, err, sizeof err) == 0 && n_got == 20, "good file: %s", err);
    free(got);
    printf("hostile: %d truncations, %d flipped bytes, a trailing byte, another model, other types, a smaller "
           "context, no file: all refused\n", n_cut, n_flip);
done:
    free(good);
    ll_context_free(a);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    char path[1024], path2[1024], err[512], dir[1024];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", shared);
    snprintf(path2, sizeof path2, "%s/models/stories260K-f16.gguf", shared);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err), *m2 = ll_model_load(path2, &mp, err, sizeof err);
    CHECK(m && m2, "load: %s", err);
    if (m && m2 && scratch_dir_make(dir, sizeof dir, "test_session")) {
        round_trip(m, LL_CACHE_F16, dir);
        round_trip(m, LL_CACHE_Q8_0, dir);
        hostile(m, m2, dir);
        if (test_failures == 0) scratch_dir_remove(dir);
    }
    ll_model_free(m);
    ll_model_free(m2);
    return test_result("test_session");
}
