// Model loading, for every architecture of the table (arch.c): the common hyperparameters
// from the `<arch>.*` keys, then the family's own; then per layer the tensors of the
// family's roles as weight views into the mapped GGUF. Every tensor is checked (presence,
// shape, type) before anything runs, so the forward pass never has to distrust its inputs.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/model.h"
#include "util.h"
#include "vocab/vocab.h"

ll_model_params ll_model_default_params(void) {
    ll_model_params p = {.vocab_only = false, .progress = NULL};
    return p;
}

// ---- hyperparameters ------------------------------------------------------------------

static const char *key_of(const ll_model *m, const char *suffix, char *buf, size_t n) {
    snprintf(buf, n, "%s.%s", m->arch, suffix);
    return buf;
}

// Reads an integer key that may also be a per-layer array (n_layer > 0: then it must have
// n_layer elements). *out is the value (the largest of an array); per_layer, when not NULL,
// receives each layer's value, else the layers must agree. Absent: def everywhere.
static bool get_count(const gguf_file *f, const char *key, int64_t def, int n_layer, int64_t *out,
                      int64_t *per_layer, char *err, size_t errlen) {
    int64_t i = gguf_find_key(f, key);
    if (i < 0) {
        *out = def;
        for (int l = 0; per_layer && l < n_layer; l++) per_layer[l] = def;
        return true;
    }
    if (gguf_kv_type(f, i) == GGUF_TYPE_ARRAY) {
        uint64_t n = gguf_arr_n(f, i);
        enum gguf_vtype et = gguf_arr_type(f, i);
        if (n == 0 || et == GGUF_TYPE_STRING || et == GGUF_TYPE_ARRAY) {
            ll_set_err(err, errlen, "metadata '%s' is not a count", key);
            return false;
        }
        if (n_layer > 0 && n != (uint64_t)n_layer) {
            ll_set_err(err, errlen, "metadata '%s' has %llu values for %d layers", key, (unsigned long long)n,
                       n_layer);
            return false;
        }
        double mx = 0;
        for (uint64_t j = 0; j < n; j++) {
            const double v = gguf_arr_number(f, i, j);
            if (!(v >= 0 && v <= 1e9) || v != floor(v)) {
                ll_set_err(err, errlen, "metadata '%s' out of range", key);
                return false;
            }
            if (!per_layer && v != gguf_arr_number(f, i, 0)) {
                ll_set_err(err, errlen, "metadata '%s': per-layer values are not supported", key);
                return false;
            }
            if (per_layer) per_layer[j] = (int64_t)v;
            if (v > mx) mx = v;
        }
        *out = (int64_t)mx;
        return true;
    }
    double v;
    if (!gguf_kv_number(f, i, &v) || !(v >= 0 && v <= 1e9) || v != floor(v)) {
        ll_set_err(err, errlen, "metadata '%s' is not a valid count", key);
        return false;
    }
    *out = (int64_t)v;
    for (int l = 0; per_layer && l < n_layer; l++) per_layer[l] = *out;
    return true;
}

static const struct { const char *name; ll_rope_scaling type; } ROPE_SCALINGS[] = {
    {"none", LL_ROPE_SCALING_NONE}, {"linear", LL_ROPE_SCALING_LINEAR}, {"yarn", LL_ROPE_SCALING_YARN},
    {"longrope", LL_ROPE_SCALING_LONGROPE}, {"llama3", LL_ROPE_SCALING_LLAMA3},
};

