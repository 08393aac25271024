// Model loader tests on the generated tiny model (build/tiny.gguf, made by mktiny): it loads
// and decodes; broken copies of it (another architecture, a missing tensor, a wrong shape, an
// unsupported type, bad hyperparameters) fail with a one-line error naming the problem;
// vocab_only loads only the vocabulary.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"
#include "tests/test_util.h"

static char tiny[1024];

// Writes a copy of tiny.gguf with key `key` set to string/u32 value, and tensor `drop` left
// out or given ne0/ne1 or type changed. Returns the path.
typedef struct {
    const char *key_str, *val_str; // string key to override
    const char *key_u32; uint32_t val_u32;
    const char *drop;              // tensor to leave out
    const char *reshape;           // tensor whose ne[0] is halved (same bytes)
    const char *retype;            // tensor written as a type with no matmul (claims Q8_K)
} variant;

static const char *make_variant(const variant *v, const char *path) {
    char err[256];
    gguf_file *f = gguf_open(tiny, err, sizeof err);
    if (!f) return NULL;
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    if (v->key_str) gguf_writer_set_str(w, v->key_str, v->val_str);
    if (v->key_u32) gguf_writer_set_u32(w, v->key_u32, v->val_u32);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        if (v->drop && !strcmp(t->name, v->drop)) continue;
        int64_t ne[GGUF_MAX_DIMS];
        memcpy(ne, t->ne, sizeof ne);
        uint32_t nd = t->n_dims;
        enum gl_type type = t->type;
        size_t size = t->size;
        if (v->reshape && !strcmp(t->name, v->reshape)) {
            ne[0] /= 2;
            ne[1] *= 2;
        }
        if (v->retype && !strcmp(t->name, v->retype)) {
            // Q8_K has no dot kernel of its own: a weight in it must be refused. Keep the
            // byte count consistent: ne[0] elements of Q8_K = ne[0]/256 * 292 bytes.
            type = GL_TYPE_Q8_K;
            ne[0] = 256;
            ne[1] = (int64_t)(size / 292);
            size = (size_t)ne[1] * 292;
        }
        gguf_writer_add_tensor(w, t->name, type, nd, ne, t->data, size);
    }
    bool ok = gguf_writer_write(w, path, err, sizeof err);
    gguf_writer_free(w);
    gguf_close(f);
    CHECK(ok, "write %s: %s", path, err);
    return ok ? path : NULL;
}

static void expect_error(const variant *v, const char *want, const char *what) {
    char path[1100], err[512] = "";
    snprintf(path, sizeof path, "%s.variant.gguf", tiny);
    if (!make_variant(v, path)) return;
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m == NULL, "%s: loaded", what);
    CHECK(strstr(err, want) != NULL, "%s: error '%s' does not say '%s'", what, err, want);
    CHECK(strchr(err, '\n') == NULL, "%s: error is not one line", what);
    ll_model_free(m);
    remove(path);
}

int main(void) {
    const char *build = getenv("LLAMALITE_BUILD");
    snprintf(tiny, sizeof tiny, "%s/tiny.gguf", build && *build ? build : "build");
    FILE *probe = fopen(tiny, "rb");
    if (!probe) return TEST_SKIP;
    fclose(probe);

    char err[512] = "";
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(tiny, &mp, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", tiny, err);
    if (m) {
        CHECK(strncmp(ll_model_desc(m), "llama ", 6) == 0, "desc '%s'", ll_model_desc(m));
        CHECK(ll_model_n_layer(m) > 0 && ll_model_n_embd(m) > 0, "hparams");
        CHECK(ll_model_n_params(m) > 0 && ll_model_size_bytes(m) >= 4 * ll_model_n_params(m) / 2,
              "params %llu size %llu", (unsigned long long)ll_model_n_params(m),
              (unsigned long long)ll_model_size_bytes(m));
        CHECK(ll_model_meta_str(m, "general.architecture") &&
              !strcmp(ll_model_meta_str(m, "general.architecture"), "llama"), "meta_str");
        CHECK(ll_model_meta_str(m, "no.such.key") == NULL, "meta_str of a missing key");

        ll_context_params cp = ll_context_default_params();
        cp.n_threads = 2;
        ll_context *c = ll_context_new(m, &cp, err, sizeof err);
        CHECK(c != NULL, "context: %s", err);
        if (c) {
            CHECK(ll_n_ctx(c) == (ll_model_n_ctx_train(m) < 4096 ? ll_model_n_ctx_train(m) : 4096),
                  "default n_ctx %d", ll_n_ctx(c));
            ll_token toks[3] = {1, 5, 9};
            CHECK(ll_decode(c, toks, 3, err, sizeof err) == 0, "decode: %s", err);
            const float *lg = ll_get_logits(c);
            int n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m)), finite = 1;
            for (int i = 0; lg && i < n_vocab; i++) finite &= isfinite(lg[i]) != 0;
            CHECK(lg && finite, "logits not finite");
            ll_timings t = ll_get_timings(c);
            CHECK(t.n_prompt == 3 && t.n_gen == 0, "timings %d %d", t.n_prompt, t.n_gen);
            ll_context_free(c);
        }
        ll_model_free(m);
    }

    // vocab_only: the tokenizer works, a context cannot be made.
    mp.vocab_only = true;
    m = ll_model_load(tiny, &mp, err, sizeof err);
    CHECK(m != NULL, "vocab_only load: %s", err);
    if (m) {
        CHECK(ll_vocab_n_tokens(ll_model_get_vocab(m)) > 0, "vocab_only: no tokens");
        ll_context_params cp = ll_context_default_params();
        ll_context *c = ll_context_new(m, &cp, err, sizeof err);
        CHECK(c == NULL, "vocab_only model made a context");
        ll_context_free(c);
        ll_model_free(m);
    }

    expect_error(&(variant){.key_str = "general.architecture", .val_str = "mamba"},
                 "unsupported architecture 'mamba' (supported: llama, qwen2, qwen3, phi3, gemma2, gemma3, ",
                 "architecture");
    expect_error(&(variant){.drop = "blk.1.attn_k.weight"}, "blk.1.attn_k.weight", "missing tensor");
    expect_error(&(variant){.drop = "output_norm.weight"}, "output_norm.weight", "missing norm");
    expect_error(&(variant){.reshape = "blk.0.ffn_up.weight"}, "blk.0.ffn_up.weight", "wrong shape");
    expect_error(&(variant){.retype = "blk.0.attn_q.weight"}, "blk.0.attn_q.weight", "unusable type");
    expect_error(&(variant){.key_u32 = "llama.attention.head_count_kv", .val_u32 = 3},
                 "head_count_kv", "bad head_count_kv");
    expect_error(&(variant){.key_u32 = "llama.block_count", .val_u32 = 0}, "block_count", "no layers");
    expect_error(&(variant){.key_str = "llama.rope.scaling.type", .val_str = "dynamic"},
                 "unsupported rope scaling type 'dynamic'", "rope scaling");
    return test_result("test_model");
}
