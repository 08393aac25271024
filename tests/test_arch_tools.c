// The tools on the architectures after Llama (../shared/models/arch):
//   - LoRA on the families' own roles (Phi-3's fused attn_qkv and gate|up ffn_up, Gemma's
//     attn_output and ffn_gate, Qwen's attn_k and ffn_down), then on every matrix role of each
//     family at once: an adapter at scale 0 leaves the
//     logits bitwise alone, at scale 1 it changes them, and merging it into the weights
//     (ll_lora_export, F32) gives what the run-time adapter gives;
//   - importance matrices name the entries by role ("blk.0.attn_qkv.weight");
//   - speculative decoding with a draft of the same family (the target's first layers):
//     greedy output is byte-identical to plain decoding and the shared layers are taken.
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

static char dir[1024];
static const char *shared;

static void model_path(const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/models/arch/%s.gguf", shared, name);
}

static ll_model *load(const char *path) {
    char err[512];
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", path, err);
    return m;
}

static ll_context *new_ctx(ll_model *m) {
    char err[256];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 1;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    return c;
}

static const ll_token PROMPT[] = {1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203};
enum { N_PROMPT = sizeof PROMPT / sizeof PROMPT[0] };

// The last token's logits after the prompt (copied into out).
static bool prompt_logits(ll_context *c, float *out, int n_vocab) {
    char err[256];
    ll_kv_clear(c);
    if (ll_decode(c, PROMPT, N_PROMPT, err, sizeof err) != 0) {
        CHECK(0, "decode: %s", err);
        return false;
    }
    memcpy(out, ll_get_logits(c), sizeof(float) * (size_t)n_vocab);
    return true;
}

// ---- LoRA --------------------------------------------------------------------------------------

// An adapter for `arch` with rank-4 pairs on the named tensors of every layer of the base file.
static bool write_adapter(const char *base, const char *arch, const char *const *roles, int n_roles, const char *out) {
    char err[512];
    gguf_file *f = gguf_open(base, err, sizeof err);
    if (!f) return false;
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", arch);
    gguf_writer_set_str(w, "general.type", "adapter");
    gguf_writer_set_str(w, "adapter.type", "lora");
    gguf_writer_set_f32(w, "adapter.lora.alpha", 4.0f);
    const int rank = 4;
    uint64_t seed = 42;
    float *bufs[1024];
    int n_bufs = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f) && n_bufs + 2 <= 1024; i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        bool want = false;
        for (int r = 0; r < n_roles; r++) {
            const char *p = strstr(t->name, roles[r]);
            want |= !strncmp(t->name, "blk.", 4) && p && !strcmp(p + strlen(roles[r]), ".weight") && p[-1] == '.';
        }
        if (!want) continue;
        const int64_t n_in = t->ne[0], n_out = t->ne[1];
        float *a = malloc(sizeof(float) * (size_t)(n_in * rank)), *b = malloc(sizeof(float) * (size_t)(n_out * rank));
        for (int64_t j = 0; j < n_in * rank; j++) a[j] = 0.05f * test_gauss(&seed);
        for (int64_t j = 0; j < n_out * rank; j++) b[j] = 0.05f * test_gauss(&seed);
        char name[160];
        const int64_t ne_a[2] = {n_in, rank}, ne_b[2] = {rank, n_out};
        snprintf(name, sizeof name, "%s.lora_a", t->name);
        gguf_writer_add_tensor(w, name, GL_TYPE_F32, 2, ne_a, a, sizeof(float) * (size_t)(n_in * rank));
        snprintf(name, sizeof name, "%s.lora_b", t->name);
        gguf_writer_add_tensor(w, name, GL_TYPE_F32, 2, ne_b, b, sizeof(float) * (size_t)(n_out * rank));
        bufs[n_bufs++] = a;
        bufs[n_bufs++] = b;
    }
    bool ok = gguf_writer_write(w, out, err, sizeof err);
    CHECK(ok, "write %s: %s", out, err);
    gguf_writer_free(w);
    for (int i = 0; i < n_bufs; i++) free(bufs[i]);
    gguf_close(f);
    return ok;
}