static bool read_rope(ll_model *m, char *err, size_t errlen) {
    ll_hparams *hp = &m->hp;
    const gguf_file *f = m->file;
    char k[128];
    hp->rope_freq_base = gguf_get_f32(f, key_of(m, "rope.freq_base", k, sizeof k), 10000.0f);
    if (!(hp->rope_freq_base > 0 && isfinite(hp->rope_freq_base))) {
        ll_set_err(err, errlen, "invalid %s", k);
        return false;
    }
    const char *scaling = gguf_get_str(f, key_of(m, "rope.scaling.type", k, sizeof k), "linear");
    bool known = false;
    for (size_t i = 0; i < sizeof ROPE_SCALINGS / sizeof ROPE_SCALINGS[0]; i++)
        if (!strcmp(scaling, ROPE_SCALINGS[i].name)) hp->rope_scaling = ROPE_SCALINGS[i].type, known = true;
    if (!known) {
        char safe[40];
        size_t n = 0;
        for (const char *s = scaling; *s && n + 1 < sizeof safe; s++) safe[n++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
        safe[n] = 0;
        ll_set_err(err, errlen, "unsupported rope scaling type '%s' (supported: none, linear, yarn, longrope, llama3)",
                   safe);
        return false;
    }
    float factor = gguf_get_f32(f, key_of(m, "rope.scaling.factor", k, sizeof k), 0.0f);
    if (factor == 0.0f) factor = gguf_get_f32(f, key_of(m, "rope.scale_linear", k, sizeof k), 0.0f);
    if (!(factor >= 0 && isfinite(factor))) {
        ll_set_err(err, errlen, "invalid rope scaling factor");
        return false;
    }
    // llama3's factor shapes rope_freqs; "none" never scales.
    if (hp->rope_scaling == LL_ROPE_SCALING_NONE || hp->rope_scaling == LL_ROPE_SCALING_LLAMA3) factor = 0.0f;
    hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    int64_t orig;
    if (!get_count(f, key_of(m, "rope.scaling.original_context_length", k, sizeof k), hp->n_ctx_train, 0, &orig,
                   NULL, err, errlen))
        return false;
    hp->n_ctx_orig = orig > 0 ? (int)orig : hp->n_ctx_train;
    hp->rope_attn_factor = gguf_get_f32(f, key_of(m, "rope.scaling.attn_factor", k, sizeof k), 1.0f);
    if (!(hp->rope_attn_factor > 0 && isfinite(hp->rope_attn_factor))) {
        ll_set_err(err, errlen, "invalid %s", k);
        return false;
    }
    return true;
}

// Whether the family's layers are all mixtures of experts, or (a llama) the file has a router.
static bool has_experts(const ll_model *m) {
    if (m->a->required & LL_BIT(LL_ROLE_FFN_GATE_INP)) return true;
    char name[64];
    snprintf(name, sizeof name, "blk.0.%s", ll_roles[LL_ROLE_FFN_GATE_INP].name);
    return gguf_find_tensor(m->file, name) != NULL;
}

// The mixture-of-experts counts: how many experts, how many each token runs, their widths.
// A dense model has none of the keys (n_expert 0).
static bool read_experts(ll_model *m, char *err, size_t errlen) {
    ll_hparams *hp = &m->hp;
    const gguf_file *f = m->file;
    char k[128];
    int64_t n_exp, n_used, ff_exp, ff_shexp;
    if (!get_count(f, key_of(m, "expert_count", k, sizeof k), 0, 0, &n_exp, NULL, err, errlen) ||
        !get_count(f, key_of(m, "expert_used_count", k, sizeof k), 0, 0, &n_used, NULL, err, errlen) ||
        !get_count(f, key_of(m, "expert_feed_forward_length", k, sizeof k), hp->n_ff, 0, &ff_exp, NULL, err, errlen) ||
        !get_count(f, key_of(m, "expert_shared_feed_forward_length", k, sizeof k), hp->n_ff, 0, &ff_shexp, NULL, err,
                   errlen))
        return false;
    if (n_exp == 0 && !has_experts(m)) return true;
    if (n_exp <= 0 || n_exp > 4096) {
        ll_set_err(err, errlen, "invalid or missing %s.expert_count (%lld) for a mixture-of-experts model", m->arch,
                   (long long)n_exp);
        return false;
    }
    if (n_used <= 0 || n_used > n_exp) {
        ll_set_err(err, errlen, "invalid %s.expert_used_count %lld for %lld experts", m->arch, (long long)n_used,
                   (long long)n_exp);
        return false;
    }
    if (ff_exp <= 0 || ff_exp > (1 << 20) || ff_shexp <= 0 || ff_shexp > (1 << 20)) {
        ll_set_err(err, errlen, "invalid %s.expert_%sfeed_forward_length", m->arch,
                   ff_exp <= 0 || ff_exp > (1 << 20) ? "" : "shared_");
        return false;
    }
    hp->n_expert = (int)n_exp;
    hp->n_expert_used = (int)n_used;
    hp->n_ff_exp = (int)ff_exp;
    hp->n_ff_shexp = (m->a->required & LL_BIT(LL_ROLE_FFN_GATE_SHEXP)) ? (int)ff_shexp : 0;
    hp->moe_gating = LL_MOE_SOFTMAX_TOPK;
    hp->moe_norm_w = true;
    return true;
}

bool ll_hparams_load(ll_model *m, char *err, size_t errlen) {
    const gguf_file *f = m->file;
    ll_hparams *hp = &m->hp;
    char k[128];
    memset(hp, 0, sizeof *hp);
    int64_t n_ctx, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim, n_rot;
    if (!get_count(f, key_of(m, "context_length", k, sizeof k), 2048, 0, &n_ctx, NULL, err, errlen) ||
        !get_count(f, key_of(m, "embedding_length", k, sizeof k), 0, 0, &n_embd, NULL, err, errlen) ||
        !get_count(f, key_of(m, "block_count", k, sizeof k), 0, 0, &n_layer, NULL, err, errlen))
        return false;
    if (n_embd <= 0 || n_embd > (1 << 17)) {
        ll_set_err(err, errlen, "invalid or missing %s.embedding_length (%lld)", m->arch, (long long)n_embd);
        return false;
    }
    if (n_layer <= 0 || n_layer > 4096) {
        ll_set_err(err, errlen, "invalid or missing %s.block_count (%lld)", m->arch, (long long)n_layer);
        return false;
    }
    const int L = (int)n_layer;
    if (!get_count(f, key_of(m, "attention.head_count", k, sizeof k), 0, L, &n_head, NULL, err, errlen))
        return false;
    if (n_head <= 0 || n_head > 4096) {
        ll_set_err(err, errlen, "invalid or missing %s.attention.head_count (%lld)", m->arch, (long long)n_head);
        return false;
    }
    if (!get_count(f, key_of(m, "attention.head_count_kv", k, sizeof k), n_head, L, &n_head_kv, NULL, err, errlen))
        return false;
    if (n_head_kv <= 0 || n_head_kv > n_head || n_head % n_head_kv != 0) {
        ll_set_err(err, errlen, "invalid %s.attention.head_count_kv %lld for %lld heads", m->arch,
                   (long long)n_head_kv, (long long)n_head);
        return false;
    }
    // Per-layer feed-forward widths are kept (in m->layers, which the tensors fill later).
    int64_t *ff = malloc((size_t)L * sizeof *ff);
    if (!ff) {
        ll_set_err(err, errlen, "out of memory");
        return false;
    }
    if (!m->layers && !(m->layers = calloc((size_t)L, sizeof *m->layers))) {
        free(ff);
        ll_set_err(err, errlen, "out of memory");
        return false;
    }
    bool ok = get_count(f, key_of(m, "feed_forward_length", k, sizeof k), 0, L, &n_ff, ff, err, errlen);
    for (int l = 0; ok && l < L; l++) {
        if (ff[l] <= 0 || ff[l] > (1 << 20)) {
            ll_set_err(err, errlen, "invalid or missing %s.feed_forward_length (%lld)", m->arch, (long long)ff[l]);
            ok = false;
        }
    }
    if (ok)
        for (int l = 0; l < L; l++) m->layers[l].n_ff = (int)ff[l];
    free(ff);
    if (!ok) return false;
    if (!get_count(f, key_of(m, "attention.key_length", k, sizeof k), n_embd / n_head, 0, &head_dim, NULL, err, errlen))
        return false;
    int64_t v_len;
    if (!get_count(f, key_of(m, "attention.value_length", k, sizeof k), head_dim, 0, &v_len, NULL, err, errlen))
        return false;
    if (head_dim <= 0 || head_dim > 4096 || v_len != head_dim) {
        ll_set_err(err, errlen, "unsupported head size (key %lld, value %lld)", (long long)head_dim, (long long)v_len);
        return false;
    }
    if (!get_count(f, key_of(m, "rope.dimension_count", k, sizeof k), head_dim, 0, &n_rot, NULL, err, errlen))
        return false;
    if (n_rot <= 0 || n_rot > head_dim || n_rot % 2) {
        ll_set_err(err, errlen, "invalid %s.rope.dimension_count %lld (head size %lld)", m->arch, (long long)n_rot,
                   (long long)head_dim);
        return false;
    }
    if (n_ctx <= 0) n_ctx = 2048;
    if (n_ctx > (1 << 24)) n_ctx = 1 << 24;

    hp->n_ctx_train = (int)n_ctx;
    hp->n_embd = (int)n_embd;
    hp->n_layer = L;
    hp->n_head = (int)n_head;
    hp->n_head_kv = (int)n_head_kv;
    hp->n_ff = (int)n_ff;
    hp->head_dim = (int)head_dim;
    hp->n_rot = (int)n_rot;

    hp->rms_eps = gguf_get_f32(f, key_of(m, "attention.layer_norm_rms_epsilon", k, sizeof k), 1e-5f);
    if (!(hp->rms_eps > 0 && hp->rms_eps < 1)) hp->rms_eps = 1e-5f;
    if (!read_rope(m, err, errlen)) return false;
    hp->rope_type = m->a->rope_type;
    hp->kq_scale = ll_arch_f32(m, "attention.scale", 0.0f);
    if (!(hp->kq_scale >= 0 && isfinite(hp->kq_scale))) {
        ll_set_err(err, errlen, "invalid %s.attention.scale", m->arch);
        return false;
    }
    if (hp->kq_scale == 0.0f) hp->kq_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->ffn_act = LL_ACT_SILU;
    if (!read_experts(m, err, errlen)) return false;
    if (m->a->read_hparams && !m->a->read_hparams(m, err, errlen)) return false;
    // A file may say whether the chosen experts' weights are renormalized; else the family does.
    if (ll_arch_has(m, "expert_weights_norm"))
        hp->moe_norm_w = gguf_get_bool(f, key_of(m, "expert_weights_norm", k, sizeof k), hp->moe_norm_w);
    return true;
}

bool ll_hparams_same(const ll_hparams *a, const ll_hparams *b) {
    return a->n_embd == b->n_embd && a->n_head == b->n_head && a->n_head_kv == b->n_head_kv &&
           a->n_ff == b->n_ff && a->head_dim == b->head_dim && a->n_rot == b->n_rot && a->rms_eps == b->rms_eps &&
           a->n_vocab == b->n_vocab && a->rope_type == b->rope_type && a->rope_scaling == b->rope_scaling &&
           a->rope_freq_base == b->rope_freq_base && a->rope_freq_scale == b->rope_freq_scale &&
           a->n_ctx_orig == b->n_ctx_orig && a->rope_attn_factor == b->rope_attn_factor &&
           a->rope_freq_base_swa == b->rope_freq_base_swa && a->rope_freq_scale_swa == b->rope_freq_scale_swa &&
           a->kq_scale == b->kq_scale && a->q_scale_first == b->q_scale_first &&
           a->attn_softcap == b->attn_softcap && a->n_swa == b->n_swa && a->swa_pattern == b->swa_pattern &&
           a->embd_scale == b->embd_scale && a->ffn_act == b->ffn_act &&
           a->ffn_fused_gate_up == b->ffn_fused_gate_up && a->final_softcap == b->final_softcap &&
           a->n_expert == b->n_expert && a->n_expert_used == b->n_expert_used && a->n_ff_exp == b->n_ff_exp &&
           a->n_ff_shexp == b->n_ff_shexp && a->moe_gating == b->moe_gating && a->moe_norm_w == b->moe_norm_w;
}

// Whether layer l has role r: the loaded weights, or for `info` (hyperparameters only, no
// weights loaded) the file's tensor names.
static bool layer_has(const ll_model *m, int l, ll_role r) {
    if (m->owned) return m->layers[l].w[r].data != NULL;
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", l, ll_roles[r].name);
    return gguf_find_tensor(m->file, name) != NULL;
}

static bool has_tensor(const ll_model *m, const float *loaded, const char *name) {
    return m->owned ? loaded != NULL : gguf_find_tensor(m->file, name) != NULL;
}

char *ll_hparams_format(const ll_model *m) {
    const ll_hparams *hp = &m->hp;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
#define PUT(...) (n += (size_t)snprintf(s + n, n < cap ? cap - n : 0, __VA_ARGS__))
    static const char *const scalings[] = {"none", "linear", "yarn", "longrope", "llama3"};
    PUT("architecture    = %s (%s RoPE)\n", m->arch, hp->rope_type == GL_ROPE_NEOX ? "NeoX" : "normal");
    PUT("n_ctx_train     = %d\n", hp->n_ctx_train);
    PUT("n_embd          = %d\n", hp->n_embd);
    PUT("n_layer         = %d\n", hp->n_layer);
    PUT("n_head          = %d\n", hp->n_head);
    PUT("n_head_kv       = %d\n", hp->n_head_kv);
    PUT("head_dim        = %d\n", hp->head_dim);
    PUT("n_rot           = %d\n", hp->n_rot);
    {
        bool same = true;
        for (int l = 1; l < hp->n_layer; l++) same &= m->layers[l].n_ff == m->layers[0].n_ff;
        if (same) PUT("n_ff            = %d\n", hp->n_ff);
        else {
            PUT("n_ff            = [");
            for (int l = 0; l < hp->n_layer; l++) PUT("%s%d", l ? ", " : "", m->layers[l].n_ff);
            PUT("]\n");
        }
    }
    static const char *const acts[] = {"SwiGLU", "GeGLU (tanh gelu)", "SwiGLU-OAI (clamped)"};
    PUT("ffn             = %s%s\n", acts[hp->ffn_act], hp->ffn_fused_gate_up ? ", gate|up fused" : "");
    if (hp->n_expert > 0) {
        PUT("n_expert        = %d\n", hp->n_expert);
        PUT("n_expert_used   = %d\n", hp->n_expert_used);
        PUT("n_ff_exp        = %d\n", hp->n_ff_exp);
        if (hp->n_ff_shexp > 0) PUT("n_ff_shexp      = %d (sigmoid-gated shared expert)\n", hp->n_ff_shexp);
        PUT("expert_gating   = %s%s\n",
            hp->moe_gating == LL_MOE_SOFTMAX_TOPK ? "softmax, then top-k" : "top-k, then softmax",
            hp->moe_gating == LL_MOE_SOFTMAX_TOPK ? (hp->moe_norm_w ? ", renormalized" : ", not renormalized") : "");
    }
    PUT("rms_eps         = %g\n", hp->rms_eps);
    PUT("rope_freq_base  = %g\n", hp->rope_freq_base);
    // A linear factor of 1 (the default type when the file names none) does not scale.
    const bool unscaled = hp->rope_scaling == LL_ROPE_SCALING_LINEAR && hp->rope_freq_scale == 1.0f;
    PUT("rope_scaling    = %s", unscaled ? "none" : scalings[hp->rope_scaling]);
    if (hp->rope_freq_scale != 1.0f) PUT(", factor %g", 1.0 / hp->rope_freq_scale);
    if (hp->rope_scaling == LL_ROPE_SCALING_YARN || hp->rope_scaling == LL_ROPE_SCALING_LONGROPE ||
        hp->rope_scaling == LL_ROPE_SCALING_LLAMA3)
        PUT(", original context %d", hp->n_ctx_orig);
    if (hp->rope_attn_factor != 1.0f) PUT(", attn_factor %g", hp->rope_attn_factor);
    PUT("\n");
    if (has_tensor(m, m->rope_freqs, "rope_freqs.weight"))
        PUT("rope_freqs      = %d factors (rope_freqs.weight)\n", hp->n_rot / 2);
    if (has_tensor(m, m->rope_long, "rope_factors_long.weight") ||
        has_tensor(m, m->rope_short, "rope_factors_short.weight"))
        PUT("rope_factors    = LongRoPE long/short (%d each)\n", hp->n_rot / 2);
    PUT("kq_scale        = %g%s\n", hp->kq_scale, hp->q_scale_first ? " (on Q after RoPE)" : "");
    if (hp->n_swa > 0) {
        PUT("sliding_window  = %d, ", hp->n_swa);
        if (hp->swa_pattern == 0) PUT("every layer\n");
        else if (hp->swa_pattern == 2) PUT("even layers\n");
        else PUT("all but every %dth layer\n", hp->swa_pattern);
        if (hp->rope_freq_base_swa > 0)
            PUT("rope_base_local = %g (sliding-window layers)\n", hp->rope_freq_base_swa);
    }
    if (hp->embd_scale > 0) PUT("embd_scale      = %g\n", hp->embd_scale);
    if (hp->attn_softcap > 0) PUT("attn_softcap    = %g\n", hp->attn_softcap);
    if (hp->final_softcap > 0) PUT("final_softcap   = %g\n", hp->final_softcap);
    {
        // The roles the layers have, with the number of layers having each when not all.
        PUT("layer tensors   =");
        for (int r = 0; r < LL_ROLE_COUNT; r++) {
            int cnt = 0;
            for (int l = 0; l < hp->n_layer; l++) cnt += layer_has(m, l, (ll_role)r);
            if (!cnt) continue;
            const char *name = ll_roles[r].name;
            const char *dot = strchr(name, '.');
            if (dot && !strcmp(dot, ".weight")) PUT(" %.*s", (int)(dot - name), name);
            else PUT(" %s", name);
            if (cnt != hp->n_layer) PUT("(%d)", cnt);
        }
        PUT("\n");
        const bool tied = m->owned ? m->output.data == m->tok_embd.data : !gguf_find_tensor(m->file, "output.weight");
        PUT("output          = %s\n", tied ? "tied (token_embd)" : "output.weight");
    }
#undef PUT
    if (n >= cap) s[cap - 1] = 0;
    return s;
}

// ---- tensors ---------------------------------------------------------------------------

static void shape_str(const gguf_tensor *t, char *buf, size_t n) {
    int k = snprintf(buf, n, "[");
    for (uint32_t d = 0; d < t->n_dims && d < GGUF_MAX_DIMS; d++)
        k += snprintf(buf + k, k < (int)n ? n - k : 0, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    snprintf(buf + k, k < (int)n ? n - k : 0, "]");
}

// Finds a tensor and checks it is [n_in, n_out] (n_out == 1 for vectors), or n_mat > 1 such
// matrices stacked [n_in, n_out, n_mat] (experts), with data in range. Returns NULL without an
// error when it is absent and optional.
static const gguf_tensor *find_checked(const gguf_file *f, const char *name, int64_t n_in,
                                       int64_t n_out, int64_t n_mat, bool required, bool *ok, char *err,
                                       size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        if (required) {
            ll_set_err(err, errlen, "missing tensor '%s'", name);
            *ok = false;
        }
        return NULL;
    }
    if (n_mat > 1 && t->ne[0] == n_in && t->ne[1] == n_out && t->ne[2] != n_mat && t->ne[3] == 1) {
        ll_set_err(err, errlen, "tensor '%s' holds %lld experts, expected %lld (expert_count)", name,
                   (long long)t->ne[2], (long long)n_mat);
        *ok = false;
        return NULL;
    }
    bool shape_ok = t->ne[0] == n_in && t->ne[1] == n_out && t->ne[2] == n_mat && t->ne[3] == 1;
    if (!shape_ok) {
        char got[96];
        shape_str(t, got, sizeof got);
        if (n_mat > 1)
            ll_set_err(err, errlen, "tensor '%s' has shape %s, expected [%lld, %lld, %lld]", name, got,
                       (long long)n_in, (long long)n_out, (long long)n_mat);
        else if (n_out == 1)
            ll_set_err(err, errlen, "tensor '%s' has shape %s, expected [%lld]", name, got, (long long)n_in);
        else
            ll_set_err(err, errlen, "tensor '%s' has shape %s, expected [%lld, %lld]", name, got,
                    (long long)n_in, (long long)n_out);
        *ok = false;
        return NULL;
    }
    const gl_type_traits *tr = gl_get_type_traits(t->type);
    if (!tr || !tr->to_float) {
        ll_set_err(err, errlen, "tensor '%s' has unsupported type %s", name, gl_type_name(t->type));
        *ok = false;
        return NULL;
    }
    size_t row = gl_row_size(t->type, n_in);
    if (row == 0 || t->size < row * (size_t)n_out * (size_t)n_mat || !t->data) {
        ll_set_err(err, errlen, "tensor '%s': %lld elements per row do not fit type %s", name,
                (long long)n_in, gl_type_name(t->type));
        *ok = false;
        return NULL;
    }
    return t;
}

// A matrix used by gl_matmul (n_mat > 1: a stack of expert matrices, each n_out rows): its
// type must have a dot kernel.
static bool get_weight(ll_model *m, const char *name, int64_t n_in, int64_t n_out, int64_t n_mat, bool required,
                       ll_weight *w, char *err, size_t errlen) {
    bool ok = true;
    const gguf_tensor *t = find_checked(m->file, name, n_in, n_out, n_mat, required, &ok, err, errlen);
    memset(w, 0, sizeof *w);
    if (!t) return ok;
    const gl_type_traits *tr = gl_get_type_traits(t->type);
    const gl_type_traits *vt = gl_get_type_traits(tr->vec_dot_type);
    if (!tr->vec_dot || !vt || !vt->from_float || gl_row_size(tr->vec_dot_type, n_in) == 0) {
        ll_set_err(err, errlen, "tensor '%s': type %s cannot be used for a matmul of %lld-element rows",
                name, gl_type_name(t->type), (long long)n_in);
        return false;
    }
    w->data = t->data;
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    m->n_params += (uint64_t)n_in * (uint64_t)n_out * (uint64_t)n_mat;
    m->size_bytes += gl_row_size(t->type, n_in) * (uint64_t)n_out * (uint64_t)n_mat;
    return true;
}

// A vector (norm weight, bias), or n_vec of them ([n, n_vec]: the experts' biases): converted
// to floats in the owned block at *cursor.
static bool get_vectors(ll_model *m, const char *name, int64_t n, int64_t n_vec, bool required,
                        const float **out, float **cursor, char *err, size_t errlen) {
    bool ok = true;
    const gguf_tensor *t = find_checked(m->file, name, n, n_vec, 1, required, &ok, err, errlen);
    *out = NULL;
    if (!t) return ok;
    n *= n_vec;
    gl_get_type_traits(t->type)->to_float(t->data, *cursor, n);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite((*cursor)[i])) {
            ll_set_err(err, errlen, "tensor '%s' holds a non-finite value", name);
            return false;
        }
    }
    *out = *cursor;
    *cursor += n;
    m->n_params += (uint64_t)n;
    m->size_bytes += t->size;
    return true;
}

