// ll_moe_traffic_measure (bench --moe-bound) on the ../shared/models/arch MoE models:
//   - the bytes a generated token reads: every tensor of the file whole but the token
//     embeddings (one row; whole when they are the tied output head) and the expert stacks,
//     of which k of n_expert experts; counted here from the GGUF's own tensor sizes;
//   - the decodes are real ones: afterwards the cache holds them, and the last token's logits
//     are bitwise those of the same tokens decoded without the probe;
//   - the share of experts reused from the previous token lies in [0, 1], the replay and
//     streaming times are positive;
//   - a dense model and fewer than 2 tokens are refused with a message.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"
#include "tests/test_util.h"

enum { N = 6 };

// Bytes per token from the file's tensors, and of those the experts'.
static void expected_bytes(const char *path, double *total, double *experts) {
    char err[512];
    gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return;
    const char *arch = gguf_get_str(f, "general.architecture", "");
    char key[128];
    snprintf(key, sizeof key, "%s.expert_count", arch);
    const double n_exp = gguf_get_u32(f, key, 0);
    snprintf(key, sizeof key, "%s.expert_used_count", arch);
    const double k = gguf_get_u32(f, key, 0);
    const bool tied = gguf_find_tensor(f, "output.weight") == NULL;
    *total = *experts = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        const size_t len = strlen(t->name);
        if (!strcmp(t->name, "token_embd.weight")) {
            if (tied) *total += (double)t->size;
        } else if (len > 12 && !strcmp(t->name + len - 12, "_exps.weight")) {
            *total += (double)t->size * k / n_exp;
            *experts += (double)t->size * k / n_exp;
        } else {
            *total += (double)t->size;
        }
    }
    gguf_close(f);
}

static ll_context *context(ll_model *m, int n_threads) {
    char err[512];
    ll_context_params cp = ll_context_default_params();
    cp.n_ctx = 32;
    cp.n_threads = n_threads;
    ll_context *c = ll_context_new(m, &cp, err, sizeof err);
    CHECK(c != NULL, "context: %s", err);
    return c;
}

static void check_model(const char *shared, const char *name) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/arch/%s.gguf", shared, name);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "%s: %s", name, err);
    if (!m) return;
    const int n_vocab = ll_vocab_n_tokens(ll_model_get_vocab(m));
    ll_token toks[N];
    for (int i = 0; i < N; i++) toks[i] = (ll_token)((i * 7919 + 11) % n_vocab);
    double want_total = 0, want_experts = 0;
    expected_bytes(path, &want_total, &want_experts);
    printf("%-9s the file: %.0f bytes per token, experts %.0f\n", name, want_total, want_experts);

    // the same tokens without the probe: the last one's logits
    static float plain[1 << 16];
    ll_context *c = context(m, 2);
    int rc = 0;
    for (int i = 0; c && i < N && rc == 0; i++) rc = ll_decode(c, &toks[i], 1, err, sizeof err);
    CHECK(rc == 0, "%s: decode: %s", name, err);
    if (c && n_vocab <= 1 << 16) memcpy(plain, ll_get_logits(c), sizeof(float) * n_vocab);
    ll_context_free(c);

    for (int nt = 1; nt <= 2; nt++) {
        if (!(c = context(m, nt))) continue;
        ll_moe_traffic t;
        rc = ll_moe_traffic_measure(c, toks, N, &t, err, sizeof err);
        CHECK(rc == 0, "%s: %s", name, err);
        if (rc == 0) {
            printf("%-9s threads %d: %.0f bytes per token (experts %.0f, %.0f%% reused), replay %.3f ms, stream %.1f GB/s\n",
                   name, nt, t.bytes_per_token, t.expert_bytes_per_token, 100 * t.reused,
                   t.replay_s_per_token * 1e3, t.stream_bytes_per_s * 1e-9);
            CHECK(t.n_tokens == N, "%s: %d tokens measured", name, t.n_tokens);
            CHECK(fabs(t.bytes_per_token - want_total) < 1, "%s: %.0f bytes per token, the file says %.0f", name,
                  t.bytes_per_token, want_total);
            CHECK(fabs(t.expert_bytes_per_token - want_experts) < 1, "%s: %.0f expert bytes per token, the file says %.0f",
                  name, t.expert_bytes_per_token, want_experts);
            CHECK(t.reused >= 0 && t.reused <= 1, "%s: reused share %g", name, t.reused);
            CHECK(t.replay_s_per_token > 0 && t.stream_bytes_per_s > 0, "%s: replay %g s, stream %g B/s", name,
                  t.replay_s_per_token, t.stream_bytes_per_s);
            CHECK(ll_n_past(c) == N, "%s: the cache holds %d tokens after the probe, expected %d", name, ll_n_past(c), N);
            CHECK(n_vocab > 1 << 16 || memcmp(plain, ll_get_logits(c), sizeof(float) * n_vocab) == 0,
                  "%s threads %d: the probe's decodes give other logits than plain ones", name, nt);
        }
        ll_context_free(c);
    }

    // too few tokens
    if ((c = context(m, 1))) {
        ll_moe_traffic t;
        err[0] = 0;
        CHECK(ll_moe_traffic_measure(c, toks, 1, &t, err, sizeof err) == -1 && strstr(err, "2 generated tokens"),
              "%s: one token: '%s'", name, err);
        ll_context_free(c);
    }
    ll_model_free(m);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return TEST_SKIP;
    check_model(shared, "qwen3moe");
    check_model(shared, "qwen2moe");
    check_model(shared, "llama-moe");

    // a dense model is refused
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/arch/qwen3.gguf", shared);
    ll_model_params mp = ll_model_default_params();
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    CHECK(m != NULL, "qwen3: %s", err);
    if (m) {
        ll_context *c = context(m, 1);
        ll_token toks[2] = {1, 2};
        ll_moe_traffic t;
        err[0] = 0;
        CHECK(c && ll_moe_traffic_measure(c, toks, 2, &t, err, sizeof err) == -1 &&
                  strstr(err, "not a mixture-of-experts"),
              "qwen3: '%s'", err);
        ll_context_free(c);
        ll_model_free(m);
    }
    return test_result("test_moe_traffic");
}