static double max_abs_diff(const float *a, const float *b, int n, double *scale) {
    double d = 0, s = 0;
    for (int i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    if (scale) *scale = s;
    return d;
}

static void test_lora(const char *name, const char *arch, const char *const *roles, int n_roles) {
    char base[1100], ad_path[1100], merged[1100], err[512];
    model_path(name, base, sizeof base);
    snprintf(ad_path, sizeof ad_path, "%s/%s-lora.gguf", dir, name);
    snprintf(merged, sizeof merged, "%s/%s-merged.gguf", dir, name);
    if (!write_adapter(base, arch, roles, n_roles, ad_path)) return;
    ll_model *m = load(base);
    if (!m) return;
    const int nv = ll_vocab_n_tokens(ll_model_get_vocab(m));
    ll_adapter *a = ll_adapter_load(m, ad_path, err, sizeof err);
    CHECK(a != NULL, "%s: adapter: %s", name, err);
    ll_context *c = new_ctx(m);
    float *l0 = malloc(sizeof(float) * (size_t)nv), *lz = malloc(sizeof(float) * (size_t)nv),
          *l1 = malloc(sizeof(float) * (size_t)nv), *lm = malloc(sizeof(float) * (size_t)nv);
    if (a && c && prompt_logits(c, l0, nv)) {
        CHECK(ll_adapter_n_weights(a) == n_roles * ll_model_n_layer(m), "%s: %d adapted weights", name,
              ll_adapter_n_weights(a));
        ll_context_set_adapter(c, a, 0.0f, err, sizeof err);
        prompt_logits(c, lz, nv);
        CHECK(!memcmp(l0, lz, sizeof(float) * (size_t)nv), "%s: an adapter at scale 0 changed the logits", name);
        ll_context_set_adapter(c, a, 1.0f, err, sizeof err);
        prompt_logits(c, l1, nv);
        double scale, d = max_abs_diff(l1, l0, nv, &scale);
        CHECK(d > 1e-3 * scale, "%s: the adapter did not change the logits (%.3g of %.3g)", name, d, scale);
        // Merged into F32 weights: the same function up to the F16/F32 activation rounding.
        const float one = 1.0f;
        int nm = ll_lora_export(m, &a, &one, 1, "F32", merged, 1, err, sizeof err);
        CHECK(nm == n_roles * ll_model_n_layer(m), "%s: export merged %d: %s", name, nm, err);
        ll_model *mm = nm > 0 ? load(merged) : NULL;
        ll_context *cm = mm ? new_ctx(mm) : NULL;
        if (cm && prompt_logits(cm, lm, nv)) {
            d = max_abs_diff(lm, l1, nv, &scale);
            CHECK(d <= 0.02 * scale, "%s: merged model's logits differ by %.3g (of %.3g) from the adapter's", name,
                  d, scale);
            printf("%-8s LoRA on %d roles: changes logits by %.3g, merged agrees to %.2e relative\n", name, n_roles,
                   max_abs_diff(l1, l0, nv, NULL), d / scale);
        }
        ll_context_free(cm);
        ll_model_free(mm);
    }
    free(l0), free(lz), free(l1), free(lm);
    ll_context_free(c);
    ll_adapter_free(a);
    ll_model_free(m);
}

// ---- imatrix -----------------------------------------------------------------------------------

static void test_imatrix(const char *name, const char *want_entry, int want_entries) {
    char base[1100];
    model_path(name, base, sizeof base);
    ll_model *m = load(base);
    if (!m) return;
    ll_context *c = new_ctx(m);
    ll_imatrix *im = ll_imatrix_new();
    if (c && im) {
        CHECK(ll_imatrix_attach(im, c, false) == 0, "%s: attach", name);
        float *l = malloc(sizeof(float) * (size_t)ll_vocab_n_tokens(ll_model_get_vocab(m)));
        ll_token toks[32];
        for (int i = 0; i < 32; i++) toks[i] = PROMPT[i % N_PROMPT];
        char err[256];
        CHECK(ll_decode(c, toks, 32, err, sizeof err) == 0, "%s: decode: %s", name, err);
        free(l);
        int nval = 0;
        CHECK(ll_imatrix_get(im, want_entry, &nval) != NULL && nval > 0, "%s: no imatrix entry '%s'", name, want_entry);
        CHECK(ll_imatrix_n_entries(im) == want_entries, "%s: %d imatrix entries, expected %d", name,
              ll_imatrix_n_entries(im), want_entries);
        ll_imatrix_attach(im, NULL, false);
    }
    ll_imatrix_free(im);
    ll_context_free(c);
    ll_model_free(m);
}

// ---- speculative decoding with a draft of the same family ---------------------------------------

// A copy of the model keeping its first k layers (the layer-skip drafts of draftmodel.py).
static bool write_prefix(const char *src, const char *arch, int k, const char *out) {
    char err[512], key[128];
    gguf_file *f = gguf_open(src, err, sizeof err);
    if (!f) return false;
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    snprintf(key, sizeof key, "%s.block_count", arch);
    gguf_writer_set_u32(w, key, (uint32_t)k);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        if (!strncmp(t->name, "blk.", 4) && atoi(t->name + 4) >= k) continue;
        gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size);
    }
    bool ok = gguf_writer_write(w, out, err, sizeof err);
    CHECK(ok, "write %s: %s", out, err);
    gguf_writer_free(w);
    gguf_close(f);
    return ok;
}