static bool get_vector(ll_model *m, const char *name, int64_t n, bool required, const float **out, float **cursor,
                       char *err, size_t errlen) {
    return get_vectors(m, name, n, 1, required, out, cursor, err, errlen);
}

// The shape role r has in layer L of m: a matrix of n_out rows of n_in, or a vector of n_in.
static void role_shape(const ll_model *m, const ll_layer *L, ll_role r, int64_t *n_in, int64_t *n_out) {
    const ll_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, q = (int64_t)hp->n_head * hp->head_dim, kv = (int64_t)hp->n_head_kv * hp->head_dim,
                  ff = L->n_ff, up = hp->ffn_fused_gate_up ? 2 * ff : ff;
    *n_out = 1;
    switch (r) {
    case LL_ROLE_ATTN_Q: *n_in = E, *n_out = q; break;
    case LL_ROLE_ATTN_K: case LL_ROLE_ATTN_V: *n_in = E, *n_out = kv; break;
    case LL_ROLE_ATTN_QKV: *n_in = E, *n_out = q + 2 * kv; break;
    case LL_ROLE_ATTN_OUT: *n_in = q, *n_out = E; break;
    case LL_ROLE_ATTN_Q_B: *n_in = q; break;
    case LL_ROLE_ATTN_K_B: case LL_ROLE_ATTN_V_B: *n_in = kv; break;
    case LL_ROLE_ATTN_QKV_B: *n_in = q + 2 * kv; break;
    case LL_ROLE_ATTN_Q_NORM: case LL_ROLE_ATTN_K_NORM: *n_in = hp->head_dim; break;
    case LL_ROLE_ATTN_SINKS: *n_in = hp->n_head; break;
    case LL_ROLE_FFN_GATE: *n_in = E, *n_out = ff; break;
    case LL_ROLE_FFN_UP: *n_in = E, *n_out = up; break;
    case LL_ROLE_FFN_DOWN: *n_in = ff, *n_out = E; break;
    case LL_ROLE_FFN_GATE_B: *n_in = ff; break;
    case LL_ROLE_FFN_UP_B: *n_in = up; break;
    case LL_ROLE_FFN_GATE_INP: *n_in = E, *n_out = hp->n_expert; break;
    case LL_ROLE_FFN_GATE_EXPS: case LL_ROLE_FFN_UP_EXPS: *n_in = E, *n_out = hp->n_ff_exp; break;
    case LL_ROLE_FFN_DOWN_EXPS: *n_in = hp->n_ff_exp, *n_out = E; break;
    case LL_ROLE_FFN_GATE_SHEXP: case LL_ROLE_FFN_UP_SHEXP: *n_in = E, *n_out = hp->n_ff_shexp; break;
    case LL_ROLE_FFN_DOWN_SHEXP: *n_in = hp->n_ff_shexp, *n_out = E; break;
    case LL_ROLE_FFN_GATE_INP_B: *n_in = hp->n_expert; break;
    case LL_ROLE_FFN_GATE_EXPS_B: case LL_ROLE_FFN_UP_EXPS_B: *n_in = hp->n_ff_exp; break;
    default: *n_in = E; break; // the norms, the output bias
    }
}

