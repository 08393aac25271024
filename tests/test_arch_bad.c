// Bad input for the architectures after Llama: copies of the shared arch models
// (../shared/models/arch) that claim a family but lack a tensor it requires, have a wrong
// shape, a per-layer metadata array of the wrong length or a missing required key, and an
// architecture the engine does not run. The loader refuses each with one line naming the
// tensor or key; `llamalite -m FILE` prints that line and exits 1. Valid variants (a per-layer
// array of the right length, Q/K/V in place of a fused attn_qkv) load. Mixtures of experts:
// an expert count of 0, more experts used than there are, a stack of expert matrices whose
// third dimension is not the expert count.
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"
#include "ggml-lite/ggml-lite.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

static char dir[1024];
static const char *shared;

typedef struct {
    const char *model;            // shared arch model to start from
    const char *drop_tensor;      // tensor left out
    const char *drop_key;         // metadata key left out
    const char *reshape;          // tensor whose ne[0] is halved and ne[1] doubled (same bytes)
    const char *key_arr;          // key written as a u32 array of n_arr copies of val_arr
    int n_arr;
    uint32_t val_arr;
    const char *key_str, *val_str; // string key to override
    const char *key_u32;          // u32 key to override with val_u32
    uint32_t val_u32;
    const char *halve_experts;    // 3-D tensor keeping only its first half of ne[2] matrices
    bool split_qkv;               // attn_qkv written as attn_q, attn_k, attn_v (phi3 layout)
} variant;

static bool make_variant(const variant *v, const char *path) {
    char src[1200], err[512];
    snprintf(src, sizeof src, "%s/models/arch/%s.gguf", shared, v->model);
    gguf_file *f = gguf_open(src, err, sizeof err);
    CHECK(f != NULL, "open %s: %s", src, err);
    if (!f) return false;
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_n_kv(f); i++)
        if (!v->drop_key || strcmp(gguf_key(f, i), v->drop_key)) gguf_writer_copy_kv(w, f, i);
    if (v->key_str) gguf_writer_set_str(w, v->key_str, v->val_str);
    if (v->key_u32) gguf_writer_set_u32(w, v->key_u32, v->val_u32);
    uint32_t arr[64];
    for (int i = 0; i < v->n_arr && i < 64; i++) arr[i] = v->val_arr;
    if (v->key_arr) gguf_writer_set_arr_data(w, v->key_arr, GGUF_TYPE_UINT32, arr, (uint64_t)v->n_arr);
    // q|k|v split needs the rows of each part: phi3.gguf has 4 heads / 2 KV heads of 16.
    const int64_t q_rows = 64, kv_rows = 32;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        if (v->drop_tensor && !strcmp(t->name, v->drop_tensor)) continue;
        int64_t ne[GGUF_MAX_DIMS];
        memcpy(ne, t->ne, sizeof ne);
        uint32_t n_dims = t->n_dims;
        if (v->reshape && !strcmp(t->name, v->reshape)) {
            ne[0] /= 2;
            ne[1] *= 2;
            if (n_dims < 2) n_dims = 2;
        }
        size_t size = t->size;
        if (v->halve_experts && !strcmp(t->name, v->halve_experts)) {
            ne[2] /= 2;
            size /= 2;
        }
        const char *qkv = strstr(t->name, "attn_qkv.weight");
        if (v->split_qkv && qkv) {
            const size_t row = t->size / (size_t)t->ne[1];
            static const char *const parts[3] = {"attn_q.weight", "attn_k.weight", "attn_v.weight"};
            const int64_t rows[3] = {q_rows, kv_rows, kv_rows};
            size_t off = 0;
            for (int p = 0; p < 3; p++) {
                char name[128];
                snprintf(name, sizeof name, "%.*s%s", (int)(qkv - t->name), t->name, parts[p]);
                const int64_t pne[2] = {t->ne[0], rows[p]};
                gguf_writer_add_tensor(w, name, t->type, 2, pne, (const char *)t->data + off, row * (size_t)rows[p]);
                off += row * (size_t)rows[p];
            }
            continue;
        }
        gguf_writer_add_tensor(w, t->name, t->type, n_dims, ne, t->data, size);
    }
    bool ok = gguf_writer_write(w, path, err, sizeof err);
    gguf_writer_free(w);
    gguf_close(f);
    CHECK(ok, "write %s: %s", path, err);
    return ok;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = calloc(1, 1 << 16);
    if (s) fread(s, 1, (1 << 16) - 1, f);
    fclose(f);
    return s;
}