static int greedy_plain(ll_context *c, const ll_model *m, int n, ll_token *out) {
    char err[256];
    ll_kv_clear(c);
    ll_sampler_params sp = ll_sampler_default_params();
    sp.temp = 0;
    ll_sampler *s = ll_sampler_new(&sp, ll_vocab_n_tokens(ll_model_get_vocab(m)));
    int k = 0;
    if (ll_decode(c, PROMPT, N_PROMPT, err, sizeof err) == 0)
        for (; k < n; k++) {
            out[k] = ll_sampler_sample(s, ll_get_logits(c));
            ll_sampler_accept(s, out[k]);
            if (k + 1 < n && ll_decode(c, &out[k], 1, err, sizeof err) != 0) break;
        }
    ll_sampler_free(s);
    return k;
}

static void test_speculative(const char *name, const char *arch, int k) {
    char base[1100], draft[1100], err[512];
    model_path(name, base, sizeof base);
    snprintf(draft, sizeof draft, "%s/%s-draft%d.gguf", dir, name, k);
    if (!write_prefix(base, arch, k, draft)) return;
    ll_model *m = load(base), *d = load(draft);
    ll_context *c = m ? new_ctx(m) : NULL, *dc = d ? new_ctx(d) : NULL;
    enum { N = 24 };
    ll_token plain[N], spec[N];
    if (c && dc) {
        const int np = greedy_plain(c, m, N, plain);
        ll_kv_clear(c);
        ll_spec_params par = ll_spec_default_params();
        par.n_max = 4;
        ll_spec *S = ll_spec_new(c, dc, &par, err, sizeof err);
        CHECK(S != NULL, "%s: ll_spec_new: %s", name, err);
        ll_sampler_params sp = ll_sampler_default_params();
        sp.temp = 0;
        ll_sampler *s = ll_sampler_new(&sp, ll_vocab_n_tokens(ll_model_get_vocab(m)));
        ll_sampler *ds = ll_sampler_new(&sp, ll_vocab_n_tokens(ll_model_get_vocab(d)));
        int n = 0;
        if (S && ll_spec_feed(S, PROMPT, N_PROMPT, err, sizeof err) == 0) {
            while (n < N) {
                int r = ll_spec_step(S, s, ds, -1, spec + n, N - n, err, sizeof err);
                CHECK(r > 0, "%s: ll_spec_step: %s", name, err);
                if (r <= 0) break;
                n += r;
            }
            const ll_spec_stats st = ll_spec_get_stats(S);
            CHECK(n == np && !memcmp(plain, spec, sizeof(ll_token) * (size_t)n),
                  "%s: speculative greedy output differs from plain decoding", name);
            CHECK(st.n_shared_layers == k, "%s: %d shared layers, expected %d", name, st.n_shared_layers, k);
            printf("%-8s speculative with its first %d layers: %d tokens identical, %lld/%lld drafts accepted\n", name,
                   k, n, (long long)st.n_accepted, (long long)st.n_drafted);
        }
        ll_sampler_free(s);
        ll_sampler_free(ds);
        ll_spec_free(S);
    }
    ll_context_free(dc);
    ll_context_free(c);
    ll_model_free(d);
    ll_model_free(m);
}