// The roles layer i must have and may have: the family's, with a fused attn_qkv standing in
// for attn_q/k/v (or the reverse) when the file has the other form and the family allows it.
static void layer_roles(const ll_model *m, int i, uint64_t *req, uint64_t *opt) {
    const uint64_t qkv3 = LL_BIT(LL_ROLE_ATTN_Q) | LL_BIT(LL_ROLE_ATTN_K) | LL_BIT(LL_ROLE_ATTN_V),
                   fused = LL_BIT(LL_ROLE_ATTN_QKV);
    *req = m->a->required;
    *opt = m->a->optional;
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", i, ll_roles[LL_ROLE_ATTN_QKV].name);
    const bool has_fused = gguf_find_tensor(m->file, name) != NULL;
    snprintf(name, sizeof name, "blk.%d.%s", i, ll_roles[LL_ROLE_ATTN_Q].name);
    const bool has_q = gguf_find_tensor(m->file, name) != NULL;
    if ((*req & fused) && !has_fused && has_q) *req = (*req & ~fused) | qkv3;
    else if ((*req & qkv3) == qkv3 && (*opt & fused) && has_fused && !has_q) *req = (*req & ~qkv3) | fused;
    // A llama with experts (Mixtral): the router and the experts replace the dense FFN.
    const uint64_t dense = LL_BIT(LL_ROLE_FFN_GATE) | LL_BIT(LL_ROLE_FFN_UP) | LL_BIT(LL_ROLE_FFN_DOWN),
                   biases = LL_BIT(LL_ROLE_FFN_GATE_B) | LL_BIT(LL_ROLE_FFN_UP_B) | LL_BIT(LL_ROLE_FFN_DOWN_B),
                   moe = LL_BIT(LL_ROLE_FFN_GATE_INP) | LL_BIT(LL_ROLE_FFN_GATE_EXPS) | LL_BIT(LL_ROLE_FFN_UP_EXPS) |
                         LL_BIT(LL_ROLE_FFN_DOWN_EXPS);
    if (m->hp.n_expert > 0 && (*req & dense) == dense) {
        *req = (*req & ~dense) | moe;
        *opt &= ~biases;
    }
    *opt &= ~*req;
    if (*req & fused) *opt &= ~qkv3;
    else *opt &= ~(fused | LL_BIT(LL_ROLE_ATTN_QKV_B));
}