// `llamalite -m path -p hi -n 1`: exit code 1 and exactly one line on stderr containing want.
static void check_cli(const char *path, const char *want, const char *what) {
    const char *bin = getenv("LLAMALITE_BIN");
    if (!bin || access(bin, X_OK) != 0) return;
    char out_path[1100], err_path[1100];
    snprintf(out_path, sizeof out_path, "%s/cli.stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/cli.stderr", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        execl(bin, bin, "-m", path, "-p", "hi", "-n", "1", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return;
    const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char *err = read_all(err_path);
    const size_t n = err ? strlen(err) : 0;
    CHECK(rc == 1, "%s: llamalite exited %d", what, rc);
    CHECK(n > 0 && err[n - 1] == '\n' && memchr(err, '\n', n - 1) == NULL, "%s: stderr is not one line: '%s'", what,
          err ? err : "");
    CHECK(err && strstr(err, want), "%s: stderr '%s' lacks '%s'", what, err ? err : "", want);
    free(err);
}

static void expect_error(const variant *v, const char *want, const char *what) {
    char path[1100], err[512] = "";
    snprintf(path, sizeof path, "%s/%s.gguf", dir, what);
    if (!make_variant(v, path)) return;
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m == NULL, "%s: loaded", what);
    ll_model_free(m);
    CHECK(strstr(err, want) != NULL, "%s: error '%s' does not say '%s'", what, err, want);
    CHECK(strchr(err, '\n') == NULL, "%s: error has several lines: '%s'", what, err);
    check_cli(path, want, what);
}

static void expect_loads(const variant *v, const char *what) {
    char path[1100], err[512] = "";
    snprintf(path, sizeof path, "%s/%s.gguf", dir, what);
    if (!make_variant(v, path)) return;
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "%s: %s", what, err);
    if (m) {
        ll_context_params cp = ll_context_default_params();
        cp.n_ctx = 64;
        cp.n_threads = 1;
        ll_context *c = ll_context_new(m, &cp, err, sizeof err);
        CHECK(c != NULL, "%s: context: %s", what, err);
        ll_token t[3] = {1, 2, 3};
        if (c) CHECK(ll_decode(c, t, 3, err, sizeof err) == 0, "%s: decode: %s", what, err);
        ll_context_free(c);
    }
    ll_model_free(m);
}