int main(void) {
    shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    char probe[1100];
    model_path("gemma3", probe, sizeof probe);
    if (access(probe, R_OK) != 0) return TEST_SKIP;
    if (!scratch_dir_make(dir, sizeof dir, "test_arch_tools")) return 1;

    test_lora("phi3", "phi3", (const char *const[]){"attn_qkv", "ffn_up"}, 2);
    test_lora("gemma2", "gemma2", (const char *const[]){"attn_output", "ffn_gate"}, 2);
    test_lora("gemma3", "gemma3", (const char *const[]){"attn_q", "ffn_down"}, 2);
    test_lora("qwen3", "qwen3", (const char *const[]){"attn_k", "ffn_down"}, 2);
    test_lora("qwen2", "qwen2", (const char *const[]){"attn_v", "attn_output"}, 2);
    test_lora("llama31", "llama", (const char *const[]){"attn_k", "ffn_down"}, 2);
    test_lora("qwen2-yarn", "qwen2", (const char *const[]){"attn_q", "ffn_up"}, 2);
    // Every matrix role of every family at once.
    static const char *const separate[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    static const char *const fused[] = {"attn_qkv", "attn_output", "ffn_up", "ffn_down"};
    static const char *const all_roles[][2] = {{"qwen2", "qwen2"}, {"qwen2-yarn", "qwen2"}, {"qwen3", "qwen3"},
                                               {"gemma2", "gemma2"}, {"gemma3", "gemma3"}, {"llama31", "llama"}};
    for (size_t i = 0; i < sizeof all_roles / sizeof *all_roles; i++)
        test_lora(all_roles[i][0], all_roles[i][1], separate, 7);
    test_lora("phi3", "phi3", fused, 4);

    test_imatrix("phi3", "blk.1.attn_qkv.weight", 2 * 4);
    test_imatrix("gemma2", "blk.25.ffn_gate.weight", 26 * 7);
    test_imatrix("qwen3", "blk.0.attn_q.weight", 2 * 7);
    test_imatrix("qwen2", "blk.1.attn_v.weight", 2 * 7);
    test_imatrix("gemma3", "blk.5.ffn_down.weight", 6 * 7);
    test_imatrix("llama31", "blk.1.ffn_gate.weight", 2 * 7);

    test_speculative("gemma2", "gemma2", 13);
    test_speculative("gemma3", "gemma3", 3);
    test_speculative("qwen2", "qwen2", 1);
    test_speculative("phi3", "phi3", 1);
    test_speculative("qwen3", "qwen3", 1);
    test_speculative("qwen2-yarn", "qwen2", 1);
    test_speculative("llama31", "llama", 1);

    const int rc = test_result("test_arch_tools");
    if (rc == 0) scratch_dir_remove(dir);
    return rc;
}