// Llama 3.1's frequency divisors from the rope.scaling keys, as the converter makes
// rope_freqs.weight, for files that name the scaling instead of carrying the tensor.
static void llama3_factors(const ll_model *m, float *out) {
    const ll_hparams *hp = &m->hp;
    const float factor = ll_arch_f32(m, "rope.scaling.factor", 8.0f);
    const float lo = ll_arch_f32(m, "rope.scaling.low_freq_factor", 1.0f);
    const float hi = ll_arch_f32(m, "rope.scaling.high_freq_factor", 4.0f);
    const double old_ctx = hp->n_ctx_orig, lo_wavelen = old_ctx / lo, hi_wavelen = old_ctx / hi;
    for (int i = 0; i < hp->n_rot / 2; i++) {
        const double freq = 1.0 / pow(hp->rope_freq_base, 2.0 * i / hp->n_rot), wavelen = 2 * M_PI / freq;
        if (wavelen < hi_wavelen) out[i] = 1.0f;
        else if (wavelen > lo_wavelen) out[i] = factor;
        else {
            const double smooth = (old_ctx / wavelen - lo) / (hi - lo);
            out[i] = (float)(1.0 / ((1.0 - smooth) / factor + smooth));
        }
    }
}

// The rotary settings: the global one, and for sliding-window layers with a base of their
// own (gemma3) a local one. YaRN's ramp and magnitude as ggml's rope_yarn computes them.
static void make_ropes(ll_model *m) {
    const ll_hparams *hp = &m->hp;
    ll_rope *g = &m->rope[0];
    g->p = (gl_rope_params){.freq_base = hp->rope_freq_base, .freq_scale = hp->rope_freq_scale,
                            .freq_factors = m->rope_freqs ? m->rope_freqs : m->rope_short,
                            .n_rot = hp->n_rot, .mode = hp->rope_type};
    g->attn_factor = hp->rope_attn_factor;
    g->ext_factor = hp->rope_scaling == LL_ROPE_SCALING_YARN ? 1.0f : 0.0f;
    if (g->ext_factor != 0.0f) {
        // corr_dim(r) = n_rot * ln(n_ctx_orig / (r * 2 pi)) / (2 ln base), for beta_fast 32 / beta_slow 1
        const float beta_fast = 32.0f, beta_slow = 1.0f, n = (float)hp->n_rot, base = hp->rope_freq_base;
        const float start = floorf(n * logf((float)hp->n_ctx_orig / (beta_fast * 2 * (float)M_PI)) / (2 * logf(base)));
        const float end = ceilf(n * logf((float)hp->n_ctx_orig / (beta_slow * 2 * (float)M_PI)) / (2 * logf(base)));
        g->corr_dims[0] = start > 0 ? start : 0;
        g->corr_dims[1] = end < n - 1 ? end : n - 1;
    }
    m->n_ropes = 1;
    if (hp->rope_freq_base_swa > 0) {
        m->rope[1] = *g;
        m->rope[1].p.freq_base = hp->rope_freq_base_swa;
        m->rope[1].p.freq_scale = hp->rope_freq_scale_swa;
        m->rope[1].p.freq_factors = NULL;
        m->rope[1].ext_factor = 0.0f;
        m->rope[1].attn_factor = 1.0f;
        m->n_ropes = 2;
    }
    // Which layers slide, and with which setting.
    for (int l = 0; l < hp->n_layer; l++) {
        ll_layer *L = &m->layers[l];
        const bool swa = hp->n_swa > 0 && (hp->swa_pattern == 0 || (l + 1) % hp->swa_pattern != 0);
        L->n_swa = swa ? hp->n_swa : 0;
        L->rope = swa && m->n_ropes > 1 ? 1 : 0;
    }
}