int main(void) {
    shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/models/arch/qwen3.gguf", shared);
    if (access(probe, R_OK) != 0) return TEST_SKIP;
    if (!scratch_dir_make(dir, sizeof dir, "test_arch_bad")) return 1;

    // A required tensor missing, for each family's own roles.
    expect_error(&(variant){.model = "qwen2", .drop_tensor = "blk.1.attn_k.bias"}, "missing tensor 'blk.1.attn_k.bias'",
                 "qwen2-no-bias");
    expect_error(&(variant){.model = "qwen3", .drop_tensor = "blk.0.attn_q_norm.weight"},
                 "missing tensor 'blk.0.attn_q_norm.weight'", "qwen3-no-qnorm");
    expect_error(&(variant){.model = "gemma2", .drop_tensor = "blk.7.post_ffw_norm.weight"},
                 "missing tensor 'blk.7.post_ffw_norm.weight'", "gemma2-no-postnorm");
    expect_error(&(variant){.model = "gemma3", .drop_tensor = "blk.5.attn_k_norm.weight"},
                 "missing tensor 'blk.5.attn_k_norm.weight'", "gemma3-no-knorm");
    expect_error(&(variant){.model = "phi3", .drop_tensor = "blk.1.attn_qkv.weight"},
                 "missing tensor 'blk.1.attn_qkv.weight'", "phi3-no-qkv");
    expect_error(&(variant){.model = "llama31", .drop_tensor = "blk.0.ffn_gate.weight"},
                 "missing tensor 'blk.0.ffn_gate.weight'", "llama31-no-gate");
    // A wrong shape.
    expect_error(&(variant){.model = "phi3", .reshape = "blk.0.ffn_up.weight"}, "'blk.0.ffn_up.weight' has shape",
                 "phi3-up-shape");
    expect_error(&(variant){.model = "qwen3", .reshape = "blk.1.attn_q.weight"}, "'blk.1.attn_q.weight' has shape",
                 "qwen3-q-shape");
    expect_error(&(variant){.model = "llama31", .reshape = "rope_freqs.weight"}, "'rope_freqs.weight' has shape",
                 "llama31-freqs-shape");
    // Per-layer arrays of the wrong length; required keys missing.
    expect_error(&(variant){.model = "qwen2", .key_arr = "qwen2.feed_forward_length", .n_arr = 3, .val_arr = 160},
                 "metadata 'qwen2.feed_forward_length' has 3 values for 2 layers", "qwen2-ff-array");
    expect_error(&(variant){.model = "gemma2", .key_arr = "gemma2.attention.head_count_kv", .n_arr = 25, .val_arr = 2},
                 "metadata 'gemma2.attention.head_count_kv' has 25 values for 26 layers", "gemma2-kv-array");
    expect_error(&(variant){.model = "gemma3", .drop_key = "gemma3.attention.sliding_window"},
                 "missing metadata 'gemma3.attention.sliding_window'", "gemma3-no-window");
    expect_error(&(variant){.model = "phi3", .drop_key = "phi3.attention.sliding_window"},
                 "missing metadata 'phi3.attention.sliding_window'", "phi3-no-window");
    expect_error(&(variant){.model = "qwen2-yarn", .key_str = "qwen2.rope.scaling.type", .val_str = "dynamic"},
                 "unsupported rope scaling type 'dynamic'", "yarn-unknown");
    // An architecture the engine does not run: the supported ones are listed.
    expect_error(&(variant){.model = "qwen3", .key_str = "general.architecture", .val_str = "mamba"},
                 "unsupported architecture 'mamba' (supported: llama, qwen2, qwen3, phi3, gemma2, gemma3, qwen2moe, "
                 "qwen3moe, gpt-oss)",
                 "mamba");

    // Mixtures of experts: the counts, and the expert stacks against them.
    expect_error(&(variant){.model = "llama-moe", .key_u32 = "llama.expert_count", .val_u32 = 0},
                 "invalid or missing llama.expert_count (0)", "llama-moe-no-experts");
    expect_error(&(variant){.model = "qwen3moe", .drop_key = "qwen3moe.expert_count"},
                 "invalid or missing qwen3moe.expert_count (0)", "qwen3moe-no-count");
    expect_error(&(variant){.model = "qwen3moe", .key_u32 = "qwen3moe.expert_used_count", .val_u32 = 9},
                 "invalid qwen3moe.expert_used_count 9 for 8 experts", "qwen3moe-used-9");
    expect_error(&(variant){.model = "qwen2moe", .key_u32 = "qwen2moe.expert_used_count", .val_u32 = 0},
                 "invalid qwen2moe.expert_used_count 0 for 8 experts", "qwen2moe-used-0");
    expect_error(&(variant){.model = "qwen3moe", .halve_experts = "blk.1.ffn_up_exps.weight"},
                 "tensor 'blk.1.ffn_up_exps.weight' holds 4 experts, expected 8", "qwen3moe-up-4-experts");
    expect_error(&(variant){.model = "llama-moe", .key_u32 = "llama.expert_count", .val_u32 = 16},
                 "tensor 'blk.0.ffn_gate_inp.weight' has shape [64, 8], expected [64, 16]", "llama-moe-count-16");
    expect_error(&(variant){.model = "qwen2moe", .drop_tensor = "blk.1.ffn_down_shexp.weight"},
                 "missing tensor 'blk.1.ffn_down_shexp.weight'", "qwen2moe-no-shexp");
    expect_error(&(variant){.model = "qwen3moe", .reshape = "blk.0.ffn_down_exps.weight"},
                 "'blk.0.ffn_down_exps.weight' has shape", "qwen3moe-down-shape");

    // gpt-oss (its experts are MXFP4, GGUF type 39: only where ggml-lite decodes it).
    if (gl_get_type_traits((enum gl_type)39)) {
        expect_error(&(variant){.model = "gpt-oss", .drop_key = "gpt-oss.attention.sliding_window"},
                     "missing metadata 'gpt-oss.attention.sliding_window'", "gpt-oss-no-window");
        expect_error(&(variant){.model = "gpt-oss", .drop_tensor = "blk.1.attn_sinks.weight"},
                     "missing tensor 'blk.1.attn_sinks.weight'", "gpt-oss-no-sinks");
        expect_error(&(variant){.model = "gpt-oss", .drop_tensor = "blk.0.ffn_down_exps.bias"},
                     "missing tensor 'blk.0.ffn_down_exps.bias'", "gpt-oss-no-expert-bias");
        expect_error(&(variant){.model = "gpt-oss", .key_u32 = "gpt-oss.expert_used_count", .val_u32 = 12},
                     "invalid gpt-oss.expert_used_count 12 for 8 experts", "gpt-oss-used-12");
    }

    // Valid variants: per-layer arrays of the right length, Q/K/V instead of Phi-3's attn_qkv.
    expect_loads(&(variant){.model = "qwen2", .key_arr = "qwen2.feed_forward_length", .n_arr = 2, .val_arr = 160},
                 "qwen2-ff-array-ok");
    expect_loads(&(variant){.model = "phi3", .split_qkv = true}, "phi3-split-qkv");

    const int rc = test_result("test_arch_bad");
    if (rc == 0) scratch_dir_remove(dir);
    return rc;
}