static bool load_tensors(ll_model *m, char *err, size_t errlen) {
    const ll_hparams *hp = &m->hp;
    const gguf_file *f = m->file;
    const int64_t E = hp->n_embd;

    // The vocabulary size comes from the embedding; the tokenizer must agree with it.
    const gguf_tensor *te = gguf_find_tensor(f, "token_embd.weight");
    if (!te) {
        ll_set_err(err, errlen, "missing tensor 'token_embd.weight'");
        return false;
    }
    if (te->ne[1] <= 0 || te->ne[1] > (1 << 24)) {
        ll_set_err(err, errlen, "tensor 'token_embd.weight' has an invalid vocabulary size");
        return false;
    }
    m->hp.n_vocab = (int)te->ne[1];
    if (m->vocab && ll_vocab_n_tokens(m->vocab) != m->hp.n_vocab) {
        ll_set_err(err, errlen, "tensor 'token_embd.weight' has %d rows but the vocabulary has %d tokens",
                m->hp.n_vocab, (int)ll_vocab_n_tokens(m->vocab));
        return false;
    }
    const int64_t V = hp->n_vocab;

    // Room for every float copy: the output norm, three sets of rope factors, and each layer's
    // vectors at their largest.
    size_t n_floats = (size_t)E + 3 * (size_t)(hp->n_rot / 2);
    for (int i = 0; i < hp->n_layer; i++) {
        for (int r = 0; r < LL_ROLE_COUNT; r++) {
            if (ll_roles[r].kind != LL_KIND_VECTOR && ll_roles[r].kind != LL_KIND_EXPERT_VECTORS) continue;
            int64_t n_in, n_out;
            role_shape(m, &m->layers[i], (ll_role)r, &n_in, &n_out);
            n_floats += (size_t)n_in * (ll_roles[r].kind == LL_KIND_EXPERT_VECTORS ? (size_t)hp->n_expert : 1);
        }
    }
    m->owned = malloc(n_floats * sizeof(float));
    if (!m->owned) {
        ll_set_err(err, errlen, "out of memory");
        return false;
    }
    float *cur = m->owned;

    // The embedding is read a row at a time with to_float, so any decodable type works.
    bool ok = true;
    if (!find_checked(f, "token_embd.weight", E, V, 1, true, &ok, err, errlen)) return false;
    m->tok_embd = (ll_weight){te->data, te->type, E, V, NULL};
    m->n_params += (uint64_t)E * V;
    m->size_bytes += gl_row_size(te->type, E) * (uint64_t)V;

    if (!get_vector(m, "output_norm.weight", E, true, &m->output_norm, &cur, err, errlen) ||
        !get_weight(m, "output.weight", E, V, 1, false, &m->output, err, errlen))
        return false;
    if (!m->output.data) {
        // Tied output: the embedding doubles as the output head, so it must be multipliable.
        if (!get_weight(m, "token_embd.weight", E, V, 1, true, &m->output, err, errlen)) return false;
        m->n_params -= (uint64_t)E * V;
        m->size_bytes -= gl_row_size(te->type, E) * (uint64_t)V;
    }
    const int n_half = hp->n_rot / 2;
    static const char *const factor_names[3] = {"rope_freqs.weight", "rope_factors_long.weight",
                                                "rope_factors_short.weight"};
    const float **factors[3] = {&m->rope_freqs, &m->rope_long, &m->rope_short};
    for (int k = 0; k < 3; k++) {
        if (!get_vector(m, factor_names[k], n_half, false, factors[k], &cur, err, errlen)) return false;
        for (int i = 0; *factors[k] && i < n_half; i++) {
            if (!((*factors[k])[i] > 0)) {
                ll_set_err(err, errlen, "tensor '%s' holds a non-positive factor", factor_names[k]);
                return false;
            }
        }
    }
    if (!m->rope_freqs && hp->rope_scaling == LL_ROPE_SCALING_LLAMA3) {
        llama3_factors(m, cur);
        m->rope_freqs = cur;
        cur += n_half;
    }

    char name[96];
    for (int i = 0; i < hp->n_layer; i++) {
        ll_layer *L = &m->layers[i];
        uint64_t req, opt;
        layer_roles(m, i, &req, &opt);
        for (int r = 0; r < LL_ROLE_COUNT; r++) {
            if (!((req | opt) & LL_BIT(r))) continue;
            int64_t n_in, n_out;
            role_shape(m, L, (ll_role)r, &n_in, &n_out);
            snprintf(name, sizeof name, "blk.%d.%s", i, ll_roles[r].name);
            const bool need = (req & LL_BIT(r)) != 0;
            const ll_role_kind kind = ll_roles[r].kind;
            if (kind == LL_KIND_VECTOR || kind == LL_KIND_EXPERT_VECTORS) {
                const int64_t n_vec = kind == LL_KIND_EXPERT_VECTORS ? hp->n_expert : 1;
                const float *v;
                if (!get_vectors(m, name, n_in, n_vec, need, &v, &cur, err, errlen)) return false;
                L->w[r] = v ? (ll_weight){v, GL_TYPE_F32, n_in, n_vec, NULL} : (ll_weight){0};
            } else if (!get_weight(m, name, n_in, n_out, kind == LL_KIND_EXPERTS ? hp->n_expert : 1, need, &L->w[r],
                                   err, errlen)) {
                return false;
            }
        }
    }
    make_ropes(m);
    return true;
}

// ---- description -------------------------------------------------------------------------

static const char *ftype_name(uint32_t ft) {
    switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 21: return "Q2_K_S";
    case 25: return "IQ4_NL";
    case 30: return "IQ4_XS";
    case 32: return "BF16";
    default: return NULL;
    }
}

static void make_desc(ll_model *m) {
    char size[32];
    double n = (double)m->n_params;
    const char *label = gguf_get_str(m->file, "general.size_label", NULL);
    if (label && label[0] && strlen(label) < 16 && !strchr(label, ' ')) snprintf(size, sizeof size, "%s", label);
    else if (n < 1e6) snprintf(size, sizeof size, "%.0fK", n / 1e3);
    else if (n < 1e9) snprintf(size, sizeof size, "%.0fM", n / 1e6);
    else snprintf(size, sizeof size, "%.1fB", n / 1e9);

    const char *ft = NULL;
    if (gguf_find_key(m->file, "general.file_type") >= 0)
        ft = ftype_name(gguf_get_u32(m->file, "general.file_type", 9999));
    if (!ft) {
        // No (known) file type: name the type holding the most parameters of the layers.
        uint64_t count[GL_TYPE_COUNT] = {0};
        for (int i = 0; i < m->hp.n_layer; i++) {
            for (int r = 0; r < LL_ROLE_COUNT; r++) {
                const ll_weight *w = &m->layers[i].w[r];
                const ll_role_kind kind = ll_roles[r].kind;
                if ((kind == LL_KIND_MATRIX || kind == LL_KIND_EXPERTS) && w->data && (unsigned)w->type < GL_TYPE_COUNT)
                    count[w->type] += (uint64_t)w->n_in * w->n_out * (kind == LL_KIND_EXPERTS ? m->hp.n_expert : 1);
            }
        }
        int best = 0;
        for (int t = 1; t < GL_TYPE_COUNT; t++)
            if (count[t] > count[best]) best = t;
        ft = gl_type_name((enum gl_type)best);
    }
    snprintf(m->desc, sizeof m->desc, "%.31s %.15s %.15s", m->arch, size, ft);
}

// Reads one byte per page of every weight so the first decode does not pay for page faults,
// reporting the bytes done as it goes. Stacks of experts are left alone: only the experts the
// router chooses are ever read, and those it never chooses need never come into memory.
static void prefault(const ll_model *m, const ll_model_params *p) {
    const int64_t nt = gguf_n_tensors(m->file);
    uint64_t total = 0, done = 0;
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_get_tensor(m->file, i);
        if (t->n_dims < 3) total += t->size;
    }
    volatile unsigned char sink = 0;
    for (int64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_get_tensor(m->file, i);
        if (t->n_dims >= 3) continue;
        const unsigned char *d = t->data;
        for (size_t off = 0; off < t->size; off += 4096) sink ^= d[off];
        done += t->size;
        p->progress(p->progress_ud, done, total);
    }
    (void)sink;
}

ll_model *ll_model_load(const char *path, const ll_model_params *p, char *err, size_t errlen) {
    double t0 = ll_now_ms();
    ll_model_params def = ll_model_default_params();
    if (!p) p = &def;
    if (err && errlen) err[0] = 0;

    ll_model *m = calloc(1, sizeof *m);
    if (!m) {
        ll_set_err(err, errlen, "out of memory");
        return NULL;
    }
    const gguf_load how = {.read_in = p->no_mmap && !p->vocab_only, .progress = p->progress,
                           .progress_ud = p->progress_ud};
    m->file = gguf_open_with(path, &how, err, errlen);
    if (!m->file) goto fail;
    m->vocab_only = p->vocab_only;
    snprintf(m->arch, sizeof m->arch, "%s", gguf_get_str(m->file, "general.architecture", ""));

    char verr[256] = "";
    m->vocab = ll_vocab_load(m->file, verr, sizeof verr);
    if (!m->vocab) {
        ll_set_err(err, errlen, "%s: %s", path, verr[0] ? verr : "cannot load the vocabulary");
        goto fail;
    }
    if (p->vocab_only) {
        snprintf(m->desc, sizeof m->desc, "%s vocab", m->arch[0] ? m->arch : "?");
        m->t_load_ms = ll_now_ms() - t0;
        return m;
    }
    if (!(m->a = ll_arch_find(m->arch))) {
        ll_set_err(err, errlen, "unsupported architecture '%s' (supported: %s)", m->arch, ll_arch_names());
        goto fail;
    }
    char lerr[256] = "";
    if (!ll_hparams_load(m, lerr, sizeof lerr) || !load_tensors(m, lerr, sizeof lerr)) {
        ll_set_err(err, errlen, "%s: %s", path, lerr);
        goto fail;
    }
    make_desc(m);
    if (p->progress && !how.read_in) prefault(m, p); // read in: already in memory
    if (!p->no_repack && !how.read_in) ll_model_repack(m); // (read in: the copy would double the memory)
    m->t_load_ms = ll_now_ms() - t0;
    return m;
fail:
    ll_model_free(m);
    return NULL;
}

void ll_model_free(ll_model *m) {
    if (!m) return;
    if (m->vocab) ll_vocab_free(m->vocab);
    if (m->file) gguf_close(m->file);
    ll_model_unpack(m);
    free(m->layers);
    free(m->owned);
    free(m);
}

const ll_vocab *ll_model_get_vocab(const ll_model *m) { return m->vocab; }
int ll_model_n_ctx_train(const ll_model *m) { return m->hp.n_ctx_train; }
int ll_model_n_embd(const ll_model *m) { return m->hp.n_embd; }
int ll_model_n_layer(const ll_model *m) { return m->hp.n_layer; }
uint64_t ll_model_n_params(const ll_model *m) { return m->n_params; }
uint64_t ll_model_size_bytes(const ll_model *m) { return m->size_bytes; }
const char *ll_model_desc(const ll_model *m) { return m->desc; }

void ll_logits_finish(const ll_model *m, float *logits, int n_rows) {
    const float cap = m->hp.final_softcap;
    if (cap <= 0) return;
    // As the reference: scale by 1/cap, tanh, scale by cap.
    const float inv = 1.0f / cap;
    const size_t n = (size_t)n_rows * (size_t)m->hp.n_vocab;
    for (size_t i = 0; i < n; i++) logits[i] = tanhf(logits[i] * inv) * cap;
}

const char *ll_model_meta_str(const ll_model *m, const char *key) {
    int64_t i = gguf_find_key(m->file, key);
    if (i < 0 || gguf_kv_type(m->file, i) != GGUF_TYPE_STRING) return NULL;
    return gguf_get_str(m->file, key, NULL);
}
